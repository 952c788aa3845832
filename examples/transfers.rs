//! Chapter 20: the limits of per-document OCC. A transfer between two accounts is two writes to
//! two documents, and a client can die between them.
//!
//! 1. **Unsafe**: debit Alice, then credit Bob, each with OCC. The client dies after the debit:
//!    100 is gone, and nothing on the server says where it went.
//! 2. **Safe**: the transfer is first recorded as a document of its own, created with
//!    `op_type=create` under the transfer's id (recording it twice is a 409, not a second
//!    transfer). Each account then applies it idempotently: the account lists the transfers it
//!    applied, and an OCC write adds the amount and the id together, or nothing. Last, the
//!    transfer is marked done. A recovery pass finishes every transfer still pending. The client
//!    is killed at every point in turn (before recording, after recording, after the debit,
//!    after the credit, not at all); after recovery the money is always all there, and each
//!    recorded transfer was applied exactly once. Running recovery again changes nothing.
//! 3. **Many at once**: 20 transfers among three accounts by four concurrent clients, each
//!    client dying at a different point; one recovery pass; every balance is what the recorded
//!    transfers say, and the total is unchanged.
//!
//! Run it: `cargo run --example transfers`. It exits non-zero if money is not conserved, or a
//! transfer is applied twice or lost, anywhere it should not be.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Result, bail};
use elasticsearch::indices::IndicesPutMappingParts;
use elasticsearch::{
    CreateParts, Elasticsearch, IndexParts, SearchParts, UpdateParts,
};
use esbook::doc::{self, Outcome};
use esbook::retry::until_written;
use harness::report::{self, Claims};
use esbook::retry::Backoff;
use esbook::{Cluster, Needs, indices};
use serde_json::json;

const ACCOUNTS: &str = "accounts";
const TRANSFERS: &str = "transfers";
const OPENING_BALANCE: i64 = 1000;

const USAGE: &str = "usage: cargo run --example transfers (no flags)";

#[tokio::main]
async fn main() -> ExitCode {
    harness::run_example(USAGE, Needs::Core, |cluster| async move {
        transfers(&cluster, "").await
    })
    .await
}

/// A transfer of `amount` from one account to another, under an id of its own.
#[derive(Debug, Clone)]
struct Transfer {
    id: String,
    from: String,
    to: String,
    amount: i64,
}

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
    /// The transfer document says `"state": "done"`.
    Done,
}
// ANCHOR_END: steps

impl Step {
    const ALL: [Step; 5] = [
        Step::Start,
        Step::Recorded,
        Step::Debited,
        Step::Credited,
        Step::Done,
    ];

    fn name(self) -> &'static str {
        match self {
            Step::Start => "before recording",
            Step::Recorded => "after recording",
            Step::Debited => "after the debit",
            Step::Credited => "after the credit",
            Step::Done => "never (completes)",
        }
    }
}

/// The index names, with `prefix` (tests use their own).
struct Indices {
    accounts: String,
    transfers: String,
}

async fn transfers(cluster: &Cluster, prefix: &str) -> Result<Claims> {
    let started = Instant::now();
    let client = &cluster.client;
    let ix = Indices {
        accounts: format!("{prefix}{ACCOUNTS}"),
        transfers: format!("{prefix}{TRANSFERS}"),
    };
    let mut claims = Claims::new();

    println!("-- 1. Unsafe: two writes, and a client that dies between them");
    open_accounts(client, &ix, &["alice", "bob"]).await?;
    // ANCHOR: unsafe
    move_money_unsafely(client, &ix.accounts, "alice", "bob", 100, true).await?;
    let left = balances(client, &ix.accounts).await?;
    // ANCHOR_END: unsafe
    let total: i64 = left.values().sum();
    println!(
        "alice -> bob 100: debit applied, then the client dies: {}; total {total} (was {})",
        show(&left),
        2 * OPENING_BALANCE
    );
    claims.check(
        total == 2 * OPENING_BALANCE - 100,
        "a client dying between debit and credit destroys the 100 in flight",
    );
    report::result(
        cluster,
        started.elapsed(),
        json!({
            "example": "transfers",
            "pattern": "unsafe",
            "crash": Step::Debited.name(),
            "total_before": 2 * OPENING_BALANCE,
            "total_after": total,
        }),
    );

    println!(
        "\n-- 2. Safe: a transfer document, idempotent applies, a recovery pass"
    );
    let mut conserved_every_time = true;
    for crash in Step::ALL {
        open_accounts(client, &ix, &["alice", "bob"]).await?;
        let transfer = Transfer {
            id: "t-1".into(),
            from: "alice".into(),
            to: "bob".into(),
            amount: 100,
        };
        let reached = transfer_money(client, &ix, &transfer, crash).await?;
        let after_crash = balances(client, &ix.accounts).await?;
        // ANCHOR: recover_twice
        let finished = recover(client, &ix).await?;
        let after_recovery = balances(client, &ix.accounts).await?;
        let again = recover(client, &ix).await?;
        let after_again = balances(client, &ix.accounts).await?;
        // ANCHOR_END: recover_twice
        let recorded = crash != Step::Start;
        let expected = if recorded {
            [("alice", 900), ("bob", 1100)]
        } else {
            [("alice", 1000), ("bob", 1000)]
        };
        let exactly_once = expected
            .iter()
            .all(|(name, balance)| after_recovery.get(*name) == Some(balance))
            && applied_once(client, &ix, std::slice::from_ref(&transfer), recorded)
                .await?;
        println!(
            "client dies {:17}: reached {:?}; {} (total {}) -> recovery finished {finished} -> {} \
             (total {}); again: {again} finished",
            crash.name(),
            reached,
            show(&after_crash),
            after_crash.values().sum::<i64>(),
            show(&after_recovery),
            after_recovery.values().sum::<i64>()
        );
        let conserved = after_recovery.values().sum::<i64>() == 2 * OPENING_BALANCE
            && after_again == after_recovery
            && again == 0
            && exactly_once;
        conserved_every_time &= conserved;
        claims.check(
            conserved,
            format!(
                "dies {}: after recovery the total is {} and the transfer applied {}",
                crash.name(),
                2 * OPENING_BALANCE,
                if recorded { "exactly once" } else { "not at all (never recorded)" }
            ),
        );
    }
    report::result(
        cluster,
        started.elapsed(),
        json!({
            "example": "transfers",
            "pattern": "transfer document",
            "crash_points": Step::ALL.len(),
            "conserved_every_time": conserved_every_time,
        }),
    );

    println!(
        "\n-- 3. Twenty transfers, four clients at once, each dying somewhere"
    );
    let names = ["alice", "bob", "carol"];
    open_accounts(client, &ix, &names).await?;
    let all: Vec<(Transfer, Step)> = (0..20)
        .map(|k| {
            let transfer = Transfer {
                id: format!("t-{k}"),
                from: names[k % 3].into(),
                to: names[(k + 1) % 3].into(),
                amount: 10 + k as i64,
            };
            (transfer, Step::ALL[k % Step::ALL.len()])
        })
        .collect();
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..4 {
        let mine: Vec<(Transfer, Step)> =
            all.iter().skip(worker).step_by(4).cloned().collect();
        let (client, ix) = (
            client.clone(),
            Indices {
                accounts: ix.accounts.clone(),
                transfers: ix.transfers.clone(),
            },
        );
        workers.spawn(async move {
            for (transfer, crash) in mine {
                transfer_money(&client, &ix, &transfer, crash).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(joined) = workers.join_next().await {
        joined??;
    }
    let before = balances(client, &ix.accounts).await?;
    let finished = recover(client, &ix).await?;
    let after = balances(client, &ix.accounts).await?;
    let recorded: Vec<Transfer> = all
        .iter()
        .filter(|(_, crash)| *crash != Step::Start)
        .map(|(t, _)| t.clone())
        .collect();
    let mut expected: BTreeMap<String, i64> = names
        .iter()
        .map(|n| (n.to_string(), OPENING_BALANCE))
        .collect();
    for t in &recorded {
        *expected.entry(t.from.clone()).or_default() -= t.amount;
        *expected.entry(t.to.clone()).or_default() += t.amount;
    }
    let total_opening = OPENING_BALANCE * names.len() as i64;
    println!(
        "after the clients: {} (total {}); recovery finished {finished} transfer(s); after: {} \
         (total {})",
        show(&before),
        before.values().sum::<i64>(),
        show(&after),
        after.values().sum::<i64>()
    );
    let once = applied_once(client, &ix, &recorded, true).await?;
    claims.check(
        after == expected && after.values().sum::<i64>() == total_opening && once,
        format!(
            "20 transfers, {} recorded: every balance is what they say, the total is still {total_opening}",
            recorded.len()
        ),
    );
    report::result(
        cluster,
        started.elapsed(),
        json!({
            "example": "transfers",
            "pattern": "concurrent",
            "transfers": all.len(),
            "recorded": recorded.len(),
            "finished_by_recovery": finished,
            "total_opening": total_opening,
            "total_after_crashes": before.values().sum::<i64>(),
            "total_after_recovery": after.values().sum::<i64>(),
            "balances_as_recorded": after == expected,
        }),
    );
    Ok(claims)
}

// ANCHOR: unsafe_fn
/// Debit, then credit, each an OCC write of its own. With `dies_between`, the
/// client dies after the debit: the credit is never sent.
async fn move_money_unsafely(
    client: &Elasticsearch,
    accounts: &str,
    from: &str,
    to: &str,
    amount: i64,
    dies_between: bool,
) -> Result<()> {
    add_to_balance(client, accounts, from, -amount).await?;
    if dies_between {
        return Ok(());
    }
    add_to_balance(client, accounts, to, amount).await
}
// ANCHOR_END: unsafe_fn

/// `balance += delta` with OCC, retried on conflict by chapter 6's bounded loop.
async fn add_to_balance(
    client: &Elasticsearch,
    accounts: &str,
    account: &str,
    delta: i64,
) -> Result<()> {
    let backoff = Backoff::default();
    let tally = until_written(backoff, || async {
        let seen = doc::read(client, accounts, account).await?;
        let mut next = seen.source.clone();
        next["balance"] = json!(seen.number("balance")? + delta);
        let response = client
            .index(IndexParts::IndexId(accounts, account))
            .if_seq_no(seen.seq_no)
            .if_primary_term(seen.primary_term)
            .body(next)
            .send()
            .await?;
        doc::outcome(response).await
    })
    .await?;
    if tally.failed > 0 {
        bail!(
            "{account}: gave up after {} conflicts",
            backoff.max_attempts
        );
    }
    Ok(())
}

// ANCHOR: transfer
/// The safe transfer, step by step; the client dies right after `dies_after`
/// (nothing it knew survives: recovery reads only the server). Returns the last
/// step reached.
async fn transfer_money(
    client: &Elasticsearch,
    ix: &Indices,
    t: &Transfer,
    dies_after: Step,
) -> Result<Step> {
    if dies_after == Step::Start {
        return Ok(Step::Start);
    }
    record(client, &ix.transfers, t).await?;
    if dies_after == Step::Recorded {
        return Ok(Step::Recorded);
    }
    apply(client, &ix.accounts, &t.from, &t.id, -t.amount).await?;
    if dies_after == Step::Debited {
        return Ok(Step::Debited);
    }
    apply(client, &ix.accounts, &t.to, &t.id, t.amount).await?;
    if dies_after == Step::Credited {
        return Ok(Step::Credited);
    }
    mark_done(client, &ix.transfers, &t.id).await?;
    Ok(Step::Done)
}

/// Records the transfer under its own id. `op_type=create` makes a second
/// recording (a client sending it again) a 409 instead of a second transfer.
async fn record(
    client: &Elasticsearch,
    transfers: &str,
    t: &Transfer,
) -> Result<()> {
    let response = client
        .create(CreateParts::IndexId(transfers, &t.id))
        .body(json!({
            "from": t.from, "to": t.to, "amount": t.amount, "state": "pending"
        }))
        .send()
        .await?;
    match response.status_code().as_u16() {
        201 | 409 => Ok(()),
        status => {
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            bail!("recording {}: HTTP {status}: {}", t.id, doc::reason(&body))
        }
    }
}

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
        let mut applied = seen.source["applied"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if applied.iter().any(|a| a == id) {
            // Already applied: by us before we died, or by recovery. Nothing to write.
            return Ok(Outcome::Written(json!({ "result": "noop" })));
        }
        applied.push(json!(id));
        let response = client
            .index(IndexParts::IndexId(accounts, account))
            .if_seq_no(seen.seq_no)
            .if_primary_term(seen.primary_term)
            .body(json!({
                "balance": seen.number("balance")? + delta,
                "applied": applied
            }))
            .send()
            .await?;
        doc::outcome(response).await
    })
    .await?;
    if tally.failed > 0 {
        bail!(
            "{account}: gave up applying {id} after {} conflicts",
            backoff.max_attempts
        );
    }
    Ok(())
}
// ANCHOR_END: transfer

/// Marks the transfer done. Two processes may do it at once; the second write
/// changes nothing that matters.
async fn mark_done(
    client: &Elasticsearch,
    transfers: &str,
    id: &str,
) -> Result<()> {
    let response = client
        .update(UpdateParts::IndexId(transfers, id))
        .body(json!({ "doc": { "state": "done" } }))
        .send()
        .await?;
    doc::expect_success(response, &format!("marking {id} done")).await?;
    Ok(())
}

// ANCHOR: recover
/// Finishes every transfer still pending: the same idempotent steps, from the
/// transfer document alone. Safe to run at any time, as often as you like.
/// Returns how many it finished.
async fn recover(client: &Elasticsearch, ix: &Indices) -> Result<usize> {
    // A search sees what the last refresh saw: refresh first.
    indices::refresh(client, &ix.transfers).await?;
    let response = client
        .search(SearchParts::Index(&[&ix.transfers]))
        .body(json!({ "query": { "term": { "state": "pending" } }, "size": 1000 }))
        .send()
        .await?;
    let found = doc::expect_success(response, "finding pending transfers").await?;
    let pending = found["hits"]["hits"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for hit in &pending {
        let (id, t) = (hit["_id"].as_str().unwrap_or_default(), &hit["_source"]);
        let amount = t["amount"].as_i64().unwrap_or_default();
        let (from, to) = (t["from"].as_str(), t["to"].as_str());
        let (Some(from), Some(to)) = (from, to) else {
            bail!("transfer {id} has no from/to: {t}");
        };
        apply(client, &ix.accounts, from, id, -amount).await?;
        apply(client, &ix.accounts, to, id, amount).await?;
        mark_done(client, &ix.transfers, id).await?;
    }
    Ok(pending.len())
}
// ANCHOR_END: recover

/// Fresh accounts with the opening balance, and no transfers.
async fn open_accounts(
    client: &Elasticsearch,
    ix: &Indices,
    names: &[&str],
) -> Result<()> {
    doc::fresh_index(client, &ix.accounts).await?;
    doc::fresh_index(client, &ix.transfers).await?;
    let response = client
        .indices()
        .put_mapping(IndicesPutMappingParts::Index(&[&ix.transfers]))
        .body(json!({ "properties": {
            "from": { "type": "keyword" }, "to": { "type": "keyword" },
            "amount": { "type": "long" }, "state": { "type": "keyword" }
        }}))
        .send()
        .await?;
    doc::expect_success(response, "mapping the transfers").await?;
    for name in names {
        doc::put(
            client,
            &ix.accounts,
            name,
            json!({ "balance": OPENING_BALANCE, "applied": [] }),
        )
        .await?;
    }
    Ok(())
}

/// Every account's balance, by name (realtime GETs of the accounts there are).
async fn balances(
    client: &Elasticsearch,
    accounts: &str,
) -> Result<BTreeMap<String, i64>> {
    let mut found = BTreeMap::new();
    for name in ["alice", "bob", "carol"] {
        if let Ok(account) = doc::read(client, accounts, name).await {
            found.insert(name.to_string(), account.number("balance")?);
        }
    }
    Ok(found)
}

/// Whether each account lists exactly the `recorded` transfers it is part of, each once
/// (with `recorded == false`: lists none of them).
async fn applied_once(
    client: &Elasticsearch,
    ix: &Indices,
    transfers: &[Transfer],
    recorded: bool,
) -> Result<bool> {
    for name in balances(client, &ix.accounts).await?.keys() {
        let account = doc::read(client, &ix.accounts, name).await?;
        let mut listed: Vec<String> = account.source["applied"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|id| id.as_str().map(str::to_string))
            .collect();
        listed.sort();
        let mut expected: Vec<String> = transfers
            .iter()
            .filter(|t| recorded && (&t.from == name || &t.to == name))
            .map(|t| t.id.clone())
            .collect();
        expected.sort();
        if listed != expected {
            return Ok(false);
        }
    }
    Ok(true)
}

fn show(balances: &BTreeMap<String, i64>) -> String {
    let shown: Vec<String> =
        balances.iter().map(|(n, b)| format!("{n} {b}")).collect();
    shown.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The unsafe transfer loses money when its client dies; the safe one conserves it
    /// whichever point the crash hits, alone and twenty at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn money_is_conserved_whichever_point_the_crash_hits() {
        let cluster = Cluster::connect(Needs::Core).await.expect("a cluster");
        let claims = match transfers(&cluster, "test-").await {
            Ok(claims) => claims,
            Err(error) => panic!("the transfers did not run: {error:#}"),
        };
        assert!(claims.all_hold(), "{claims:?}");
    }
}
