//! The readers' default path, testcontainers, run for real.
//!
//! These tests need a container engine, so they are `#[ignore]`d in a plain `cargo test`.
//! CI runs them against Podman (`cargo xtask podman up`) with
//! `cargo test --test container_path -- --ignored`; with Docker, run the same command.
//!
//! They run the example binaries as a reader would, with `OCC_CLUSTER=container`, and then ask
//! the engine itself whether any container of this project is left.

use std::time::Duration;

use testcontainers::bollard::query_parameters::ListContainersOptionsBuilder;
use testcontainers::core::client::docker_client_instance;

mod common;

/// Containers labelled as this project's, running or not.
async fn leftovers() -> Vec<String> {
    let docker = docker_client_instance().await.expect("a container engine");
    let filters = std::collections::HashMap::from([(
        "label".to_string(),
        vec![provision::facts::CONTAINER_LABEL.to_string()],
    )]);
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    docker
        .list_containers(Some(options))
        .await
        .expect("listing containers")
        .into_iter()
        .map(|c| format!("{:?} {:?}", c.id, c.image))
        .collect()
}

/// On containers started by testcontainers, the race's three claims hold (the example exits 0
/// with three `RESULT` lines from the container path: none below 250, occ and server exactly
/// 250), and when it is done no container of the project is left.
#[tokio::test]
#[ignore = "needs a container engine; CI runs it against Podman"]
async fn race_claims_hold_on_containers_and_none_is_left_behind() {
    assert!(
        leftovers().await.is_empty(),
        "containers left from before: {:?}",
        leftovers().await
    );
    let run = common::run(
        "counter_race",
        &[],
        &[("OCC_CLUSTER", "container")],
        Duration::from_secs(600),
    );
    println!("{}{}", run.stdout, run.stderr);
    assert_eq!(run.code, Some(0), "a claim failed on the container path");
    let results = run.results();
    assert_eq!(results.len(), 3);
    for result in &results {
        assert_eq!(result["cluster"], "container", "{result}");
        let (final_count, expected) =
            (result["final"].as_u64(), result["expected"].as_u64());
        match result["strategy"].as_str() {
            Some("none") => assert!(final_count < expected, "{result}"),
            _ => assert_eq!(final_count, expected, "{result}"),
        }
    }
    assert!(
        leftovers().await.is_empty(),
        "left behind: {:?}",
        leftovers().await
    );
}

/// Part III on containers: the two faults it injects there, in one run of `paused_primary
/// --then kill` on three containers (a node's container paused under the race and resumed,
/// then the new primary's container killed under the race and started again); every claim
/// holds, from the container path, and no container is left. `failover_race` (chapter 18)
/// injects the same kill through the same `Nodes::kill` and `Nodes::restart`, and
/// `server_failover` the same on containers of the scripting image, which
/// `race_claims_hold_on_containers_and_none_is_left_behind` starts.
#[tokio::test]
#[ignore = "needs a container engine; CI runs it against Podman"]
async fn part_three_faults_hold_on_containers_and_none_is_left_behind() {
    let run = common::run(
        "paused_primary",
        &["--then", "kill"],
        &[("OCC_CLUSTER", "container")],
        Duration::from_secs(900),
    );
    println!("{}{}", run.stdout, run.stderr);
    assert_eq!(run.code, Some(0), "a claim failed on containers");
    let results = run.results();
    assert!(!results.is_empty(), "no RESULT line");
    for result in &results {
        assert_eq!(result["cluster"], "container", "{result}");
    }
    for fault in ["\npaused ", "\nkilled "] {
        assert!(run.stdout.contains(fault), "no{fault}line: {}", run.stdout);
    }
    assert!(
        leftovers().await.is_empty(),
        "left behind: {:?}",
        leftovers().await
    );
}

/// A container that is not healthy in time gives one clear error line, after the end of its
/// log, and is removed all the same. The node is told to serve HTTP on a port nobody asks, so it
/// can never answer the health check, however fast the machine: the outcome does not depend on
/// how long the node takes to start, only the wait's length does.
#[tokio::test]
#[ignore = "needs a container engine; CI runs it against Podman"]
async fn a_container_not_healthy_in_time_is_reported_with_its_log() {
    let elsewhere = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port on 127.0.0.1")
        .port();
    let settings = format!("http.port={elsewhere}");
    let run = common::run(
        "stale_write",
        &[],
        &[
            ("OCC_CLUSTER", "container"),
            ("OCC_START_TIMEOUT_SECS", "20"),
            ("OCC_CONTAINER_SETTINGS", &settings),
        ],
        Duration::from_secs(120),
    );
    println!("{}", run.stderr);
    assert_eq!(run.code, Some(1));
    let last = run.stderr.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: container ")
            && last.contains("did not become healthy within 20s"),
        "{last}"
    );
    // The end of its log comes first: what it printed, or a line that says it printed nothing.
    assert!(
        run.stderr.contains("  container| "),
        "no log lines before the error"
    );
    assert!(
        leftovers().await.is_empty(),
        "left behind: {:?}",
        leftovers().await
    );
}
