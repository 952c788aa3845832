//! Chapter 18: chapter 6's race, through a failover, with every write checked.
//!
//! Six clients increment two counters in a three-node cluster (one primary, two replicas).
//! Three of them do chapter 6's OCC increment (read, write `if_seq_no`/`if_primary_term`, retry
//! on a 409) on the document `plain`. The other three do an *idempotent* increment on the
//! document `idempotent`: each increment has an id, the document lists the ids it applied, and
//! a client that did not get an answer reads the document again to see whether its increment
//! landed before trying again.
//!
//! While they run, the node holding the primary is killed, at a moment when a write is in
//! flight through it; a replica is promoted; the clients on the dead node move to the others;
//! the node is started again and rejoins; the race goes on until the index is green again.
//!
//! Every attempt at a write is recorded with its outcome: acknowledged (2xx), conflicted (409),
//! not sent (connection refused) or indeterminate (timeout, connection reset, 5xx: it may or
//! may not have been applied). At the end the checker holds each counter to its history:
//!
//! - `plain`: `acknowledged <= final <= acknowledged + indeterminate` (no acknowledged increment
//!   lost, nothing applied that no attempt explains);
//! - `idempotent`: `final == distinct increment ids applied`, none applied twice, every
//!   acknowledged one present;
//! - all three copies of the shard hold the same documents.
//!
//! Run it: `cargo run --example failover_race`. Ten failovers in a row:
//! `cargo run --example failover_race -- --runs 10`. Flags: `--runs R`, `--clients N` (per
//! counter), `--timeout-ms T` (each request's deadline), `--think-ms P` (pause between one
//! client's increments). Each run prints a `RESULT` line; with several runs a last one sums
//! them up. It exits non-zero if a check fails in any run.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use elasticsearch::params::WaitForStatus;
use elasticsearch::{Elasticsearch, GetParts, IndexParts};
use harness::cli::Args;
use esbook::doc::{self, Versioned};
use harness::history::{self, History, Outcome};
use harness::nodes::{self, Failover, Nodes};
use harness::report::{self, Claims};
use esbook::retry::Backoff;
use serde_json::{Value, json};

const INDEX: &str = "failover_race";
const PLAIN: &str = "plain";
const IDEMPOTENT: &str = "idempotent";

/// One run's settings.
#[derive(Debug, Clone, Copy)]
struct Race {
    /// Clients per counter.
    clients: usize,
    /// Each request's deadline: past it the request is indeterminate.
    timeout: Duration,
    /// A client's pause between two increments.
    think: Duration,
    /// Tries per increment; long enough waits to outlast a failover.
    backoff: Backoff,
}

impl Default for Race {
    fn default() -> Race {
        Race {
            clients: 3,
            timeout: Duration::from_millis(2000),
            think: Duration::from_millis(50),
            backoff: Backoff {
                max_attempts: 50,
                base: Duration::from_millis(5),
                cap: Duration::from_millis(500),
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
        let defaults = Race::default();
        let runs: u32 = args.number("runs", 1, 1..=100)?;
        let race = Race {
            clients: args.number("clients", defaults.clients, 1..=20)?,
            timeout: Duration::from_millis(args.number(
                "timeout-ms",
                2000,
                100..=60_000,
            )?),
            think: Duration::from_millis(args.number("think-ms", 50, 0..=10_000)?),
            ..defaults
        };
        args.finish()?;
        let cluster = Nodes::connect(3).await?;
        println!(
            "Connected to Elasticsearch {} on {} nodes ({})",
            cluster.version,
            cluster.nodes.len(),
            cluster.source
        );
        let started = Instant::now();
        let mut claims = Claims::new();
        let mut totals = Totals::default();
        for run in 1..=runs {
            println!("\n== run {run} of {runs}");
            let outcome = failover_race(&cluster, INDEX, race, &mut claims).await?;
            totals.add(&outcome);
        }
        if runs > 1 {
            println!("\n== {runs} runs");
            report::result(
                &cluster.cluster(&cluster.nodes[0]),
                started.elapsed(),
                totals.fields(runs),
            );
            claims.check(
                totals.lost_acknowledged == 0,
                format!("in {runs} failovers no acknowledged increment was lost"),
            );
            claims.check(
                totals.applied_twice == 0 && totals.unexplained == 0,
                format!(
                    "in {runs} failovers no idempotent increment was applied twice, and every \
                     plain one counted twice followed a 409 in flight at the kill"
                ),
            );
        }
        claims.into_result()
    })
    .await
}

/// What one run found, for the sum over several.
#[derive(Debug, Default)]
struct Totals {
    increments: u64,
    acknowledged: u64,
    indeterminate: u64,
    lost_acknowledged: u64,
    counted_twice: u64,
    unexplained: u64,
    applied_twice: u64,
    denied_but_applied: u64,
}

impl Totals {
    fn add(&mut self, run: &Value) {
        let n = |v: &Value| v.as_u64().unwrap_or(0);
        for counter in [PLAIN, IDEMPOTENT] {
            self.acknowledged += n(&run[counter]["acknowledged"]);
            self.indeterminate += n(&run[counter]["indeterminate"]);
            self.lost_acknowledged += n(&run[counter]["lost_acknowledged"]);
            self.increments += n(&run[counter]["increments"]);
        }
        self.unexplained += n(&run[PLAIN]["unexplained"]);
        self.counted_twice += n(&run[PLAIN]["counted_twice"]);
        self.applied_twice += n(&run[IDEMPOTENT]["applied_twice"]);
        self.denied_but_applied += n(&run[IDEMPOTENT]["denied_but_applied"]);
    }

    fn fields(&self, runs: u32) -> Value {
        json!({
            "example": "failover_race",
            "runs": runs,
            "increments": self.increments,
            "acknowledged": self.acknowledged,
            "indeterminate": self.indeterminate,
            "lost_acknowledged": self.lost_acknowledged,
            "plain_counted_twice": self.counted_twice,
            "unexplained": self.unexplained,
            "applied_twice": self.applied_twice,
            "denied_but_applied": self.denied_but_applied,
        })
    }
}

/// Writes in flight through each node, so that the node can be killed while one is.
#[derive(Default)]
struct InFlight(HashMap<String, AtomicUsize>);

impl InFlight {
    fn new(cluster: &Nodes) -> InFlight {
        InFlight(
            cluster
                .nodes
                .iter()
                .map(|n| (n.name.clone(), AtomicUsize::new(0)))
                .collect(),
        )
    }

    fn count(&self, node: &str) -> usize {
        self.0.get(node).map_or(0, |n| n.load(Ordering::SeqCst))
    }

    fn change(&self, node: &str, up: bool) {
        if let Some(n) = self.0.get(node) {
            if up {
                n.fetch_add(1, Ordering::SeqCst);
            } else {
                n.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}

/// What the clients share: where the race stands.
struct Shared {
    in_flight: InFlight,
    /// Failovers begun (counted just before the kill) and over (counted once a new primary
    /// was promoted). A write sent before a failover was over and answered after it began was
    /// in flight at the kill: its answer may come from either side of it. (Counting the kill
    /// alone missed writes sent while the kill itself was under way, which a container kill
    /// can take a moment for.)
    failovers_begun: AtomicU64,
    failovers_over: AtomicU64,
    stop: AtomicBool,
    increments: AtomicU64,
}

/// One run: the race, the failover, the checks. Returns the run's `RESULT` fields.
async fn failover_race(
    cluster: &Nodes,
    index: &str,
    race: Race,
    claims: &mut Claims,
) -> Result<Value> {
    let started = Instant::now();
    let first = &cluster.nodes[0].client;
    doc::fresh_index(first, index).await?;
    nodes::replicate(first, index, 2, "10s").await?;
    doc::put(first, index, PLAIN, json!({ "counter": 0 })).await?;
    doc::put(first, index, IDEMPOTENT, json!({ "counter": 0, "ops": [] })).await?;
    let shared = Arc::new(Shared {
        in_flight: InFlight::new(cluster),
        failovers_begun: AtomicU64::new(0),
        failovers_over: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        increments: AtomicU64::new(0),
    });

    // ANCHOR: clients
    let mut clients = tokio::task::JoinSet::new();
    for i in 0..2 * race.clients {
        let idempotent = i % 2 == 1;
        // Spread over the nodes: some clients talk to the node that will die.
        let mut client = Failover::new(cluster, i);
        let (index, shared) = (index.to_string(), shared.clone());
        clients.spawn(async move {
            let mut history = History::new();
            let mut n = 0;
            while !shared.stop.load(Ordering::SeqCst) {
                n += 1;
                let op = format!("c{i}-{n}");
                if idempotent {
                    idempotent_increment(
                        &mut client,
                        &index,
                        &op,
                        race,
                        &shared,
                        &mut history,
                    )
                    .await?;
                } else {
                    plain_increment(
                        &mut client,
                        &index,
                        &op,
                        race,
                        &shared,
                        &mut history,
                    )
                    .await?;
                }
                shared.increments.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(race.think).await;
            }
            anyhow::Ok((idempotent, history))
        });
    }
    // ANCHOR_END: clients

    let fault = inject_failover(cluster, index, &shared).await;
    shared.stop.store(true, Ordering::SeqCst);
    let mut plain = History::new();
    let mut idempotent = History::new();
    while let Some(joined) = clients.join_next().await {
        let (is_idempotent, history) = joined.context("a client panicked")??;
        if is_idempotent {
            idempotent.merge(history);
        } else {
            plain.merge(history);
        }
    }
    let fault = fault?;
    let elapsed = started.elapsed();
    println!(
        "{} increments by {} clients in {:.1}s",
        shared.increments.load(Ordering::SeqCst),
        2 * race.clients,
        elapsed.as_secs_f64()
    );

    let survivor = cluster.other_than(&fault.killed);
    let checks = check(
        cluster,
        &survivor.client,
        index,
        &plain,
        &idempotent,
        claims,
    )
    .await?;
    let mut fields = json!({
        "example": "failover_race",
        "killed": fault.killed,
        "writes_in_flight_at_kill": fault.in_flight,
        "promotion_ms": fault.promotion.as_millis() as u64,
        "primary_term": fault.term,
    });
    fields[PLAIN] = checks[PLAIN].clone();
    fields[IDEMPOTENT] = checks[IDEMPOTENT].clone();
    fields["copies_agree"] = checks["copies_agree"].clone();
    report::result(&cluster.cluster(survivor), elapsed, fields.clone());
    Ok(fields)
}

/// What the failover did.
struct Fault {
    killed: String,
    in_flight: usize,
    promotion: Duration,
    term: i64,
}

/// Lets the race warm up (50 increments), kills the primary's node while a write is in flight through it,
/// waits for a new primary, starts the node again and waits until the index is green; then
/// lets the race run one more second.
async fn inject_failover(
    cluster: &Nodes,
    index: &str,
    shared: &Shared,
) -> Result<Fault> {
    tokio::time::sleep(Duration::from_secs(1)).await;
    let first = &cluster.nodes[0].client;
    let victim = nodes::primary_node(first, index)
        .await?
        .context("no started primary")?;
    // ANCHOR: kill_in_flight
    // Wait (a little) for a write in flight through the doomed node: the moment of interest.
    let deadline = Instant::now() + Duration::from_secs(3);
    while shared.in_flight.count(&victim) == 0 && Instant::now() < deadline {
        tokio::task::yield_now().await;
    }
    let in_flight = shared.in_flight.count(&victim);
    let killed = Instant::now();
    shared.failovers_begun.fetch_add(1, Ordering::SeqCst);
    cluster.kill(&victim).await?;
    // ANCHOR_END: kill_in_flight
    let survivor = &cluster.other_than(&victim).client;
    let (promoted, _) =
        nodes::wait_for_new_primary(survivor, index, &victim).await?;
    let promotion = killed.elapsed();
    shared.failovers_over.fetch_add(1, Ordering::SeqCst);
    let term = nodes::primary_term(survivor, index).await?;
    println!(
        "killed {victim} ({}) with {in_flight} write(s) in flight through it, after {} \
         increments; {promoted} primary after {:.1}s, term {term}",
        cluster.how_killed(),
        shared.increments.load(Ordering::SeqCst),
        promotion.as_secs_f64()
    );
    let restarting = Instant::now();
    cluster.restart(&victim).await?;
    let health = nodes::health(survivor, Some(index), WaitForStatus::Green).await?;
    println!(
        "{victim} back and the index {} {:.1}s later, after {} increments",
        health["status"].as_str().unwrap_or_default(),
        restarting.elapsed().as_secs_f64(),
        shared.increments.load(Ordering::SeqCst)
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(Fault {
        killed: victim,
        in_flight,
        promotion,
        term,
    })
}

// ANCHOR: plain
/// Chapter 6's OCC increment, with a deadline and a history. A write that got no
/// answer is not retried: it may have been applied, and a retry would count it again.
async fn plain_increment(
    client: &mut Failover,
    index: &str,
    op: &str,
    race: Race,
    shared: &Shared,
    history: &mut History,
) -> Result<()> {
    for attempt in 1..=race.backoff.max_attempts {
        let Some(seen) = read(client, index, PLAIN, race.timeout).await else {
            tokio::time::sleep(race.backoff.delay(attempt)).await;
            continue;
        };
        let next = json!({ "counter": seen.number("counter")? + 1 });
        match write(client, index, PLAIN, &seen, next, race, shared, op, history)
            .await?
        {
            Outcome::Acknowledged(_) | Outcome::Indeterminate(_) => return Ok(()),
            Outcome::Conflicted(_) | Outcome::NotSent(_) => {
                tokio::time::sleep(race.backoff.delay(attempt)).await
            }
        }
    }
    Ok(())
}
// ANCHOR_END: plain

// ANCHOR: idempotent
/// The same increment, made idempotent: the document lists the ids of the
/// increments it applied. Before every attempt the client reads the document;
/// if its id is there, the increment has landed, whatever the last answer was.
async fn idempotent_increment(
    client: &mut Failover,
    index: &str,
    op: &str,
    race: Race,
    shared: &Shared,
    history: &mut History,
) -> Result<()> {
    for attempt in 1..=race.backoff.max_attempts {
        let Some(seen) = read(client, index, IDEMPOTENT, race.timeout).await else {
            tokio::time::sleep(race.backoff.delay(attempt)).await;
            continue;
        };
        let mut ops = seen.source["ops"].as_array().cloned().unwrap_or_default();
        if ops.iter().any(|id| id == op) {
            return Ok(()); // landed, although no answer said so
        }
        ops.push(json!(op));
        let next = json!({ "counter": seen.number("counter")? + 1, "ops": ops });
        match write(
            client, index, IDEMPOTENT, &seen, next, race, shared, op, history,
        )
        .await?
        {
            Outcome::Acknowledged(_) => return Ok(()),
            // Conflicted, not sent, or unknown: the next read tells.
            _ => tokio::time::sleep(race.backoff.delay(attempt)).await,
        }
    }
    Ok(())
}
// ANCHOR_END: idempotent

// ANCHOR: write
/// One conditional write through the client's current node, recorded in the
/// history with whether a node was killed while it was in flight. After a
/// transport failure the client moves to the next node.
#[allow(clippy::too_many_arguments)]
async fn write(
    client: &mut Failover,
    index: &str,
    id: &str,
    seen: &Versioned,
    next: Value,
    race: Race,
    shared: &Shared,
    op: &str,
    history: &mut History,
) -> Result<Outcome> {
    let node = client.node().name.clone();
    let over_before = shared.failovers_over.load(Ordering::SeqCst);
    shared.in_flight.change(&node, true);
    let sent = client
        .node()
        .client
        .index(IndexParts::IndexId(index, id))
        .if_seq_no(seen.seq_no)
        .if_primary_term(seen.primary_term)
        .request_timeout(race.timeout)
        .body(next)
        .send()
        .await;
    shared.in_flight.change(&node, false);
    let across_kill = shared.failovers_begun.load(Ordering::SeqCst) > over_before;
    let outcome = history::outcome(sent).await?;
    history.record_across_fault(op, &node, &outcome, across_kill);
    if matches!(outcome, Outcome::NotSent(_) | Outcome::Indeterminate(_)) {
        client.move_on();
    }
    Ok(outcome)
}
// ANCHOR_END: write

/// A realtime GET through the client's current node, with the race's deadline; `None` (and
/// the next node) if it failed. Reads change nothing, so they are simply tried again.
async fn read(
    client: &mut Failover,
    index: &str,
    id: &str,
    timeout: Duration,
) -> Option<Versioned> {
    let response = client
        .node()
        .client
        .get(GetParts::IndexId(index, id))
        .request_timeout(timeout)
        .send()
        .await;
    let body = match response {
        Ok(response) if response.status_code().is_success() => {
            response.json::<Value>().await.ok()
        }
        _ => None,
    };
    let versioned = body.and_then(|body| {
        Some(Versioned {
            seq_no: body["_seq_no"].as_i64()?,
            primary_term: body["_primary_term"].as_i64()?,
            version: body["_version"].as_i64()?,
            source: body["_source"].clone(),
        })
    });
    if versioned.is_none() {
        client.move_on();
    }
    versioned
}

/// Holds both counters to their histories and compares the three copies; the checks'
/// numbers, by counter.
async fn check(
    cluster: &Nodes,
    client: &Elasticsearch,
    index: &str,
    plain: &History,
    idempotent: &History,
    claims: &mut Claims,
) -> Result<Value> {
    // ANCHOR: check
    let plain_final = doc::read(client, index, PLAIN).await?;
    let plain_check =
        history::counter_bounds(plain).check(plain_final.number("counter")? as u64);
    let idem_final = doc::read(client, index, IDEMPOTENT).await?;
    let applied: Vec<String> = idem_final.source["ops"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|id| id.as_str().map(str::to_string))
        .collect();
    let idem_check = history::check_ids(
        idempotent,
        idem_final.number("counter")? as u64,
        &applied,
    );
    // ANCHOR_END: check

    let counts = plain.counts();
    println!(
        "plain:      final={} acknowledged={} conflicted={} ({} in flight at the kill) \
         not_sent={} indeterminate={} -> {} <= {} <= {}",
        plain_check.final_count,
        counts.acknowledged,
        counts.conflicted,
        counts.conflicted_across_fault,
        counts.not_sent,
        counts.indeterminate,
        plain_check.bounds.low,
        plain_check.final_count,
        plain_check.bounds.high
    );
    let twice = plain_check
        .final_count
        .saturating_sub(counts.acknowledged + counts.indeterminate);
    if twice > 0 {
        println!(
            "  plain: {twice} more than acknowledged + indeterminate: a 409 answered a \
             write that had been applied, and its client applied it again"
        );
    }
    let idem_counts = idempotent.counts();
    println!(
        "idempotent: final={} distinct ids={} acknowledged={} conflicted={} ({} in flight at \
         the kill) not_sent={} indeterminate={}; landed unacknowledged={}, applied twice={}, \
         lost={}",
        idem_check.final_count,
        idem_check.distinct,
        idem_counts.acknowledged,
        idem_counts.conflicted,
        idem_counts.conflicted_across_fault,
        idem_counts.not_sent,
        idem_counts.indeterminate,
        idem_check.landed_unacknowledged.len(),
        idem_check.duplicates.len(),
        idem_check.missing.len()
    );
    for attempt in plain
        .indeterminate()
        .chain(idempotent.indeterminate())
        .take(3)
    {
        println!(
            "  indeterminate: {} on {}: {}",
            attempt.op,
            attempt.node,
            attempt.outcome.brief()
        );
    }
    for op in &idem_check.denied_but_applied {
        println!("  {op} was applied although no answer said so:");
        for attempt in idempotent.attempts().iter().filter(|a| &a.op == op) {
            println!(
                "    via {}{}: {}",
                attempt.node,
                if attempt.across_fault {
                    ", in flight at the kill"
                } else {
                    ""
                },
                attempt.outcome.brief()
            );
        }
    }

    let copies = local_copies(cluster, index).await?;
    let agree = copies.windows(2).all(|w| w[0].1 == w[1].1);
    for (node, docs) in &copies {
        println!("  {node}'s copy: {docs}");
    }

    claims.check(
        plain_check.lost == 0,
        format!(
            "plain: no acknowledged increment lost ({} acknowledged <= final {})",
            plain_check.bounds.low, plain_check.final_count
        ),
    );
    claims.check(
        plain_check.unexplained == 0,
        format!(
            "plain: final {} <= acknowledged + indeterminate + 409s in flight at the kill = {}",
            plain_check.final_count, plain_check.bounds.high
        ),
    );
    claims.check(
        idem_check.holds(),
        format!(
            "idempotent: final {} == distinct increments applied {}, none twice, none lost",
            idem_check.final_count, idem_check.distinct
        ),
    );
    if !idem_check.denied_but_applied.is_empty() {
        claims.check(
            idem_check.denied_across_fault == idem_check.denied_but_applied.len(),
            "idempotent: every increment applied despite a 409 got that 409 for a request in flight at the kill",
        );
    }
    claims.check(agree, "all three copies hold the same two documents");

    let mut plain_fields = json!({
        "increments": plain.attempts().iter().map(|a| &a.op).collect::<std::collections::BTreeSet<_>>().len(),
        "acknowledged": counts.acknowledged,
        "conflicted": counts.conflicted,
        "conflicted_in_flight_at_kill": counts.conflicted_across_fault,
        "not_sent": counts.not_sent,
        "indeterminate": counts.indeterminate,
        "final": plain_check.final_count,
        "lost_acknowledged": plain_check.lost,
        "counted_twice": twice,
        "unexplained": plain_check.unexplained,
    });
    plain_fields["held"] = json!(plain_check.holds());
    let mut idem_fields = idem_check.fields();
    idem_fields["increments"] = json!(
        idempotent
            .attempts()
            .iter()
            .map(|a| &a.op)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    );
    idem_fields["acknowledged"] = json!(idem_counts.acknowledged);
    idem_fields["indeterminate"] = json!(idem_counts.indeterminate);
    idem_fields["held"] = json!(idem_check.holds());
    Ok(json!({
        PLAIN: plain_fields,
        IDEMPOTENT: idem_fields,
        "copies_agree": agree,
    }))
}

/// Each node's own copy of the two documents (`preference=_local`): `_seq_no`,
/// `_primary_term` and counter of each.
async fn local_copies(
    cluster: &Nodes,
    index: &str,
) -> Result<Vec<(String, String)>> {
    let mut copies = Vec::new();
    for node in &cluster.nodes {
        let mut shown = Vec::new();
        for id in [PLAIN, IDEMPOTENT] {
            let response = node
                .client
                .get(GetParts::IndexId(index, id))
                .preference("_local")
                .send()
                .await?;
            let body =
                doc::expect_success(response, "reading a node's own copy").await?;
            shown.push(format!(
                "{id} counter={} _seq_no={} _primary_term={}",
                body["_source"]["counter"], body["_seq_no"], body["_primary_term"]
            ));
        }
        copies.push((node.name.clone(), shown.join(", ")));
    }
    Ok(copies)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One failover in the middle of the race: no acknowledged increment is lost, the plain
    /// counter lies within its bounds, the idempotent counter equals its distinct increments,
    /// and the copies agree.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failover_loses_no_acknowledged_increment() {
        let cluster = Nodes::connect(3).await.expect("a three-node cluster");
        let mut claims = Claims::new();
        let fields = failover_race(
            &cluster,
            "test-failover-race",
            Race::default(),
            &mut claims,
        )
        .await
        .expect("the race runs");
        assert!(claims.all_hold(), "{claims:?}");
        assert_eq!(fields[PLAIN]["lost_acknowledged"], 0, "{fields}");
        assert_eq!(fields[IDEMPOTENT]["lost_acknowledged"], 0, "{fields}");
        assert!(
            fields[PLAIN]["acknowledged"].as_u64().unwrap() > 0,
            "{fields}"
        );
    }
}
