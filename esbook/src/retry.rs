//! A bounded retry policy: exponential backoff with full jitter.
//!
//! Conflicts under contention are normal with optimistic concurrency; what matters is that a
//! client retries a bounded number of times, waits a little longer each time, and spreads its
//! retries out (jitter) so that the clients that just collided do not collide again in lockstep.
//! A real service would tune these numbers to its own latency and give up with an error its
//! caller can act on.

use std::time::Duration;

/// How many times to try and how long to wait between tries.
///
/// ```
/// use std::time::Duration;
/// use esbook::retry::Backoff;
///
/// let backoff = Backoff::default();
/// assert_eq!(backoff.max_attempts, 50);
/// // After the third failed attempt: a random wait of at most 1 ms x 2^2.
/// assert!(backoff.delay(3) <= Duration::from_millis(4));
/// // However many attempts failed, never more than the cap.
/// assert!(backoff.delay(30) <= backoff.cap);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The wait never exceeds its ceiling, and the ceiling stops growing at the cap.
    #[test]
    fn delay_is_bounded_by_the_doubling_ceiling_and_the_cap() {
        let backoff = Backoff::default();
        for attempt in 1..=64 {
            let ceiling = (backoff.base
                * 2u32.saturating_pow(attempt - 1).min(1 << 20))
            .min(backoff.cap);
            for _ in 0..100 {
                assert!(backoff.delay(attempt) <= ceiling, "attempt {attempt}");
            }
        }
    }

    /// Jitter: successive waits differ, so colliding clients spread out.
    #[test]
    fn delay_is_jittered() {
        let backoff = Backoff::default();
        let waits: std::collections::HashSet<_> =
            (0..20).map(|_| backoff.delay(5)).collect();
        assert!(waits.len() > 1);
    }
}
