//! How an example reports: `RESULT {json}` lines a machine can read, and claims checked against
//! what really happened.

use std::time::Duration;

use serde_json::{Value, json};

use crate::Cluster;

/// Prints one machine-readable result line: `RESULT {"example":..., "expected":..., ...}`,
/// with what every result names: the server version that produced it, the path that provided
/// the cluster, and how long the run took.
///
/// The book's saved outputs and CI read these lines; the prose around them is for people.
///
/// ```
/// # #[tokio::main] async fn main() -> anyhow::Result<()> {
/// use std::time::Duration;
/// use esbook::{Cluster, Needs, report};
///
/// let cluster = Cluster::connect(Needs::Core).await?;
/// let line = report::result(
///     &cluster,
///     Duration::from_millis(12),
///     serde_json::json!({ "example": "doc", "final": 250 }),
/// );
/// assert_eq!(line["server_version"], cluster.version.as_str());
/// assert_eq!(line["elapsed_ms"], 12);
/// # Ok(()) }
/// ```
pub fn result(cluster: &Cluster, elapsed: Duration, fields: Value) -> Value {
    let mut line = fields;
    if let Some(line) = line.as_object_mut() {
        line.insert("server_version".into(), json!(cluster.version));
        line.insert("cluster".into(), json!(cluster.source.to_string()));
        line.insert("elapsed_ms".into(), json!(elapsed.as_millis() as u64));
    }
    println!("RESULT {line}");
    line
}

/// The claims an example makes about what it just saw. Each failed claim is printed; the
/// example exits non-zero if any failed, so CI notices when the book stops telling the truth.
///
/// ```
/// use esbook::Claims;
///
/// let mut claims = Claims::new();
/// claims.check(250 == 250, "every increment landed");
/// claims.check(84 == 250, "nothing was lost");
/// assert_eq!(claims.checked(), 2);
/// assert!(!claims.all_hold());
/// let failed = claims.into_result().unwrap_err();
/// assert_eq!(failed.to_string(), "claim(s) did not hold: nothing was lost");
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

    /// Whether every claim checked so far held.
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
