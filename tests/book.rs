//! The book and its code agree: every include names a region that exists, every internal link
//! leads somewhere, every chapter points at an example to run, and every saved output still has
//! the shape its chapter describes.
//!
//! The outputs are produced by `cargo xtask record` (`scripts/run-examples.sh --record`) against
//! a real Elasticsearch; these checks read them, so a re-recorded output that contradicts the
//! prose fails here.

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
    for (chapter, text) in chapters() {
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

/// Links to other chapters (`[text](chNN-....md#anchor)`) lead to files that exist, and
/// SUMMARY.md lists every chapter file.
#[test]
fn internal_links_resolve_and_summary_lists_every_chapter() {
    let summary = fs::read_to_string(root().join("src/SUMMARY.md")).unwrap();
    for (chapter, text) in chapters() {
        let name = chapter.file_name().unwrap().to_string_lossy().to_string();
        if name != "SUMMARY.md" {
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
            let file = target.split('#').next().unwrap();
            assert!(
                chapter.parent().unwrap().join(file).exists(),
                "{name}: broken link to {target}"
            );
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
    for (chapter, text) in chapters() {
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
                .strip_prefix("{{#include ../")
                .or_else(|| line.trim().strip_prefix("{{#rustdoc_include ../"))
                .unwrap_or_else(|| {
                    panic!(
                        "{}: a Rust listing holds code typed into the prose: {line:?}",
                        chapter.display()
                    )
                });
            let file = included.split([':', '}']).next().unwrap();
            let compiled = file
                .strip_prefix("examples/")
                .and_then(|f| f.strip_suffix(".rs"))
                .is_some_and(|name| examples.iter().any(|e| e == name))
                || file.starts_with("esbook/src/")
                || file.starts_with("provision/src/");
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
        .filter_map(|output| output.example_command().expect("a command"))
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
/// project keeps names it, except the recorded outputs, which show what the server said.
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

/// The `RESULT {json}` lines of each saved output, by file stem.
fn saved_results() -> BTreeMap<String, Vec<Value>> {
    let dir = root().join("src/outputs");
    let mut results = BTreeMap::new();
    for entry in fs::read_dir(&dir).expect("src/outputs/").flatten() {
        let path = entry.path();
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("$ cargo run --example ")
                || text.starts_with("$ scripts/run-examples.sh | grep RESULT\n"),
            "{} does not start with the command that made it",
            path.display()
        );
        let lines: Vec<Value> = text
            .lines()
            .filter_map(|l| l.strip_prefix("RESULT "))
            .map(|json| serde_json::from_str(json).expect("RESULT line is JSON"))
            .collect();
        assert!(!lines.is_empty(), "{} has no RESULT line", path.display());
        for line in &lines {
            assert!(
                line["server_version"].is_string(),
                "{}: no server_version",
                path.display()
            );
            assert!(
                line["cluster"].is_string(),
                "{}: no cluster path",
                path.display()
            );
        }
        assert!(
            !text.contains("CLAIM FAILED"),
            "{} records a failed claim",
            path.display()
        );
        results.insert(
            path.file_stem().unwrap().to_string_lossy().to_string(),
            lines,
        );
    }
    results
}

/// The saved outputs say what the chapters say: the bank loses A's withdrawal without OCC and
/// keeps it with OCC, the stale write is a 409, the race loses updates without OCC and counts
/// exactly 250 with it, server-side or client-side.
#[test]
fn saved_outputs_have_the_shape_the_chapters_describe() {
    let results = saved_results();
    let one = |name: &str| -> &Value {
        let lines = results
            .get(name)
            .unwrap_or_else(|| panic!("no saved output {name}.txt"));
        assert_eq!(lines.len(), 1, "{name}: one RESULT line expected");
        &lines[0]
    };

    let lost = one("lost_update");
    assert_eq!(
        (lost["expected"].as_i64(), lost["final"].as_i64()),
        (Some(300), Some(500))
    );

    let kept = one("conditional_write");
    assert_eq!(
        (kept["expected"].as_i64(), kept["final"].as_i64()),
        (Some(300), Some(300))
    );
    assert_eq!(kept["conflict_status"], 409);
    assert_eq!(kept["conflict_type"], "version_conflict_engine_exception");

    let stale = one("stale_write");
    assert_eq!(stale["final"], 2);
    assert_eq!(stale["conflict_status"], 409);
    assert_eq!(stale["conflict_type"], "version_conflict_engine_exception");

    assert_eq!(one("how_occ_works")["held"], true);

    let race = &results["counter_race"];
    let by_strategy = |s: &str| {
        race.iter()
            .find(|r| r["strategy"] == s)
            .unwrap_or_else(|| panic!("no {s} run"))
    };
    let none = by_strategy("none");
    assert_eq!(
        (none["clients"].as_u64(), none["per_client"].as_u64()),
        (Some(5), Some(50))
    );
    assert!(
        none["final"].as_u64().unwrap() < 250,
        "without OCC the counter must end below 250"
    );
    assert_eq!(none["acknowledged"], 250);
    for strategy in ["occ", "server"] {
        let run = by_strategy(strategy);
        assert_eq!(run["final"], 250, "{strategy}");
        assert_eq!(run["acknowledged"], 250, "{strategy}");
        assert_eq!(run["failed"], 0, "{strategy}");
    }
    assert!(
        by_strategy("occ")["conflicts"].as_u64().unwrap() > 0,
        "the OCC run saw no conflict"
    );

    let no_retries =
        one("counter_race_strategy_server_retryonconflict_0_maxattempts_1");
    assert_eq!(no_retries["retry_on_conflict"], 0);
    assert_eq!(no_retries["max_attempts"], 1);
    assert_eq!(no_retries["final"], no_retries["acknowledged"]);
    assert_eq!(
        no_retries["acknowledged"].as_u64().unwrap()
            + no_retries["failed"].as_u64().unwrap(),
        250,
        "every increment is either acknowledged or reported as given up"
    );
}

/// Part III's saved outputs say what its chapters say: a failover moves the primary term from
/// 1 to 2, the condition read before it is accepted once and then refused; the race through a
/// failover loses no acknowledged increment, shows at least one indeterminate write, and counts
/// idempotent increments exactly; a timed-out increment was applied, counts twice when sent
/// again and once with an operation id; and money survives a client dying at every point.
#[test]
fn part_three_outputs_show_failover_ambiguity_and_transfers() {
    let results = saved_results();
    let one = |name: &str| -> &Value {
        let lines = results
            .get(name)
            .unwrap_or_else(|| panic!("no saved output {name}.txt"));
        assert_eq!(lines.len(), 1, "{name}: one RESULT line expected");
        &lines[0]
    };

    let terms = one("primary_terms");
    assert_eq!(terms["held"], true);
    assert_eq!(terms["nodes"], 3);
    assert_eq!(terms["read_before"], serde_json::json!([0, 1]));
    assert_eq!(
        (
            terms["primary_term_before"].as_i64(),
            terms["primary_term_after"].as_i64()
        ),
        (Some(1), Some(2))
    );
    assert_eq!(terms["stale_condition_first"], 200);
    assert_eq!(terms["new_write"], serde_json::json!([1, 2]));
    assert_eq!(terms["stale_condition_second"], 409);
    assert_ne!(terms["killed"], terms["promoted"]);

    let race = one("failover_race");
    let (plain, idempotent) = (&race["plain"], &race["idempotent"]);
    for counter in [plain, idempotent] {
        assert_eq!(counter["lost_acknowledged"], 0, "{race}");
        assert_eq!(counter["held"], true, "{race}");
        assert!(counter["acknowledged"].as_u64().unwrap() > 100, "{race}");
    }
    assert_eq!(plain["unexplained"], 0, "{race}");
    assert_eq!(
        idempotent["final"], idempotent["distinct_applied"],
        "{race}"
    );
    assert_eq!(idempotent["applied_twice"], 0, "{race}");
    assert!(
        plain["indeterminate"].as_u64().unwrap()
            + idempotent["indeterminate"].as_u64().unwrap()
            > 0,
        "the chapter shows at least one indeterminate write: {race}"
    );
    assert!(
        race["writes_in_flight_at_kill"].as_u64().unwrap() > 0,
        "{race}"
    );
    assert_eq!(race["primary_term"], 2);
    assert_eq!(race["copies_agree"], true);

    let ambiguous = one("ambiguous_failure");
    assert_eq!(ambiguous["timed_out_then_counter"], 1);
    assert_eq!(ambiguous["resent_counter"], 2);
    assert_eq!(ambiguous["with_id_counter"], 1);
    assert_eq!(ambiguous["without_ids"]["final"], 9);
    assert_eq!(ambiguous["without_ids"]["acknowledged"], 0);
    assert_eq!(ambiguous["with_ids"]["final"], 3);
    assert_eq!(ambiguous["with_ids"]["acknowledged"], 3);

    let transfers = &results["transfers"];
    let pattern = |p: &str| {
        transfers
            .iter()
            .find(|r| r["pattern"] == p)
            .unwrap_or_else(|| panic!("no {p} transfer run"))
    };
    let unsafe_run = pattern("unsafe");
    assert_eq!(
        (
            unsafe_run["total_before"].as_i64(),
            unsafe_run["total_after"].as_i64()
        ),
        (Some(2000), Some(1900))
    );
    let safe = pattern("transfer document");
    assert_eq!(safe["crash_points"], 5);
    assert_eq!(safe["conserved_every_time"], true);
    let concurrent = pattern("concurrent");
    assert_eq!(
        concurrent["total_after_recovery"],
        concurrent["total_opening"]
    );
    assert_eq!(concurrent["balances_as_recorded"], true);
    assert!(
        concurrent["total_after_crashes"] != concurrent["total_opening"],
        "some money was in flight before recovery: {concurrent}"
    );
}
