//! The circuit breaker: a systemic failure (bad credentials, host unreachable, answers we
//! cannot confirm) stops the run after a handful of requests instead of failing every job.
//!
//! Until the run has seen one healthy answer, and again after any systemic failure, only
//! one request may be in flight (a probe); `threshold` systemic failures in a row, with
//! no healthy answer between them, trip the breaker for good.

use std::sync::Mutex;

use tokio::sync::{Semaphore, SemaphorePermit};

#[derive(Debug)]
struct State {
    healthy: bool,
    consecutive: u32,
    tripped: Option<String>,
}

#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    state: Mutex<State>,
    probe: Semaphore,
}

/// Permission to send one request; holds the probe slot while the breaker is wary.
#[derive(Debug)]
pub struct Admission<'a> {
    _probe: Option<SemaphorePermit<'a>>,
}

/// What an answer says about the health of the whole run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    /// The server answered and we could confirm it (whatever the job's result).
    Healthy,
    /// Says nothing about the run (a 500 page, a throttle, a job-level error).
    Neutral,
    /// Every request would fail the same way (wrong key, host unreachable).
    Systemic(String),
}

impl Breaker {
    pub fn new(threshold: u32) -> Self {
        Self {
            threshold: threshold.max(1),
            state: Mutex::new(State {
                healthy: false,
                consecutive: 0,
                tripped: None,
            }),
            probe: Semaphore::new(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the counters inconsistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for permission to send; `None` once the breaker has tripped.
    pub async fn admit(&self) -> Option<Admission<'_>> {
        loop {
            {
                let s = self.lock();
                if s.tripped.is_some() {
                    return None;
                }
                if s.healthy {
                    return Some(Admission { _probe: None });
                }
            }
            let permit = self.probe.acquire().await.ok()?;
            let s = self.lock();
            if s.tripped.is_some() {
                return None;
            }
            if s.healthy {
                // Became healthy while we waited: no need to hold the probe slot.
                continue;
            }
            return Some(Admission {
                _probe: Some(permit),
            });
        }
    }

    pub fn record(&self, health: Health) {
        let mut s = self.lock();
        match health {
            Health::Healthy => {
                s.healthy = true;
                s.consecutive = 0;
            }
            Health::Neutral => {}
            Health::Systemic(reason) => {
                s.healthy = false;
                s.consecutive += 1;
                if s.consecutive >= self.threshold && s.tripped.is_none() {
                    s.tripped = Some(reason);
                    // wake every waiter so it sees the trip
                    self.probe.close();
                }
            }
        }
    }

    /// Why the breaker tripped, if it has.
    pub fn tripped(&self) -> Option<String> {
        self.lock().tripped.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn trips_after_threshold_consecutive_systemic_failures() {
        let b = Breaker::new(3);
        for i in 0..3 {
            let a = b.admit().await;
            assert!(a.is_some(), "admitted before trip {i}");
            drop(a);
            b.record(Health::Systemic("2205".into()));
        }
        assert_eq!(b.tripped().as_deref(), Some("2205"));
        assert!(b.admit().await.is_none());
    }

    #[tokio::test]
    async fn a_healthy_answer_resets_the_count() {
        let b = Breaker::new(3);
        b.record(Health::Systemic("x".into()));
        b.record(Health::Systemic("x".into()));
        b.record(Health::Healthy);
        b.record(Health::Systemic("x".into()));
        b.record(Health::Neutral);
        b.record(Health::Systemic("x".into()));
        assert!(b.tripped().is_none());
    }

    #[tokio::test]
    async fn only_one_probe_at_a_time_until_healthy() {
        let b = Breaker::new(3);
        let first = b.admit().await.unwrap();
        let second = tokio::time::timeout(std::time::Duration::from_millis(50), b.admit()).await;
        assert!(second.is_err(), "a second request got in while probing");
        drop(first);
        b.record(Health::Healthy);
        let a = b.admit().await.unwrap();
        let c = b.admit().await.unwrap();
        drop((a, c));
    }
}
