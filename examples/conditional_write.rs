//! Chapter 4: the same two withdrawals, with optimistic concurrency control.
//!
//! The interleaving is the one from chapter 3 (A reads, B reads, A writes, B writes), but every
//! write carries the `_seq_no` and `_primary_term` its client read, as `if_seq_no` and
//! `if_primary_term`. A's write matches the document and succeeds. B's write names a state the
//! document has left, and Elasticsearch rejects it with HTTP 409 `version_conflict_engine_exception`.
//! B reads again, applies its withdrawal to the new balance and writes with the new numbers:
//! the balance ends at 300, both withdrawals applied.
//!
//! Run it: `cargo run --example conditional_write`
//!
//! It exits non-zero if B's stale write was not a 409 version conflict or the balance is not 300.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Result, bail};
use elasticsearch::{Elasticsearch, IndexParts};
use esbook::doc::{self, Outcome, Versioned};
use harness::report::{self, Claims};
use esbook::{Cluster, Needs};
use serde_json::{Value, json};

const INDEX: &str = "bank";
const ACCOUNT: &str = "12345";

const USAGE: &str = "usage: cargo run --example conditional_write (no flags)";

#[tokio::main]
async fn main() -> ExitCode {
    harness::run_example(USAGE, Needs::Core, |cluster| async move {
        conditional_write(&cluster, INDEX).await
    })
    .await
}

// ANCHOR: withdraw
/// Writes `new_balance` only if the account is still exactly as `seen` was read.
async fn withdraw_if_unchanged(
    client: &Elasticsearch,
    index: &str,
    seen: &Versioned,
    new_balance: i64,
) -> Result<Outcome> {
    let response = client
        .index(IndexParts::IndexId(index, ACCOUNT))
        .if_seq_no(seen.seq_no)
        .if_primary_term(seen.primary_term)
        .body(json!({ "balance": new_balance }))
        .send()
        .await?;
    doc::outcome(response).await
}
// ANCHOR_END: withdraw

/// Plays the scenario with conditional writes and checks that nothing was lost.
async fn conditional_write(cluster: &Cluster, index: &str) -> Result<Claims> {
    let started = Instant::now();
    doc::fresh_index(&cluster.client, index).await?;
    doc::put(&cluster.client, index, ACCOUNT, json!({ "balance": 1000 })).await?;
    println!("Account {ACCOUNT} opened with balance 1000\n");
    let client_a = cluster.client.clone();
    let client_b = cluster.client.clone();
    let mut claims = Claims::new();

    // ANCHOR: interleaving
    // 1. Both clients read the balance, with the _seq_no and _primary_term
    //    of that state.
    let seen_by_a = doc::read(&client_a, index, ACCOUNT).await?;
    let seen_by_b = doc::read(&client_b, index, ACCOUNT).await?;

    // 2. A writes first, on the condition that the account is still as A read it.
    let a_new_balance = seen_by_a.number("balance")? - 200;
    let a_outcome =
        withdraw_if_unchanged(&client_a, index, &seen_by_a, a_new_balance).await?;

    // 3. B writes on the same condition, which no longer holds.
    let b_new_balance = seen_by_b.number("balance")? - 500;
    let b_outcome =
        withdraw_if_unchanged(&client_b, index, &seen_by_b, b_new_balance).await?;
    // ANCHOR_END: interleaving

    println!(
        "A and B both read balance 1000 at _seq_no {}, _primary_term {}",
        seen_by_a.seq_no, seen_by_a.primary_term
    );
    let a_written = match &a_outcome {
        Outcome::Written(body) => body.clone(),
        Outcome::Conflict(error) => {
            bail!("A's write was rejected, which the story rules out: {error}")
        }
    };
    println!(
        "A wrote balance {a_new_balance} if_seq_no={}: {a_written}",
        seen_by_a.seq_no
    );
    let conflict = match &b_outcome {
        Outcome::Conflict(error) => error.clone(),
        Outcome::Written(_) => Value::Null,
    };
    claims.check(
        matches!(b_outcome, Outcome::Conflict(_)),
        "B's stale write was rejected with HTTP 409 version_conflict_engine_exception",
    );
    println!(
        "B's write of balance {b_new_balance} if_seq_no={} was rejected with HTTP 409:\n{}",
        seen_by_b.seq_no,
        serde_json::to_string_pretty(&conflict)?
    );
    let required = format!(
        "required seqNo [{}], primary term [{}]",
        seen_by_b.seq_no, seen_by_b.primary_term
    );
    let current = format!("current document has seqNo [{}]", a_written["_seq_no"]);
    let reason = conflict["reason"].as_str().unwrap_or_default();
    claims.check(
        reason.contains(&required) && reason.contains(&current),
        format!("the conflict names what B required ({required}) and what is there ({current})"),
    );

    // ANCHOR: retry
    // 4. B reads again and applies its withdrawal to what is there now.
    let seen_again = doc::read(&client_b, index, ACCOUNT).await?;
    let b_retry_balance = seen_again.number("balance")? - 500;
    let b_retry =
        withdraw_if_unchanged(&client_b, index, &seen_again, b_retry_balance)
            .await?;
    // ANCHOR_END: retry

    println!(
        "\nB read again: balance {} at _seq_no {}; wrote balance {b_retry_balance}: {}",
        seen_again.number("balance")?,
        seen_again.seq_no,
        match &b_retry {
            Outcome::Written(body) => body.to_string(),
            Outcome::Conflict(error) => format!("rejected again: {error}"),
        }
    );
    let final_balance = doc::read(&cluster.client, index, ACCOUNT)
        .await?
        .number("balance")?;
    let expected = 1000 - 200 - 500;
    println!("\nFinal balance: {final_balance} (expected {expected})\n");

    let acknowledged = [&a_outcome, &b_retry]
        .iter()
        .filter(|o| matches!(o, Outcome::Written(_)))
        .count();
    let conflicts = usize::from(matches!(b_outcome, Outcome::Conflict(_)));
    report::result(
        cluster,
        started.elapsed(),
        json!({
            "example": "conditional_write",
            "strategy": "occ",
            "expected": expected,
            "final": final_balance,
            "acknowledged": acknowledged,
            "conflicts": conflicts,
            // `doc::outcome` calls an answer a conflict only if it is an HTTP 409.
            "conflict_status": (conflicts > 0).then_some(409),
            "conflict_type": conflict["type"],
        }),
    );
    claims.check(
        acknowledged == 2,
        "both withdrawals were acknowledged in the end",
    );
    claims.check(
        final_balance == expected,
        format!("no withdrawal was lost: the balance is {expected} (it is {final_balance})"),
    );
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against a real Elasticsearch, the stale write is a 409 and the retried withdrawal lands.
    #[tokio::test]
    async fn with_occ_the_stale_write_is_rejected_and_nothing_is_lost() {
        let cluster = Cluster::connect(Needs::Core).await.expect("a cluster");
        let claims = conditional_write(&cluster, "test-conditional-write")
            .await
            .expect("the scenario runs");
        assert!(claims.all_hold(), "{claims:?}");
    }
}
