//! Chapter 9: creating without clobbering.
//!
//! Five clients open the same account at once. Each first checks that account 12345 does not
//! exist (a GET, which answers 404 to all of them), then writes it:
//!
//! 1. with a plain index request (`PUT /bank/_doc/12345`): all five writes succeed, one of them
//!    as `"created"` (HTTP 201) and four as `"updated"` (HTTP 200). The account holds the last
//!    writer's data; the client that was told "created" lost its account without a word.
//! 2. with a create request (`PUT /bank/_create/12345`): exactly one gets HTTP 201, the four
//!    others HTTP 409 `version_conflict_engine_exception`, "document already exists". The
//!    account holds the creator's data, and every loser knows it lost.
//! 3. `PUT /bank/_doc/12345?op_type=create` is the same request, with the same 409.
//! 4. A conditional write (`if_seq_no`/`if_primary_term`) needs a document to compare with: to
//!    a missing one it is a 409, "no document was found"; a create cannot carry a condition
//!    (HTTP 400); and a conditional write that succeeds is HTTP 200, never 201.
//!
//! Run it: `cargo run --example create_race`
//!
//! It exits non-zero if any of these does not hold.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use elasticsearch::params::OpType;
use elasticsearch::{CreateParts, Elasticsearch, IndexParts};
use esbook::answer::Answer;
use esbook::doc;
use esbook::report::{self, Claims};
use esbook::{Cluster, Needs};
use serde_json::json;
use tokio::sync::Barrier;

const INDEX: &str = "bank";
const ACCOUNT: &str = "12345";
const OTHER_ACCOUNT: &str = "67890";
const CLIENTS: usize = 5;

const USAGE: &str = "usage: cargo run --example create_race (no flags)";

#[tokio::main]
async fn main() -> ExitCode {
    esbook::run_example(USAGE, Needs::Core, |cluster| async move {
        create_race(&cluster, INDEX).await
    })
    .await
}

/// How a client writes the account it believes does not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    /// `PUT /bank/_doc/12345`: create or replace, whichever applies.
    Index,
    /// `PUT /bank/_create/12345`: create, or fail if it exists.
    Create,
}

impl Write {
    fn name(self) -> &'static str {
        match self {
            Write::Index => "index",
            Write::Create => "create",
        }
    }
}

/// What one client did: what its GET saw and what its write was answered.
#[derive(Debug)]
struct Attempt {
    owner: String,
    saw_missing: bool,
    answer: Answer,
}

async fn create_race(cluster: &Cluster, index: &str) -> Result<Claims> {
    let mut claims = Claims::new();
    println!(
        "-- 1. {CLIENTS} clients check that account {ACCOUNT} does not exist, then index it"
    );
    race(cluster, index, Write::Index, &mut claims).await?;
    println!(
        "\n-- 2. The same {CLIENTS} clients, with PUT /{index}/_create/{ACCOUNT}"
    );
    race(cluster, index, Write::Create, &mut claims).await?;
    println!("\n-- 3 and 4. op_type=create, and conditions on a missing document");
    conditions_need_a_document(cluster, index, &mut claims).await?;
    Ok(claims)
}

/// Runs the five clients on a fresh index with `write`, prints what each was told and what
/// the account holds, and checks the chapter's claims about it.
async fn race(
    cluster: &Cluster,
    index: &str,
    write: Write,
    claims: &mut Claims,
) -> Result<()> {
    let started = Instant::now();
    doc::fresh_index(&cluster.client, index).await?;

    // ANCHOR: race
    // Every client checks first, and all checks happen before any write:
    // the barrier holds each client until all five have seen "no such account".
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let mut clients = tokio::task::JoinSet::new();
    for n in 1..=CLIENTS {
        let client = cluster.client.clone();
        let index = index.to_string();
        let barrier = barrier.clone();
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
    // ANCHOR_END: race
    let mut attempts = Vec::new();
    while let Some(joined) = clients.join_next().await {
        attempts.push(joined.context("a client task panicked")??);
    }
    // The shard ordered the writes; show them in its order.
    attempts.sort_by_key(|a| a.answer.body["_seq_no"].as_i64().unwrap_or(i64::MAX));
    let stored = doc::read(&cluster.client, index, ACCOUNT).await?;
    let holder = stored.source["owner"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    for attempt in &attempts {
        println!(
            "{}: GET -> {}; {} -> {}",
            attempt.owner,
            if attempt.saw_missing { "404" } else { "found" },
            match write {
                Write::Index => format!("PUT /{index}/_doc/{ACCOUNT}"),
                Write::Create => format!("PUT /{index}/_create/{ACCOUNT}"),
            },
            attempt.answer.summary()
        );
    }
    let count = |status: u16| {
        attempts
            .iter()
            .filter(|a| a.answer.status == status)
            .count()
    };
    let (created, updated, conflicts) = (count(201), count(200), count(409));
    let acknowledged = created + updated;
    let creator = attempts
        .iter()
        .find(|a| a.answer.status == 201)
        .map(|a| a.owner.clone())
        .unwrap_or_default();
    println!(
        "account {ACCOUNT} holds owner={holder}; the client told 201 created was {creator}"
    );
    report::result(
        cluster,
        started.elapsed(),
        json!({
            "example": "create_race",
            "strategy": write.name(),
            "clients": CLIENTS,
            "saw_missing": attempts.iter().filter(|a| a.saw_missing).count(),
            "acknowledged": acknowledged,
            "created": created,
            "conflicts": conflicts,
            "holder_is_creator": holder == creator,
        }),
    );

    claims.check(
        attempts.iter().all(|a| a.saw_missing),
        format!(
            "{}: every client's GET found no account 12345",
            write.name()
        ),
    );
    match write {
        Write::Index => {
            claims.check(
                acknowledged == CLIENTS && created == 1,
                format!(
                    "index: all {CLIENTS} writes succeeded: one 201 created, {} 200 updated",
                    CLIENTS - 1
                ),
            );
            claims.check(
                holder != creator,
                format!(
                    "index: the account holds {holder}'s data; {creator}, told 201 created, lost its account silently"
                ),
            );
        }
        Write::Create => {
            claims.check(
                created == 1 && conflicts == CLIENTS - 1,
                format!(
                    "create: exactly one 201, and {} HTTP 409 conflicts",
                    CLIENTS - 1
                ),
            );
            let reasons_ok =
                attempts.iter().filter(|a| a.answer.status == 409).all(|a| {
                    a.answer.error_type() == "version_conflict_engine_exception"
                        && a.answer.reason().contains("document already exists")
                });
            claims.check(
                reasons_ok,
                "create: each 409 is a version_conflict_engine_exception, \"document already exists\"",
            );
            claims.check(
                holder == creator,
                format!("create: the account holds the creator's ({creator}) data"),
            );
        }
    }
    Ok(())
}

// ANCHOR: open_account
/// Writes a new account for `owner`; `write` says whether an existing
/// account may be replaced (`Index`) or not (`Create`).
async fn open_account(
    client: &Elasticsearch,
    index: &str,
    write: Write,
    owner: &str,
) -> Result<Answer> {
    let account = json!({ "owner": owner, "balance": 0 });
    let response = match write {
        Write::Index => {
            client
                .index(IndexParts::IndexId(index, ACCOUNT))
                .body(account)
                .send()
                .await?
        }
        Write::Create => {
            client
                .create(CreateParts::IndexId(index, ACCOUNT))
                .body(account)
                .send()
                .await?
        }
    };
    Answer::of(response).await
}
// ANCHOR_END: open_account

/// `op_type=create` is `_create`; a condition needs a document to compare with, cannot go on a
/// create, and when it holds the answer is 200 "updated", never 201.
async fn conditions_need_a_document(
    cluster: &Cluster,
    index: &str,
    claims: &mut Claims,
) -> Result<()> {
    let started = Instant::now();
    let client = &cluster.client;

    // ANCHOR: op_type
    let response = client
        .index(IndexParts::IndexId(index, ACCOUNT))
        .op_type(OpType::Create)
        .body(json!({ "owner": "client-6", "balance": 0 }))
        .send()
        .await?;
    // ANCHOR_END: op_type
    let op_type = Answer::of(response).await?;
    println!(
        "PUT /{index}/_doc/{ACCOUNT}?op_type=create -> {}",
        op_type.summary()
    );
    claims.check(
        op_type.status == 409 && op_type.reason().contains("document already exists"),
        "op_type=create on an existing id: HTTP 409, \"document already exists\", as _create",
    );

    // ANCHOR: missing
    // Account 67890 does not exist: there is no _seq_no to compare with.
    let response = client
        .index(IndexParts::IndexId(index, OTHER_ACCOUNT))
        .if_seq_no(0)
        .if_primary_term(1)
        .body(json!({ "owner": "client-7", "balance": 0 }))
        .send()
        .await?;
    // ANCHOR_END: missing
    let missing = Answer::of(response).await?;
    println!(
        "PUT /{index}/_doc/{OTHER_ACCOUNT}?if_seq_no=0&if_primary_term=1 -> {}",
        missing.summary()
    );
    claims.check(
        missing.status == 409
            && missing.error_type() == "version_conflict_engine_exception"
            && missing.reason().contains("but no document was found"),
        "if_seq_no on a missing document: HTTP 409, \"no document was found\"",
    );

    // (The typed `create` call has no `if_seq_no`; `op_type=create` is the same request.)
    let response = client
        .index(IndexParts::IndexId(index, OTHER_ACCOUNT))
        .op_type(OpType::Create)
        .if_seq_no(0)
        .if_primary_term(1)
        .body(json!({ "owner": "client-7", "balance": 0 }))
        .send()
        .await?;
    let create_with_condition = Answer::of(response).await?;
    println!(
        "PUT /{index}/_doc/{OTHER_ACCOUNT}?op_type=create&if_seq_no=0&if_primary_term=1 -> {}",
        create_with_condition.summary()
    );
    claims.check(
        create_with_condition.status == 400
            && create_with_condition
                .reason()
                .contains("create operations do not support compare and set"),
        "a create with if_seq_no is refused (HTTP 400): a create has nothing to compare with",
    );

    // Once it exists, a condition read from the server holds, and the write is an update.
    let response = client
        .create(CreateParts::IndexId(index, OTHER_ACCOUNT))
        .body(json!({ "owner": "client-7", "balance": 0 }))
        .send()
        .await?;
    let created = Answer::of(response).await?;
    let seen = doc::read(client, index, OTHER_ACCOUNT).await?;
    let response = client
        .index(IndexParts::IndexId(index, OTHER_ACCOUNT))
        .if_seq_no(seen.seq_no)
        .if_primary_term(seen.primary_term)
        .body(json!({ "owner": "client-7", "balance": 10 }))
        .send()
        .await?;
    let conditional = Answer::of(response).await?;
    println!(
        "PUT /{index}/_create/{OTHER_ACCOUNT} -> {}",
        created.summary()
    );
    println!(
        "PUT /{index}/_doc/{OTHER_ACCOUNT}?if_seq_no={}&if_primary_term={} -> {}",
        seen.seq_no,
        seen.primary_term,
        conditional.summary()
    );
    claims.check(
        created.status == 201 && conditional.status == 200,
        "a conditional write that holds is HTTP 200 \"updated\": with if_seq_no, never 201",
    );

    println!();
    report::result(
        cluster,
        started.elapsed(),
        json!({
            "example": "create_race",
            "strategy": "conditions",
            "op_type_create_status": op_type.status,
            "if_seq_no_on_missing_status": missing.status,
            "if_seq_no_on_missing_type": missing.error_type(),
            "create_with_if_seq_no_status": create_with_condition.status,
            "conditional_success_status": conditional.status,
        }),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Five clients that all saw no account: plain index writes all succeed and silently
    /// replace the first creation; `_create` lets exactly one through and answers 409 to the
    /// rest; a condition on a missing document is a 409 "no document was found".
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn create_refuses_what_index_silently_replaces() {
        let cluster = Cluster::connect(Needs::Core).await.expect("a cluster");
        let claims = create_race(&cluster, "test-create-race")
            .await
            .expect("the races run");
        assert!(claims.all_hold(), "{claims:?}");
        assert!(claims.checked() >= 10, "{claims:?}");
    }
}
