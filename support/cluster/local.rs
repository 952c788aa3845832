//! The no-container path: a real Elasticsearch from Maven Central, started on 127.0.0.1 and
//! reused by every later run until `cargo run --bin cluster -- stop`.
//!
//! Everything lives under one cache directory (`.elasticsearch/` in the repository, or
//! `OCC_CACHE_DIR`), one folder per engine ([`engine::ALL`]):
//!
//! ```text
//! .elasticsearch/
//!   downloads/                    what Maven fetched (kept, so a restart needs no network)
//!   dist/elasticsearch-9.5.4/     the unpacked distribution, shared by the engines that use it
//!   9.5.4/node/                   config, data, logs and tmp of the running node
//!   9.5.4/state.json              pid, URL and version of the running node
//!   9.5.4/lock                    held while a process starts this engine
//! ```
//!
//! Elasticsearch refuses to run as root. When the examples run as root (as CI does here), the
//! node runs as `nobody` instead, which must be able to reach the cache directory.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use super::engine::{self, Engine, Kind, Security};
use super::progress::{Ticker, say};
use super::{Cluster, Needs, Source, java, url};

/// The heap every local node gets: enough for the book, small enough for a laptop.
pub const HEAP: &str = "-Xms512m -Xmx512m";
/// How long Maven may take to download an engine.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(20 * 60);
/// uid/gid of `nobody`, who runs the node when we are root.
const NOBODY: u32 = 65534;

/// What is recorded about a running node, so the next run can reuse it.
#[derive(Debug, Serialize, Deserialize)]
pub struct State {
    pub pid: u32,
    pub url: String,
    pub version: String,
}

/// Connects to the local node for `needs`, installing and starting it if it is not running.
pub async fn connect(needs: Needs) -> Result<Cluster> {
    ensure(engine::local_engine(needs)).await
}

/// Connects to the local node of `engine`, installing and starting it if it is not running.
pub async fn ensure(engine: &Engine) -> Result<Cluster> {
    let dir = engine_dir(engine);
    if let Some(cluster) = reuse(&dir).await {
        return Ok(cluster);
    }
    fs::create_dir_all(&dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    // Two processes (say, two test binaries) must not both start a node: hold a file lock, then
    // look again, since the other process may have started it while we waited.
    let _lock = lock(&dir.join("lock")).await?;
    if let Some(cluster) = reuse(&dir).await {
        return Ok(cluster);
    }
    // A recorded node that is alive but does not answer yet may still be starting (an
    // earlier run was interrupted while it waited): give it the start timeout. One that never
    // answers is stopped, not left running unrecorded beside a new one.
    if let Some(earlier) = read_state(&dir).filter(|state| alive(state.pid)) {
        say(format!(
            "a node from an earlier run (pid {}) is not answering yet; waiting for it",
            earlier.pid
        ));
        let (client, _) = url::client_for(&earlier.url)?;
        let deadline = Instant::now() + super::start_timeout();
        while alive(earlier.pid) && Instant::now() < deadline {
            if healthy(&client).await {
                if let Some(cluster) = reuse(&dir).await {
                    return Ok(cluster);
                }
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        say(format!(
            "stopping the node from the earlier run (pid {})",
            earlier.pid
        ));
        stop(&dir).await?;
    }
    let java = java::find(&engine.java)?;
    let home = install(engine).await?;
    start(engine, &dir, &home, &java).await?;
    reuse(&dir).await.ok_or_else(|| {
        anyhow!(
            "Elasticsearch {} started but stopped answering",
            engine.version
        )
    })
}

/// The cache directory that holds every engine.
pub fn cache_dir() -> PathBuf {
    match std::env::var_os("OCC_CACHE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join(".elasticsearch"),
    }
}

fn engine_dir(engine: &Engine) -> PathBuf {
    cache_dir().join(engine.slug)
}

/// The recorded node, if its process is alive and its URL answers with the expected version.
async fn reuse(dir: &Path) -> Option<Cluster> {
    let state = read_state(dir)?;
    if !alive(state.pid) {
        return None;
    }
    let cluster = cluster_for(&state).await.ok()?;
    (cluster.version == state.version).then_some(cluster)
}

async fn cluster_for(state: &State) -> Result<Cluster> {
    let (client, shown) = url::client_for(&state.url)?;
    let version = url::server_version(&client, &shown).await?;
    Ok(Cluster {
        client,
        url: shown,
        source: Source::Local,
        version,
        _container: None,
    })
}

pub fn read_state(dir: &Path) -> Option<State> {
    let text = fs::read_to_string(dir.join("state.json")).ok()?;
    serde_json::from_str(&text).ok()
}

fn write_state(dir: &Path, state: &State) -> Result<()> {
    let text = serde_json::to_string_pretty(state)?;
    fs::write(dir.join("state.json"), text).context("writing state.json")
}

/// Whether the recorded node's process still runs: the pid exists and, where `/proc` can tell,
/// is an Elasticsearch (after a reboot the pid may belong to anything, which must never be
/// signalled).
pub fn alive(pid: u32) -> bool {
    // Signal 0 checks for existence without touching the process.
    if unsafe { libc::kill(pid as libc::pid_t, 0) } != 0 {
        return false;
    }
    match fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) => String::from_utf8_lossy(&cmdline).contains("elasticsearch"),
        Err(_) => true,
    }
}

/// Stops the node recorded in `dir`, if any; returns what it stopped.
pub async fn stop(dir: &Path) -> Result<Option<State>> {
    let Some(state) = read_state(dir) else {
        return Ok(None);
    };
    if alive(state.pid) {
        // The node was started in a process group of its own (its pid is the group's id), so
        // the launcher and the server JVM it runs are signalled together.
        let group = -(state.pid as libc::pid_t);
        unsafe { libc::kill(group, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while alive(state.pid) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if alive(state.pid) {
            unsafe { libc::kill(group, libc::SIGKILL) };
        }
    }
    fs::remove_file(dir.join("state.json")).ok();
    Ok(Some(state))
}

/// A blocking `flock` on `path`, taken off the async runtime; released when dropped.
async fn lock(path: &Path) -> Result<fs::File> {
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    if file.try_lock().is_ok() {
        return Ok(file);
    }
    say("another process is starting this Elasticsearch; waiting for it");
    let _ticker = Ticker::start("waiting for the other process");
    tokio::task::spawn_blocking(move || file.lock().map(|()| file))
        .await?
        .context("locking the cache directory")
}

/// Makes sure the engine is unpacked under `dist/`, downloading it first if needed.
async fn install(engine: &Engine) -> Result<PathBuf> {
    let dist = cache_dir().join("dist");
    fs::create_dir_all(&dist)?;
    let home = dist.join(engine.home_name());
    if home.join(".complete").exists() {
        return Ok(home);
    }
    // Engines that share a download (the secured node and the plain one) unpack it once.
    let _lock = lock(&dist.join(format!("{}.lock", engine.home_name()))).await?;
    if home.join(".complete").exists() {
        return Ok(home);
    }
    let downloads = cache_dir().join("downloads");
    fs::create_dir_all(&downloads)?;
    let partial = dist.join(format!("{}.partial", engine.home_name()));
    if partial.exists() {
        fs::remove_dir_all(&partial)?;
    }
    fs::create_dir_all(&partial)?;
    match &engine.kind {
        Kind::Distribution { artifact } => {
            let zip =
                downloads.join(format!("elasticsearch-{}.zip", engine.version));
            if !zip.exists() {
                say(format!(
                    "downloading Elasticsearch {} from Maven Central ({artifact})",
                    engine.version
                ));
                maven(&[
                    "dependency:copy",
                    &format!("-Dartifact={artifact}"),
                    &format!("-DoutputDirectory={}", downloads.display()),
                ])
                .await?;
            }
            say(format!("unpacking {}", zip.display()));
            run_quiet(
                Command::new("unzip")
                    .arg("-q")
                    .arg(&zip)
                    .arg("-d")
                    .arg(&partial),
                "unzip",
            )
            .await?;
            // The zip holds one folder, elasticsearch-<version>/: make its contents the home.
            let inner = partial.join(format!("elasticsearch-{}", engine.version));
            if home.exists() {
                fs::remove_dir_all(&home)?;
            }
            fs::rename(&inner, &home)?;
            fs::remove_dir_all(&partial).ok();
        }
        Kind::ClusterRunner { artifact } => {
            say(format!(
                "downloading Elasticsearch {} with its modules from Maven Central ({artifact})",
                engine.version
            ));
            let (group, rest) = artifact.split_once(':').context("artifact")?;
            let (name, version) = rest.split_once(':').context("artifact")?;
            fs::write(partial.join("pom.xml"), runner_pom(group, name, version))?;
            maven(&[
                "-f",
                &partial.join("pom.xml").to_string_lossy(),
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                &format!("-DoutputDirectory={}", partial.join("lib").display()),
            ])
            .await?;
            if home.exists() {
                fs::remove_dir_all(&home)?;
            }
            fs::rename(&partial, &home)?;
        }
    }
    fs::write(home.join(".complete"), engine.version)?;
    Ok(home)
}

/// A pom whose only purpose is to let Maven resolve the runner and its dependencies.
fn runner_pom(group: &str, name: &str, version: &str) -> String {
    format!(
        r#"<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>occ-book</groupId>
  <artifactId>scripting-engine</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>{group}</groupId>
      <artifactId>{name}</artifactId>
      <version>{version}</version>
    </dependency>
  </dependencies>
</project>
"#
    )
}

/// Runs Maven in batch mode, relaying its download lines as progress.
async fn maven(args: &[&str]) -> Result<()> {
    let mut child = Command::new("mvn")
        .args(["-B", "-Dstyle.color=never"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| anyhow!("cannot run Maven (mvn): {e}; install Maven 3"))?;
    let stdout = child.stdout.take().context("mvn stdout")?;
    let _ticker = Ticker::start("downloading");
    let relay = async {
        let mut lines = BufReader::new(stdout).lines();
        let mut tail = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            if line.starts_with("Downloaded from") && line.contains(".zip")
                || line.contains(".jar (")
            {
                say(line.trim());
            }
            tail.push(line);
            if tail.len() > 15 {
                tail.remove(0);
            }
        }
        tail
    };
    let (tail, status) = tokio::time::timeout(DOWNLOAD_TIMEOUT, async {
        let tail = relay.await;
        (tail, child.wait().await)
    })
    .await
    .map_err(|_| anyhow!("Maven did not finish within {DOWNLOAD_TIMEOUT:?}"))?;
    if !status?.success() {
        for line in &tail {
            eprintln!("  mvn| {line}");
        }
        bail!("Maven could not download Elasticsearch (its last lines are above)");
    }
    Ok(())
}

async fn run_quiet(command: &mut Command, name: &str) -> Result<()> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| anyhow!("cannot run {name}: {e}"))?;
    if !output.status.success() {
        bail!(
            "{name} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Starts a node of `engine` in the background and waits until it answers health.
async fn start(
    engine: &Engine,
    dir: &Path,
    home: &Path,
    java: &java::Java,
) -> Result<State> {
    let http_port = match engine.kind {
        Kind::Distribution { .. } => free_port()?,
        // The runner accepts HTTP ports up to 9299 only.
        Kind::ClusterRunner { .. } => free_port_in(9201..=9299)?,
    };
    let transport_port = free_port()?;
    let node = dir.join("node");
    for sub in ["data", "logs", "tmp"] {
        fs::create_dir_all(node.join(sub))?;
    }
    let console = node.join("logs/console.log");
    let mut command = match &engine.kind {
        Kind::Distribution { .. } => {
            distribution_command(
                engine,
                java,
                home,
                &node,
                http_port,
                transport_port,
            )
            .await?
        }
        Kind::ClusterRunner { .. } => {
            runner_command(java, home, &node, http_port, transport_port)?
        }
    };
    // The distribution's launcher refuses root; the runner skips that check.
    let as_root = unsafe { libc::geteuid() } == 0
        && matches!(engine.kind, Kind::Distribution { .. });
    if as_root {
        // Elasticsearch refuses to run as root: run the node as nobody, who must own its files
        // and be able to reach the engine's home.
        reachable_by_others(home)?;
        chown_tree(&node, NOBODY)?;
        command.uid(NOBODY).gid(NOBODY);
    }
    let log = fs::File::create(&console)?;
    if as_root {
        std::os::unix::fs::chown(&console, Some(NOBODY), Some(NOBODY))?;
    }
    command
        .env("JAVA_HOME", &java.home)
        .env("ES_JAVA_HOME", &java.home)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group: the node outlives this example and a Ctrl-C in its terminal.
        .process_group(0);
    say(format!(
        "starting Elasticsearch {} on 127.0.0.1:{http_port} (Java {}, heap {HEAP}{}); log: {}",
        engine.version,
        java.major,
        if as_root { ", as nobody" } else { "" },
        console.display()
    ));
    let mut child = command
        .spawn()
        .map_err(|e| anyhow!("cannot start Elasticsearch: {e}"))?;
    let pid = child.id().context("the node exited at once")?;
    let state = State {
        pid,
        url: engine.url(http_port),
        version: engine.version.to_string(),
    };
    // Recorded at once: if this process is interrupted while the node starts, the next run
    // finds the node instead of starting a second one on the same data.
    write_state(dir, &state)?;
    let started = Instant::now();
    let _ticker = Ticker::start(format!(
        "waiting for Elasticsearch {} to start",
        engine.version
    ));
    let (client, _) = url::client_for(&state.url)?;
    loop {
        if let Some(status) = child.try_wait()? {
            print_tail(&console);
            fs::remove_file(dir.join("state.json")).ok();
            bail!(
                "Elasticsearch {} exited ({status}) while starting; the end of {} is above",
                engine.version,
                console.display()
            );
        }
        if healthy(&client).await {
            say(format!(
                "Elasticsearch {} is up after {:.1}s",
                engine.version,
                started.elapsed().as_secs_f64()
            ));
            // The node runs on; we only forget the handle.
            drop(child);
            return Ok(state);
        }
        if started.elapsed() > super::start_timeout() {
            stop(dir).await?;
            print_tail(&console);
            bail!(
                "Elasticsearch {} did not answer within {}s; the end of {} is above",
                engine.version,
                super::start_timeout().as_secs(),
                console.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `bin/elasticsearch` with a config directory of our own.
async fn distribution_command(
    engine: &Engine,
    java: &java::Java,
    home: &Path,
    node: &Path,
    http_port: u16,
    transport_port: u16,
) -> Result<Command> {
    let config = node.join("config");
    copy_dir(&home.join("config"), &config)?;
    let settings = format!(
        "# Written by the occ-book support code; rewritten at every start.\n\
         cluster.name: occ-book\n\
         node.name: occ-book-{slug}\n\
         # Loopback only: nothing but this machine can reach the node.\n\
         network.host: 127.0.0.1\n\
         http.port: {http_port}\n\
         transport.port: {transport_port}\n\
         discovery.type: single-node\n\
         {security}\
         # Laptops with full disks would otherwise turn the indices read-only.\n\
         cluster.routing.allocation.disk.threshold_enabled: false\n\
         path.data: {data}\n\
         path.logs: {logs}\n",
        slug = engine.slug,
        security = match engine.security {
            Security::Off =>
                "# A local demo with no users: security off (never on a shared network).\n\
                 xpack.security.enabled: false\n",
            // Security on, over plain HTTP: enough to check credentials on loopback.
            Security::Basic { .. } =>
                "xpack.security.enabled: true\n\
                 xpack.security.http.ssl.enabled: false\n\
                 xpack.security.transport.ssl.enabled: false\n",
        },
        data = node.join("data").display(),
        logs = node.join("logs").display(),
    );
    fs::write(config.join("elasticsearch.yml"), settings)?;
    if let Security::Basic { user, password } = engine.security {
        run_quiet(
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
        .env("ES_TMPDIR", node.join("tmp"))
        .env("ES_JAVA_OPTS", HEAP);
    Ok(command)
}

/// The codelibs runner: one node in one JVM, with every module on the classpath.
///
/// The runner takes few flags: node `i` serves HTTP on `-baseHttpPort + i` (at most 9299), and
/// other settings come from `node_1/config/elasticsearch.yml` under `-basePath`, which it reads
/// if present. It runs until killed.
fn runner_command(
    java: &java::Java,
    home: &Path,
    node: &Path,
    http_port: u16,
    transport_port: u16,
) -> Result<Command> {
    let config = node.join("node_1/config");
    fs::create_dir_all(&config)?;
    fs::write(
        config.join("elasticsearch.yml"),
        format!(
            "# Written by the occ-book support code; rewritten at every start.\n\
             network.host: 127.0.0.1\n\
             transport.port: {transport_port}\n\
             discovery.type: single-node\n\
             cluster.routing.allocation.disk.threshold_enabled: false\n"
        ),
    )?;
    let tmp = node.join("tmp");
    let mut command = Command::new(java.home.join("bin/java"));
    command
        .args(HEAP.split(' '))
        .arg("-XX:-UsePerfData")
        // log4j 2.11 (the version Elasticsearch 7.10 shipped): no message lookups.
        .arg("-Dlog4j2.formatMsgNoLookups=true")
        .arg(format!("-Djava.io.tmpdir={}", tmp.display()))
        .arg(format!("-Djna.tmpdir={}", tmp.display()))
        .arg("-cp")
        .arg(home.join("lib/*"))
        .arg("org.codelibs.elasticsearch.runner.ElasticsearchClusterRunner")
        .arg("-basePath")
        .arg(node)
        .args(["-numOfNode", "1", "-clusterName", "occ-book"])
        .arg("-baseHttpPort")
        .arg((http_port - 1).to_string());
    Ok(command)
}

/// Answers `GET /_cluster/health?wait_for_status=yellow` within a second?
pub async fn healthy(client: &elasticsearch::Elasticsearch) -> bool {
    let cluster = client.cluster();
    let request = cluster
        .health(elasticsearch::cluster::ClusterHealthParts::None)
        .wait_for_status(elasticsearch::params::WaitForStatus::Yellow)
        .timeout("1s")
        .send();
    matches!(
        tokio::time::timeout(Duration::from_secs(3), request).await,
        Ok(Ok(response)) if response.status_code().is_success()
    )
}

/// A port the kernel just handed out on 127.0.0.1, free at the time of asking.
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// The first port in `range` free on 127.0.0.1.
fn free_port_in(range: std::ops::RangeInclusive<u16>) -> Result<u16> {
    range
        .into_iter()
        .find(|port| std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .ok_or_else(|| anyhow!("no free port from 9201 to 9299 on 127.0.0.1"))
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

fn print_tail(log: &Path) {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    for line in &lines[lines.len().saturating_sub(20)..] {
        eprintln!("  log| {line}");
    }
}
