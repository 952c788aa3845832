//! The book's chores, through Cargo aliases (see `.cargo/config.toml`):
//!
//! ```text
//! cargo es status                    which local Elasticsearch nodes run, where
//! cargo es start [--nodes 3 | --scripting | --secured | --tls]
//! cargo es stop                      stop them all (the next example starts one again)
//! cargo es kill NODE | restart NODE  a node of the three-node cluster, for the failover chapters
//!
//! cargo xtask examples               run every chapter's example, in book order
//! cargo xtask record [OUTPUT...]     run them and save what the book shows (src/outputs/)
//! cargo xtask podman up|down|env     Podman as the container engine, where there is no Docker
//! cargo xtask contention [--smoke]   chapter 16's benchmark beside the notebook's Python, charts
//! cargo xtask contention --hot      the hot document against chapter 15's sharded counter
//! cargo xtask charts                 redraw every chart and diagram from the committed data
//! cargo xtask book                   build the book: English in book/, Hinglish in book/hi-Latn/
//! cargo xtask i18n update|check      the Hinglish catalogue (po/hi-Latn.po) against the English
//! ```

mod charts;
mod contention;
mod es;
mod podman;

use std::process::ExitCode;

use anyhow::{Result, bail};
use xtask::book;

const USAGE: &str = "usage: cargo es status|start|stop|kill|restart ... | \
cargo xtask examples|record|podman|contention|charts|book|i18n ... (see xtask/src/main.rs)";

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["es", rest @ ..] => es::run(rest).await,
        ["examples"] => book::run_examples(false, &[]),
        ["record", outputs @ ..] => book::run_examples(true, outputs),
        ["podman", rest @ ..] => podman::run(rest).await,
        ["contention", rest @ ..] => contention::run(rest),
        ["charts"] => contention::redraw(),
        ["book"] => xtask::i18n::build_both(),
        ["i18n", rest @ ..] => xtask::i18n::run(rest),
        ["--help" | "-h" | "help"] => {
            println!("{USAGE}");
            Ok(())
        }
        _ => bail!("unknown command {:?}; {USAGE}", words.join(" ")),
    }
}
