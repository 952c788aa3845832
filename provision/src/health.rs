//! Waiting until a node or a cluster answers, the one loop every start uses.

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use elasticsearch::Elasticsearch;
use elasticsearch::auth::Credentials;
use elasticsearch::cert::{Certificate, CertificateValidation};
use elasticsearch::cluster::ClusterHealthParts;
use elasticsearch::http::Url;
use elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use elasticsearch::params::WaitForStatus;

use crate::progress::Ticker;
use crate::settings::Security;

/// Why a wait ended without a healthy cluster.
#[derive(Debug)]
pub enum NotHealthy {
    /// The process or container went away; what it said about it.
    Exited(String),
    /// The deadline passed.
    TimedOut(Duration),
}

/// A client for a node this crate started on 127.0.0.1 (no proxy, short deadline). A TLS node
/// is reached over https and must present a certificate signed by `ca` (PEM).
pub fn client(
    port: u16,
    security: Security,
    ca: Option<&[u8]>,
) -> Result<Elasticsearch> {
    let scheme = match security {
        Security::Tls { .. } => "https",
        Security::Off | Security::Basic { .. } => "http",
    };
    let url = Url::parse(&format!("{scheme}://127.0.0.1:{port}"))?;
    let mut builder = TransportBuilder::new(SingleNodeConnectionPool::new(url))
        .timeout(Duration::from_secs(10))
        .disable_proxy();
    if let Some((user, password)) = security.credentials() {
        builder = builder.auth(Credentials::Basic(user.into(), password.into()));
    }
    if let Some(pem) = ca {
        let cert =
            Certificate::from_pem(pem).map_err(|e| anyhow!("the CA: {e}"))?;
        builder = builder.cert_validation(CertificateValidation::Full(cert));
    }
    let transport = builder.build().map_err(|e| anyhow!("{e}"))?;
    Ok(Elasticsearch::new(transport))
}

/// Whether the cluster has `nodes` nodes and is at least yellow, asked with a one-second
/// server-side wait and a three-second client deadline.
pub async fn healthy(client: &Elasticsearch, nodes: usize) -> bool {
    let cluster = client.cluster();
    let wait_for_nodes = nodes.to_string();
    let request = cluster
        .health(ClusterHealthParts::None)
        .wait_for_status(WaitForStatus::Yellow)
        .wait_for_nodes(&wait_for_nodes)
        .timeout("1s")
        .send();
    matches!(
        tokio::time::timeout(Duration::from_secs(3), request).await,
        Ok(Ok(response)) if response.status_code().is_success()
    )
}

/// Polls [`healthy`] until it holds, `exited` reports that what was started went away, or
/// `timeout` passes; says what it is waiting for every few seconds.
pub async fn wait(
    what: &str,
    client: &Elasticsearch,
    nodes: usize,
    timeout: Duration,
    mut exited: impl AsyncFnMut() -> Option<String>,
) -> Result<Duration, NotHealthy> {
    let started = Instant::now();
    let _ticker = Ticker::start(format!("waiting for {what}"));
    loop {
        if healthy(client, nodes).await {
            return Ok(started.elapsed());
        }
        if let Some(why) = exited().await {
            return Err(NotHealthy::Exited(why));
        }
        if started.elapsed() > timeout {
            return Err(NotHealthy::TimedOut(timeout));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
