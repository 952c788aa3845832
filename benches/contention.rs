//! What contention costs (chapter 16): chapter 6's race, measured.
//!
//! For each number of clients (1, 2, 4, 8, 16, 32 by default) and each strategy (`none`, `occ`,
//! `server`: the functions of `examples/counter_race.rs`, included below), a fixed number of
//! increments (320) is shared out among the clients, several times over (3), and each time:
//!
//! - the Rust race, in this process: correct increments per second, lost increments,
//!   conflicts per successful increment, p50 and p99 latency of one increment, client CPU;
//! - the notebook's method in Python (`benches/notebook_race.py`, the official Python client of the
//!   server's major version, in a virtual environment `cargo xtask contention` creates), on the
//!   same cluster, right before or after (alternately): wall time, client CPU, final count;
//! - the ceiling: the same strategy with every client on a document of its own, so that
//!   nobody races: what the server can do for these requests on this machine.
//!
//! Then the race as readers run it: `counter_race` built by `cargo build --example
//! counter_race` (the binaries given by `--race-binary`), 5 clients x 50 per strategy, beside
//! the notebook's Python at 5 x 50, alternating, several times. Then a short race of 3 clients
//! recorded operation by operation, for the timeline pictures.
//!
//! Run it: `cargo xtask contention` (creates the Python environments, builds counter_race, runs
//! this with `cargo bench --bench contention`, draws the charts into `src/charts/`). Progress
//! goes to stderr; the data goes to `OUT/contention.json` and `OUT/timeline.json` (`--out`,
//! default `src/data`).
//!
//! Flags: `--clients 1,2,4` `--increments N` `--reps N` `--out DIR` `--python DIR|none`
//! (`DIR/7`, `DIR/9`, ...: a virtual environment per server major) `--race-binary
//! NAME=PATH,...` `--race-reps N` `--strategies none,occ,server,sharded` (`sharded`: chapter 15's
//! counter of 16 shard documents, which the notebook does not have) `--timeline yes|no`.
//!
//! It exits non-zero if `occ` or `server` lost an increment, or if a run failed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use elasticsearch::{Elasticsearch, IndexParts};
use esbook::doc::{self, Outcome};
use esbook::retry::Backoff;
use esbook::{Cluster, Needs};
use harness::cli::Args;
use harness::race::{self, Contender, Layout, Race, Sharded};
use serde_json::{Value, json};

// The benchmark must measure the increments chapter 6 shows, not a copy of them that could
// drift: so it compiles the example's own file as a module (its `main` and its tests go
// unused here) and races its `Strategy`. A third file that both included would work too, but
// then the reader's example would no longer hold its own lesson.
#[path = "../examples/counter_race.rs"]
#[allow(dead_code, unused_imports)]
mod counter_race;
use counter_race::Strategy;

/// The notebook's three, in its order.
const NOTEBOOK: [Strategy; 3] = [Strategy::None, Strategy::Occ, Strategy::Server];

const USAGE: &str = "usage: cargo bench --bench contention -- [--clients 1,2,4,8,16,32] \
[--increments 320] [--reps 3] [--out src/data] [--python DIR|none] \
[--race-binary NAME=PATH,...] [--race-reps 5] [--strategies none,occ,server,sharded] \
[--timeline yes|no]";

/// The strategies the benchmark can compare, in the order charts show them: the notebook's
/// three, and chapter 15's sharded counter (16 shards), the way past a hot document. Anything
/// that implements `harness::race::Contender` plugs in here.
fn strategies() -> Vec<Arc<dyn Contender>> {
    let mut list: Vec<Arc<dyn Contender>> = Vec::new();
    for strategy in NOTEBOOK {
        list.push(Arc::new(strategy));
    }
    list.push(Arc::new(Sharded { shards: 16 }));
    list
}

/// Whether the notebook has this strategy (and so a Python run to compare with).
fn in_notebook(strategy: &dyn Contender) -> bool {
    NOTEBOOK.iter().any(|s| s.name() == strategy.name())
}

/// Index names: the Rust race, the ceiling, the timeline, the notebook's Python.
const INDEX: &str = "bench-contention";
const NOTEBOOK_INDEX: &str = "bench-notebook";

#[tokio::main]
async fn main() -> std::process::ExitCode {
    harness::run_main(async { bench().await.map(|()| 0) }).await
}

struct Settings {
    clients: Vec<u32>,
    increments: u32,
    reps: u32,
    out: PathBuf,
    python: Option<PathBuf>,
    race_binaries: Vec<(String, PathBuf)>,
    race_reps: u32,
    strategies: Vec<Arc<dyn Contender>>,
    timeline: bool,
}

fn settings() -> Result<Settings> {
    // `cargo bench` passes `--bench` to every bench target; it is not ours.
    let given: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if given.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        std::process::exit(0);
    }
    let mut args = Args::parse(given)?;
    let clients = args
        .text("clients", "1,2,4,8,16,32")?
        .split(',')
        .map(|n| match n.trim().parse::<u32>() {
            Ok(n) if (1..=256).contains(&n) => Ok(n),
            _ => {
                bail!("--clients must list whole numbers from 1 to 256, got {n:?}")
            }
        })
        .collect::<Result<Vec<u32>>>()?;
    let increments = args.number("increments", 320, 1..=100_000)?;
    if let Some(n) = clients.iter().find(|&&n| increments % n != 0) {
        bail!(
            "--increments {increments} cannot be shared equally among {n} clients"
        );
    }
    let reps = args.number("reps", 3, 1..=100)?;
    let out = PathBuf::from(args.text("out", "src/data")?);
    let python = match args.text("python", "target/notebook-python")?.as_str() {
        "none" => None,
        dir => Some(PathBuf::from(dir)),
    };
    let mut race_binaries = Vec::new();
    for pair in args
        .text("race-binary", "")?
        .split(',')
        .filter(|p| !p.is_empty())
    {
        let Some((name, path)) = pair.split_once('=') else {
            bail!("--race-binary takes NAME=PATH pairs, got {pair:?}");
        };
        race_binaries.push((name.to_string(), PathBuf::from(path)));
    }
    let race_reps = args.number("race-reps", 5, 1..=100)?;
    let known = strategies();
    let all: Vec<&str> = known.iter().map(|s| s.name()).collect();
    let mut chosen = Vec::new();
    for name in args.text("strategies", &all.join(","))?.split(',') {
        match known.iter().find(|s| s.name() == name.trim()) {
            Some(strategy) => chosen.push(strategy.clone()),
            None => bail!(
                "--strategies lists some of {}, got {name:?}",
                all.join(", ")
            ),
        }
    }
    let timeline = match args.text("timeline", "yes")?.as_str() {
        "yes" => true,
        "no" => false,
        other => bail!("--timeline is yes or no, got {other:?}"),
    };
    args.finish()?;
    Ok(Settings {
        clients,
        increments,
        reps,
        out,
        python,
        race_binaries,
        race_reps,
        strategies: chosen,
        timeline,
    })
}

async fn bench() -> Result<()> {
    let settings = settings()?;
    let core = Cluster::connect(Needs::Core).await?;
    let mut clusters: BTreeMap<&'static str, Cluster> = BTreeMap::new();
    clusters.insert("core", core.clone());
    clusters.insert("scripting", core.for_needs(Needs::Scripting).await?);
    let cluster_for = |needs: Needs| match needs {
        Needs::Core => &clusters["core"],
        Needs::Scripting => &clusters["scripting"],
    };
    let python = |cluster: &Cluster| notebook_python(&settings, cluster);
    // The notebook's Python for `strategy`, if it has that strategy and a Python is given.
    let python_for = |strategy: &dyn Contender, cluster: &Cluster| {
        if in_notebook(strategy) {
            python(cluster)
        } else {
            Ok(None)
        }
    };

    let strategies = settings.strategies.clone();
    let mut servers = BTreeMap::new();
    for strategy in &strategies {
        let cluster = cluster_for(strategy.needs());
        let client = match python_for(strategy.as_ref(), cluster) {
            Ok(Some(python)) => json!(python.client_version()?),
            Ok(None) => Value::Null,
            Err(e) => bail!("{e:#}"),
        };
        servers.insert(
            strategy.name().to_string(),
            json!({ "version": cluster.version, "cluster": cluster.source.to_string(),
                    "python_client": client }),
        );
    }

    // A race per strategy first, its results thrown away: the first requests of a fresh JVM
    // (and the first run of a script) are slower than the rest, and no cell should pay that.
    for strategy in &strategies {
        eprintln!("[bench] warming up {}", strategy.name());
        let cluster = cluster_for(strategy.needs());
        race::run(cluster, INDEX, strategy.clone(), Race::default()).await?;
        if let Some(python) = python_for(strategy.as_ref(), cluster)? {
            python.race(strategy.name(), 5, 50)?;
        }
    }

    // The grid: every strategy at every number of clients, `reps` times, Rust and Python one
    // after the other (which goes first alternates), then the ceiling, so that all three see
    // the machine in the same state.
    let mut cells: Vec<Value> = Vec::new();
    let total = settings.clients.len() * strategies.len();
    for &clients in &settings.clients {
        for strategy in &strategies {
            let cluster = cluster_for(strategy.needs());
            let race = Race {
                clients,
                per_client: settings.increments / clients,
                ..Race::default()
            };
            eprintln!(
                "[bench] cell {}/{total}: {} with {clients} client(s), {} x {}",
                cells.len() + 1,
                strategy.name(),
                settings.reps,
                settings.increments
            );
            let (mut rust, mut notebook, mut ceiling) =
                (Vec::new(), Vec::new(), Vec::new());
            for rep in 0..settings.reps {
                let python = python_for(strategy.as_ref(), cluster)?;
                let per_client = race.per_client;
                if let (1, Some(python)) = (rep % 2, &python) {
                    notebook.push(python.race(
                        strategy.name(),
                        clients,
                        per_client,
                    )?);
                }
                rust.push(race::run(cluster, INDEX, strategy.clone(), race).await?);
                if let (0, Some(python)) = (rep % 2, &python) {
                    notebook.push(python.race(
                        strategy.name(),
                        clients,
                        per_client,
                    )?);
                }
                let alone = Race {
                    layout: Layout::PerClient,
                    ..race
                };
                ceiling.push(
                    race::run(cluster, INDEX, strategy.clone(), alone).await?,
                );
            }
            let cell = json!({
                "strategy": strategy.name(),
                "clients": clients,
                "per_client": race.per_client,
                "increments": race.expected(),
                "rust": summarise(&rust),
                "notebook": summarise_notebook(&notebook),
                "ceiling": summarise(&ceiling),
            });
            eprintln!("[bench]   {}", line(&cell));
            cells.push(cell);
        }
    }

    // The race as readers run it, beside the notebook, at the notebook's 5 x 50.
    let mut readers = Vec::new();
    if !settings.race_binaries.is_empty() {
        for strategy in &strategies {
            if !in_notebook(strategy.as_ref()) {
                continue; // counter_race runs the notebook's three only
            }
            let cluster = cluster_for(strategy.needs());
            let mut runs: BTreeMap<String, Vec<Value>> = BTreeMap::new();
            for rep in 0..settings.race_reps {
                eprintln!(
                    "[bench] counter_race --strategy {} beside the notebook, {}/{}",
                    strategy.name(),
                    rep + 1,
                    settings.race_reps
                );
                // Which goes first alternates, so that neither always meets a server that
                // the other has just warmed up or worn out.
                let python = python(cluster)?;
                if let (1, Some(python)) = (rep % 2, &python) {
                    let run = python.race(strategy.name(), 5, 50)?;
                    runs.entry("notebook".into()).or_default().push(run);
                }
                for (name, binary) in &settings.race_binaries {
                    let run = run_counter_race(binary, strategy.name())?;
                    runs.entry(name.clone()).or_default().push(run);
                }
                if let (0, Some(python)) = (rep % 2, &python) {
                    let run = python.race(strategy.name(), 5, 50)?;
                    runs.entry("notebook".into()).or_default().push(run);
                }
            }
            let mut summary = json!({ "strategy": strategy.name(),
                                      "clients": 5, "per_client": 50 });
            for (name, runs) in &runs {
                summary[name] = json!({
                    "wall_ms": median(runs.iter().map(|r| r["wall_ms"].as_f64().unwrap())),
                    "cpu_ms": median(runs.iter().map(|r| r["cpu_ms"].as_f64().unwrap())),
                    "runs": runs,
                });
            }
            eprintln!("[bench]   {}", readers_line(&summary));
            readers.push(summary);
        }
    }

    let timeline = if settings.timeline {
        Some(timeline(cluster_for(Needs::Core)).await?)
    } else {
        None
    };

    let data = json!({
        "what": "chapter 6's race, measured: see benches/contention.rs",
        "command": format!("cargo bench --bench contention -- {}", std::env::args().skip(1).filter(|a| a != "--bench").collect::<Vec<_>>().join(" ")),
        "machine": machine(),
        "servers": servers,
        "settings": { "clients": settings.clients, "increments": settings.increments,
                      "reps": settings.reps, "race_reps": settings.race_reps },
        "cells": cells,
        "readers_race": readers,
    });
    std::fs::create_dir_all(&settings.out)
        .with_context(|| format!("creating {}", settings.out.display()))?;
    let path = settings.out.join("contention.json");
    std::fs::write(&path, serde_json::to_string_pretty(&data)? + "\n")?;
    eprintln!("[bench] wrote {}", path.display());
    if let Some(timeline) = timeline {
        let timeline_path = settings.out.join("timeline.json");
        std::fs::write(
            &timeline_path,
            serde_json::to_string_pretty(&timeline)? + "\n",
        )?;
        eprintln!("[bench] wrote {}", timeline_path.display());
    }

    // What no benchmark may show: an increment that OCC or the server lost.
    for cell in &cells {
        let lost = cell["rust"]["lost"].as_u64().unwrap_or(0);
        if cell["strategy"] != "none" && lost > 0 {
            bail!(
                "{} lost {lost} increments: {}",
                cell["strategy"],
                line(cell)
            );
        }
    }
    Ok(())
}

/// Medians over the repetitions, latencies over every increment of every repetition.
fn summarise(runs: &[race::Run]) -> Value {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let latencies: Vec<Duration> =
        runs.iter().flat_map(|r| r.latencies.clone()).collect();
    let acknowledged: u64 = runs.iter().map(|r| r.total.acknowledged).sum();
    let conflicts: u64 = runs.iter().map(|r| r.total.conflicts).sum();
    json!({
        "correct_per_s": median(runs.iter().map(|r| r.counted as f64 / r.elapsed.as_secs_f64())),
        "wall_ms": median(runs.iter().map(|r| ms(r.elapsed))),
        "cpu_ms": median(runs.iter().map(|r| ms(r.cpu))),
        "lost": runs.iter().map(|r| r.expected - r.counted.min(r.expected)).max().unwrap_or(0),
        "lost_runs": runs.iter().map(|r| r.expected - r.counted.min(r.expected)).collect::<Vec<_>>(),
        "failed": runs.iter().map(|r| r.total.failed).sum::<u64>(),
        "conflicts_per_success": if acknowledged == 0 { 0.0 } else { conflicts as f64 / acknowledged as f64 },
        "p50_ms": ms(race::quantile(&latencies, 0.5)),
        "p99_ms": ms(race::quantile(&latencies, 0.99)),
    })
}

fn summarise_notebook(runs: &[Value]) -> Value {
    if runs.is_empty() {
        return Value::Null;
    }
    let field =
        |name: &'static str| runs.iter().map(move |r| r[name].as_f64().unwrap());
    let lost =
        |r: &Value| r["expected"].as_u64().unwrap() - r["final"].as_u64().unwrap();
    json!({
        "correct_per_s": median(runs.iter().map(|r| r["final"].as_f64().unwrap() / r["wall_ms"].as_f64().unwrap() * 1000.0)),
        "wall_ms": median(field("wall_ms")),
        "cpu_ms": median(field("cpu_ms")),
        "lost": runs.iter().map(lost).max().unwrap_or(0),
        "lost_runs": runs.iter().map(lost).collect::<Vec<_>>(),
        // Threads that died of an exception (their remaining increments never ran).
        "thread_errors": runs.iter().flat_map(|r| r["thread_errors"].as_array().cloned().unwrap_or_default()).collect::<Vec<_>>(),
    })
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// One line of progress for a cell.
fn line(cell: &Value) -> String {
    let (rust, notebook, ceiling) =
        (&cell["rust"], &cell["notebook"], &cell["ceiling"]);
    let mut text = format!(
        "rust {:.0}/s lost {} conflicts/inc {:.2} p50 {:.1}ms p99 {:.1}ms cpu {:.0}ms; ceiling {:.0}/s",
        rust["correct_per_s"].as_f64().unwrap_or(0.0),
        rust["lost"],
        rust["conflicts_per_success"].as_f64().unwrap_or(0.0),
        rust["p50_ms"].as_f64().unwrap_or(0.0),
        rust["p99_ms"].as_f64().unwrap_or(0.0),
        rust["cpu_ms"].as_f64().unwrap_or(0.0),
        ceiling["correct_per_s"].as_f64().unwrap_or(0.0),
    );
    if !notebook.is_null() {
        text += &format!(
            "; notebook {:.0}/s lost {} wall x{:.2} cpu x{:.2} (rust/python)",
            notebook["correct_per_s"].as_f64().unwrap_or(0.0),
            notebook["lost"],
            rust["wall_ms"].as_f64().unwrap_or(0.0)
                / notebook["wall_ms"].as_f64().unwrap_or(1.0),
            rust["cpu_ms"].as_f64().unwrap_or(0.0)
                / notebook["cpu_ms"].as_f64().unwrap_or(1.0),
        );
    }
    text
}

fn readers_line(summary: &Value) -> String {
    let mut text = format!("{}:", summary["strategy"].as_str().unwrap_or("?"));
    let notebook = &summary["notebook"];
    for (name, value) in summary.as_object().into_iter().flatten() {
        let Some(wall) = value["wall_ms"].as_f64() else {
            continue;
        };
        let cpu = value["cpu_ms"].as_f64().unwrap_or(0.0);
        text += &format!(" {name} {wall:.0}ms cpu {cpu:.0}ms");
        if let (Some(w), Some(c)) =
            (notebook["wall_ms"].as_f64(), notebook["cpu_ms"].as_f64())
            && name != "notebook"
        {
            text += &format!(" (x{:.2} wall, x{:.2} cpu);", wall / w, cpu / c);
        }
    }
    text
}

/// One run of the `counter_race` binary at `path` (5 x 50, one strategy): the race's wall time
/// and client CPU as its `RESULT` line reports them.
fn run_counter_race(path: &Path, strategy: &str) -> Result<Value> {
    let output = Command::new(path)
        .args(["--strategy", strategy])
        .env("OCC_RESULTS", "1")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {}", path.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "{} --strategy {strategy} failed: {}{}",
            path.display(),
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let result: Value = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .context("counter_race printed no RESULT line")
        .and_then(|json| Ok(serde_json::from_str(json)?))?;
    Ok(json!({
        "wall_ms": result["elapsed_ms"],
        "cpu_ms": result["client_cpu_ms"],
        "final": result["final"],
        "server_version": result["server_version"],
    }))
}

/// The notebook's Python, in the virtual environment for one server's major version.
struct NotebookPython {
    python: PathBuf,
    url: String,
}

/// The environment for `cluster`'s major version under `--python DIR`, if there is one.
fn notebook_python(
    settings: &Settings,
    cluster: &Cluster,
) -> Result<Option<NotebookPython>> {
    let Some(dir) = &settings.python else {
        return Ok(None);
    };
    let major = cluster.version.split('.').next().unwrap_or_default();
    let python = dir.join(major).join("bin/python");
    if !python.exists() {
        bail!(
            "no Python environment for Elasticsearch {} at {} (`cargo xtask contention` creates \
             them; --python none runs without the notebook)",
            cluster.version,
            python.display()
        );
    }
    // The script sends its own requests; it needs the cluster's address, not our client.
    Ok(Some(NotebookPython {
        python,
        url: cluster_url(cluster)?,
    }))
}

/// The address to hand to another program: `ELASTICSEARCH_URL` as given (with its credentials)
/// or the address of the node this process found.
fn cluster_url(cluster: &Cluster) -> Result<String> {
    match cluster.source {
        esbook::Source::Url => {
            std::env::var("ELASTICSEARCH_URL").context("ELASTICSEARCH_URL vanished")
        }
        _ => Ok(cluster.url.clone()),
    }
}

impl NotebookPython {
    fn script() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/notebook_race.py")
    }

    fn client_version(&self) -> Result<String> {
        let output = Command::new(&self.python)
            .args([
                "-c",
                "import elasticsearch; print(elasticsearch.__versionstr__)",
            ])
            .output()
            .with_context(|| format!("running {}", self.python.display()))?;
        if !output.status.success() {
            bail!(
                "{} cannot import elasticsearch: {}",
                self.python.display(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    }

    /// One race of the notebook's method: wall time and CPU of the race, the final count.
    fn race(&self, strategy: &str, threads: u32, iterations: u32) -> Result<Value> {
        let output = Command::new(&self.python)
            .arg(Self::script())
            .args([&self.url, NOTEBOOK_INDEX, strategy])
            .args([threads.to_string(), iterations.to_string()])
            .env("PYTHONWARNINGS", "ignore")
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {}", self.python.display()))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let parsed: Option<Value> = stdout
            .lines()
            .last()
            .and_then(|l| serde_json::from_str(l).ok());
        match (output.status.success(), parsed) {
            (true, Some(run)) => Ok(json!({
                "wall_ms": run["wall_s"].as_f64().unwrap_or(0.0) * 1000.0,
                "cpu_ms": run["cpu_s"].as_f64().unwrap_or(0.0) * 1000.0,
                "final": run["final"],
                "expected": run["expected"],
                "thread_errors": run["thread_errors"],
            })),
            _ => bail!(
                "the notebook's {strategy} race failed: {}{}",
                stdout,
                String::from_utf8_lossy(&output.stderr)
            ),
        }
    }
}

/// The machine, as the data file names it.
fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.trim().trim_end_matches(" kB").parse::<f64>().ok())
        .map(|kb| (kb / 1024.0 / 1024.0).round());
    json!({
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "cpu": model,
        "memory_gib": mem_gib,
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
    })
}

/// One operation of the recorded race.
#[derive(Debug, Clone)]
struct Op {
    client: usize,
    kind: &'static str,
    start: Duration,
    end: Duration,
    /// read: the `_seq_no` seen; write: the `_seq_no` it made; conflict: the one it required.
    seq_no: i64,
    /// read: the counter seen; write and conflict: the counter it tried to write.
    value: i64,
}

/// A short race (3 clients x 4 increments, `none` then `occ`) with every read and write
/// recorded, for the timeline pictures. The read-modify-write is chapter 6's, step by step:
/// `doc::read`, then `doc::put` (none) or a conditional index retried by `esbook::retry::until_written`
/// (occ).
async fn timeline(cluster: &Cluster) -> Result<Value> {
    let mut races = Vec::new();
    for strategy in ["none", "occ"] {
        let index = "bench-timeline";
        Strategy::None
            .prepare(&cluster.client, index, &[race::DOC_ID.to_string()])
            .await?;
        let ops = Arc::new(Mutex::new(Vec::<Op>::new()));
        let started = Instant::now();
        let mut clients = tokio::task::JoinSet::new();
        for client_no in 0..3 {
            let (client, ops) = (cluster.client.clone(), ops.clone());
            clients.spawn(async move {
                for _ in 0..4 {
                    recorded_increment(
                        &client, index, strategy, client_no, started, &ops,
                    )
                    .await?;
                }
                anyhow::Ok(())
            });
        }
        while let Some(joined) = clients.join_next().await {
            joined.context("a client task panicked")??;
        }
        let counted = doc::read(&cluster.client, index, race::DOC_ID)
            .await?
            .number("counter")?;
        let mut ops = ops.lock().unwrap().clone();
        ops.sort_by_key(|o| o.start);
        races.push(json!({
            "strategy": strategy,
            "clients": 3,
            "per_client": 4,
            "final": counted,
            "ops": ops.iter().map(|o| json!({
                "client": o.client, "kind": o.kind,
                "start_us": o.start.as_micros() as u64, "end_us": o.end.as_micros() as u64,
                "seq_no": o.seq_no, "value": o.value,
            })).collect::<Vec<_>>(),
        }));
    }
    Ok(json!({
        "what": "every read and write of a short race, recorded by benches/contention.rs",
        "server_version": cluster.version,
        "races": races,
    }))
}

async fn recorded_increment(
    client: &Elasticsearch,
    index: &str,
    strategy: &str,
    client_no: usize,
    started: Instant,
    ops: &Mutex<Vec<Op>>,
) -> Result<()> {
    let id = race::DOC_ID;
    let record = |kind, start: Instant, seq_no, value| {
        ops.lock().unwrap().push(Op {
            client: client_no,
            kind,
            start: start - started,
            end: started.elapsed(),
            seq_no,
            value,
        })
    };
    if strategy == "none" {
        let at = Instant::now();
        let seen = doc::read(client, index, id).await?;
        record("read", at, seen.seq_no, seen.number("counter")?);
        let next = seen.number("counter")? + 1;
        let at = Instant::now();
        let written =
            doc::put(client, index, id, json!({ "counter": next })).await?;
        record("write", at, written["_seq_no"].as_i64().unwrap_or(-1), next);
        return Ok(());
    }
    let tally = esbook::retry::until_written(Backoff::default(), || async {
        let at = Instant::now();
        let seen = doc::read(client, index, id).await?;
        record("read", at, seen.seq_no, seen.number("counter")?);
        let next = seen.number("counter")? + 1;
        let at = Instant::now();
        let response = client
            .index(IndexParts::IndexId(index, id))
            .if_seq_no(seen.seq_no)
            .if_primary_term(seen.primary_term)
            .body(json!({ "counter": next }))
            .send()
            .await?;
        let outcome = doc::outcome(response).await?;
        match &outcome {
            Outcome::Written(body) => {
                record("write", at, body["_seq_no"].as_i64().unwrap_or(-1), next)
            }
            Outcome::Conflict(_) => record("conflict", at, seen.seq_no, next),
        }
        Ok(outcome)
    })
    .await?;
    if tally.failed > 0 {
        bail!("an increment of the recorded race gave up");
    }
    Ok(())
}
