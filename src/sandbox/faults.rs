//! Decides, request by request, which injected fault applies. Every random choice comes
//! from one generator seeded by the config, so a run with the same seed and the same
//! request order misbehaves the same way.

use std::sync::Mutex;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

use super::config::Faults;

#[derive(Debug)]
pub struct FaultInjector {
    faults: Faults,
    /// Held only for one draw, never across an await.
    rng: Mutex<SmallRng>,
}

impl FaultInjector {
    pub fn new(faults: Faults, seed: u64) -> Self {
        Self {
            faults,
            rng: Mutex::new(SmallRng::seed_from_u64(seed)),
        }
    }

    fn draw<T>(&self, f: impl FnOnce(&mut SmallRng) -> T) -> T {
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut rng)
    }

    /// The delay before this request is answered: `latency ± jitter`, never negative.
    pub fn latency(&self) -> Duration {
        let base = self.faults.latency;
        let jitter = self.faults.latency_jitter;
        if jitter.is_zero() {
            return base;
        }
        let j = jitter.as_secs_f64();
        let offset = self.draw(|r| r.random_range(-j..=j));
        Duration::from_secs_f64((base.as_secs_f64() + offset).max(0.0))
    }

    /// Whether this request fails with an injected HTTP 500.
    pub fn fails(&self) -> bool {
        chance(self, self.faults.fail_rate)
    }

    /// Whether this callback is never sent.
    pub fn drops_callback(&self) -> bool {
        chance(self, self.faults.drop_callbacks)
    }

    /// Whether a request that is the `count`th of its second is over the throttle.
    pub fn throttled(&self, count: u32) -> bool {
        self.faults.throttle_rps.is_some_and(|rps| count > rps)
    }

    /// A fair coin from the same generator (the `mixed` shape of job_status errors).
    pub fn coin(&self) -> bool {
        self.draw(|r| r.random_bool(0.5))
    }

    /// Whether the authority is down `elapsed` after start.
    pub fn outage_at(&self, elapsed: Duration) -> bool {
        self.faults.outage.is_some_and(|o| o.contains(elapsed))
    }

    /// How long after start the current or next outage ends, if one is still to come.
    pub fn outage_ends(&self, elapsed: Duration) -> Option<Duration> {
        self.faults
            .outage
            .filter(|o| elapsed < o.end())
            .map(|o| o.end())
    }
}

fn chance(f: &FaultInjector, p: f64) -> bool {
    if p <= 0.0 {
        false
    } else if p >= 1.0 {
        true
    } else {
        f.draw(|r| r.random_bool(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::config::Outage;

    #[test]
    fn same_seed_same_choices() {
        let faults = Faults {
            fail_rate: 0.3,
            latency: Duration::from_millis(10),
            latency_jitter: Duration::from_millis(5),
            ..Faults::default()
        };
        let a = FaultInjector::new(faults.clone(), 9);
        let b = FaultInjector::new(faults, 9);
        let run = |f: &FaultInjector| -> Vec<(bool, Duration)> {
            (0..200).map(|_| (f.fails(), f.latency())).collect()
        };
        let (ra, rb) = (run(&a), run(&b));
        assert_eq!(ra, rb);
        let failures = ra.iter().filter(|(f, _)| *f).count();
        assert!((20..=100).contains(&failures), "{failures} of 200 at 0.3");
        for (_, l) in ra {
            assert!(l >= Duration::from_millis(5) && l <= Duration::from_millis(15));
        }
    }

    #[test]
    fn defaults_inject_nothing_and_extremes_are_certain() {
        let f = FaultInjector::new(Faults::default(), 0);
        assert!(!f.fails() && !f.drops_callback() && !f.throttled(u32::MAX));
        assert_eq!(f.latency(), Duration::ZERO);
        assert!(!f.outage_at(Duration::ZERO));
        let f = FaultInjector::new(
            Faults {
                fail_rate: 1.0,
                throttle_rps: Some(2),
                outage: Some(Outage {
                    start_after: Duration::from_secs(1),
                    duration: Duration::from_secs(1),
                }),
                ..Faults::default()
            },
            0,
        );
        assert!(f.fails());
        assert!(!f.throttled(2) && f.throttled(3));
        assert!(f.outage_at(Duration::from_millis(1500)));
        assert_eq!(f.outage_ends(Duration::ZERO), Some(Duration::from_secs(2)));
        assert_eq!(f.outage_ends(Duration::from_secs(2)), None);
    }
}
