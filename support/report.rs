//! How an example ends: `RESULT {json}` lines a machine can read, claims checked against what
//! really happened, and one clear line (never a panic) when something goes wrong.

use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Value, json};

use crate::cli::Args;
use crate::{Cluster, Needs};

/// Prints one machine-readable result line: `RESULT {"example":..., "expected":..., ...}`,
/// with what every result names: the server version that produced it, the path that provided
/// the cluster, and how long the run took.
///
/// The book's saved outputs and CI read these lines; the prose around them is for people.
pub fn result(cluster: &Cluster, elapsed: Duration, fields: Value) {
    let mut line = fields;
    if let Some(line) = line.as_object_mut() {
        line.insert("server_version".into(), json!(cluster.version));
        line.insert("cluster".into(), json!(cluster.source.to_string()));
        line.insert("elapsed_ms".into(), json!(elapsed.as_millis() as u64));
    }
    println!("RESULT {line}");
}

/// The claims an example makes about what it just saw. Each failed claim is printed; the
/// example exits non-zero if any failed, so CI notices when the book stops telling the truth.
#[derive(Debug, Default)]
pub struct Claims {
    checked: usize,
    failed: Vec<String>,
}

impl Claims {
    pub fn new() -> Claims {
        Claims::default()
    }

    /// Records the claim `what`; `holds` is whether the run bore it out.
    pub fn check(&mut self, holds: bool, what: impl Into<String>) {
        let what = what.into();
        self.checked += 1;
        if holds {
            println!("claim holds: {what}");
        } else {
            println!("CLAIM FAILED: {what}");
            self.failed.push(what);
        }
    }

    /// How many claims were checked.
    pub fn checked(&self) -> usize {
        self.checked
    }

    pub fn all_hold(&self) -> bool {
        self.failed.is_empty()
    }

    /// `Ok` if every claim held, else an error naming the ones that did not.
    pub fn into_result(self) -> anyhow::Result<()> {
        if self.failed.is_empty() {
            Ok(())
        } else {
            anyhow::bail!("claim(s) did not hold: {}", self.failed.join("; "))
        }
    }
}

/// The whole `main` of an example without flags: refuse any argument, connect to a cluster
/// that serves `needs`, run `body` on it, and exit non-zero if it failed or a claim did not hold.
pub async fn run_example<F, Fut>(usage: &str, needs: Needs, body: F) -> ExitCode
where
    F: FnOnce(Cluster) -> Fut,
    Fut: Future<Output = anyhow::Result<Claims>>,
{
    run_main(async {
        Args::from_env(usage)?.finish()?;
        let cluster = Cluster::connect(needs).await?;
        println!("Connected to {cluster}\n");
        body(cluster).await?.into_result()
    })
    .await
}

/// Runs an example's body and turns its outcome into an exit code: an error becomes one line
/// on stderr (`error: ...` with its causes, `:`-separated) and exit code 1.
///
/// Everything the body owns (a container, say) has been dropped, and so cleaned up, by the time
/// this returns.
pub async fn run_main(body: impl Future<Output = anyhow::Result<()>>) -> ExitCode {
    match body.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
