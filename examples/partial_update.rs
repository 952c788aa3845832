//! Chapter 11: partial updates and deletes, with and without a condition.
//!
//! 1. A partial update (`_update` with `doc`) merges its fields into the document: two clients
//!    changing *different* fields both keep their change.
//! 2. The trap: a partial document carries absolute values. Two clients that read balance 1000
//!    and send `{"balance": 800}` and `{"balance": 500}` are last-writer-wins for that field,
//!    exactly as in chapter 3: both answers say "updated" and A's withdrawal is gone.
//! 3. The condition fixes it: the same partial update with `if_seq_no`/`if_primary_term`, and
//!    B's stale one is a 409; B reads again and the balance ends at 300.
//! 4. So does a relative script (`ctx._source.balance -= params.amount`), which needs no read.
//! 5. What the server refuses: a conditional `_update` with `retry_on_conflict`, with `upsert`,
//!    with `doc_as_upsert`, and a conditional `_update` of a missing document. The exact texts,
//!    from each server the run has (the release, and the build with Painless).
//! 6. A conditional delete: stale, a 409; current, deleted.
//! 7. `_version` and `_seq_no` across delete and re-create: a delete is a write (it bumps
//!    `_version`, even when there was nothing to delete), a re-created document continues the
//!    count, and once Elasticsearch has forgotten the delete (`index.gc_deletes`) `_version`
//!    starts again at 1. `_seq_no` never goes back, so an old condition never matches again.
//!
//! Run it: `cargo run --example partial_update`
//!
//! Section 4 needs an Elasticsearch with Painless; the output names the server of each part.
//! It exits non-zero if any claim does not hold.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Result;
use elasticsearch::{CreateParts, DeleteParts, Elasticsearch, UpdateParts};
use esbook::answer::Answer;
use esbook::doc::{self, Versioned};
use esbook::indices;
use harness::report::{self, Claims};
use esbook::{Cluster, Needs};
use serde_json::{Value, json};

const INDEX: &str = "bank";
const ACCOUNT: &str = "12345";
const OTHER_ACCOUNT: &str = "67890";
const MISSING: &str = "99999";

const USAGE: &str = "usage: cargo run --example partial_update (no flags)";

#[tokio::main]
async fn main() -> ExitCode {
    harness::run_example(USAGE, Needs::Core, |cluster| async move {
        let scripting = cluster.for_needs(Needs::Scripting).await?;
        partial_update(&cluster, &scripting, INDEX).await
    })
    .await
}

async fn partial_update(
    cluster: &Cluster,
    scripting: &Cluster,
    index: &str,
) -> Result<Claims> {
    let mut claims = Claims::new();
    let started = Instant::now();
    let client = &cluster.client;

    println!("-- 1. Two partial updates of different fields: both stay");
    open_account(client, index).await?;
    // A changes the e-mail address; B withdraws 500 from the balance it read.
    let seen_by_b = doc::read(client, index, ACCOUNT).await?;
    let b_balance = seen_by_b.number("balance")? - 500;
    let a = update_doc(client, index, None, json!({ "email": "new@example.com" }))
        .await?;
    let b =
        update_doc(client, index, None, json!({ "balance": b_balance })).await?;
    let merged = doc::read(client, index, ACCOUNT).await?;
    println!(
        "A: {{\"doc\": {{\"email\": \"new@example.com\"}}}} -> {}",
        a.summary()
    );
    println!(
        "B: {{\"doc\": {{\"balance\": {b_balance}}}}} -> {}",
        b.summary()
    );
    println!("the account: {}", merged.source);
    claims.check(
        merged.source["email"] == "new@example.com" && merged.source["balance"] == 500,
        "partial updates of different fields merge: A's email and B's balance both stay",
    );

    println!("\n-- 2. Two partial updates of the same field, from the same read");
    open_account(client, index).await?;
    // ANCHOR: trap
    // Both read balance 1000; each sends the balance it computed.
    let seen_by_a = doc::read(client, index, ACCOUNT).await?;
    let seen_by_b = doc::read(client, index, ACCOUNT).await?;
    let a_balance = seen_by_a.number("balance")? - 200;
    let b_balance = seen_by_b.number("balance")? - 500;
    let a =
        update_doc(client, index, None, json!({ "balance": a_balance })).await?;
    let b =
        update_doc(client, index, None, json!({ "balance": b_balance })).await?;
    // ANCHOR_END: trap
    let trapped = doc::read(client, index, ACCOUNT).await?.number("balance")?;
    println!(
        "A: {{\"doc\": {{\"balance\": {a_balance}}}}} -> {}",
        a.summary()
    );
    println!(
        "B: {{\"doc\": {{\"balance\": {b_balance}}}}} -> {}",
        b.summary()
    );
    println!("balance: {trapped} (both withdrawals would leave 300)");
    claims.check(
        a.status == 200 && b.status == 200 && trapped == 500,
        "a partial doc is absolute: both updates were acknowledged and A's withdrawal is lost (500, not 300)",
    );

    println!("\n-- 3. The same partial updates, each on the condition of its read");
    open_account(client, index).await?;
    // Each withdrawal is sent on the condition of the read it was computed from.
    let withdraw = async |seen: &Versioned, amount: i64| -> Result<Answer> {
        let balance = seen.number("balance")? - amount;
        update_doc(client, index, Some(seen), json!({ "balance": balance })).await
    };
    let seen_by_a = doc::read(client, index, ACCOUNT).await?;
    let seen_by_b = doc::read(client, index, ACCOUNT).await?;
    let a = withdraw(&seen_by_a, 200).await?;
    let b = withdraw(&seen_by_b, 500).await?;
    let seen_again = doc::read(client, index, ACCOUNT).await?;
    let b_again = withdraw(&seen_again, 500).await?;
    let guarded = doc::read(client, index, ACCOUNT).await?.number("balance")?;
    println!("A if_seq_no={}: {}", seen_by_a.seq_no, a.summary());
    println!("B if_seq_no={}: {}", seen_by_b.seq_no, b.summary());
    println!(
        "B read again (balance {}), if_seq_no={}: {}",
        seen_again.number("balance")?,
        seen_again.seq_no,
        b_again.summary()
    );
    println!("balance: {guarded}");
    claims.check(
        b.status == 409 && b.error_type() == "version_conflict_engine_exception",
        "with if_seq_no/if_primary_term, B's stale partial update is a 409",
    );
    claims.check(
        guarded == 300,
        "B retried from a fresh read: the balance is 300",
    );

    println!("\n-- 4. A relative change instead, on {scripting}");
    let relative = relative_withdrawals(scripting, index).await?;
    claims.check(
        relative == 300,
        format!("two relative scripted updates, no read, no condition: {relative}, as due"),
    );
    report::result(
        cluster,
        started.elapsed(),
        json!({
            "example": "partial_update",
            "strategy": "partial_doc",
            "expected": 300,
            "final": trapped,
            "with_condition": guarded,
            "with_script": relative,
            "with_script_server_version": scripting.version,
            "conflict_status": b.status,
        }),
    );

    println!("\n-- 5. What a conditional _update is refused");
    let mut servers = vec![cluster];
    if scripting.url != cluster.url {
        servers.push(scripting);
    }
    let mut seen_texts: Vec<Vec<(u16, String)>> = Vec::new();
    for server in servers {
        println!("on {server}:");
        let answers = refusals(server, index).await?;
        claims.check(
            answers[0].0 == 400
                && answers[0]
                    .1
                    .contains("compare and write operations can not be retried"),
            format!(
                "{}: if_seq_no with retry_on_conflict is a 400",
                server.version
            ),
        );
        claims.check(
            answers[1].0 == 400
                && answers[1]
                    .1
                    .contains("upsert requests don't support `if_seq_no` and `if_primary_term`"),
            format!("{}: if_seq_no with an upsert document is a 400", server.version),
        );
        claims.check(
            answers[2].0 == 400
                && answers[2].1.contains(
                    "compare and write operations can not be used with upsert",
                ),
            format!("{}: if_seq_no with doc_as_upsert is a 400", server.version),
        );
        claims.check(
            answers[3].0 == 404 && answers[3].1.contains("document_missing_exception"),
            format!(
                "{}: a conditional _update of a missing document is a 404 document_missing_exception, not a 409",
                server.version
            ),
        );
        seen_texts.push(answers);
    }
    let refusals_alike = seen_texts
        .windows(2)
        .all(|pair| pair[0][..3] == pair[1][..3]);
    if seen_texts.len() > 1 {
        claims.check(
            refusals_alike,
            "both servers refuse with the same status and the same words",
        );
    }

    println!("\n-- 6. A conditional delete");
    let conditional_delete = delete_on_condition(cluster, index).await?;
    claims.check(
        conditional_delete == (409, 200),
        "a delete with a stale if_seq_no is a 409; with the current one, deleted (200)",
    );

    println!("\n-- 7. _version and _seq_no across delete and re-create");
    delete_and_recreate(cluster, index, &mut claims).await?;
    Ok(claims)
}

/// Account 12345 on a fresh index, balance 1000.
async fn open_account(client: &Elasticsearch, index: &str) -> Result<Value> {
    doc::fresh_index(client, index).await?;
    doc::put(
        client,
        index,
        ACCOUNT,
        json!({ "owner": "A. Client", "email": "old@example.com", "balance": 1000 }),
    )
    .await
}

// ANCHOR: update_doc
/// A partial update of the account: the fields of `partial` replace the
/// same fields of the document, the others stay. With `seen`, only if the
/// account is still as it was read.
async fn update_doc(
    client: &Elasticsearch,
    index: &str,
    seen: Option<&Versioned>,
    partial: Value,
) -> Result<Answer> {
    let mut update = client.update(UpdateParts::IndexId(index, ACCOUNT));
    if let Some(seen) = seen {
        update = update
            .if_seq_no(seen.seq_no)
            .if_primary_term(seen.primary_term);
    }
    let response = update.body(json!({ "doc": partial })).send().await?;
    Answer::of(response).await
}
// ANCHOR_END: update_doc

/// Both withdrawals as scripts that subtract from whatever the balance is when they run.
async fn relative_withdrawals(scripting: &Cluster, index: &str) -> Result<i64> {
    let client = &scripting.client;
    open_account(client, index).await?;
    for amount in [200, 500] {
        // ANCHOR: relative
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
        // ANCHOR_END: relative
        let answer = Answer::of(response).await?;
        println!(
            "withdraw {amount}: ctx._source.balance -= params.amount -> {}",
            answer.summary()
        );
    }
    let balance = doc::read(client, index, ACCOUNT).await?.number("balance")?;
    println!("balance: {balance}");
    Ok(balance)
}

/// The four refusals, on `server`: (status, `type: reason`) of each.
async fn refusals(server: &Cluster, index: &str) -> Result<Vec<(u16, String)>> {
    let client = &server.client;
    open_account(client, index).await?;
    let seen = doc::read(client, index, ACCOUNT).await?;
    let (s, t) = (seen.seq_no, seen.primary_term);
    let partial = json!({ "balance": 800 });
    let tries = [
        (
            format!("?if_seq_no={s}&if_primary_term={t}&retry_on_conflict=3"),
            ACCOUNT,
            Some(3),
            json!({ "doc": partial }),
        ),
        (
            format!("?if_seq_no={s}&if_primary_term={t}, with an upsert document"),
            ACCOUNT,
            None,
            json!({ "doc": partial, "upsert": partial }),
        ),
        (
            format!("?if_seq_no={s}&if_primary_term={t}, with doc_as_upsert"),
            ACCOUNT,
            None,
            json!({ "doc": partial, "doc_as_upsert": true }),
        ),
        (
            format!(
                "?if_seq_no={s}&if_primary_term={t}, document {MISSING} does not exist"
            ),
            MISSING,
            None,
            json!({ "doc": partial }),
        ),
    ];
    let mut answers = Vec::new();
    for (shown, id, retries, body) in tries {
        // ANCHOR: refused
        let mut update = client
            .update(UpdateParts::IndexId(index, id))
            .if_seq_no(s)
            .if_primary_term(t);
        if let Some(retries) = retries {
            update = update.retry_on_conflict(retries);
        }
        let answer = Answer::of(update.body(body).send().await?).await?;
        // ANCHOR_END: refused
        println!(
            "  POST /{index}/_update/{id}{shown}\n    -> {}",
            answer.summary()
        );
        answers.push((
            answer.status,
            format!("{}: {}", answer.error_type(), answer.reason()),
        ));
    }
    Ok(answers)
}

/// Reads the account, lets another write land, then deletes on the stale and on the current
/// condition. The two statuses.
async fn delete_on_condition(cluster: &Cluster, index: &str) -> Result<(u16, u16)> {
    let client = &cluster.client;
    open_account(client, index).await?;
    let seen = doc::read(client, index, ACCOUNT).await?;
    doc::put(
        client,
        index,
        ACCOUNT,
        json!({ "owner": "A. Client", "balance": 1200 }),
    )
    .await?;
    // A delete on the condition of `seen`: what came back.
    let delete_if = async |seen: &Versioned, why: &str| -> Result<u16> {
        // ANCHOR: delete
        let response = client
            .delete(DeleteParts::IndexId(index, ACCOUNT))
            .if_seq_no(seen.seq_no)
            .if_primary_term(seen.primary_term)
            .send()
            .await?;
        // ANCHOR_END: delete
        let answer = Answer::of(response).await?;
        println!(
            "DELETE /{index}/_doc/{ACCOUNT}?if_seq_no={}&if_primary_term={} ({why}) -> {}",
            seen.seq_no,
            seen.primary_term,
            answer.summary()
        );
        Ok(answer.status)
    };
    let stale = delete_if(&seen, "a deposit landed since").await?;
    let current = doc::read(client, index, ACCOUNT).await?;
    let deleted = delete_if(&current, "read again").await?;
    Ok((stale, deleted))
}

/// Create, update, delete, delete again, re-create; then the same once Elasticsearch has
/// forgotten the delete (`index.gc_deletes` set to 0s for this index).
async fn delete_and_recreate(
    cluster: &Cluster,
    index: &str,
    claims: &mut Claims,
) -> Result<()> {
    let started = Instant::now();
    let client = &cluster.client;
    doc::fresh_index(client, index).await?;
    let account = json!({ "owner": "A. Client", "balance": 1000 });

    let mut steps: Vec<(String, Answer)> = Vec::new();
    let response = client
        .create(CreateParts::IndexId(index, ACCOUNT))
        .body(account.clone())
        .send()
        .await?;
    steps.push((
        format!("PUT /{index}/_create/{ACCOUNT}"),
        Answer::of(response).await?,
    ));
    let response = client
        .update(UpdateParts::IndexId(index, ACCOUNT))
        .body(json!({ "doc": { "balance": 900 } }))
        .send()
        .await?;
    steps.push((
        format!("POST /{index}/_update/{ACCOUNT}"),
        Answer::of(response).await?,
    ));
    for _ in 0..2 {
        let response = client
            .delete(DeleteParts::IndexId(index, ACCOUNT))
            .send()
            .await?;
        steps.push((
            format!("DELETE /{index}/_doc/{ACCOUNT}"),
            Answer::of(response).await?,
        ));
    }
    let response = client
        .create(CreateParts::IndexId(index, ACCOUNT))
        .body(account.clone())
        .send()
        .await?;
    steps.push((
        format!("PUT /{index}/_create/{ACCOUNT}"),
        Answer::of(response).await?,
    ));
    for (request, answer) in &steps {
        println!("{request:32} -> {}", answer.summary());
    }
    let number =
        |step: usize, field: &str| steps[step].1.body[field].as_i64().unwrap_or(-1);
    let versions: Vec<i64> =
        (0..steps.len()).map(|i| number(i, "_version")).collect();
    let seq_nos: Vec<i64> =
        (0..steps.len()).map(|i| number(i, "_seq_no")).collect();
    claims.check(
        steps[2].1.body["result"] == "deleted" && versions[2] == versions[1] + 1,
        "a delete is a write: it bumps _version (and takes a _seq_no)",
    );
    claims.check(
        steps[3].1.status == 404
            && steps[3].1.body["result"] == "not_found"
            && versions[3] == versions[2] + 1,
        "deleting a document that is already gone: HTTP 404 not_found, and _version still moves on",
    );
    claims.check(
        steps[4].1.status == 201 && versions[4] == versions[3] + 1,
        format!(
            "re-created within index.gc_deletes, the document continues the count: _version {}, not 1",
            versions[4]
        ),
    );
    claims.check(
        seq_nos.windows(2).all(|pair| pair[0] < pair[1]),
        "every step took a new, higher _seq_no",
    );

    println!(
        "\nNow with index.gc_deletes=0s: Elasticsearch forgets a delete at its next refresh"
    );
    indices::put_settings(client, index, json!({ "gc_deletes": "0s" })).await?;
    // A new account, read once: the numbers a client keeps.
    let response = client
        .create(CreateParts::IndexId(index, OTHER_ACCOUNT))
        .body(account.clone())
        .send()
        .await?;
    doc::expect_success(response, "opening another account").await?;
    let original = doc::read(client, index, OTHER_ACCOUNT).await?;
    let (recreated, waited) = forget_and_recreate(client, index, &account).await?;
    println!(
        "account {OTHER_ACCOUNT} as read: _version {} _seq_no {} _primary_term {}",
        original.version, original.seq_no, original.primary_term
    );
    eprintln!(
        "the delete was forgotten after {:.1}s",
        waited.as_secs_f64()
    );
    println!("deleted, forgotten, re-created: {}", recreated.summary());
    let response = client
        .update(UpdateParts::IndexId(index, OTHER_ACCOUNT))
        .if_seq_no(original.seq_no)
        .if_primary_term(original.primary_term)
        .body(json!({ "doc": { "balance": 0 } }))
        .send()
        .await?;
    let old_condition = Answer::of(response).await?;
    println!(
        "the condition read before the delete, if_seq_no={}: {}",
        original.seq_no,
        old_condition.summary()
    );
    let recreated_version = recreated.body["_version"].as_i64().unwrap_or(-1);
    claims.check(
        recreated.status == 201 && recreated_version == original.version,
        format!(
            "once the delete is forgotten, the re-created account has the _version it had when read ({recreated_version})"
        ),
    );
    claims.check(
        old_condition.status == 409,
        "but its _seq_no is new: a condition from before the delete is a 409, never a match",
    );
    report::result(
        cluster,
        started.elapsed(),
        json!({
            "example": "partial_update",
            "strategy": "delete_recreate",
            "versions": versions,
            "seq_nos": seq_nos,
            "recreated_after_gc_version": recreated_version,
            "old_condition_status": old_condition.status,
        }),
    );
    Ok(())
}

// ANCHOR: forget
/// Deletes account 67890 and re-creates it once Elasticsearch has forgotten
/// the delete; how long that took. Forgetting happens at a refresh after
/// `index.gc_deletes` has passed, so wait, refresh, create, and if the
/// tombstone was still there, try again (bounded).
async fn forget_and_recreate(
    client: &Elasticsearch,
    index: &str,
    account: &Value,
) -> Result<(Answer, Duration)> {
    let started = Instant::now();
    let mut wait = Duration::from_millis(1500);
    for _ in 0..4 {
        let response = client
            .delete(DeleteParts::IndexId(index, OTHER_ACCOUNT))
            .send()
            .await?;
        doc::expect_success(response, "deleting the account").await?;
        tokio::time::sleep(wait).await;
        indices::refresh(client, index).await?;
        let response = client
            .create(CreateParts::IndexId(index, OTHER_ACCOUNT))
            .body(account.clone())
            .send()
            .await?;
        let created = Answer::of(response).await?;
        if created.body["_version"] == 1 {
            return Ok((created, started.elapsed()));
        }
        eprintln!("the delete was not forgotten yet; waiting longer");
        wait *= 2;
    }
    anyhow::bail!(
        "after {:.0}s the deleted account's version was still remembered",
        started.elapsed().as_secs_f64()
    )
}
// ANCHOR_END: forget

#[cfg(test)]
mod tests {
    use super::*;

    /// Every claim of the chapter: partial docs merge but are absolute; a condition or a
    /// relative script saves the withdrawal; the refusals' texts on each server; conditional
    /// delete; versions and sequence numbers across delete and re-create.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn every_claim_of_the_partial_update_chapter_holds() {
        let cluster = Cluster::connect(Needs::Core).await.expect("a cluster");
        let scripting = cluster
            .for_needs(Needs::Scripting)
            .await
            .expect("a cluster with Painless");
        let claims = partial_update(&cluster, &scripting, "test-partial-update")
            .await
            .expect("the updates run");
        assert!(claims.all_hold(), "{claims:?}");
    }
}
