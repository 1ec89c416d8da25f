//! How long to wait before trying a job again.
//!
//! Failed requests: exponential backoff with full jitter (a random wait between zero and
//! the exponential step), never shorter than the server's Retry-After. Pending jobs: the
//! job_status cadence, from 2 s doubling to 60 s, with "equal" jitter (half fixed, half
//! random) so a pending job is never re-polled at once.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    pub retry_base: Duration,
    pub retry_cap: Duration,
    pub poll_initial: Duration,
    pub poll_cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            retry_base: Duration::from_millis(500),
            retry_cap: Duration::from_secs(60),
            poll_initial: Duration::from_secs(2),
            poll_cap: Duration::from_secs(60),
        }
    }
}

/// The n-th step (0-based) of base * 2^n, capped.
fn step(base: Duration, cap: Duration, n: u32) -> Duration {
    ExponentialBuilder::new()
        .with_min_delay(base)
        .with_max_delay(cap)
        .without_max_times()
        .build()
        .nth(n.min(64) as usize)
        .unwrap_or(cap)
}

impl Backoff {
    /// The wait before retry number `attempt` (1 for the first retry).
    pub fn retry_delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let ceiling = step(self.retry_base, self.retry_cap, attempt.saturating_sub(1));
        let jittered = ceiling.mul_f64(rand::random_range(0.0..=1.0));
        match retry_after {
            Some(server) => jittered.max(server),
            None => jittered,
        }
    }

    /// The wait before the next job_status call after `polls` "not complete" answers.
    pub fn poll_delay(&self, polls: u32) -> Duration {
        let full = step(self.poll_initial, self.poll_cap, polls.saturating_sub(1));
        full / 2 + full.mul_f64(rand::random_range(0.0..=0.5))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_double_up_to_the_cap() {
        let b = Duration::from_secs(2);
        let c = Duration::from_secs(60);
        assert_eq!(step(b, c, 0), Duration::from_secs(2));
        assert_eq!(step(b, c, 1), Duration::from_secs(4));
        assert_eq!(step(b, c, 4), Duration::from_secs(32));
        assert_eq!(step(b, c, 5), Duration::from_secs(60));
        assert_eq!(step(b, c, 1000), Duration::from_secs(60));
    }

    #[test]
    fn retry_delay_is_full_jitter_and_honours_retry_after() {
        let backoff = Backoff::default();
        for attempt in 1..10 {
            let ceiling = step(backoff.retry_base, backoff.retry_cap, attempt - 1);
            for _ in 0..50 {
                assert!(backoff.retry_delay(attempt, None) <= ceiling);
            }
        }
        let server = Duration::from_secs(7);
        for _ in 0..50 {
            assert!(backoff.retry_delay(1, Some(server)) >= server);
        }
    }

    #[test]
    fn poll_delay_stays_within_half_and_full_step() {
        let backoff = Backoff::default();
        for polls in 1..12 {
            let full = step(backoff.poll_initial, backoff.poll_cap, polls - 1);
            for _ in 0..50 {
                let d = backoff.poll_delay(polls);
                assert!(d >= full / 2 && d <= full, "{polls}: {d:?} vs {full:?}");
            }
        }
    }
}
