//! Manage the Elasticsearch nodes the examples started on this machine.
//!
//! ```text
//! cargo run --bin cluster -- status   # which local nodes are running, where
//! cargo run --bin cluster -- stop     # stop them (the next example starts one again)
//! ```
//!
//! Containers need no command: testcontainers removes each one when its example ends.

use std::process::ExitCode;

use anyhow::{Result, bail};
use occ::cluster::{engine, local, url};

#[tokio::main]
async fn main() -> ExitCode {
    occ::run_main(run()).await
}

async fn run() -> Result<()> {
    let command: Vec<String> = std::env::args().skip(1).collect();
    let command = match command.as_slice() {
        [one] => one.as_str(),
        _ => bail!("usage: cargo run --bin cluster -- status|stop"),
    };
    let cache = local::cache_dir();
    for engine in engine::ALL {
        let dir = cache.join(engine.slug);
        match command {
            "status" => match local::read_state(&dir) {
                Some(state) if local::alive(state.pid) => println!(
                    "{} running at {} (pid {})",
                    engine.slug,
                    url::client_for(&state.url)?.1,
                    state.pid
                ),
                _ => println!("{} not running", engine.slug),
            },
            "stop" => match local::stop(&dir).await? {
                Some(state) => {
                    println!("stopped {} (pid {})", engine.slug, state.pid)
                }
                None => println!("{} was not running", engine.slug),
            },
            other => {
                bail!(
                    "unknown command {other:?}; usage: cargo run --bin cluster -- status|stop"
                )
            }
        }
    }
    Ok(())
}
