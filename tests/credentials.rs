//! Credentials in `ELASTICSEARCH_URL`, against a real Elasticsearch with security on: the right
//! ones work, wrong ones give one clear line, and the password is never printed.
//!
//! The secured node is the official release from Maven Central with one user in its file realm,
//! started on 127.0.0.1 by the same provisioning as the examples' local node
//! ([`Topology::secured`]), and reused across runs like it.

use std::time::Duration;

use provision::facts::SECURED_USER;
use provision::local::{self, Topology};

mod common;

/// `host:port` of the secured node, started if needed.
async fn secured_node() -> String {
    let started = local::ensure(Topology::secured())
        .await
        .expect("the secured node starts");
    started.url.rsplit('@').next().unwrap().to_string()
}

fn run_stale_write(url: &str) -> common::Run {
    common::run(
        "stale_write",
        &[],
        &[("ELASTICSEARCH_URL", url)],
        Duration::from_secs(120),
    )
}

/// With the right user and password in the URL, the example runs on the secured node; with a
/// wrong password it stops at once with one line naming the problem, without the password.
#[tokio::test]
async fn credentials_in_the_url_are_used_and_wrong_ones_reported() {
    let node = secured_node().await;
    let (user, password) = SECURED_USER;

    let run = run_stale_write(&format!("http://{user}:{password}@{node}"));
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains(r#""cluster":"url""#), "{run:?}");
    assert!(
        !run.stdout.contains(password) && !run.stderr.contains(password),
        "password printed"
    );

    let run = run_stale_write(&format!("http://{user}:not-{password}@{node}"));
    run.assert_one_line_error("rejected the credentials (HTTP 401)");
    assert!(!run.stderr.contains(password), "password printed: {run:?}");

    let run = run_stale_write(&format!("http://{node}"));
    run.assert_one_line_error("HTTP 401");
}
