//! Bad input gets one clear line on stderr and a non-zero exit: never a panic, never a hang.
//!
//! These run the real example binaries (built once, by Cargo, on first use) as a reader would,
//! with the bad environment or flags, and look at what comes out. Wrong credentials are tested
//! against a real secured Elasticsearch in `tests/credentials.rs`.

use std::time::Duration;

mod common;

/// A run still going after this is a hang. It bounds nothing else: none of these verdicts
/// depends on how fast the machine is (a run that reports the first request's failure takes a
/// fraction of a second; this is a hundred times that).
const HANG: Duration = Duration::from_secs(60);

fn run_example(name: &str, args: &[&str], env: &[(&str, &str)]) -> common::Run {
    common::run(name, args, env, HANG)
}

/// Nothing listens at the URL: the error names the URL, in one line (no retries, no waits).
#[test]
fn unreachable_url_fails_fast_naming_it() {
    let run = run_example(
        "counter_race",
        &[],
        &[("ELASTICSEARCH_URL", "http://127.0.0.1:1")],
    );
    run.assert_one_line_error("cannot reach Elasticsearch at http://127.0.0.1:1");
}

/// Every example, whichever chapter it serves: an unreachable cluster is one line naming it,
/// and a flag it does not know is refused before anything connects.
#[test]
fn every_example_reports_an_unreachable_cluster_and_an_unknown_flag() {
    let unreachable = [("ELASTICSEARCH_URL", "http://127.0.0.1:1")];
    let examples = common::examples();
    assert!(examples.len() > 15, "only {examples:?}");
    for example in &examples {
        let run = run_example(example, &[], &unreachable);
        run.assert_one_line_error(
            "cannot reach Elasticsearch at http://127.0.0.1:1",
        );
        let run = run_example(example, &["--no-such-flag", "1"], &unreachable);
        run.assert_one_line_error("unknown flag --no-such-flag");
    }
}

/// A URL that does not parse, and one that is not http(s), are refused before any request.
#[test]
fn malformed_url_is_refused() {
    let run =
        run_example("lost_update", &[], &[("ELASTICSEARCH_URL", "not a url")]);
    run.assert_one_line_error(r#"ELASTICSEARCH_URL "not a url" is not a URL"#);
    let run = run_example(
        "lost_update",
        &[],
        &[("ELASTICSEARCH_URL", "ftp://127.0.0.1:9200")],
    );
    run.assert_one_line_error("must look like http://host:9200");
}

/// `--clients 0` and `--clients abc` are refused before anything connects.
#[test]
fn bad_flags_are_refused() {
    for (value, shown) in [("0", r#"got "0""#), ("abc", r#"got "abc""#)] {
        let run = run_example(
            "counter_race",
            &["--clients", value],
            &[("ELASTICSEARCH_URL", "http://127.0.0.1:1")],
        );
        run.assert_one_line_error(&format!(
            "--clients must be a whole number from 1 to 100, {shown}"
        ));
    }
    let run = run_example("counter_race", &["--strategy", "fast"], &[]);
    run.assert_one_line_error("--strategy must be one of all, none, occ, server");
    let run = run_example(
        "counter_race",
        &["--clinets", "5"],
        &[("ELASTICSEARCH_URL", "http://127.0.0.1:1")],
    );
    run.assert_one_line_error("unknown flag --clinets");
}

/// The container path asked for with no engine behind `DOCKER_HOST`: a clear line, fast.
#[test]
fn no_container_engine_is_reported() {
    let run = run_example(
        "lost_update",
        &[],
        &[
            ("OCC_CLUSTER", "container"),
            ("DOCKER_HOST", "unix:///nonexistent/occ-book.sock"),
        ],
    );
    run.assert_one_line_error(
        "no container engine answered at unix:///nonexistent/occ-book.sock",
    );
}

/// A misspelt `OCC_CLUSTER` is named, not ignored.
#[test]
fn unknown_cluster_path_is_refused() {
    let run = run_example("lost_update", &[], &[("OCC_CLUSTER", "docker")]);
    run.assert_one_line_error(
        "OCC_CLUSTER must be one of auto, url, container, local",
    );
}

/// No URL, no container engine, and the local fallback impossible (its cache directory cannot
/// be created): one line saying what was tried and the three ways to fix it.
#[test]
fn nothing_available_names_what_was_tried_and_the_fixes() {
    let run = run_example(
        "lost_update",
        &[],
        &[
            ("DOCKER_HOST", "unix:///nonexistent/occ-book.sock"),
            ("OCC_CACHE_DIR", "/proc/occ-book-cannot-be-here"),
        ],
    );
    run.assert_one_line_error(
        "no Elasticsearch could be had: ELASTICSEARCH_URL is not set",
    );
    for tried_or_fix in [
        "no container engine answered at unix:///nonexistent/occ-book.sock",
        "the local fallback failed",
        "set ELASTICSEARCH_URL=http://host:9200",
        "start Docker (or Podman and set DOCKER_HOST)",
        "install Java 21+ and Maven",
    ] {
        assert!(
            run.stderr.contains(tried_or_fix),
            "{tried_or_fix:?} missing: {run:?}"
        );
    }
}

/// Part II's examples refuse what they do not know, before anything connects: a strategy the
/// upsert race does not have, and any flag at all for the examples that take none.
#[test]
fn part_two_examples_refuse_bad_flags() {
    let unreachable = [("ELASTICSEARCH_URL", "http://127.0.0.1:1")];
    let run = run_example("upsert_race", &["--strategy", "fast"], &unreachable);
    run.assert_one_line_error(
        "--strategy must be one of all, none, occ, upsert, scripted_upsert, compilations",
    );
    let run = run_example("upsert_race", &["--per-client", "0"], &unreachable);
    run.assert_one_line_error(
        "--per-client must be a whole number from 1 to 10000",
    );
    for example in ["create_race", "partial_update"] {
        let run = run_example(example, &["--clients", "5"], &unreachable);
        run.assert_one_line_error("unknown flag --clients");
    }
}

/// The examples of chapters 12 to 15 fail the same way as the others: an unreachable cluster
/// and a malformed URL are each one line, fast.
#[test]
fn many_document_examples_report_unreachable_and_malformed_urls() {
    for example in [
        "bulk_conflicts",
        "external_sync",
        "update_by_query",
        "hot_counter",
    ] {
        let run = run_example(
            example,
            &[],
            &[("ELASTICSEARCH_URL", "http://127.0.0.1:1")],
        );
        run.assert_one_line_error(
            "cannot reach Elasticsearch at http://127.0.0.1:1",
        );
        let run = run_example(example, &[], &[("ELASTICSEARCH_URL", "not a url")]);
        run.assert_one_line_error(r#"ELASTICSEARCH_URL "not a url" is not a URL"#);
    }
}

/// The flags of external_sync and hot_counter are checked before anything connects; the
/// examples without flags refuse any.
#[test]
fn many_document_examples_refuse_bad_flags() {
    let unreachable = [("ELASTICSEARCH_URL", "http://127.0.0.1:1")];
    let cases: [(&str, &[&str], &str); 9] = [
        (
            "external_sync",
            &["--workers", "0"],
            r#"--workers must be a whole number from 1 to 32, got "0""#,
        ),
        (
            "external_sync",
            &["--workers", "many"],
            r#"--workers must be a whole number from 1 to 32, got "many""#,
        ),
        (
            "external_sync",
            &["--mode", "internal"],
            "--mode must be one of all, none, external, external_gte",
        ),
        (
            "hot_counter",
            &["--shards", "0"],
            r#"--shards must be a whole number from 1 to 1000, got "0""#,
        ),
        (
            "hot_counter",
            &["--clients", "-3"],
            r#"--clients must be a whole number from 1 to 100, got "-3""#,
        ),
        (
            "hot_counter",
            &["--design", "locks"],
            "--design must be one of all, single, sharded, events",
        ),
        (
            "hot_counter",
            &["--per-client"],
            "--per-client needs a value",
        ),
        (
            "bulk_conflicts",
            &["--products", "5"],
            "unknown flag --products",
        ),
        ("update_by_query", &["now"], r#"unexpected argument "now""#),
    ];
    for (example, args, error) in cases {
        let run = run_example(example, args, &unreachable);
        run.assert_one_line_error(error);
    }
}
