//! Credentials in `ELASTICSEARCH_URL`, against a real Elasticsearch with security on: the right
//! ones work, wrong ones give one clear line, and the password is never printed.
//!
//! The secured nodes are the official release from Maven Central with one user in its file
//! realm, started on 127.0.0.1 by the same provisioning as the examples' local node and reused
//! across runs like it: one over plain HTTP ([`Topology::secured`]), one over HTTPS with a
//! certificate signed by a CA generated at its first start with the distribution's own
//! `elasticsearch-certutil` ([`Topology::tls`]).

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

/// `host:port` of the TLS node, started if needed, and its CA certificate.
async fn tls_node() -> (String, std::path::PathBuf) {
    let started = local::ensure(Topology::tls())
        .await
        .expect("the TLS node starts");
    let node = started.url.rsplit('@').next().unwrap().to_string();
    (node, local::ca_certificate(Topology::tls()))
}

fn run_with(url: &str, ca: Option<&std::path::Path>) -> common::Run {
    let ca = ca.map(|p| p.to_string_lossy().to_string());
    let mut env = vec![("ELASTICSEARCH_URL", url)];
    if let Some(ca) = &ca {
        env.push(("ELASTICSEARCH_CA_CERT", ca));
    }
    common::run("stale_write", &[], &env, Duration::from_secs(120))
}

/// HTTPS with a certificate signed by a CA made at test time: with that CA and the right
/// credentials the example runs; without the CA, with another CA, or with a wrong password it
/// stops with one line that says what to fix, and never prints the password.
#[tokio::test]
async fn tls_with_the_right_ca_works_and_every_mistake_is_one_clear_line() {
    let (node, ca) = tls_node().await;
    let (user, password) = SECURED_USER;
    let url = format!("https://{user}:{password}@{node}");
    let no_password = |run: &common::Run| {
        assert!(
            !run.stdout.contains(password) && !run.stderr.contains(password),
            "password printed: {run:?}"
        );
    };

    let run = run_with(&url, Some(&ca));
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains(r#""cluster":"url""#), "{run:?}");
    assert!(run.stdout.contains(&format!("https://{node}")), "{run:?}");
    no_password(&run);

    let run = run_with(&url, None);
    run.assert_one_line_error(
        "not signed by a CA this client trusts; set ELASTICSEARCH_CA_CERT",
    );
    no_password(&run);

    let other = std::env::temp_dir()
        .join(format!("occ-book-other-ca-{}", std::process::id()));
    let other_ca = provision::tls::new_authority(&other, "some other CA")
        .await
        .expect("another CA");
    let run = run_with(&url, Some(&other_ca.cert));
    run.assert_one_line_error("not signed by the CA in ELASTICSEARCH_CA_CERT");
    no_password(&run);
    std::fs::remove_dir_all(&other).ok();

    let run = run_with(&format!("https://{user}:not-{password}@{node}"), Some(&ca));
    run.assert_one_line_error("rejected the credentials (HTTP 401)");
    no_password(&run);

    let run = run_with(&format!("http://{user}:{password}@{node}"), Some(&ca));
    run.assert_one_line_error("if it expects TLS, use https://");
    no_password(&run);
}
