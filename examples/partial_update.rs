//! Chapter 11, part 1: partial updates, with and without a condition.
//!
//! A partial update (`_update` with `doc`) merges its fields into the document: two clients
//! changing different fields both keep their change. But a partial document carries absolute
//! values: two clients that read balance 1000 and send `{"balance": 800}` and
//! `{"balance": 500}` are last-writer-wins, as in chapter 3. A condition (`if_seq_no`) or a
//! relative script fixes it. (`update_refusals` and `delete_recreate` are the chapter's other
//! programs.)
//!
//! Run it: `cargo run --example partial_update`. You should see each update and its answer,
//! the balance after each story (500 without a condition, 300 with one or with a script), and
//! one closing line. The script runs on a server with Painless (see the book's appendix,
//! "Which Elasticsearch").

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use elasticsearch::{Elasticsearch, UpdateParts};
use esbook::answer::Answer;
use esbook::doc::{self, Versioned};
use esbook::{Cluster, Needs};
use harness::report::{self, Claims};
use serde_json::{Value, json};

const INDEX: &str = "bank";
const ACCOUNT: &str = "12345";

#[tokio::main]
async fn main() -> ExitCode {
    let usage = "usage: cargo run --example partial_update (no flags)";
    harness::run_example(usage, Needs::Core, |cluster| async move {
        let scripting = cluster.for_needs(Needs::Scripting).await?;
        harness::report::ran_on(&scripting);
        partial_update(&cluster, &scripting, INDEX).await
    })
    .await
}

// ANCHOR: update_doc
/// A partial update of the account by `who`: the fields of `partial` replace
/// the same fields of the document, the others stay. With `seen`, only if the
/// account is still as it was read.
async fn update_doc(
    (client, index): (&Elasticsearch, &str),
    who: &str,
    seen: Option<&Versioned>,
    partial: Value,
) -> Result<Answer> {
    let mut update = client.update(UpdateParts::IndexId(index, ACCOUNT));
    let mut condition = String::new();
    if let Some(seen) = seen {
        update = update
            .if_seq_no(seen.seq_no)
            .if_primary_term(seen.primary_term);
        condition = format!(" if_seq_no={}", seen.seq_no);
    }
    let body = json!({ "doc": partial });
    let answer = Answer::of(update.body(body.clone()).send().await?).await?;
    println!("{who}: {body}{condition} -> {}", answer.summary());
    Ok(answer)
}
// ANCHOR_END: update_doc

// ANCHOR: trap
/// Both clients read balance 1000; each sends the balance it computed.
async fn same_field(to: (&Elasticsearch, &str)) -> Result<[Answer; 2]> {
    let seen_by_a = doc::read(to.0, to.1, ACCOUNT).await?;
    let seen_by_b = doc::read(to.0, to.1, ACCOUNT).await?;
    let a_balance = seen_by_a.number("balance")? - 200;
    let b_balance = seen_by_b.number("balance")? - 500;
    let a = update_doc(to, "A", None, json!({ "balance": a_balance })).await?;
    let b = update_doc(to, "B", None, json!({ "balance": b_balance })).await?;
    Ok([a, b])
}
// ANCHOR_END: trap

// ANCHOR: condition
/// The same withdrawals, each on the condition of the read it was computed
/// from; B, refused, reads again and sends its withdrawal on the new condition.
async fn same_field_on_condition(to: (&Elasticsearch, &str)) -> Result<Answer> {
    let withdraw = async |who, seen: &Versioned, amount: i64| {
        let balance = seen.number("balance")? - amount;
        update_doc(to, who, Some(seen), json!({ "balance": balance })).await
    };
    let seen_by_a = doc::read(to.0, to.1, ACCOUNT).await?;
    let seen_by_b = doc::read(to.0, to.1, ACCOUNT).await?;
    withdraw("A", &seen_by_a, 200).await?;
    let refused = withdraw("B", &seen_by_b, 500).await?;
    let seen_again = doc::read(to.0, to.1, ACCOUNT).await?;
    println!("B reads again: balance {}", seen_again.number("balance")?);
    withdraw("B", &seen_again, 500).await?;
    Ok(refused)
}
// ANCHOR_END: condition

// ANCHOR: relative
/// Both withdrawals as scripts that subtract from whatever the balance is
/// when they run: no read, no condition.
async fn relative_withdrawals(client: &Elasticsearch, index: &str) -> Result<()> {
    for amount in [200, 500] {
        let response = client
            .update(UpdateParts::IndexId(index, ACCOUNT))
            .retry_on_conflict(10)
            .body(json!({
                "script": {
                    "source": "ctx._source.balance -= params.amount",
                    "params": { "amount": amount }
                }
            }))
            .send()
            .await?;
        let answer = Answer::of(response).await?;
        println!(
            "withdraw {amount}: balance -= {amount} -> {}",
            answer.summary()
        );
    }
    Ok(())
}
// ANCHOR_END: relative

/// The chapter in order, each story on account 12345 of a fresh index.
async fn partial_update(
    core: &Cluster,
    scripting: &Cluster,
    index: &str,
) -> Result<Claims> {
    let (started, mut claims) = (Instant::now(), Claims::new());
    let to = (&core.client, index);
    println!("-- 1. Two partial updates of different fields: both stay");
    open_account(to).await?;
    // ANCHOR: merge
    // A changes the e-mail address; B withdraws 500 from the balance it read.
    let seen_by_b = doc::read(to.0, index, ACCOUNT).await?;
    update_doc(to, "A", None, json!({ "email": "new@example.com" })).await?;
    let b_balance = seen_by_b.number("balance")? - 500;
    update_doc(to, "B", None, json!({ "balance": b_balance })).await?;
    let merged = doc::read(to.0, index, ACCOUNT).await?.source;
    println!("the account: {merged}");
    // ANCHOR_END: merge

    // ANCHOR: stories
    println!("\n-- 2. Two partial updates of the same field, from the same read");
    open_account(to).await?;
    let [a, b] = same_field(to).await?;
    let trapped = balance(to, "both withdrawals would leave 300").await?;

    println!("\n-- 3. The same partial updates, each on the condition of its read");
    open_account(to).await?;
    let stale = same_field_on_condition(to).await?;
    let guarded = balance(to, "as due").await?;

    println!("\n-- 4. A relative change instead, on {scripting}");
    let to_scripting = (&scripting.client, index);
    open_account(to_scripting).await?;
    relative_withdrawals(&scripting.client, index).await?;
    let relative = balance(to_scripting, "as due").await?;
    // ANCHOR_END: stories

    let merged = merged["email"] == "new@example.com" && merged["balance"] == 500;
    let lost = a.status == 200 && b.status == 200 && trapped == 500;
    let conflict = stale.status == 409
        && stale.error_type() == "version_conflict_engine_exception";
    let checks = [
        (merged, "different fields merge: both changes stay"),
        (lost, "same field, no condition: A's withdrawal is lost"),
        (conflict, "B's stale conditional update is a 409"),
        (guarded == 300, "with a condition, 300"),
        (relative == 300, "with a relative script, 300"),
    ];
    for (holds, what) in checks {
        claims.check(holds, what);
    }
    let fields = json!({
        "example": "partial_update", "strategy": "partial_doc", "expected": 300,
        "final": trapped, "with_condition": guarded, "with_script": relative,
        "with_script_server_version": scripting.version, "conflict_status": stale.status,
    });
    report::result(core, started.elapsed(), fields);
    Ok(claims)
}

/// Account 12345 on a fresh index, balance 1000.
async fn open_account((client, index): (&Elasticsearch, &str)) -> Result<Value> {
    doc::fresh_index(client, index).await?;
    let account = json!({ "owner": "A. Client", "email": "old@example.com", "balance": 1000 });
    doc::put(client, index, ACCOUNT, account).await
}

/// Reads and prints the balance, with what it should be.
async fn balance(
    (client, index): (&Elasticsearch, &str),
    due: &str,
) -> Result<i64> {
    let balance = doc::read(client, index, ACCOUNT).await?.number("balance")?;
    println!("balance: {balance} ({due})");
    Ok(balance)
}

#[cfg(test)]
mod tests {
    use harness::recorded::{self, quoted};

    /// The recorded run is the one chapter 11 tells: a partial doc lost A's withdrawal where a
    /// condition or a script did not.
    #[test]
    fn the_recorded_run_is_the_one_the_chapter_tells() {
        let partial = recorded::result("partial_update", "strategy", "partial_doc");
        assert_eq!(partial["expected"], 300);
        assert_eq!(partial["final"], 500, "a partial doc lost A's withdrawal");
        assert_eq!(partial["with_condition"], 300);
        assert_eq!(partial["with_script"], 300);
        assert_eq!(partial["conflict_status"], 409);
        assert!(partial["with_script_server_version"].is_string());
        let output = recorded::output("partial_update");
        assert!(output.contains("balance: 500 (both withdrawals would leave 300)"));
        assert!(!output.contains("RESULT") && !output.contains("claim holds"));
    }

    /// Every number chapter 11 quotes from this run is the recorded one.
    #[test]
    fn the_chapter_quotes_the_recorded_run() {
        let chapter = recorded::chapter("ch11-00-partial-updates-and-deletes.md");
        let output = recorded::output("partial_update");
        let run = recorded::result("partial_update", "strategy", "partial_doc");
        let said = |pattern| quoted(&chapter, pattern);
        assert_eq!(
            said(r"the balance is \*\*(\d+)\*\* and A's"),
            run["final"].to_string()
        );
        let conditional = said(r"new condition\. The balance is \*\*(\d+)\*\*");
        assert_eq!(conditional, run["with_condition"].to_string());
        let scripted = said(r"no\s+condition, and the balance is \*\*(\d+)\*\*");
        assert_eq!(scripted, run["with_script"].to_string());
        assert_eq!(
            said(r"B's is a \*\*(\d+)\*\*"),
            run["conflict_status"].to_string()
        );
        let reason = said(
            r"chapter 4's, \*(required seqNo \[0\],\s+primary term \[1\]\. current document has seqNo \[1\] and primary term \[1\])\*",
        );
        let reason = reason.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(output.contains(&reason), "{reason}");
        let reread = said(r"B reads again \((\d+)\)");
        assert!(output.contains(&format!("B reads again: balance {reread}")));
    }
}
