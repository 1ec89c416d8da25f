//! Live counts for the progress reporters: jobs per state, requests, retries. Updated by
//! whoever commits a transition; read by reporters, which never touch the engine's work.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::api::Category;
use crate::store::JobState;

#[derive(Debug, Default)]
pub struct Tally {
    states: [AtomicU64; JobState::ALL.len()],
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub in_flight: AtomicU64,
    categories: [AtomicU64; CATEGORIES.len()],
    /// The callback receiver's counts (refusals, confirmations): memory only.
    pub callbacks: super::callbacks::Refusals,
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
    pub requests: u64,
    pub retries: u64,
    pub in_flight: u64,
    /// Finished jobs by result category (name as stored), only those with a count.
    pub categories: BTreeMap<&'static str, u64>,
}

impl Snapshot {
    pub fn total(&self) -> u64 {
        self.states.values().sum()
    }

    pub fn finished(&self) -> u64 {
        self.states
            .iter()
            .filter(|(s, _)| s.is_final())
            .map(|(_, n)| n)
            .sum()
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
        let tally = Tally::default();
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

    /// A job finished with a result of this category (as stored: "Approved", ...).
    pub fn categorise(&self, category: &str) {
        if let Some(i) = CATEGORIES.iter().position(|c| c.as_str() == category) {
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

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
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
