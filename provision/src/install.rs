//! Downloading a [`Server`] from Maven Central and unpacking it, once, into the cache:
//!
//! ```text
//! <cache>/downloads/                what Maven fetched (kept: a reinstall needs no network)
//! <cache>/dist/elasticsearch-9.x/   a distribution, ready to run (bin/elasticsearch)
//! <cache>/dist/runner-7.x/          the scripting build: lib/*.jar, and occ/OccRunner.class
//! ```
//!
//! Local nodes run from these directories, and the Podman images are assembled from them, so
//! both run exactly the same files.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::facts::{Build, Server};
use crate::progress::{Ticker, say};
use crate::{cache_dir, java, lock};

/// How long Maven may take to download a server.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(20 * 60);

/// The runner's main: takes node settings from the environment, as the official image does
/// (see the comment at its top).
pub const OCC_RUNNER_JAVA: &str = include_str!("../runner/OccRunner.java");
/// The runner's logging: JSON lines on stdout, as the official 7.10 image logs.
pub const RUNNER_LOG4J2: &str = include_str!("../runner/log4j2.properties");

/// The directory `server` runs from, downloaded and unpacked first if it is not there yet.
pub async fn installed(server: &Server) -> Result<PathBuf> {
    let dist = cache_dir().join("dist");
    let home = dist.join(home_name(server));
    if home.join(".complete").exists() {
        return Ok(home);
    }
    fs::create_dir_all(&dist)
        .with_context(|| format!("creating {}", dist.display()))?;
    let _lock =
        lock::acquire(&dist.join(format!("{}.lock", home_name(server)))).await?;
    if home.join(".complete").exists() {
        return Ok(home);
    }
    let partial = dist.join(format!("{}.partial", home_name(server)));
    if partial.exists() {
        fs::remove_dir_all(&partial)?;
    }
    fs::create_dir_all(&partial)?;
    match server.build {
        Build::Distribution { artifact } => {
            let zip = download_zip(artifact).await?;
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
            // The zip holds one folder, elasticsearch-<version>/: its contents are the home.
            let inner = partial.join(format!("elasticsearch-{}", server.version));
            replace(&inner, &home)?;
            fs::remove_dir_all(&partial).ok();
        }
        Build::ClusterRunner { artifact } => {
            say(format!(
                "downloading Elasticsearch {} with its modules from Maven Central ({artifact})",
                server.version
            ));
            fs::write(partial.join("pom.xml"), runner_pom(artifact)?)?;
            maven(&[
                "-f",
                &partial.join("pom.xml").to_string_lossy(),
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                &format!("-DoutputDirectory={}", partial.join("lib").display()),
            ])
            .await?;
            compile_runner(server, &partial).await?;
            replace(&partial, &home)?;
        }
    }
    fs::write(home.join(".complete"), server.version)?;
    Ok(home)
}

fn home_name(server: &Server) -> String {
    match server.build {
        Build::Distribution { .. } => format!("elasticsearch-{}", server.version),
        Build::ClusterRunner { .. } => format!("runner-{}", server.version),
    }
}

fn replace(from: &Path, to: &Path) -> Result<()> {
    if to.exists() {
        fs::remove_dir_all(to)?;
    }
    fs::rename(from, to)
        .with_context(|| format!("moving {} to {}", from.display(), to.display()))
}

/// The distribution zip `artifact`, from the download cache or Maven Central.
async fn download_zip(artifact: &str) -> Result<PathBuf> {
    let downloads = cache_dir().join("downloads");
    fs::create_dir_all(&downloads)?;
    // GROUP:NAME:VERSION:zip lands as NAME-VERSION.zip.
    let parts: Vec<&str> = artifact.split(':').collect();
    let [_, name, version, _] = parts[..] else {
        bail!("artifact {artifact:?} is not GROUP:NAME:VERSION:zip");
    };
    let zip = downloads.join(format!("{name}-{version}.zip"));
    if !zip.exists() {
        say(format!("downloading {artifact} from Maven Central"));
        maven(&[
            "dependency:copy",
            &format!("-Dartifact={artifact}"),
            &format!("-DoutputDirectory={}", downloads.display()),
        ])
        .await?;
    }
    Ok(zip)
}

/// A pom whose only purpose is to let Maven resolve the runner and its dependencies.
fn runner_pom(artifact: &str) -> Result<String> {
    let parts: Vec<&str> = artifact.split(':').collect();
    let [group, name, version] = parts[..] else {
        bail!("artifact {artifact:?} is not GROUP:NAME:VERSION");
    };
    Ok(format!(
        r#"<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>occ-book</groupId>
  <artifactId>scripting-server</artifactId>
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
    ))
}

/// Compiles `OccRunner.java` against the runner's jars into `home/occ/`, next to its logging
/// configuration.
async fn compile_runner(server: &Server, home: &Path) -> Result<()> {
    let java = java::find(&server.java)?;
    let occ = home.join("occ");
    fs::create_dir_all(&occ)?;
    fs::write(occ.join("OccRunner.java"), OCC_RUNNER_JAVA)?;
    fs::write(occ.join("log4j2.properties"), RUNNER_LOG4J2)?;
    run_quiet(
        Command::new(java.javac()?)
            .args(["--release", &server.java.start().to_string(), "-nowarn"])
            .arg("-cp")
            .arg(home.join("lib/*"))
            .arg("-d")
            .arg(&occ)
            .arg(occ.join("OccRunner.java")),
        "javac OccRunner.java",
    )
    .await
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
        let mut seen = String::new();
        let mut files = 0;
        while let Ok(Some(line)) = lines.next_line().await {
            // Maven fetches its own plugins first (dozens of small jars on a fresh machine):
            // the artifact itself is named, the rest only counted.
            if line.contains("Downloaded from") {
                files += 1;
                if line.contains(".zip") {
                    say(line.trim_start_matches("[INFO] ").trim());
                } else if files % 25 == 0 {
                    say(format!("Maven has downloaded {files} files"));
                }
            }
            seen.push_str(&line);
            seen.push('\n');
        }
        seen
    };
    let (seen, status) = tokio::time::timeout(DOWNLOAD_TIMEOUT, async {
        let seen = relay.await;
        (seen, child.wait().await)
    })
    .await
    .map_err(|_| anyhow!("Maven did not finish within {DOWNLOAD_TIMEOUT:?}"))?;
    if !status?.success() {
        crate::progress::print_tail("mvn", &seen);
        bail!("Maven could not download Elasticsearch (its last lines are above)");
    }
    Ok(())
}

/// Runs `command` to completion; its stderr becomes the error if it fails.
pub async fn run_quiet(command: &mut Command, name: &str) -> Result<()> {
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
