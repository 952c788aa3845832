//! Elasticsearch as processes on this machine: one node, or a cluster of several, listening on
//! 127.0.0.1, started once and reused by every later run until `cargo es stop`.
//!
//! Each [`Topology`] (a server, a number of nodes, a security setting) has a directory of its
//! own under the cache:
//!
//! ```text
//! <cache>/9.x.y/            the single node most chapters use (named after its version)
//!   state.json              version, and per node: name, pid, ports
//!   lock                    held while a process starts this topology
//!   node-1/                 config, data, logs (logs/console.log) and tmp of node 1
//! <cache>/9.x.y-x3/         a three-node cluster: node-1/, node-2/, node-3/
//!   faults.lock             held by a process that kills and restarts its nodes
//! <cache>/9.x.y-secured/    security on, plain HTTP
//! <cache>/9.x.y-tls/        security on, HTTPS
//!   certs/ca/ca.crt         the CA that signed the node's certificate (made at first start)
//! ```
//!
//! A node runs in a process group of its own, so it outlives the example that started it and
//! a Ctrl-C in that example's terminal, and stopping (or killing) the group takes the launcher
//! and the server JVM together. When this runs as root the nodes run as `nobody`, since
//! Elasticsearch refuses root.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use tokio::process::Command;

use crate::facts::{self, Build, RELEASE, SCRIPTING, SECURED_USER, Server};
use crate::health::{self, NotHealthy};
use crate::progress::{print_tail, say};
use crate::settings::{
    NodeSpec, Security, TLS_CA, TLS_CERT, TLS_KEY, heap_options,
};
use crate::{Started, cache_dir, install, is_root, java, lock, tls};

/// uid/gid of `nobody`, who runs the nodes when we are root.
const NOBODY: u32 = 65534;

/// What to run: which server, on how many nodes, with which security.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Topology {
    pub server: &'static Server,
    pub nodes: usize,
    pub security: Security,
}

impl Topology {
    /// One node of `server`, security off: what the chapters run on.
    pub const fn single(server: &'static Server) -> Topology {
        Topology {
            server,
            nodes: 1,
            security: Security::Off,
        }
    }

    /// The release on `nodes` nodes: the failover chapters' cluster.
    pub const fn cluster(nodes: usize) -> Topology {
        Topology {
            server: &RELEASE,
            nodes,
            security: Security::Off,
        }
    }

    /// `server` on `nodes` nodes: [`Topology::cluster`] for any server, for instance the
    /// scripting build's three nodes that chapter 18's server-side increments fail over on.
    pub const fn cluster_of(server: &'static Server, nodes: usize) -> Topology {
        Topology {
            server,
            nodes,
            security: Security::Off,
        }
    }

    /// The release with security on and one user: the credential tests' node.
    pub const fn secured() -> Topology {
        Topology {
            server: &RELEASE,
            nodes: 1,
            security: Security::Basic {
                user: SECURED_USER.0,
                password: SECURED_USER.1,
            },
        }
    }

    /// The release with security on, HTTPS with a certificate signed by a CA generated at its
    /// first start ([`ca_certificate`]), and one user: the TLS tests' node.
    pub const fn tls() -> Topology {
        Topology {
            server: &RELEASE,
            nodes: 1,
            security: Security::Tls {
                user: SECURED_USER.0,
                password: SECURED_USER.1,
            },
        }
    }

    /// Every topology the book starts, for `cargo es status` and `cargo es stop`.
    pub fn all() -> [Topology; 6] {
        [
            Topology::single(&RELEASE),
            Topology::single(&SCRIPTING),
            Topology::secured(),
            Topology::tls(),
            Topology::cluster(3),
            Topology::cluster_of(&SCRIPTING, 3),
        ]
    }

    /// Its directory's name: the version, then `-x3` for three nodes, `-secured` with security,
    /// `-tls` with security over TLS.
    pub fn name(&self) -> String {
        let mut name = self.server.version.to_string();
        if self.nodes > 1 {
            name.push_str(&format!("-x{}", self.nodes));
        }
        match self.security {
            Security::Off => {}
            Security::Basic { .. } => name.push_str("-secured"),
            Security::Tls { .. } => name.push_str("-tls"),
        }
        name
    }

    /// What it is, for messages: "Elasticsearch 9.x.y, 3 nodes".
    pub fn describe(&self) -> String {
        let mut text = format!("Elasticsearch {}", self.server.version);
        if self.nodes > 1 {
            text.push_str(&format!(", {} nodes", self.nodes));
        }
        match self.security {
            Security::Off => {}
            Security::Basic { .. } => text.push_str(", secured"),
            Security::Tls { .. } => text.push_str(", secured, TLS"),
        }
        text
    }

    fn dir(&self) -> PathBuf {
        cache_dir().join(self.name())
    }

    fn cluster_name(&self) -> String {
        format!("occ-book-{}", self.name().replace('.', "-"))
    }

    fn scheme(&self) -> &'static str {
        match self.security {
            Security::Tls { .. } => "https",
            Security::Off | Security::Basic { .. } => "http",
        }
    }

    /// The address of the node listening on `port`, safe to print.
    pub fn address(&self, port: u16) -> String {
        format!("{}://127.0.0.1:{port}", self.scheme())
    }

    /// The URL of the node listening on `port`, with credentials if it asks for them.
    pub fn url(&self, port: u16) -> String {
        match self.security.credentials() {
            None => self.address(port),
            Some((user, password)) => {
                format!("{}://{user}:{password}@127.0.0.1:{port}", self.scheme())
            }
        }
    }

    /// A client for the node on `port`, as the provisioning checks it (a TLS node's
    /// certificate checked against its CA).
    fn health_client(&self, port: u16) -> Result<elasticsearch::Elasticsearch> {
        match self.security {
            Security::Tls { .. } => {
                let pem = fs::read(ca_certificate(*self))
                    .context("reading the TLS node's CA certificate")?;
                health::client(port, self.security, Some(&pem))
            }
            _ => health::client(port, self.security, None),
        }
    }
}

/// What is recorded about a running topology, so the next run can reuse it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub version: String,
    pub nodes: Vec<NodeState>,
}

/// One node of a running topology.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeState {
    pub name: String,
    pub pid: u32,
    pub http_port: u16,
    pub transport_port: u16,
}

impl NodeState {
    /// Whether its process still runs.
    pub fn alive(&self) -> bool {
        alive(self.pid)
    }
}

/// The running `topology`, started (and installed) first if it is not running; nodes of it that
/// died are started again.
pub async fn ensure(topology: Topology) -> Result<Started> {
    if let Some(started) = reuse(topology).await {
        return Ok(started);
    }
    let dir = topology.dir();
    fs::create_dir_all(&dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    let _lock = lock::acquire(&dir.join("lock")).await?;
    // Another process may have started it while we waited for the lock.
    if let Some(started) = reuse(topology).await {
        return Ok(started);
    }
    let java = java::find(&topology.server.java)?;
    let home = install::installed(topology.server).await?;
    if let Some(state) =
        read_state(&dir).filter(|s| s.version == topology.server.version)
    {
        // An earlier run's nodes: some may still be starting, some may have died (a chapter
        // kills nodes on purpose). Start the dead ones on their old ports and data, and give
        // the whole cluster its start timeout.
        for node in state.nodes.iter().filter(|n| !n.alive()) {
            say(format!(
                "node {} of {} is not running; starting it again",
                node.name,
                topology.name()
            ));
            start_node(topology, &home, &java, &node.name).await?;
        }
        match wait_healthy(topology).await {
            Ok(started) => return Ok(started),
            Err(error) => {
                say(format!("{error:#}; starting {} afresh", topology.name()));
                stop(topology).await?;
            }
        }
    }
    start_fresh(topology, &home, &java).await
}

/// The recorded topology, if every node of it runs and the cluster answers as healthy with the
/// expected version.
async fn reuse(topology: Topology) -> Option<Started> {
    let state = read_state(&topology.dir())?;
    if state.version != topology.server.version
        || state.nodes.len() != topology.nodes
        || !state.nodes.iter().all(NodeState::alive)
    {
        return None;
    }
    let port = state.nodes[0].http_port;
    let client = topology.health_client(port).ok()?;
    health::healthy(&client, topology.nodes)
        .await
        .then(|| started(topology, &state))
}

fn started(topology: Topology, state: &State) -> Started {
    Started {
        url: topology.url(state.nodes[0].http_port),
        keep_alive: None,
    }
}

/// Starts every node of `topology` on new ports with empty data, and waits until the cluster
/// is healthy.
async fn start_fresh(
    topology: Topology,
    home: &Path,
    java: &java::Java,
) -> Result<Started> {
    let dir = topology.dir();
    let ports = free_ports(2 * topology.nodes)?;
    let nodes: Vec<NodeState> = (0..topology.nodes)
        .map(|i| NodeState {
            name: format!("node-{}", i + 1),
            pid: 0,
            http_port: ports[2 * i],
            transport_port: ports[2 * i + 1],
        })
        .collect();
    for node in &nodes {
        let node_dir = dir.join(&node.name);
        if node_dir.exists() {
            fs::remove_dir_all(&node_dir)
                .with_context(|| format!("removing {}", node_dir.display()))?;
        }
    }
    write_state(
        &dir,
        &State {
            version: topology.server.version.into(),
            nodes,
        },
    )?;
    if let Security::Tls { .. } = topology.security {
        // A new CA and node certificate with every fresh start: nothing to keep secret, and
        // no certificate outlives the node it was made for.
        let certs = dir.join("certs");
        if certs.exists() {
            fs::remove_dir_all(&certs)?;
        }
        say("generating a CA and a node certificate (elasticsearch-certutil)");
        let ca = tls::new_authority(&certs, "occ-book test CA").await?;
        tls::node_certificate(&certs, &ca).await?;
    }
    let names: Vec<String> =
        (1..=topology.nodes).map(|i| format!("node-{i}")).collect();
    for name in &names {
        start_node(topology, home, java, name).await?;
    }
    wait_healthy(topology).await
}

/// Starts node `name` of `topology` in the background, on the ports `state.json` gives it, and
/// records its pid. Does not wait for it.
pub async fn start_node(
    topology: Topology,
    home: &Path,
    java: &java::Java,
    name: &str,
) -> Result<()> {
    let dir = topology.dir();
    let mut state =
        read_state(&dir).context("no state.json to start a node from")?;
    let node = state
        .nodes
        .iter()
        .find(|n| n.name == name)
        .with_context(|| format!("no node {name} in {}", topology.name()))?
        .clone();
    let node_dir = dir.join(name);
    for sub in ["data", "logs", "tmp"] {
        fs::create_dir_all(node_dir.join(sub))?;
    }
    let first_start = fs::read_dir(node_dir.join("data"))?.next().is_none();
    let spec = NodeSpec {
        cluster: topology.cluster_name(),
        name: name.to_string(),
        loopback_ports: Some((node.http_port, node.transport_port)),
        seed_hosts: state
            .nodes
            .iter()
            .filter(|other| other.name != name)
            .map(|other| format!("127.0.0.1:{}", other.transport_port))
            .collect(),
        initial_masters: if topology.nodes > 1 && first_start {
            state.nodes.iter().map(|n| n.name.clone()).collect()
        } else {
            vec![]
        },
        security: topology.security,
    };
    let mut command = match topology.server.build {
        Build::Distribution { .. } => {
            distribution_command(&spec, java, home, &node_dir).await?
        }
        Build::ClusterRunner { .. } => {
            runner_command(&spec, java, home, &node_dir)?
        }
    };
    let console = node_dir.join("logs/console.log");
    let log = fs::File::create(&console)?;
    if is_root() {
        // Elasticsearch refuses to run as root: run the node as nobody, who must own its files
        // and be able to reach the server's home.
        reachable_by_others(home)?;
        chown_tree(&node_dir, NOBODY)?;
        command.uid(NOBODY).gid(NOBODY);
    }
    command
        .env("JAVA_HOME", &java.home)
        .env("ES_JAVA_HOME", &java.home)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0);
    say(format!(
        "starting {} {name} on 127.0.0.1:{} (Java {}, heap {}{}); log: {}",
        topology.describe(),
        node.http_port,
        java.major,
        facts::HEAP,
        if is_root() { ", as nobody" } else { "" },
        console.display()
    ));
    let child = command
        .spawn()
        .map_err(|e| anyhow!("cannot start Elasticsearch: {e}"))?;
    // Recorded at once: if this process is interrupted while the node starts, the next run
    // finds the node instead of starting a second one on the same data.
    let pid = child.id().context("the node exited at once")?;
    if let Some(recorded) = state.nodes.iter_mut().find(|n| n.name == name) {
        recorded.pid = pid;
    }
    write_state(&dir, &state)?;
    Ok(())
}

/// Waits until every node of `topology` answers as one healthy cluster; on failure prints the
/// end of a log that says why and stops nothing (the caller decides).
async fn wait_healthy(topology: Topology) -> Result<Started> {
    let dir = topology.dir();
    let state = read_state(&dir).context("no state.json")?;
    let client = topology.health_client(state.nodes[0].http_port)?;
    let what = topology.describe();
    let outcome = health::wait(
        &what,
        &client,
        topology.nodes,
        facts::start_timeout(),
        async || {
            state
                .nodes
                .iter()
                .find(|n| !n.alive())
                .map(|n| format!("node {} exited", n.name))
        },
    )
    .await;
    match outcome {
        Ok(took) => {
            say(format!("{what} is up after {:.1}s", took.as_secs_f64()));
            Ok(started(topology, &state))
        }
        Err(not) => {
            let node = state
                .nodes
                .iter()
                .find(|n| !n.alive())
                .unwrap_or(&state.nodes[0]);
            let log = dir.join(&node.name).join("logs/console.log");
            print_tail("log", &fs::read_to_string(&log).unwrap_or_default());
            match not {
                NotHealthy::Exited(why) => bail!(
                    "{what}: {why} while starting; the end of {} is above",
                    log.display()
                ),
                NotHealthy::TimedOut(after) => bail!(
                    "{what} did not answer within {}s; the end of {} is above",
                    after.as_secs(),
                    log.display()
                ),
            }
        }
    }
}

/// The recorded state of `topology`, if any.
pub fn read_state_of(topology: Topology) -> Option<State> {
    read_state(&topology.dir())
}

fn read_state(dir: &Path) -> Option<State> {
    let text = fs::read_to_string(dir.join("state.json")).ok()?;
    serde_json::from_str(&text).ok()
}

fn write_state(dir: &Path, state: &State) -> Result<()> {
    let text = serde_json::to_string_pretty(state)?;
    fs::write(dir.join("state.json"), text).context("writing state.json")
}

/// Whether process `pid` runs and, where `/proc` can tell, is an Elasticsearch node (after a
/// reboot the pid may belong to anything, which must never be signalled).
pub fn alive(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    // SAFETY: signal 0 checks for existence without touching the process.
    if unsafe { libc::kill(pid as libc::pid_t, 0) } != 0 {
        return false;
    }
    match fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) => {
            let cmdline = String::from_utf8_lossy(&cmdline);
            cmdline.contains("elasticsearch") || cmdline.contains("OccRunner")
        }
        Err(_) => true,
    }
}

/// Stops every node of `topology` and forgets it; returns what was recorded.
pub async fn stop(topology: Topology) -> Result<Option<State>> {
    let dir = topology.dir();
    let Some(state) = read_state(&dir) else {
        return Ok(None);
    };
    for node in &state.nodes {
        // A node paused with `SIGSTOP` ([`pause_node`]) would hold a `SIGTERM` until it runs
        // again, and the wait below would wait in vain: wake it first.
        signal_group(node.pid, libc::SIGCONT);
        signal_and_wait(node.pid, libc::SIGTERM, Duration::from_secs(30)).await;
        signal_and_wait(node.pid, libc::SIGKILL, Duration::from_secs(10)).await;
    }
    fs::remove_file(dir.join("state.json")).ok();
    Ok(Some(state))
}

/// Kills node `name` of `topology` at once (`SIGKILL` to its process group, as a crash or a
/// power cut would), and waits until it is gone. Its pid stays recorded: [`ensure`] or
/// [`restart_node`] brings it back on the same ports and data.
pub async fn kill_node(topology: Topology, name: &str) -> Result<()> {
    let state =
        read_state(&topology.dir()).context("the cluster is not running")?;
    let node = state
        .nodes
        .iter()
        .find(|n| n.name == name)
        .with_context(|| format!("no node {name} in {}", topology.name()))?;
    // A killed process goes only once it leaves the kernel: one stuck in a disk write (a
    // translog fsync on a loaded machine) can take seconds.
    if signal_and_wait(node.pid, libc::SIGKILL, Duration::from_secs(20)).await {
        return Ok(());
    }
    // Still there: say in which state, and kill it and its group once more, one by one.
    say(format!(
        "node {name} (pid {}) still there 20s after SIGKILL to its group ({});          sending SIGKILL to each of its processes and waiting 40s more",
        node.pid,
        process_state(node.pid)
    ));
    for pid in group_members(node.pid) {
        // SAFETY: a plain kill(2) of a process of the group we started.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    }
    if !signal_and_wait(node.pid, libc::SIGKILL, Duration::from_secs(40)).await {
        bail!(
            "node {name} (pid {}) did not die within 60s of SIGKILL ({})",
            node.pid,
            process_state(node.pid)
        );
    }
    Ok(())
}

/// Pauses node `name` of `topology` (`SIGSTOP` to its process group, as a long garbage
/// collection or a frozen virtual machine would): its process stays, its sockets stay open, and
/// nothing in it runs until [`resume_node`]. A paused node must not be left so: [`stop`] wakes
/// it before stopping it, and every caller resumes it on its way out.
pub async fn pause_node(topology: Topology, name: &str) -> Result<()> {
    let node = recorded_node(topology, name)?;
    if !signal_group(node.pid, libc::SIGSTOP) {
        bail!(
            "node {name} (pid {}) is not running: cannot pause it",
            node.pid
        );
    }
    // The group is stopped once the kernel says so (state T): wait up to five seconds.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !process_state(node.pid).starts_with("state T") {
        if Instant::now() > deadline {
            signal_group(node.pid, libc::SIGCONT);
            bail!(
                "node {name} (pid {}) did not stop within 5s of SIGSTOP",
                node.pid
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Lets node `name` of `topology` run again after [`pause_node`] (`SIGCONT` to its process
/// group). Harmless on a node that is not paused.
pub fn resume_node(topology: Topology, name: &str) -> Result<()> {
    let node = recorded_node(topology, name)?;
    if !signal_group(node.pid, libc::SIGCONT) {
        bail!(
            "node {name} (pid {}) is not running: cannot resume it",
            node.pid
        );
    }
    Ok(())
}

/// Resumes every node of `topology` ([`resume_node`]), paused or not: what a process that
/// takes [`exclusive`] does first, in case the last holder died with a node paused.
pub fn resume_all(topology: Topology) {
    if let Some(state) = read_state(&topology.dir()) {
        for node in &state.nodes {
            signal_group(node.pid, libc::SIGCONT);
        }
    }
}

/// Where node `name` of `topology` writes its log (standard output and error of the node):
/// `<cache>/<topology>/<name>/logs/console.log`.
pub fn console_log(topology: Topology, name: &str) -> PathBuf {
    topology.dir().join(name).join("logs/console.log")
}

/// Node `name` as `state.json` records it.
fn recorded_node(topology: Topology, name: &str) -> Result<NodeState> {
    let state =
        read_state(&topology.dir()).context("the cluster is not running")?;
    state
        .nodes
        .into_iter()
        .find(|n| n.name == name)
        .with_context(|| format!("no node {name} in {}", topology.name()))
}

/// Every descendant of process `pid` (children, their children, ...), from `/proc`: the
/// processes of a container under its init, for [`crate::container`]'s fallback pause.
pub fn descendants(pid: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let parents: Vec<(u32, u32)> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|p| {
            let stat = fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            // After "(comm) ": state, ppid.
            let ppid = stat.rsplit_once(") ")?.1.split_whitespace().nth(1)?;
            Some((p, ppid.parse().ok()?))
        })
        .collect();
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// Sends `signal` to the process group led by `pid` if it is a live node; whether it was.
fn signal_group(pid: u32, signal: libc::c_int) -> bool {
    if !alive(pid) {
        return false;
    }
    // SAFETY: a plain kill(2) on a process group we started and just checked is a node.
    unsafe { libc::kill(-(pid as libc::pid_t), signal) == 0 }
}

/// The certificate (PEM) of the CA that signed the TLS node's certificate: what a client must
/// trust (`ELASTICSEARCH_CA_CERT`). It exists once [`ensure`] has started [`Topology::tls`].
pub fn ca_certificate(topology: Topology) -> PathBuf {
    topology.dir().join("certs/ca/ca.crt")
}

/// Holds `topology` for one process that kills and restarts its nodes (a failover chapter), so
/// that a second such process waits instead of finding nodes down and starting them again under
/// the first one's feet. Released when the returned file is dropped.
pub async fn exclusive(topology: Topology) -> Result<fs::File> {
    let dir = topology.dir();
    fs::create_dir_all(&dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    lock::acquire(&dir.join("faults.lock")).await
}

/// `(name, url)` of every node of the running `topology`, `node-1` first.
pub fn node_urls(topology: Topology) -> Result<Vec<(String, String)>> {
    let state =
        read_state(&topology.dir()).context("the cluster is not running")?;
    Ok(state
        .nodes
        .iter()
        .map(|n| (n.name.clone(), topology.url(n.http_port)))
        .collect())
}

/// Starts node `name` of `topology` again after [`kill_node`], and waits until the cluster has
/// all its nodes again.
pub async fn restart_node(topology: Topology, name: &str) -> Result<Started> {
    let java = java::find(&topology.server.java)?;
    let home = install::installed(topology.server).await?;
    start_node(topology, &home, &java, name).await?;
    wait_healthy(topology).await
}

/// `pid`'s state and what it waits in, from `/proc` (`D` is a wait the kernel will not
/// interrupt, a disk write say), for a message.
fn process_state(pid: u32) -> String {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(") ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or("gone");
    let wchan =
        fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
    format!("state {state}, waiting in {:?}", wchan.trim())
}

/// The processes of the process group led by `pid` (the node's launcher and its server).
fn group_members(pid: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return vec![pid];
    };
    let mut members: Vec<u32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            let stat =
                fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            // After "(comm) ": state, ppid, pgrp.
            stat.rsplit_once(") ").and_then(|(_, rest)| {
                rest.split_whitespace().nth(2)?.parse::<u32>().ok()
            }) == Some(pid)
        })
        .collect();
    if !members.contains(&pid) {
        members.push(pid);
    }
    members
}

/// Sends `signal` to the process group led by `pid`, if it is a live node, and waits up to
/// `patience` for it to end. Whether it is gone.
async fn signal_and_wait(
    pid: u32,
    signal: libc::c_int,
    patience: Duration,
) -> bool {
    if !alive(pid) {
        return true;
    }
    // SAFETY: a plain kill(2) on a process group we started and just checked is a node.
    unsafe { libc::kill(-(pid as libc::pid_t), signal) };
    let deadline = Instant::now() + patience;
    while alive(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    !alive(pid)
}

/// `bin/elasticsearch` with a config directory of its own.
async fn distribution_command(
    spec: &NodeSpec,
    java: &java::Java,
    home: &Path,
    node_dir: &Path,
) -> Result<Command> {
    let config = node_dir.join("config");
    if config.exists() {
        fs::remove_dir_all(&config)?;
    }
    copy_dir(&home.join("config"), &config)?;
    let mut yml = spec.yml();
    yml.push_str(&format!(
        "path.data: {}\npath.logs: {}\n",
        node_dir.join("data").display(),
        node_dir.join("logs").display()
    ));
    fs::write(config.join("elasticsearch.yml"), yml)?;
    if let Security::Tls { .. } = spec.security {
        let certs = node_dir.parent().context("a node directory")?.join("certs");
        fs::create_dir_all(config.join("certs"))?;
        for (from, to) in [
            ("node/node.key", TLS_KEY),
            ("node/node.crt", TLS_CERT),
            ("ca/ca.crt", TLS_CA),
        ] {
            fs::copy(certs.join(from), config.join(to)).with_context(|| {
                format!(
                    "copying {} into the node's config",
                    certs.join(from).display()
                )
            })?;
        }
    }
    if let Some((user, password)) = spec.security.credentials() {
        install::run_quiet(
            Command::new(home.join("bin/elasticsearch-users"))
                .args(["useradd", user, "-p", password, "-r", "superuser"])
                .env("ES_PATH_CONF", &config)
                .env("ES_JAVA_HOME", &java.home),
            "elasticsearch-users useradd",
        )
        .await?;
    }
    let mut command = Command::new(home.join("bin/elasticsearch"));
    command
        .env("ES_PATH_CONF", &config)
        .env("ES_TMPDIR", node_dir.join("tmp"))
        .env("ES_JAVA_OPTS", heap_options());
    Ok(command)
}

/// The scripting build: `OccRunner`, one node in one JVM, its settings in the environment.
fn runner_command(
    spec: &NodeSpec,
    java: &java::Java,
    home: &Path,
    node_dir: &Path,
) -> Result<Command> {
    let base = node_dir.join("runner");
    let config = base.join("node_1/config");
    fs::create_dir_all(&config)?;
    fs::copy(
        home.join("occ/log4j2.properties"),
        config.join("log4j2.properties"),
    )?;
    let mut command = Command::new(java.home.join("bin/java"));
    command
        .args(runner_jvm_options(&node_dir.join("tmp").to_string_lossy()))
        .args(runner_main(
            &home.to_string_lossy(),
            &base.to_string_lossy(),
        ))
        .envs(spec.settings());
    Ok(command)
}

/// The JVM options of the scripting build, with its temporary files in `tmp`: the same for a
/// local node and for the Podman image's entrypoint.
pub fn runner_jvm_options(tmp: &str) -> Vec<String> {
    let mut options: Vec<String> =
        heap_options().split(' ').map(str::to_string).collect();
    options.extend(
        [
            "-XX:+UseG1GC",
            "-XX:-UsePerfData",
            // log4j 2.11, the version Elasticsearch 7.10 shipped: no message lookups.
            "-Dlog4j2.formatMsgNoLookups=true",
            "-Dlog4j.shutdownHookEnabled=false",
            "-Dlog4j2.disable.jmx=true",
            "-Dio.netty.noUnsafe=true",
        ]
        .map(str::to_string),
    );
    options.push(format!("-Djava.io.tmpdir={tmp}"));
    options.push(format!("-Djna.tmpdir={tmp}"));
    options
}

/// The scripting build's main class and its arguments, run from `home` with its data under
/// `base`.
pub fn runner_main(home: &str, base: &str) -> Vec<String> {
    vec![
        "-cp".into(),
        format!("{home}/lib/*:{home}/occ"),
        "OccRunner".into(),
        "-basePath".into(),
        base.into(),
    ]
}

/// `n` distinct ports the kernel just handed out on 127.0.0.1, free at the time of asking.
pub fn free_ports(n: usize) -> Result<Vec<u16>> {
    // All held at once, so the kernel cannot hand out the same port twice.
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

fn chown_tree(path: &Path, uid: u32) -> Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(uid))
        .with_context(|| format!("chown {}", path.display()))?;
    if path.is_dir() && !path.is_symlink() {
        for entry in fs::read_dir(path)? {
            chown_tree(&entry?.path(), uid)?;
        }
    }
    Ok(())
}

/// Every directory from `/` down to `path` must let others in, or `nobody` cannot run the node.
fn reachable_by_others(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for dir in path.ancestors() {
        let mode = fs::metadata(dir)?.permissions().mode();
        if mode & 0o001 == 0 {
            bail!(
                "Elasticsearch refuses to run as root, so it would run as nobody, but nobody \
                 cannot enter {}; set OCC_CACHE_DIR to a directory others can reach (for \
                 example /var/tmp/occ-book) or run as a normal user",
                dir.display()
            );
        }
    }
    Ok(())
}
