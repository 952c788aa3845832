//! Credentials in `ELASTICSEARCH_URL`, against a real Elasticsearch with security on: the right
//! ones work, wrong ones give one clear line, and the password is never printed.
//!
//! The secured node is the official 9.5.4 build from Maven Central with one user in its file
//! realm, started on 127.0.0.1 by the same support code as the examples' local node
//! ([`occ::cluster::engine::SECURED`]), and reused across runs like it.

use std::process::{Command, Stdio};

use occ::cluster::{engine, local};

mod common;

/// `host:port` of the secured node, started if needed.
async fn secured_node() -> String {
    let cluster = local::ensure(&engine::SECURED)
        .await
        .expect("the secured node starts");
    cluster.url.trim_start_matches("http://").to_string()
}

fn run_stale_write(url: &str) -> (Option<i32>, String, String) {
    let output = Command::new(common::example("stale_write"))
        .env("ELASTICSEARCH_URL", url)
        .env_remove("OCC_CLUSTER")
        .stdin(Stdio::null())
        .output()
        .expect("the example runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// With the right user and password in the URL, the example runs on the secured node; with a
/// wrong password it stops at once with one line naming the problem, without the password.
#[tokio::test]
async fn credentials_in_the_url_are_used_and_wrong_ones_reported() {
    let node = secured_node().await;
    let engine::Security::Basic { user, password } = engine::SECURED.security
    else {
        panic!("SECURED has credentials");
    };

    let (code, stdout, stderr) =
        run_stale_write(&format!("http://{user}:{password}@{node}"));
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains(r#""cluster":"url""#), "{stdout}");
    assert!(
        !stdout.contains(password) && !stderr.contains(password),
        "password printed"
    );

    let (code, stdout, stderr) =
        run_stale_write(&format!("http://{user}:not-{password}@{node}"));
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    let lines: Vec<&str> = stderr.trim_end().lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].contains("rejected the credentials (HTTP 401)"),
        "{stderr}"
    );
    assert!(!stderr.contains(password), "password printed: {stderr}");

    let (code, _, stderr) = run_stale_write(&format!("http://{node}"));
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("HTTP 401"),
        "no credentials at all: {stderr}"
    );
}
