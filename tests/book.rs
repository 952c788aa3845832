//! The book and its code agree: every include names a region that exists, every internal link
//! leads somewhere, every chapter points at an example to run, every example is a listing first,
//! every saved output is for people and has its results beside it, and chapter 16's data has
//! the shape its prose relies on.
//!
//! The outputs are produced by `cargo xtask record` (`scripts/run-examples.sh --record`) against
//! a real Elasticsearch. Each example's own tests hold its chapter to its recorded run (the
//! numbers the prose quotes, the shape of the output); these hold the book together.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The chapters: every Markdown file directly in `src/`.
fn chapters() -> Vec<(PathBuf, String)> {
    let mut chapters: Vec<_> = fs::read_dir(root().join("src"))
        .expect("src/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .map(|p| {
            let text = fs::read_to_string(&p).expect("chapter text");
            (p, text)
        })
        .collect();
    chapters.sort();
    chapters
}

/// The chapters and the Markdown they include from folders below `src/` (each chapter's
/// exercises, `src/exercises/chNN.md`): every file whose includes, listings and links count.
fn pages() -> Vec<(PathBuf, String)> {
    let mut pages = chapters();
    let mut fragments: Vec<_> = fs::read_dir(root().join("src/exercises"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .map(|p| {
            let text = fs::read_to_string(&p).expect("a page");
            (p, text)
        })
        .collect();
    fragments.sort();
    pages.extend(fragments);
    pages
}

/// Every `{{#include FILE}}` and `{{#include FILE:ANCHOR}}` in `text`.
fn includes(text: &str) -> Vec<(String, Option<String>)> {
    text.match_indices("{{#include ")
        .filter_map(|(at, _)| {
            let rest = &text[at + "{{#include ".len()..];
            let inner = &rest[..rest.find("}}")?];
            Some(match inner.trim().split_once(':') {
                Some((file, anchor)) => {
                    (file.to_string(), Some(anchor.to_string()))
                }
                None => (inner.trim().to_string(), None),
            })
        })
        .collect()
}

/// Every include resolves, and every anchor it names is opened and closed in its file.
#[test]
fn every_include_names_an_existing_file_and_anchor() {
    let mut checked = 0;
    for (chapter, text) in pages() {
        for (file, anchor) in includes(&text) {
            let path = chapter.parent().unwrap().join(&file);
            let source = fs::read_to_string(&path).unwrap_or_else(|_| {
                panic!("{}: includes missing file {file}", chapter.display())
            });
            if let Some(anchor) = anchor {
                assert!(
                    source.contains(&format!("ANCHOR: {anchor}\n"))
                        && source.contains(&format!("ANCHOR_END: {anchor}\n")),
                    "{}: {file} has no anchor {anchor:?}",
                    chapter.display()
                );
            }
            checked += 1;
        }
    }
    assert!(
        checked > 10,
        "only {checked} includes found: is the book there?"
    );
}

/// Links to other chapters (`[text](chNN-....md#anchor)`) lead to files that exist and to
/// headings those files have, and SUMMARY.md lists every chapter file.
#[test]
fn internal_links_resolve_and_summary_lists_every_chapter() {
    let summary = fs::read_to_string(root().join("src/SUMMARY.md")).unwrap();
    for (chapter, text) in pages() {
        let name = chapter.file_name().unwrap().to_string_lossy().to_string();
        let fragment = chapter.parent() != Some(&root().join("src"));
        if name != "SUMMARY.md" && !fragment {
            assert!(
                summary.contains(&format!("({name})")),
                "SUMMARY.md does not list {name}"
            );
        }
        for (at, _) in text.match_indices("](") {
            let target = &text[at + 2..];
            let target = &target[..target.find(')').unwrap_or(0)];
            if target.starts_with("http")
                || target.starts_with('#')
                || target.is_empty()
            {
                continue;
            }
            let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
            // A fragment is pasted into its chapter, so its links, like the chapter's, start
            // from `src/`.
            let linked = root().join("src").join(file);
            assert!(linked.exists(), "{name}: broken link to {target}");
            if !anchor.is_empty() && file.ends_with(".md") {
                let text = fs::read_to_string(&linked).unwrap();
                assert!(
                    heading_ids(&text).iter().any(|id| id == anchor),
                    "{name}: {target} names no heading of {file}"
                );
            }
        }
    }
}

/// The ids mdBook gives a chapter's headings: lower case, spaces as `-`, only letters, digits,
/// `-` and `_` kept.
fn heading_ids(text: &str) -> Vec<String> {
    let mut in_fence = false;
    let mut ids = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        }
        let Some(heading) = line.strip_prefix('#').filter(|_| !in_fence) else {
            continue;
        };
        let heading = heading.trim_start_matches('#').trim();
        ids.push(
            heading
                .chars()
                .filter_map(|c| match c {
                    ' ' => Some('-'),
                    c if c.is_alphanumeric() || c == '-' || c == '_' => {
                        Some(c.to_ascii_lowercase())
                    }
                    _ => None,
                })
                .collect(),
        );
    }
    ids
}

/// Every chapter points the reader at an example to run.
#[test]
fn every_chapter_names_an_example_to_run() {
    for (chapter, text) in chapters() {
        let name = chapter.file_name().unwrap().to_string_lossy().to_string();
        if name == "SUMMARY.md" {
            continue;
        }
        assert!(
            text.contains("cargo run --example")
                || text.contains("scripts/run-examples.sh"),
            "{name} names no example to run"
        );
    }
}

/// The examples Cargo builds and tests, from `Cargo.toml`'s `[[example]]` sections.
fn examples() -> Vec<String> {
    let manifest = fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let mut examples = Vec::new();
    for section in manifest.split("[[example]]").skip(1) {
        let name = section
            .lines()
            .find_map(|l| l.strip_prefix("name = "))
            .expect("an [[example]] has a name")
            .trim_matches('"')
            .to_string();
        assert!(
            section.lines().any(|l| l.trim() == "test = true"),
            "example {name} is not tested by cargo test (test = true)"
        );
        examples.push(name);
    }
    examples
}

/// Every Rust listing the book shows is an include of a file that Cargo compiles and tests: an
/// example (each has `test = true`) or the readers' library. No Rust is typed into the prose.
#[test]
fn every_rust_listing_is_an_include_of_compiled_tested_code() {
    let examples = examples();
    let mut listings = 0;
    for (chapter, text) in pages() {
        let mut in_rust = false;
        for line in text.lines() {
            let fence = line.trim_start();
            if !in_rust && fence.starts_with("```rust") {
                in_rust = true;
                listings += 1;
                continue;
            }
            if in_rust && fence.starts_with("```") {
                in_rust = false;
                continue;
            }
            if !in_rust || line.trim().is_empty() {
                continue;
            }
            let included = line
                .trim()
                .strip_prefix("{{#include ")
                .or_else(|| line.trim().strip_prefix("{{#rustdoc_include "))
                .unwrap_or_else(|| {
                    panic!(
                        "{}: a Rust listing holds code typed into the prose: {line:?}",
                        chapter.display()
                    )
                });
            let relative = included.split([':', '}']).next().unwrap();
            // The included file, relative to the workspace's root.
            let path = chapter
                .parent()
                .unwrap()
                .join(relative)
                .canonicalize()
                .unwrap();
            let file = path.strip_prefix(root().canonicalize().unwrap()).unwrap();
            let file = file.to_string_lossy();
            let compiled = file
                .strip_prefix("examples/")
                .and_then(|f| f.strip_suffix(".rs"))
                .is_some_and(|name| examples.iter().any(|e| e == name))
                || file.starts_with("esbook/src/")
                || file.starts_with("provision/src/")
                || file.starts_with("exercises/src/");
            assert!(
                compiled,
                "{}: {file} is not an example or a source file of the book's crates",
                chapter.display()
            );
        }
    }
    assert!(
        listings > 5,
        "only {listings} Rust listings: is the book there?"
    );
}

/// Every example has an output in the book, so `scripts/run-examples.sh`, which runs the
/// commands of the book's outputs, runs every example; and every example the prose tells the
/// reader to run exists.
#[test]
fn every_example_is_run_by_the_book_and_every_named_one_exists() {
    let examples = examples();
    let run_by_the_book: Vec<String> = xtask::book::outputs_in_book_order()
        .expect("the book lists its outputs")
        .iter()
        .map(|output| output.example_command().expect("a command"))
        .map(|words| words[3].clone())
        .collect();
    for example in &examples {
        assert!(
            run_by_the_book.contains(example),
            "no output that a chapter includes was made by example {example}"
        );
    }
    let mut prose: Vec<(PathBuf, String)> = chapters();
    let readme = root().join("README.md");
    prose.push((readme.clone(), fs::read_to_string(&readme).unwrap()));
    for (file, text) in prose {
        for (at, _) in text.match_indices("cargo run --example ") {
            let name: String = text[at + "cargo run --example ".len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            assert!(
                examples.contains(&name),
                "{}: names example {name:?}, which does not exist",
                file.display()
            );
        }
    }
}

/// Each Elasticsearch version is written once, in `provision/src/facts.rs`: no other file the
/// project keeps names it, except the recorded outputs, their results, data and charts, which
/// show what the server said.
#[test]
fn versions_are_written_once() {
    let listed = std::process::Command::new("git")
        .args(["ls-files", "--cached", "--others", "--exclude-standard"])
        .current_dir(root())
        .output()
        .expect("git runs");
    assert!(listed.status.success());
    let versions = [
        provision::facts::RELEASE.version,
        provision::facts::SCRIPTING.version,
    ];
    let mut checked = 0;
    for file in String::from_utf8_lossy(&listed.stdout).lines() {
        if file == "provision/src/facts.rs"
            || file.starts_with("src/outputs/")
            || file.starts_with("src/runs/")
            || file.starts_with("src/data/")
            || file.starts_with("src/charts/")
            || file == "Cargo.lock"
        {
            continue;
        }
        let Ok(text) = fs::read_to_string(root().join(file)) else {
            continue;
        };
        checked += 1;
        for version in versions {
            assert!(
                !text.contains(version),
                "{file} names Elasticsearch {version}: name it in provision/src/facts.rs only"
            );
        }
    }
    assert!(checked > 20, "only {checked} files checked");
}

/// Every saved output shows what a person reads, ends with the line of a run whose checks held,
/// and has its run's results recorded beside it.
#[test]
fn every_saved_output_is_for_people_and_has_its_results() {
    assert!(saved_results().len() >= 16);
}

/// The `RESULT {json}` lines of each saved output, by file stem: `cargo xtask record` keeps them
/// in `src/runs/NAME.jsonl`, out of what the book shows. Every saved output has its runs, and
/// no saved output shows a result line or a check.
fn saved_results() -> BTreeMap<String, Vec<Value>> {
    let dir = root().join("src/outputs");
    let mut results = BTreeMap::new();
    for entry in fs::read_dir(&dir).expect("src/outputs/").flatten() {
        let path = entry.path();
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("$ cargo run --example "),
            "{} does not start with the command that made it",
            path.display()
        );
        for line in text.lines() {
            assert!(
                !line.starts_with("RESULT {") && !line.starts_with("claim holds"),
                "{} shows a line for machines, not people: {line}",
                path.display()
            );
        }
        let last = text.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("Checked: all ")
                && last.contains(" held, on Elasticsearch "),
            "{} does not end with the closing line of a run whose checks held: {last:?}",
            path.display()
        );
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        let runs = root().join(format!("src/runs/{stem}.jsonl"));
        let runs = fs::read_to_string(&runs)
            .unwrap_or_else(|_| panic!("no {}", runs.display()));
        let lines: Vec<Value> = runs
            .lines()
            .map(|json| serde_json::from_str(json).expect("a result is JSON"))
            .collect();
        assert!(!lines.is_empty(), "{stem}: no result recorded");
        for line in &lines {
            assert!(
                line["server_version"].is_string(),
                "{stem}: no server_version"
            );
            assert!(line["cluster"].is_string(), "{stem}: no cluster path");
        }
        results.insert(stem, lines);
    }
    results
}

/// Chapter 16's data has the shape its prose relies on: every cell of the grid (each strategy at
/// each number of clients, Rust, the notebook's Python and the ceiling), the machine's core
/// count and each strategy's server version named, no increment lost by `occ` or `server` in
/// Rust and the notebook's shortfalls explained by threads that died of a 409, `none` losing
/// some once four clients race; the race as readers run it
/// beside the notebook; the recorded timeline consistent (OCC counts all twelve, no OCC write
/// computed from a stale read); every chart the book shows present.
#[test]
fn contention_data_has_every_cell_and_names_machine_and_servers() {
    let read = |name: &str| -> Value {
        let path = root().join("src/data").join(name);
        serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap()
    };
    let data = read("contention.json");
    assert!(
        data["machine"]["cores"].as_u64().unwrap() >= 1,
        "core count"
    );
    let clients = [1, 2, 4, 8, 16, 32];
    assert_eq!(data["settings"]["clients"], serde_json::json!(clients));
    let cells = data["cells"].as_array().unwrap();
    for strategy in ["none", "occ", "server"] {
        let server = &data["servers"][strategy];
        assert!(
            server["version"].as_str().is_some_and(|v| !v.is_empty()),
            "{strategy}: no server version"
        );
        assert!(server["python_client"].is_string(), "{strategy}: no client");
        for n in clients {
            let cell = cells
                .iter()
                .find(|c| c["strategy"] == strategy && c["clients"] == n)
                .unwrap_or_else(|| panic!("no cell {strategy} x {n}"));
            for side in ["rust", "notebook", "ceiling"] {
                assert!(
                    cell[side]["correct_per_s"].as_f64().unwrap() > 0.0,
                    "{strategy} x {n}: no {side} throughput"
                );
            }
            let rust = &cell["rust"];
            for field in ["p50_ms", "p99_ms", "cpu_ms", "conflicts_per_success"] {
                assert!(rust[field].is_number(), "{strategy} x {n}: no {field}");
            }
            if strategy == "none" {
                if n >= 4 {
                    assert!(
                        rust["lost"].as_u64().unwrap() > 0,
                        "none x {n} lost none"
                    );
                }
            } else {
                assert_eq!(
                    rust["lost"], 0,
                    "{strategy} x {n}: Rust lost increments"
                );
                assert_eq!(rust["failed"], 0, "{strategy} x {n}: Rust gave up");
                // The notebook's code has no retry around a 409 that outlasts
                // retry_on_conflict: its thread dies, its remaining increments undone. Any
                // shortfall must be explained so.
                let notebook = &cell["notebook"];
                assert!(
                    notebook["lost"] == 0
                        || !notebook["thread_errors"]
                            .as_array()
                            .unwrap()
                            .is_empty(),
                    "{strategy} x {n}: the notebook fell short with no thread dying"
                );
            }
        }
    }
    let readers = data["readers_race"].as_array().unwrap();
    for strategy in ["none", "occ", "server"] {
        let race = readers
            .iter()
            .find(|r| r["strategy"] == strategy)
            .unwrap_or_else(|| panic!("no readers' race for {strategy}"));
        for build in ["dev", "notebook"] {
            assert!(race[build]["wall_ms"].as_f64().unwrap() > 0.0, "{strategy}");
            assert!(race[build]["cpu_ms"].as_f64().unwrap() > 0.0, "{strategy}");
        }
    }

    // Chapter 16 quotes the range of the Rust / Python ratios over the grid, and
    // the readers' build's ratios: each is the data's, rounded as the tables are.
    let chapter = harness::recorded::chapter("ch16-00-what-contention-costs.md");
    let ratio = |a: &Value, b: &Value, key: &str| {
        a[key].as_f64().unwrap() / b[key].as_f64().unwrap()
    };
    let range = |key: &str| {
        let ratios: Vec<f64> = cells
            .iter()
            .map(|c| ratio(&c["rust"], &c["notebook"], key))
            .collect();
        let min = ratios.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = ratios.iter().cloned().fold(0.0, f64::max);
        (format!("{min:.2}"), format!("{max:.2}"))
    };
    let quoted = |pattern: &str| {
        let found = harness::recorded::quoted_all(&chapter, pattern);
        assert!(!found.is_empty(), "chapter 16 no longer says {pattern:?}");
        found
    };
    let (cpu, wall) = (range("cpu_ms"), range("wall_ms"));
    let used = r"Rust used (\d\.\d\d) to (\d\.\d\d) of the notebook's client\s+CPU";
    assert_eq!(quoted(used)[0], cpu.0);
    let used = r"Rust used \d\.\d\d to (\d\.\d\d) of the notebook's client\s+CPU";
    assert_eq!(quoted(used)[0], cpu.1);
    assert_eq!(quoted(r"from\s+(\d\.\d\d) to \d\.\d\d of it")[0], cpu.0);
    assert_eq!(quoted(r"from\s+\d\.\d\d to (\d\.\d\d) of it")[0], cpu.1);
    assert_eq!(
        quoted(r"and (\d\.\d\d) to \d\.\d\d of its\s+wall time")[0],
        wall.0
    );
    assert_eq!(
        quoted(r"and \d\.\d\d to (\d\.\d\d) of its\s+wall time")[0],
        wall.1
    );
    let dev = |key: &str| -> Vec<String> {
        ["none", "occ", "server"]
            .iter()
            .map(|s| {
                let race = readers.iter().find(|r| r["strategy"] == *s).unwrap();
                format!("{:.2}", ratio(&race["dev"], &race["notebook"], key))
            })
            .collect()
    };
    let said = |what: &str| -> String {
        let three = r"(\d\.\d\d, \d\.\d\d\s+and\s+\d\.\d\d)";
        let found = quoted(&format!("{three}\\s+of {what}"));
        found[0].split_whitespace().collect::<Vec<_>>().join(" ")
    };
    let listed = |v: Vec<String>| format!("{}, {} and {}", v[0], v[1], v[2]);
    assert_eq!(
        said(r"the notebook's\s+wall\s+time"),
        listed(dev("wall_ms"))
    );
    assert_eq!(said(r"its\s+CPU"), listed(dev("cpu_ms")));

    let timeline = read("timeline.json");
    let races = timeline["races"].as_array().unwrap();
    let race = |s: &str| races.iter().find(|r| r["strategy"] == s).unwrap();
    assert_eq!(race("occ")["final"], 12);
    assert!(race("none")["final"].as_u64().unwrap() <= 12);
    let mut last_read = BTreeMap::new();
    for op in race("occ")["ops"].as_array().unwrap() {
        let client = op["client"].as_u64().unwrap();
        let seq = op["seq_no"].as_i64().unwrap();
        match op["kind"].as_str().unwrap() {
            "read" => {
                last_read.insert(client, seq);
            }
            "write" => assert_eq!(seq, last_read[&client] + 1, "a stale OCC write"),
            _ => {}
        }
    }

    for chart in [
        "contention-throughput.svg",
        "contention-conflicts.svg",
        "contention-ceiling.svg",
        "contention-latency.svg",
        "timeline-none.svg",
        "timeline-occ.svg",
        "sequence-lost-update.svg",
        "sequence-conditional-write.svg",
    ] {
        let svg = fs::read_to_string(root().join("src/charts").join(chart))
            .unwrap_or_else(|_| panic!("no chart {chart}"));
        assert!(svg.starts_with("<svg"), "{chart} is not an SVG");
    }
}

/// The hot-document run of chapter 16 (`cargo xtask contention --hot`): the single hot document
/// (`occ`) and chapter 15's sharded counter at every number of clients, in one run on one
/// server: neither loses or gives up an increment, and from two clients on the sharded counter
/// sees fewer conflicts per increment and counts faster, as the chapter says.
#[test]
fn hot_document_data_compares_occ_and_sharded_in_one_run() {
    let path = root().join("src/data/hot/contention.json");
    let data: Value =
        serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        data["servers"]["occ"]["version"],
        data["servers"]["sharded"]["version"]
    );
    assert!(
        data["servers"]["occ"]["version"].is_string(),
        "no server version"
    );
    let cells = data["cells"].as_array().unwrap();
    let cell = |strategy: &str, n: u64| -> &Value {
        cells
            .iter()
            .find(|c| c["strategy"] == strategy && c["clients"] == n)
            .unwrap_or_else(|| panic!("no cell {strategy} x {n}"))
    };
    for n in [1, 2, 4, 8, 16, 32] {
        for strategy in ["occ", "sharded"] {
            let rust = &cell(strategy, n)["rust"];
            assert_eq!(rust["lost"], 0, "{strategy} x {n} lost increments");
            assert_eq!(rust["failed"], 0, "{strategy} x {n} gave up");
        }
        if n >= 2 {
            let (occ, sharded) =
                (&cell("occ", n)["rust"], &cell("sharded", n)["rust"]);
            let f = |v: &Value, k: &str| v[k].as_f64().unwrap();
            assert!(
                f(sharded, "conflicts_per_success")
                    < f(occ, "conflicts_per_success"),
                "x {n}: sharded conflicted as often as the hot document"
            );
            assert!(
                f(sharded, "correct_per_s") > f(occ, "correct_per_s"),
                "x {n}: sharded was not faster"
            );
        }
    }
    for chart in ["hot-throughput.svg", "hot-conflicts.svg", "hot-cells.md"] {
        assert!(root().join("src/charts").join(chart).exists(), "no {chart}");
    }
}

/// An example is a listing first: the lesson is short and the book shows it. Counted from the
/// files (the lines before `#[cfg(test)]`, and of those the lines inside the anchored regions,
/// or whole files, that the chapters include): the median
/// example has at most 200 lines, none more than 350, and the book shows at least 40% of each;
/// and the readers' library, `esbook/src`, holds at most 1,500 lines in all.
#[test]
fn examples_are_listings_first_and_the_readers_library_is_small() {
    let mut shown_regions: Vec<(String, Option<String>)> = Vec::new();
    for (chapter, text) in chapters() {
        for (file, anchor) in includes(&text) {
            let path = chapter.parent().unwrap().join(&file);
            if let Ok(path) = path.canonicalize() {
                shown_regions.push((path.to_string_lossy().into_owned(), anchor));
            }
        }
    }
    let mut sizes = Vec::new();
    let mut too_little_shown = Vec::new();
    for name in examples() {
        let path = root().join(format!("examples/{name}.rs"));
        let text = fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.split('\n').collect();
        let body = lines
            .iter()
            .position(|l| l.trim().starts_with("#[cfg(test)]"))
            .unwrap_or(lines.len());
        let key = path.canonicalize().unwrap().to_string_lossy().into_owned();
        let anchors: Vec<&Option<String>> = shown_regions
            .iter()
            .filter(|(file, _)| *file == key)
            .map(|(_, anchor)| anchor)
            .collect();
        let mut shown = vec![anchors.contains(&&None); body];
        for anchor in anchors.iter().filter_map(|a| a.as_deref()) {
            let marks = |line: &str, mark: &str| {
                line.split_once(mark).is_some_and(|(_, rest)| {
                    rest.split_whitespace().next() == Some(anchor)
                })
            };
            let mut inside = false;
            for (i, line) in lines.iter().enumerate() {
                if marks(line, "ANCHOR_END:") {
                    inside = false;
                } else if marks(line, "ANCHOR:") {
                    inside = true;
                } else if inside && i < body {
                    shown[i] = true;
                }
            }
        }
        let shown = shown.iter().filter(|s| **s).count();
        if shown * 10 < body * 4 {
            too_little_shown.push(format!("{name}: {shown} of {body} lines shown"));
        }
        sizes.push((body, name));
    }
    sizes.sort();
    let median = sizes[sizes.len() / 2].0;
    let largest = sizes.last().unwrap();
    assert!(median <= 200, "the median example has {median} lines");
    assert!(largest.0 <= 350, "{} has {} lines", largest.1, largest.0);
    assert!(too_little_shown.is_empty(), "{too_little_shown:?}");

    let library: usize = fs::read_dir(root().join("esbook/src"))
        .unwrap()
        .flatten()
        .map(|e| fs::read_to_string(e.path()).unwrap().lines().count())
        .sum();
    assert!(library <= 1500, "esbook/src holds {library} lines");
}
