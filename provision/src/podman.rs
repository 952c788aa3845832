//! Podman as the container engine on machines with no Docker and no container registry (this
//! project's own): its packages, a configuration that works in this sandbox, the images the
//! container path runs, and the Docker-compatible API that testcontainers talks to.
//!
//! Readers with Docker need none of this: they get the official image. Here no image can be
//! pulled, so each [`Server`] is assembled into a local image from what can be reached: a Debian
//! root filesystem made by `debootstrap` from the machine's own mirror, the very directory the
//! local path runs ([`install::installed`]), and for the release a Java 21+ copied from the
//! host. The images behave like the official one: settings as dotted environment variables,
//! `ES_JAVA_OPTS`, JSON logs on stdout, a non-root user (uid 1000, gid 0).
//!
//! Everything lives under `<cache>/podman/`; every step needs root (rootful Podman, debootstrap,
//! chroot). Podman 4.3's defaults fail here (crun: `setrlimit RLIMIT_NOFILE: Operation not
//! permitted`, then `cgroups in hybrid mode not supported`), so every Podman command gets
//! [`CONTAINERS_CONF`] (runc, cgroupfs, no default ulimits). Podman 4.3 also reports published
//! ports in a form testcontainers cannot read, so containers run on the host network.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use crate::facts::{
    Build, CONTAINER_LABEL, NODE_SETTINGS, OWNER_LABEL, RELEASE, SCRIPTING, Server,
};
use crate::install::{self, run_quiet};
use crate::local::{runner_jvm_options, runner_main};
use crate::progress::{Ticker, print_tail, say};
use crate::{cache_dir, is_root, java, lock, on_path};

/// The containers.conf every Podman command here needs.
pub const CONTAINERS_CONF_TEXT: &str = "\
# Written by the book's provisioning (provision/src/podman.rs). Use with CONTAINERS_CONF.
[containers]
# The default ulimits (nofile) cannot be set inside this sandbox.
default_ulimits = []

[engine]
# crun fails here (setrlimit, hybrid cgroups); runc and cgroupfs work.
cgroup_manager = \"cgroupfs\"
runtime = \"runc\"
";

/// Debian packages the Podman path needs: the engine, its runtime, and debootstrap for the
/// images' root filesystems.
const PACKAGES: &[(&str, &str)] = &[
    ("podman", "podman"),
    ("runc", "runc"),
    ("debootstrap", "debootstrap"),
];

/// The entrypoint of the release image.
const ENTRYPOINT: &str = include_str!("../podman/entrypoint.sh");
/// Changes to how the images are assembled that their inputs do not show: bump to rebuild.
const RECIPE_REVISION: u32 = 3;
/// The Java inside the scripting image: Debian's own.
const IMAGE_JAVA: &str = "/usr/lib/jvm/java-17-openjdk-amd64/bin/java";
/// Where Elasticsearch lives in the images, as in the official one.
const ES_HOME: &str = "/usr/share/elasticsearch";

/// Where Podman's state, the service socket and the image caches live.
pub fn dir() -> PathBuf {
    cache_dir().join("podman")
}

fn conf() -> PathBuf {
    dir().join("containers.conf")
}

fn socket() -> PathBuf {
    dir().join("podman.sock")
}

/// The environment that points the examples' container path at this Podman and its images.
pub fn env() -> Vec<(&'static str, String)> {
    vec![
        ("DOCKER_HOST", format!("unix://{}", socket().display())),
        ("CONTAINERS_CONF", conf().display().to_string()),
        ("OCC_ES_IMAGE", RELEASE.local_image.into()),
        ("OCC_ES_SCRIPTING_IMAGE", SCRIPTING.local_image.into()),
        ("OCC_CONTAINER_NETWORK", "host".into()),
    ]
}

/// Installs whatever is missing of [`PACKAGES`] and writes the containers.conf.
pub async fn install() -> Result<()> {
    must_be_root()?;
    let missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(command, _)| !on_path(command))
        .map(|(_, package)| *package)
        .collect();
    if !missing.is_empty() {
        say(format!(
            "installing {} from Debian's packages",
            missing.join(" ")
        ));
        let _ticker = Ticker::start("installing packages");
        run_quiet(
            Command::new("apt-get").args(["update", "-q"]),
            "apt-get update",
        )
        .await?;
        run_quiet(
            Command::new("apt-get")
                .args(["install", "-y", "-q", "--no-install-recommends"])
                .args(&missing)
                .env("DEBIAN_FRONTEND", "noninteractive"),
            "apt-get install",
        )
        .await?;
    }
    fs::create_dir_all(dir())?;
    fs::write(conf(), CONTAINERS_CONF_TEXT)?;
    say(format!(
        "podman ready; configuration in {}",
        conf().display()
    ));
    Ok(())
}

/// Builds the image of every server, unless an image with the same recipe exists.
pub async fn build_images() -> Result<()> {
    must_be_root()?;
    fs::create_dir_all(dir())?;
    let _lock = lock::acquire(&dir().join("build.lock")).await?;
    for server in [&RELEASE, &SCRIPTING] {
        build_image(server).await?;
    }
    Ok(())
}

async fn build_image(server: &Server) -> Result<()> {
    let image = server.local_image;
    let home = install::installed(server).await?;
    let recipe = recipe(server);
    if podman(&[
        "image",
        "inspect",
        "--format",
        "{{ index .Labels \"occ.recipe\" }}",
        image,
    ])
    .await
    .is_ok_and(|label| label.trim() == recipe)
    {
        say(format!("{image} is up to date (recipe {recipe})"));
        return Ok(());
    }
    let started = std::time::Instant::now();
    let work = dir().join("work").join(server.version);
    if work.exists() {
        fs::remove_dir_all(&work)?;
    }
    let rootfs = work.join("rootfs");
    fs::create_dir_all(&rootfs)?;
    let packages: &[&str] = match server.build {
        Build::Distribution { .. } => &["tini"],
        Build::ClusterRunner { .. } => &["tini", "openjdk-17-jre-headless"],
    };
    let base = base_rootfs(packages).await?;
    say(format!("assembling the root filesystem of {image}"));
    run(Command::new("tar")
        .arg("--numeric-owner")
        .arg("-C")
        .arg(&rootfs)
        .arg("-xf")
        .arg(&base))
    .await?;
    let es_home = rootfs.join(ES_HOME.trim_start_matches('/'));
    run(Command::new("cp").arg("-a").arg(&home).arg(&es_home)).await?;
    fs::remove_file(es_home.join(".complete")).ok();
    let entrypoint = rootfs.join("usr/local/bin/docker-entrypoint.sh");
    let mut changes = vec![
        format!("ENV ES_HOME={ES_HOME}"),
        format!("WORKDIR {ES_HOME}"),
        "USER 1000:0".into(),
        "EXPOSE 9200".into(),
        "EXPOSE 9300".into(),
        r#"ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/docker-entrypoint.sh"]"#.into(),
        r#"CMD ["eswrapper"]"#.into(),
        format!("LABEL org.opencontainers.image.version={}", server.version),
        format!("LABEL occ.recipe={recipe}"),
    ];
    match server.build {
        Build::Distribution { .. } => {
            let java = java::find(&server.java)?;
            say(format!(
                "copying Java {} from {}",
                java.major,
                java.home.display()
            ));
            copy_java(&java.home, &es_home.join("jdk")).await?;
            as_official_image(&es_home)?;
            fs::write(&entrypoint, ENTRYPOINT)?;
            changes.push("ENV ELASTIC_CONTAINER=true".into());
            changes.push(format!(
                "ENV PATH={ES_HOME}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
            ));
        }
        Build::ClusterRunner { .. } => {
            fs::write(&entrypoint, runner_entrypoint())?;
            changes.push("ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
        }
    }
    set_mode(&entrypoint, 0o755)?;
    for dir in ["config", "data", "logs", "plugins"] {
        fs::create_dir_all(es_home.join(dir))?;
    }
    // uid 1000 "elasticsearch", primary group 0, like the official image.
    run(Command::new("chroot").arg(&rootfs).args([
        "groupadd",
        "-g",
        "1000",
        "elasticsearch",
    ]))
    .await?;
    run(Command::new("chroot").arg(&rootfs).args([
        "useradd",
        "-u",
        "1000",
        "-g",
        "1000",
        "-G",
        "0",
        "-d",
        ES_HOME,
        "-M",
        "-s",
        "/bin/bash",
        "elasticsearch",
    ]))
    .await?;
    run(Command::new("chown").arg("-R").arg("0:0").arg(&es_home)).await?;
    for dir in ["config", "data", "logs", "plugins"] {
        run(Command::new("chown")
            .arg("-R")
            .arg("1000:0")
            .arg(es_home.join(dir)))
        .await?;
        run(Command::new("chmod")
            .arg("-R")
            .arg("g=u")
            .arg(es_home.join(dir)))
        .await?;
    }
    import(&rootfs, image, &changes).await?;
    fs::remove_dir_all(&work).ok();
    say(format!("built {image} in {}s", started.elapsed().as_secs()));
    Ok(())
}

/// What makes the release's directory behave like the official image's: its distribution
/// type, a loopback default address (containers here run on the host network) and JSON logs
/// on stdout instead of in files.
fn as_official_image(es_home: &Path) -> Result<()> {
    let env_script = es_home.join("bin/elasticsearch-env");
    let text = fs::read_to_string(&env_script)?;
    if !text.contains("ES_DISTRIBUTION_TYPE=zip\n") {
        bail!(
            "{} does not set ES_DISTRIBUTION_TYPE=zip",
            env_script.display()
        );
    }
    // As in the official image: Elasticsearch itself then reads dotted and ES_SETTING_*
    // environment variables and adds -Des.cgroups.hierarchy.override=/.
    fs::write(
        &env_script,
        text.replace(
            "ES_DISTRIBUTION_TYPE=zip\n",
            "ES_DISTRIBUTION_TYPE=docker\n",
        ),
    )?;
    let loopback = NODE_SETTINGS
        .iter()
        .find(|(name, _)| *name == "network.host")
        .map_or("127.0.0.1", |(_, value)| value);
    fs::write(
        es_home.join("config/elasticsearch.yml"),
        format!("cluster.name: \"docker-cluster\"\nnetwork.host: {loopback}\n"),
    )?;
    let log4j2 = es_home.join("config/log4j2.properties");
    let text = fs::read_to_string(&log4j2)?;
    fs::write(&log4j2, console_logging(&text))?;
    Ok(())
}

/// The distribution's `log4j2.properties` with every file appender turned into a console
/// appender, which is what Elastic's own image build does.
pub fn console_logging(properties: &str) -> String {
    // Join continuation lines ("...\" then "  rest") first.
    let mut lines: Vec<String> = Vec::new();
    let mut pending = String::new();
    for line in properties.lines() {
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(if pending.is_empty() {
                head
            } else {
                head.trim_start()
            });
            continue;
        }
        if pending.is_empty() {
            lines.push(line.to_string());
        } else {
            pending.push_str(line.trim_start());
            lines.push(std::mem::take(&mut pending));
        }
    }
    let dropped = |line: &str| {
        let line = line.trim_start();
        let key = line.split('=').next().unwrap_or("").trim();
        let parts: Vec<&str> = key.split('.').collect();
        line.starts_with("appender.console.")
            || line.starts_with("appender.rolling_old.")
            || line.starts_with("rootLogger.appenderRef.console.")
            || line.starts_with("rootLogger.appenderRef.rolling_old.")
            || (parts.len() == 3
                && parts[0] == "appender"
                && (parts[2] == "fileName" || parts[2] == "filePattern"))
            || (parts.len() >= 3
                && parts[0] == "appender"
                && (parts[2] == "policies" || parts[2] == "strategy"))
    };
    let mut out = String::new();
    for line in lines.iter().filter(|l| !dropped(l)) {
        let converted = match line.split_once('=') {
            Some((key, value)) if value.trim() == "RollingFile" => {
                format!("{key}= Console")
            }
            _ => line.clone(),
        };
        out.push_str(&converted);
        out.push('\n');
    }
    out
}

/// The scripting image's entrypoint: the runner's own command line, with the image's Java and
/// `ES_JAVA_OPTS` (read last, so it wins).
fn runner_entrypoint() -> String {
    let quote = |arg: &String| format!("\"{arg}\"");
    let jvm: Vec<String> =
        runner_jvm_options("$base/tmp").iter().map(quote).collect();
    let main: Vec<String> =
        runner_main(ES_HOME, "$base").iter().map(quote).collect();
    format!(
        "#!/bin/bash\n\
         # docker-entrypoint.sh of {image} (built by provision/src/podman.rs): one node of\n\
         # the scripting build. Settings come from lowercase dotted environment variables and\n\
         # -Ename=value arguments (OccRunner reads both); ES_JAVA_OPTS is appended.\n\
         set -euo pipefail\n\
         if [[ $# -eq 0 || \"$1\" == \"eswrapper\" ]]; then\n\
         \x20 [[ $# -gt 0 ]] && shift\n\
         else\n\
         \x20 exec \"$@\"\n\
         fi\n\
         base={ES_HOME}/data/runner\n\
         mkdir -p \"$base/node_1/config\" \"$base/tmp\"\n\
         cp -n {ES_HOME}/occ/log4j2.properties \"$base/node_1/config/\"\n\
         # shellcheck disable=SC2086\n\
         exec {IMAGE_JAVA} {jvm} ${{ES_JAVA_OPTS:-}} {main} \"$@\"\n",
        image = SCRIPTING.local_image,
        jvm = jvm.join(" "),
        main = main.join(" "),
    )
}

/// A fingerprint of everything an image is made from, so a change to any of it rebuilds it.
/// (The standard hasher may change between Rust releases; then the images are rebuilt once.)
fn recipe(server: &Server) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (
        RECIPE_REVISION,
        server.version,
        server.artifact(),
        ENTRYPOINT,
    )
        .hash(&mut hasher);
    runner_entrypoint().hash(&mut hasher);
    install::OCC_RUNNER_JAVA.hash(&mut hasher);
    install::RUNNER_LOG4J2.hash(&mut hasher);
    format!("{}-{:016x}", server.version, hasher.finish())
}

/// A cached minimal Debian root filesystem with `packages`, as a tarball.
async fn base_rootfs(packages: &[&str]) -> Result<PathBuf> {
    let include = packages.join(",");
    let cache = dir().join("rootfs");
    fs::create_dir_all(&cache)?;
    let tarball = cache.join(format!(
        "bookworm-minbase-{}.tar",
        include.replace(',', "+")
    ));
    if tarball.exists() {
        return Ok(tarball);
    }
    let mirror = debian_mirror()?;
    let rootfs = cache.join(format!("{include}.partial"));
    if rootfs.exists() {
        fs::remove_dir_all(&rootfs)?;
    }
    say(format!(
        "debootstrap bookworm minbase (+{include}) from {mirror} (about a minute)"
    ));
    {
        let _ticker = Ticker::start("running debootstrap");
        run(Command::new("debootstrap")
            .arg("--variant=minbase")
            .arg(format!("--include={include}"))
            .arg("bookworm")
            .arg(&rootfs)
            .arg(&mirror))
        .await?;
    }
    for cache_dir in ["var/cache/apt/archives", "var/lib/apt/lists"] {
        for entry in fs::read_dir(rootfs.join(cache_dir))?.flatten() {
            if entry.file_type()?.is_file() {
                fs::remove_file(entry.path()).ok();
            }
        }
    }
    let partial = tarball.with_extension("tar.partial");
    run(Command::new("tar")
        .arg("--numeric-owner")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&partial)
        .arg("."))
    .await?;
    fs::rename(&partial, &tarball)?;
    fs::remove_dir_all(&rootfs).ok();
    Ok(tarball)
}

/// The bookworm mirror the machine's own apt sources name (`OCC_DEBIAN_MIRROR` overrides).
fn debian_mirror() -> Result<String> {
    if let Ok(mirror) = std::env::var("OCC_DEBIAN_MIRROR") {
        return Ok(mirror);
    }
    // deb822 files: paragraphs with Types, URIs and Suites.
    let mut sources: Vec<PathBuf> = fs::read_dir("/etc/apt/sources.list.d")
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    sources.sort();
    for path in sources
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "sources"))
    {
        let text = fs::read_to_string(path).unwrap_or_default();
        for paragraph in text.split("\n\n") {
            let field = |name: &str| {
                paragraph
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(|v| v.trim().to_string())
                    .unwrap_or_default()
            };
            let is_deb = field("Types:").split_whitespace().any(|t| t == "deb");
            let bookworm =
                field("Suites:").split_whitespace().any(|s| s == "bookworm");
            if let (true, true, Some(uri)) =
                (is_deb, bookworm, field("URIs:").split_whitespace().next())
            {
                return Ok(uri.to_string());
            }
        }
    }
    // One-line format.
    let mut lines = fs::read_to_string("/etc/apt/sources.list").unwrap_or_default();
    for path in sources
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "list"))
    {
        lines.push_str(&fs::read_to_string(path).unwrap_or_default());
    }
    lines
        .lines()
        .filter(|l| {
            l.starts_with("deb ")
                && l.contains(" bookworm ")
                && !l.contains("security")
        })
        .find_map(|l| {
            l.split_whitespace()
                .find(|w| {
                    w.starts_with("http:")
                        || w.starts_with("https:")
                        || w.starts_with("file:")
                })
                .map(str::to_string)
        })
        .context("no bookworm mirror in /etc/apt/sources*; set OCC_DEBIAN_MIRROR")
}

/// A Java home without what a runtime does not need (sources, headers, man pages).
async fn copy_java(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    let pack = Command::new("tar")
        .arg("-C")
        .arg(from)
        .args([
            "--exclude=./lib/src.zip",
            "--exclude=./lib/ct.sym",
            "--exclude=./include",
            "--exclude=./man",
            "--exclude=./jmods",
            "--exclude=./demo",
            "--exclude=./sample",
            "-cf",
            "-",
            ".",
        ])
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout: Stdio = pack.stdout.context("tar stdout")?.try_into()?;
    run(Command::new("tar")
        .arg("-C")
        .arg(to)
        .arg("-xf")
        .arg("-")
        .stdin(stdout))
    .await
}

/// `podman import` of `rootfs` as `image`, replacing an older image of that name.
async fn import(rootfs: &Path, image: &str, changes: &[String]) -> Result<()> {
    let old = podman(&["image", "inspect", "--format", "{{.Id}}", image])
        .await
        .ok();
    say(format!("podman import {image} (10 to 30 s)"));
    let _ticker = Ticker::start(format!("importing {image}"));
    let tar = Command::new("tar")
        .arg("--numeric-owner")
        .arg("-C")
        .arg(rootfs)
        .args(["-cf", "-", "."])
        .stdout(Stdio::piped())
        .spawn()?;
    let stdin: Stdio = tar.stdout.context("tar stdout")?.try_into()?;
    let mut command = Command::new("podman");
    command
        .env("CONTAINERS_CONF", conf())
        .args(["import", "--quiet"]);
    for change in changes {
        command.arg("--change").arg(change);
    }
    run(command.arg("-").arg(image).stdin(stdin)).await?;
    if let Some(old) = old {
        let new =
            podman(&["image", "inspect", "--format", "{{.Id}}", image]).await?;
        if old.trim() != new.trim() && podman(&["rmi", old.trim()]).await.is_err() {
            say(format!(
                "the image {image} replaced is still in use; left in place"
            ));
        }
    }
    Ok(())
}

/// Starts `podman system service` on [`socket`] unless it already answers there.
pub async fn start_service() -> Result<()> {
    must_be_root()?;
    if !conf().exists() {
        bail!("{} missing: run `cargo xtask podman up`", conf().display());
    }
    if pings().await {
        say(format!(
            "podman service already answering on {}",
            socket().display()
        ));
        return Ok(());
    }
    fs::remove_file(socket()).ok();
    let log = fs::File::create(dir().join("service.log"))?;
    let child = std::process::Command::new("podman")
        .env("CONTAINERS_CONF", conf())
        .args(["system", "service", "--time=0"])
        .arg(format!("unix://{}", socket().display()))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own session: it outlives this command, until `cargo xtask podman down`.
        .process_group(0)
        .spawn()
        .context("starting podman system service")?;
    fs::write(dir().join("service.pid"), child.id().to_string())?;
    for _ in 0..150 {
        if pings().await {
            say(format!(
                "podman service answering on {}",
                socket().display()
            ));
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    print_tail(
        "podman",
        &fs::read_to_string(dir().join("service.log")).unwrap_or_default(),
    );
    bail!("podman system service did not answer within 30s; its log is above")
}

/// Stops the service [`start_service`] started (by its recorded pid, never by name).
pub async fn stop_service() -> Result<()> {
    let pid_file = dir().join("service.pid");
    if let Some(pid) = fs::read_to_string(&pid_file)
        .ok()
        .and_then(|p| p.trim().parse::<i32>().ok())
    {
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains("system\0service") {
            // SAFETY: kill(2) on the pid we recorded, checked to be our podman service.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            say(format!("stopped podman service pid {pid}"));
        }
    }
    fs::remove_file(pid_file).ok();
    fs::remove_file(socket()).ok();
    Ok(())
}

/// Removes containers labelled as the book's that a killed run left behind.
pub async fn remove_leftovers() -> Result<()> {
    let ids =
        podman(&["ps", "-aq", "--filter", &format!("label={CONTAINER_LABEL}")])
            .await?;
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if ids.is_empty() {
        say(format!("no containers labelled {CONTAINER_LABEL}"));
        return Ok(());
    }
    say(format!("removing leftover containers {}", ids.join(" ")));
    let mut args = vec!["rm", "-f", "-t", "2"];
    args.extend(ids);
    podman(&args).await.map(drop)
}

/// Removes the book's containers whose run is gone (killed before it could remove them; see
/// [`OWNER_LABEL`]), and leaves those of runs still going.
pub async fn remove_orphans() -> Result<()> {
    let listed = podman(&[
        "ps",
        "-a",
        "--filter",
        &format!("label={CONTAINER_LABEL}"),
        "--format",
        &format!("{{{{.ID}}}} {{{{ index .Labels \"{OWNER_LABEL}\" }}}}"),
    ])
    .await?;
    let orphans: Vec<&str> = listed
        .lines()
        .filter_map(|line| {
            let (id, owner) = line.split_once(' ')?;
            let alive = owner
                .trim()
                .parse::<u32>()
                .is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
            (!alive).then_some(id)
        })
        .collect();
    if orphans.is_empty() {
        return Ok(());
    }
    say(format!(
        "removing {} container(s) of runs that are gone: {}",
        orphans.len(),
        orphans.join(" ")
    ));
    let mut args = vec!["rm", "-f", "-t", "2"];
    args.extend(orphans);
    podman(&args).await.map(drop)
}

/// Whether the Docker-compatible API answers `GET /_ping` with `OK` on the socket.
async fn pings() -> bool {
    let ping = async {
        let mut stream = tokio::net::UnixStream::connect(socket()).await?;
        stream
            .write_all(b"GET /_ping HTTP/1.0\r\nHost: d\r\n\r\n")
            .await?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await?;
        std::io::Result::Ok(answer.ends_with("\r\n\r\nOK"))
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), ping).await,
        Ok(Ok(true))
    )
}

/// Runs `podman ARGS` with our configuration; its stdout, or its stderr as the error.
async fn podman(args: &[&str]) -> Result<String> {
    let output = Command::new("podman")
        .env("CONTAINERS_CONF", conf())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .context("running podman (install it with `cargo xtask podman up`)")?;
    if !output.status.success() {
        bail!(
            "podman {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Runs a build step; on failure shows the end of what it printed.
async fn run(command: &mut Command) -> Result<()> {
    let shown = format!("{:?}", command.as_std());
    let output = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await?;
    if !output.status.success() {
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stderr));
        print_tail("build", &text);
        bail!(
            "{shown} failed ({}); the end of its output is above",
            output.status
        );
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(Into::into)
}

fn must_be_root() -> Result<()> {
    if !is_root() {
        bail!("the Podman path needs root (rootful Podman, debootstrap, chroot)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// File appenders become console appenders and lose their file settings; the rest stays.
    #[test]
    fn console_logging_turns_file_appenders_into_console_ones() {
        let properties = "\
status = error
appender.console.type = Console
appender.rolling.type = RollingFile
appender.rolling.fileName = ${sys:es.logs.base_path}/x.json
appender.rolling.filePattern = ${sys:es.logs.base_path}/x-%i.json.gz
appender.rolling.policies.type = Policies
appender.rolling.layout.type = ECSJsonLayout
appender.rolling.layout.dataset = \\
    elasticsearch.server
rootLogger.appenderRef.console.ref = console
rootLogger.appenderRef.rolling.ref = rolling
";
        assert_eq!(
            console_logging(properties),
            "\
status = error
appender.rolling.type = Console
appender.rolling.layout.type = ECSJsonLayout
appender.rolling.layout.dataset = elasticsearch.server
rootLogger.appenderRef.rolling.ref = rolling
"
        );
    }

    /// The scripting image runs the very command line a local node runs, with the image's
    /// Java and paths.
    #[test]
    fn the_scripting_entrypoint_runs_the_runner_like_a_local_node() {
        let script = runner_entrypoint();
        assert!(script.starts_with("#!/bin/bash\n"));
        assert!(script.contains(&format!("exec {IMAGE_JAVA} \"-Xms")));
        assert!(script.contains(
            "${ES_JAVA_OPTS:-} \"-cp\" \"/usr/share/elasticsearch/lib/*:/usr/share/elasticsearch/occ\" \"OccRunner\" \"-basePath\" \"$base\""
        ));
    }
}
