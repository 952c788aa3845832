//! Every console request the book shows is sent to a real Elasticsearch, in the order its
//! chapter gives, and what comes back is checked against what the book says it is.
//!
//! A console block is a fenced block whose info string is `http`, holding requests as a reader
//! types them in Kibana's Dev Tools console: a line `METHOD /path?query`, then the JSON body, if
//! any (for `_bulk`, one JSON object a line). The line after the block says what each request
//! gets back, in order, `|`-separated: the HTTP status, then `field=value` pairs (a dotted path
//! into the answer, `error.type`, `items.0.index.status`):
//!
//! ```text
//! <!-- expect: 201 result=created _seq_no=0 | 409 error.type=version_conflict_engine_exception -->
//! ```
//!
//! `expect(scripting)` sends the chapter's requests to an Elasticsearch that runs scripts (on the
//! local and container paths, the second server `Cluster::for_needs` finds). A block that is
//! only illustrative says so instead, `<!-- illustrative: why -->`, and is not sent. Before a
//! chapter's requests, each index they name is made fresh (one shard, no replicas), as the
//! examples' indices are.

use std::fs;
use std::path::Path;

use elasticsearch::http::headers::{CONTENT_TYPE, HeaderMap, HeaderValue};
use elasticsearch::http::{Method, StatusCode};
use esbook::{Cluster, Needs, doc};
use serde_json::Value;

/// One request of a console block, and what the book says comes back.
#[derive(Debug)]
struct Request {
    method: String,
    path: String,
    body: Vec<String>,
    status: u16,
    fields: Vec<(String, String)>,
}

/// A chapter's console requests, in order.
struct Chapter {
    file: String,
    requests: Vec<Request>,
    scripting: bool,
    blocks: usize,
    illustrative: usize,
}

/// The chapters in SUMMARY.md's order, each with the requests of its console blocks.
fn chapters() -> Vec<Chapter> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let summary =
        fs::read_to_string(src.join("SUMMARY.md")).expect("src/SUMMARY.md");
    let mut chapters = Vec::new();
    for file in summary
        .split("](")
        .skip(1)
        .filter_map(|s| s.split(')').next())
    {
        let text = fs::read_to_string(src.join(file)).expect("a chapter");
        chapters.push(parse(file, &text));
    }
    chapters
}

/// The console blocks of chapter `file`, and their expectations.
fn parse(file: &str, text: &str) -> Chapter {
    let mut chapter = Chapter {
        file: file.to_string(),
        requests: Vec::new(),
        scripting: false,
        blocks: 0,
        illustrative: 0,
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() != "```http" {
            i += 1;
            continue;
        }
        let start = i + 1;
        let end = start
            + lines[start..]
                .iter()
                .position(|l| l.trim() == "```")
                .unwrap_or_else(|| panic!("{file}: a console block is not closed"));
        let after = lines[end + 1..]
            .iter()
            .find(|l| !l.trim().is_empty())
            .map(|l| l.trim())
            .unwrap_or_default();
        i = end + 1;
        if after.starts_with("<!-- illustrative:") {
            chapter.illustrative += 1;
            continue;
        }
        let (scripting, expected) = if let Some(rest) =
            after.strip_prefix("<!-- expect(scripting):")
        {
            (true, rest)
        } else if let Some(rest) = after.strip_prefix("<!-- expect:") {
            (false, rest)
        } else {
            panic!(
                "{file}: the console block at line {start} is followed by neither \
                 `<!-- expect: ... -->` nor `<!-- illustrative: ... -->`"
            );
        };
        chapter.scripting |= scripting;
        chapter.blocks += 1;
        let expected: Vec<&str> =
            expected.trim_end_matches("-->").split('|').collect();
        let mut requests: Vec<Request> = Vec::new();
        for line in &lines[start..end] {
            let first = line.split_whitespace().next().unwrap_or_default();
            if ["GET", "PUT", "POST", "DELETE", "HEAD"].contains(&first) {
                let path = line.trim()[first.len()..].trim().to_string();
                requests.push(Request {
                    method: first.to_string(),
                    path,
                    body: Vec::new(),
                    status: 0,
                    fields: Vec::new(),
                });
            } else if !line.trim().is_empty() {
                let request = requests.last_mut().unwrap_or_else(|| {
                    panic!("{file}: a body before any request: {line}")
                });
                request.body.push(line.to_string());
            }
        }
        assert_eq!(
            requests.len(),
            expected.len(),
            "{file}: the block at line {start} has {} requests and {} expectations",
            requests.len(),
            expected.len()
        );
        for (request, expected) in requests.iter_mut().zip(expected) {
            let mut words = expected.split_whitespace();
            request.status = words
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| {
                    panic!("{file}: an expectation without a status: {expected}")
                });
            request.fields = words
                .map(|w| {
                    let (path, value) = w
                        .split_once('=')
                        .unwrap_or_else(|| panic!("{file}: not field=value: {w}"));
                    (path.to_string(), value.to_string())
                })
                .collect();
        }
        chapter.requests.extend(requests);
    }
    chapter
}

/// The answer's value at a dotted `path` (`error.type`, `items.0.index.status`), as text.
fn at(answer: &Value, path: &str) -> String {
    let mut value = answer;
    for part in path.split('.') {
        value = match part.parse::<usize>() {
            Ok(index) if value.is_array() => &value[index],
            _ => &value[part],
        };
    }
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The index a request's path names, if any (`/bank/_doc/1` names `bank`).
fn index_of(path: &str) -> Option<String> {
    let first = path.trim_start_matches('/').split(['/', '?']).next()?;
    (!first.is_empty() && !first.starts_with('_')).then(|| first.to_string())
}

async fn send(cluster: &Cluster, request: &Request) -> (u16, Value) {
    let method = match request.method.as_str() {
        "GET" => Method::Get,
        "PUT" => Method::Put,
        "POST" => Method::Post,
        "DELETE" => Method::Delete,
        _ => Method::Head,
    };
    let (path, query) = request.path.split_once('?').unwrap_or((&request.path, ""));
    let query: Vec<(&str, &str)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    let mut headers = HeaderMap::new();
    let bulk = path.ends_with("/_bulk") || path == "/_bulk";
    let body = if request.body.is_empty() {
        None
    } else if bulk {
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        );
        Some(request.body.join("\n") + "\n")
    } else {
        Some(request.body.join("\n"))
    };
    let response = cluster
        .client
        .send(method, path, headers, Some(&query), body, None)
        .await
        .unwrap_or_else(|e| panic!("{} {}: {e}", request.method, request.path));
    let status = response.status_code();
    let answer = if status == StatusCode::NO_CONTENT || request.method == "HEAD" {
        Value::Null
    } else {
        response.json().await.unwrap_or(Value::Null)
    };
    (status.as_u16(), answer)
}

/// Every console block of the book, sent in order to a real Elasticsearch: each status and
/// each field the book states comes back as stated.
#[tokio::test]
async fn every_console_request_in_the_book_answers_as_the_book_says() {
    let core = Cluster::connect(Needs::Core).await.expect("a cluster");
    let (mut blocks, mut sent, mut illustrative) = (0, 0, 0);
    for chapter in chapters() {
        illustrative += chapter.illustrative;
        if chapter.requests.is_empty() {
            continue;
        }
        let cluster = if chapter.scripting {
            core.for_needs(Needs::Scripting)
                .await
                .expect("a scripting cluster")
        } else {
            core.clone()
        };
        let mut indices: Vec<String> = chapter
            .requests
            .iter()
            .filter_map(|r| index_of(&r.path))
            .collect();
        indices.sort();
        indices.dedup();
        for index in &indices {
            doc::fresh_index(&cluster.client, index)
                .await
                .expect("a fresh index");
        }
        for request in &chapter.requests {
            let (status, answer) = send(&cluster, request).await;
            let shown =
                format!("{}: {} {}", chapter.file, request.method, request.path);
            assert_eq!(status, request.status, "{shown} answered {answer}");
            for (path, value) in &request.fields {
                assert_eq!(
                    &at(&answer, path),
                    value,
                    "{shown}: {path} in {answer}"
                );
            }
            sent += 1;
        }
        blocks += chapter.blocks;
    }
    println!(
        "console blocks run: {blocks}, requests sent: {sent}, illustrative blocks: {illustrative}"
    );
    assert!(blocks > 0, "no console block in the book");
}

/// The parser reads a block as the book writes it: requests, bodies, and what each gets back.
#[test]
fn a_console_block_is_read_request_by_request() {
    let text = "```http\nPUT /bank/_doc/1?refresh=true\n{ \"balance\": 1000 }\n\nGET /bank/_doc/1\n```\n\n<!-- expect: 201 result=created | 200 _source.balance=1000 -->\n";
    let chapter = parse("ch.md", text);
    assert_eq!(chapter.blocks, 1);
    let [put, get] = chapter.requests.as_slice() else {
        panic!("{:?}", chapter.requests)
    };
    assert_eq!(
        (put.method.as_str(), put.path.as_str()),
        ("PUT", "/bank/_doc/1?refresh=true")
    );
    assert_eq!(put.body, ["{ \"balance\": 1000 }"]);
    assert_eq!((put.status, get.status), (201, 200));
    assert_eq!(
        get.fields,
        [("_source.balance".to_string(), "1000".to_string())]
    );
    assert_eq!(index_of(&get.path).as_deref(), Some("bank"));
    assert_eq!(
        at(
            &serde_json::json!({ "items": [{ "index": { "status": 409 } }] }),
            "items.0.index.status"
        ),
        "409"
    );
}
