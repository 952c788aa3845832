//! Chapter 18.1: a primary that stops without dying, and the term that fences it.
//!
//! Run it: `cargo run --example paused_primary` (on chapter 17's three nodes). Three clients
//! race chapter 6's OCC increment through two nodes while the third, which holds the primary,
//! is paused (`SIGSTOP`; a container's pause). Two writes made before the pause go to the paused
//! node's own port, one unconditional, one with `if_seq_no`/`if_primary_term`. You should see
//! a replica promoted in a new term after the fault-detection time, each late write's fate told
//! from its evidence (refused, applied after the newer write, a delayed answer, or lost: a loss
//! fails the run), the old primary's work refused in its log, the counter held to its history.
//! `-- --runs 100` pauses a hundred times and counts the fates; `--then kill` also kills the new
//! primary; `--timeline FILE` saves the race.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Result;
use elasticsearch::{Elasticsearch, IndexParts};
use esbook::doc::{self, Versioned};
use esbook::retry::Backoff;
use harness::cli::Args;
use harness::history::{self, History, Outcome};
use harness::nodes::{Failover, Nodes};
use harness::pause::{self, PausedPrimary, Race};
use harness::report::{self, Claims};
use serde_json::{Value, json};

const INDEX: &str = "paused_primary";
const COUNTER: &str = "counter";
/// The documents of the late writes (one unconditional, one conditional), and the values.
const BLIND: &str = "blind";
const GUARDED: &str = "guarded";
const LATE: &str = "late, from before the pause";
const NEWER: &str = "newer, acknowledged";
/// A client's deadline: longer than the pause's stall, so that a stalled write is waited for.
const TIMEOUT: Duration = Duration::from_secs(90);

// ANCHOR: increment
/// Chapter 6's OCC increment: read, write with the read's condition, and on a 409 back off
/// and read again. `race.write` records every attempt; a write with no answer is not retried.
async fn increment(
    client: &mut Failover,
    race: &Race,
    history: &mut History,
    op: &str,
) -> Result<()> {
    let backoff = Backoff::default();
    for attempt in 1..=backoff.max_attempts {
        if let Some(seen) = client.read(INDEX, COUNTER, TIMEOUT).await {
            let node = client.node().clone();
            let request = (node.client.index(IndexParts::IndexId(INDEX, COUNTER)))
                .if_seq_no(seen.seq_no)
                .if_primary_term(seen.primary_term)
                .request_timeout(TIMEOUT)
                .body(json!({ "counter": seen.number("counter")? + 1 }))
                .send();
            match race.write(history, op, &node.name, request).await? {
                Outcome::Acknowledged(_) => return Ok(()),
                Outcome::Conflicted(_) => {} // someone wrote since: read again
                Outcome::NotSent(_) => _ = client.move_on(),
                // Maybe applied: another attempt might count it twice.
                Outcome::Indeterminate(_) => {
                    client.move_on();
                    return Ok(());
                }
            }
        }
        tokio::time::sleep(backoff.delay(attempt)).await;
    }
    Ok(())
}
// ANCHOR_END: increment

// ANCHOR: late_write
/// Writes `value` to document `id` through `to`, carrying `condition`'s `if_seq_no` and
/// `if_primary_term` if there is one; what came of it. Sent to a paused node, it waits in the
/// socket until the node runs again.
async fn write(
    to: Elasticsearch,
    id: &'static str,
    value: &str,
    condition: Option<Versioned>,
) -> Result<Outcome> {
    let mut request = (to.index(IndexParts::IndexId(INDEX, id)))
        .request_timeout(Duration::from_secs(180))
        .body(json!({ "value": value }));
    if let Some(seen) = condition {
        request = request.if_seq_no(seen.seq_no);
        request = request.if_primary_term(seen.primary_term);
    }
    history::outcome(request.send().await).await
}
// ANCHOR_END: late_write

/// One run: the race through the pause (with `kill`, through a kill after it); the run's
/// `RESULT` fields and its timeline.
async fn paused_primary(cluster: &Nodes, kill: bool) -> Result<(Value, Value)> {
    let (victim, v) =
        pause::prepare(cluster, INDEX, COUNTER, &[BLIND, GUARDED]).await?;
    let race = Race::new(cluster);

    // ANCHOR: clients
    let mut clients = tokio::task::JoinSet::new();
    for i in 0..3 {
        // Each client starts on a node that will not be paused.
        let mut client = Failover::new(cluster, v + 1 + i % 2);
        let race = race.clone();
        clients.spawn(async move {
            let (mut history, mut n) = (History::new(), 0);
            while race.watch.running() {
                n += 1;
                let op = format!("c{i}-{n}");
                increment(&mut client, &race, &mut history, &op).await?;
            }
            anyhow::Ok(history)
        });
    }
    // ANCHOR_END: clients
    let (live, live_name) = {
        let node = cluster.other_than(&victim);
        (&node.client, node.name.clone())
    };

    // ANCHOR: pause
    let seen = doc::read(live, INDEX, GUARDED).await?; // read before the pause
    let mut fault = PausedPrimary::pause(cluster, INDEX, &victim, &race).await?;
    let to_paused = fault.paused_node()?;
    let blind = tokio::spawn(write(to_paused.clone(), BLIND, LATE, None));
    let guarded = tokio::spawn(write(to_paused, GUARDED, LATE, Some(seen.clone())));
    fault.wait_for_promotion(&race).await?;
    let mut newer = Vec::new();
    for id in [BLIND, GUARDED] {
        let read = doc::read(live, INDEX, id).await?;
        let written = write(live.clone(), id, NEWER, Some(read.clone())).await?;
        println!(
            "newer write to {id} through {live_name}, from a read of {}: {}",
            version(&read),
            written.brief()
        );
        newer.push((read, written));
    }
    // ANCHOR_END: pause

    // ANCHOR: resume
    fault.resume(&race).await?;
    let (blind, guarded) = (blind.await??, guarded.await??);
    println!(
        "late unconditional write, through {victim}: {}",
        answer(&blind)
    );
    println!(
        "late conditional write, through {victim}:   {}",
        answer(&guarded)
    );
    let mut holds = Vec::new();
    for id in [BLIND, GUARDED] {
        holds.push(doc::read(live, INDEX, id).await?.source["value"].clone());
        println!("{id} now holds {}", holds.last().unwrap_or(&Value::Null));
    }
    fault.rejoined(&race).await?;
    // ANCHOR_END: resume
    let all = pause::finish(cluster, INDEX, &race, kill, clients).await?;

    let counter = doc::read(live, INDEX, COUNTER).await?.number("counter")?;
    let (_, lines, plain) = history::plain_report(&all, counter as u64);
    let agree = pause::print_copies(cluster, INDEX, &[COUNTER], &lines).await?;
    let evidence = |late: &Outcome, at: usize, condition: Option<&Versioned>| {
        let (read, written) = &newer[at];
        let fate = json!({
            "late": late.kind(), "via": victim, "shards": shards(late),
            "seq_no": seq_no(late), "term": term(late),
            "condition": condition
                .map(|c| json!({ "seq_no": c.seq_no, "term": c.primary_term })),
            "newer_read": { "seq_no": read.seq_no, "term": read.primary_term },
            "newer": { "answer": written.kind(), "seq_no": seq_no(written),
                "term": term(written) },
            "holds": holds[at],
        });
        with_class(fate)
    };
    let blind = evidence(&blind, 0, None);
    let guarded = evidence(&guarded, 1, Some(&seen));
    for (id, fate) in [(BLIND, &blind), (GUARDED, &guarded)] {
        println!("{id}: {}", finding(fate));
    }
    let more = json!({ "plain": plain, "copies_agree": agree,
        BLIND: blind, GUARDED: guarded });
    let fields = fault.report("paused_primary", &race, more);
    Ok((fields, race.timeline.to_json()))
}

const USAGE: &str = "usage: cargo run --example paused_primary -- [--runs R] \
                     [--then stop|kill] [--timeline FILE]";

#[tokio::main]
async fn main() -> ExitCode {
    harness::run_main(async {
        let mut args = Args::from_env(USAGE)?;
        let runs: u32 = args.number("runs", 1, 1..=100)?;
        let kill = args.choice("then", "stop", &["stop", "kill"])? == "kill";
        let timeline = args.text("timeline", "")?;
        args.finish()?;
        let cluster = Nodes::connect(3).await?;
        let (mut claims, mut lost, started) = (Claims::new(), 0, Instant::now());
        let mut fates = json!({ BLIND: {}, GUARDED: {} });
        for run in 1..=runs {
            println!("\n== run {run} of {runs}");
            let (fields, seconds) = paused_primary(&cluster, kill).await?;
            check(&fields, &mut claims);
            lost += fields["plain"]["lost_acknowledged"].as_u64().unwrap_or(1);
            for id in [BLIND, GUARDED] {
                let class = fields[id]["class"].as_str().unwrap_or("other");
                let count = &mut fates[id][class];
                *count = json!(count.as_u64().unwrap_or(0) + 1);
            }
            pause::write_timeline(&timeline, &cluster, seconds)?;
        }
        if runs > 1 {
            let took = started.elapsed();
            println!(
                "\n== {runs} pauses in {:.0}s: {lost} acknowledged increments lost",
                took.as_secs_f64()
            );
            for (id, which) in [(BLIND, "unconditional"), (GUARDED, "conditional")] {
                let counts = CLASSES.map(|(class, said)| {
                    format!("{} {said}", fates[id][class].as_u64().unwrap_or(0))
                });
                println!("late {which} writes: {}", counts.join(", "));
            }
            let fields = json!({ "example": "paused_primary_runs", "runs": runs,
                "lost_acknowledged": lost, BLIND: fates[BLIND], GUARDED: fates[GUARDED] });
            report::result(&cluster.cluster(&cluster.nodes[0]), took, fields);
        }
        claims.into_result()
    })
    .await
}

// ANCHOR: claims
/// The chapter's claims, as the run saw them.
fn check(run: &Value, claims: &mut Claims) {
    let refused = run["refusals"].as_array().is_some_and(|r| !r.is_empty());
    harness::check_each!(claims;
        run["term_after"].as_i64() > run["term_before"].as_i64(),
        run["stall_ms"].as_u64() >= Some(5_000),
        ["applied_last", "delayed_answer"].contains(&class(&run["blind"])),
        ["refused", "delayed_answer"].contains(&class(&run["guarded"])),
        class(&run["blind"]) != "lost" && class(&run["guarded"]) != "lost",
        refused || run["logs_read"] == false,
        run["plain"]["lost_acknowledged"] == 0 && run["plain"]["unexplained"] == 0,
        run["rejoined_as_replica"] == true && run["copies_agree"] == true,
    );
}
// ANCHOR_END: claims

/// The fates a late write can meet ([`class`]), in the words of the summary of many runs.
const CLASSES: [(&str, &str); 5] = [
    ("refused", "refused (409)"),
    ("applied_last", "applied after the newer write"),
    ("delayed_answer", "delayed answers"),
    ("lost", "lost"),
    ("other", "other"),
];

/// What became of a late write, from its evidence (`fate`: its answer, what the newer write
/// read before writing and what that write was answered, what the document holds at the end):
/// - `refused`: a 409, and the newer write stands;
/// - `applied_last`: acknowledged, applied after the newer write (a higher `_seq_no`), and the
///   document holds it: the newer write is overwritten, the lost update of a blind write;
/// - `delayed_answer`: acknowledged at a `_seq_no` at or below the one the newer write read,
///   so the newer write read it, and replaced it knowingly: the write was applied before the
///   pause took hold, and only its answer came late; nothing is lost;
/// - `lost`: acknowledged, absent from the document, and read by nothing after it;
/// - `other`: anything else (no answer, a newer write that was not acknowledged, ...).
fn class(fate: &Value) -> &'static str {
    let late = fate["seq_no"].as_i64();
    let read = fate["newer_read"]["seq_no"].as_i64();
    let newer = fate["newer"]["seq_no"].as_i64();
    let newer_stands =
        fate["newer"]["answer"] == "acknowledged" && fate["holds"] == NEWER;
    let included = matches!((late, read), (Some(late), Some(read)) if late <= read);
    match fate["late"].as_str() {
        Some("conflicted") if newer_stands => "refused",
        Some("acknowledged") if included => "delayed_answer",
        Some("acknowledged") if fate["holds"] != LATE => "lost",
        Some("acknowledged") if late > newer && newer.is_some() => "applied_last",
        _ => "other",
    }
}

/// `fate` with its [`class`] added.
fn with_class(mut fate: Value) -> Value {
    fate["class"] = json!(class(&fate));
    fate
}

/// One line for a person: what became of a late write, with the evidence.
fn finding(fate: &Value) -> String {
    let at = |v: &Value| format!("_seq_no {} in term {}", v["seq_no"], v["term"]);
    let shards = &fate["shards"];
    let answered = format!(
        "acknowledged through {} at {} (_shards: {} total, {} successful, {} failed)",
        fate["via"].as_str().unwrap_or("?"),
        at(fate),
        shards["total"],
        shards["successful"],
        shards["failed"]
    );
    let (read, newer) = (at(&fate["newer_read"]), at(&fate["newer"]));
    match fate["class"].as_str() {
        Some("refused") => format!(
            "the late write was refused through {} (409); the newer write, from a read at \
             {read}, stands at {newer}",
            fate["via"].as_str().unwrap_or("?")
        ),
        Some("applied_last") => format!(
            "the late write was {answered}, after the newer write ({newer}), which it \
             overwrote"
        ),
        Some("delayed_answer") => format!(
            "a delayed answer: the late write was {answered}; the newer write read the \
             document at {read} and replaced it: nothing lost"
        ),
        Some("lost") => format!(
            "LOST: the late write was {answered}; the newer write read the document at \
             {read}, before it, and the document holds {}",
            fate["holds"]
        ),
        _ => format!(
            "unexpected: the late write was {}, the newer one {}, and the document holds {}",
            fate["late"], fate["newer"]["answer"], fate["holds"]
        ),
    }
}

/// A read's `_seq_no` and `_primary_term`, as an answer shows them.
fn version(read: &Versioned) -> String {
    format!(
        "_seq_no={} _primary_term={}",
        read.seq_no, read.primary_term
    )
}

/// A write's answer in one line ([`Outcome::brief`]), with its `_shards` if it was
/// acknowledged.
fn answer(outcome: &Outcome) -> String {
    let shards = shards(outcome);
    match shards.is_null() {
        true => outcome.brief(),
        false => format!(
            "{} _shards.total={} successful={} failed={}",
            outcome.brief(),
            shards["total"],
            shards["successful"],
            shards["failed"]
        ),
    }
}

/// The `_shards` of an acknowledged write, `null` for any other answer.
fn shards(outcome: &Outcome) -> Value {
    match outcome {
        Outcome::Acknowledged(body) => body["_shards"].clone(),
        _ => Value::Null,
    }
}

/// The `_seq_no` of an acknowledged write, `null` for any other answer.
fn seq_no(outcome: &Outcome) -> Value {
    match outcome {
        Outcome::Acknowledged(body) => body["_seq_no"].clone(),
        _ => Value::Null,
    }
}

/// The primary term of an acknowledged write, `null` for any other answer.
fn term(outcome: &Outcome) -> Value {
    match outcome {
        Outcome::Acknowledged(body) => body["_primary_term"].clone(),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness::recorded;

    /// A late write's evidence: its answer (`late`, at `seq_no` in `term`), what the newer
    /// write read (`read`) and wrote (`newer`), and what the document `holds`.
    fn fate(
        late: &str,
        seq_no: i64,
        term: i64,
        read: i64,
        newer: i64,
        holds: &str,
    ) -> Value {
        with_class(json!({
            "late": late, "via": "node-1", "seq_no": seq_no, "term": term,
            "shards": { "total": 3, "successful": 3, "failed": 0 },
            "newer_read": { "seq_no": read, "term": 1 },
            "newer": { "answer": "acknowledged", "seq_no": newer, "term": 2 },
            "holds": holds,
        }))
    }

    /// Each fate is told apart by `_seq_no`, and a loss fails the checks.
    #[test]
    fn late_writes_are_told_apart() {
        let refused = fate("conflicted", 0, 0, 2, 57, NEWER);
        let applied_last = fate("acknowledged", 187, 2, 2, 54, LATE);
        // Applied in term 1 at 3, which the newer write read (3) before writing 57.
        let delayed = fate("acknowledged", 3, 1, 3, 57, NEWER);
        // Acknowledged at 60, after what the newer write read, and not in the document.
        let lost = fate("acknowledged", 60, 1, 3, 57, NEWER);
        let classes: Vec<&str> = [&refused, &applied_last, &delayed, &lost]
            .iter()
            .map(|f| f["class"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(
            classes,
            ["refused", "applied_last", "delayed_answer", "lost"]
        );
        assert!(finding(&delayed).starts_with("a delayed answer"));
        assert!(finding(&lost).starts_with("LOST"));
        let run = |blind: &Value, guarded: &Value| {
            json!({ "term_before": 1, "term_after": 2, "stall_ms": 32_000,
                "logs_read": false, "rejoined_as_replica": true, "copies_agree": true,
                "plain": { "lost_acknowledged": 0, "unexplained": 0 },
                "blind": blind, "guarded": guarded })
        };
        let holds = |blind: &Value, guarded: &Value| {
            let mut claims = Claims::new();
            check(&run(blind, guarded), &mut claims);
            claims.all_hold()
        };
        assert!(holds(&applied_last, &refused));
        assert!(holds(&delayed, &delayed));
        assert!(!holds(&applied_last, &lost));
        assert!(!holds(&lost, &refused));
        // A conditional write applied after the newer one would have ignored its condition.
        assert!(!holds(&applied_last, &applied_last));
    }

    /// What the chapter says of a hundred pauses is what their recorded run shows: every
    /// run's checks held, the fates it counted, the times it took.
    #[test]
    fn the_chapter_quotes_the_hundred_pauses() {
        let name = "paused_primary_runs_100";
        let sums = recorded::result(name, "example", "paused_primary_runs");
        let runs: Vec<Value> = recorded::results(name)
            .into_iter()
            .filter(|r| r["example"] == "paused_primary")
            .collect();
        assert_eq!((runs.len(), &sums["runs"]), (100, &json!(100)));
        let output = recorded::output(name);
        assert!(output.contains("Checked: all 800 checks held"));
        let flat = recorded::chapter("ch18-01-paused-primary.md");
        let flat = flat.split_whitespace().collect::<Vec<_>>().join(" ");
        let says = |pattern: &str| recorded::quoted(&flat, pattern);
        let count = |id: &str, class: &str| {
            sums[id][class].as_u64().unwrap_or(0).to_string()
        };
        let hundred = "of the 100 late";
        let pairs = [
            (
                r"unconditional writes, (\d+) were applied after",
                count(BLIND, "applied_last"),
            ),
            (
                r"unconditional writes, \d+ were .*? and (\d+) w(?:as a|ere) delayed",
                count(BLIND, "delayed_answer"),
            ),
            (
                r"conditional writes, (\d+) were refused",
                count(GUARDED, "refused"),
            ),
            (
                r"conditional writes, \d+ were refused and (\d+) w(?:as a|ere) delayed",
                count(GUARDED, "delayed_answer"),
            ),
        ];
        assert!(flat.contains(hundred));
        for (pattern, counted) in pairs {
            assert_eq!(says(pattern), counted, "{pattern}");
        }
        for id in [BLIND, GUARDED] {
            for class in ["lost", "other"] {
                assert_eq!(count(id, class), "0", "{id} {class}");
            }
        }
        assert_eq!(sums["lost_acknowledged"], 0);
        let left: Vec<f64> =
            runs.iter().filter_map(|r| r["left_ms"].as_f64()).collect();
        let seconds = |ms: f64| format!("{:.1}", ms / 1000.0);
        let (low, high) = left
            .iter()
            .fold((f64::MAX, 0.0f64), |(l, h), &x| (l.min(x), h.max(x)));
        assert_eq!(
            says(r"the node left (\d+\.\d) to \d+\.\d s after"),
            seconds(low)
        );
        assert_eq!(
            says(r"the node left \d+\.\d to (\d+\.\d) s after"),
            seconds(high)
        );
        assert_eq!(
            says(r"cluster (\d+\.\d) to \d+\.\d s after each pause"),
            seconds(low)
        );
        assert_eq!(
            says(r"cluster \d+\.\d to (\d+\.\d) s after each pause"),
            seconds(high)
        );
        // The one delayed answer, as the chapter describes it.
        let delayed: Vec<(usize, &Value)> = (runs.iter().enumerate())
            .filter(|(_, r)| r[GUARDED]["class"] == "delayed_answer")
            .collect();
        let [(at, run)] = delayed[..] else {
            panic!(
                "{} delayed answers, the chapter describes one",
                delayed.len()
            )
        };
        let fate = &run[GUARDED];
        let expected = format!(
            "run {}'s conditional write: acknowledged through {} at `_seq_no` {} in term {}, \
             `_shards` {} of {}, and the newer write had read `guarded` at `_seq_no` {} in \
             term {}",
            at + 1,
            fate["via"].as_str().unwrap_or_default(),
            fate["seq_no"],
            fate["term"],
            fate["shards"]["successful"],
            fate["shards"]["total"],
            fate["newer_read"]["seq_no"],
            fate["newer_read"]["term"]
        );
        assert!(
            flat.contains(&expected),
            "the chapter should say: {expected}"
        );
        let took: f64 = recorded::quoted(&output, r"== 100 pauses in (\d+)s")
            .parse()
            .expect("seconds");
        assert_eq!(says(r"took (\d+) minutes"), format!("{:.0}", took / 60.0));
    }

    /// The recorded run is the chapter's: its claims hold, and every number and refusal the
    /// chapter quotes is the recorded output's.
    #[test]
    fn the_chapter_quotes_the_recorded_run() {
        let run = recorded::result("paused_primary", "example", "paused_primary");
        let mut claims = Claims::new();
        check(&run, &mut claims);
        assert!(claims.all_hold(), "{claims:?} {run}");
        let chapter = recorded::chapter("ch18-01-paused-primary.md");
        let flat = chapter.split_whitespace().collect::<Vec<_>>().join(" ");
        let output = recorded::output("paused_primary");
        let says = |pattern: &str| recorded::quoted(&flat, pattern);
        let shows = |pattern: &str| recorded::quoted(&output, pattern);
        assert_eq!(
            says(r"left the cluster (\d+\.\d) s after the pause"),
            shows(r"it left the cluster after (\d+\.\d)s")
        );
        assert_eq!(
            says(r"a replica was primary (\d+\.\d) s after the pause"),
            shows(r"primary after (\d+\.\d)s, term 2")
        );
        assert_eq!(
            says(r"no write was acknowledged for (\d+\.\d) s"),
            shows(r"without an acknowledged write: (\d+\.\d)s")
        );
        let pairs = [
            (
                r"\*\* (node-\d) held the primary in term 1",
                r"paused (node-\d) ",
            ),
            (
                r"at `_seq_no` (\d+)\. The late",
                r"newer write to blind through node-\d, .*_seq_no=(\d+)",
            ),
            (
                r"applied after it, at `_seq_no` (\d+)",
                r"late unconditional write, through node-\d: .*_seq_no=(\d+)",
            ),
            (
                r"\(promotion after (\d+\.\d) s\)",
                r"primary after (\d+\.\d)s, term 3",
            ),
            (
                r"after the resume shows (node-\d) primary",
                r"primary on (node-\d) \(STARTED\)",
            ),
            (
                r"as a new request, to (node-\d)",
                r"primary on (node-\d) \(STARTED\)",
            ),
        ];
        for (said, shown) in pairs {
            assert_eq!(says(said), shows(shown), "{said}");
        }
        assert_eq!(
            (&run["term_before"], &run["term_after"]),
            (&json!(1), &json!(2))
        );
        assert!(flat.contains("from term 1 to term 2"));
        for said in run["refusals"].as_array().expect("refusals") {
            let said = said.as_str().expect("a refusal");
            assert!(output.contains(said), "{said}");
        }
        for quoted in recorded::quoted_all(&flat, r#"“([^”]+)”"#) {
            assert!(output.contains(&quoted), "the chapter quotes {quoted:?}");
        }
    }
}
