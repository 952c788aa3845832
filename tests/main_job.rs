//! The README's main command, `scripts/run-examples.sh`, as a test: every chapter's example,
//! in book order, with the arguments its recorded output names on its first line.
//!
//! An example checks its own claims and exits non-zero when one does not hold, so running it
//! is testing it; the examples' own test modules hold only what no run of theirs checks (the
//! numbers the chapters quote from the recorded outputs, probes of the servers). What the
//! examples print streams to this test's standard output as they run: a long wait shows
//! progress, and a failure shows the example that failed with what it said last.

use std::path::Path;
use std::process::Command;

/// Every chapter's example runs to its closing line on a real Elasticsearch, with every claim
/// holding (the first that fails stops the run and names itself).
#[test]
fn every_chapter_example_runs_and_every_claim_holds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut command = Command::new("bash");
    command
        .arg(root.join("scripts/run-examples.sh"))
        .current_dir(root);
    // The variables Cargo set for this test (its package's name, manifest directory, ...)
    // would make the script's own `cargo` rebuild what watches them.
    for (name, _) in std::env::vars() {
        if name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_MANIFEST_")
            || name.starts_with("CARGO_CRATE_")
            || name == "CARGO_PRIMARY_PACKAGE"
        {
            command.env_remove(name);
        }
    }
    let status = command.status().expect("bash runs scripts/run-examples.sh");
    assert!(
        status.success(),
        "scripts/run-examples.sh failed ({status}): the example it names above did not \
         run to its end, or one of its claims did not hold"
    );
}
