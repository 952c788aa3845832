//! `cargo xtask contention`: chapter 16's benchmark beside the notebook's Python, then its
//! charts; `cargo xtask charts` redraws every picture from the committed data.
//!
//! ```text
//! cargo xtask contention            the full run: src/data/*.json, then src/charts/*.svg
//! cargo xtask contention --smoke    its smallest cell (1 client, 1 repetition), into
//!                                   target/contention-smoke/: CI's check that it all runs
//! cargo xtask contention --hot      the hot document (`occ`) against chapter 15's sharded
//!                                   counter (`sharded`), into src/data/hot/, charts hot-*.svg
//! cargo xtask contention -- ARGS    ARGS go to the benchmark (`--reps 5`, `--clients 1,8`)
//! cargo xtask charts                redraw src/charts/ from src/data/ and src/outputs/
//! ```
//!
//! The notebook's Python runs in virtual environments made here, one per server major
//! (`target/notebook-python/9`, `.../7`), with the official client that
//! `provision::facts::PYTHON_CLIENTS` names, from PyPI.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use provision::facts::PYTHON_CLIENTS;

use crate::charts;
use xtask::book::root;
use xtask::cargo;

pub fn run(args: &[&str]) -> Result<()> {
    let (smoke, hot, passed) = match args {
        ["--smoke"] => (true, false, &[][..]),
        ["--hot"] => (false, true, &[][..]),
        [] => (false, false, &[][..]),
        ["--", rest @ ..] => (false, false, rest),
        _ => bail!(
            "usage: cargo xtask contention [--smoke | --hot | -- BENCHMARK-ARGS]"
        ),
    };
    let venvs = root().join("target/notebook-python");
    let out = if smoke {
        root().join("target/contention-smoke")
    } else if hot {
        root().join("src/data/hot")
    } else {
        root().join("src/data")
    };

    let mut bench = cargo();
    bench
        .current_dir(root())
        .args(["bench", "--bench", "contention"]);
    if smoke {
        // The dev profile: CI has built everything in it already, and a smoke run measures
        // nothing.
        bench.args(["--profile", "dev", "--"]);
        bench.args(["--clients", "1", "--reps", "1", "--increments", "10"]);
    } else if hot {
        // Chapter 15's way past the hot document against the hot document itself, in one
        // run: no Python (the notebook has no sharded counter), no readers' race.
        bench.arg("--");
        bench.args(["--strategies", "occ,sharded", "--timeline", "no"]);
    } else {
        bench.arg("--");
        // `-- --race-binary NAME=PATH,...` compares other builds of counter_race instead.
        if !passed.contains(&"--race-binary") {
            let race = counter_race_binary()?;
            bench.args(["--race-binary", &format!("dev={}", race.display())]);
        }
    }
    if hot {
        bench.args(["--python", "none"]);
    } else {
        python_environments(&venvs)?;
        bench.args(["--python", &relative(&venvs)]);
    }
    bench.args(["--out", &relative(&out)]);
    bench.args(passed);
    let shown: Vec<String> = bench
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    eprintln!("[xtask] cargo {}", shown.join(" "));
    let status = bench.status().context("running cargo bench")?;
    if !status.success() {
        bail!("the contention benchmark failed ({status})");
    }
    let charts_dir = if smoke {
        out.join("charts")
    } else {
        root().join("src/charts")
    };
    if hot {
        charts::contention(&out, &charts_dir, "hot")?;
    } else {
        charts::contention(&out, &charts_dir, "contention")?;
        charts::timelines(&out, &charts_dir)?;
    }
    eprintln!("[xtask] charts in {}", charts_dir.display());
    Ok(())
}

/// `path` from the repository's root, where the benchmark runs: the data file records the
/// command, and it should read the same on every machine.
fn relative(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// `cargo xtask charts`: every picture, from what is committed.
pub fn redraw() -> Result<()> {
    let charts_dir = root().join("src/charts");
    charts::contention(&root().join("src/data"), &charts_dir, "contention")?;
    charts::contention(&root().join("src/data/hot"), &charts_dir, "hot")?;
    charts::timelines(&root().join("src/data"), &charts_dir)?;
    charts::sequences(&root().join("src/outputs"), &charts_dir)?;
    charts::paused_timeline(&root().join("src/data"), &charts_dir)?;
    eprintln!("[xtask] charts in {}", charts_dir.display());
    Ok(())
}

/// One virtual environment per server major, each with its client, made if missing.
fn python_environments(dir: &Path) -> Result<()> {
    for (server, requirement) in PYTHON_CLIENTS {
        let major = server.version.split('.').next().unwrap_or_default();
        let venv = dir.join(major);
        let python = venv.join("bin/python");
        let has_client = python.exists()
            && Command::new(&python)
                .args(["-c", "import elasticsearch"])
                .status()
                .is_ok_and(|s| s.success());
        if has_client {
            continue;
        }
        eprintln!(
            "[xtask] creating {} with {requirement} (from PyPI)",
            venv.display()
        );
        checked(
            Command::new("python3")
                .args(["-m", "venv", "--clear"])
                .arg(&venv),
        )
        .context("python3 -m venv (Debian: apt-get install python3-venv)")?;
        checked(Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            requirement,
        ]))?;
    }
    Ok(())
}

/// `counter_race` as readers build it (`cargo run --example counter_race`: the dev profile).
fn counter_race_binary() -> Result<PathBuf> {
    let output = cargo()
        .current_dir(root())
        .args([
            "build",
            "--example",
            "counter_race",
            "--message-format=json-render-diagnostics",
        ])
        .output()
        .context("running cargo build --example counter_race")?;
    if !output.status.success() {
        bail!(
            "cargo build --example counter_race failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|m| {
            m["target"]["name"] == "counter_race" && m["executable"].is_string()
        })
        .and_then(|m| m["executable"].as_str().map(PathBuf::from))
        .context("cargo did not say where it put counter_race")
}

fn checked(command: &mut Command) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("running {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed ({status})");
    }
    Ok(())
}
