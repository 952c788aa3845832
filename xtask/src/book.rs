//! `cargo xtask examples` and `cargo xtask record`: every chapter's example, in book order,
//! found in the book itself.
//!
//! The book is the list. `src/SUMMARY.md` orders the chapters; each chapter shows the outputs it
//! includes (`{{#include outputs/NAME.txt}}`); each output's first line is the command that
//! produced it (`$ cargo run --example counter_race -- --strategy occ`). Running the examples is
//! running those commands, in that order; recording is saving what they print, normalised, back
//! into the file the command came from. A new output starts as a file holding just its `$ `
//! line: `cargo xtask record src/outputs/NAME.txt` fills it in. An output of many runs in a row
//! (`-- --runs 10`) is run and recorded only when named so.
//!
//! The examples run with `OCC_RESULTS=1`, so each also prints its machine-readable
//! `RESULT {json}` lines, which this shows with the rest. Recording keeps them out of what the
//! book shows: they go to `src/runs/NAME.jsonl` (one JSON object a line), which the book's tests
//! read, and the table of every result that chapters 1 and 8 show, `src/runs/table.md`, is
//! made from them.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result, bail};
use regex::Regex;

/// Where the `RESULT` lines of each recorded output go, and the table made of them.
pub const RUNS: &str = "src/runs";

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// One output the book shows, and the command that produces it.
pub struct Output {
    pub path: PathBuf,
    pub command: String,
}

impl Output {
    /// `cargo run --example NAME -- ARGS` as words.
    pub fn example_command(&self) -> Result<Vec<String>> {
        let words: Vec<String> =
            self.command.split_whitespace().map(String::from).collect();
        if words.len() < 4 || words[..3] != ["cargo", "run", "--example"] {
            bail!(
                "{}: its first line must be `$ cargo run --example NAME [-- ARGS]`, not `$ {}`",
                self.path.display(),
                self.command
            );
        }
        Ok(words)
    }

    /// Whether its command runs the example many times in a row (`--runs N`, N > 1).
    pub fn is_many_runs(&self) -> bool {
        let words: Vec<&str> = self.command.split_whitespace().collect();
        words
            .windows(2)
            .any(|w| w[0] == "--runs" && w[1].parse::<u32>().is_ok_and(|n| n > 1))
    }

    /// `src/runs/NAME.jsonl`: the `RESULT` lines of this output's recorded run.
    pub fn runs_path(&self) -> PathBuf {
        let stem = self.path.file_stem().unwrap_or_default().to_string_lossy();
        root().join(RUNS).join(format!("{stem}.jsonl"))
    }
}

/// Every output the book includes, in book order, each once.
pub fn outputs_in_book_order() -> Result<Vec<Output>> {
    let src = root().join("src");
    let summary = fs::read_to_string(src.join("SUMMARY.md"))
        .context("reading src/SUMMARY.md")?;
    let chapter = Regex::new(r"\]\(([^)]+\.md)\)")?;
    let include = Regex::new(r"\{\{#include (outputs/[^}:]+\.txt)\}\}")?;
    let mut outputs: Vec<Output> = Vec::new();
    for link in chapter.captures_iter(&summary) {
        let text = fs::read_to_string(src.join(&link[1]))
            .with_context(|| format!("reading src/{}", &link[1]))?;
        for found in include.captures_iter(&text) {
            let path = src.join(&found[1]);
            if outputs.iter().any(|o| o.path == path) {
                continue;
            }
            let first = fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?
                .lines()
                .next()
                .unwrap_or_default()
                .to_string();
            let command = first
                .strip_prefix("$ ")
                .with_context(|| {
                    format!(
                        "{}: the first line must be `$ COMMAND`",
                        path.display()
                    )
                })?
                .to_string();
            outputs.push(Output { path, command });
        }
    }
    Ok(outputs)
}

/// Runs every chapter's example in book order (only `selected` outputs, if any are named),
/// stopping at the first whose claim fails; with `record`, saves each output.
pub fn run_examples(record: bool, selected: &[&str]) -> Result<()> {
    let outputs = outputs_in_book_order()?;
    for name in selected {
        let wanted = root().join(name);
        if !outputs.iter().any(|o| o.path == wanted) {
            bail!("{name} is not an output any chapter includes");
        }
    }
    // A run of many runs in a row (`-- --runs 10`: ten failovers, ten minutes) repeats what
    // the example's single run already showed; it is recorded when named, not in every pass.
    let chosen = |output: &Output| {
        if selected.is_empty() {
            !output.is_many_runs()
        } else {
            selected.iter().any(|name| root().join(name) == output.path)
        }
    };
    // Only the examples to run are built, so that one being edited does not stop the others.
    let mut build = crate::cargo();
    build.args(["build", "--quiet"]).current_dir(root());
    for output in outputs.iter().filter(|o| chosen(o)) {
        build.args(["--example", &output.example_command()?[3]]);
    }
    if !build.status().context("running cargo build")?.success() {
        bail!("cargo build of the examples failed");
    }
    for output in &outputs {
        let mut words = output.example_command()?;
        if !chosen(output) {
            continue;
        }
        // What a command saves beside its output (`--timeline src/data/NAME.json`, the data of
        // a chart) is the recorded run's: a run that does not record saves it under target/.
        if !record {
            for word in &mut words {
                if let Some(name) = word.strip_prefix("src/data/") {
                    let scratch = root().join("target/tmp/unrecorded");
                    fs::create_dir_all(&scratch)?;
                    *word = scratch.join(name).to_string_lossy().into_owned();
                }
            }
        }
        println!("\n################ {}", output.command);
        let started = std::time::Instant::now();
        let stdout = run_command(&words).with_context(|| {
            format!("`{}` (for {})", output.command, output.path.display())
        })?;
        // On stderr, like the examples' progress: shown, never recorded.
        eprintln!("(ran in {:.1}s)", started.elapsed().as_secs_f64());
        if record {
            let (results, shown): (Vec<&str>, Vec<&str>) =
                stdout.lines().partition(|l| l.starts_with("RESULT "));
            if results.is_empty() {
                bail!("`{}` printed no RESULT line", output.command);
            }
            let shown: String = shown.iter().map(|l| normalise(l) + "\n").collect();
            fs::write(&output.path, format!("$ {}\n{shown}", output.command))?;
            let runs: String = results
                .iter()
                .map(|l| normalise(&l["RESULT ".len()..]) + "\n")
                .collect();
            fs::create_dir_all(root().join(RUNS))?;
            fs::write(output.runs_path(), runs)?;
        }
    }
    if record {
        fs::write(root().join(RUNS).join("table.md"), results_table(&outputs)?)?;
    }
    println!("\nAll examples ran and every check held.");
    Ok(())
}

/// Runs `cargo run --quiet --example NAME -- ARGS`, showing its output as it comes; its stdout.
/// Progress goes to stderr, which is shown but not recorded.
fn run_command(words: &[String]) -> Result<String> {
    let mut child = crate::cargo()
        .env("OCC_RESULTS", "1")
        .arg("run")
        .arg("--quiet")
        .args(&words[2..])
        .current_dir(root())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut stdout = child.stdout.take().context("stdout")?;
    let mut seen = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        let n = std::io::Read::read(&mut stdout, &mut buffer)?;
        if n == 0 {
            break;
        }
        std::io::stdout().write_all(&buffer[..n])?;
        seen.extend_from_slice(&buffer[..n]);
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("it failed ({status}); its output is above");
    }
    Ok(String::from_utf8_lossy(&seen).into_owned())
}

/// The table of the recorded results that count something, in book order, as chapter 1 shows
/// it: the example that printed each (and its flags), its variant, what a correct outcome would
/// be (`expected`) against what the run ended with (`final`), the conflicts it saw, and the
/// server.
pub fn results_table(outputs: &[Output]) -> Result<String> {
    let mut table = String::from(
        "| example | run | expected | ended at | conflicts | server |\n\
         | --- | --- | --: | --: | --: | --- |\n",
    );
    for output in outputs {
        let path = output.runs_path();
        let text = fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        for line in text.lines() {
            let result: serde_json::Value = serde_json::from_str(line)
                .with_context(|| format!("{}: not JSON: {line}", path.display()))?;
            let cell = |key: &str| match &result[key] {
                serde_json::Value::Null => String::new(),
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let variant =
                ["strategy", "mode", "part", "design", "writer", "pattern"]
                    .iter()
                    .map(|key| cell(key))
                    .find(|v| !v.is_empty())
                    .unwrap_or_default();
            if ["expected", "final", "conflicts"]
                .iter()
                .all(|key| cell(key).is_empty())
            {
                continue;
            }
            let args = output.command.split_once(" -- ").map(|(_, a)| a);
            let run = match args {
                Some(args) if variant.is_empty() => format!("`{args}`"),
                Some(args) => format!("{variant} (`{args}`)"),
                None => variant,
            };
            // What the run ended with: `final`, or `total` where that is the name it goes by.
            let ended = match (cell("final"), cell("expected")) {
                (ended, expected) if ended.is_empty() && !expected.is_empty() => {
                    cell("total")
                }
                (ended, _) => ended,
            };
            table.push_str(&format!(
                "| `{}` | {run} | {} | {} | {} | {} ({}) |\n",
                output.example_command()?[3],
                cell("expected"),
                ended,
                cell("conflicts"),
                cell("server_version"),
                cell("cluster"),
            ));
        }
    }
    Ok(table)
}

/// Replaces what changes from run to run and says nothing (index UUIDs, ports, elapsed times)
/// with a placeholder. What the run found (counters, conflicts, versions) is kept as it came.
fn normalise(line: &str) -> String {
    let rules = [
        (r#"("index_uuid": ?)"[^"]+""#, r#"$1"<uuid>""#),
        (r"127\.0\.0\.1:[0-9]+", "127.0.0.1:<port>"),
        (r#""elapsed_ms":[0-9]+"#, r#""elapsed_ms":"<ms>""#),
        (r#""client_cpu_ms":[0-9]+"#, r#""client_cpu_ms":"<ms>""#),
        (r" in [0-9]+\.[0-9]+s$", " in <time>"),
        (
            r" in [0-9]+\.[0-9]+s, client CPU [0-9]+\.[0-9]+s$",
            " in <time>, client CPU <time>",
        ),
    ];
    let mut line = line.to_string();
    for (pattern, replacement) in rules {
        let pattern = Regex::new(pattern).expect("a valid pattern");
        line = pattern.replace_all(&line, replacement).into_owned();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ports, UUIDs and times are replaced; counts stay.
    #[test]
    fn normalise_hides_what_changes_and_keeps_what_was_found() {
        assert_eq!(
            normalise(
                r#"RESULT {"final":84,"elapsed_ms":387} at http://127.0.0.1:9201 in 0.39s"#
            ),
            r#"RESULT {"final":84,"elapsed_ms":"<ms>"} at http://127.0.0.1:<port> in <time>"#
        );
        assert_eq!(
            normalise(r#"{"client_cpu_ms":270} in 0.44s, client CPU 0.27s"#),
            r#"{"client_cpu_ms":"<ms>"} in <time>, client CPU <time>"#
        );
        assert_eq!(
            normalise(r#"  "index_uuid": "AbC-12_x","#),
            r#"  "index_uuid": "<uuid>","#
        );
    }

    /// The book lists its outputs, and every one starts with a command this tool can run.
    #[test]
    fn every_output_in_the_book_has_a_command_to_run() {
        let outputs = outputs_in_book_order().unwrap();
        assert!(outputs.len() >= 5, "only {} outputs", outputs.len());
        for output in &outputs {
            output.example_command().unwrap();
        }
    }
}
