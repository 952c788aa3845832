//! `cargo xtask podman ...`: Podman as the container engine on machines with no Docker and no
//! registry (this project's own), as `.ci/run` uses it.
//!
//! ```text
//! eval "$(cargo xtask podman up)"   packages, configuration, images, API service; removes
//!                                   containers whose run is gone; prints exports
//! cargo xtask podman env            the exports alone
//! cargo xtask podman down           remove leftover containers, stop the service
//! ```

use anyhow::{Result, bail};
use provision::podman;

pub async fn run(args: &[&str]) -> Result<()> {
    match args {
        ["up"] => {
            podman::install().await?;
            podman::build_images().await?;
            podman::start_service().await?;
            podman::remove_orphans().await?;
            print_env();
            Ok(())
        }
        ["env"] => {
            print_env();
            Ok(())
        }
        ["down"] => {
            podman::remove_leftovers().await?;
            podman::stop_service().await
        }
        _ => bail!("usage: cargo xtask podman up|env|down"),
    }
}

/// `export NAME=value` lines for the shell's `eval`; everything else goes to stderr.
fn print_env() {
    for (name, value) in podman::env() {
        println!("export {name}={value}");
    }
}
