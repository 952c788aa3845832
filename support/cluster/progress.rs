//! Progress for long waits (downloads, a JVM starting), on stderr so that stdout stays the
//! example's own story and its `RESULT` lines.

use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

/// Prints one progress line.
pub fn say(message: impl AsRef<str>) {
    eprintln!("[cluster] {}", message.as_ref());
}

/// While alive, prints "still <doing> (Ns)" every few seconds, so a long wait never looks hung.
pub struct Ticker {
    task: JoinHandle<()>,
}

impl Ticker {
    pub fn start(doing: impl Into<String>) -> Ticker {
        let doing = doing.into();
        let started = Instant::now();
        let task = tokio::spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_secs(5));
            interval.tick().await;
            loop {
                interval.tick().await;
                say(format!("still {doing} ({}s)", started.elapsed().as_secs()));
            }
        });
        Ticker { task }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.task.abort();
    }
}
