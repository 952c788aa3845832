//! Chapter 18: chapter 6's race, through a failover, with every write checked.
//!
//! Run it: `cargo run --example failover_race` (on chapter 17's three nodes). Six clients
//! increment `plain` (chapter 6's OCC increment) and `idempotent` (each increment's id listed
//! in the document) while the primary's node is killed (`SIGKILL`) with a write in flight
//! through it, then started again. You should see the kill, each counter held to the history of
//! every attempt, and the three copies equal. `-- --runs 10` makes ten failovers in a row.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use elasticsearch::IndexParts;
use esbook::doc::{self, Versioned};
use esbook::retry::Backoff;
use harness::cli::Args;
use harness::history::{self, History, Outcome};
use harness::nodes::{self, Failover, FaultWatch, Nodes};
use harness::report::{self, Claims};
use serde_json::{Value, json};

const INDEX: &str = "failover_race";
const PLAIN: &str = "plain";
const IDEMPOTENT: &str = "idempotent";

// ANCHOR: racer
/// One racing client: a [`Failover`] (a client per node, one of them current), the race's
/// settings, what it shares with the failover, and the history of every attempt it made.
struct Racer {
    client: Failover,
    race: Race,
    watch: Arc<FaultWatch>,
    history: History,
}
// ANCHOR_END: racer

impl Racer {
    // ANCHOR: plain
    /// Chapter 6's OCC increment, with a deadline and a history. A write that got no
    /// answer is not retried: it may have been applied, and a retry would count it again.
    async fn plain_increment(&mut self, op: &str) -> Result<()> {
        for attempt in 1..=self.race.backoff.max_attempts {
            let Some(seen) = self.read(PLAIN).await else {
                self.pause(attempt).await;
                continue;
            };
            let next = json!({ "counter": seen.number("counter")? + 1 });
            match self.write(PLAIN, &seen, next, op).await? {
                // Applied, or maybe applied: done either way.
                Outcome::Acknowledged(_) | Outcome::Indeterminate(_) => break,
                // Conflicted, or never sent: read again, and retry.
                _ => self.pause(attempt).await,
            }
        }
        Ok(())
    }
    // ANCHOR_END: plain

    // ANCHOR: idempotent
    /// The same increment, made idempotent: the document lists the ids of the
    /// increments it applied. Before every attempt the client reads the document;
    /// if its id is there, the increment has landed, whatever the last answer was.
    async fn idempotent_increment(&mut self, op: &str) -> Result<()> {
        for attempt in 1..=self.race.backoff.max_attempts {
            let Some(seen) = self.read(IDEMPOTENT).await else {
                self.pause(attempt).await;
                continue;
            };
            let mut ops =
                seen.source["ops"].as_array().cloned().unwrap_or_default();
            if ops.contains(&json!(op)) {
                return Ok(()); // landed, although no answer said so
            }
            ops.push(json!(op));
            let next =
                json!({ "counter": seen.number("counter")? + 1, "ops": ops });
            match self.write(IDEMPOTENT, &seen, next, op).await? {
                Outcome::Acknowledged(_) => return Ok(()),
                // Conflicted, not sent, or unknown: the next read tells.
                _ => self.pause(attempt).await,
            }
        }
        Ok(())
    }
    // ANCHOR_END: idempotent

    // ANCHOR: write
    /// One conditional write through the current node, recorded in the history with
    /// whether a node was killed while it was in flight. After a transport failure
    /// the client moves on to the next node.
    async fn write(
        &mut self,
        id: &str,
        seen: &Versioned,
        next: Value,
        op: &str,
    ) -> Result<Outcome> {
        let node = self.client.node().clone();
        let in_flight = self.watch.sent(&node.name);
        let sent = node
            .client
            .index(IndexParts::IndexId(INDEX, id))
            .if_seq_no(seen.seq_no)
            .if_primary_term(seen.primary_term)
            .request_timeout(self.race.timeout)
            .body(next)
            .send()
            .await;
        let across = self.watch.answered(in_flight);
        let outcome = history::outcome(sent).await?;
        self.history
            .record_across_fault(op, &node.name, &outcome, across);
        if matches!(outcome, Outcome::NotSent(_) | Outcome::Indeterminate(_)) {
            self.client.move_on();
        }
        Ok(outcome)
    }
    // ANCHOR_END: write

    /// A realtime GET through the current node (the next one if it fails).
    async fn read(&mut self, id: &str) -> Option<Versioned> {
        self.client.read(INDEX, id, self.race.timeout).await
    }

    async fn pause(&self, attempt: u32) {
        tokio::time::sleep(self.race.backoff.delay(attempt)).await;
    }
}

/// One run: the race, the failover, and the run's `RESULT` fields, which the checks read.
async fn failover_race(cluster: &Nodes, race: Race) -> Result<Value> {
    let first = &cluster.nodes[0].client;
    doc::fresh_index(first, INDEX).await?;
    nodes::replicate(first, INDEX, 2, "10s").await?;
    doc::put(first, INDEX, PLAIN, json!({ "counter": 0 })).await?;
    doc::put(first, INDEX, IDEMPOTENT, json!({ "counter": 0, "ops": [] })).await?;
    let started = Instant::now();
    let watch = Arc::new(FaultWatch::new(cluster));

    // ANCHOR: clients
    let mut clients = tokio::task::JoinSet::new();
    for i in 0..2 * race.clients {
        let idempotent = i % 2 == 1;
        // Spread over the nodes: some clients talk to the node that will die.
        let client = Failover::new(cluster, i);
        let (watch, history) = (watch.clone(), History::new());
        let mut racer = Racer {
            client,
            race,
            watch,
            history,
        };
        clients.spawn(async move {
            let mut n = 0;
            while racer.watch.running() {
                n += 1;
                let op = format!("c{i}-{n}");
                if idempotent {
                    racer.idempotent_increment(&op).await?;
                } else {
                    racer.plain_increment(&op).await?;
                }
                racer.watch.increment_done();
                tokio::time::sleep(race.think).await;
            }
            anyhow::Ok((idempotent, racer.history))
        });
    }
    // ANCHOR_END: clients

    // ANCHOR: failover
    let fault = nodes::inject_failover(cluster, INDEX, &watch).await;
    watch.stop();
    let (mut plain, mut idempotent) = (History::new(), History::new());
    while let Some(joined) = clients.join_next().await {
        match joined.context("a client panicked")?? {
            (true, history) => idempotent.merge(history),
            (false, history) => plain.merge(history),
        }
    }
    let fault = fault?;
    let elapsed = started.elapsed();
    let (n, c, secs) =
        (watch.increments(), 2 * race.clients, elapsed.as_secs_f64());
    println!("{n} increments by {c} clients in {secs:.1}s");
    // ANCHOR_END: failover

    // ANCHOR: check
    let survivor = &cluster.other_than(&fault.killed).client;
    let plain_final = doc::read(survivor, INDEX, PLAIN).await?.number("counter")?;
    let (_, lines, plain_fields) =
        history::plain_report(&plain, plain_final as u64);
    let idempotent_final = doc::read(survivor, INDEX, IDEMPOTENT).await?.source;
    let (_, more, idempotent_fields) =
        history::idempotent_report(&idempotent, &idempotent_final);
    // ANCHOR_END: check
    let unknown = history::indeterminate_lines(&[&plain, &idempotent], 3);
    let (copies, copies_agree) =
        nodes::local_copies(cluster, INDEX, &[PLAIN, IDEMPOTENT]).await?;
    for line in lines.iter().chain(&more).chain(&unknown).chain(&copies) {
        println!("{line}");
    }
    let fields = json!({
        "example": "failover_race",
        "killed": fault.killed,
        "writes_in_flight_at_kill": fault.in_flight,
        "promotion_ms": fault.promotion.as_millis() as u64,
        "back_ms": fault.back_after.as_millis() as u64,
        "primary_term": fault.term,
        PLAIN: plain_fields,
        IDEMPOTENT: idempotent_fields,
        "copies_agree": copies_agree,
    });
    let survivor = cluster.other_than(&fault.killed);
    report::result(&cluster.cluster(survivor), elapsed, fields.clone());
    Ok(fields)
}

/// One run's settings.
#[derive(Debug, Clone, Copy)]
struct Race {
    /// Clients per counter.
    clients: usize,
    /// Each request's deadline: past it the request is indeterminate.
    timeout: Duration,
    /// A client's pause between two increments.
    think: Duration,
    /// Tries per increment; waits long enough to outlast a failover.
    backoff: Backoff,
}

impl Race {
    fn new(clients: usize, timeout_ms: u64, think_ms: u64) -> Race {
        let (base, cap) = (Duration::from_millis(5), Duration::from_millis(500));
        Race {
            clients,
            timeout: Duration::from_millis(timeout_ms),
            think: Duration::from_millis(think_ms),
            backoff: Backoff {
                max_attempts: 50,
                base,
                cap,
            },
        }
    }
}

const USAGE: &str = "usage: cargo run --example failover_race -- [--runs R] [--clients N] \
                     [--timeout-ms T] [--think-ms P]";

#[tokio::main]
async fn main() -> ExitCode {
    harness::run_main(async {
        let mut args = Args::from_env(USAGE)?;
        let runs: u32 = args.number("runs", 1, 1..=100)?;
        let clients = args.number("clients", 3, 1..=20)?;
        let timeout = args.number("timeout-ms", 2000, 100..=60_000)?;
        let think = args.number("think-ms", 50, 0..=10_000)?;
        let race = Race::new(clients, timeout, think);
        args.finish()?;
        let cluster = Nodes::connect(3).await?;
        let (started, mut claims, mut results) =
            (Instant::now(), Claims::new(), Vec::new());
        for run in 1..=runs {
            println!("\n== run {run} of {runs}");
            let fields = failover_race(&cluster, race).await?;
            check(&fields, &mut claims);
            results.push(fields);
        }
        if runs > 1 {
            let sums = history::sum_failover_runs(&results);
            println!("\n== {runs} runs: {}", history::sums_line(&sums));
            report::result(
                &cluster.cluster(&cluster.nodes[0]),
                started.elapsed(),
                sums.clone(),
            );
            harness::check_each!(claims;
                sums["lost_acknowledged"] == 0,
                sums["applied_twice"] == 0 && sums["unexplained"] == 0,
            );
        }
        claims.into_result()
    })
    .await
}

/// Chapter 18's claims: no acknowledged increment lost; the plain counter within what its
/// history explains (a 409 in flight at the kill may answer an applied write); the idempotent
/// counter exact, and every increment applied against a 409 got that 409 at the kill; the
/// three copies equal.
fn check(run: &Value, claims: &mut Claims) {
    let (plain, idempotent) = (&run[PLAIN], &run[IDEMPOTENT]);
    harness::check_each!(claims;
        plain["lost_acknowledged"] == 0,
        plain["unexplained"] == 0,
        idempotent["held"] == true,
        idempotent["denied_across_fault"] == idempotent["denied_but_applied"],
        run["copies_agree"] == true,
    );
}

#[cfg(test)]
mod tests {
    use harness::recorded;

    /// The recorded run is chapter 18's: nothing acknowledged lost, at least one write whose
    /// outcome its client could not know, the idempotent counter exact, the copies equal, and
    /// the numbers the chapter quotes.
    #[test]
    fn the_chapter_quotes_the_recorded_run() {
        let race = recorded::result("failover_race", "example", "failover_race");
        let (plain, idempotent) = (&race["plain"], &race["idempotent"]);
        for counter in [plain, idempotent] {
            assert_eq!(counter["lost_acknowledged"], 0, "{race}");
            assert_eq!(counter["held"], true, "{race}");
            assert!(counter["acknowledged"].as_u64().unwrap() > 100, "{race}");
        }
        assert_eq!(plain["unexplained"], 0, "{race}");
        assert_eq!(
            idempotent["final"], idempotent["distinct_applied"],
            "{race}"
        );
        assert_eq!(idempotent["applied_twice"], 0, "{race}");
        let unknown = plain["indeterminate"].as_u64().unwrap()
            + idempotent["indeterminate"].as_u64().unwrap();
        assert!(
            unknown > 0,
            "the chapter shows at least one indeterminate write: {race}"
        );
        assert!(
            race["writes_in_flight_at_kill"].as_u64().unwrap() > 0,
            "{race}"
        );
        assert_eq!(race["primary_term"], 2);
        assert_eq!(race["copies_agree"], true);

        let chapter = recorded::chapter("ch18-00-failover-race.md");
        let output = recorded::output("failover_race");
        let says = |pattern: &str| recorded::quoted(&chapter, pattern);
        let back =
            recorded::quoted(&output, r"back and the index green (\d+\.\d)s later");
        assert_eq!(
            says(r"the index green,\s+(\d+\.\d) s after its restart"),
            back
        );
        let promoted =
            recorded::quoted(&output, r"primary after (\d+\.\d)s, term 2");
        assert!(
            promoted.parse::<f64>().unwrap() < 1.0,
            "a fraction of a second: {promoted}"
        );
        let flat = chapter.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            flat.contains("a replica was primary a fraction of a second later")
        );
        let denied = idempotent["denied_but_applied"].as_u64().unwrap();
        let twice = plain["counted_twice"].as_u64().unwrap();
        let shown =
            says(r"In the\s+recorded run, (\w+) increments? (?:was|were) applied");
        assert_eq!(shown, words(denied + twice), "{race}");
    }

    /// A small count as the chapter writes it.
    fn words(n: u64) -> String {
        ["no", "one", "two", "three", "four", "five"]
            .get(n as usize)
            .map_or(n.to_string(), |w| w.to_string())
    }
}
