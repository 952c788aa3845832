//! Progress for long waits (downloads, a JVM starting, an image build), on stderr so that an
//! example's stdout stays its own story and its `RESULT` lines.

use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

/// Prints one progress line.
pub fn say(message: impl AsRef<str>) {
    eprintln!("[es] {}", message.as_ref());
}

/// Prints the last lines of a log, each prefixed with `label| `, before an error that points
/// at them.
pub fn print_tail(label: &str, text: &str) {
    let lines: Vec<&str> = text.lines().collect();
    for line in &lines[lines.len().saturating_sub(20)..] {
        eprintln!("  {label}| {line}");
    }
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

/// What really happened, from an error's chain of causes: the innermost one ("Connection
/// refused (os error 111)"), which the outer ones tend to repeat around a URL.
pub fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
