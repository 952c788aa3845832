//! Chapter 9: creating without clobbering.
//!
//! Five clients open account 12345 at once. Each checks with a GET that it does not exist (404
//! for all five), then writes it. With `PUT /bank/_doc/12345` all five writes succeed, one
//! "created" and four "updated", and the client told "created" has lost its account. With
//! `PUT /bank/_create/12345` (or `?op_type=create`) one gets 201 and the four others 409
//! "document already exists". Then: a condition (`if_seq_no`) needs a document to compare with,
//! and `POST /bank/_doc`, which lets the server choose the id, never conflicts, so sending it
//! twice stores two documents.
//!
//! Run it: `cargo run --example create_race`. You should see each client's GET and write, who
//! holds the account after each race, the refused requests with the server's words, and one
//! closing line. It exits non-zero if any of this does not hold.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use elasticsearch::params::OpType;
use elasticsearch::{CreateParts, Elasticsearch, IndexParts};
use esbook::answer::Answer;
use esbook::{Cluster, Needs, doc, indices};
use harness::report::{self, Claims};
use serde_json::json;
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
/// How a client writes an account it believes does not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    /// `PUT /bank/_doc/12345`: create, or replace what is there.
    Index,
    /// `PUT /bank/_create/12345`: create, or fail with 409 if it exists.
    Create,
}

async fn open_account(
    client: &Elasticsearch,
    index: &str,
    write: Write,
    owner: &str,
) -> Result<Answer> {
    let account = json!({ "owner": owner, "balance": 0 });
    let response = match write {
        Write::Index => {
            let request = client.index(IndexParts::IndexId(index, ACCOUNT));
            request.body(account).send().await?
        }
        Write::Create => {
            let request = client.create(CreateParts::IndexId(index, ACCOUNT));
            request.body(account).send().await?
        }
    };
    Answer::of(response).await
}
// ANCHOR_END: open_account

// ANCHOR: race
/// Five clients check that the account does not exist, then write it.
/// The barrier holds each client until all five have seen "no such account".
async fn race(
    client: &Elasticsearch,
    index: &str,
    write: Write,
) -> Result<Vec<Attempt>> {
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let mut clients = tokio::task::JoinSet::new();
    for n in 1..=CLIENTS {
        let (client, index, barrier) =
            (client.clone(), index.to_string(), barrier.clone());
        clients.spawn(async move {
            let owner = format!("client-{n}");
            let saw_missing = doc::find(&client, &index, ACCOUNT).await?.is_none();
            barrier.wait().await;
            let answer = open_account(&client, &index, write, &owner).await?;
            anyhow::Ok(Attempt {
                owner,
                saw_missing,
                answer,
            })
        });
    }
    let mut attempts: Vec<Attempt> = clients
        .join_all()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    // The shard ordered the writes: show them in its order.
    attempts.sort_by_key(|a| a.answer.body["_seq_no"].as_i64().unwrap_or(i64::MAX));
    Ok(attempts)
}
// ANCHOR_END: race

/// What one client's GET saw and what its write was answered.
struct Attempt {
    owner: String,
    saw_missing: bool,
    answer: Answer,
}

/// The chapter in order: the two races, then conditions and generated ids.
async fn create_race(cluster: &Cluster, index: &str) -> Result<Claims> {
    let (client, mut claims) = (&cluster.client, Claims::new());
    for (write, path) in [(Write::Index, "_doc"), (Write::Create, "_create")] {
        let started = Instant::now();
        doc::fresh_index(client, index).await?;
        println!(
            "-- {CLIENTS} clients GET account {ACCOUNT}, then PUT /{index}/{path}/{ACCOUNT}"
        );
        let attempts = race(client, index, write).await?;
        for a in &attempts {
            let seen = if a.saw_missing { "404" } else { "found" };
            println!("{}: GET -> {seen}; PUT -> {}", a.owner, a.answer.summary());
        }
        let stored = doc::read(client, index, ACCOUNT).await?;
        let holder = stored.source["owner"].as_str().unwrap_or_default();
        let creator = attempts
            .iter()
            .find(|a| a.answer.status == 201)
            .map_or("", |a| &a.owner);
        println!(
            "account {ACCOUNT} holds owner={holder}; the client told 201 created was {creator}\n"
        );
        check_race(
            cluster,
            started,
            write,
            &attempts,
            holder == creator,
            &mut claims,
        );
    }

    println!("-- op_type=create, and conditions on a missing document");
    let started = Instant::now();
    // ANCHOR: op_type
    let response = client
        .index(IndexParts::IndexId(index, ACCOUNT))
        .op_type(OpType::Create)
        .body(json!({ "owner": "client-6", "balance": 0 }))
        .send()
        .await?;
    // ANCHOR_END: op_type
    let op_type = shown(
        format!("PUT /{index}/_doc/{ACCOUNT}?op_type=create"),
        response,
    )
    .await?;
    // ANCHOR: missing
    // Account 67890 does not exist: there is no _seq_no to compare with.
    let response = client
        .index(IndexParts::IndexId(index, "67890"))
        .if_seq_no(0)
        .if_primary_term(1)
        .body(json!({ "owner": "client-7", "balance": 0 }))
        .send()
        .await?;
    // ANCHOR_END: missing
    let missing = shown(
        format!("PUT /{index}/_doc/67890?if_seq_no=0&if_primary_term=1"),
        response,
    )
    .await?;
    let (create_with_condition, conditional) =
        create_then_condition(client, index).await?;
    check_conditions(
        cluster,
        started,
        [&op_type, &missing, &create_with_condition, &conditional],
        &mut claims,
    );

    println!("\n-- POST /{index}/_doc, sent again after a timeout");
    let started = Instant::now();
    // ANCHOR: generated_id
    // The first answer never arrived (a timeout), so the client sends the request again.
    let account = json!({ "owner": "client-8", "balance": 0 });
    let mut answers = Vec::new();
    for _ in 0..2 {
        let response = client
            .index(IndexParts::Index(index))
            .body(account.clone())
            .send()
            .await?;
        answers.push(shown(format!("POST /{index}/_doc"), response).await?);
    }
    // ANCHOR_END: generated_id
    indices::refresh(client, index).await?;
    let stored = indices::count(
        client,
        index,
        json!({ "term": { "owner.keyword": "client-8" } }),
    )
    .await?;
    println!("documents with owner=client-8: {stored}");
    check_generated_ids(cluster, started, &answers, stored, &mut claims);
    Ok(claims)
}

/// Sends the answer's summary to the screen, under the request it answers.
async fn shown(
    request: String,
    response: elasticsearch::http::response::Response,
) -> Result<Answer> {
    let answer = Answer::of(response).await?;
    println!("{request} -> {}", answer.summary());
    Ok(answer)
}

/// A create cannot carry a condition; once the document exists, a condition read from it holds
/// and the answer is 200, never 201. (The typed `create` call has no `if_seq_no`, so this goes
/// through `op_type=create`, the same request.)
async fn create_then_condition(
    client: &Elasticsearch,
    index: &str,
) -> Result<(Answer, Answer)> {
    let account = json!({ "owner": "client-7", "balance": 0 });
    let path = format!("/{index}/_doc/67890");
    let response = client
        .index(IndexParts::IndexId(index, "67890"))
        .op_type(OpType::Create)
        .if_seq_no(0)
        .if_primary_term(1)
        .body(account.clone())
        .send()
        .await?;
    let refused = shown(
        format!("PUT {path}?op_type=create&if_seq_no=0&if_primary_term=1"),
        response,
    )
    .await?;
    let response = client
        .create(CreateParts::IndexId(index, "67890"))
        .body(account)
        .send()
        .await?;
    shown(format!("PUT /{index}/_create/67890"), response).await?;
    let seen = doc::read(client, index, "67890").await?;
    let (seq_no, term) = (seen.seq_no, seen.primary_term);
    let response = client
        .index(IndexParts::IndexId(index, "67890"))
        .if_seq_no(seq_no)
        .if_primary_term(term)
        .body(json!({ "owner": "client-7", "balance": 10 }))
        .send()
        .await?;
    let conditional = shown(
        format!("PUT {path}?if_seq_no={seq_no}&if_primary_term={term}"),
        response,
    )
    .await?;
    Ok((refused, conditional))
}

/// The checks of one race, and its result line.
fn check_race(
    cluster: &Cluster,
    started: Instant,
    write: Write,
    attempts: &[Attempt],
    holder_is_creator: bool,
    claims: &mut Claims,
) {
    let count = |status: u16| {
        attempts
            .iter()
            .filter(|a| a.answer.status == status)
            .count()
    };
    let (created, updated, conflicts) = (count(201), count(200), count(409));
    let name = if write == Write::Index {
        "index"
    } else {
        "create"
    };
    let fields = json!({
        "example": "create_race", "strategy": name, "clients": CLIENTS,
        "saw_missing": attempts.iter().filter(|a| a.saw_missing).count(),
        "acknowledged": created + updated, "created": created, "conflicts": conflicts,
        "holder_is_creator": holder_is_creator,
    });
    report::result(cluster, started.elapsed(), fields);
    claims.check(
        attempts.iter().all(|a| a.saw_missing),
        format!("{name}: every GET saw 404"),
    );
    if write == Write::Index {
        claims.check(
            created == 1 && updated == CLIENTS - 1,
            "index: one 201 and four 200s",
        );
        claims.check(
            !holder_is_creator,
            "index: the client told 201 created lost its account",
        );
    } else {
        claims.check(
            created == 1 && conflicts == CLIENTS - 1,
            "create: one 201 and four 409s",
        );
        let already_exists = |a: &&Attempt| {
            a.answer.error_type() == "version_conflict_engine_exception"
                && a.answer.reason().contains("document already exists")
        };
        let conflicted = attempts.iter().filter(|a| a.answer.status == 409);
        claims.check(
            conflicted.clone().all(|a| already_exists(&a)),
            "create: each 409 says \"document already exists\"",
        );
        claims.check(
            holder_is_creator,
            "create: the account holds the creator's data",
        );
    }
}

/// The checks of the requests with `op_type=create` and conditions, and their result line.
fn check_conditions(
    cluster: &Cluster,
    started: Instant,
    answers: [&Answer; 4],
    claims: &mut Claims,
) {
    let [op_type, missing, create_with_condition, conditional] = answers;
    claims.check(
        op_type.status == 409
            && op_type.reason().contains("document already exists"),
        "op_type=create on an existing id: 409 \"document already exists\"",
    );
    claims.check(
        missing.status == 409
            && missing.error_type() == "version_conflict_engine_exception"
            && missing.reason().contains("but no document was found"),
        "if_seq_no on a missing document: 409 \"no document was found\"",
    );
    claims.check(
        create_with_condition.status == 400
            && create_with_condition
                .reason()
                .contains("create operations do not support compare and set"),
        "a create with if_seq_no is refused with 400",
    );
    claims.check(
        conditional.status == 200,
        "a conditional write that holds is 200, never 201",
    );
    let fields = json!({
        "example": "create_race", "strategy": "conditions",
        "op_type_create_status": op_type.status,
        "if_seq_no_on_missing_status": missing.status,
        "if_seq_no_on_missing_type": missing.error_type(),
        "create_with_if_seq_no_status": create_with_condition.status,
        "conditional_success_status": conditional.status,
    });
    report::result(cluster, started.elapsed(), fields);
}

/// Both POSTs were 201 created, under two different ids: two documents.
fn check_generated_ids(
    cluster: &Cluster,
    started: Instant,
    answers: &[Answer],
    stored: u64,
    claims: &mut Claims,
) {
    let created = answers.iter().filter(|a| a.status == 201).count();
    let mut ids: Vec<&str> = answers
        .iter()
        .filter_map(|a| a.body["_id"].as_str())
        .collect();
    ids.dedup();
    claims.check(created == 2, "both POSTs were 201 created");
    claims.check(ids.len() == 2, "the two POSTs got two different ids");
    claims.check(stored == 2, "the POST sent again stored a second document");
    let fields = json!({
        "example": "create_race", "strategy": "generated_id", "posts": answers.len(),
        "created": created, "distinct_ids": ids.len(), "stored": stored,
    });
    report::result(cluster, started.elapsed(), fields);
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness::recorded::{self, quoted};

    const CHAPTER: &str = "ch09-00-creating.md";

    /// Five clients that all saw no account: plain index writes all succeed and silently
    /// replace the first creation; `_create` lets exactly one through and answers 409 to the
    /// rest; a condition on a missing document is a 409; a POST sent twice stores two.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn create_refuses_what_index_silently_replaces() {
        let cluster = Cluster::connect(Needs::Core).await.expect("a cluster");
        let claims = create_race(&cluster, "test-create-race")
            .await
            .expect("the races run");
        assert!(claims.all_hold(), "{claims:?}");
        assert_eq!(claims.checked(), 14, "{claims:?}");
    }

    /// The recorded races end as the chapter tells: with the index request all five writes
    /// are acknowledged, one created, and the creator lost its account; with `_create` one
    /// is created and four are 409s.
    #[test]
    fn the_recorded_races_are_the_ones_the_chapter_tells() {
        let index = recorded::result("create_race", "strategy", "index");
        assert_eq!(index["clients"], 5);
        assert_eq!(index["saw_missing"], 5, "every client's GET saw no account");
        assert_eq!(index["acknowledged"], 5);
        assert_eq!(index["created"], 1);
        assert_eq!(index["conflicts"], 0);
        assert_eq!(
            index["holder_is_creator"], false,
            "the creator lost its account"
        );
        let create = recorded::result("create_race", "strategy", "create");
        assert_eq!(create["saw_missing"], 5);
        assert_eq!(create["acknowledged"], 1);
        assert_eq!(create["created"], 1);
        assert_eq!(create["conflicts"], 4);
        assert_eq!(create["holder_is_creator"], true);
    }
}
