//! How an example checks and reports on itself, without getting in the reader's way.
//!
//! An example prints what it has to say to a person. Its checks ([`Claims`]) print nothing
//! while they hold; [`crate::run_main`] closes the run with one line naming the server when
//! every check held, or with one line naming the checks that failed. The machine-readable
//! `RESULT {json}` line ([`result`]) is printed only when `OCC_RESULTS=1` is in the
//! environment: `cargo xtask examples` (the README's main job) and `cargo xtask record` set it
//! and collect the lines; the book's tests read the recorded ones.

use std::sync::Mutex;
use std::time::Duration;

use esbook::Cluster;
use serde_json::{Value, json};

/// The servers this process's results came from, as the closing line names them.
static SERVERS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Whether `RESULT {json}` lines are printed: `OCC_RESULTS=1` in the environment.
pub fn results_wanted() -> bool {
    std::env::var("OCC_RESULTS").is_ok_and(|v| v == "1")
}

/// One machine-readable result, with what every result names: the server version that produced
/// it, the path that provided the cluster, and how long the run took. Printed as
/// `RESULT {"example":..., ...}` when [`results_wanted`], returned either way.
///
/// ```
/// # #[tokio::main] async fn main() -> anyhow::Result<()> {
/// use std::time::Duration;
/// use esbook::{Cluster, Needs};
/// use harness::report;
///
/// let cluster = Cluster::connect(Needs::Core).await?;
/// let line = report::result(
///     &cluster,
///     Duration::from_millis(12),
///     serde_json::json!({ "example": "doc", "final": 250 }),
/// );
/// assert_eq!(line["server_version"], cluster.version.as_str());
/// assert_eq!(line["elapsed_ms"], 12);
/// assert_eq!(report::servers(), [format!("Elasticsearch {} ({})", cluster.version, cluster.source)]);
/// # Ok(()) }
/// ```
pub fn result(cluster: &Cluster, elapsed: Duration, fields: Value) -> Value {
    let mut line = fields;
    if let Some(line) = line.as_object_mut() {
        line.insert("server_version".into(), json!(cluster.version));
        line.insert("cluster".into(), json!(cluster.source.to_string()));
        line.insert("elapsed_ms".into(), json!(elapsed.as_millis() as u64));
    }
    ran_on(cluster);
    if results_wanted() {
        println!("RESULT {line}");
    }
    line
}

/// Notes that part of the run was on `cluster`, so that the closing line names it even when no
/// result line does ([`result`] notes its own cluster).
pub fn ran_on(cluster: &Cluster) {
    let server = format!("Elasticsearch {} ({})", cluster.version, cluster.source);
    let mut servers = SERVERS.lock().unwrap_or_else(|e| e.into_inner());
    if !servers.contains(&server) {
        servers.push(server);
    }
}

/// The servers the results so far came from, each once, in order.
pub fn servers() -> Vec<String> {
    SERVERS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// The checks an example makes of what it just saw. They print nothing; the example exits
/// non-zero, naming the checks that failed, if any did, so CI notices when the book stops
/// telling the truth.
///
/// ```
/// use harness::Claims;
///
/// let mut claims = Claims::new();
/// claims.check(250 == 250, "every increment landed");
/// claims.check(84 == 250, "nothing was lost");
/// assert_eq!(claims.checked(), 2);
/// assert!(!claims.all_hold());
/// let failed = claims.into_result().unwrap_err();
/// assert_eq!(failed.to_string(), "check(s) did not hold: nothing was lost");
/// ```
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
        self.checked += 1;
        if !holds {
            self.failed.push(what.into());
        }
    }

    /// How many claims were checked.
    pub fn checked(&self) -> usize {
        self.checked
    }

    /// Whether every claim checked so far held.
    pub fn all_hold(&self) -> bool {
        self.failed.is_empty()
    }

    /// `Ok` with the number of checks if every claim held, else an error naming the ones that
    /// did not.
    pub fn into_result(self) -> anyhow::Result<usize> {
        if self.failed.is_empty() {
            Ok(self.checked)
        } else {
            anyhow::bail!("check(s) did not hold: {}", self.failed.join("; "))
        }
    }
}
