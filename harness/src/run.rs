//! The `main` of every example: one clear line (never a panic) when something goes wrong, a
//! non-zero exit when a check did not hold, and one closing line when every check held.

use std::future::Future;
use std::process::ExitCode;

use crate::Claims;
use crate::cli::Args;
use crate::report;
use esbook::{Cluster, Needs};

/// The whole `main` of an example without flags: refuse any argument, connect to a cluster
/// that serves `needs`, run `body` on it, and exit non-zero if it failed or a check did not hold.
///
/// ```no_run
/// use esbook::Needs;
/// use harness::Claims;
///
/// #[tokio::main]
/// async fn main() -> std::process::ExitCode {
///     harness::run_example("usage: cargo run --example mine", Needs::Core, |cluster| async move {
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

/// [`run_example`] for an example whose result is its checks alone: times `body`, and adds
/// the `RESULT` line (`OCC_RESULTS=1`) `{"example": EXAMPLE, "claims": N, "held": true, ...}`.
///
/// ```no_run
/// use esbook::Needs;
/// use harness::Claims;
///
/// #[tokio::main]
/// async fn main() -> std::process::ExitCode {
///     harness::run::run_story("usage: cargo run --example mine", Needs::Core, "mine", async |cluster| {
///         let mut claims = Claims::new();
///         claims.check(!cluster.version.is_empty(), "the server said its version");
///         Ok(claims)
///     })
///     .await
/// }
/// ```
pub async fn run_story(
    usage: &str,
    needs: Needs,
    example: &str,
    body: impl AsyncFnOnce(&Cluster) -> anyhow::Result<Claims>,
) -> ExitCode {
    run_example(usage, needs, async move |cluster| {
        let started = std::time::Instant::now();
        let claims = body(&cluster).await?;
        let fields = serde_json::json!({
            "example": example,
            "claims": claims.checked(),
            "held": claims.all_hold(),
        });
        report::result(&cluster, started.elapsed(), fields);
        Ok(claims)
    })
    .await
}

/// Runs an example's body and turns its outcome into an exit code. `Ok(n)`, the number of
/// checks that held, closes the run with one line naming the servers the results came from
/// (nothing for `Ok(0)`: a program that checks nothing);
/// an error becomes one line on stderr (`error: ...` with its causes, `:`-separated) and exit
/// code 1.
///
/// Everything the body owns (a container, say) has been dropped, and so cleaned up, by the time
/// this returns.
///
/// ```
/// # #[tokio::main] async fn main() {
/// let code = harness::run_main(async { anyhow::bail!("no cluster") }).await;
/// assert_eq!(code, std::process::ExitCode::FAILURE); // and stderr says "error: no cluster"
/// # }
/// ```
pub async fn run_main(
    body: impl Future<Output = anyhow::Result<usize>>,
) -> ExitCode {
    match body.await {
        Ok(checks) => {
            if checks > 0 {
                println!("\n{}", closing_line(checks, &report::servers()));
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {}", one_line(&error));
            ExitCode::FAILURE
        }
    }
}

/// What a run that held says last.
///
/// ```
/// let servers = ["Elasticsearch 1.2.3 (local)".to_string()];
/// assert_eq!(harness::run::closing_line(3, &servers),
///            "Checked: all 3 checks held, on Elasticsearch 1.2.3 (local).");
/// ```
pub fn closing_line(checks: usize, servers: &[String]) -> String {
    let plural = if checks == 1 { "check" } else { "checks" };
    let on = match servers {
        [] => String::new(),
        [one] => format!(", on {one}"),
        [first @ .., last] => format!(", on {} and {last}", first.join(", ")),
    };
    format!("Checked: all {checks} {plural} held{on}.")
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
///     harness::run::one_line(&error),
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
