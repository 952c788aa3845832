//! Bad input gets one clear line on stderr and a non-zero exit: never a panic, never a hang.
//!
//! These run the real example binaries (built once, by Cargo, on first use) as a reader would,
//! with the bad environment or flags, and look at what comes out. Wrong credentials are tested
//! against a real secured Elasticsearch in `tests/credentials.rs`.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

/// Longest any of these may take; a run still going then is a hang.
const HANG: Duration = Duration::from_secs(60);

/// What a run of an example gave.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stderr: String,
    took: Duration,
}

/// Runs example `name` with `args` and exactly the cluster-related variables in `env`.
fn run_example(name: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(common::example(name));
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for var in [
        "ELASTICSEARCH_URL",
        "OCC_CLUSTER",
        "DOCKER_HOST",
        "ELASTICSEARCH_CA_CERT",
    ] {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    let started = Instant::now();
    let mut child = command.spawn().expect("the example starts");
    let mut stderr = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).ok();
        text
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > HANG {
            child.kill().ok();
            panic!("{name} {args:?} with {env:?} hung for {HANG:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Run {
        code: status.code(),
        stderr: reader.join().expect("stderr reader"),
        took: started.elapsed(),
    }
}

/// The run failed with exactly one line, `error: ...` containing `needle`, and no panic.
fn assert_one_line_error(run: &Run, needle: &str) {
    assert!(!run.stderr.contains("panicked"), "panic: {run:?}");
    assert_eq!(run.code, Some(1), "exit code: {run:?}");
    let lines: Vec<&str> = run.stderr.trim_end().lines().collect();
    assert_eq!(lines.len(), 1, "one line expected: {run:?}");
    assert!(lines[0].starts_with("error: "), "{run:?}");
    assert!(lines[0].contains(needle), "{needle:?} missing: {run:?}");
}

/// Nothing listens at the URL: the error names the URL, well within 30 seconds.
#[test]
fn unreachable_url_fails_fast_naming_it() {
    let run = run_example(
        "counter_race",
        &[],
        &[("ELASTICSEARCH_URL", "http://127.0.0.1:1")],
    );
    assert_one_line_error(&run, "cannot reach Elasticsearch at http://127.0.0.1:1");
    assert!(run.took < Duration::from_secs(30), "took {:?}", run.took);
}

/// A URL that does not parse, and one that is not http(s), are refused before any request.
#[test]
fn malformed_url_is_refused() {
    let run =
        run_example("lost_update", &[], &[("ELASTICSEARCH_URL", "not a url")]);
    assert_one_line_error(&run, r#"ELASTICSEARCH_URL "not a url" is not a URL"#);
    let run = run_example(
        "lost_update",
        &[],
        &[("ELASTICSEARCH_URL", "ftp://127.0.0.1:9200")],
    );
    assert_one_line_error(&run, "must look like http://host:9200");
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
        assert_one_line_error(
            &run,
            &format!("--clients must be a whole number from 1 to 100, {shown}"),
        );
    }
    let run = run_example("counter_race", &["--strategy", "fast"], &[]);
    assert_one_line_error(&run, "--strategy must be one of all, none, occ, server");
    let run = run_example(
        "counter_race",
        &["--clinets", "5"],
        &[("ELASTICSEARCH_URL", "http://127.0.0.1:1")],
    );
    assert_one_line_error(&run, "unknown flag --clinets");
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
    assert_one_line_error(
        &run,
        "no container engine answered at unix:///nonexistent/occ-book.sock",
    );
    assert!(run.took < Duration::from_secs(30), "took {:?}", run.took);
}

/// A misspelt `OCC_CLUSTER` is named, not ignored.
#[test]
fn unknown_cluster_path_is_refused() {
    let run = run_example("lost_update", &[], &[("OCC_CLUSTER", "docker")]);
    assert_one_line_error(
        &run,
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
    assert_one_line_error(
        &run,
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
