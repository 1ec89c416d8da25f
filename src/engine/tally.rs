//! Live counts for the reporters (progress, metrics): jobs per state, outgoing requests by
//! endpoint and HTTP status, incoming callbacks, retries. Updated by whoever sends a request
//! or commits a transition; read by reporters, which never touch the engine's work.
//!
//! Outgoing requests (submissions and job_status polls) and incoming callbacks are counted
//! apart: `requests` is only what this process sent.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::api::Category;
use crate::store::JobState;

#[derive(Debug, Default)]
pub struct Tally {
    states: [AtomicU64; JobState::ALL.len()],
    /// The run's jobs (the manifest's rows), fixed when the tally is made.
    total: u64,
    /// Requests this process sent (submissions and job_status polls).
    pub requests: AtomicU64,
    /// Of those, job_status calls.
    pub polls: AtomicU64,
    /// Turns that ended in "try again after a backoff".
    pub retries: AtomicU64,
    /// Requests on the wire right now.
    pub in_flight: AtomicU64,
    /// Jobs whose last request failed and that wait for their retry (not on the wire).
    pub waiting: AtomicU64,
    /// Callbacks the receiver got, and of those the ones it took or refused.
    pub callbacks_received: AtomicU64,
    pub callbacks_accepted: AtomicU64,
    pub callbacks_refused: AtomicU64,
    categories: [AtomicU64; CATEGORIES.len()],
    /// The callback receiver's counts (refusals, confirmations): memory only.
    pub callbacks: super::callbacks::Refusals,
    /// (endpoint path, HTTP status or "error" for no answer) -> requests answered.
    answers: Mutex<BTreeMap<(&'static str, Status), u64>>,
}

/// How a request ended: an HTTP status, or no answer (transport error, timeout).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    Http(u16),
    NoAnswer,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Status::Http(code) => write!(f, "{code}"),
            Status::NoAnswer => f.write_str("error"),
        }
    }
}

/// The result categories a finished job is counted under, in display order.
pub const CATEGORIES: [Category; 4] = [
    Category::Approved,
    Category::ProvisionallyApproved,
    Category::Rejected,
    Category::Error,
];

fn index(state: JobState) -> usize {
    JobState::ALL
        .iter()
        .position(|s| *s == state)
        .unwrap_or_default()
}

/// A copy of the counts at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub states: BTreeMap<JobState, u64>,
    /// The run's jobs; the per-state counts of jobs not yet final may lag by a job or two
    /// when a callback and a worker's turn race, so the total is kept apart.
    pub total: u64,
    pub requests: u64,
    pub polls: u64,
    pub retries: u64,
    pub in_flight: u64,
    pub waiting: u64,
    pub callbacks_received: u64,
    pub callbacks_accepted: u64,
    pub callbacks_refused: u64,
    /// Finished jobs by result category (name as stored), only those with a count.
    pub categories: BTreeMap<&'static str, u64>,
    /// (endpoint path, status) -> requests.
    pub answers: BTreeMap<(&'static str, Status), u64>,
}

impl Snapshot {
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Jobs in a final state (a job becomes final once, so this count is exact).
    pub fn finished(&self) -> u64 {
        let n: u64 = self
            .states
            .iter()
            .filter(|(s, _)| s.is_final())
            .map(|(_, n)| n)
            .sum();
        n.min(self.total)
    }

    pub fn get(&self, state: JobState) -> u64 {
        self.states.get(&state).copied().unwrap_or(0)
    }
}

impl Tally {
    /// Starts from the stored counts (a resumed run): per state, and per category name.
    pub fn from_counts(
        counts: &BTreeMap<JobState, u64>,
        categories: &BTreeMap<String, u64>,
    ) -> Self {
        let tally = Tally {
            total: counts.values().sum(),
            ..Tally::default()
        };
        for (state, n) in counts {
            tally.states[index(*state)].store(*n, Ordering::Relaxed);
        }
        for (i, c) in CATEGORIES.iter().enumerate() {
            if let Some(n) = categories.get(c.as_str()) {
                tally.categories[i].store(*n, Ordering::Relaxed);
            }
        }
        tally
    }

    /// A job finished with a result of this category.
    pub fn categorise(&self, category: Category) {
        if let Some(i) = CATEGORIES.iter().position(|c| *c == category) {
            self.categories[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn transition(&self, from: JobState, to: JobState) {
        if from != to {
            // saturating: a count never wraps even if two writers race on one job
            let _ =
                self.states[index(from)].fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    Some(n.saturating_sub(1))
                });
            self.states[index(to)].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One request answered (or not) by `endpoint` (its path).
    pub fn answered(&self, endpoint: &'static str, status: Status) {
        let mut answers = self.answers.lock().unwrap_or_else(|p| p.into_inner());
        *answers.entry((endpoint, status)).or_default() += 1;
    }

    pub fn snapshot(&self) -> Snapshot {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Snapshot {
            total: self.total,
            polls: load(&self.polls),
            waiting: load(&self.waiting),
            callbacks_received: load(&self.callbacks_received),
            callbacks_accepted: load(&self.callbacks_accepted),
            callbacks_refused: load(&self.callbacks_refused),
            answers: self
                .answers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            states: JobState::ALL
                .iter()
                .map(|s| (*s, self.states[index(*s)].load(Ordering::Relaxed)))
                .filter(|(_, n)| *n > 0)
                .collect(),
            requests: self.requests.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            categories: CATEGORIES
                .iter()
                .enumerate()
                .map(|(i, c)| (c.as_str(), self.categories[i].load(Ordering::Relaxed)))
                .filter(|(_, n)| *n > 0)
                .collect(),
        }
    }
}
