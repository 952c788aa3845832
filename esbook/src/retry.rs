//! A bounded retry policy: exponential backoff with full jitter.
//!
//! Conflicts under contention are normal with optimistic concurrency; what matters is that a
//! client retries a bounded number of times, waits a little longer each time, and spreads its
//! retries out (jitter) so that the clients that just collided do not collide again in lockstep.
//! A real service would tune these numbers to its own latency and give up with an error its
//! caller can act on.

use std::future::Future;
use std::time::Duration;

use anyhow::Result;
use serde_json::Value;

use crate::doc::Outcome;

/// How many times to try and how long to wait between tries.
///
/// ```
/// use std::time::Duration;
/// use esbook::retry::Backoff;
///
/// let backoff = Backoff::default();
/// assert_eq!(backoff.max_attempts, 50);
/// // After the third failed attempt: a random wait of at most 1 ms x 2^2, a different one
/// // each time (jitter), so that clients that just collided spread out.
/// let waits: Vec<Duration> = (0..20).map(|_| backoff.delay(3)).collect();
/// assert!(waits.iter().all(|w| *w <= Duration::from_millis(4)));
/// assert!(waits.iter().any(|w| *w != waits[0]));
/// // However many attempts failed, never more than the cap.
/// assert!((1..=64).all(|attempt| backoff.delay(attempt) <= backoff.cap));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The wait ceiling before the second attempt; it doubles per attempt.
    pub base: Duration,
    /// The largest ceiling the doubling may reach.
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            max_attempts: 50,
            base: Duration::from_millis(1),
            cap: Duration::from_millis(40),
        }
    }
}

impl Backoff {
    /// The wait after failed attempt number `attempt` (1-based): uniformly random between zero
    /// and `min(cap, base * 2^(attempt-1))` ("full jitter").
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(
                1u32.checked_shl(attempt.saturating_sub(1))
                    .unwrap_or(u32::MAX),
            )
            .min(self.cap);
        ceiling.mul_f64(fastrand::f64())
    }
}

/// What one client saw while doing its increments.
///
/// ```
/// use esbook::retry::Tally;
/// use serde_json::json;
///
/// let mut tally = Tally::written(&json!({ "result": "created", "_seq_no": 0 }));
/// tally += Tally::conflict(&json!({ "type": "version_conflict_engine_exception",
///     "reason": "[1]: version conflict, document already exists (current version [1])" }));
/// assert_eq!((tally.acknowledged, tally.created, tally.conflicts, tally.create_conflicts),
///            (1, 1, 1, 1));
/// ```
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Increments Elasticsearch acknowledged (a 2xx for the write that carried them).
    pub acknowledged: u64,
    /// Of those, the writes the server answered `"result": "created"`: the counter did not
    /// exist before them. Chapter 6's counter exists before the race; chapter 10's does not.
    pub created: u64,
    /// Writes of a brand-new counter, made because the client's read found none (chapter 10).
    /// More of them than `created` means that some "creations" replaced a counter.
    pub written_as_new: u64,
    /// Writes that came back as a 409 version conflict: at once (`occ`), or after the server's
    /// own `retry_on_conflict` retries ran out (`server`). Each was retried by the client.
    pub conflicts: u64,
    /// Of those, the ones that said "document already exists": two creations collided.
    pub create_conflicts: u64,
    /// Increments given up on after the retry bound.
    pub failed: u64,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, other: Tally) {
        self.acknowledged += other.acknowledged;
        self.created += other.created;
        self.written_as_new += other.written_as_new;
        self.conflicts += other.conflicts;
        self.create_conflicts += other.create_conflicts;
        self.failed += other.failed;
    }
}

impl Tally {
    /// One acknowledged write, from its answer (`created` if it made the document).
    pub fn written(answer: &Value) -> Tally {
        Tally {
            acknowledged: 1,
            created: u64::from(answer["result"] == "created"),
            ..Tally::default()
        }
    }

    /// One version conflict, from its `error` (a creation collision if the document already
    /// existed).
    pub fn conflict(error: &Value) -> Tally {
        let reason = error["reason"].as_str().unwrap_or_default();
        Tally {
            conflicts: 1,
            create_conflicts: u64::from(reason.contains("document already exists")),
            ..Tally::default()
        }
    }
}

// ANCHOR: retry
/// Runs `attempt` until it is written; after each version conflict waits a
/// little (backoff with jitter) and tries again, `backoff.max_attempts` times
/// at most. Counts what happened.
///
/// ```
/// # #[tokio::main] async fn main() -> anyhow::Result<()> {
/// # let cluster = esbook::Cluster::connect(esbook::Needs::Core).await?;
/// # let client = &cluster.client;
/// # use elasticsearch::IndexParts;
/// # use esbook::{doc, retry::{Backoff, until_written}};
/// # use serde_json::json;
/// doc::fresh_index(client, "retry-until").await?;
/// doc::put(client, "retry-until", "1", json!({ "counter": 0 })).await?;
/// let seen = doc::read(client, "retry-until", "1").await?;
/// doc::put(client, "retry-until", "1", json!({ "counter": 5 })).await?; // someone else
///
/// // An attempt that reuses its stale read conflicts every time: the loop gives up.
/// let backoff = Backoff { max_attempts: 3, ..Backoff::default() };
/// let tally = until_written(backoff, || async {
///     let response = client
///         .index(IndexParts::IndexId("retry-until", "1"))
///         .if_seq_no(seen.seq_no)
///         .if_primary_term(seen.primary_term)
///         .body(json!({ "counter": seen.number("counter")? + 1 }))
///         .send()
///         .await?;
///     doc::outcome(response).await
/// })
/// .await?;
/// assert_eq!((tally.acknowledged, tally.conflicts, tally.failed), (0, 3, 1));
/// # Ok(()) }
/// ```
pub async fn until_written<F, Fut>(
    backoff: Backoff,
    mut attempt: F,
) -> Result<Tally>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Outcome>>,
{
    let mut tally = Tally::default();
    for tried in 1..=backoff.max_attempts {
        match attempt().await? {
            Outcome::Written(answer) => {
                tally += Tally::written(&answer);
                return Ok(tally);
            }
            Outcome::Conflict(error) => {
                tally += Tally::conflict(&error);
                tokio::time::sleep(backoff.delay(tried)).await;
            }
        }
    }
    tally.failed = 1;
    Ok(tally)
}
// ANCHOR_END: retry

#[cfg(test)]
mod tests {
    use super::*;

    /// The wait never exceeds its ceiling, at every attempt: the ceiling doubles from `base`
    /// and stops growing at `cap`, with no overflow however many attempts failed.
    #[test]
    fn delay_is_bounded_by_the_doubling_ceiling_and_the_cap() {
        let backoff = Backoff::default();
        for attempt in 1..=64 {
            let doubling = 2u32.saturating_pow(attempt - 1);
            let ceiling = backoff.base.saturating_mul(doubling).min(backoff.cap);
            for _ in 0..100 {
                assert!(backoff.delay(attempt) <= ceiling, "attempt {attempt}");
            }
        }
    }

    /// Jitter: successive waits differ, so the clients that just collided spread out.
    #[test]
    fn delay_is_jittered() {
        let backoff = Backoff::default();
        let waits: std::collections::HashSet<Duration> =
            (0..20).map(|_| backoff.delay(5)).collect();
        assert!(waits.len() > 1, "{waits:?}");
    }
}
