//! Chapter 12, part 2: which bulk actions take a condition, and `retry_on_conflict`.
//!
//! Three items (`index`, `update`, `delete`), each naming a `_seq_no` its document has left
//! behind, come back as three 409 items inside one HTTP 200. A `create` item with `if_seq_no`
//! is not a failed item: the server refuses the whole request (HTTP 400), and the plain `index`
//! item beside it is not written either. An `update` item takes `retry_on_conflict`, but not
//! together with `if_seq_no`: that too sinks the whole request.
//!
//! Run it: `cargo run --example bulk_actions`. You should see each item's status, the two
//! refused requests with the server's words, and one closing line.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use elasticsearch::http::request::JsonBody;
use elasticsearch::{BulkOperation, BulkParts, Elasticsearch};
use esbook::answer::Answer;
use esbook::{Cluster, Needs, bulk, doc};
use harness::report::{self, Claims};
use serde_json::{Value, json};

const INDEX: &str = "stock";

#[tokio::main]
async fn main() -> ExitCode {
    let usage = "usage: cargo run --example bulk_actions (no flags)";
    harness::run_example(usage, Needs::Core, |cluster| async move {
        bulk_actions(&cluster, INDEX).await
    })
    .await
}

async fn bulk_actions(cluster: &Cluster, index: &str) -> Result<Claims> {
    let (started, client) = (Instant::now(), &cluster.client);
    // ANCHOR: actions
    doc::fresh_index(client, index).await?;
    for id in ["a", "b", "c"] {
        doc::put(client, index, id, json!({ "stock": 1 })).await?;
        doc::put(client, index, id, json!({ "stock": 2 })).await?; // past _seq_no 0
    }
    // Each item names a state that is gone: _seq_no 0 of its document.
    let stale: Vec<BulkOperation<Value>> = vec![
        BulkOperation::index(json!({ "stock": 0 }))
            .id("a")
            .if_seq_no(0)
            .if_primary_term(1)
            .into(),
        BulkOperation::update("b", json!({ "doc": { "stock": 0 } }))
            .if_seq_no(0)
            .if_primary_term(1)
            .into(),
        BulkOperation::delete("c")
            .if_seq_no(0)
            .if_primary_term(1)
            .into(),
    ];
    let answer = bulk::send(client, index, stale).await?;
    println!("a bulk of three stale items: HTTP {}", answer.status);
    for item in &answer.items {
        let error = item.body["error"]["type"].as_str().unwrap_or("");
        println!(
            "  {} {}: HTTP {} {error}",
            item.action, item.id, item.status
        );
    }
    // ANCHOR_END: actions

    // ANCHOR: create
    // The typed `create` item has no if_seq_no, so this request is written
    // out by hand: a conditional create, and a plain index of "e" beside it.
    let create: Vec<JsonBody<Value>> = vec![
        json!({ "create": { "_id": "d", "if_seq_no": 0, "if_primary_term": 1 } })
            .into(),
        json!({ "stock": 1 }).into(),
        json!({ "index": { "_id": "e" } }).into(),
        json!({ "stock": 1 }).into(),
    ];
    let refused = send(client, index, "a conditional create", create).await?;
    let e_written = doc::find(client, index, "e").await?.is_some();
    println!("  and \"e\", the plain index beside it, was written: {e_written}");
    // ANCHOR_END: create

    // ANCHOR: retry_on_conflict
    // An update item may retry itself on a conflict, from a fresh read...
    let retried = BulkOperation::update("b", json!({ "doc": { "stock": 3 } }))
        .retry_on_conflict(3)
        .into();
    let update = bulk::send(client, index, vec![retried]).await?;
    let item = &update.items[0];
    let result = item.body["result"].as_str().unwrap_or("");
    println!(
        "an update item with retry_on_conflict=3: {} {}: HTTP {} result={result}",
        item.action, item.id, item.status
    );
    // ...but not when it carries a condition, which a fresh read would void.
    let both: Vec<JsonBody<Value>> = vec![
        json!({ "update": { "_id": "b", "retry_on_conflict": 3,
                            "if_seq_no": 0, "if_primary_term": 1 } })
        .into(),
        json!({ "doc": { "stock": 4 } }).into(),
    ];
    let not_retried =
        send(client, index, "retry_on_conflict and if_seq_no", both).await?;
    // ANCHOR_END: retry_on_conflict

    let statuses: Vec<u16> = answer.items.iter().map(|i| i.status).collect();
    let line = report::result(
        cluster,
        started.elapsed(),
        json!({
            "example": "bulk_actions", "stale_item_statuses": statuses,
            "conditional_create_status": refused.status, "e_written": e_written,
            "retry_on_conflict_status": update.items[0].status,
            "retry_with_condition_status": not_retried.status,
        }),
    );
    let mut claims = Claims::new();
    for (key, value) in expected().as_object().into_iter().flatten() {
        claims.check(
            &line[key] == value,
            format!("{key} is {value}, not {}", line[key]),
        );
    }
    let actions: Vec<&str> =
        answer.items.iter().map(|i| i.action.as_str()).collect();
    let conflicts = answer.items.iter().all(|i| i.is_conflict());
    let what = "index, update and delete items: three version conflicts";
    claims.check(actions == ["index", "update", "delete"] && conflicts, what);
    for (answer, words) in [
        (&refused, "create operations do not support compare and set"),
        (
            &not_retried,
            "compare and write operations can not be retried",
        ),
    ] {
        let what = format!("the server said {words:?}");
        claims.check(answer.reason().contains(words), what);
    }
    Ok(claims)
}

/// What the chapter says of the run; the tests hold the recorded run to it.
fn expected() -> Value {
    json!({
        "stale_item_statuses": [409, 409, 409], "conditional_create_status": 400,
        "e_written": false, "retry_on_conflict_status": 200,
        "retry_with_condition_status": 400,
    })
}

// ANCHOR: send
/// Sends a bulk written out by hand and prints the answer as one line.
async fn send(
    client: &Elasticsearch,
    index: &str,
    what: &str,
    body: Vec<JsonBody<Value>>,
) -> Result<Answer> {
    let response = client
        .bulk(BulkParts::Index(index))
        .body(body)
        .send()
        .await?;
    let answer = Answer::of(response).await?;
    println!("a bulk with {what}: {}", answer.summary());
    Ok(answer)
}
// ANCHOR_END: send

#[cfg(test)]
mod tests {
    use super::*;
    use harness::recorded;

    /// The recorded output shows what chapter 12 says of it, in the server's words.
    #[test]
    fn the_recorded_output_is_the_one_the_chapter_tells() {
        let run = &recorded::results("bulk_actions")[0];
        assert_eq!(run["stale_item_statuses"], json!([409, 409, 409]));
        assert_eq!(run["conditional_create_status"], 400);
        assert_eq!(run["e_written"], false);
        assert_eq!(run["retry_on_conflict_status"], 200);
        assert_eq!(run["retry_with_condition_status"], 400);
        for (key, value) in expected().as_object().unwrap() {
            assert_eq!(&run[key], value, "{key}");
        }
        let output = recorded::output("bulk_actions");
        for words in [
            "a bulk of three stale items: HTTP 200",
            "index a: HTTP 409 version_conflict_engine_exception",
            "update b: HTTP 409 version_conflict_engine_exception",
            "delete c: HTTP 409 version_conflict_engine_exception",
            "HTTP 400 action_request_validation_exception: Validation Failed: 1: create \
             operations do not support compare and set. use index instead;",
            "was written: false",
            "retry_on_conflict=3: update b: HTTP 200 result=updated",
            "compare and write operations can not be retried",
        ] {
            assert!(output.contains(words), "bulk_actions.txt lacks {words:?}");
        }
        let chapter = recorded::chapter("ch12-00-bulk.md");
        let chapter = chapter.split_whitespace().collect::<Vec<_>>().join(" ");
        for words in [
            "create operations do not support compare and set. use index instead",
            "compare and write operations can not be retried",
        ] {
            assert!(
                chapter.contains(words),
                "chapter 12 no longer quotes {words:?}"
            );
        }
    }
}
