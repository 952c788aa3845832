//! Part III on the URL path: a reader's own cluster. The failover examples use it if it has
//! three nodes, and never kill one of its nodes themselves: they name the node and wait for the
//! reader to stop it and start it again.
//!
//! The "reader's cluster" here is the book's own local three-node cluster, given by
//! `ELASTICSEARCH_URL`; the test plays the reader, stopping and starting the node the example
//! names, as a person would.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use provision::facts::RELEASE;
use provision::local::{self, Topology};

mod common;

/// A single node is not enough: one line says how many nodes were found and what to do.
#[tokio::test]
async fn a_cluster_of_one_node_is_refused_in_one_line() {
    let started = local::ensure(Topology::single(&RELEASE))
        .await
        .expect("the single node starts");
    let run = common::run(
        "primary_terms",
        &[],
        &[("ELASTICSEARCH_URL", &started.url)],
        Duration::from_secs(60),
    );
    run.assert_one_line_error("needs a cluster of at least 3 nodes");
    assert!(run.stderr.contains("has 1"), "{run:?}");
}

/// Pointed at a three-node cluster by URL, the example reaches every node at the address it
/// publishes, asks for the primary's node to be stopped and started, and every claim holds.
#[tokio::test]
async fn on_your_cluster_the_example_asks_you_to_stop_and_start_the_node() {
    let topology = Topology::cluster(3);
    // Held like an example holds it: nobody else kills or restarts these nodes meanwhile.
    let _hold = local::exclusive(topology)
        .await
        .expect("the cluster's lock");
    let started = local::ensure(topology).await.expect("three nodes");
    let mut child = Command::new(common::example("primary_terms"))
        .env_remove("OCC_CLUSTER")
        .env_remove("ELASTICSEARCH_CA_CERT")
        .env("ELASTICSEARCH_URL", &started.url)
        .env("OCC_RESULTS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the example starts");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let (lines, asked) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            lines.send(line).ok();
        }
    });
    let output = std::thread::spawn(move || {
        std::io::read_to_string(stdout).unwrap_or_default()
    });

    let deadline = Instant::now() + Duration::from_secs(600);
    let mut stopped = None;
    let mut restarted = false;
    let mut stderr_seen = Vec::new();
    while Instant::now() < deadline {
        let Ok(line) = asked.recv_timeout(Duration::from_millis(200)) else {
            if child.try_wait().expect("wait").is_some() {
                break;
            }
            continue;
        };
        stderr_seen.push(line.clone());
        if let Some(node) = node_named(&line, "stop node ") {
            local::kill_node(topology, &node)
                .await
                .expect("the reader stops it");
            stopped = Some(node);
        } else if let Some(node) = node_named(&line, "start node ") {
            local::restart_node(topology, &node)
                .await
                .expect("the reader starts it again");
            restarted = true;
        }
    }
    let status = child.wait().expect("the example ends");
    let stdout = output.join().expect("stdout reader");
    assert!(status.success(), "{stdout}\n{}", stderr_seen.join("\n"));
    assert!(stopped.is_some() && restarted, "{}", stderr_seen.join("\n"));
    assert!(stdout.contains(r#""cluster":"url""#), "{stdout}");
    assert!(stdout.contains("stopped by you"), "{stdout}");
    assert!(stdout.contains("Checked: all "), "{stdout}");
}

/// The node named after `prefix` in a line such as "... stop node node-2 now ...".
fn node_named(line: &str, prefix: &str) -> Option<String> {
    let rest = &line[line.find(prefix)? + prefix.len()..];
    rest.split_whitespace().next().map(str::to_string)
}

/// Bad flags of the failover race are refused in one line, before anything connects.
#[test]
fn bad_flags_of_the_failover_race_are_refused() {
    let url = [("ELASTICSEARCH_URL", "http://127.0.0.1:1")];
    let run = common::run(
        "failover_race",
        &["--runs", "0"],
        &url,
        Duration::from_secs(60),
    );
    run.assert_one_line_error("--runs must be a whole number from 1 to 100");
    let run = common::run(
        "primary_terms",
        &["--nodes", "5"],
        &url,
        Duration::from_secs(60),
    );
    run.assert_one_line_error("unknown flag --nodes");
}
