//! What the integration tests share: running an example binary as a reader would, and seeing
//! what came out.

#![allow(dead_code)] // each test binary uses its own part of this

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// What a run of an example gave.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The `RESULT {json}` lines it printed.
    pub fn results(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .filter_map(|l| l.strip_prefix("RESULT "))
            .map(|json| serde_json::from_str(json).expect("a RESULT line is JSON"))
            .collect()
    }

    /// It failed with exactly one line, `error: ...` containing `needle`, and no panic.
    pub fn assert_one_line_error(&self, needle: &str) {
        assert!(!self.stderr.contains("panicked"), "panic: {self:?}");
        assert_eq!(self.code, Some(1), "exit code: {self:?}");
        let lines: Vec<&str> = self.stderr.trim_end().lines().collect();
        assert_eq!(lines.len(), 1, "one line expected: {self:?}");
        assert!(lines[0].starts_with("error: "), "{self:?}");
        assert!(lines[0].contains(needle), "{needle:?} missing: {self:?}");
    }
}

/// Runs example `name` with `args`, with its `RESULT` lines (`OCC_RESULTS=1`). Of the variables
/// that choose a cluster, only those in `env` are set (`ELASTICSEARCH_URL`, `OCC_CLUSTER` and
/// `ELASTICSEARCH_CA_CERT` are otherwise removed); a run still going after `limit` is killed and
/// the test fails as a hang.
pub fn run(
    name: &str,
    args: &[&str],
    env: &[(&str, &str)],
    limit: Duration,
) -> Run {
    let mut command = Command::new(example(name));
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for var in ["ELASTICSEARCH_URL", "OCC_CLUSTER", "ELASTICSEARCH_CA_CERT"] {
        command.env_remove(var);
    }
    command.env("OCC_RESULTS", "1");
    command.envs(env.iter().copied());
    let started = Instant::now();
    let mut child = command.spawn().expect("the example starts");
    let read = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            pipe.read_to_string(&mut text).ok();
            text
        })
    };
    let stdout = read(Box::new(child.stdout.take().expect("stdout")));
    let stderr = read(Box::new(child.stderr.take().expect("stderr")));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > limit {
            child.kill().ok();
            panic!("{name} {args:?} with {env:?} hung for {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Run {
        code: status.code(),
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// The binary of example `name`, built (with all the others) by `cargo build --examples` on
/// first use; Cargo reports where it put each one, wherever the target directory is.
pub fn example(name: &str) -> &'static Path {
    static EXAMPLES: OnceLock<HashMap<String, PathBuf>> = OnceLock::new();
    let examples = EXAMPLES.get_or_init(|| {
        let output = xtask::cargo()
            .args([
                "build",
                "--examples",
                "--message-format=json-render-diagnostics",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stderr(Stdio::inherit())
            .output()
            .expect("cargo runs");
        assert!(output.status.success(), "cargo build --examples failed");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter_map(|message| {
                let path = message["executable"].as_str()?;
                let name = message["target"]["name"].as_str()?;
                Some((name.to_string(), PathBuf::from(path)))
            })
            .collect()
    });
    examples
        .get(name)
        .unwrap_or_else(|| panic!("no example called {name}"))
}

/// Every example Cargo builds, from `Cargo.toml`'s `[[example]]` sections, in book order.
#[allow(dead_code)] // not every test binary that includes this module lists the examples
pub fn examples() -> Vec<String> {
    let manifest = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"),
    )
    .expect("Cargo.toml");
    manifest
        .split("[[example]]")
        .skip(1)
        .filter_map(|section| {
            let name = section.lines().find_map(|l| l.strip_prefix("name = "))?;
            Some(name.trim_matches('"').to_string())
        })
        .collect()
}
