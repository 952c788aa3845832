//! A file lock, so that two processes (two test binaries, say) never both install or start the
//! same thing: the second waits for the first, then finds its work done.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

use crate::progress::{Ticker, say};

/// A blocking `flock` on `path`, taken off the async runtime; released when dropped.
pub async fn acquire(path: &Path) -> Result<fs::File> {
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    if file.try_lock().is_ok() {
        return Ok(file);
    }
    say(format!(
        "another process holds {}; waiting for it",
        path.display()
    ));
    let _ticker = Ticker::start("waiting for the other process");
    tokio::task::spawn_blocking(move || file.lock().map(|()| file))
        .await?
        .with_context(|| format!("locking {}", path.display()))
}
