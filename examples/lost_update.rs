//! Chapter 3: the lost update.
//!
//! Account 12345 holds 1000. Client A withdraws 200 and client B withdraws 500. Both read the
//! balance before either writes, and both write back what they computed, with no condition.
//!
//! Run it: `cargo run --example lost_update`. You should see both clients read balance 1000 at
//! `_seq_no` 0, both writes answered `updated`, and a final balance of 500 where both withdrawals
//! would leave 300: A's withdrawal is gone. The interleaving is fixed, so this happens every
//! run, and the example exits non-zero if it does not (chapter 3 would then be wrong).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Result;
use esbook::doc::{self, Versioned};
use esbook::{Cluster, Needs};
use harness::report::{self, Claims};
use serde_json::{Value, json};

// ANCHOR: lesson
const INDEX: &str = "bank";
const ACCOUNT: &str = "12345";

/// Plays the article's scenario: A reads, B reads, A writes, B writes, no condition.
async fn lost_update(cluster: &Cluster, index: &str) -> Result<Withdrawals> {
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
    println!("A read  {}", state(&seen_by_a)?);
    println!("B read  {}", state(&seen_by_b)?);

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
    println!("A wrote balance {a_new_balance}: {}", written(&a_wrote));
    let b_wrote = doc::put(
        &client_b,
        index,
        ACCOUNT,
        json!({ "balance": b_new_balance }),
    )
    .await?;
    println!("B wrote balance {b_new_balance}: {}", written(&b_wrote));
    // ANCHOR_END: interleaving

    let final_balance = doc::read(&cluster.client, index, ACCOUNT)
        .await?
        .number("balance")?;
    println!("\nFinal balance: {final_balance} (both withdrawals would leave 300)");
    Ok(Withdrawals {
        a_wrote,
        b_wrote,
        final_balance,
    })
}

/// What a read saw: `balance 1000 (_seq_no 0, _version 1)`.
fn state(seen: &Versioned) -> Result<String> {
    let balance = seen.number("balance")?;
    Ok(format!(
        "balance {balance} (_seq_no {}, _version {})",
        seen.seq_no, seen.version
    ))
}

/// What a write's answer says: `updated (_seq_no 1, _version 2)`.
fn written(answer: &Value) -> String {
    let result = answer["result"].as_str().unwrap_or("?");
    format!(
        "{result} (_seq_no {}, _version {})",
        answer["_seq_no"], answer["_version"]
    )
}
// ANCHOR_END: lesson

/// What the two writes were answered, and the balance they left.
struct Withdrawals {
    a_wrote: Value,
    b_wrote: Value,
    final_balance: i64,
}

const USAGE: &str = "usage: cargo run --example lost_update (no flags)";

#[tokio::main]
async fn main() -> ExitCode {
    harness::run_example(USAGE, Needs::Core, |cluster| async move {
        let started = Instant::now();
        let run = lost_update(&cluster, INDEX).await?;
        Ok(check(&cluster, &run, started.elapsed()))
    })
    .await
}

/// The chapter's claims about the run, checked quietly, and its machine-readable result.
fn check(cluster: &Cluster, run: &Withdrawals, elapsed: Duration) -> Claims {
    let expected = 1000 - 200 - 500;
    let acknowledged = [&run.a_wrote, &run.b_wrote]
        .iter()
        .filter(|w| w["result"] == "updated")
        .count();
    report::result(
        cluster,
        elapsed,
        json!({
            "example": "lost_update",
            "strategy": "none",
            "expected": expected,
            "final": run.final_balance,
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
        run.final_balance == 500,
        format!(
            "the last writer won: the balance is 500 (it is {})",
            run.final_balance
        ),
    );
    claims.check(
        run.final_balance != expected,
        format!("A's withdrawal of 200 was lost: {expected} was due"),
    );
    claims
}

#[cfg(test)]
mod tests {
    use harness::recorded::{self, quoted, quoted_all};

    /// The recorded run lost A's withdrawal: 500 where 300 was due, both writes acknowledged.
    #[test]
    fn the_recorded_run_lost_the_update() {
        let run = recorded::result("lost_update", "strategy", "none");
        assert_eq!(
            (run["expected"].as_i64(), run["final"].as_i64()),
            (Some(300), Some(500))
        );
        assert_eq!(run["acknowledged"], 2);
    }

    /// Chapter 3 quotes the recorded run's numbers: the balances, and the `_seq_no` and
    /// `_version` of each read and write.
    #[test]
    fn chapter_3_quotes_the_recorded_run() {
        let chapter = recorded::chapter("ch03-00-lost-update.md");
        let output = recorded::output("lost_update");
        let run = recorded::result("lost_update", "strategy", "none");
        assert_eq!(
            quoted(&chapter, r"ends at \*\*(\d+)\*\*"),
            run["final"].to_string()
        );
        assert_eq!(
            quoted(&chapter, r"should have left \*\*(\d+)\*\*"),
            run["expected"].to_string()
        );
        let reads = quoted_all(&output, r"read  balance 1000 \(_seq_no (\d+),");
        assert_eq!(reads, ["0", "0"]);
        assert_eq!(
            quoted(&chapter, r"from the state it read, `_seq_no` (\d+)"),
            reads[1]
        );
        let writes = quoted_all(
            &output,
            r"wrote balance \d+: updated \((_seq_no \d+, _version \d+)\)",
        );
        let prose: Vec<String> =
            quoted_all(&chapter, r"became\s+(`_seq_no` \d+ \(`_version` \d+\))")
                .iter()
                .map(|p| p.replace('`', "").replace(" (", ", ").replace(')', ""))
                .collect();
        assert_eq!((writes.len(), &prose), (2, &writes));
        assert!(
            output
                .contains("Final balance: 500 (both withdrawals would leave 300)")
        );
    }
}
