//! Finding a Java that can run a given Elasticsearch.
//!
//! Elasticsearch 9 needs Java 21 or later; the 7.10 build used for scripting runs on 11 or later
//! (checked on 17 and 25). Machines often have several JDKs, so every usual place is tried and
//! the first one in range wins. The ranges are in [`crate::facts`].

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Result, bail};

/// A JDK home and its major version.
#[derive(Debug, Clone)]
pub struct Java {
    pub home: PathBuf,
    pub major: u32,
}

/// The first Java whose major version is in `wanted`, from `ES_JAVA_HOME`, `JAVA_HOME`, the
/// `java` on `PATH`, then every JDK under `/usr/lib/jvm`.
pub fn find(wanted: &RangeInclusive<u32>) -> Result<Java> {
    let mut candidates: Vec<PathBuf> = ["ES_JAVA_HOME", "JAVA_HOME"]
        .iter()
        .filter_map(std::env::var_os)
        .map(PathBuf::from)
        .collect();
    if let Ok(java) = which_java() {
        candidates.push(java);
    }
    if let Ok(entries) = std::fs::read_dir("/usr/lib/jvm") {
        let mut homes: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        homes.sort();
        candidates.extend(homes);
    }
    let mut seen = Vec::new();
    for home in candidates {
        if let Some(major) = major_version(&home) {
            if wanted.contains(&major) {
                return Ok(Java { home, major });
            }
            seen.push(format!("{} ({major})", home.display()));
        }
    }
    let found = if seen.is_empty() {
        "none".to_string()
    } else {
        seen.join(", ")
    };
    bail!(
        "this Elasticsearch needs Java {} to {}; Java found: {found}; install one and set ES_JAVA_HOME to it",
        wanted.start(),
        wanted.end()
    )
}

impl Java {
    /// Its `javac`, which compiles the small main of the scripting build's runner.
    pub fn javac(&self) -> Result<PathBuf> {
        let javac = self.home.join("bin/javac");
        if !javac.is_file() {
            bail!(
                "{} is a Java runtime without javac; the scripting build needs a JDK (set ES_JAVA_HOME to one)",
                self.home.display()
            );
        }
        Ok(javac)
    }
}

/// The home of the `java` on `PATH` (resolving the symlinks Debian's alternatives use).
fn which_java() -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let java = dir.join("java");
        if java.is_file() {
            let real = std::fs::canonicalize(&java)?;
            if let Some(home) = real.parent().and_then(Path::parent) {
                return Ok(home.to_path_buf());
            }
        }
    }
    bail!("no java on PATH")
}

/// Runs `HOME/bin/java -version` and reads the major version from `version "21.0.2"` (or the
/// old `"1.8.0_392"` form).
fn major_version(home: &Path) -> Option<u32> {
    let output = Command::new(home.join("bin/java"))
        .arg("-version")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stderr);
    let quoted = text.split('"').nth(1)?;
    let mut parts = quoted.split(['.', '_', '-', '+']);
    match parts.next()?.parse().ok()? {
        1 => parts.next()?.parse().ok(),
        major => Some(major),
    }
}
