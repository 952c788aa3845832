//! What the integration tests share: the example binaries, built as a reader would run them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The binary of example `name`, built (with all the others) by `cargo build --examples` on
/// first use; Cargo reports where it put each one, wherever the target directory is.
pub fn example(name: &str) -> &'static Path {
    static EXAMPLES: OnceLock<HashMap<String, PathBuf>> = OnceLock::new();
    let examples = EXAMPLES.get_or_init(|| {
        let output = Command::new(env!("CARGO"))
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
