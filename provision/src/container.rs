//! The container path: testcontainers starts Elasticsearch in Docker (or Podman through
//! `DOCKER_HOST`), and removes it when the example ends.
//!
//! The image is described once, as testcontainers' own modules describe theirs: the
//! [`Elasticsearch`] type below holds its name, tag, environment, ports and ready condition.
//! What may differ between machines is configuration, read here and nowhere else:
//!
//! | variable | default | what it is for |
//! | --- | --- | --- |
//! | `OCC_ES_IMAGE` | the official image, [`OFFICIAL_IMAGE`] | the image for every example |
//! | `OCC_ES_SCRIPTING_IMAGE` | `OCC_ES_IMAGE` | the image for scripts and update-by-query, if it must differ |
//! | `OCC_CONTAINER_NETWORK` | `bridge` | `host` on Podman 4.3, whose port reports testcontainers cannot read |
//! | `OCC_CONTAINER_SETTINGS` | none | extra node settings, `name=value` separated by spaces; each replaces the project's setting of that name |
//!
//! Security is off: this is a throwaway node on your own machine, reached only from it.
//! Readiness is waited for twice: testcontainers waits for the node's "started" log line, then
//! the cluster's health is polled over 127.0.0.1, the one address this project may contact
//! (testcontainers' own HTTP wait would use the address it believes the engine is at, which
//! inside some sandboxes is a bridge address).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use testcontainers::bollard::models::PortBinding;
use testcontainers::core::client::docker_client_instance;
use testcontainers::core::logs::LogFrame;
use testcontainers::core::{ContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, Image, ImageExt, TestcontainersError};

use crate::facts::{
    CONTAINER_LABEL, OFFICIAL_IMAGE, OWNER_LABEL, SCRIPTING, Server, start_timeout,
};
use crate::health::{self, NotHealthy};
use crate::progress::{Ticker, print_tail, root_cause, say};
use crate::settings::{NodeSpec, Security, heap_options};
use crate::{Started, local};

/// How long the container engine may take to answer a ping before we call it unreachable.
const PING_TIMEOUT: Duration = Duration::from_secs(3);
/// The port Elasticsearch serves HTTP on inside a container on a bridge network.
const HTTP: ContainerPort = ContainerPort::Tcp(9200);

/// An Elasticsearch image, configured for one node.
#[derive(Debug, Clone)]
pub struct Elasticsearch {
    name: String,
    tag: String,
    env: BTreeMap<String, String>,
    ports: Vec<ContainerPort>,
}

impl Elasticsearch {
    /// `image` (`NAME:TAG`) running the node `spec` describes.
    ///
    /// Settings go in as environment variables, as the official image expects
    /// (`discovery.type=single-node`, ...), and the heap through `ES_JAVA_OPTS`.
    pub fn new(image: &str, spec: &NodeSpec) -> Result<Elasticsearch> {
        let (name, tag) = image
            .rsplit_once(':')
            .filter(|(_, tag)| !tag.contains('/'))
            .ok_or_else(|| anyhow!("container image {image:?} must be NAME:TAG"))?;
        let mut env: BTreeMap<String, String> =
            spec.settings().into_iter().collect();
        env.insert("ES_JAVA_OPTS".into(), heap_options());
        let extra = std::env::var("OCC_CONTAINER_SETTINGS").unwrap_or_default();
        env.extend(extra_settings(&extra)?);
        Ok(Elasticsearch {
            name: name.into(),
            tag: tag.into(),
            env,
            // On the host network the node listens on the ports its settings name; on a
            // bridge network it keeps 9200, published to a port the engine picks.
            ports: if spec.loopback_ports.is_some() {
                vec![]
            } else {
                vec![HTTP]
            },
        })
    }
}

/// The settings `OCC_CONTAINER_SETTINGS` adds: `name=value` pairs separated by whitespace.
fn extra_settings(text: &str) -> Result<Vec<(String, String)>> {
    text.split_whitespace()
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) if !name.is_empty() => {
                Ok((name.into(), value.into()))
            }
            _ => bail!("OCC_CONTAINER_SETTINGS: {pair:?} is not name=value"),
        })
        .collect()
}

impl Image for Elasticsearch {
    fn name(&self) -> &str {
        &self.name
    }

    fn tag(&self) -> &str {
        &self.tag
    }

    /// The node logs `"message":"started ...` (9.x) or `"message": "started"` (7.10) on stdout
    /// once it serves requests.
    fn ready_conditions(&self) -> Vec<WaitFor> {
        vec![WaitFor::message_on_stdout("\"started")]
    }

    fn env_vars(
        &self,
    ) -> impl IntoIterator<Item = (impl Into<Cow<'_, str>>, impl Into<Cow<'_, str>>)>
    {
        &self.env
    }

    fn expose_ports(&self) -> &[ContainerPort] {
        &self.ports
    }
}

/// A running container; removed when dropped.
pub struct Running {
    _container: ContainerAsync<Elasticsearch>,
}

/// `Ok` if a container engine answers (Docker's socket, or `DOCKER_HOST`); otherwise why not.
pub async fn engine_answers() -> Result<()> {
    let where_ = std::env::var("DOCKER_HOST")
        .unwrap_or_else(|_| "the default Docker socket".into());
    let ping = async {
        let docker = docker_client_instance().await?;
        docker.ping().await?;
        anyhow::Ok(())
    };
    match tokio::time::timeout(PING_TIMEOUT, ping).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => bail!(
            "no container engine answered at {where_} ({})",
            root_cause(e.as_ref())
        ),
        Err(_) => bail!(
            "no container engine answered at {where_} within {PING_TIMEOUT:?}"
        ),
    }
}

/// The image that runs `server`, from the configuration above.
pub fn image_for(server: &Server) -> String {
    let core =
        std::env::var("OCC_ES_IMAGE").unwrap_or_else(|_| OFFICIAL_IMAGE.into());
    if *server == SCRIPTING {
        std::env::var("OCC_ES_SCRIPTING_IMAGE").unwrap_or(core)
    } else {
        core
    }
}

/// Whether containers run on the host network (`OCC_CONTAINER_NETWORK=host`).
fn host_network() -> bool {
    std::env::var("OCC_CONTAINER_NETWORK").as_deref() == Ok("host")
}

/// Starts a single-node Elasticsearch container for `server` and waits until it is healthy.
pub async fn start(server: &Server) -> Result<Started> {
    engine_answers().await?;
    let image = image_for(server);
    if !image_present(&image).await {
        // Docker pulls it on start; a local-only engine (Podman here) has to have it built.
        say(format!(
            "image {image} is not here yet; the engine will pull it (first run only)"
        ));
    }
    let loopback_ports = if host_network() {
        let ports = local::free_ports(2)?;
        Some((ports[0], ports[1]))
    } else {
        None
    };
    let spec = NodeSpec {
        cluster: "occ-book".into(),
        name: "node-1".into(),
        loopback_ports,
        seed_hosts: vec![],
        initial_masters: vec![],
        security: Security::Off,
    };
    let timeout = start_timeout();
    let started = Instant::now();
    let log = Tail::default();
    let mut request = Elasticsearch::new(&image, &spec)?
        .with_label(CONTAINER_LABEL, "true")
        .with_label(OWNER_LABEL, std::process::id().to_string())
        .with_startup_timeout(timeout)
        .with_log_consumer(log.consumer());
    if loopback_ports.is_some() {
        request = request.with_host_config_modifier(|config| {
            config.network_mode = Some("host".into());
            config.publish_all_ports = Some(false);
            config.port_bindings = None;
        });
    }
    say(format!("starting container {image}"));
    let container = {
        let _ticker = Ticker::start(format!("starting container {image}"));
        request.start().await.map_err(|e| {
            log.print();
            match e {
                TestcontainersError::WaitContainer(wait) => anyhow!(
                    "container {image} did not become healthy within {}s ({wait}); the end of its log is above",
                    timeout.as_secs()
                ),
                other => anyhow!("cannot start container {image}: {other}"),
            }
        })?
    };
    let port = match loopback_ports {
        Some((http, _)) => http,
        None => container
            .get_host_port_ipv4(HTTP)
            .await
            .context("finding the container's HTTP port")?,
    };
    let client = health::client(port, Security::Off, None)?;
    let left = timeout.saturating_sub(started.elapsed());
    let waited = health::wait(
        &format!("{image} to be healthy"),
        &client,
        1,
        left,
        async || {
            (!container.is_running().await.unwrap_or(false))
                .then(|| "the container exited".into())
        },
    )
    .await;
    if let Err(not) = waited {
        log.print();
        match not {
            NotHealthy::Exited(_) => {
                bail!(
                    "container {image} exited while starting; the end of its log is above"
                )
            }
            NotHealthy::TimedOut(_) => bail!(
                "container {image} did not become healthy within {}s; the end of its log is above",
                timeout.as_secs()
            ),
        }
    }
    say(format!(
        "container {image} healthy after {:.1}s",
        started.elapsed().as_secs_f64()
    ));
    Ok(Started {
        url: format!("http://127.0.0.1:{port}"),
        keep_alive: Some(Arc::new(Running {
            _container: container,
        })),
    })
}

/// Several containers of one server forming one cluster: the failover chapters' cluster on the
/// container path. Each node can be killed and started again; all are removed when this is
/// dropped.
pub struct ContainerCluster {
    nodes: Vec<ClusterNode>,
    /// Nodes paused by `SIGSTOP` because the engine could not pause them: resumed by `SIGCONT`
    /// alone (asking the engine to unpause a container it did not pause is not harmless on
    /// every engine).
    stopped: Mutex<Vec<String>>,
}

struct ClusterNode {
    name: String,
    url: String,
    container: ContainerAsync<Elasticsearch>,
    /// Everything the container printed since it started ([`ContainerCluster::logs`]).
    output: Arc<Mutex<String>>,
}

/// A cluster of containers that [`start_cluster`] started: each node's name and URL, and the
/// handle that kills, restarts and finally removes them.
pub struct StartedCluster {
    /// `(name, url)` of every node, `node-1` first.
    pub nodes: Vec<(String, String)>,
    pub handle: Arc<ContainerCluster>,
}

/// Starts `count` containers of `server` that form one cluster, and waits until it is healthy.
///
/// With `OCC_CONTAINER_NETWORK=host` (Podman here) every node listens on 127.0.0.1 on ports of
/// its own and finds the others there. Otherwise (Docker) the nodes share a network of their
/// own, find each other by container name, and each node's port 9200 is published on
/// 127.0.0.1, on a port chosen here so that it survives a restart. That variant is written for
/// Docker and has not run here (Podman 4.3's port reports are what testcontainers cannot read);
/// like the official image's own multi-node set-up, it needs `vm.max_map_count` of at least
/// 262144 on the Docker host, since nodes that talk over a network enforce Elasticsearch's
/// bootstrap checks.
pub async fn start_cluster(
    server: &Server,
    count: usize,
) -> Result<StartedCluster> {
    engine_answers().await?;
    let image = image_for(server);
    let names: Vec<String> = (1..=count).map(|i| format!("node-{i}")).collect();
    // Container names and the network are global to the engine: make them ours alone.
    let run = format!("occ-book-{}-{:04x}", std::process::id(), fastrand::u16(..));
    let ports = if host_network() {
        Some(local::free_ports(2 * count)?)
    } else {
        None
    };
    // On a bridge network: the host port each node's HTTP is published on, chosen here so that
    // it stays the same when the container is started again (Docker picks new random ports on
    // every start).
    let published = local::free_ports(count)?;
    let specs: Vec<NodeSpec> = names
        .iter()
        .enumerate()
        .map(|(i, name)| NodeSpec {
            cluster: "occ-book-cluster".into(),
            name: name.clone(),
            loopback_ports: ports.as_ref().map(|p| (p[2 * i], p[2 * i + 1])),
            seed_hosts: names
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(j, other)| match &ports {
                    Some(p) => format!("127.0.0.1:{}", p[2 * j + 1]),
                    None => format!("{run}-{other}:9300"),
                })
                .collect(),
            initial_masters: names.clone(),
            security: Security::Off,
        })
        .collect();
    let timeout = start_timeout();
    let started = Instant::now();
    say(format!(
        "starting {count} containers of {image} as one cluster"
    ));
    let logs: Vec<Tail> = specs.iter().map(|_| Tail::default()).collect();
    let outputs: Vec<Arc<Mutex<String>>> =
        specs.iter().map(|_| Arc::default()).collect();
    // All at once: a node of a new cluster waits for the others before it says "started".
    let mut starting = tokio::task::JoinSet::new();
    for (i, (spec, log)) in specs.iter().cloned().zip(logs.clone()).enumerate() {
        let output = outputs[i].clone();
        let image = image.clone();
        let run = run.clone();
        let host_port = published[i];
        starting.spawn(async move {
            let mut request = Elasticsearch::new(&image, &spec)?
                .with_label(CONTAINER_LABEL, "true")
                .with_label(OWNER_LABEL, std::process::id().to_string())
                .with_startup_timeout(timeout)
                .with_log_consumer(log.consumer())
                .with_log_consumer(move |frame: &LogFrame| {
                    let (LogFrame::StdOut(bytes) | LogFrame::StdErr(bytes)) = frame;
                    let mut all = output.lock().unwrap_or_else(|e| e.into_inner());
                    all.push_str(&String::from_utf8_lossy(bytes));
                });
            if spec.loopback_ports.is_some() {
                request = request.with_host_config_modifier(|config| {
                    config.network_mode = Some("host".into());
                    config.publish_all_ports = Some(false);
                    config.port_bindings = None;
                });
            } else {
                let container = format!("{run}-{}", spec.name);
                request = request
                    .with_network(run.clone())
                    .with_container_name(container.clone())
                    .with_hostname(container)
                    .with_host_config_modifier(move |config| {
                        // Published on 127.0.0.1 only, on the port chosen above.
                        config.publish_all_ports = Some(false);
                        config.port_bindings = Some(HashMap::from([(
                            "9200/tcp".to_string(),
                            Some(vec![PortBinding {
                                host_ip: Some("127.0.0.1".into()),
                                host_port: Some(host_port.to_string()),
                            }]),
                        )]));
                    });
            }
            let container = request.start().await.map_err(|e| {
                log.print();
                anyhow!("cannot start container {} of {image}: {e}", spec.name)
            })?;
            anyhow::Ok((i, container))
        });
    }
    let mut containers = Vec::new();
    {
        let _ticker = Ticker::start(format!("starting {count} containers"));
        // On the first error the set is dropped, and the containers already started with it.
        while let Some(joined) = starting.join_next().await {
            containers.push(joined.context("a container start panicked")??);
        }
    }
    containers.sort_by_key(|(i, _)| *i);
    let containers = containers.into_iter().map(|(_, c)| c);
    let mut nodes = Vec::new();
    for (i, (spec, container)) in specs.iter().zip(containers).enumerate() {
        let port = match spec.loopback_ports {
            Some((http, _)) => http,
            None => published[i],
        };
        nodes.push(ClusterNode {
            name: spec.name.clone(),
            url: format!("http://127.0.0.1:{port}"),
            container,
            output: outputs[i].clone(),
        });
    }
    let cluster = Arc::new(ContainerCluster {
        nodes,
        stopped: Mutex::new(Vec::new()),
    });
    let left = timeout.saturating_sub(started.elapsed());
    cluster.wait_for_nodes(count, left).await?;
    say(format!(
        "{count} containers of {image} form a cluster after {:.1}s",
        started.elapsed().as_secs_f64()
    ));
    Ok(StartedCluster {
        nodes: cluster
            .nodes
            .iter()
            .map(|n| (n.name.clone(), n.url.clone()))
            .collect(),
        handle: cluster,
    })
}

impl ContainerCluster {
    fn node(&self, name: &str) -> Result<&ClusterNode> {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .with_context(|| format!("no node {name} in the container cluster"))
    }

    /// Kills node `name`'s container at once (`SIGKILL`, as `docker kill` does). The container
    /// and its data stay: [`ContainerCluster::restart`] starts it again.
    pub async fn kill(&self, name: &str) -> Result<()> {
        let node = self.node(name)?;
        let docker = docker_client_instance().await?;
        docker
            .kill_container(node.container.id(), None)
            .await
            .with_context(|| format!("killing the container of {name}"))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while node.container.is_running().await.unwrap_or(false) {
            if Instant::now() > deadline {
                bail!("the container of {name} still runs 10s after SIGKILL");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// Pauses node `name`'s container: the engine's pause (as `docker pause` does: the cgroup
    /// freezer stops every process in it, as a frozen virtual machine would). Where the engine
    /// cannot freeze (runc on cgroup v1 without a usable freezer, as in some nested set-ups),
    /// every process of the container but its init is sent `SIGSTOP` from this machine instead, and a
    /// line says so. Its sockets stay open; nothing of the node runs until
    /// [`ContainerCluster::resume`].
    pub async fn pause(&self, name: &str) -> Result<()> {
        let node = self.node(name)?;
        let Err(engine) = node.container.pause().await else {
            return Ok(());
        };
        signal_container(node, libc::SIGSTOP).await.with_context(|| {
            format!("pausing the container of {name} (the engine's pause failed: {engine})")
        })?;
        say(format!(
            "the engine could not pause {name}'s container ({}); its processes got SIGSTOP instead",
            root_cause(&engine)
        ));
        let mut stopped = self.stopped.lock().unwrap_or_else(|e| e.into_inner());
        stopped.push(name.to_string());
        Ok(())
    }

    /// Lets node `name`'s container run again after [`ContainerCluster::pause`], whichever way
    /// it was paused.
    pub async fn resume(&self, name: &str) -> Result<()> {
        let node = self.node(name)?;
        let was_stopped = {
            let mut stopped =
                self.stopped.lock().unwrap_or_else(|e| e.into_inner());
            let found = stopped.iter().any(|n| n == name);
            stopped.retain(|n| n != name);
            found
        };
        if was_stopped {
            signal_container(node, libc::SIGCONT).await
        } else {
            node.container
                .unpause()
                .await
                .with_context(|| format!("unpausing the container of {name}"))
        }
    }

    /// What node `name`'s container has printed since it started (standard output and error:
    /// the official image logs there, one JSON object a line), as its log consumer collected
    /// it. (Asking the engine for the logs can hang on Podman 4.3.)
    pub async fn logs(&self, name: &str) -> Result<String> {
        let node = self.node(name)?;
        let all = node.output.lock().unwrap_or_else(|e| e.into_inner());
        Ok(all.clone())
    }

    /// Starts node `name`'s container again, on its old data, and waits until the cluster has
    /// all its nodes again.
    pub async fn restart(&self, name: &str) -> Result<()> {
        let node = self.node(name)?;
        node.container
            .start()
            .await
            .with_context(|| format!("starting the container of {name} again"))?;
        self.wait_for_nodes(self.nodes.len(), start_timeout()).await
    }

    /// Waits until a node other than a dead one sees `count` nodes, at least yellow.
    async fn wait_for_nodes(&self, count: usize, timeout: Duration) -> Result<()> {
        let started = Instant::now();
        let _ticker = Ticker::start(format!("waiting for {count} nodes"));
        loop {
            for node in &self.nodes {
                if !node.container.is_running().await.unwrap_or(false) {
                    continue;
                }
                let port = node.url.rsplit(':').next().and_then(|p| p.parse().ok());
                let Some(port) = port else { continue };
                let client = health::client(port, Security::Off, None)?;
                if health::healthy(&client, count).await {
                    return Ok(());
                }
            }
            if started.elapsed() > timeout {
                bail!(
                    "the container cluster did not have {count} healthy nodes within {}s",
                    timeout.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// Sends `signal` (`SIGSTOP`, `SIGCONT`) to every process of `node`'s container but its init,
/// from this machine: the engine reports the init's pid (`State.Pid`), and its descendants are
/// the node's launcher and server. Needs a local engine whose containers' processes this
/// process can see and signal (rootful Podman here), which is where the engine's pause can fail.
async fn signal_container(node: &ClusterNode, signal: libc::c_int) -> Result<()> {
    let docker = docker_client_instance().await?;
    let info = docker
        .inspect_container(node.container.id(), None)
        .await
        .context("inspecting the container")?;
    let init = info
        .state
        .and_then(|s| s.pid)
        .filter(|pid| *pid > 0)
        .context("the container has no running init process")?;
    let members = local::descendants(init as u32);
    if members.is_empty() {
        bail!("no process under the container's init (pid {init}) is visible here");
    }
    for pid in members {
        // SAFETY: a plain kill(2) of a process of a container this process started.
        unsafe { libc::kill(pid as libc::pid_t, signal) };
    }
    Ok(())
}

/// Whether the engine already has `image` (within the ping timeout).
async fn image_present(image: &str) -> bool {
    let check = async {
        let docker = docker_client_instance().await.ok()?;
        docker.inspect_image(image).await.ok()
    };
    matches!(tokio::time::timeout(PING_TIMEOUT, check).await, Ok(Some(_)))
}

/// The last lines a container wrote, kept while it starts so that a failure can show them
/// (testcontainers removes a container that failed to start, and its log with it).
#[derive(Clone, Default)]
struct Tail(Arc<Mutex<VecDeque<String>>>);

impl Tail {
    fn consumer(&self) -> impl Fn(&LogFrame) + Send + Sync + 'static {
        let lines = self.0.clone();
        move |frame: &LogFrame| {
            let bytes = match frame {
                LogFrame::StdOut(bytes) | LogFrame::StdErr(bytes) => bytes,
            };
            let mut lines = lines.lock().unwrap_or_else(|e| e.into_inner());
            for line in String::from_utf8_lossy(bytes).lines() {
                lines.push_back(line.to_string());
                if lines.len() > 20 {
                    lines.pop_front();
                }
            }
        }
    }

    fn print(&self) {
        let lines = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if lines.is_empty() {
            print_tail("container", "(the container printed nothing)");
            return;
        }
        let text: Vec<&str> = lines.iter().map(String::as_str).collect();
        print_tail("container", &text.join("\n"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_settings_are_name_value_pairs() {
        assert_eq!(
            extra_settings(" http.port=9300  node.attr.rack=r1 ").unwrap(),
            vec![
                ("http.port".to_string(), "9300".to_string()),
                ("node.attr.rack".to_string(), "r1".to_string())
            ]
        );
        assert!(extra_settings("").unwrap().is_empty());
        let err = extra_settings("http.port").unwrap_err().to_string();
        assert_eq!(
            err,
            "OCC_CONTAINER_SETTINGS: \"http.port\" is not name=value"
        );
        assert!(extra_settings("=1").is_err());
    }
}
