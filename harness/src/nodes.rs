//! A cluster of several nodes, each reachable on its own, and the node failures Part III
//! injects.
//!
//! Every other chapter talks to one node through one client. The failover chapters kill nodes,
//! so a client that only knows one node would die with it. Here each node has its own client
//! ([`Node`]), an example chooses which node to talk to, and [`Failover`] is the smallest thing
//! that keeps a client going: it talks to one node at a time and moves to the next when its
//! node stops answering. (The official client can round-robin over several nodes, but it does
//! not move away from a dead one; a real service would use a client that does, or a load
//! balancer.)
//!
//! [`Nodes::connect`] finds the cluster the way [`Cluster::connect`] does:
//! `ELASTICSEARCH_URL` (your cluster, if it has enough nodes), else containers, else nodes on
//! 127.0.0.1; `OCC_CLUSTER` forces one. It also knows how to kill and restart a node on each
//! path: a `SIGKILL` of the node's processes (local), of its container (container), or, on your
//! own cluster, which the book will not touch, a line asking you to do it.

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use elasticsearch::Elasticsearch;
use elasticsearch::cat::CatShardsParts;
use elasticsearch::cluster::{ClusterHealthParts, ClusterStateParts};
use elasticsearch::indices::IndicesPutSettingsParts;
use elasticsearch::nodes::NodesInfoParts;
use elasticsearch::params::WaitForStatus;
use provision::container::{self, ContainerCluster};
use provision::facts::RELEASE;
use provision::local::{self, Topology};
use provision::progress::{Ticker, say};
use serde_json::{Value, json};

use esbook::cluster::{Source, forced_path};
use esbook::{Cluster, Needs, client, doc};

/// How long a fault may take to show (a node leaving, a new primary, a node rejoining).
const FAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// Every request these helpers send while a node is down gets this deadline, so that a request
/// stuck behind a dead node is retried rather than waited on.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// One node of the cluster, with a client that talks to it alone.
#[derive(Clone)]
pub struct Node {
    /// The node's name (`node.name`), as `_cat/shards` reports it.
    pub name: String,
    /// Its address, without credentials.
    pub url: String,
    pub client: Elasticsearch,
}

/// How this cluster's nodes can be made to fail.
enum Faults {
    /// Processes on this machine: `SIGKILL` to the node's process group.
    Local(Topology),
    /// Containers: `SIGKILL` to the node's container.
    Containers(Arc<ContainerCluster>),
    /// Your own cluster: you are asked to stop and start nodes.
    Manual,
}

/// A connected cluster of several nodes.
pub struct Nodes {
    /// Every node, `node-1` first on the local and container paths.
    pub nodes: Vec<Node>,
    pub source: Source,
    /// `version.number` as the nodes reported it.
    pub version: String,
    faults: Faults,
    /// What must outlive the connection: the containers, or the lock on the local cluster.
    _hold: Vec<Arc<dyn Any + Send + Sync>>,
}

impl Nodes {
    /// Connects to a cluster of at least `needed` nodes, by the first path that applies: your
    /// cluster if `ELASTICSEARCH_URL` is set (an error if it has fewer nodes), else `needed`
    /// containers if a container engine answers, else `needed` nodes on 127.0.0.1, started
    /// once and reused. On the local path the cluster is held for this process until the
    /// `Nodes` is dropped: another example that kills nodes waits for it.
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> anyhow::Result<()> {
    /// use harness::nodes::Nodes;
    ///
    /// let cluster = Nodes::connect(3).await?;
    /// assert!(cluster.nodes.len() >= 3);
    /// for node in &cluster.nodes {
    ///     println!("{} at {}", node.name, node.url);
    /// }
    /// let first = &cluster.nodes[0];
    /// assert_eq!(cluster.node(&first.name)?.url, first.url);
    /// assert_ne!(cluster.other_than(&first.name).name, first.name);
    /// // A Cluster talking to that node, for the doc helpers and RESULT lines.
    /// assert_eq!(cluster.cluster(first).version, cluster.version);
    /// println!("a node is killed by: {}", cluster.how_killed());
    /// # Ok(()) }
    /// ```
    pub async fn connect(needed: usize) -> Result<Nodes> {
        let url_given = std::env::var_os("ELASTICSEARCH_URL").is_some();
        match forced_path()? {
            Some(Source::Url) | None if url_given => Nodes::at_url(needed).await,
            Some(Source::Url) => {
                bail!("OCC_CLUSTER=url but ELASTICSEARCH_URL is not set")
            }
            Some(Source::Container) => Nodes::containers(needed).await,
            Some(Source::Local) => Nodes::local(needed).await,
            None => match container::engine_answers().await {
                Ok(()) => Nodes::containers(needed).await,
                Err(no_engine) => Nodes::local(needed).await.map_err(|local| {
                    anyhow!(
                        "no cluster of {needed} nodes could be had: ELASTICSEARCH_URL is not \
                         set; {no_engine}; and the local fallback failed: {local:#}"
                    )
                }),
            },
        }
    }

    async fn local(needed: usize) -> Result<Nodes> {
        let topology = Topology::cluster(needed);
        // Taken first: `ensure` restarts dead nodes, and a node another process killed on
        // purpose must stay dead until that process is done with it.
        let hold = local::exclusive(topology).await?;
        local::ensure(topology).await?;
        let nodes = local::node_urls(topology)?;
        Nodes::of(
            nodes,
            Source::Local,
            Faults::Local(topology),
            Arc::new(hold),
        )
        .await
    }

    async fn containers(needed: usize) -> Result<Nodes> {
        let started = container::start_cluster(&RELEASE, needed).await?;
        let handle = started.handle.clone();
        Nodes::of(
            started.nodes,
            Source::Container,
            Faults::Containers(handle.clone()),
            handle,
        )
        .await
    }

    /// Your cluster: the URL's node tells where the others are (`GET _nodes/http`); each gets a
    /// client with the URL's credentials and CA.
    async fn at_url(needed: usize) -> Result<Nodes> {
        let raw = std::env::var("ELASTICSEARCH_URL")
            .context("ELASTICSEARCH_URL is not valid UTF-8")?;
        let first = Cluster::connect(Needs::Core).await?;
        let response = first
            .client
            .nodes()
            .info(NodesInfoParts::Metric(&["http"]))
            .filter_path(&["nodes.*.name", "nodes.*.http.publish_address"])
            .send()
            .await?;
        let body = doc::expect_success(response, "listing the nodes").await?;
        let mut found: Vec<(String, String)> = body["nodes"]
            .as_object()
            .map(|nodes| {
                nodes
                    .values()
                    .filter_map(|n| {
                        let name = n["name"].as_str()?;
                        let address = n["http"]["publish_address"].as_str()?;
                        Some((name.to_string(), address.to_string()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        if found.len() < needed {
            bail!(
                "this example needs a cluster of at least {needed} nodes, and the one at {} \
                 has {}; unset ELASTICSEARCH_URL to let the example start {needed} nodes of \
                 its own",
                first.url,
                found.len()
            );
        }
        found.sort();
        let mut nodes = Vec::new();
        for (name, address) in found {
            nodes.push((name, node_url(&raw, &address)?));
        }
        Nodes::of(nodes, Source::Url, Faults::Manual, Arc::new(())).await
    }

    async fn of(
        addresses: Vec<(String, String)>,
        source: Source,
        faults: Faults,
        hold: Arc<dyn Any + Send + Sync>,
    ) -> Result<Nodes> {
        let mut nodes = Vec::new();
        for (name, raw) in addresses {
            let (client, url) = client::client_for(&raw)?;
            nodes.push(Node { name, url, client });
        }
        let first = nodes.first().context("a cluster without nodes")?;
        let version = client::server_version(&first.client, &first.url).await?;
        Ok(Nodes {
            nodes,
            source,
            version,
            faults,
            _hold: vec![hold],
        })
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Result<&Node> {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .with_context(|| format!("no node called {name} in this cluster"))
    }

    /// A node other than `name`: the one to talk to while `name` is down.
    pub fn other_than(&self, name: &str) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.name != name)
            .unwrap_or(&self.nodes[0])
    }

    /// A [`Cluster`] that talks to `node`: for the helpers of [`doc`] and for `RESULT` lines.
    pub fn cluster(&self, node: &Node) -> Cluster {
        Cluster::from_parts(
            node.client.clone(),
            node.url.clone(),
            self.source,
            self.version.clone(),
        )
    }

    /// How [`Nodes::kill`] kills a node here, for the story.
    pub fn how_killed(&self) -> &'static str {
        match self.faults {
            Faults::Local(_) => "SIGKILL of the node's processes",
            Faults::Containers(_) => "SIGKILL of the node's container",
            Faults::Manual => "stopped by you",
        }
    }

    /// Kills node `name` at once, as a crash or a power cut would, and returns once it is
    /// gone. On your own cluster it asks you to stop the node, and waits until the others see
    /// it leave.
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> anyhow::Result<()> {
    /// use harness::nodes::{self, Nodes, node_names};
    ///
    /// let cluster = Nodes::connect(3).await?;
    /// let client = &cluster.nodes[0].client;
    /// esbook::doc::fresh_index(client, "nodes-kill").await?;
    /// nodes::replicate(client, "nodes-kill", 2, "1m").await?;
    /// let victim = nodes::primary_node(client, "nodes-kill").await?.unwrap();
    /// let witness = cluster.other_than(&victim).client.clone();
    ///
    /// cluster.kill(&victim).await?;
    /// assert!(!node_names(&witness).await?.contains(&victim));
    /// let (promoted, _took) =
    ///     nodes::wait_for_new_primary(&witness, "nodes-kill", &victim).await?;
    /// assert_ne!(promoted, victim);
    /// assert_eq!(nodes::primary_term(&witness, "nodes-kill").await?, 2);
    ///
    /// cluster.restart(&victim).await?;
    /// assert!(node_names(&witness).await?.contains(&victim));
    /// # Ok(()) }
    /// ```
    pub async fn kill(&self, name: &str) -> Result<()> {
        self.node(name)?;
        match &self.faults {
            Faults::Local(topology) => local::kill_node(*topology, name).await?,
            Faults::Containers(cluster) => cluster.kill(name).await?,
            Faults::Manual => say(format!(
                "this example does not stop nodes of your cluster: stop node {name} now \
                 (kill -9 its process, or docker kill its container); waiting up to {}s",
                FAULT_TIMEOUT.as_secs()
            )),
        }
        let witness = &self.other_than(name).client;
        wait_until(
            &format!("node {name} to leave the cluster"),
            FAULT_TIMEOUT,
            async || Ok(!node_names(witness).await?.contains(&name.to_string())),
        )
        .await?;
        Ok(())
    }

    /// Starts node `name` again after [`Nodes::kill`], on its old data, and returns once it is
    /// back in the cluster and the cluster has all its nodes. See [`Nodes::kill`].
    pub async fn restart(&self, name: &str) -> Result<()> {
        self.node(name)?;
        match &self.faults {
            Faults::Local(topology) => {
                local::restart_node(*topology, name).await?;
            }
            Faults::Containers(cluster) => cluster.restart(name).await?,
            Faults::Manual => say(format!(
                "start node {name} again now; waiting up to {}s for it to rejoin",
                FAULT_TIMEOUT.as_secs()
            )),
        }
        let witness = &self.other_than(name).client;
        wait_until(
            &format!("node {name} to rejoin"),
            FAULT_TIMEOUT,
            async || Ok(node_names(witness).await?.contains(&name.to_string())),
        )
        .await?;
        Ok(())
    }
}

/// The URL of the node that publishes HTTP at `address` (`host/ip:port` or `ip:port`), with
/// the scheme and credentials of `raw`.
fn node_url(raw: &str, address: &str) -> Result<String> {
    let mut url = elasticsearch::http::Url::parse(raw.trim())
        .map_err(|e| anyhow!("ELASTICSEARCH_URL is not a URL: {e}"))?;
    let (host, port) = address
        .rsplit_once(':')
        .with_context(|| format!("a node publishes HTTP at {address:?}"))?;
    let host = host.split('/').next_back().unwrap_or(host);
    let port: u16 = port
        .parse()
        .with_context(|| format!("a node publishes HTTP at {address:?}"))?;
    url.set_host(Some(host))
        .map_err(|e| anyhow!("a node publishes HTTP at {address:?}: {e}"))?;
    url.set_port(Some(port))
        .map_err(|()| anyhow!("a node publishes HTTP at {address:?}"))?;
    Ok(url.to_string())
}

/// A client of a multi-node cluster that talks to one node at a time, and moves on to the
/// next node when told to, after its node stopped answering.
///
/// ```
/// # #[tokio::main] async fn main() -> anyhow::Result<()> {
/// use harness::nodes::{Failover, Nodes};
///
/// let cluster = Nodes::connect(3).await?;
/// let mut client = Failover::new(&cluster, 1);
/// assert_eq!(client.node().name, cluster.nodes[1].name);
/// client.move_on();
/// assert_eq!(client.node().name, cluster.nodes[2].name);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Failover {
    nodes: Arc<Vec<Node>>,
    at: usize,
}

impl Failover {
    /// A client that starts on node number `start` (counted from 0, wrapping around).
    pub fn new(cluster: &Nodes, start: usize) -> Failover {
        Failover {
            nodes: Arc::new(cluster.nodes.clone()),
            at: start % cluster.nodes.len(),
        }
    }

    /// The node it talks to now.
    pub fn node(&self) -> &Node {
        &self.nodes[self.at]
    }

    /// Moves on to the next node (the first after the last).
    pub fn move_on(&mut self) -> &Node {
        self.at = (self.at + 1) % self.nodes.len();
        self.node()
    }
}

/// One copy of a shard, as `_cat/shards` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardCopy {
    /// The node it is on (empty while unassigned).
    pub node: String,
    pub primary: bool,
    /// `STARTED`, `INITIALIZING`, `RELOCATING` or `UNASSIGNED`.
    pub state: String,
}

/// The copies of shard 0 of `index` (the book's indices have one shard), primary first.
///
/// ```
/// # #[tokio::main] async fn main() -> anyhow::Result<()> {
/// use elasticsearch::params::WaitForStatus;
/// use harness::nodes::{self, Nodes};
///
/// let cluster = Nodes::connect(3).await?;
/// let client = &cluster.nodes[0].client;
/// esbook::doc::fresh_index(client, "nodes-copies").await?;
/// nodes::replicate(client, "nodes-copies", 2, "1m").await?;
/// let copies = nodes::shard_copies(client, "nodes-copies").await?;
/// assert_eq!(copies.len(), 3);
/// assert!(copies[0].primary && copies.iter().all(|c| c.state == "STARTED"));
/// assert_eq!(nodes::primary_node(client, "nodes-copies").await?, Some(copies[0].node.clone()));
/// assert_eq!(nodes::primary_term(client, "nodes-copies").await?, 1);
/// let health =
///     nodes::health(client, Some("nodes-copies"), WaitForStatus::Green).await?;
/// assert_eq!(health["status"], "green");
/// # Ok(()) }
/// ```
pub async fn shard_copies(
    client: &Elasticsearch,
    index: &str,
) -> Result<Vec<ShardCopy>> {
    let response = client
        .cat()
        .shards(CatShardsParts::Index(&[index]))
        .format("json")
        .h(&["shard", "prirep", "state", "node"])
        .request_timeout(PROBE_TIMEOUT)
        .send()
        .await?;
    let rows = doc::expect_success(response, "listing the shard copies").await?;
    let mut copies: Vec<ShardCopy> = rows
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter(|row| row["shard"] == "0")
                .map(|row| ShardCopy {
                    node: row["node"].as_str().unwrap_or_default().to_string(),
                    primary: row["prirep"] == "p",
                    state: row["state"].as_str().unwrap_or_default().to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    copies.sort_by_key(|c| (!c.primary, c.node.clone()));
    Ok(copies)
}

/// The node whose copy of `index`'s shard is the started primary, if there is one.
/// See [`shard_copies`].
pub async fn primary_node(
    client: &Elasticsearch,
    index: &str,
) -> Result<Option<String>> {
    Ok(shard_copies(client, index)
        .await?
        .into_iter()
        .find(|c| c.primary && c.state == "STARTED")
        .map(|c| c.node))
}

/// The primary term of `index`'s shard 0, from the cluster state: how many times a copy of
/// the shard has been made primary. See [`shard_copies`].
pub async fn primary_term(client: &Elasticsearch, index: &str) -> Result<i64> {
    let response = client
        .cluster()
        .state(ClusterStateParts::MetricIndex(&["metadata"], &[index]))
        .filter_path(&["metadata.indices.*.primary_terms"])
        .request_timeout(PROBE_TIMEOUT)
        .send()
        .await?;
    let body = doc::expect_success(response, "reading the cluster state").await?;
    body["metadata"]["indices"][index]["primary_terms"]["0"]
        .as_i64()
        .with_context(|| {
            format!("the cluster state has no primary term for {index}")
        })
}

/// Gives `index` `replicas` replicas, delays reallocating a copy whose node left by
/// `delayed_timeout` (`index.unassigned.node_left.delayed_timeout`), and waits until every
/// copy is started (green). See [`shard_copies`].
pub async fn replicate(
    client: &Elasticsearch,
    index: &str,
    replicas: u32,
    delayed_timeout: &str,
) -> Result<()> {
    let response = client
        .indices()
        .put_settings(IndicesPutSettingsParts::Index(&[index]))
        .body(json!({ "index": {
            "number_of_replicas": replicas,
            "unassigned.node_left.delayed_timeout": delayed_timeout,
        }}))
        .send()
        .await?;
    doc::expect_success(response, &format!("giving {index} {replicas} replicas"))
        .await?;
    let health = health(client, Some(index), WaitForStatus::Green).await?;
    if health["status"] != "green" {
        bail!("{index} did not become green: {health}");
    }
    Ok(())
}

/// Cluster health (of `index` only, if given), waiting up to 30 seconds for `status`; the
/// answer either way. See [`shard_copies`].
pub async fn health(
    client: &Elasticsearch,
    index: Option<&str>,
    status: WaitForStatus,
) -> Result<Value> {
    let indices = index.map(|i| [i]);
    let parts = match &indices {
        Some(index) => ClusterHealthParts::Index(index),
        None => ClusterHealthParts::None,
    };
    let response = client
        .cluster()
        .health(parts)
        .wait_for_status(status)
        .timeout("30s")
        .request_timeout(Duration::from_secs(40))
        .send()
        .await?;
    let status = response.status_code();
    let body: Value = response.json().await?;
    // 408 is health's way of saying "not yet": the body is still the health.
    if !status.is_success() && status.as_u16() != 408 {
        bail!("cluster health: HTTP {status}: {}", doc::reason(&body));
    }
    Ok(body)
}

/// The names of the nodes in the cluster, as `client`'s node sees it. See [`Nodes::kill`].
pub async fn node_names(client: &Elasticsearch) -> Result<Vec<String>> {
    let response = client
        .nodes()
        .info(NodesInfoParts::NodeIdMetric(&["_all"], &["_none"]))
        .filter_path(&["nodes.*.name"])
        .request_timeout(PROBE_TIMEOUT)
        .send()
        .await?;
    let body = doc::expect_success(response, "listing the nodes").await?;
    let mut names: Vec<String> = body["nodes"]
        .as_object()
        .map(|nodes| {
            nodes
                .values()
                .filter_map(|n| n["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    Ok(names)
}

/// Waits until `index` has a started primary on a node other than `old`; the new primary's
/// node, and how long it took. Asks through `client` (a node that is up), retrying through
/// errors while the cluster reorganises. See [`Nodes::kill`].
pub async fn wait_for_new_primary(
    client: &Elasticsearch,
    index: &str,
    old: &str,
) -> Result<(String, Duration)> {
    let started = Instant::now();
    let mut found = None;
    wait_until(
        &format!("a new primary of {index}"),
        FAULT_TIMEOUT,
        async || {
            found = primary_node(client, index).await?.filter(|n| n != old);
            Ok(found.is_some())
        },
    )
    .await?;
    Ok((found.unwrap_or_default(), started.elapsed()))
}

/// Polls `done` until it says yes, ignoring its errors (a node may be down, a master being
/// elected), for at most `timeout`; says what it waits for every few seconds.
async fn wait_until(
    what: &str,
    timeout: Duration,
    mut done: impl AsyncFnMut() -> Result<bool>,
) -> Result<()> {
    let started = Instant::now();
    let _ticker = Ticker::start(format!("waiting for {what}"));
    let mut last_error = None;
    loop {
        match done().await {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(error) => last_error = Some(error),
        }
        if started.elapsed() > timeout {
            bail!(
                "no {what} within {}s{}",
                timeout.as_secs(),
                last_error
                    .map(|e| format!(" (last error: {e:#})"))
                    .unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node's published address replaces the host and port of the URL; scheme and
    /// credentials stay.
    #[test]
    fn node_urls_keep_scheme_and_credentials() {
        assert_eq!(
            node_url("https://u:p@127.0.0.1:9200", "127.0.0.1:9201").unwrap(),
            "https://u:p@127.0.0.1:9201/"
        );
        assert_eq!(
            node_url("http://127.0.0.1:9200", "localhost/127.0.0.1:9202").unwrap(),
            "http://127.0.0.1:9202/"
        );
    }
}
