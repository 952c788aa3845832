//! Where the Elasticsearch comes from.
//!
//! Every example and test calls [`Cluster::connect`] and gets a client for a real Elasticsearch.
//! The first of these that applies provides it:
//!
//! 1. `ELASTICSEARCH_URL` is set: that cluster ([`url`]). Credentials may be in the URL
//!    (`https://elastic:secret@localhost:9200`).
//! 2. A container engine answers (Docker, or Podman through `DOCKER_HOST`): testcontainers starts
//!    the official image ([`container`]).
//! 3. Neither: a real Elasticsearch is downloaded from Maven Central with the machine's Java and
//!    Maven, started on 127.0.0.1 and left running for the next run ([`local`]).
//!
//! `OCC_CLUSTER=url|container|local` forces one path (CI uses it to exercise each one).
//!
//! Which Elasticsearch ([`engine`]): the newest official release for everything it can serve, and,
//! where an example needs the Painless script engine and the official build at hand lacks it, the
//! newest full-module Elasticsearch that can be had without a container registry.

pub mod container;
pub mod engine;
pub mod java;
pub mod local;
pub mod progress;
pub mod url;

use std::fmt;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use elasticsearch::Elasticsearch;

/// What an example needs from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Documents, `_seq_no`/`_primary_term`, conditional writes: any Elasticsearch 7 or later.
    Core,
    /// Scripted updates (`ctx._source.counter += 1`): the `lang-painless` module.
    Scripting,
}

/// Which path provided the cluster; printed so a log shows what was exercised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Url,
    Container,
    Local,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Url => "url",
            Source::Container => "container",
            Source::Local => "local",
        })
    }
}

/// A connected cluster: the client, where it is, and which server answered.
#[derive(Clone)]
pub struct Cluster {
    pub client: Elasticsearch,
    /// The address, without credentials.
    pub url: String,
    pub source: Source,
    /// `version.number` as the server reported it: every result names it.
    pub version: String,
    /// Keeps a container alive for as long as any clone of this `Cluster` lives.
    _container: Option<Arc<container::Running>>,
}

impl fmt::Display for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Elasticsearch {} at {} ({})",
            self.version, self.url, self.source
        )
    }
}

impl Cluster {
    /// Connects to a real Elasticsearch that can serve `needs`, by the first path that applies.
    pub async fn connect(needs: Needs) -> Result<Cluster> {
        let cluster = match forced_path()? {
            Some(Source::Url) | None if std::env::var_os("ELASTICSEARCH_URL").is_some() => {
                let raw = std::env::var("ELASTICSEARCH_URL")
                    .context("ELASTICSEARCH_URL is not valid UTF-8")?;
                url::connect(&raw).await?
            }
            Some(Source::Url) => bail!("OCC_CLUSTER=url but ELASTICSEARCH_URL is not set"),
            Some(Source::Container) => container::connect(needs).await?,
            Some(Source::Local) => local::connect(needs).await?,
            None => match container::engine_answers().await {
                Ok(()) => container::connect(needs).await?,
                Err(engine) => local::connect(needs).await.map_err(|local| {
                    anyhow::anyhow!(
                        "no Elasticsearch could be had: ELASTICSEARCH_URL is not set; {engine}; \
                         and the local fallback failed: {local:#}. Fix one of: set \
                         ELASTICSEARCH_URL=http://host:9200, start Docker (or Podman and set \
                         DOCKER_HOST), or install Java 21+ and Maven"
                    )
                })?,
            },
        };
        if needs == Needs::Scripting && !cluster.has_scripting().await? {
            bail!(
                "{cluster} has no lang-painless module, which scripted updates need; \
                 point ELASTICSEARCH_URL at a full Elasticsearch distribution"
            );
        }
        Ok(cluster)
    }

    /// This cluster if it can serve `needs`, else a connection to one that can (on the local
    /// and container paths a scripting engine may be a different server).
    pub async fn for_needs(&self, needs: Needs) -> Result<Cluster> {
        if needs == Needs::Core || self.has_scripting().await? {
            return Ok(self.clone());
        }
        Cluster::connect(needs).await
    }

    /// Whether the cluster runs Painless scripts: asks it to execute `1 + 1`.
    ///
    /// Asking is more reliable than reading the module list: an embedded engine lists Painless
    /// as a plugin class, a full distribution as the module `lang-painless`.
    pub async fn has_scripting(&self) -> Result<bool> {
        // The typed call for this API is behind the crate's experimental feature; send it raw.
        let response = self
            .client
            .send(
                elasticsearch::http::Method::Post,
                "/_scripts/painless/_execute",
                elasticsearch::http::headers::HeaderMap::new(),
                Option::<&()>::None,
                Some(elasticsearch::http::request::JsonBody::new(
                    serde_json::json!({ "script": { "source": "1 + 1" } }),
                )),
                None,
            )
            .await
            .with_context(|| {
                format!("asking {} to run a Painless script", self.url)
            })?;
        if !response.status_code().is_success() {
            return Ok(false);
        }
        let body: serde_json::Value = response.json().await?;
        Ok(body["result"] == "2")
    }
}

/// How long a node may take from launch to healthy: `OCC_START_TIMEOUT_SECS`, or 240 seconds
/// (a cold JVM on two busy cores takes 10 to 40).
pub fn start_timeout() -> std::time::Duration {
    let secs = std::env::var("OCC_START_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(240);
    std::time::Duration::from_secs(secs)
}

/// `OCC_CLUSTER`, if set: which path to use instead of choosing.
fn forced_path() -> Result<Option<Source>> {
    match std::env::var("OCC_CLUSTER").as_deref() {
        Err(_) | Ok("") | Ok("auto") => Ok(None),
        Ok("url") => Ok(Some(Source::Url)),
        Ok("container") => Ok(Some(Source::Container)),
        Ok("local") => Ok(Some(Source::Local)),
        Ok(other) => {
            bail!(
                "OCC_CLUSTER must be one of auto, url, container, local; got {other:?}"
            )
        }
    }
}
