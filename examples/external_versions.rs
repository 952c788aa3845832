//! Chapter 13, the edges of external versioning, one request at a time: an equal version with
//! other content (`external` refuses it, `external_gte` overwrites it), a write without a
//! version into an externally versioned document (it bumps `_version`, and the source's next
//! real change is then refused as stale), a delete with a version (its tombstone turns older
//! changes away), and the requests that refuse an external version outright: `if_seq_no` with
//! one, the update API, and `_create`.
//!
//! Run it: `cargo run --example external_versions`. You should see each request and the
//! server's answer on one line: 201/200 for what is written, 409 for what is stale, 400 for
//! what the server refuses, in its own words.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Result;
use elasticsearch::http::{Method, headers::HeaderMap};
use elasticsearch::params::VersionType::{self, External, ExternalGte};
use elasticsearch::{CreateParts, DeleteParts, Elasticsearch, IndexParts};
use esbook::{Cluster, Needs, answer::Answer, doc};
use harness::{Claims, report};
use serde_json::json;

const INDEX: &str = "products";

// ANCHOR: put
/// `PUT /products/_doc/{id}` with `{"price": price}`, and `?version=...&version_type=...` if
/// `version` is given; prints the request and the answer on one line.
async fn put(
    client: &Elasticsearch,
    id: &str,
    price: i64,
    version: Option<(i64, VersionType)>,
) -> Result<Answer> {
    let mut request = client
        .index(IndexParts::IndexId(INDEX, id))
        .body(json!({ "price": price }));
    let mut shown = "(no version)".to_string();
    if let Some((version, version_type)) = version {
        request = request.version(version).version_type(version_type);
        let version_type = json!(version_type); // "external", "external_gte"
        shown = format!(
            "version={version}&version_type={}",
            version_type.as_str().unwrap()
        );
    }
    let answer = Answer::of(request.send().await?).await?;
    println!(
        "PUT {id} {{\"price\":{price}}} {shown} -> {}",
        answer.summary()
    );
    Ok(answer)
}
// ANCHOR_END: put

/// What the edges came back with, for the checks.
struct Edges {
    equal_external: Answer,
    equal_gte: Answer,
    equal_after: doc::Versioned,
    plain: Answer,
    after_plain: Answer,
    deleted: Answer,
    after_delete: Answer,
    gone: bool,
    with_if_seq_no: Answer,
    update: Answer,
    create: Answer,
}

async fn edges(client: &Elasticsearch) -> Result<Edges> {
    // ANCHOR: equal
    doc::fresh_index(client, INDEX).await?;
    println!("== an equal version with different content");
    // The newer content at version 5 arrives first; an older one that carries the same
    // version 5 (two edits within one tick of the source's version clock) arrives second.
    put(client, "eq", 20, Some((5, External))).await?;
    let equal_external = put(client, "eq", 10, Some((5, External))).await?;
    let equal_gte = put(client, "eq", 10, Some((5, ExternalGte))).await?;
    let equal_after = doc::read(client, INDEX, "eq").await?;
    let (price, version) = (equal_after.number("price")?, equal_after.version);
    println!("the document now: price {price} at _version {version}");
    // ANCHOR_END: equal

    // ANCHOR: plain
    println!("\n== a plain write into an externally versioned document");
    put(client, "mix", 30, Some((5, External))).await?;
    let plain = put(client, "mix", 99, None).await?; // counts the old way: 5 -> 6
    let after_plain = put(client, "mix", 31, Some((6, External))).await?; // the real 6
    // ANCHOR_END: plain

    // ANCHOR: delete
    println!("\n== a delete with a version");
    put(client, "del", 40, Some((6, External))).await?;
    let request = client.delete(DeleteParts::IndexId(INDEX, "del"));
    let deleted =
        Answer::of(request.version(7).version_type(External).send().await?).await?;
    println!(
        "DELETE del version=7&version_type=external -> {}",
        deleted.summary()
    );
    let after_delete = put(client, "del", 40, Some((6, External))).await?; // late
    let gone = doc::find(client, INDEX, "del").await?.is_none();
    // ANCHOR_END: delete

    // ANCHOR: refused
    println!("\n== requests that take no external version");
    // A compare-and-write condition and an external version on one write.
    let seen = doc::read(client, INDEX, "mix").await?;
    let request = client
        .index(IndexParts::IndexId(INDEX, "mix"))
        .if_seq_no(seen.seq_no)
        .if_primary_term(seen.primary_term)
        .version(seen.version + 1)
        .version_type(External)
        .body(json!({ "price": 32 }));
    let with_if_seq_no = Answer::of(request.send().await?).await?;
    let (s, p, v) = (seen.seq_no, seen.primary_term, seen.version + 1);
    println!(
        "PUT mix if_seq_no={s}&if_primary_term={p}&version={v}&version_type=external -> {}",
        with_if_seq_no.summary()
    );
    // The update API: the client has no version parameter for it, so by hand.
    let query = [
        ("version", v.to_string()),
        ("version_type", "external".into()),
    ];
    let body = json!({ "doc": { "price": 33 } }).to_string();
    let path = format!("/{INDEX}/_update/mix");
    let sent = client.send(
        Method::Post,
        &path,
        HeaderMap::new(),
        Some(&query),
        Some(body),
        None,
    );
    let update = Answer::of(sent.await?).await?;
    println!(
        "POST _update/mix version={v}&version_type=external -> {}",
        update.summary()
    );
    // `_create`, with an external version.
    let request = client.create(CreateParts::IndexId(INDEX, "new")).version(1);
    let request = request.version_type(External).body(json!({ "price": 50 }));
    let create = Answer::of(request.send().await?).await?;
    println!(
        "PUT _create/new version=1&version_type=external -> {}",
        create.summary()
    );
    // ANCHOR_END: refused
    Ok(Edges {
        equal_external,
        equal_gte,
        equal_after,
        plain,
        after_plain,
        deleted,
        after_delete,
        gone,
        with_if_seq_no,
        update,
        create,
    })
}

const USAGE: &str = "usage: cargo run --example external_versions (no flags)";

#[tokio::main]
async fn main() -> ExitCode {
    harness::run_example(USAGE, Needs::Core, |cluster| async move {
        let started = Instant::now();
        let seen = edges(&cluster.client).await?;
        Ok(check(&cluster, &seen, started.elapsed()))
    })
    .await
}

/// The chapter's claims about the edges, checked quietly, and the machine-readable result.
fn check(cluster: &Cluster, seen: &Edges, elapsed: Duration) -> Claims {
    let mut claims = Claims::new();
    let refused = |answer: &Answer, words: &str| {
        answer.status == 400 && answer.reason().contains(words)
    };
    let gte_wrote = seen.equal_gte.status == 200 && seen.equal_after.version == 5;
    let price = seen.equal_after.number("price").unwrap_or_default();
    let mut c = |holds: bool, what: &str| claims.check(holds, what);
    c(
        seen.equal_external.status == 409,
        "external: an equal version is a 409",
    );
    c(
        gte_wrote && price == 10,
        "external_gte: an equal version overwrites",
    );
    c(
        seen.plain.body["_version"] == 6,
        "a plain write bumps _version to 6",
    );
    c(
        seen.after_plain.status == 409,
        "the source's change 6 is then a 409",
    );
    c(
        seen.deleted.status == 200,
        "a delete takes an external version",
    );
    c(
        seen.after_delete.status == 409 && seen.gone,
        "the late change is a 409",
    );
    let words = "compare and write operations can not use versioning";
    c(
        refused(&seen.with_if_seq_no, words),
        "if_seq_no + external: HTTP 400",
    );
    let words = "internal versioning can not be used";
    c(refused(&seen.update, words), "_update + external: HTTP 400");
    let words = "create operations only support internal versioning";
    c(refused(&seen.create, words), "_create + external: HTTP 400");
    report::result(
        cluster,
        elapsed,
        json!({
            "example": "external_sync",
            "mode": "edges",
            "equal_version_external": seen.equal_external.status,
            "equal_version_external_gte": seen.equal_gte.status,
            "after_plain_write": seen.after_plain.status,
            "after_delete": seen.after_delete.status,
            "if_seq_no_with_external": seen.with_if_seq_no.status,
            "update_with_external": seen.update.status,
            "create_with_external": seen.create.status,
        }),
    );
    claims
}

#[cfg(test)]
mod tests {
    use harness::recorded;

    /// The recorded run answered each edge as the chapter says.
    #[test]
    fn the_recorded_edges_are_409s_and_400s() {
        let edges = recorded::result("external_versions", "mode", "edges");
        assert_eq!(edges["example"], "external_sync");
        assert_eq!(edges["equal_version_external"], 409);
        assert_eq!(edges["equal_version_external_gte"], 200);
        assert_eq!(edges["after_plain_write"], 409);
        assert_eq!(edges["after_delete"], 409);
        assert_eq!(edges["if_seq_no_with_external"], 400);
        assert_eq!(edges["update_with_external"], 400);
        assert_eq!(edges["create_with_external"], 400);
    }

    /// What chapter 13 quotes from the output is in the output, word for word.
    #[test]
    fn the_chapter_quotes_the_recorded_answers() {
        let chapter = recorded::chapter("ch13-00-external-versions.md");
        let chapter = chapter.split_whitespace().collect::<Vec<_>>().join(" ");
        let output = recorded::output("external_versions");
        let quoted = [
            r"refused as stale \(`(current version \[6\] is higher [^`]+)`\)",
            r"HTTP 400, `(compare and write operations can not use versioning)`",
            r"`_update` \.\.\. `(internal versioning can not be used [^`]+)`",
            r"`_create` \.\.\. `(create operations only support [^`]+)`",
        ];
        for pattern in quoted {
            let words = recorded::quoted(&chapter, pattern);
            assert!(output.contains(&words), "the output does not say {words:?}");
        }
        let plain = r"PUT mix \{.price.:99\} \(no version\) -> .* _version=(\d+)";
        assert_eq!(
            recorded::quoted(&output, plain),
            recorded::quoted(&chapter, r"which becomes `_version` (\d+)")
        );
        let now = recorded::quoted(&output, r"the document now: price (\d+) at");
        let replaced = r"price 20 is replaced by the older (\d+)";
        assert_eq!(now, recorded::quoted(&chapter, replaced));
        let by_hand = recorded::quoted(&chapter, r"Sent by hand with `([^`]+)`");
        assert!(
            output.contains(&format!("POST _update/mix {by_hand} -> HTTP 400"))
        );
        let deleted = recorded::quoted(&output, r"DELETE del version=(\d+)");
        let prose = r"deletes a document at version (\d+)";
        assert_eq!(deleted, recorded::quoted(&chapter, prose));
    }
}
