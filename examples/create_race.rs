//! Chapter 9: creating without clobbering.
//!
//! Five clients open account 12345 at once. Each checks with a GET that it does not exist (404
//! for all five), then writes it. With `op_type=index` all five writes succeed and the client
//! told "created" has lost its account; with `op_type=create` one gets 201 and the four others
//! 409 "document already exists". (`create_conditions` is the chapter's second program.)
//!
//! Run it: `cargo run --example create_race`. You should see each client's GET and write, who
//! holds the account after each race, and one closing line. It exits non-zero if the index
//! request stops losing the creator's account or the create request stops refusing the rest.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use elasticsearch::params::OpType;
use elasticsearch::{Elasticsearch, IndexParts};
use esbook::answer::Answer;
use esbook::{Cluster, Needs, doc};
use harness::report::{self, Claims};
use serde_json::{Value, json};
use tokio::sync::Barrier;

const INDEX: &str = "bank";
const ACCOUNT: &str = "12345";
const CLIENTS: usize = 5;

#[tokio::main]
async fn main() -> ExitCode {
    let usage = "usage: cargo run --example create_race (no flags)";
    harness::run_example(usage, Needs::Core, |cluster| async move {
        create_race(&cluster, INDEX).await
    })
    .await
}

// ANCHOR: open_account
/// Writes account 12345 for `owner`. `OpType::Index` creates it or replaces
/// what is there; `OpType::Create` creates it, or fails with 409 if it exists.
async fn open_account(
    client: &Elasticsearch,
    index: &str,
    op_type: OpType,
    owner: &str,
) -> Result<Answer> {
    let request = client.index(IndexParts::IndexId(index, ACCOUNT));
    let account = json!({ "owner": owner, "balance": 0 });
    let response = request.op_type(op_type).body(account).send().await?;
    Answer::of(response).await
}
// ANCHOR_END: open_account

// ANCHOR: race
/// What one client's GET saw and what its write was answered.
struct Attempt {
    owner: String,
    saw_missing: bool,
    answer: Answer,
}

/// Five clients check that the account does not exist, then write it. The
/// barrier holds each client until all five have seen "no such account".
async fn race(es: &Elasticsearch, index: &str, op: OpType) -> Result<Vec<Attempt>> {
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let mut clients = tokio::task::JoinSet::new();
    for n in 1..=CLIENTS {
        let (client, index) = (es.clone(), index.to_string());
        let barrier = barrier.clone();
        clients.spawn(async move {
            let owner = format!("client-{n}");
            let saw_missing = doc::find(&client, &index, ACCOUNT).await?.is_none();
            barrier.wait().await;
            let answer = open_account(&client, &index, op, &owner).await?;
            anyhow::Ok(Attempt {
                owner,
                saw_missing,
                answer,
            })
        });
    }
    let mut attempts = Vec::new();
    for attempt in clients.join_all().await {
        attempts.push(attempt?);
    }
    // The shard ordered the writes: show them in its order.
    attempts.sort_by_key(|a| a.answer.body["_seq_no"].as_i64().unwrap_or(i64::MAX));
    Ok(attempts)
}
// ANCHOR_END: race

/// The race, once with each `op_type`, on a fresh index each time.
async fn create_race(cluster: &Cluster, index: &str) -> Result<Claims> {
    let (client, mut claims) = (&cluster.client, Claims::new());
    // ANCHOR: races
    for (op_type, name) in [(OpType::Index, "index"), (OpType::Create, "create")] {
        let started = Instant::now();
        doc::fresh_index(client, index).await?;
        let write = format!("POST /{index}/_doc/{ACCOUNT}?op_type={name}");
        println!("-- {CLIENTS} clients: GET, then {write}");
        let attempts = race(client, index, op_type).await?;
        let stored = doc::read(client, index, ACCOUNT).await?.source;
        let fields = report_race(op_type, &attempts, &stored);
        check(&mut claims, cluster, started, fields);
    }
    // ANCHOR_END: races
    Ok(claims)
}

/// Prints a race in the shard's order, and who holds the account; returns the
/// race's result line.
fn report_race(op_type: OpType, attempts: &[Attempt], stored: &Value) -> Value {
    // ANCHOR: printed
    for a in attempts {
        let seen = if a.saw_missing { "404" } else { "found" };
        println!("{}: GET -> {seen}; POST -> {}", a.owner, a.answer.summary());
    }
    let holder = stored["owner"].as_str().unwrap_or_default();
    let creator = attempts.iter().find(|a| a.answer.status == 201);
    let creator = creator.map_or("", |a| &a.owner);
    println!("account {ACCOUNT} holds owner={holder}; told 201: {creator}\n");
    // ANCHOR_END: printed
    let count = |f: fn(&Attempt) -> bool| attempts.iter().filter(|a| f(a)).count();
    json!({
        "example": "create_race", "strategy": op_type, "clients": CLIENTS,
        "saw_missing": count(|a| a.saw_missing),
        "acknowledged": count(|a| a.answer.status < 300),
        "created": count(|a| a.answer.status == 201),
        "conflicts": count(|a| a.answer.status == 409),
        "already_exists": count(|a| {
            a.answer.error_type() == "version_conflict_engine_exception"
                && a.answer.reason().contains("document already exists")
        }),
        "holder_is_creator": holder == creator,
    })
}

/// What the chapter says of each result line: the tests hold the recorded run
/// to it too.
fn expected(strategy: &Value) -> Value {
    match strategy.as_str().unwrap_or_default() {
        "index" => json!({
            "clients": 5, "saw_missing": 5, "acknowledged": 5, "created": 1,
            "conflicts": 0, "holder_is_creator": false,
        }),
        _ => json!({
            "clients": 5, "saw_missing": 5, "acknowledged": 1, "created": 1,
            "conflicts": 4, "already_exists": 4, "holder_is_creator": true,
        }),
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

    /// The recorded races end as the chapter tells: with `op_type=index` all five writes
    /// are acknowledged, one created, and the creator lost its account; with
    /// `op_type=create` one is created and four are 409s, "document already exists".
    #[test]
    fn the_recorded_run_is_the_one_the_chapter_tells() {
        let run = |strategy| recorded::result("create_race", "strategy", strategy);
        let index = run("index");
        assert_eq!(index["clients"], 5);
        assert_eq!(index["saw_missing"], 5, "every client's GET saw no account");
        assert_eq!(index["acknowledged"], 5);
        assert_eq!(index["created"], 1);
        assert_eq!(index["conflicts"], 0);
        assert_eq!(
            index["holder_is_creator"], false,
            "the creator lost its account"
        );
        let create = run("create");
        assert_eq!(create["acknowledged"], 1);
        assert_eq!(create["created"], 1);
        assert_eq!(create["conflicts"], 4);
        assert_eq!(create["holder_is_creator"], true);
        for strategy in ["index", "create"] {
            let line = run(strategy);
            for (key, value) in expected(&line["strategy"]).as_object().unwrap() {
                assert_eq!(&line[key], value, "{strategy}: {key}");
            }
        }
        let output = recorded::output("create_race");
        let words = "document already exists (current version [1])";
        assert!(output.contains(words), "create_race.txt lacks {words:?}");
        assert!(!output.contains("RESULT") && !output.contains("claim holds"));
    }

    /// Every number chapter 9 quotes from the races is the recorded one.
    #[test]
    fn the_chapter_quotes_the_recorded_run() {
        let chapter = recorded::chapter("ch09-00-creating.md");
        let said = |pattern| quoted(&chapter, pattern);
        let run = |strategy| recorded::result("create_race", "strategy", strategy);
        let word =
            |n: u64| ["none", "one", "two", "three", "four", "five"][n as usize];
        let (index, create) = (run("index"), run("create"));
        let acknowledged = index["acknowledged"].as_u64().unwrap();
        assert_eq!(said(r"all (\w+) writes succeeded"), word(acknowledged));
        assert_eq!(said(r"replaced it \(HTTP (\d+)"), "200");
        let updated = acknowledged - index["created"].as_u64().unwrap();
        assert_eq!(said(r"the (\w+) others replaced it"), word(updated));
        let conflicts = create["conflicts"].as_u64().unwrap();
        assert_eq!(said(r"the (\w+) others got \*\*HTTP"), word(conflicts));
        assert_eq!(said(r"others got \*\*HTTP (\d+)"), "409");
        let output = recorded::output("create_race");
        let exists =
            said(r"\*(document already exists \(current version \[\d+\]\))\*");
        assert!(output.contains(&exists), "{exists}");
    }
}
