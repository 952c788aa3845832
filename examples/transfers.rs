//! Chapter 20: the limits of per-document OCC. A transfer is two writes to two documents,
//! and a client can die between them.
//!
//! Run it: `cargo run --example transfers`. You should see 100 lost by an unsafe transfer;
//! the total kept at 2000 by a transfer document, idempotent applies and recovery, wherever
//! the client dies; and twenty transfers by four dying clients, all accounted for.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Result, bail, ensure};
use elasticsearch::{CreateParts, Elasticsearch, IndexParts};
use elasticsearch::{SearchParts, UpdateParts};
use esbook::doc::{self, Outcome};
use esbook::retry::{Backoff, until_written};
use esbook::{Cluster, Needs, indices};
use harness::history::{self, Accounts, expected_accounts, show_accounts, total};
use harness::report::{self, Claims};
use serde_json::{Value, json};

const OPENING_BALANCE: i64 = 1000;

// ANCHOR: types
/// A transfer of `amount` from one account to another, under an id of its own.
#[derive(Debug, Clone)]
struct Transfer {
    id: String,
    from: String,
    to: String,
    amount: i64,
}

impl Transfer {
    fn new(id: &str, from: &str, to: &str, amount: i64) -> Transfer {
        let (id, from, to) = (id.into(), from.into(), to.into());
        Transfer {
            id,
            from,
            to,
            amount,
        }
    }
}

/// The two indices: `accounts` (one document per account) and `transfers`.
#[derive(Clone)]
struct Indices {
    accounts: String,
    transfers: String,
}

impl Indices {
    /// Fresh indices: accounts `names` with the opening balance and no transfer
    /// applied, and no transfers.
    async fn open(&self, client: &Elasticsearch, names: &[&str]) -> Result<()> {
        doc::fresh_index(client, &self.accounts).await?;
        doc::fresh_index(client, &self.transfers).await?;
        for name in names {
            let opening = json!({ "balance": OPENING_BALANCE, "applied": [] });
            doc::put(client, &self.accounts, name, opening).await?;
        }
        Ok(())
    }
}
// ANCHOR_END: types

// ANCHOR: apply
/// Applies transfer `id` to `account` once: the account lists the transfers it
/// applied, and one OCC write changes the balance and the list together.
async fn apply(
    client: &Elasticsearch,
    accounts: &str,
    account: &str,
    id: &str,
    delta: i64,
) -> Result<()> {
    let backoff = Backoff::default();
    let tally = until_written(backoff, || async {
        let seen = doc::read(client, accounts, account).await?;
        let listed = seen.source["applied"].as_array();
        let mut applied = listed.cloned().unwrap_or_default();
        if applied.contains(&json!(id)) {
            // Already applied: by us before we died, or by recovery. Nothing to write.
            return Ok(Outcome::Written(json!({ "result": "noop" })));
        }
        applied.push(json!(id));
        let balance = seen.number("balance")? + delta;
        let response = client
            .index(IndexParts::IndexId(accounts, account))
            .if_seq_no(seen.seq_no)
            .if_primary_term(seen.primary_term)
            .body(json!({ "balance": balance, "applied": applied }))
            .send()
            .await?;
        doc::outcome(response).await
    })
    .await?;
    ensure!(
        tally.failed == 0,
        "{account}: gave up on {id} after many conflicts"
    );
    Ok(())
}
// ANCHOR_END: apply

// ANCHOR: steps
/// The points a transfer goes through; the client may die right after any of
/// them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Nothing sent yet.
    Start,
    /// The transfer document exists, `"state": "pending"`.
    Recorded,
    /// The `from` account has applied it.
    Debited,
    /// The `to` account has applied it.
    Credited,
    /// The transfer document says `"state": "done"`: the client did not die.
    Done,
}

const STEPS: [Step; 5] = [
    Step::Start,
    Step::Recorded,
    Step::Debited,
    Step::Credited,
    Step::Done,
];
// ANCHOR_END: steps

// ANCHOR: transfer
/// The safe transfer, step by step; the client dies right after `dies_after`
/// (nothing it knew survives: recovery reads only the server).
async fn transfer_money(
    client: &Elasticsearch,
    ix: &Indices,
    t: &Transfer,
    dies_after: Step,
) -> Result<()> {
    if dies_after == Step::Start {
        return Ok(());
    }
    // op_type=create: recording it again is a 409, not a second transfer.
    let body = json!({ "from": t.from, "to": t.to, "amount": t.amount, "state": "pending" });
    let create = client.create(CreateParts::IndexId(&ix.transfers, &t.id));
    doc::outcome(create.body(body).send().await?).await?;
    if dies_after == Step::Recorded {
        return Ok(());
    }
    apply(client, &ix.accounts, &t.from, &t.id, -t.amount).await?;
    if dies_after == Step::Debited {
        return Ok(());
    }
    apply(client, &ix.accounts, &t.to, &t.id, t.amount).await?;
    if dies_after == Step::Credited {
        return Ok(());
    }
    mark_done(client, &ix.transfers, &t.id).await
}

/// Marks the transfer done (two processes may do it at once, harmlessly).
async fn mark_done(client: &Elasticsearch, index: &str, id: &str) -> Result<()> {
    let update = client.update(UpdateParts::IndexId(index, id));
    let done = json!({ "doc": { "state": "done" } });
    let response = update.body(done).send().await?;
    doc::expect_success(response, "marking a transfer done").await?;
    Ok(())
}
// ANCHOR_END: transfer

// ANCHOR: recover
/// Finishes every transfer still pending, from its document alone, by the same
/// idempotent steps: safe at any time, as often as you like. How many it finished.
async fn recover(client: &Elasticsearch, ix: &Indices) -> Result<usize> {
    // A search sees what the last refresh saw: refresh first.
    indices::refresh(client, &ix.transfers).await?;
    let pending = json!({ "term": { "state.keyword": "pending" } });
    let transfers = [ix.transfers.as_str()];
    let search = client.search(SearchParts::Index(&transfers));
    let body = json!({ "query": pending, "size": 1000 });
    let found = search.body(body).send().await?;
    let found = doc::expect_success(found, "finding pending transfers").await?;
    let hits: Vec<Value> = serde_json::from_value(found["hits"]["hits"].clone())?;
    for hit in &hits {
        let (id, t) = (hit["_id"].as_str().unwrap_or_default(), &hit["_source"]);
        let (from, to) = (t["from"].as_str(), t["to"].as_str());
        let (Some(from), Some(to), Some(amount)) = (from, to, t["amount"].as_i64())
        else {
            bail!("transfer {id} is not a transfer: {t}");
        };
        let t = Transfer::new(id, from, to, amount);
        apply(client, &ix.accounts, &t.from, &t.id, -t.amount).await?;
        apply(client, &ix.accounts, &t.to, &t.id, t.amount).await?;
        mark_done(client, &ix.transfers, &t.id).await?;
    }
    Ok(hits.len())
}
// ANCHOR_END: recover

/// Chapter 20's three parts; what they saw, for `check` and `report` below.
async fn transfers(client: &Elasticsearch, ix: &Indices) -> Result<Seen> {
    // ANCHOR: unsafe
    println!("-- 1. Unsafe: two writes, and a client that dies between them");
    ix.open(client, &["alice", "bob"]).await?;
    // Debit, then credit, each an OCC write of its own; the client dies in between:
    apply(client, &ix.accounts, "alice", "t-1", -100).await?; // and never credits bob
    let unsafe_left = balances(client, ix).await?;
    let shown = show_accounts(&unsafe_left);
    println!("alice -> bob 100, the client dies after the debit: {shown}");
    // ANCHOR_END: unsafe

    // ANCHOR: crash_points
    println!("\n-- 2. Safe: a transfer document, idempotent applies, recovery");
    let mut rows = Vec::new();
    for crash in STEPS {
        ix.open(client, &["alice", "bob"]).await?;
        let t = Transfer::new("t-1", "alice", "bob", 100);
        transfer_money(client, ix, &t, crash).await?;
        let after_crash = balances(client, ix).await?;
        let finished = recover(client, ix).await?;
        let recovered = balances(client, ix).await?;
        let again = recover(client, ix).await?;
        let crashed = show_accounts(&after_crash);
        println!("the client got to {crash:?}, then died: {crashed}");
        let shown = show_accounts(&recovered);
        println!("  recovery finished {finished}: {shown}; again: {again}");
        let after_again = balances(client, ix).await?;
        rows.push((crash, recovered, again, after_again));
    }
    // ANCHOR_END: crash_points

    // ANCHOR: concurrent
    println!("\n-- 3. Twenty transfers, four clients at once, dying anywhere");
    let names = ["alice", "bob", "carol"];
    ix.open(client, &names).await?;
    let mut all = Vec::new();
    for k in 0..20 {
        let (from, to) = (names[k % 3], names[(k + 1) % 3]);
        let t = Transfer::new(&format!("t-{k}"), from, to, 10 + k as i64);
        all.push((t, STEPS[k % 5]));
    }
    let mut clients = tokio::task::JoinSet::new();
    for n in 0..4 {
        let mine: Vec<_> = all.iter().skip(n).step_by(4).cloned().collect();
        let (client, ix) = (client.clone(), ix.clone());
        clients.spawn(async move {
            for (t, crash) in mine {
                transfer_money(&client, &ix, &t, crash).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = clients.join_next().await {
        done??;
    }
    let before = balances(client, ix).await?;
    let finished = recover(client, ix).await?;
    let after = balances(client, ix).await?;
    println!("after the clients: {}", show_accounts(&before));
    println!("recovery finished {finished}: {}", show_accounts(&after));
    // ANCHOR_END: concurrent

    let recorded = all.into_iter().filter(|(_, s)| *s != Step::Start);
    let recorded = recorded.map(|(t, _)| t).collect();
    Ok(Seen {
        unsafe_left,
        rows,
        recorded,
        finished,
        before,
        after,
    })
}

/// The accounts there are, of alice, bob and carol.
async fn balances(client: &Elasticsearch, ix: &Indices) -> Result<Accounts> {
    history::read_accounts(client, &ix.accounts, &["alice", "bob", "carol"]).await
}

const USAGE: &str = "usage: cargo run --example transfers (no flags)";

#[tokio::main]
async fn main() -> ExitCode {
    harness::run_example(USAGE, Needs::Core, |cluster| async move {
        let started = Instant::now();
        let ix = Indices {
            accounts: "accounts".into(),
            transfers: "transfers".into(),
        };
        let seen = transfers(&cluster.client, &ix).await?;
        let (claims, verdicts) = check(&seen);
        report(&cluster, &seen, verdicts, started.elapsed());
        Ok(claims)
    })
    .await
}

/// What the run saw (`rows`: per crash point, recovered, again, after again).
struct Seen {
    unsafe_left: Accounts,
    rows: Vec<(Step, Accounts, usize, Accounts)>,
    recorded: Vec<Transfer>,
    finished: usize,
    before: Accounts,
    after: Accounts,
}

/// Chapter 20's claims, and the `RESULT` lines' verdicts: conserved, as recorded.
fn check(s: &Seen) -> (Claims, [bool; 2]) {
    let mut claims = Claims::new();
    harness::check_each!(claims; total(&s.unsafe_left) == 2 * OPENING_BALANCE - 100);
    let (mut conserved, t1) = (true, [("t-1", "alice", "bob", 100)]);
    for (crash, recovered, again, after_again) in &s.rows {
        let applied = &t1[..usize::from(*crash != Step::Start)];
        let want = expected_accounts(&["alice", "bob"], OPENING_BALANCE, applied);
        let held = *recovered == want && *again == 0 && after_again == recovered;
        conserved &= held;
        claims.check(held, format!("dies after {crash:?}: conserved"));
    }
    let recorded = s.recorded.iter();
    let recorded: Vec<_> = recorded
        .map(|t| (&*t.id, &*t.from, &*t.to, t.amount))
        .collect();
    let names = ["alice", "bob", "carol"];
    let want = expected_accounts(&names, OPENING_BALANCE, &recorded);
    let as_recorded = s.after == want;
    harness::check_each!(claims; as_recorded && total(&s.after) == 3 * OPENING_BALANCE);
    (claims, [conserved, as_recorded])
}

/// The three `RESULT` lines (printed only with `OCC_RESULTS=1`).
fn report(cluster: &Cluster, s: &Seen, verdicts: [bool; 2], elapsed: Duration) {
    let [conserved, as_recorded] = verdicts;
    for mut line in [
        json!({ "pattern": "unsafe", "crash": "after the debit",
            "total_before": 2 * OPENING_BALANCE, "total_after": total(&s.unsafe_left) }),
        json!({ "pattern": "transfer document", "crash_points": s.rows.len(),
            "conserved_every_time": conserved }),
        json!({ "pattern": "concurrent", "transfers": 20, "recorded": s.recorded.len(),
            "finished_by_recovery": s.finished, "total_opening": 3 * OPENING_BALANCE,
            "total_after_crashes": total(&s.before), "total_after_recovery": total(&s.after),
            "balances_as_recorded": as_recorded }),
    ] {
        line["example"] = json!("transfers");
        report::result(cluster, elapsed, line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness::recorded;

    /// The recorded runs are chapter 20's: 100 lost by the unsafe transfer, money conserved at
    /// every crash point, and the concurrent run's numbers as the chapter quotes them.
    #[test]
    fn the_chapter_quotes_the_recorded_runs() {
        let unsafe_run = recorded::result("transfers", "pattern", "unsafe");
        let totals = (&unsafe_run["total_before"], &unsafe_run["total_after"]);
        assert_eq!(totals, (&json!(2000), &json!(1900)));
        let safe = recorded::result("transfers", "pattern", "transfer document");
        assert_eq!(safe["crash_points"], 5);
        assert_eq!(safe["conserved_every_time"], true);
        let c = recorded::result("transfers", "pattern", "concurrent");
        assert_eq!(c["total_after_recovery"], c["total_opening"]);
        assert_eq!(c["balances_as_recorded"], true);
        assert_ne!(
            c["total_after_crashes"], c["total_opening"],
            "money in flight: {c}"
        );

        let chapter = recorded::chapter("ch20-00-transfers.md");
        let says = |pattern: &str| recorded::quoted(&chapter, pattern);
        assert_eq!(
            says(r"the total is (\d+), and nothing"),
            unsafe_run["total_after"].to_string()
        );
        assert_eq!(
            says(r"total after recovery is (\d+)"),
            unsafe_run["total_before"].to_string()
        );
        assert_eq!(
            says(r"Right after the clients the total is\s+(\d+)"),
            c["total_after_crashes"].to_string()
        );
        assert_eq!(
            says(r"finishes the (\d+) transfers"),
            c["finished_by_recovery"].to_string()
        );
        assert_eq!(
            says(r"the total is (\d+) again"),
            c["total_opening"].to_string()
        );
        assert_eq!(
            (c["transfers"].as_u64(), c["recorded"].as_u64()),
            (Some(20), Some(16))
        );
        assert!(chapter.contains(
            "twenty transfers among three accounts, four clients at once"
        ));
        assert!(chapter.contains("so sixteen transfers exist"));
        let output = recorded::output("transfers");
        let recovered = r"  recovery finished \d+: .*\(total (\d+)\);";
        let recovered = recorded::quoted_all(&output, recovered);
        assert_eq!(recovered, ["2000"; 5], "every crash point ends at 2000");
    }
}
