//! A cluster of several nodes, each reachable on its own, and the node failures Part III
//! injects: chapter 17's single kill, and chapter 18's failover in the middle of a race
//! ([`FaultWatch`], [`inject_failover`]).
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
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use elasticsearch::cat::CatShardsParts;
use elasticsearch::cluster::{ClusterHealthParts, ClusterStateParts};
use elasticsearch::indices::IndicesPutSettingsParts;
use elasticsearch::nodes::NodesInfoParts;
use elasticsearch::params::WaitForStatus;
use elasticsearch::{Elasticsearch, GetParts};
use provision::container::{self, ContainerCluster};
use provision::facts::{RELEASE, SCRIPTING, Server};
use provision::local::{self, Topology};
use provision::progress::{Ticker, say};
use serde_json::{Value, json};

use esbook::cluster::{Source, forced_path};
use esbook::doc::Versioned;
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
        Nodes::connect_to(&RELEASE, needed).await
    }

    /// [`Nodes::connect`], to a cluster of the scripting build ([`SCRIPTING`], which has
    /// Painless): `needed` containers of its image, or `needed` local nodes of it (a topology
    /// of its own, named after its version with `-x3`). Your cluster must have Painless itself.
    pub async fn connect_scripting(needed: usize) -> Result<Nodes> {
        Nodes::connect_to(&SCRIPTING, needed).await
    }

    async fn connect_to(server: &'static Server, needed: usize) -> Result<Nodes> {
        let url_given = std::env::var_os("ELASTICSEARCH_URL").is_some();
        match forced_path()? {
            Some(Source::Url) | None if url_given => Nodes::at_url(needed).await,
            Some(Source::Url) => {
                bail!("OCC_CLUSTER=url but ELASTICSEARCH_URL is not set")
            }
            Some(Source::Container) => Nodes::containers(server, needed).await,
            Some(Source::Local) => Nodes::local(server, needed).await,
            None => match container::engine_answers().await {
                Ok(()) => Nodes::containers(server, needed).await,
                Err(no_engine) => Nodes::local(server, needed).await.map_err(|local| {
                    anyhow!(
                        "no cluster of {needed} nodes could be had: ELASTICSEARCH_URL is not \
                         set; {no_engine}; and the local fallback failed: {local:#}"
                    )
                }),
            },
        }
    }

    async fn local(server: &'static Server, needed: usize) -> Result<Nodes> {
        let topology = Topology::cluster_of(server, needed);
        // Taken first: `ensure` restarts dead nodes, and a node another process killed on
        // purpose must stay dead until that process is done with it.
        let hold = local::exclusive(topology).await?;
        // A node that a process holding this lock paused and never resumed (it was killed)
        // would stall the cluster: the lock is ours now, so no pause is meant any more.
        local::resume_all(topology);
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

    async fn containers(server: &Server, needed: usize) -> Result<Nodes> {
        let started = container::start_cluster(server, needed).await?;
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
        self.wait_for_membership(name, false).await?;
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
        self.wait_for_membership(name, true).await?;
        Ok(())
    }
}

/// Part III's pause: a node that stops running without leaving (`SIGSTOP` of its processes
/// locally, the engine's pause for a container), as a long garbage collection or a frozen
/// virtual machine would make it; see [`crate::pause`].
impl Nodes {
    /// How [`Nodes::pause`] pauses a node here, for the story.
    pub fn how_paused(&self) -> &'static str {
        match self.faults {
            Faults::Local(_) => "SIGSTOP of the node's processes",
            Faults::Containers(_) => "the engine's pause of the node's container",
            Faults::Manual => "paused by you",
        }
    }

    /// Pauses node `name` and returns at once: the node keeps its sockets and its place in the
    /// cluster until the others notice it is silent. Until [`Nodes::resume`], a Ctrl-C in this
    /// process resumes it before exiting. On your own cluster it asks you to pause the node.
    pub async fn pause(&self, name: &str) -> Result<()> {
        self.node(name)?;
        match &self.faults {
            Faults::Local(topology) => local::pause_node(*topology, name).await?,
            Faults::Containers(cluster) => cluster.pause(name).await?,
            Faults::Manual => say(format!(
                "this example does not pause nodes of your cluster: pause node {name} now \
                 (kill -STOP its process group, or docker pause its container)"
            )),
        }
        self.resume_on_ctrl_c(name);
        Ok(())
    }

    /// Lets node `name` run again after [`Nodes::pause`]; returns at once.
    pub async fn resume(&self, name: &str) -> Result<()> {
        self.node(name)?;
        match &self.faults {
            Faults::Local(topology) => local::resume_node(*topology, name)?,
            Faults::Containers(cluster) => cluster.resume(name).await?,
            Faults::Manual => say(format!(
                "resume node {name} now (kill -CONT, or docker unpause)"
            )),
        }
        Ok(())
    }

    /// Resumes node `name` without waiting, where that can be done without an engine round
    /// trip (a local node: `SIGCONT`): for a guard's `Drop` on an error path. A container left
    /// paused is removed with its cluster when the process ends.
    pub fn resume_at_once(&self, name: &str) {
        if let Faults::Local(topology) = &self.faults {
            let _ = local::resume_node(*topology, name);
        }
    }

    /// A Ctrl-C from now on resumes node `name`, then ends the process (exit status 130).
    fn resume_on_ctrl_c(&self, name: &str) {
        let name = name.to_string();
        let (local, containers) = match &self.faults {
            Faults::Local(topology) => (Some(*topology), None),
            // Weak: a task that outlived the example must not keep the containers alive, or
            // their removal would run as the runtime shuts down, and wait for it forever.
            Faults::Containers(cluster) => (None, Some(Arc::downgrade(cluster))),
            Faults::Manual => return,
        };
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            if let Some(topology) = local {
                let _ = local::resume_node(topology, &name);
            }
            if let Some(cluster) = containers.and_then(|weak| weak.upgrade()) {
                let _ = cluster.resume(&name).await;
            }
            eprintln!("interrupted: node {name} resumed");
            std::process::exit(130);
        });
    }

    /// What node `name` has logged so far: its `logs/console.log` locally, its container's
    /// output on the container path; nothing on your own cluster.
    pub async fn log(&self, name: &str) -> Result<String> {
        self.node(name)?;
        match &self.faults {
            Faults::Local(topology) => {
                let path = local::console_log(*topology, name);
                std::fs::read(&path)
                    .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                    .with_context(|| format!("reading {}", path.display()))
            }
            Faults::Containers(cluster) => cluster.logs(name).await,
            Faults::Manual => Ok(String::new()),
        }
    }

    /// Waits until the other nodes list node `name` as a member (`member`), or no longer do;
    /// how long that took. Asks a node other than `name`, retrying through errors, for up to
    /// five minutes.
    pub async fn wait_for_membership(
        &self,
        name: &str,
        member: bool,
    ) -> Result<Duration> {
        let started = Instant::now();
        let witness = &self.other_than(name).client;
        let what = if member {
            "to rejoin"
        } else {
            "to leave the cluster"
        };
        wait_until(&format!("node {name} {what}"), FAULT_TIMEOUT, async || {
            Ok(node_names(witness).await?.contains(&name.to_string()) == member)
        })
        .await?;
        Ok(started.elapsed())
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

    /// A realtime GET of `id` through the current node, with deadline `timeout`; `None`, and
    /// the next node, if it failed. Reads change nothing, so a caller simply tries again.
    pub async fn read(
        &mut self,
        index: &str,
        id: &str,
        timeout: Duration,
    ) -> Option<Versioned> {
        let response = self
            .node()
            .client
            .get(GetParts::IndexId(index, id))
            .request_timeout(timeout)
            .send()
            .await;
        let body = match response {
            Ok(response) if response.status_code().is_success() => {
                response.json::<Value>().await.ok()
            }
            _ => None,
        };
        let versioned = body.and_then(|body| {
            Some(Versioned {
                seq_no: body["_seq_no"].as_i64()?,
                primary_term: body["_primary_term"].as_i64()?,
                version: body["_version"].as_i64()?,
                source: body["_source"].clone(),
            })
        });
        if versioned.is_none() {
            self.move_on();
        }
        versioned
    }
}

/// What the clients of chapter 18's race share with [`inject_failover`]: the writes in flight
/// through each node (so that a node can be killed while one is), the failovers begun and over
/// (so that each write can tell whether a node died while it was in flight), the increments
/// done so far, and when to stop.
pub struct FaultWatch {
    in_flight: HashMap<String, AtomicUsize>,
    /// Failovers begun (counted just before the kill) and over (counted once a new primary
    /// was promoted). A write sent before a failover was over and answered after it began was
    /// in flight at the kill: its answer may come from either side of it. (Counting the kill
    /// alone would miss writes sent while the kill itself was under way.)
    begun: AtomicU64,
    over: AtomicU64,
    increments: AtomicU64,
    stop: AtomicBool,
}

/// A write on its way through a node: see [`FaultWatch::sent`].
pub struct InFlight {
    node: String,
    over_before: u64,
}

impl FaultWatch {
    pub fn new(cluster: &Nodes) -> FaultWatch {
        FaultWatch {
            in_flight: cluster
                .nodes
                .iter()
                .map(|n| (n.name.clone(), AtomicUsize::new(0)))
                .collect(),
            begun: AtomicU64::new(0),
            over: AtomicU64::new(0),
            increments: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        }
    }

    /// A write is sent through `node`; hand the result to [`FaultWatch::answered`].
    pub fn sent(&self, node: &str) -> InFlight {
        if let Some(n) = self.in_flight.get(node) {
            n.fetch_add(1, Ordering::SeqCst);
        }
        let over_before = self.over.load(Ordering::SeqCst);
        InFlight {
            node: node.to_string(),
            over_before,
        }
    }

    /// The write came back (with an answer or without): whether a node was killed while it
    /// was in flight.
    pub fn answered(&self, write: InFlight) -> bool {
        if let Some(n) = self.in_flight.get(&write.node) {
            n.fetch_sub(1, Ordering::SeqCst);
        }
        self.begun.load(Ordering::SeqCst) > write.over_before
    }

    /// Writes in flight through `node` now.
    pub fn in_flight(&self, node: &str) -> usize {
        self.in_flight
            .get(node)
            .map_or(0, |n| n.load(Ordering::SeqCst))
    }

    /// One more increment done.
    pub fn increment_done(&self) {
        self.increments.fetch_add(1, Ordering::SeqCst);
    }

    /// Increments done so far.
    pub fn increments(&self) -> u64 {
        self.increments.load(Ordering::SeqCst)
    }

    /// Whether the race goes on.
    pub fn running(&self) -> bool {
        !self.stop.load(Ordering::SeqCst)
    }

    /// Ends the race.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// A fault begins (a pause, a kill): writes answered from now on, sent before
    /// [`FaultWatch::fault_over`], were in flight across it.
    pub fn fault_begun(&self) {
        self.begun.fetch_add(1, Ordering::SeqCst);
    }

    /// The fault is over (a new primary serves): writes sent from now on were not in flight
    /// across it.
    pub fn fault_over(&self) {
        self.over.fetch_add(1, Ordering::SeqCst);
    }
}

/// What [`inject_failover`] did.
#[derive(Debug, Clone)]
pub struct Fault {
    pub killed: String,
    /// Writes in flight through the killed node when it was killed.
    pub in_flight: usize,
    /// From the kill to a started primary on another node.
    pub promotion: Duration,
    /// The shard's primary term after the promotion.
    pub term: i64,
    /// From the restart to the index green again.
    pub back_after: Duration,
}

/// Chapter 18's failover, while the race of `watch` runs: lets the race warm up for a second,
/// kills the node holding `index`'s primary at a moment when a write is in flight through it
/// (waiting up to three seconds for one), waits for a new primary, starts the node again,
/// waits until the index is green, and lets the race run one more second. Says what happened
/// in two lines.
pub async fn inject_failover(
    cluster: &Nodes,
    index: &str,
    watch: &FaultWatch,
) -> Result<Fault> {
    tokio::time::sleep(Duration::from_secs(1)).await;
    let first = &cluster.nodes[0].client;
    let victim = primary_node(first, index)
        .await?
        .context("no started primary")?;
    let deadline = Instant::now() + Duration::from_secs(3);
    while watch.in_flight(&victim) == 0 && Instant::now() < deadline {
        tokio::task::yield_now().await;
    }
    let in_flight = watch.in_flight(&victim);
    let killed = Instant::now();
    watch.begun.fetch_add(1, Ordering::SeqCst);
    cluster.kill(&victim).await?;
    let survivor = &cluster.other_than(&victim).client;
    let (promoted, _) = wait_for_new_primary(survivor, index, &victim).await?;
    let promotion = killed.elapsed();
    watch.over.fetch_add(1, Ordering::SeqCst);
    let term = primary_term(survivor, index).await?;
    println!(
        "killed {victim} ({}) with {in_flight} write(s) in flight through it, after {} \
         increments; {promoted} primary after {:.1}s, term {term}",
        cluster.how_killed(),
        watch.increments(),
        promotion.as_secs_f64()
    );
    let restarting = Instant::now();
    cluster.restart(&victim).await?;
    let all = Some(cluster.nodes.len());
    let health = health(survivor, Some(index), WaitForStatus::Green, all).await?;
    let back_after = restarting.elapsed();
    println!(
        "{victim} back and the index {} {:.1}s later, after {} increments",
        health["status"].as_str().unwrap_or_default(),
        back_after.as_secs_f64(),
        watch.increments()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(Fault {
        killed: victim,
        in_flight,
        promotion,
        term,
        back_after,
    })
}

/// Each node's own copy (`preference=_local`) of the documents `ids`, one line per node:
/// `node-1's copy: plain counter=1121 _seq_no=2174 _primary_term=2, ...`; and whether all
/// the nodes hold the same.
pub async fn local_copies(
    cluster: &Nodes,
    index: &str,
    ids: &[&str],
) -> Result<(Vec<String>, bool)> {
    let mut copies = Vec::new();
    for node in &cluster.nodes {
        let mut shown = Vec::new();
        for id in ids {
            let body = read_local_copy(&node.client, index, id).await?;
            shown.push(format!(
                "{id} counter={} _seq_no={} _primary_term={}",
                body["_source"]["counter"], body["_seq_no"], body["_primary_term"]
            ));
        }
        copies.push((node.name.clone(), shown.join(", ")));
    }
    let agree = copies.windows(2).all(|w| w[0].1 == w[1].1);
    let lines = copies
        .iter()
        .map(|(node, docs)| format!("{node}'s copy: {docs}"))
        .collect();
    Ok((lines, agree))
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
///     nodes::health(client, Some("nodes-copies"), WaitForStatus::Green, Some(3)).await?;
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
    let health = health(client, Some(index), WaitForStatus::Green, None).await?;
    if health["status"] != "green" {
        bail!("{index} did not become green: {health}");
    }
    Ok(())
}

/// Makes `index` fresh ([`doc::fresh_index`]: one shard, no replicas), pins its only copy to
/// node `node` (`index.routing.allocation.require._name`), applies the index `settings` (for
/// instance `{"translog.durability": "async"}`) in the same request, and waits until that copy
/// is started on `node` and nowhere else (a relocation, if it was created elsewhere, is over).
/// Part III's durability runs use it to know which node to kill: the one holding every copy.
pub async fn create_on(
    client: &Elasticsearch,
    index: &str,
    node: &str,
    settings: Value,
) -> Result<()> {
    doc::fresh_index(client, index).await?;
    let mut body = json!({ "routing.allocation.require._name": node });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), settings.as_object())
    {
        body.extend(extra.clone());
    }
    let response = client
        .indices()
        .put_settings(IndicesPutSettingsParts::Index(&[index]))
        .body(json!({ "index": body }))
        .send()
        .await?;
    doc::expect_success(response, &format!("pinning {index} to {node}")).await?;
    wait_until(
        &format!("{index}'s only copy to be started on {node}"),
        FAULT_TIMEOUT,
        async || {
            let copies = shard_copies(client, index).await?;
            Ok(matches!(copies.as_slice(), [only] if only.node == node && only.state == "STARTED"))
        },
    )
    .await
}

/// Takes back [`create_on`]'s pin (`index.routing.allocation.require._name`), so that the
/// index's copies may go to any node again; the copy already started stays where it is.
pub async fn unpin(client: &Elasticsearch, index: &str) -> Result<()> {
    let response = client
        .indices()
        .put_settings(IndicesPutSettingsParts::Index(&[index]))
        .body(json!({ "index": { "routing.allocation.require._name": null } }))
        .send()
        .await?;
    doc::expect_success(response, &format!("unpinning {index}")).await?;
    Ok(())
}

/// Waits until the master has taken `node`'s copy of `index`'s shard out of the routing table
/// (after [`Nodes::kill`], which returns once the node stops answering, a moment before the
/// master has seen it leave), asking through `client`, for up to five minutes.
pub async fn wait_for_copy_gone(
    client: &Elasticsearch,
    index: &str,
    node: &str,
) -> Result<()> {
    wait_until(
        &format!("{node}'s copy of {index} to be unassigned"),
        FAULT_TIMEOUT,
        async || {
            let copies = shard_copies(client, index).await?;
            Ok(copies.iter().all(|c| c.node != node))
        },
    )
    .await
}

/// Waits until `index` is green again (every copy started: after a restart, once the node has
/// recovered its copies from its own disk), asking through `client` and retrying through
/// errors, for up to five minutes; the health then, and how long it took.
pub async fn wait_for_green(
    client: &Elasticsearch,
    index: &str,
) -> Result<(Value, Duration)> {
    let started = Instant::now();
    let mut last = Value::Null;
    wait_until(&format!("{index} to be green"), FAULT_TIMEOUT, async || {
        last = health(client, Some(index), WaitForStatus::Green, None).await?;
        Ok(last["status"] == "green")
    })
    .await?;
    Ok((last, started.elapsed()))
}

/// Cluster health (of `index` only, if given), waiting up to 30 seconds for `status` and, if
/// given, for the cluster to count that many nodes (`wait_for_nodes`: right after a node dies,
/// an answer can still come from a cluster state that counts it); the answer either way. See
/// [`shard_copies`].
pub async fn health(
    client: &Elasticsearch,
    index: Option<&str>,
    status: WaitForStatus,
    nodes: Option<usize>,
) -> Result<Value> {
    let indices = index.map(|i| [i]);
    let parts = match &indices {
        Some(index) => ClusterHealthParts::Index(index),
        None => ClusterHealthParts::None,
    };
    let nodes = nodes.map(|n| n.to_string());
    let cluster = client.cluster();
    let mut request = cluster.health(parts).wait_for_status(status);
    if let Some(nodes) = &nodes {
        request = request.wait_for_nodes(nodes);
    }
    let response = request
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

/// Where each copy of `index`'s shard is, in one line for a person:
/// `shard 0 of bank: primary on node-3 (STARTED), replica on node-1 (STARTED), ...`; a copy
/// without a node is `replica UNASSIGNED`.
pub async fn copies_line(client: &Elasticsearch, index: &str) -> Result<String> {
    let shown: Vec<String> = shard_copies(client, index)
        .await?
        .iter()
        .map(|c| {
            let role = if c.primary { "primary" } else { "replica" };
            if c.node.is_empty() {
                format!("{role} {}", c.state)
            } else {
                format!("{role} on {} ({})", c.node, c.state)
            }
        })
        .collect();
    Ok(format!("shard 0 of {index}: {}", shown.join(", ")))
}

/// A cluster health answer in one line for a person: status, nodes, and the unassigned
/// copies (`delayed_unassigned_shards` counts over the whole cluster even when the health was
/// asked about one index).
pub fn health_line(health: &Value) -> String {
    format!(
        "{}, {} nodes, unassigned_shards={}, delayed_unassigned_shards={}",
        health["status"].as_str().unwrap_or_default(),
        health["number_of_nodes"],
        health["unassigned_shards"],
        health["delayed_unassigned_shards"]
    )
}

/// The name of the elected master node.
pub async fn elected_master(client: &Elasticsearch) -> Result<String> {
    let response = client.cat().master().format("json").send().await?;
    let rows = doc::expect_success(response, "asking for the master").await?;
    Ok(rows[0]["node"].as_str().unwrap_or_default().to_string())
}

/// Why a replica of `index`'s shard stays unassigned, in one line: each node's deciding "no",
/// from the allocation explain API (`can_allocate=no; no on node-1: same_shard, ...`).
pub async fn why_unassigned(client: &Elasticsearch, index: &str) -> Result<String> {
    let response = client
        .cluster()
        .allocation_explain()
        .body(json!({ "index": index, "shard": 0, "primary": false }))
        .send()
        .await?;
    let body = doc::expect_success(response, "explaining the allocation").await?;
    let decisions: Vec<String> = body["node_allocation_decisions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|node| {
            let deciders: Vec<&str> = node["deciders"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|d| d["decision"] == "NO")
                .filter_map(|d| d["decider"].as_str())
                .collect();
            let name = node["node_name"].as_str().unwrap_or_default();
            format!("{name}: {}", deciders.join("+"))
        })
        .collect();
    Ok(format!(
        "can_allocate={}; no on {}",
        body["can_allocate"].as_str().unwrap_or_default(),
        decisions.join(", ")
    ))
}

/// Document `id` as `client`'s node's own copy holds it (`preference=_local`), whichever copy
/// is the primary: the whole GET answer.
pub async fn read_local_copy(
    client: &Elasticsearch,
    index: &str,
    id: &str,
) -> Result<Value> {
    let response = client
        .get(GetParts::IndexId(index, id))
        .preference("_local")
        .send()
        .await?;
    doc::expect_success(response, "reading the node's own copy").await
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
