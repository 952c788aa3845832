//! Chapter 18, continued: chapter 6's scripted increment through a failover, each increment's
//! id listed in the document, so that one applied twice shows. Run it: `cargo run --example
//! server_failover` (three nodes of the scripting server). Clients increment `plain_server` (sent once) and
//! `idempotent_server` (chapter 19's ids, sent until answered) while the primary's node is
//! killed and restarted. You should see the kill, each counter held to its history (increments
//! applied twice, or applied unanswered, counted), and the copies equal.

use std::{process::ExitCode, sync::Arc, time::Duration, time::Instant};

use anyhow::{Context, Result};
use elasticsearch::UpdateParts;
use esbook::{doc, retry::Backoff};
use harness::history::{self, History, Outcome};
use harness::nodes::{self, Failover, FaultWatch, Nodes};
use harness::{cli::Args, report, report::Claims};
use serde_json::{Value, json};

const INDEX: &str = "server_failover";
const PLAIN: &str = "plain_server";
const IDEMPOTENT: &str = "idempotent_server";

// ANCHOR: scripts
/// Chapter 6's increment, which also lists the id of the increment: applied
/// twice, it lists the id twice.
const PLAIN_SCRIPT: &str =
    "ctx._source.counter += 1; ctx._source.ops.add(params.op)";
/// Chapter 19's: an increment whose id is listed already changes nothing.
const IDEMPOTENT_SCRIPT: &str = "
    if (ctx._source.ops.contains(params.op)) {
        ctx.op = 'none';
    } else {
        ctx._source.counter += 1;
        ctx._source.ops.add(params.op);
    }";
/// The server's own retries of a conflict; each request's deadline (past it,
/// indeterminate); the client's backoff, long enough to outlast a failover.
const RETRY_ON_CONFLICT: i64 = 20;
const DEADLINE: Duration = Duration::from_secs(2);
const BACKOFF: Backoff = Backoff {
    max_attempts: 50,
    base: Duration::from_millis(5),
    cap: Duration::from_millis(500),
};
const COUNTERS: [(&str, &str); 2] =
    [(PLAIN, PLAIN_SCRIPT), (IDEMPOTENT, IDEMPOTENT_SCRIPT)];
// ANCHOR_END: scripts

/// A client, as in chapter 18: one node at a time, the fault, every attempt.
struct Racer {
    client: Failover,
    watch: Arc<FaultWatch>,
    history: History,
}

impl Racer {
    // ANCHOR: increment
    /// One increment. Chapter 6's is sent again only if it never left (a refused
    /// connection): an id listed twice was applied twice by the server, not sent
    /// twice by the client. Chapter 19's is sent again, with the same id, until an
    /// answer says it was applied (`noop` if an earlier attempt was).
    async fn increment(&mut self, idempotent: bool, op: &str) -> Result<()> {
        for attempt in 1..=BACKOFF.max_attempts {
            match self.update(idempotent, op).await? {
                Outcome::Acknowledged(_) => break,
                Outcome::NotSent(_) => {}
                _ if !idempotent => break, // a 409, or maybe applied: done
                _ => {}
            }
            tokio::time::sleep(BACKOFF.delay(attempt)).await;
        }
        Ok(())
    }
    // ANCHOR_END: increment

    // ANCHOR: update
    /// One scripted update through the current node, recorded in the history.
    async fn update(&mut self, idempotent: bool, op: &str) -> Result<Outcome> {
        let (id, script) = COUNTERS[usize::from(idempotent)];
        let node = self.client.node().clone();
        let in_flight = self.watch.sent(&node.name);
        let sent = node
            .client
            .update(UpdateParts::IndexId(INDEX, id))
            .retry_on_conflict(RETRY_ON_CONFLICT)
            .request_timeout(DEADLINE)
            .body(json!({ "script": { "source": script, "params": { "op": op } } }))
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
    // ANCHOR_END: update
}

/// One run: the race, the failover, and the run's `RESULT` fields, which the checks read.
async fn server_failover(cluster: &Nodes, clients_each: usize) -> Result<Value> {
    let first = &cluster.nodes[0].client;
    doc::fresh_index(first, INDEX).await?;
    nodes::replicate(first, INDEX, 2, "10s").await?;
    for id in [PLAIN, IDEMPOTENT] {
        doc::put(first, INDEX, id, json!({ "counter": 0, "ops": [] })).await?;
    }
    let (started, watch) = (Instant::now(), Arc::new(FaultWatch::new(cluster)));
    // ANCHOR: race
    let mut clients = tokio::task::JoinSet::new();
    for i in 0..2 * clients_each {
        let idempotent = i % 2 == 1;
        // Spread over the nodes: most updates reach the primary through another node.
        let mut racer = Racer {
            client: Failover::new(cluster, i),
            watch: watch.clone(),
            history: History::new(),
        };
        clients.spawn(async move {
            let mut n = 0;
            while racer.watch.running() {
                n += 1;
                racer.increment(idempotent, &format!("c{i}-{n}")).await?;
                racer.watch.increment_done();
            }
            anyhow::Ok((idempotent, racer.history))
        });
    }
    // The primary's node dies with updates in flight, and comes back.
    let fault = nodes::inject_failover(cluster, INDEX, &watch).await;
    watch.stop();
    let mut histories = [History::new(), History::new()];
    while let Some(joined) = clients.join_next().await {
        let (idempotent, history) = joined.context("a client panicked")??;
        histories[usize::from(idempotent)].merge(history);
    }
    // ANCHOR_END: race
    let (fault, elapsed) = (fault?, started.elapsed());
    let attempts = histories.iter().flat_map(History::attempts);
    let across = attempts.filter(|a| a.across_fault).count();
    println!("{across} updates in flight across the failover");
    let survivor = cluster.other_than(&fault.killed);
    let mut fields = json!({
        "example": "server_failover", "killed": fault.killed, "primary_term": fault.term,
        "writes_in_flight_at_kill": fault.in_flight, "in_flight_across_failover": across,
    });
    // ANCHOR: check
    for ((id, _), history) in COUNTERS.iter().zip(&histories) {
        let document = doc::read(&survivor.client, INDEX, id).await?.source;
        let (_, lines, counter) = history::ids_report(id, history, &document);
        lines.iter().for_each(|line| println!("{line}"));
        fields[*id] = counter;
    }
    // ANCHOR_END: check
    let (copies, agree) =
        nodes::local_copies(cluster, INDEX, &[PLAIN, IDEMPOTENT]).await?;
    copies.iter().for_each(|line| println!("{line}"));
    fields["copies_agree"] = json!(agree);
    report::result(&cluster.cluster(survivor), elapsed, fields.clone());
    Ok(fields)
}

const USAGE: &str =
    "usage: cargo run --example server_failover -- [--runs R] [--clients N]";

#[tokio::main]
async fn main() -> ExitCode {
    harness::run_main(async {
        let mut args = Args::from_env(USAGE)?;
        let runs: u32 = args.number("runs", 1, 1..=100)?;
        let clients = args.number("clients", 4, 1..=20)?;
        args.finish()?;
        let cluster = Nodes::connect_scripting(3).await?;
        let (started, mut claims, mut twice) = (Instant::now(), Claims::new(), 0);
        for run in 1..=runs {
            println!("\n== run {run} of {runs}");
            let fields = server_failover(&cluster, clients).await?;
            check(&fields, &mut claims);
            twice += fields[PLAIN]["applied_twice"].as_u64().unwrap_or(0);
        }
        let secs = started.elapsed().as_secs_f64();
        println!("\n== {runs} failover(s): {twice} applied twice, in {secs:.1}s");
        claims.into_result()
    })
    .await
}

/// The claims: no acknowledged increment lost; the plain counter equals the ids it lists; the
/// idempotent counter exact (final == distinct ids, none twice); the three copies equal.
fn check(run: &Value, claims: &mut Claims) {
    let (plain, idem) = (&run[PLAIN], &run[IDEMPOTENT]);
    harness::check_each!(claims;
        plain["lost_acknowledged"] == 0,
        plain["final"] == plain["listed"],
        idem["held"] == true && idem["final"] == idem["distinct_applied"],
        run["copies_agree"] == true,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness::recorded;

    /// The recorded runs are the chapter's: its claims held in each, and the numbers the
    /// chapter quotes (in flight, applied unanswered, applied twice, the exact counter, and the
    /// sums over the ten failovers) are the recorded ones.
    #[test]
    fn the_chapter_quotes_the_recorded_runs() {
        let run = recorded::result("server_failover", "example", "server_failover");
        let runs = recorded::results("server_failover_runs_10_clients_8");
        assert_eq!(runs.len(), 10);
        for run in runs.iter().chain([&run]) {
            let mut claims = Claims::new();
            check(run, &mut claims);
            assert!(claims.all_hold(), "{claims:?}: {run}");
            assert_eq!(run["primary_term"], 2, "{run}");
        }
        let (plain, idem) = (&run[PLAIN], &run[IDEMPOTENT]);
        let chapter =
            recorded::chapter("ch18-02-server-increments-through-failovers.md");
        let flat = chapter.split_whitespace().collect::<Vec<_>>().join(" ");
        let says = |pattern: &str| recorded::quoted(&flat, pattern);
        let number = |v: &Value| v.as_u64().unwrap().to_string();
        let across = number(&run["in_flight_across_failover"]);
        assert_eq!(
            says(r"(\d+) updates were in flight across the failover"),
            across
        );
        assert_eq!(
            says(r"its (\d+) indeterminate updates, (?:\d+) had been applied"),
            number(&plain["indeterminate"])
        );
        assert_eq!(
            says(r"indeterminate updates, (\d+) had been applied"),
            number(&plain["landed_unacknowledged"])
        );
        assert_eq!(
            says(r"applied twice: (\d+)\b"),
            number(&plain["applied_twice"])
        );
        assert_eq!(
            says(r"ends at (\d+), the number of distinct ids"),
            number(&idem["final"])
        );
        for advice in [
            "ch06-03-scripted-update.md",
            "ch07-00-benefits-and-costs.md",
        ] {
            let text = recorded::chapter(advice)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            let shown = recorded::quoted(
                &text,
                r"on the scripting server[^.]*?, (\d+) increments were applied twice",
            );
            assert_eq!(shown, number(&plain["applied_twice"]), "{advice}");
        }
        let output = recorded::output("server_failover");
        let heard = |pattern: &str| recorded::quoted(&output, pattern);
        assert_eq!(
            says(r"killed with (\d+) writes in flight through it"),
            heard(r"with (\d+) write\(s\) in flight through it")
        );
        assert_eq!(
            says(r"was primary\s+(\d+\.\d) s later"),
            heard(r"primary after (\d+\.\d)s")
        );
        let sum = |counter: &str, field: &str| -> u64 {
            runs.iter()
                .map(|r| r[counter][field].as_u64().unwrap())
                .sum()
        };
        let twice = says(
            r"In (?:\d+) failovers on the scripting server[^.]*?, (\d+) increments? (?:was|were) applied twice",
        );
        assert_eq!(says(r"In (\d+) failovers"), "10");
        assert_eq!(twice, sum(PLAIN, "applied_twice").to_string());
        let unanswered =
            says(r"and (\d+) (?:was|were) applied although (?:its|their) client");
        assert_eq!(unanswered, sum(PLAIN, "landed_unacknowledged").to_string());
        let across = says(r"with (\d+) updates in flight across the ten failovers");
        let total: u64 = runs
            .iter()
            .map(|r| r["in_flight_across_failover"].as_u64().unwrap())
            .sum();
        assert_eq!(across, total.to_string());
    }
}
