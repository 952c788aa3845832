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

/// The id a heading names itself (`Not `_version` {#not-version}` names `not-version`).
fn named_id(heading: &str) -> Option<&str> {
    let (_, id) = heading.trim_end().strip_suffix('}')?.rsplit_once(" {#")?;
    Some(id)
}

/// The ids mdBook gives a chapter's headings: the one a heading names (`## Title {#id}`: a
/// heading whose text has a `_`, which the Hinglish edition could not keep in an id), else
/// its text in lower case, spaces as `-`, only letters, digits, `-` and `_` kept.
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
        if let Some(id) = named_id(heading) {
            ids.push(id.to_string());
            continue;
        }
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

/// A heading whose text holds a `_` (an identifier, in code) names its id without one
/// (`## `_seq_no` is per shard {#seq-no-is-per-shard}`): the Hinglish edition gives a heading
/// its English id by that same `{#id}`, and mdbook-gettext escapes a `_` in it, which breaks
/// every link to the heading in that edition.
#[test]
fn headings_with_an_underscore_name_their_id() {
    for (page, text) in pages() {
        for id in heading_ids(&text) {
            assert!(
                !id.contains('_'),
                "{}: the heading with id {id} needs an id of its own without `_`, \
                 `## ... {{#{}}}`, and the links to it that id",
                page.display(),
                id.replace('_', "-").trim_matches('-')
            );
        }
    }
}

/// A heading that names its id in the English (`## Not `_version` {#not-version}`) keeps that
/// id in the Hinglish edition by itself: mdbook-gettext puts the English `{#id}` back after the
/// translated text, so a translation that names it again shows `{#not-version}` as text.
#[test]
fn translated_headings_do_not_name_an_english_id_again() {
    let named: Vec<String> = pages()
        .iter()
        .flat_map(|(_, text)| {
            text.lines()
                .filter(|l| l.starts_with('#'))
                .filter_map(named_id)
                .map(|id| format!(" {{#{id}}}"))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(!named.is_empty(), "no heading names its id");
    let catalogue = fs::read_to_string(xtask::i18n::catalogue_path()).unwrap();
    for message in xtask::i18n::parse(&catalogue).unwrap() {
        for id in &named {
            assert!(
                !message.translation.ends_with(id.as_str()),
                "the translation of {:?} ends with{id}, which the English heading already names",
                message.id
            );
        }
    }
}

/// The sidebar's number of every page `src/SUMMARY.md` numbers, as mdBook numbers them: the
/// list items in order across the parts, a nested item as `N.M`; pages outside the list
/// (the quick start before it, the back matter after it) have none.
fn sidebar_numbers() -> BTreeMap<String, String> {
    let summary = fs::read_to_string(root().join("src/SUMMARY.md")).unwrap();
    let item = regex::Regex::new(r"^( *)- \[[^\]]+\]\(([^)]+\.md)\)").unwrap();
    let mut numbers = BTreeMap::new();
    let mut counters: Vec<u32> = Vec::new();
    for line in summary.lines() {
        let Some(found) = item.captures(line) else {
            continue;
        };
        let depth = found[1].len() / 2;
        counters.truncate(depth + 1);
        counters.resize(depth + 1, 0);
        counters[depth] += 1;
        let number: Vec<String> = counters.iter().map(u32::to_string).collect();
        numbers.insert(found[2].to_string(), number.join("."));
    }
    numbers
}

/// "Chapter N" means what the sidebar shows as N, in both editions: a link `[chapter N](file)`
/// leads to the page numbered N (or to a section N.M of it), every "chapter N", "chapter N.M"
/// and "chapters N to M" names a number the sidebar has, a translation names the same chapter
/// numbers as its English, and a diagram captioned "Chapter N" is shown on page N.
#[test]
fn chapter_numbers_are_the_sidebars() {
    let numbers = sidebar_numbers();
    assert_eq!(numbers["ch01-00-introduction.md"], "1");
    assert_eq!(numbers["ch03-00-lost-update.md"], "3");
    assert_eq!(
        numbers["ch17-01-what-an-acknowledgement-survives.md"],
        "17.1"
    );
    assert!(!numbers.contains_key("quick-start.md"));
    let known: Vec<&String> = numbers.values().collect();
    let linked =
        regex::Regex::new(r"(?i)\[chapters? (\d+(?:\.\d+)?)[^\]]*\]\(([^)#]+\.md)")
            .unwrap();
    let named = regex::Regex::new(r"(?i)\bchapters? (\d+(?:\.\d+)?)").unwrap();
    let range = regex::Regex::new(
        r"(?i)\bchapters (\d+(?:\.\d+)?) (?:to|and) (\d+(?:\.\d+)?)",
    )
    .unwrap();
    let check = |place: &str, text: &str| {
        for found in linked.captures_iter(text) {
            let target = found[2].trim_start_matches("../");
            let Some(number) = numbers.get(target) else {
                continue;
            };
            let said = &found[1];
            let top = number.split('.').next().unwrap();
            assert!(
                said == number || said == top,
                "{place}: {:?} links to {target}, which the sidebar numbers {number}",
                &found[0]
            );
        }
        let mut said: Vec<String> = named
            .captures_iter(text)
            .map(|c| c[1].to_string())
            .collect();
        said.extend(range.captures_iter(text).map(|c| c[2].to_string()));
        for n in said {
            assert!(
                known.contains(&&n),
                "{place}: names chapter {n}, which the sidebar does not have"
            );
        }
    };
    let mut checked = 0;
    for (page, text) in pages() {
        check(&page.display().to_string(), &text);
        checked += 1;
    }
    assert!(checked > 20, "only {checked} pages");

    let catalogue = fs::read_to_string(xtask::i18n::catalogue_path()).unwrap();
    let numbers_in = |text: &str| {
        let mut found: Vec<String> = named
            .captures_iter(text)
            .map(|c| c[1].to_string())
            .collect();
        found.sort();
        found
    };
    for message in xtask::i18n::parse(&catalogue).unwrap() {
        if message.translation.is_empty() {
            continue;
        }
        check(
            &format!("po/hi-Latn.po {:?}", message.id),
            &message.translation,
        );
        assert_eq!(
            numbers_in(&message.translation),
            numbers_in(&message.id),
            "the translation names other chapters than its English: {:?}",
            message.id
        );
    }

    let caption = regex::Regex::new(r"Chapter (\d+(?:\.\d+)?):").unwrap();
    for entry in fs::read_dir(root().join("src/charts")).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let svg = fs::read_to_string(entry.path()).unwrap_or_default();
        let Some(said) = caption.captures(&svg).map(|c| c[1].to_string()) else {
            continue;
        };
        for (page, text) in chapters() {
            let file = page.file_name().unwrap().to_string_lossy().to_string();
            if text.contains(&format!("charts/{name}")) {
                assert_eq!(
                    numbers.get(&file),
                    Some(&said),
                    "{name} is captioned chapter {said} and shown on {file}"
                );
            }
        }
    }
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
            .filter(|c| c["notebook"].is_object()) // the notebook's three only
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
    assert_eq!(
        quoted(r"from\s+(\d\.\d\d)\s+to\s+\d\.\d\d\s+of it")[0],
        cpu.0
    );
    assert_eq!(
        quoted(r"from\s+\d\.\d\d\s+to\s+(\d\.\d\d)\s+of it")[0],
        cpu.1
    );
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
        said(r"the\s+notebook's\s+wall\s+time"),
        listed(dev("wall_ms"))
    );
    assert_eq!(said(r"its\s+CPU"), listed(dev("cpu_ms")));

    // Every other number chapter 16 quotes from the grid, computed as the chapter describes it
    // and rounded as it rounds. A space in a pattern stands for any run of whitespace.
    let says = |pattern: &str| quoted(&pattern.replace(' ', r"\s+"));
    let is = |pattern: &str, expected: String| {
        assert_eq!(says(pattern)[0], expected, "chapter 16: {pattern:?}");
    };
    let cell = |s: &str, n: u64| -> &Value {
        cells
            .iter()
            .find(|c| c["strategy"] == s && c["clients"] == n)
            .unwrap_or_else(|| panic!("no cell {s} x {n}"))
    };
    let get = |s: &str, n: u64, side: &str, key: &str| -> f64 {
        cell(s, n)[side][key].as_f64().unwrap()
    };
    let rust = |s: &str, n: u64, key: &str| get(s, n, "rust", key);
    let commas = |v: u64| -> String {
        if v >= 1000 {
            format!("{},{:03}", v / 1000, v % 1000)
        } else {
            v.to_string()
        }
    };
    // "about 1,100": to the nearest hundred.
    let hundreds = |x: f64| commas((x / 100.0).round() as u64 * 100);
    let max_of = |v: Vec<f64>| v.into_iter().fold(f64::NEG_INFINITY, f64::max);
    let min_of = |v: Vec<f64>| v.into_iter().fold(f64::INFINITY, f64::min);
    let upto16 = [1u64, 2, 4, 8, 16];
    let increments = data["settings"]["increments"].as_u64().unwrap();
    is(
        r"A \*\*cell\*\* is one strategy at one number of clients: (\d+) increments",
        increments.to_string(),
    );
    assert_eq!(
        data["settings"]["reps"], 3,
        "the chapter says three times over"
    );
    assert!(
        data["servers"]["sharded"]["version"].is_string(),
        "sharded: no server version"
    );
    for n in clients {
        assert_eq!(rust("sharded", n, "lost"), 0.0, "sharded x {n} lost");
        assert!(
            cell("sharded", n)["notebook"].is_null(),
            "sharded has no Python"
        );
    }

    // The machine, the servers and the clients, as the chapter names them.
    let machine = &data["machine"];
    assert_eq!(machine["cores"], 2, "the chapter says two cores");
    is(
        r"two cores of an (\S+ \S+)",
        machine["cpu"].as_str().unwrap().to_string(),
    );
    is(
        r"AMD EPYC and (\d+) GiB",
        format!("{:.0}", machine["memory_gib"].as_f64().unwrap()),
    );
    let version = |s: &str, key: &str| -> String {
        let v = data["servers"][s][key].as_str().unwrap();
        v.split('.').take(2).collect::<Vec<_>>().join(".")
    };
    is(r"the (\d+)\.x client for the release", {
        let v = version("occ", "python_client");
        v.split('.').next().unwrap().to_string()
    });
    is(
        r"(\d+\.\d+) talks to it",
        version("server", "python_client"),
    );
    for built in says(r"the (\d+)\.x build") {
        assert_eq!(
            built,
            version("server", "version").split('.').next().unwrap()
        );
    }
    is(
        r"\((\d+)\.x for .occ.",
        version("occ", "version")
            .split('.')
            .next()
            .unwrap()
            .to_string(),
    );
    is(r"(\d+\.\d+) for .server.\)", version("server", "version"));
    for s in ["none", "occ", "sharded"] {
        assert_eq!(
            data["servers"][s]["version"], data["servers"]["occ"]["version"],
            "{s}"
        );
    }
    is(r"race with (\d+) to \d+ clients", clients[0].to_string());
    is(
        r"race with \d+ to (\d+) clients",
        clients[clients.len() - 1].to_string(),
    );
    is(
        r"\((\d+) by one client,",
        cell("occ", 1)["per_client"].to_string(),
    );
    is(
        r"by one client, (\d+) each by",
        cell("occ", 32)["per_client"].to_string(),
    );
    for race in readers {
        is(r"(\d+) clients x \d+, medians", race["clients"].to_string());
        is(
            r"\d+ clients x (\d+), medians",
            race["per_client"].to_string(),
        );
    }
    assert_eq!(
        data["settings"]["race_reps"], 5,
        "the chapter says medians of five runs"
    );

    // Throughput.
    let cps = |s: &str, n: u64| rust(s, n, "correct_per_s");
    is(
        r"about (\S+) correct increments per second alone",
        hundreds(cps("none", 1)),
    );
    is(
        r"per second alone, (\d+) with 32 clients",
        hundreds(cps("none", 32)),
    );
    let lost = |n: u64| rust("none", n, "lost") as u64;
    is(r"with two clients it lost (\d+) of", lost(2).to_string());
    is(
        r"with two clients it lost \d+ of (\d+) increments",
        increments.to_string(),
    );
    is(r"in its worst run, with eight (\d+)", lost(8).to_string());
    is(
        r"with 32 all but (\d+)\.",
        (increments - lost(32)).to_string(),
    );
    let occ16: Vec<f64> = upto16.iter().map(|&n| cps("occ", n)).collect();
    is(
        r"between about (\S+) and \S+ increments per second from 1 to 16",
        hundreds(min_of(occ16.clone())),
    );
    is(
        r"between about \S+ and (\S+) increments per second from 1 to 16",
        hundreds(max_of(occ16)),
    );
    is(r"then falls to about (\S+) at 32", hundreds(cps("occ", 32)));
    is(
        r"from about (\S+) per second with one client",
        hundreds(cps("server", 1)),
    );
    is(
        r"with one client to (\S+) with eight",
        hundreds(cps("server", 8)),
    );
    is(
        r"with eight and (\S+) with 16:",
        hundreds(cps("server", 16)),
    );
    is(
        r"falls back to about (\S+), as updates",
        hundreds(cps("server", 32)),
    );
    is(
        r"from about (\S+) per second alone to",
        hundreds(cps("sharded", 1)),
    );
    is(
        r"per second alone to (\S+) with 16 clients",
        hundreds(cps("sharded", 16)),
    );
    is(
        r"(\d\.\d) times what .occ. counted there",
        format!("{:.1}", cps("sharded", 16) / cps("occ", 16)),
    );
    is(
        r"falls back to about (\S+), still level",
        hundreds(cps("sharded", 32)),
    );
    is(
        r"still level with .server.'s (\S+)\.",
        hundreds(cps("server", 32)),
    );
    for n in [16, 32] {
        let level = cps("sharded", n) / cps("server", n);
        assert!(
            (0.9..1.1).contains(&level),
            "sharded x {n} not level with server"
        );
    }
    for n in clients {
        // "the best throughput on one document here"
        for other in ["none", "occ"] {
            assert!(
                cps("server", n) > cps(other, n),
                "server x {n} below {other}"
            );
        }
    }

    // Conflicts.
    let conflicts = |s: &str, n: u64| rust(s, n, "conflicts_per_success");
    let two = |x: f64| format!("{x:.2}");
    is(
        r"With two clients, .occ. paid (\d\.\d\d) conflicts",
        two(conflicts("occ", 2)),
    );
    is(r"landed; with eight, (\d\.\d\d);", two(conflicts("occ", 8)));
    is(r"with 32, (\d\.\d\d)\. Each", two(conflicts("occ", 32)));
    is(
        r"client sent about (\d\.\d) requests per increment instead of 2",
        format!("{:.1}", 2.0 * (1.0 + conflicts("occ", 32))),
    );
    is(
        r"paid (\d\.\d\d) with two clients",
        two(conflicts("sharded", 2)),
    );
    is(
        r"two clients, (\d\.\d\d) with eight and",
        two(conflicts("sharded", 8)),
    );
    is(
        r"with eight and (\d\.\d\d) with 32:",
        two(conflicts("sharded", 32)),
    );
    let share = max_of(
        clients[1..]
            .iter()
            .map(|&n| conflicts("sharded", n) / conflicts("occ", n))
            .collect(),
    );
    assert!(
        share <= 0.25,
        "sharded's conflicts above a quarter of occ's: {share}"
    );
    let first = clients
        .iter()
        .find(|&&n| conflicts("server", n) > 0.0)
        .unwrap();
    is(
        r"From (\d+) clients on, some updates exhausted",
        first.to_string(),
    );
    is(r"no conflict up to (\w+) clients", {
        let before = clients[clients.iter().position(|n| n == first).unwrap() - 1];
        ["one", "two", "four", "eight"][before.trailing_zeros() as usize]
            .to_string()
    });
    is(
        r"\((\d\.\d\d) per increment at 16",
        two(conflicts("server", 16)),
    );
    is(r"at 16, (\d\.\d\d) at 32\)", two(conflicts("server", 32)));

    // Latency.
    let p50 = max_of(
        ["none", "occ", "server", "sharded"]
            .iter()
            .flat_map(|s| upto16.map(|n| rust(s, n, "p50_ms")))
            .collect(),
    );
    is(
        r"median increment takes about (\d+) ms at most for every strategy up to 16",
        format!("{p50:.0}"),
    );
    let p99 = |s: &str, n: u64| rust(s, n, "p99_ms");
    is(
        r"p99 grows from (\d\.\d) ms alone",
        format!("{:.1}", p99("occ", 1)),
    );
    is(
        r"ms alone to (\d+) ms at eight",
        format!("{:.0}", p99("occ", 8)),
    );
    is(
        r"clients and (\d+) ms at 32, as",
        format!("{:.0}", p99("occ", 32)),
    );
    is(
        r".server.'s p99 stays at (\d+) ms or less up to 16",
        format!("{:.0}", max_of(upto16.map(|n| p99("server", n)).to_vec())),
    );
    is(
        r"at 32 it reaches (\d+) ms",
        format!("{:.0}", p99("server", 32)),
    );
    is(
        r"its p99 reaches (\d+) ms at 32 clients",
        format!("{:.0}", p99("sharded", 32)),
    );
    for n in &clients[1..] {
        // "a p99 a fraction of occ's"
        assert!(p99("server", *n) < p99("occ", *n), "server x {n}: p99");
    }

    // Against the ceiling: the best uncontended throughput over the client counts.
    let ceiling = |s: &str| {
        max_of(
            clients
                .map(|n| get(s, n, "ceiling", "correct_per_s"))
                .to_vec(),
        )
    };
    is(
        r"it was about (\S+) read-and-write pairs per second for .none.",
        hundreds(ceiling("none")),
    );
    is(r".none., (\S+) for .occ. and", hundreds(ceiling("occ")));
    is(
        r"for .occ. and (\S+) for .sharded.",
        hundreds(ceiling("sharded")),
    );
    is(r"and (\S+) scripted updates", hundreds(ceiling("server")));
    assert!(
        ceiling("sharded") < ceiling("occ").min(ceiling("none")),
        "sharded's ceiling is no longer the lowest of the three"
    );
    let pct = |s: &str, n: u64| 100.0 * cps(s, n) / ceiling(s);
    let whole = |x: f64| format!("{x:.0}");
    let occ_pct: Vec<f64> = upto16.iter().map(|&n| pct("occ", n)).collect();
    is(
        r"kept .occ. between (\d+)% and \d+% of",
        whole(min_of(occ_pct.clone())),
    );
    is(
        r"kept .occ. between \d+% and (\d+)% of",
        whole(max_of(occ_pct)),
    );
    is(
        r"from 1 to 16 clients, and (\d+)% at 32;",
        whole(pct("occ", 32)),
    );
    is(r"from (\d+)% of its ceiling alone", whole(pct("none", 1)));
    is(
        r"alone down to (\d+)% with 32 clients",
        whole(pct("none", 32)),
    );
    let four_to_16 = |s: &str| -> (String, String) {
        let v: Vec<f64> = [4, 8, 16].iter().map(|&n| pct(s, n)).collect();
        (whole(min_of(v.clone())), whole(max_of(v)))
    };
    let reached = r"reached (\d+) to \d+% of its ceiling with 4 to 16 clients";
    let reached_max = r"reached \d+ to (\d+)% of its ceiling with 4 to 16 clients";
    let (server, sharded) = (four_to_16("server"), four_to_16("sharded"));
    assert_eq!(says(reached), [server.0, sharded.0]);
    assert_eq!(says(reached_max), [server.1, sharded.1]);
    is(
        r"with 4 to 16 clients and (\d+)% at 32, the highest",
        whole(pct("sharded", 32)),
    );
    for n in clients {
        for other in ["none", "occ", "server"] {
            assert!(pct("sharded", n) > pct(other, n), "sharded x {n}: share");
            if n >= 2 && other != "server" {
                assert!(pct("server", n) > pct(other, n), "server x {n}: share");
            }
        }
    }
    is(
        r"it would still be at (\d+)% with 16 clients",
        whole(100.0 * cps("sharded", 16) / ceiling("occ")),
    );

    // Beside the notebook's Python.
    let nb = |s: &str, n: u64, key: &str| {
        ratio(&cell(s, n)["rust"], &cell(s, n)["notebook"], key)
    };
    for s in ["none", "occ"] {
        let fewer = min_of([1, 2].map(|n| nb(s, n, "cpu_ms")).to_vec());
        let more = max_of([8, 16, 32].map(|n| nb(s, n, "cpu_ms")).to_vec());
        assert!(
            more < fewer,
            "{s}: Rust's share of the CPU did not fall with threads"
        );
    }
    let server_cpu = [8, 16, 32].map(|n| nb("server", n, "cpu_ms"));
    assert!(
        server_cpu[0] < server_cpu[1] && server_cpu[1] < server_cpu[2],
        "server: Rust's share of the CPU did not grow again at 16 and 32"
    );
    let occ_wall: Vec<f64> = [8, 16, 32]
        .iter()
        .map(|&n| nb("occ", n, "wall_ms"))
        .collect();
    is(
        r"Rust took (\d\.\d\d) to \d\.\d\d of Python's time",
        two(min_of(occ_wall.clone())),
    );
    is(
        r"Rust took \d\.\d\d to (\d\.\d\d) of Python's time",
        two(max_of(occ_wall)),
    );
    is(
        r"mostly wait for the server, (\d\.\d\d)\.",
        two(nb("occ", 1, "wall_ms")),
    );
    is(
        r"The one ratio above 1 is .server. with 32 clients, (\d\.\d\d)",
        two(nb("server", 32, "wall_ms")),
    );
    for c in cells.iter().filter(|c| c["notebook"].is_object()) {
        let above = ratio(&c["rust"], &c["notebook"], "wall_ms") > 1.0;
        let is_it = c["strategy"] == "server" && c["clients"] == 32;
        assert_eq!(above, is_it, "{}: a wall ratio above 1", c["strategy"]);
    }
    is(
        r"\((\S+) against Rust's \S+\)",
        commas(get("server", 32, "notebook", "correct_per_s").round() as u64),
    );
    is(
        r"against Rust's (\S+)\)",
        commas(cps("server", 32).round() as u64),
    );
    let deaths = |n: u64| {
        cell("server", n)["notebook"]["thread_errors"]
            .as_array()
            .unwrap()
            .len()
    };
    let scripted = readers.iter().find(|r| r["strategy"] == "server").unwrap();
    assert_eq!(scripted["clients"], 5, "the readers' race has 5 threads");
    for run in scripted["notebook"]["runs"].as_array().unwrap() {
        assert_eq!(
            run["thread_errors"],
            serde_json::json!([]),
            "5 threads: one died"
        );
    }
    assert_eq!(deaths(8), 0, "8 threads: one died");
    is(
        r"With (\d+) threads \(the notebook's setting\)",
        scripted["clients"].to_string(),
    );
    let died: Vec<String> = clients
        .iter()
        .filter(|&&n| deaths(n) > 0)
        .map(|n| n.to_string())
        .collect();
    let spared = clients.iter().filter(|&&n| deaths(n) == 0).max().unwrap();
    is(r"did not happen here, nor with (\d+);", spared.to_string());
    is(r"with (\d+) threads \d+ threads died", died[0].clone());
    assert_eq!(died.len(), 2, "threads died at {died:?}");
    is(r"more again for .server. at (\d+) and", died[0].clone());
    is(
        r"more again for .server. at \d+ and (\d+), where",
        died[1].clone(),
    );
    is(r"with (\d+) threads \d+, and the count", died[1].clone());
    is(
        r"with 16 threads (\d+) threads died",
        deaths(16).to_string(),
    );
    is(
        r"with 32 threads (\d+), and the count",
        deaths(32).to_string(),
    );
    let short = clients.map(|n| get("server", n, "notebook", "lost") as u64);
    is(
        r"fell short by up to (\d+) of",
        short.iter().max().unwrap().to_string(),
    );
    is(
        r"fell short by up to \d+ of (\d+)\.",
        increments.to_string(),
    );

    // The sharded rows of the grid, as the hot-document section reads them.
    let grid: Vec<f64> = [4, 8, 16, 32]
        .iter()
        .map(|&n| cps("sharded", n) / cps("occ", n))
        .collect();
    is(
        r"there it counted (\d\.\d) to \d\.\d times what .occ. did",
        format!("{:.1}", min_of(grid.clone())),
    );
    is(
        r"there it counted \d\.\d to (\d\.\d) times what .occ. did",
        format!("{:.1}", max_of(grid)),
    );

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

    // Every number chapter 16 quotes from this run, computed as it says and rounded as it rounds.
    let chapter = harness::recorded::chapter("ch16-00-what-contention-costs.md");
    let says = |pattern: &str| {
        harness::recorded::quoted(&chapter, &pattern.replace(' ', r"\s+"))
    };
    let rust =
        |s: &str, n: u64, key: &str| cell(s, n)["rust"][key].as_f64().unwrap();
    let ratio = |n: u64, key: &str| rust("sharded", n, key) / rust("occ", n, key);
    let from4 = [4, 8, 16, 32];
    let max_of = |v: &[f64]| v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let min_of = |v: &[f64]| v.iter().cloned().fold(f64::INFINITY, f64::min);
    // "With one client ... the two are alike."
    assert!(
        (ratio(1, "correct_per_s") - 1.0).abs() < 0.1,
        "x 1: not alike"
    );
    let faster = from4.map(|n| ratio(n, "correct_per_s"));
    assert_eq!(
        says(r"the sharded counter counted (\d\.\d) to \d\.\d times as many"),
        format!("{:.1}", min_of(&faster))
    );
    assert_eq!(
        says(r"the sharded counter counted \d\.\d to (\d\.\d) times as many"),
        format!("{:.1}", max_of(&faster))
    );
    // "a seventh to under a third of the conflicts per increment"
    let fewer = from4.map(|n| ratio(n, "conflicts_per_success"));
    assert_eq!(says(r"it saw a (seventh) to under a third"), "seventh");
    assert_eq!((1.0 / min_of(&fewer)).round(), 7.0, "no longer a seventh");
    assert!(max_of(&fewer) < 1.0 / 3.0, "no longer under a third");
    // "its p99 stayed within tens of milliseconds where the hot document's reached a fifth of a
    // second, and the client spent less CPU"
    assert_eq!(
        says(r"hot document's reached a (fifth) of a second"),
        "fifth"
    );
    let hot_p99 = max_of(&from4.map(|n| rust("occ", n, "p99_ms")));
    assert_eq!(
        format!("{:.1}", hot_p99 / 1000.0),
        "0.2",
        "hot p99: {hot_p99} ms"
    );
    for n in from4 {
        assert!(rust("sharded", n, "p99_ms") < 100.0, "x {n}: sharded p99");
        assert!(ratio(n, "cpu_ms") < 1.0, "x {n}: sharded spent more CPU");
    }
    assert_eq!(
        says(r"\((\d\.\d\d) per increment with 32 clients on 16 shards\)"),
        format!("{:.2}", rust("sharded", 32, "conflicts_per_success"))
    );
    // "16 shards counted up to three times as fast as the one document"
    assert_eq!(
        says(r"16 shards counted up to (three) times as fast"),
        "three"
    );
    let best = max_of(&[1, 2, 4, 8, 16, 32].map(|n| ratio(n, "correct_per_s")));
    assert_eq!(best.round(), 3.0, "up to {best:.1} times, not three");
    for chart in ["hot-throughput.svg", "hot-conflicts.svg", "hot-cells.md"] {
        assert!(root().join("src/charts").join(chart).exists(), "no {chart}");
    }
}

/// The Hinglish edition says everything the English one says: every message of the English
/// text with words in it (mdbook-xgettext's cut, includes expanded; code, requests, outputs and
/// numbers are the same in both) has a translation in `po/hi-Latn.po`, none of them fuzzy. A
/// changed English paragraph is a new message, untranslated until someone translates it.
#[test]
fn the_hinglish_catalogue_translates_every_english_message() {
    let found =
        xtask::i18n::check().expect("mdbook-xgettext cuts the book into messages");
    assert!(found.messages > 1000, "only {} messages", found.messages);
    assert!(
        found.untranslated.is_empty() && found.fuzzy.is_empty(),
        "{} of {} messages untranslated and {} fuzzy (`cargo xtask i18n check` lists them; \
         `cargo xtask i18n update` adds new ones), the first: {:?}",
        found.untranslated.len(),
        found.messages,
        found.fuzzy.len(),
        found.untranslated.iter().chain(&found.fuzzy).next()
    );
}
