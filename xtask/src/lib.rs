//! The chores' shared parts: the `xtask` binary (`cargo es`, `cargo xtask`) runs them, and the
//! book's own tests use them too.

pub mod book;
pub mod i18n;

use std::process::Command;

/// A `cargo` command without the variables Cargo set for this process (its package's name and
/// manifest directory, ...): build scripts that watch them would see them change and rebuild
/// half the dependency tree, and again at the next plain `cargo build`.
pub fn cargo() -> Command {
    let mut command = Command::new(env!("CARGO"));
    for (name, _) in std::env::vars() {
        let set_for_a_package = [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_BIN_",
            "CARGO_CRATE_",
        ]
        .iter()
        .any(|prefix| name.starts_with(prefix));
        if set_for_a_package || name == "CARGO_PRIMARY_PACKAGE" || name == "OUT_DIR"
        {
            command.env_remove(name);
        }
    }
    command
}
