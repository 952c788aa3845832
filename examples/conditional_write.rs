//! Chapter 4: the same two withdrawals, with optimistic concurrency control.
//!
//! Chapter 3's interleaving (A reads, B reads, A writes, B writes), but every write carries the
//! `_seq_no` and `_primary_term` its client read, as `if_seq_no` and `if_primary_term`.
//!
//! Run it: `cargo run --example conditional_write`. You should see A's write accepted, B's
//! rejected with HTTP 409 `version_conflict_engine_exception` (it required seqNo 0, the account
//! is at 1), B read again and write on the new condition, and a final balance of 300: both
//! withdrawals kept. It exits non-zero if the stale write was not a 409 or the balance not 300.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Result;
use elasticsearch::{Elasticsearch, IndexParts};
use esbook::doc::{self, Outcome, Versioned};
use esbook::{Cluster, Needs};
use harness::report::{self, Claims};
use serde_json::json;

const INDEX: &str = "bank";
const ACCOUNT: &str = "12345";

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

// ANCHOR: scenario
/// Plays chapter 3's interleaving with conditional writes, and B's retry after its 409.
async fn conditional_write(cluster: &Cluster, index: &str) -> Result<Withdrawals> {
    doc::fresh_index(&cluster.client, index).await?;
    doc::put(&cluster.client, index, ACCOUNT, json!({ "balance": 1000 })).await?;
    println!("Account {ACCOUNT} opened with balance 1000\n");
    let client_a = cluster.client.clone();
    let client_b = cluster.client.clone();

    // ANCHOR: interleaving
    // 1. Both clients read the balance, with the _seq_no and _primary_term
    //    of that state.
    let seen_by_a = doc::read(&client_a, index, ACCOUNT).await?;
    let seen_by_b = doc::read(&client_b, index, ACCOUNT).await?;
    println!(
        "A and B both read balance 1000 at _seq_no {}, _primary_term {}",
        seen_by_b.seq_no, seen_by_b.primary_term
    );

    // 2. A writes first, on the condition that the account is still as A read it.
    let a_new_balance = seen_by_a.number("balance")? - 200;
    let a =
        withdraw_if_unchanged(&client_a, index, &seen_by_a, a_new_balance).await?;
    println!(
        "A wrote balance {a_new_balance} if_seq_no={}: {}",
        seen_by_a.seq_no,
        said(&a)
    );

    // 3. B writes on the same condition, which no longer holds.
    let b_new_balance = seen_by_b.number("balance")? - 500;
    let b =
        withdraw_if_unchanged(&client_b, index, &seen_by_b, b_new_balance).await?;
    println!(
        "B wrote balance {b_new_balance} if_seq_no={}: {}",
        seen_by_b.seq_no,
        said(&b)
    );
    // ANCHOR_END: interleaving

    // ANCHOR: retry
    // 4. B reads again and applies its withdrawal to what is there now.
    let seen_again = doc::read(&client_b, index, ACCOUNT).await?;
    let b_retry_balance = seen_again.number("balance")? - 500;
    let b_retry =
        withdraw_if_unchanged(&client_b, index, &seen_again, b_retry_balance)
            .await?;
    println!(
        "B read again: balance {} at _seq_no {}; wrote balance {b_retry_balance} if_seq_no={}: {}",
        seen_again.number("balance")?,
        seen_again.seq_no,
        seen_again.seq_no,
        said(&b_retry)
    );
    // ANCHOR_END: retry

    let final_balance = doc::read(&cluster.client, index, ACCOUNT)
        .await?
        .number("balance")?;
    println!("\nFinal balance: {final_balance} (both withdrawals would leave 300)");
    Ok(Withdrawals {
        a,
        b,
        b_retry,
        final_balance,
    })
}

/// What a conditional write was answered, in one line.
fn said(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Written(body) => format!(
            "{} (_seq_no {}, _version {})",
            body["result"].as_str().unwrap_or("?"),
            body["_seq_no"],
            body["_version"]
        ),
        Outcome::Conflict(error) => format!(
            "rejected with HTTP 409 {}: {}",
            error["type"].as_str().unwrap_or("?"),
            error["reason"].as_str().unwrap_or("?")
        ),
    }
}
// ANCHOR_END: scenario

/// What the three writes were answered, and the balance they left.
struct Withdrawals {
    a: Outcome,
    b: Outcome,
    b_retry: Outcome,
    final_balance: i64,
}

const USAGE: &str = "usage: cargo run --example conditional_write (no flags)";

#[tokio::main]
async fn main() -> ExitCode {
    harness::run_example(USAGE, Needs::Core, |cluster| async move {
        let started = Instant::now();
        let run = conditional_write(&cluster, INDEX).await?;
        Ok(check(&cluster, &run, started.elapsed()))
    })
    .await
}

/// The chapter's claims about the run, checked quietly, and its machine-readable result.
fn check(cluster: &Cluster, run: &Withdrawals, elapsed: Duration) -> Claims {
    let expected = 1000 - 200 - 500;
    let acknowledged = [&run.a, &run.b_retry]
        .iter()
        .filter(|o| matches!(o, Outcome::Written(_)))
        .count();
    let conflict = match &run.b {
        Outcome::Conflict(error) => error.clone(),
        Outcome::Written(_) => json!(null),
    };
    let conflicts = usize::from(!conflict.is_null());
    report::result(
        cluster,
        elapsed,
        json!({
            "example": "conditional_write",
            "strategy": "occ",
            "expected": expected,
            "final": run.final_balance,
            "acknowledged": acknowledged,
            "conflicts": conflicts,
            // `doc::outcome` calls an answer a conflict only if it is an HTTP 409.
            "conflict_status": (conflicts > 0).then_some(409),
            "conflict_type": conflict["type"],
        }),
    );
    let mut claims = Claims::new();
    claims.check(
        conflicts == 1,
        "B's stale write was rejected with HTTP 409 version_conflict_engine_exception",
    );
    // The account was the fresh index's first write (_seq_no 0), and A's the second.
    let reason = conflict["reason"].as_str().unwrap_or_default();
    claims.check(
        reason.ends_with("required seqNo [0], primary term [1]. current document has seqNo [1] and primary term [1]"),
        "the conflict names what B required (seqNo 0) and what is there (seqNo 1)",
    );
    claims.check(
        acknowledged == 2,
        "both withdrawals were acknowledged in the end",
    );
    claims.check(
        run.final_balance == expected,
        format!(
            "no withdrawal was lost: the balance is {expected} (it is {})",
            run.final_balance
        ),
    );
    claims
}

#[cfg(test)]
mod tests {
    use harness::recorded::{self, quoted};

    /// The recorded run kept both withdrawals, and its conflict was a 409 version conflict.
    #[test]
    fn the_recorded_run_kept_both_withdrawals() {
        let run = recorded::result("conditional_write", "strategy", "occ");
        assert_eq!(
            (run["expected"].as_i64(), run["final"].as_i64()),
            (Some(300), Some(300))
        );
        assert_eq!(run["conflict_status"], 409);
        assert_eq!(run["conflict_type"], "version_conflict_engine_exception");
        assert_eq!(
            (run["acknowledged"].as_i64(), run["conflicts"].as_i64()),
            (Some(2), Some(1))
        );
    }

    /// Chapter 4's step-by-step account quotes the recorded run: the numbers read, the numbers
    /// each write got, the conflict's reason word for word, and the final balance.
    #[test]
    fn chapter_4_quotes_the_recorded_run() {
        let chapter = recorded::chapter("ch04-00-conditional-writes.md");
        let output = recorded::output("conditional_write");
        let run = recorded::result("conditional_write", "strategy", "occ");
        assert_eq!(
            quoted(&chapter, r"ends at \*\*(\d+)\*\*"),
            run["final"].to_string()
        );
        let read =
            r"both read balance 1000 at `?_seq_no`? (\d+), `?_primary_term`? (\d+)";
        assert_eq!(quoted(&chapter, read), quoted(&output, read));
        let pair =
            r"both read balance 1000 at `?_seq_no`? \d+, `?_primary_term`? (\d+)";
        assert_eq!(quoted(&chapter, pair), quoted(&output, pair));
        assert_eq!(
            quoted(&chapter, r"accepted and becomes `_seq_no` (\d+)"),
            quoted(
                &output,
                r"A wrote balance 800 if_seq_no=\d+: updated \(_seq_no (\d+)"
            )
        );
        let reason = quoted(&chapter, r"\*(required seqNo [^*]+)\*");
        let reason = reason.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(output.contains(&reason), "the output has no {reason:?}");
        assert_eq!(
            quoted(&chapter, r"again\s+\(balance (\d+), `_seq_no` \d+\)"),
            quoted(&output, r"B read again: balance (\d+)")
        );
        assert_eq!(
            quoted(&chapter, r"again\s+\(balance \d+, `_seq_no` (\d+)\)"),
            quoted(&output, r"B read again: balance \d+ at _seq_no (\d+)")
        );
    }
}
