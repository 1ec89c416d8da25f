//! What the sandbox received and did, for tests and benchmarks to assert on: `GET
//! /__sandbox/stats` returns a [`Stats`] as JSON, and [`super::RunningSandbox::stats`]
//! the same value in process.
//!
//! Counters are atomics indexed by endpoint and HTTP status, so recording a request costs
//! a couple of uncontended atomic adds; only accepted submissions touch a (sharded) map.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::api::Endpoint;

use super::window::SecondCounter;

/// A snapshot of the counters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Path (`/v1/job_status`, ..., `other` for unknown paths) -> HTTP status -> requests.
    pub requests_by_endpoint: BTreeMap<String, BTreeMap<u16, u64>>,
    pub total_requests: u64,
    /// The most requests received in any one second (wall-clock seconds since start).
    pub max_requests_in_one_second: u64,
    /// Submissions the server took as a new job, per job_id. Each job_id can be taken only
    /// once (a second submission is a duplicate rejection), and a sync answer coded 1014
    /// or 1015 creates no job, so it is not counted here (see `results_by_code`).
    pub accepted_by_job_id: BTreeMap<String, u64>,
    pub accepted_submissions: u64,
    /// 2215 answers.
    pub duplicate_rejections: u64,
    /// 2222 answers.
    pub id_limit_rejections: u64,
    /// Injected HTTP 500s (`fail_rate`).
    pub injected_failures: u64,
    /// Injected 429s (`throttle_rps`).
    pub injected_throttles: u64,
    /// ResultCode -> results produced (sync answers and async jobs alike).
    pub results_by_code: BTreeMap<String, u64>,
    /// Callbacks the receiver answered 2xx.
    pub callbacks_delivered: u64,
    /// Callbacks given up after every attempt failed.
    pub callbacks_failed: u64,
    /// Callbacks never sent (`drop_callbacks`).
    pub callbacks_dropped: u64,
    /// Every callback POST, retries included.
    pub callback_attempts: u64,
}

impl Stats {
    /// Requests to `path` answered with `status`.
    pub fn requests(&self, path: &str, status: u16) -> u64 {
        self.requests_by_endpoint
            .get(path)
            .and_then(|s| s.get(&status))
            .copied()
            .unwrap_or(0)
    }

    /// Requests to `path`, whatever the status.
    pub fn requests_to(&self, path: &str) -> u64 {
        self.requests_by_endpoint
            .get(path)
            .map_or(0, |s| s.values().sum())
    }

    pub fn accepted(&self, job_id: &str) -> u64 {
        self.accepted_by_job_id.get(job_id).copied().unwrap_or(0)
    }

    pub fn results(&self, code: &str) -> u64 {
        self.results_by_code.get(code).copied().unwrap_or(0)
    }
}

/// Where requests are counted: one slot per known endpoint, and one for anything else.
pub const OTHER: usize = Endpoint::ALL.len();
const SLOTS: usize = OTHER + 1;
const STATUSES: usize = 600;
const RESULT_CODES: [&str; 8] = [
    "1012", "1013", "1014", "1015", "1020", "1021", "1022", "1023",
];
const SHARDS: usize = 16;

/// The slot of a request path.
pub fn slot(path: &str) -> usize {
    Endpoint::ALL
        .iter()
        .position(|e| e.path() == path)
        .unwrap_or(OTHER)
}

fn slot_name(slot: usize) -> &'static str {
    Endpoint::ALL.get(slot).map_or("other", |e| e.path())
}

#[derive(Debug)]
pub struct StatsRecorder {
    requests: Vec<AtomicU64>,
    per_second: SecondCounter,
    accepted: Vec<Mutex<HashMap<String, u64>>>,
    hasher: RandomState,
    results: [AtomicU64; RESULT_CODES.len()],
    pub duplicate_rejections: AtomicU64,
    pub id_limit_rejections: AtomicU64,
    pub injected_failures: AtomicU64,
    pub injected_throttles: AtomicU64,
    pub callbacks_delivered: AtomicU64,
    pub callbacks_failed: AtomicU64,
    pub callbacks_dropped: AtomicU64,
    pub callback_attempts: AtomicU64,
}

impl Default for StatsRecorder {
    fn default() -> Self {
        Self::new()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl StatsRecorder {
    pub fn new() -> Self {
        Self {
            requests: (0..SLOTS * STATUSES).map(|_| AtomicU64::new(0)).collect(),
            per_second: SecondCounter::new(),
            accepted: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
            results: Default::default(),
            duplicate_rejections: AtomicU64::new(0),
            id_limit_rejections: AtomicU64::new(0),
            injected_failures: AtomicU64::new(0),
            injected_throttles: AtomicU64::new(0),
            callbacks_delivered: AtomicU64::new(0),
            callbacks_failed: AtomicU64::new(0),
            callbacks_dropped: AtomicU64::new(0),
            callback_attempts: AtomicU64::new(0),
        }
    }

    /// Counts one arriving request in its second; returns that second's count so far.
    pub fn arrived(&self, second: u32) -> u32 {
        self.per_second.hit(second)
    }

    /// Counts one answered request.
    pub fn answered(&self, slot: usize, status: u16) {
        let status = usize::from(status).min(STATUSES - 1);
        self.requests[slot.min(OTHER) * STATUSES + status].fetch_add(1, Ordering::Relaxed);
    }

    pub fn accepted(&self, job_id: &str) {
        let shard = (self.hasher.hash_one(job_id) as usize) % SHARDS;
        *lock(&self.accepted[shard])
            .entry(job_id.to_owned())
            .or_default() += 1;
    }

    pub fn result(&self, code: &str) {
        if let Some(i) = RESULT_CODES.iter().position(|c| *c == code) {
            self.results[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Stats {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut requests_by_endpoint = BTreeMap::new();
        let mut total_requests = 0;
        for slot in 0..SLOTS {
            let mut by_status = BTreeMap::new();
            for status in 0..STATUSES {
                let n = load(&self.requests[slot * STATUSES + status]);
                if n > 0 {
                    by_status.insert(status as u16, n);
                    total_requests += n;
                }
            }
            if !by_status.is_empty() {
                requests_by_endpoint.insert(slot_name(slot).to_owned(), by_status);
            }
        }
        let mut accepted_by_job_id = BTreeMap::new();
        for shard in &self.accepted {
            for (k, v) in lock(shard).iter() {
                accepted_by_job_id.insert(k.clone(), *v);
            }
        }
        let accepted_submissions = accepted_by_job_id.values().sum();
        let results_by_code = RESULT_CODES
            .iter()
            .zip(&self.results)
            .filter(|(_, n)| load(n) > 0)
            .map(|(c, n)| ((*c).to_owned(), load(n)))
            .collect();
        Stats {
            requests_by_endpoint,
            total_requests,
            max_requests_in_one_second: self.per_second.max(),
            accepted_by_job_id,
            accepted_submissions,
            duplicate_rejections: load(&self.duplicate_rejections),
            id_limit_rejections: load(&self.id_limit_rejections),
            injected_failures: load(&self.injected_failures),
            injected_throttles: load(&self.injected_throttles),
            results_by_code,
            callbacks_delivered: load(&self.callbacks_delivered),
            callbacks_failed: load(&self.callbacks_failed),
            callbacks_dropped: load(&self.callbacks_dropped),
            callback_attempts: load(&self.callback_attempts),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_groups_by_path_and_status_and_round_trips_as_json() {
        let r = StatsRecorder::new();
        r.answered(slot("/v1/job_status"), 200);
        r.answered(slot("/v1/job_status"), 200);
        r.answered(slot("/v1/job_status"), 404);
        r.answered(slot("/nope"), 404);
        r.accepted("j1");
        r.result("1020");
        r.result("9999");
        StatsRecorder::bump(&r.duplicate_rejections);
        r.arrived(0);
        r.arrived(0);
        let s = r.snapshot();
        assert_eq!(s.requests("/v1/job_status", 200), 2);
        assert_eq!(s.requests("/v1/job_status", 404), 1);
        assert_eq!(s.requests("other", 404), 1);
        assert_eq!(s.requests_to("/v1/job_status"), 3);
        assert_eq!(s.total_requests, 4);
        assert_eq!(s.accepted("j1"), 1);
        assert_eq!(s.results("1020"), 1);
        assert_eq!(s.duplicate_rejections, 1);
        assert_eq!(s.max_requests_in_one_second, 2);
        let json = serde_json::to_string(&s).unwrap();
        assert!(
            json.contains(r#""/v1/job_status":{"200":2,"404":1}"#),
            "{json}"
        );
        let back: Stats = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
    }
}
