//! Chapter 3: the lost update.
//!
//! Account 12345 holds 1000. Client A withdraws 200 and client B withdraws 500, but both read the
//! balance before either writes, and both write back what they computed without any condition.
//! The interleaving is fixed (A reads, B reads, A writes, B writes), so the loss happens every run:
//! the balance ends at 500 where 300 was due. A's withdrawal is gone, and both writes were
//! acknowledged.
//!
//! Run it: `cargo run --example lost_update`
//!
//! It exits non-zero if the update was *not* lost, since then the chapter would be wrong.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use esbook::doc;
use esbook::report::{self, Claims};
use esbook::{Cluster, Needs};
use serde_json::json;

const INDEX: &str = "bank";
const ACCOUNT: &str = "12345";

const USAGE: &str = "usage: cargo run --example lost_update (no flags)";

#[tokio::main]
async fn main() -> ExitCode {
    esbook::run_example(USAGE, Needs::Core, |cluster| async move {
        lost_update(&cluster, INDEX).await
    })
    .await
}

/// Plays the article's scenario on `index` and checks that A's withdrawal was lost.
async fn lost_update(cluster: &Cluster, index: &str) -> Result<Claims> {
    let started = Instant::now();
    doc::fresh_index(&cluster.client, index).await?;
    doc::put(&cluster.client, index, ACCOUNT, json!({ "balance": 1000 })).await?;
    println!("Account {ACCOUNT} opened with balance 1000\n");

    // Two clients: two handles on the same cluster, as two services would have.
    let client_a = cluster.client.clone();
    let client_b = cluster.client.clone();

    // ANCHOR: interleaving
    // 1. Both clients read the balance before either writes.
    let seen_by_a = doc::read(&client_a, index, ACCOUNT).await?;
    let seen_by_b = doc::read(&client_b, index, ACCOUNT).await?;

    // 2. Each computes its new balance from what it read...
    let a_new_balance = seen_by_a.number("balance")? - 200;
    let b_new_balance = seen_by_b.number("balance")? - 500;

    // 3. ...and writes it back with no condition: the last writer wins.
    let a_wrote = doc::put(
        &client_a,
        index,
        ACCOUNT,
        json!({ "balance": a_new_balance }),
    )
    .await?;
    let b_wrote = doc::put(
        &client_b,
        index,
        ACCOUNT,
        json!({ "balance": b_new_balance }),
    )
    .await?;
    // ANCHOR_END: interleaving

    println!(
        "A read  balance {} (_seq_no {}, _version {})",
        seen_by_a.number("balance")?,
        seen_by_a.seq_no,
        seen_by_a.version
    );
    println!(
        "B read  balance {} (_seq_no {}, _version {})",
        seen_by_b.number("balance")?,
        seen_by_b.seq_no,
        seen_by_b.version
    );
    println!("A wrote balance {a_new_balance}: {a_wrote}");
    println!("B wrote balance {b_new_balance}: {b_wrote}");

    let final_balance = doc::read(&cluster.client, index, ACCOUNT)
        .await?
        .number("balance")?;
    let expected = 1000 - 200 - 500;
    println!(
        "\nFinal balance: {final_balance} (both withdrawals applied would leave {expected})\n"
    );

    let acknowledged = [&a_wrote, &b_wrote]
        .iter()
        .filter(|w| w["result"] == "updated")
        .count();
    report::result(
        cluster,
        started.elapsed(),
        json!({
            "example": "lost_update",
            "strategy": "none",
            "expected": expected,
            "final": final_balance,
            "acknowledged": acknowledged,
            "conflicts": 0,
        }),
    );
    let mut claims = Claims::new();
    claims.check(
        acknowledged == 2,
        "Elasticsearch acknowledged both withdrawals",
    );
    claims.check(
        final_balance == 500,
        format!("the last writer won: the balance is 500 (it is {final_balance})"),
    );
    claims.check(
        final_balance != expected,
        format!("A's withdrawal of 200 was lost: {expected} was due"),
    );
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against a real Elasticsearch, the unconditional read-modify-write loses A's withdrawal.
    #[tokio::test]
    async fn without_occ_a_withdrawal_is_lost() {
        let cluster = Cluster::connect(Needs::Core).await.expect("a cluster");
        let claims = lost_update(&cluster, "test-lost-update")
            .await
            .expect("the scenario runs");
        assert!(claims.all_hold(), "{claims:?}");
    }
}
