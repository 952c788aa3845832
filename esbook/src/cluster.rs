//! Where the Elasticsearch comes from.
//!
//! Every example and test calls [`Cluster::connect`] and gets a client for a real Elasticsearch.
//! The first of these that applies provides it:
//!
//! 1. `ELASTICSEARCH_URL` is set: that cluster. Credentials may be in the URL
//!    (`https://elastic:secret@localhost:9200`).
//! 2. A container engine answers (Docker, or Podman through `DOCKER_HOST`): testcontainers starts
//!    the official image.
//! 3. Neither: a real Elasticsearch is downloaded from Maven Central with the machine's Java and
//!    Maven, started on 127.0.0.1 and left running for the next run.
//!
//! `OCC_CLUSTER=url|container|local` forces one path (CI uses it to exercise each one). Paths 2
//! and 3 are one call each into the `provision` crate, which does the downloading and starting.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use elasticsearch::Elasticsearch;
use provision::facts::{RELEASE, SCRIPTING, Server};
use provision::local::Topology;
use provision::{Started, container, local};

use crate::client;

/// What an example needs from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Documents, `_seq_no`/`_primary_term`, conditional writes, bulk: any Elasticsearch 7 or
    /// later.
    Core,
    /// Scripts (`ctx._source.counter += 1`) and update-by-query: the `lang-painless` and
    /// `reindex` modules, which every full distribution has.
    Scripting,
}

impl Needs {
    /// The server the container and local paths start for these needs.
    fn server(self) -> &'static Server {
        match self {
            Needs::Core => &RELEASE,
            Needs::Scripting => &SCRIPTING,
        }
    }
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
    /// The official client. Cloning it is cheap: clones share one connection pool, so each
    /// concurrent "client" of an example is a clone.
    pub client: Elasticsearch,
    /// The address, without credentials.
    pub url: String,
    pub source: Source,
    /// `version.number` as the server reported it: every result names it.
    pub version: String,
    /// Keeps a container alive for as long as any clone of this `Cluster` lives.
    _keep_alive: Option<Arc<dyn Any + Send + Sync>>,
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
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> anyhow::Result<()> {
    /// use esbook::{Cluster, Needs};
    ///
    /// let cluster = Cluster::connect(Needs::Core).await?;
    /// println!("Connected to {cluster}");
    /// assert!(cluster.version.chars().next().unwrap().is_ascii_digit());
    /// # Ok(()) }
    /// ```
    pub async fn connect(needs: Needs) -> Result<Cluster> {
        let cluster = match forced_path()? {
            Some(Source::Url) | None if std::env::var_os("ELASTICSEARCH_URL").is_some() => {
                let raw = std::env::var("ELASTICSEARCH_URL")
                    .context("ELASTICSEARCH_URL is not valid UTF-8")?;
                Cluster::at(&raw, Source::Url, None).await?
            }
            Some(Source::Url) => bail!("OCC_CLUSTER=url but ELASTICSEARCH_URL is not set"),
            Some(Source::Container) => {
                let started = container::start(needs.server()).await?;
                Cluster::started(started, Source::Container).await?
            }
            Some(Source::Local) => Cluster::local(Topology::single(needs.server())).await?,
            None => match container::engine_answers().await {
                Ok(()) => {
                    let started = container::start(needs.server()).await?;
                    Cluster::started(started, Source::Container).await?
                }
                Err(no_engine) => Cluster::local(Topology::single(needs.server()))
                    .await
                    .map_err(|local| {
                        anyhow::anyhow!(
                            "no Elasticsearch could be had: ELASTICSEARCH_URL is not set; \
                             {no_engine}; and the local fallback failed: {local:#}. Fix one of: \
                             set ELASTICSEARCH_URL=http://host:9200, start Docker (or Podman \
                             and set DOCKER_HOST), or install Java 21+ and Maven"
                        )
                    })?,
            },
        };
        if needs == Needs::Scripting && !cluster.has_scripting().await? {
            bail!(
                "{cluster} has no lang-painless module, which scripts need; point \
                 ELASTICSEARCH_URL at a full Elasticsearch distribution"
            );
        }
        if needs == Needs::Scripting && !cluster.has_update_by_query().await? {
            bail!(
                "{cluster} has no reindex module, which update-by-query needs; point \
                 ELASTICSEARCH_URL at a full Elasticsearch distribution"
            );
        }
        Ok(cluster)
    }

    /// The local nodes of `topology` (started first if they are not running), as a cluster.
    pub async fn local(topology: Topology) -> Result<Cluster> {
        Cluster::started(local::ensure(topology).await?, Source::Local).await
    }

    /// This cluster if it can serve `needs`, else a connection to one that can (on the local
    /// and container paths, where the release at hand has no script engine, the scripting
    /// server is a second one).
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> anyhow::Result<()> {
    /// use esbook::{Cluster, Needs};
    ///
    /// let cluster = Cluster::connect(Needs::Core).await?;
    /// let scripting = cluster.for_needs(Needs::Scripting).await?;
    /// assert!(scripting.has_scripting().await?);
    /// assert!(scripting.has_update_by_query().await?);
    /// # Ok(()) }
    /// ```
    pub async fn for_needs(&self, needs: Needs) -> Result<Cluster> {
        if needs == Needs::Core
            || (self.has_scripting().await? && self.has_update_by_query().await?)
        {
            return Ok(self.clone());
        }
        Cluster::connect(needs).await
    }

    /// Whether the cluster runs update-by-query (the `reindex` module, which also serves
    /// delete-by-query and reindex): sends one that cannot touch anything.
    ///
    /// A build without the module has no such route and answers 400 "no handler found". The
    /// probe names indices that should not exist, and even if some did, its query (no ids)
    /// matches no document, so it changes nothing on a reader's cluster.
    pub async fn has_update_by_query(&self) -> Result<bool> {
        let body = serde_json::json!({ "query": { "ids": { "values": [] } } });
        let answer = self
            .probe("/occ-book-probe-none-*/_update_by_query", body)
            .await?;
        Ok(answer.is_some())
    }

    /// Whether the cluster runs Painless scripts: asks it to execute `1 + 1`.
    ///
    /// Asking is more reliable than reading the module list: an embedded build lists Painless
    /// as a plugin class, a full distribution as the module `lang-painless`.
    pub async fn has_scripting(&self) -> Result<bool> {
        let body = serde_json::json!({ "script": { "source": "1 + 1" } });
        let answer = self.probe("/_scripts/painless/_execute", body).await?;
        Ok(answer.is_some_and(|answer| answer["result"] == "2"))
    }

    /// POSTs `body` to `path` (sent raw: the typed call for script execution is behind the
    /// client's experimental feature); the answer if it was a success.
    async fn probe(
        &self,
        path: &str,
        body: serde_json::Value,
    ) -> Result<Option<serde_json::Value>> {
        use elasticsearch::http::{Method, headers::HeaderMap, request::JsonBody};
        let response = self
            .client
            .send(
                Method::Post,
                path,
                HeaderMap::new(),
                Option::<&()>::None,
                Some(JsonBody::new(body)),
                None,
            )
            .await
            .with_context(|| format!("asking {} for {path}", self.url))?;
        if !response.status_code().is_success() {
            return Ok(None);
        }
        Ok(Some(response.json().await?))
    }

    /// A cluster talking to one node of a multi-node cluster (the harness's `nodes::Nodes`
    /// keeps what must stay alive).
    pub fn from_parts(
        client: Elasticsearch,
        url: String,
        source: Source,
        version: String,
    ) -> Cluster {
        Cluster {
            client,
            url,
            source,
            version,
            _keep_alive: None,
        }
    }

    /// A cluster the provisioning started.
    async fn started(started: Started, source: Source) -> Result<Cluster> {
        Cluster::at(&started.url, source, started.keep_alive).await
    }

    /// The cluster at `raw`, once it has said which version it runs.
    async fn at(
        raw: &str,
        source: Source,
        keep_alive: Option<Arc<dyn Any + Send + Sync>>,
    ) -> Result<Cluster> {
        let (client, url) = client::client_for(raw)?;
        let version = client::server_version(&client, &url).await?;
        Ok(Cluster {
            client,
            url,
            source,
            version,
            _keep_alive: keep_alive,
        })
    }
}

/// `OCC_CLUSTER`, if set: which path to use instead of choosing.
pub fn forced_path() -> Result<Option<Source>> {
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
