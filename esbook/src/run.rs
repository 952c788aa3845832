//! The `main` of every example: one clear line (never a panic) when something goes wrong, and
//! a non-zero exit when a claim did not hold.

use std::future::Future;
use std::process::ExitCode;

use crate::cli::Args;
use crate::{Claims, Cluster, Needs};

/// The whole `main` of an example without flags: refuse any argument, connect to a cluster
/// that serves `needs`, run `body` on it, and exit non-zero if it failed or a claim did not hold.
///
/// ```no_run
/// use esbook::{Claims, Needs};
///
/// #[tokio::main]
/// async fn main() -> std::process::ExitCode {
///     esbook::run_example("usage: cargo run --example mine", Needs::Core, |cluster| async move {
///         let mut claims = Claims::new();
///         claims.check(!cluster.version.is_empty(), "the server said its version");
///         Ok(claims)
///     })
///     .await
/// }
/// ```
pub async fn run_example<F, Fut>(usage: &str, needs: Needs, body: F) -> ExitCode
where
    F: FnOnce(Cluster) -> Fut,
    Fut: Future<Output = anyhow::Result<Claims>>,
{
    run_main(async {
        Args::from_env(usage)?.finish()?;
        let cluster = Cluster::connect(needs).await?;
        println!("Connected to {cluster}\n");
        body(cluster).await?.into_result()
    })
    .await
}

/// Runs an example's body and turns its outcome into an exit code: an error becomes one line
/// on stderr (`error: ...` with its causes, `:`-separated) and exit code 1.
///
/// Everything the body owns (a container, say) has been dropped, and so cleaned up, by the time
/// this returns.
///
/// ```
/// # #[tokio::main] async fn main() {
/// let code = esbook::run_main(async { anyhow::bail!("no cluster") }).await;
/// assert_eq!(code, std::process::ExitCode::FAILURE); // and stderr says "error: no cluster"
/// # }
/// ```
pub async fn run_main(body: impl Future<Output = anyhow::Result<()>>) -> ExitCode {
    match body.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", one_line(&error));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes on one line, `: `-separated, each said once: the client's
/// transport errors repeat their cause ("error sending request for url (...)") as their own
/// message, which `{:#}` would print twice.
///
/// ```
/// let inner = std::io::Error::other("Connection refused (os error 111)");
/// let error = anyhow::Error::new(inner)
///     .context("Connection refused (os error 111)")
///     .context("reading bank/12345");
/// assert_eq!(
///     esbook::run::one_line(&error),
///     "reading bank/12345: Connection refused (os error 111)"
/// );
/// ```
pub fn one_line(error: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if parts.last().is_none_or(|last| !last.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}
