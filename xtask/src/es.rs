//! `cargo es ...`: the local Elasticsearch nodes the examples start and reuse.

use anyhow::{Result, bail};
use provision::facts::{Build, SCRIPTING};
use provision::java;
use provision::local::{self, Topology};

const USAGE: &str = "usage: cargo es doctor | status | start [--nodes N | --scripting | --secured | --tls] | stop \
| kill NODE | restart NODE (NODE of the three-node cluster: node-1, node-2, node-3)";

pub async fn run(args: &[&str]) -> Result<()> {
    match args {
        ["doctor"] => doctor(),
        ["status"] => {
            for topology in Topology::all() {
                status(topology);
            }
            Ok(())
        }
        ["start", rest @ ..] => {
            let topology = match rest {
                [] => Topology::single(&provision::facts::RELEASE),
                ["--scripting"] => Topology::single(&SCRIPTING),
                ["--secured"] => Topology::secured(),
                ["--tls"] => Topology::tls(),
                ["--nodes", n] => match n.parse::<usize>() {
                    Ok(1) => Topology::single(&provision::facts::RELEASE),
                    Ok(n @ 2..=5) => Topology::cluster(n),
                    _ => bail!(
                        "--nodes must be a whole number from 1 to 5, got {n:?}"
                    ),
                },
                _ => bail!("{USAGE}"),
            };
            local::ensure(topology).await?;
            status(topology);
            Ok(())
        }
        ["stop"] => {
            for topology in Topology::all() {
                match local::stop(topology).await? {
                    Some(state) => println!(
                        "stopped {} ({} node(s))",
                        topology.name(),
                        state.nodes.len()
                    ),
                    None => println!("{} was not running", topology.name()),
                }
            }
            Ok(())
        }
        ["kill", node] => {
            local::kill_node(Topology::cluster(3), node).await?;
            println!("killed {node} of {}", Topology::cluster(3).name());
            Ok(())
        }
        ["restart", node] => {
            local::restart_node(Topology::cluster(3), node).await?;
            println!("{node} of {} is back", Topology::cluster(3).name());
            Ok(())
        }
        _ => bail!("{USAGE}"),
    }
}

/// Checks, before anything is downloaded, that this machine can run every server the book
/// uses: a Java in range for each (a JDK for the scripting build, whose small main is compiled
/// at install), Maven and unzip.
fn doctor() -> Result<()> {
    let mut problems = Vec::new();
    for server in [&provision::facts::RELEASE, &SCRIPTING] {
        match java::find(&server.java) {
            Ok(java) => {
                let javac = match server.build {
                    Build::ClusterRunner { .. } => java.javac().map(drop),
                    Build::Distribution { .. } => Ok(()),
                };
                match javac {
                    Ok(()) => println!(
                        "Elasticsearch {}: Java {} at {}",
                        server.version,
                        java.major,
                        java.home.display()
                    ),
                    Err(e) => problems
                        .push(format!("Elasticsearch {}: {e}", server.version)),
                }
            }
            Err(e) => {
                problems.push(format!("Elasticsearch {}: {e}", server.version))
            }
        }
    }
    for tool in ["mvn", "unzip"] {
        if !provision::on_path(tool) {
            problems.push(format!(
                "{tool} is not installed (scripts/setup.sh installs it)"
            ));
        }
    }
    println!("cache: {}", provision::cache_dir().display());
    if problems.is_empty() {
        Ok(())
    } else {
        bail!("{}", problems.join("; "))
    }
}

fn status(topology: Topology) {
    let Some(state) = local::read_state_of(topology) else {
        println!("{} not running", topology.name());
        return;
    };
    for node in &state.nodes {
        println!(
            "{} {} {} at {} (pid {})",
            topology.name(),
            node.name,
            if node.alive() { "running" } else { "DOWN" },
            topology.address(node.http_port),
            node.pid
        );
    }
}
