//! Chapter 9, part 2: the `_create` endpoint, conditions on a document that does not exist,
//! and ids the server chooses.
//!
//! `_create` sent twice: 201, then 409. `if_seq_no` on a missing document: 409; on a create:
//! 400; when it holds: 200, never 201. `POST /bank/_doc` sent twice: two documents.
//!
//! Run it: `cargo run --example create_conditions`. You should see every request with the
//! server's answer, how many documents the two POSTs left, and one closing line.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use elasticsearch::http::response::Response;
use elasticsearch::params::OpType;
use elasticsearch::{CreateParts, Elasticsearch, IndexParts};
use esbook::answer::Answer;
use esbook::{Cluster, Needs, doc, indices};
use harness::report::{self, Claims};
use serde_json::{Value, json};

const INDEX: &str = "bank";
const ACCOUNT: &str = "12345";

#[tokio::main]
async fn main() -> ExitCode {
    let usage = "usage: cargo run --example create_conditions (no flags)";
    harness::run_example(usage, Needs::Core, |cluster| async move {
        create_conditions(&cluster, INDEX).await
    })
    .await
}

// ANCHOR: create
/// Opens account 12345 with the `_create` endpoint, twice: the second is the
/// retry of a client that did not see the first answer.
async fn create_twice(client: &Elasticsearch, index: &str) -> Result<Answer> {
    let account = json!({ "owner": "client-6", "balance": 0 });
    let request = || client.create(CreateParts::IndexId(index, ACCOUNT));
    shown(request().body(account.clone()).send().await?).await?;
    shown(request().body(account).send().await?).await
}
// ANCHOR_END: create

// ANCHOR: conditions
/// A condition needs a document to compare with, cannot go on a create, and
/// when it holds the answer is 200.
async fn conditions(client: &Elasticsearch, index: &str) -> Result<[Answer; 3]> {
    let account = json!({ "owner": "client-7", "balance": 0 });
    // ANCHOR: missing
    // Account 67890 does not exist: there is no _seq_no to compare with.
    let request = client.index(IndexParts::IndexId(index, "67890"));
    let request = request.if_seq_no(0).if_primary_term(1);
    let missing = shown(request.body(account.clone()).send().await?).await?;
    // ANCHOR_END: missing
    // ANCHOR: exists
    // A create with a condition (the typed `create` call has no `if_seq_no`).
    let request = client.index(IndexParts::IndexId(index, "67890"));
    let request = request.op_type(OpType::Create).if_seq_no(0);
    let request = request.if_primary_term(1).body(account.clone());
    let refused = shown(request.send().await?).await?;
    // Create it, read it, and write it on the condition just read.
    let request = client.create(CreateParts::IndexId(index, "67890"));
    shown(request.body(account).send().await?).await?;
    let seen = doc::read(client, index, "67890").await?;
    let request = client.index(IndexParts::IndexId(index, "67890"));
    let request = request.if_seq_no(seen.seq_no);
    let request = request.if_primary_term(seen.primary_term);
    let request = request.body(json!({ "owner": "client-7", "balance": 10 }));
    let conditional = shown(request.send().await?).await?;
    // ANCHOR_END: exists
    Ok([missing, refused, conditional])
}
// ANCHOR_END: conditions

// ANCHOR: generated_id
/// `POST /bank/_doc` lets the server choose the id. The first answer never
/// arrived (a timeout, say), so the client sends the same request again.
async fn post_twice(es: &Elasticsearch, index: &str) -> Result<(Vec<Answer>, u64)> {
    let account = json!({ "owner": "client-8", "balance": 0 });
    let mut answers = Vec::new();
    for _ in 0..2 {
        let request = es.index(IndexParts::Index(index)).body(account.clone());
        answers.push(shown(request.send().await?).await?);
    }
    indices::refresh(es, index).await?;
    let owned = json!({ "term": { "owner.keyword": "client-8" } });
    let stored = indices::count(es, index, owned).await?;
    println!("documents of client-8: {stored}");
    Ok((answers, stored))
}
// ANCHOR_END: generated_id

// ANCHOR: shown
/// Reads an answer and prints it after the request it answers.
async fn shown(response: Response) -> Result<Answer> {
    let url = response.url();
    let query = url.query().map(|q| format!("?{q}")).unwrap_or_default();
    let method = format!("{:?}", response.method()).to_uppercase();
    let request = format!("{method} {}{query}", url.path());
    let answer = Answer::of(response).await?;
    println!("{request} -> {}", answer.summary());
    Ok(answer)
}
// ANCHOR_END: shown

// ANCHOR: program
/// The chapter in order, on a fresh index.
async fn create_conditions(cluster: &Cluster, index: &str) -> Result<Claims> {
    let client = &cluster.client;
    doc::fresh_index(client, index).await?;
    let started = Instant::now();
    println!("-- The _create endpoint, sent twice");
    let create = create_twice(client, index).await?;
    println!("\n-- A condition needs a document");
    let [missing, refused, conditional] = conditions(client, index).await?;
    let answers = [create, missing, refused, conditional];
    let mut claims = check_conditions(cluster, started, &answers);
    println!("\n-- POST /{index}/_doc, sent again after a timeout");
    let started = Instant::now();
    let (posts, stored) = post_twice(client, index).await?;
    check_posts(cluster, started, (&posts, stored), &mut claims);
    Ok(claims)
}
// ANCHOR_END: program

/// The server's words and statuses for the create and the conditions.
fn check_conditions(
    cluster: &Cluster,
    started: Instant,
    answers: &[Answer; 4],
) -> Claims {
    let [create, missing, refused, conditional] = answers;
    let mut claims = Claims::new();
    for (answer, words) in [
        (create, "document already exists"),
        (missing, "but no document was found"),
        (refused, "create operations do not support compare and set"),
    ] {
        let what = format!("the server said {words:?}");
        claims.check(answer.reason().contains(words), what);
    }
    let fields = json!({
        "example": "create_race", "strategy": "conditions",
        "op_type_create_status": create.status,
        "if_seq_no_on_missing_status": missing.status,
        "if_seq_no_on_missing_type": missing.error_type(),
        "create_with_if_seq_no_status": refused.status,
        "conditional_success_status": conditional.status,
    });
    check(&mut claims, cluster, started, fields);
    claims
}

/// Two POSTs, two 201s, two different ids, two documents.
fn check_posts(
    cluster: &Cluster,
    started: Instant,
    (posts, stored): (&[Answer], u64),
    claims: &mut Claims,
) {
    let same_id = posts[0].body["_id"] == posts[1].body["_id"];
    let fields = json!({
        "example": "create_race", "strategy": "generated_id", "posts": posts.len(),
        "created": posts.iter().filter(|a| a.status == 201).count(),
        "distinct_ids": if same_id { 1 } else { 2 }, "stored": stored,
    });
    check(claims, cluster, started, fields);
}

/// What the chapter says of each result line; the tests hold the recorded run
/// to it too.
fn expected(strategy: &Value) -> Value {
    match strategy.as_str().unwrap_or_default() {
        "conditions" => json!({
            "op_type_create_status": 409, "if_seq_no_on_missing_status": 409,
            "if_seq_no_on_missing_type": "version_conflict_engine_exception",
            "create_with_if_seq_no_status": 400, "conditional_success_status": 200,
        }),
        _ => json!({ "posts": 2, "created": 2, "distinct_ids": 2, "stored": 2 }),
    }
}

/// Prints the result line (with `OCC_RESULTS=1`) and holds it to [`expected`].
fn check(claims: &mut Claims, cluster: &Cluster, started: Instant, fields: Value) {
    let line = report::result(cluster, started.elapsed(), fields);
    let strategy = &line["strategy"];
    for (key, value) in expected(strategy).as_object().into_iter().flatten() {
        let what = format!("{strategy}: {key} is {value}, not {}", line[key]);
        claims.check(&line[key] == value, what);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness::recorded::{self, quoted};

    /// The recorded run is the one chapter 9 tells, in the server's words.
    #[test]
    fn the_recorded_run_is_the_one_the_chapter_tells() {
        let run =
            |strategy| recorded::result("create_conditions", "strategy", strategy);
        let conditions = run("conditions");
        assert_eq!(conditions["example"], "create_race");
        assert_eq!(conditions["op_type_create_status"], 409);
        assert_eq!(conditions["if_seq_no_on_missing_status"], 409);
        assert_eq!(
            conditions["if_seq_no_on_missing_type"],
            "version_conflict_engine_exception"
        );
        assert_eq!(conditions["create_with_if_seq_no_status"], 400);
        assert_eq!(conditions["conditional_success_status"], 200);
        for strategy in ["conditions", "generated_id"] {
            let line = run(strategy);
            for (key, value) in expected(&line["strategy"]).as_object().unwrap() {
                assert_eq!(&line[key], value, "{strategy}: {key}");
            }
        }
        let output = recorded::output("create_conditions");
        for words in [
            "document already exists (current version [1])",
            "but no document was found",
            "create operations do not support compare and set",
        ] {
            assert!(
                output.contains(words),
                "create_conditions.txt lacks {words:?}"
            );
        }
        assert!(!output.contains("RESULT") && !output.contains("claim holds"));
    }

    /// Every number chapter 9 quotes from this run is the recorded one.
    #[test]
    fn the_chapter_quotes_the_recorded_run() {
        let chapter = recorded::chapter("ch09-00-creating.md");
        let said = |pattern| quoted(&chapter, pattern);
        let run =
            |strategy| recorded::result("create_conditions", "strategy", strategy);
        let conditions = run("conditions");
        let status = |key: &str| conditions[key].to_string();
        let refused = said(r"with \*\*HTTP (\d+)\*\* and \*create operations");
        assert_eq!(refused, status("create_with_if_seq_no_status"));
        let missing = said(r"is a \*\*(\d+)\*\*, not a creation");
        assert_eq!(missing, status("if_seq_no_on_missing_status"));
        let holds = said(r"the answer is\s+\*\*HTTP (\d+)\*\*");
        assert_eq!(holds, status("conditional_success_status"));
        let again = said(r"the second, a \*\*(\d+)\*\*");
        assert_eq!(again, status("op_type_create_status"));
        let posts = run("generated_id");
        assert_eq!(said(r"(\w+) \*\*201\*\* answers"), "two");
        assert_eq!(posts["created"], 2);
        let stored = said(r"and \*\*(\d+)\*\*\s+documents for client-8");
        assert_eq!(stored, posts["stored"].to_string());
        let output = recorded::output("create_conditions");
        assert!(output.contains(&format!("documents of client-8: {stored}")));
    }
}
