//! Chapter 11, part 2: what the server refuses a conditional `_update`.
//!
//! Four conditional partial updates, each with something an `_update` can otherwise take:
//! `retry_on_conflict`, an `upsert` document, `doc_as_upsert`, and a document that does not
//! exist. Asked of each server the run has (the release, and the server with Painless when it
//! is another), they are refused in the same words.
//!
//! Run it: `cargo run --example update_refusals`. You should see each request with the
//! server's answer, and one closing line.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use elasticsearch::{Elasticsearch, UpdateParts};
use esbook::answer::Answer;
use esbook::{Cluster, Needs, doc};
use harness::report::{self, Claims};
use serde_json::{Value, json};

const INDEX: &str = "bank";
const ACCOUNT: &str = "12345";
// ANCHOR: answers
/// What the server answers the four conditional updates of [`refusals`].
const REFUSED: [(u16, &str); 4] = [
    (400, "compare and write operations can not be retried"),
    (
        400,
        "upsert requests don't support `if_seq_no` and `if_primary_term`",
    ),
    (
        400,
        "compare and write operations can not be used with upsert",
    ),
    (404, "document missing"),
];
// ANCHOR_END: answers

#[tokio::main]
async fn main() -> ExitCode {
    let usage = "usage: cargo run --example update_refusals (no flags)";
    harness::run_example(usage, Needs::Core, |cluster| async move {
        let scripting = cluster.for_needs(Needs::Scripting).await?;
        update_refusals(&cluster, &scripting, INDEX).await
    })
    .await
}

// ANCHOR: refused
/// Four conditional updates the server refuses, each with what it adds.
async fn refusals(client: &Elasticsearch, index: &str) -> Result<Vec<Answer>> {
    let seen = doc::read(client, index, ACCOUNT).await?;
    let partial = json!({ "balance": 800 });
    let mut answers = Vec::new();
    for (with, id, body) in [
        ("&retry_on_conflict=3", ACCOUNT, json!({ "doc": partial })),
        (
            ", with an upsert document",
            ACCOUNT,
            json!({ "doc": partial, "upsert": partial }),
        ),
        (
            ", with doc_as_upsert",
            ACCOUNT,
            json!({ "doc": partial, "doc_as_upsert": true }),
        ),
        (
            ", document 99999 does not exist",
            "99999",
            json!({ "doc": partial }),
        ),
    ] {
        let update = client.update(UpdateParts::IndexId(index, id));
        let update = update
            .if_seq_no(seen.seq_no)
            .if_primary_term(seen.primary_term);
        let update = if with.contains("retry") {
            update.retry_on_conflict(3)
        } else {
            update
        };
        let answer = Answer::of(update.body(body).send().await?).await?;
        let (s, t) = (seen.seq_no, seen.primary_term);
        println!(
            "  POST /{index}/_update/{id}?if_seq_no={s}&if_primary_term={t}{with}"
        );
        println!("    -> {}", answer.summary());
        answers.push(answer);
    }
    Ok(answers)
}
// ANCHOR_END: refused

/// The four refusals, on each server the run has.
async fn update_refusals(
    core: &Cluster,
    scripting: &Cluster,
    index: &str,
) -> Result<Claims> {
    let started = Instant::now();
    // ANCHOR: servers
    let mut servers = vec![core];
    if scripting.url != core.url {
        servers.push(scripting);
    }
    let mut refused: Vec<Vec<Answer>> = Vec::new();
    for server in servers {
        println!("on {server}:");
        open_account((&server.client, index)).await?;
        refused.push(refusals(&server.client, index).await?);
    }
    // ANCHOR_END: servers
    let mut claims = Claims::new();
    check_refusals(&refused, &mut claims);
    for (server, answers) in [core, scripting].into_iter().zip(&refused) {
        let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
        let fields = json!({
            "example": "partial_update", "strategy": "refusals", "statuses": statuses,
        });
        report::result(server, started.elapsed(), fields);
    }
    Ok(claims)
}

/// Account 12345 on a fresh index, balance 1000.
async fn open_account((client, index): (&Elasticsearch, &str)) -> Result<Value> {
    doc::fresh_index(client, index).await?;
    let account = json!({ "owner": "A. Client", "email": "old@example.com", "balance": 1000 });
    doc::put(client, index, ACCOUNT, account).await
}

/// Each server refuses with the status and words the chapter quotes; when the
/// run has two servers, both alike (the 404's reason aside).
fn check_refusals(refused: &[Vec<Answer>], claims: &mut Claims) {
    for answers in refused {
        for (answer, (status, words)) in answers.iter().zip(REFUSED) {
            let holds = answer.status == status && answer.reason().contains(words);
            claims.check(holds, format!("HTTP {status} {words:?}"));
        }
        let missing = answers[3].error_type() == "document_missing_exception";
        claims.check(
            missing,
            "a conditional _update of a missing document is a 404",
        );
    }
    if let [first, second] = refused {
        let words =
            |a: &[Answer]| a[..3].iter().map(Answer::summary).collect::<Vec<_>>();
        claims.check(words(first) == words(second), "both servers refuse alike");
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use harness::recorded;

    /// The recorded output shows the refusals in the words chapter 11 quotes, the 404's reason
    /// spelled as the chapter says by each server.
    #[test]
    fn the_recorded_output_is_the_one_the_chapter_tells() {
        let output = recorded::output("update_refusals");
        for (_, words) in REFUSED {
            assert!(
                output.contains(words),
                "update_refusals.txt lacks {words:?}"
            );
        }
        assert!(output.contains("HTTP 404 document_missing_exception"));
        for run in recorded::results("update_refusals") {
            assert_eq!(run["statuses"], json!([400, 400, 400, 404]));
        }
        assert!(!output.contains("RESULT") && !output.contains("claim holds"));
        let chapter = recorded::chapter("ch11-00-partial-updates-and-deletes.md");
        for pattern in [
            r"`(\[99999\]: document missing)` by the release",
            r"`(\[_doc\]\[99999\]: document missing)` by the 7\.x",
        ] {
            let words = recorded::quoted(&chapter, pattern);
            assert!(output.contains(&words), "{words}");
        }
    }
}
