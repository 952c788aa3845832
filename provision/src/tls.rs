//! Certificates for the TLS node of the credential tests, made with the distribution's own
//! `bin/elasticsearch-certutil` (the tool Elastic's security set-up uses): a certificate
//! authority of our own, and a certificate it signs for the node, valid for `127.0.0.1` and
//! `localhost`. Nothing is downloaded and nothing here is secret: the node listens on loopback
//! only and holds nothing.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tokio::process::Command;

use crate::facts::RELEASE;
use crate::install::{self, run_quiet};
use crate::java;

/// How long the certificates are valid: the node is started again after a week anyway.
const DAYS: &str = "30";

/// A certificate authority: its certificate (PEM, what a client trusts) and its key.
#[derive(Debug, Clone)]
pub struct Authority {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A new certificate authority in `dir` (`dir/ca/ca.crt`, `dir/ca/ca.key`), called `name` in
/// its subject.
///
/// ```no_run
/// # #[tokio::main] async fn main() -> anyhow::Result<()> {
/// let dir = std::env::temp_dir().join("occ-book-doc-ca");
/// let ca = provision::tls::new_authority(&dir, "Some other CA").await?;
/// assert!(std::fs::read_to_string(&ca.cert)?.contains("BEGIN CERTIFICATE"));
/// # Ok(()) }
/// ```
pub async fn new_authority(dir: &Path, name: &str) -> Result<Authority> {
    fs::create_dir_all(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    let zip = dir.join("ca.zip");
    fs::remove_file(&zip).ok();
    certutil(&[
        "ca",
        "--pem",
        "--silent",
        "--days",
        DAYS,
        "--ca-dn",
        &format!("CN={name}"),
        "--out",
        &zip.to_string_lossy(),
    ])
    .await?;
    unzip(&zip, dir).await?;
    Ok(Authority {
        cert: dir.join("ca/ca.crt"),
        key: dir.join("ca/ca.key"),
    })
}

/// A certificate and key for a node on this machine (`127.0.0.1`, `localhost`), signed by
/// `ca`, in `dir/node/node.crt` and `dir/node/node.key`.
pub async fn node_certificate(
    dir: &Path,
    ca: &Authority,
) -> Result<(PathBuf, PathBuf)> {
    let zip = dir.join("node.zip");
    fs::remove_file(&zip).ok();
    certutil(&[
        "cert",
        "--pem",
        "--silent",
        "--days",
        DAYS,
        "--ca-cert",
        &ca.cert.to_string_lossy(),
        "--ca-key",
        &ca.key.to_string_lossy(),
        "--ip",
        "127.0.0.1",
        "--dns",
        "localhost",
        "--name",
        "node",
        "--out",
        &zip.to_string_lossy(),
    ])
    .await?;
    unzip(&zip, dir).await?;
    Ok((dir.join("node/node.crt"), dir.join("node/node.key")))
}

/// Runs `bin/elasticsearch-certutil` of the release with `args` (absolute paths only: it
/// resolves relative ones against its own home).
async fn certutil(args: &[&str]) -> Result<()> {
    let java = java::find(&RELEASE.java)?;
    let home = install::installed(&RELEASE).await?;
    run_quiet(
        Command::new(home.join("bin/elasticsearch-certutil"))
            .args(args)
            .env("ES_JAVA_HOME", &java.home),
        "elasticsearch-certutil",
    )
    .await
}

async fn unzip(zip: &Path, dir: &Path) -> Result<()> {
    run_quiet(
        Command::new("unzip")
            .arg("-o")
            .arg("-q")
            .arg(zip)
            .arg("-d")
            .arg(dir),
        "unzip",
    )
    .await
}
