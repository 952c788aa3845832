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
/// project keeps names it, except the recorded outputs, data and charts, which show what the
/// server said.
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

/// Part II's saved outputs say what chapters 9 to 11 say: the index request lets every creation
/// through and the creator loses its document, `_create` lets one through and answers the rest
/// 409 "document already exists", a condition on a missing document is a 409 "no document was
/// found"; from no document, GET-then-write loses increments while the conditional client and
/// both upserts end at exactly N x M with one creation, and the amount in `params` spares
/// compilations; a partial `doc` loses A's withdrawal where a condition or a script does not,
/// the refusals have their exact texts, and `_version`/`_seq_no` behave as chapter 11 tells
/// across delete and re-create. Chapter 5's new sections are in its output too.
#[test]
fn part_two_outputs_have_the_shape_the_chapters_describe() {
    let results = saved_results();
    let text = |name: &str| {
        fs::read_to_string(root().join(format!("src/outputs/{name}.txt")))
            .unwrap_or_else(|_| panic!("no saved output {name}.txt"))
    };
    let by_strategy = |name: &str, strategy: &str| -> Value {
        results
            .get(name)
            .unwrap_or_else(|| panic!("no saved output {name}.txt"))
            .iter()
            .find(|r| r["strategy"] == strategy)
            .unwrap_or_else(|| panic!("{name}: no {strategy} result"))
            .clone()
    };

    // Chapter 9.
    let index = by_strategy("create_race", "index");
    assert_eq!(index["clients"], 5);
    assert_eq!(index["saw_missing"], 5, "every client's GET saw no account");
    assert_eq!(index["acknowledged"], 5);
    assert_eq!(index["created"], 1);
    assert_eq!(index["conflicts"], 0);
    assert_eq!(
        index["holder_is_creator"], false,
        "the creator lost its account"
    );
    let create = by_strategy("create_race", "create");
    assert_eq!(create["acknowledged"], 1);
    assert_eq!(create["created"], 1);
    assert_eq!(create["conflicts"], 4);
    assert_eq!(create["holder_is_creator"], true);
    let conditions = by_strategy("create_race", "conditions");
    assert_eq!(conditions["op_type_create_status"], 409);
    assert_eq!(conditions["if_seq_no_on_missing_status"], 409);
    assert_eq!(
        conditions["if_seq_no_on_missing_type"],
        "version_conflict_engine_exception"
    );
    assert_eq!(conditions["create_with_if_seq_no_status"], 400);
    assert_eq!(conditions["conditional_success_status"], 200);
    let created = text("create_race");
    for words in [
        "document already exists (current version [1])",
        "but no document was found",
        "create operations do not support compare and set",
    ] {
        assert!(created.contains(words), "create_race.txt lacks {words:?}");
    }

    // Chapter 10.
    let none = by_strategy("upsert_race", "none");
    assert_eq!(
        (none["clients"].as_u64(), none["per_client"].as_u64()),
        (Some(5), Some(50))
    );
    assert_eq!(none["acknowledged"], 250);
    assert!(
        none["final"].as_u64().unwrap() < 250,
        "none must lose increments"
    );
    assert_eq!(
        none["written_as_new"], 5,
        "the prose says all five wrote a new counter"
    );
    assert_eq!(none["created"], 1);
    for strategy in ["occ", "upsert", "scripted_upsert"] {
        let run = by_strategy("upsert_race", strategy);
        assert_eq!(run["final"], 250, "{strategy}");
        assert_eq!(run["acknowledged"], 250, "{strategy}");
        assert_eq!(run["created"], 1, "{strategy}");
        assert_eq!(run["failed"], 0, "{strategy}");
    }
    let occ = by_strategy("upsert_race", "occ");
    assert!(occ["conflicts"].as_u64().unwrap() > 0);
    assert!(occ["create_conflicts"].as_u64().unwrap() > 0);
    for strategy in ["upsert", "scripted_upsert"] {
        let run = by_strategy("upsert_race", strategy);
        assert_eq!(run["retry_on_conflict"], 10);
        assert!(
            run["conflicts"].as_u64().unwrap() <= 1,
            "the prose says 0 or 1 conflicts reached a client"
        );
    }
    let compiled = by_strategy("upsert_race", "compilations");
    assert_eq!(compiled["updates"], 5);
    assert_eq!(compiled["hard_coded_compilations"], 5);
    assert_eq!(
        compiled["params_compilations"], 0,
        "the race had compiled that source"
    );
    let unretried =
        &results["upsert_race_strategy_upsert_retryonconflict_0_maxattempts_1"];
    assert_eq!(unretried.len(), 1);
    let unretried = &unretried[0];
    assert_eq!(unretried["retry_on_conflict"], 0);
    assert_eq!(unretried["max_attempts"], 1);
    assert_eq!(unretried["final"], unretried["acknowledged"]);
    assert_eq!(
        unretried["acknowledged"].as_u64().unwrap()
            + unretried["failed"].as_u64().unwrap(),
        250
    );
    assert!(unretried["failed"].as_u64().unwrap() > 0);
    assert_eq!(
        unretried["create_conflicts"], 4,
        "the prose says four collisions"
    );

    // Chapter 11.
    let partial = by_strategy("partial_update", "partial_doc");
    assert_eq!(partial["expected"], 300);
    assert_eq!(partial["final"], 500, "a partial doc lost A's withdrawal");
    assert_eq!(partial["with_condition"], 300);
    assert_eq!(partial["with_script"], 300);
    assert_eq!(partial["conflict_status"], 409);
    assert!(partial["with_script_server_version"].is_string());
    let history = by_strategy("partial_update", "delete_recreate");
    assert_eq!(history["versions"], serde_json::json!([1, 2, 3, 4, 5]));
    assert_eq!(history["seq_nos"], serde_json::json!([0, 1, 2, 3, 4]));
    assert_eq!(history["recreated_after_gc_version"], 1);
    assert_eq!(history["old_condition_status"], 409);
    let refused = text("partial_update");
    for words in [
        "compare and write operations can not be retried",
        "upsert requests don't support `if_seq_no` and `if_primary_term`",
        "compare and write operations can not be used with upsert",
        "document_missing_exception",
        "result=not_found",
    ] {
        assert!(
            refused.contains(words),
            "partial_update.txt lacks {words:?}"
        );
    }

    // Chapter 5's sections 6 to 9.
    let mechanism = text("how_occ_works");
    for words in [
        "seq_no_primary_term=false: hit _seq_no=null",
        "result=noop",
        "current version [5] is higher or equal to the one provided [5]",
        "_primary_term=3",
    ] {
        assert!(
            mechanism.contains(words),
            "how_occ_works.txt lacks {words:?}"
        );
    }
}

/// Chapters 12 to 15 say what their saved outputs show: a bulk answered HTTP 200 with
/// `"errors": true` and per-item 409s, lost without checking and whole with it; a sync pipeline
/// stale without versions and equal to its source with them, and the edges of external
/// versioning; update-by-query's conflicts with and without `conflicts=proceed`, and the job
/// finished; exact totals for the hot-document designs, with their conflicts beside the single
/// document's.
#[test]
fn saved_outputs_of_the_many_document_chapters_have_the_shape_described() {
    let results = saved_results();
    let by = |name: &str, key: &str, value: &str| -> Value {
        results
            .get(name)
            .unwrap_or_else(|| panic!("no saved output {name}.txt"))
            .iter()
            .find(|r| r[key] == value)
            .unwrap_or_else(|| panic!("{name}: no result with {key}={value}"))
            .clone()
    };
    let raw =
        fs::read_to_string(root().join("src/outputs/bulk_conflicts.txt")).unwrap();
    assert!(
        raw.contains(
            r#""status":409,"error":{"type":"version_conflict_engine_exception""#
        ),
        "the bulk chapter shows a raw 409 item"
    );

    // Chapter 12.
    let blind = by("bulk_conflicts", "writer", "blind");
    assert_eq!(
        (blind["http_status"].as_u64(), blind["errors"].as_bool()),
        (Some(200), Some(false))
    );
    assert_eq!(blind["lost_restocks"], 5);
    let unchecked = by("bulk_conflicts", "writer", "unchecked");
    assert_eq!(
        (
            unchecked["http_status"].as_u64(),
            unchecked["errors"].as_bool()
        ),
        (Some(200), Some(true))
    );
    assert_eq!(unchecked["first_bulk_conflicts"], 5);
    assert_eq!(unchecked["believed_written"], 20);
    assert_eq!(unchecked["lost_order_lines"], 5);
    let checked = by("bulk_conflicts", "writer", "checked");
    assert_eq!(checked["first_bulk_conflicts"], 5);
    assert_eq!(checked["bulk_sizes"], serde_json::json!([20, 5]));
    assert_eq!(
        (
            checked["wrong_products"].as_u64(),
            checked["given_up"].as_u64()
        ),
        (Some(0), Some(0))
    );

    // Chapter 13.
    let none = by("external_sync", "mode", "none");
    assert!(
        none["stale_rows"].as_u64().unwrap() > 0,
        "no stale rows without versions"
    );
    assert_eq!(
        (none["dropped"].as_u64(), none["equals_source"].as_bool()),
        (Some(0), Some(false))
    );
    assert_eq!(none["written"], none["deliveries"]);
    for mode in ["external", "external_gte"] {
        let run = by("external_sync", "mode", mode);
        assert_eq!(run["stale_rows"], 0, "{mode}");
        assert_eq!(run["equals_source"], true, "{mode}");
        assert!(run["dropped"].as_u64().unwrap() > 0, "{mode}: no 409");
        assert_eq!(
            run["deliveries"], none["deliveries"],
            "{mode}: the same deliveries"
        );
    }
    let edges = by("external_sync", "mode", "edges");
    assert_eq!(edges["equal_version_external"], 409);
    assert_eq!(edges["equal_version_external_gte"], 200);
    assert_eq!(edges["after_plain_write"], 409);
    assert_eq!(edges["after_delete"], 409);
    assert_eq!(edges["if_seq_no_with_external"], 400);

    // Chapter 14.
    let abort = by("update_by_query", "part", "abort");
    assert_eq!(abort["version_conflicts"], 3);
    assert_eq!(abort["failures"], 3);
    assert_eq!(
        abort["updated"], 57,
        "the job stopped after its sixth batch"
    );
    assert_eq!(abort["batches"], 6);
    assert_eq!(abort["reminded"], abort["updated"]);
    assert_eq!(abort["total"], 100);
    assert_eq!(abort["customer_edits_kept"], true);
    let proceed = by("update_by_query", "part", "proceed");
    assert_eq!(proceed["version_conflicts"], 3);
    assert_eq!(proceed["failures"], 0);
    assert_eq!(
        (proceed["updated"].as_u64(), proceed["left"].as_u64()),
        (Some(97), Some(3))
    );
    let finish = by("update_by_query", "part", "finish");
    assert_eq!(finish["left_before"], 43);
    assert_eq!(finish["updated_per_pass"], serde_json::json!([42, 1]));
    assert_eq!(finish["conflicts_per_pass"], serde_json::json!([1, 0]));
    assert_eq!(finish["left"], 0);
    let dbq = by("update_by_query", "part", "delete_by_query");
    assert_eq!(dbq["deleted_per_pass"], serde_json::json!([18, 0]));
    assert_eq!(dbq["conflicts_per_pass"], serde_json::json!([2, 0]));
    assert_eq!(dbq["orders_left"], 82);

    // Chapter 15: exact totals; conflicts, not times.
    let single = by("hot_counter", "design", "single");
    let sharded = by("hot_counter", "design", "sharded");
    let events = by("hot_counter", "design", "events");
    for run in [&single, &sharded, &events] {
        assert_eq!(
            (run["clients"].as_u64(), run["per_client"].as_u64()),
            (Some(10), Some(25))
        );
        assert_eq!(run["total"], 250, "{run}");
        assert_eq!(
            (run["landed"].as_u64(), run["failed"].as_u64()),
            (Some(250), Some(0))
        );
        assert!(run["wall_ms"].is_u64(), "{run}: no wall time");
    }
    assert_eq!(sharded["documents"], 16);
    let conflicts = |run: &Value| run["conflicts"].as_u64().unwrap();
    assert!(
        conflicts(&single) > 250,
        "the prose says more than one conflict per increment for the single document"
    );
    assert!(
        conflicts(&sharded) * 4 < conflicts(&single),
        "the prose says several times fewer conflicts for the sharded counter"
    );
    assert_eq!(conflicts(&events), 0);
    assert_eq!(events["count_before_refresh"], 0);
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
