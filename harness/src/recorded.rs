//! What the book's tests read back to hold the prose to its runs: a recorded output as the book
//! shows it (`src/outputs/NAME.txt`), the results of that run (`src/runs/NAME.jsonl`, written by
//! `cargo xtask record`), and a chapter's text, with the numbers it quotes.
//!
//! A test that quotes with [`quoted`] fails when the prose changes its wording (the pattern no
//! longer matches) and when a re-recording changes the number (the assertion no longer holds),
//! so prose and output cannot drift apart unnoticed.

use std::fs;
use std::path::PathBuf;

use regex::Regex;
use serde_json::Value;

/// The workspace's root, where `src/` holds the book.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("harness/ lives in the workspace")
        .to_path_buf()
}

/// `src/outputs/NAME.txt`, as the book shows it.
pub fn output(name: &str) -> String {
    let path = root().join(format!("src/outputs/{name}.txt"));
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The results of `src/outputs/NAME.txt`'s recorded run, from `src/runs/NAME.jsonl`.
pub fn results(name: &str) -> Vec<Value> {
    let path = root().join(format!("src/runs/{name}.jsonl"));
    fs::read_to_string(&path)
        .unwrap_or_else(|e| {
            panic!("{}: {e} (cargo xtask record writes it)", path.display())
        })
        .lines()
        .map(|line| serde_json::from_str(line).expect("a recorded result is JSON"))
        .collect()
}

/// The one result of output `name` whose `key` is `value` (`"strategy"`, `"occ"`, say).
pub fn result(name: &str, key: &str, value: &str) -> Value {
    let found: Vec<Value> = results(name)
        .into_iter()
        .filter(|r| r[key] == value)
        .collect();
    match found.as_slice() {
        [one] => one.clone(),
        _ => panic!(
            "{name}: {} results with {key}={value}, not one",
            found.len()
        ),
    }
}

/// The text of chapter `file` (`"ch03-00-lost-update.md"`).
pub fn chapter(file: &str) -> String {
    let path = root().join("src").join(file);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What the first capture group of `pattern` finds in `text`, the first time it matches: the
/// number a chapter quotes, say. Panics, naming the pattern, when the text no longer says it.
///
/// ```
/// let prose = "The balance ends at **500**, where 300 was due.";
/// assert_eq!(harness::recorded::quoted(prose, r"ends at \*\*(\d+)\*\*"), "500");
/// ```
pub fn quoted(text: &str, pattern: &str) -> String {
    let regex = Regex::new(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"));
    regex
        .captures(text)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| panic!("the text no longer says {pattern:?}"))
}

/// Every match of the first capture group of `pattern` in `text`, in order.
///
/// ```
/// let output = "A wrote: _seq_no 1\nB wrote: _seq_no 2\n";
/// assert_eq!(harness::recorded::quoted_all(output, r"_seq_no (\d+)"), ["1", "2"]);
/// ```
pub fn quoted_all(text: &str, pattern: &str) -> Vec<String> {
    let regex = Regex::new(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"));
    regex
        .captures_iter(text)
        .filter_map(|c| c.get(1).map(|m| m.as_str().to_string()))
        .collect()
}
