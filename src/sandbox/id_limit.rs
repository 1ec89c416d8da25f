//! The per-ID-number limit: at most `limit` accepted requests per ID number (within its
//! country and id_type) in a rolling window; beyond that 2222 until the window frees a
//! slot or the partner calls `/v1/id_number_rate_limit_reset`.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

const SHARDS: usize = 16;

type Key = (String, String, String);

#[derive(Debug)]
pub struct IdLimiter {
    limit: u32,
    window: Duration,
    shards: Vec<Mutex<HashMap<Key, VecDeque<Instant>>>>,
    hasher: RandomState,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn key(country: &str, id_type: &str, id_number: &str) -> Key {
    (
        country.to_owned(),
        id_type.to_owned(),
        id_number.trim().to_ascii_uppercase(),
    )
}

impl IdLimiter {
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window,
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, k: &Key) -> &Mutex<HashMap<Key, VecDeque<Instant>>> {
        &self.shards[(self.hasher.hash_one(k) as usize) % SHARDS]
    }

    /// Counts one request for this ID number, or refuses it with how long until a slot
    /// frees (refused requests do not count).
    pub fn admit(
        &self,
        country: &str,
        id_type: &str,
        id_number: &str,
        now: Instant,
    ) -> Result<(), Duration> {
        let k = key(country, id_type, id_number);
        let mut shard = lock(self.shard(&k));
        let times = shard.entry(k).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            times.pop_front();
        }
        if times.len() >= self.limit as usize {
            let oldest = times.front().copied().unwrap_or(now);
            return Err((oldest + self.window).saturating_duration_since(now));
        }
        times.push_back(now);
        Ok(())
    }

    /// Forgets this ID number's requests; true if there were any.
    pub fn reset(&self, country: Option<&str>, id_type: &str, id_number: &str) -> bool {
        let number = id_number.trim().to_ascii_uppercase();
        let mut cleared = false;
        // Without a country, every country's id_type of that name is cleared.
        for shard in &self.shards {
            lock(shard).retain(|(c, t, n), _| {
                let hit = t == id_type && *n == number && country.is_none_or(|want| want == c);
                cleared |= hit;
                !hit
            });
        }
        cleared
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_refuses_beyond_n_and_frees_with_the_window() {
        let l = IdLimiter::new(3, Duration::from_secs(10));
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(
                l.admit("NG", "BVN", "1", t0 + Duration::from_secs(i))
                    .is_ok()
            );
        }
        let wait = l
            .admit("NG", "BVN", "1", t0 + Duration::from_secs(4))
            .unwrap_err();
        assert_eq!(
            wait,
            Duration::from_secs(6),
            "until the first request ages out"
        );
        assert!(l.admit("NG", "BVN", "2", t0).is_ok(), "another number");
        assert!(l.admit("NG", "NIN_V2", "1", t0).is_ok(), "another id_type");
        assert!(
            l.admit("NG", "BVN", "1", t0 + Duration::from_secs(10))
                .is_ok()
        );
    }

    #[test]
    fn reset_clears_one_number() {
        let l = IdLimiter::new(1, Duration::from_secs(10));
        let t0 = Instant::now();
        assert!(l.admit("GH", "PASSPORT", "g1234567", t0).is_ok());
        assert!(
            l.admit("GH", "PASSPORT", "G1234567", t0).is_err(),
            "case folded"
        );
        assert!(!l.reset(Some("GH"), "PASSPORT", "X"));
        assert!(l.reset(None, "PASSPORT", "g1234567"));
        assert!(l.admit("GH", "PASSPORT", "G1234567", t0).is_ok());
    }
}
