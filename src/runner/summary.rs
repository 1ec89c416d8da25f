//! The short table printed when a run stops: read from the store, never the engine's
//! memory, so it says what a report would say.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::store::{JobState, RunRecord, Store, StoreError};

#[derive(Clone, Debug)]
pub struct Summary {
    pub run: RunRecord,
    pub states: BTreeMap<JobState, u64>,
    pub categories: BTreeMap<String, u64>,
    pub elapsed: Duration,
}

impl Summary {
    /// The summary of a run whose job counts (per state, per result category) the caller
    /// has just read.
    pub fn with_counts(
        store: &Store,
        run_id: i64,
        states: BTreeMap<JobState, u64>,
        categories: BTreeMap<String, u64>,
        elapsed: Duration,
    ) -> Result<Self, StoreError> {
        let run = store.run(run_id)?.ok_or_else(|| StoreError::Corrupt {
            path: store.path().display().to_string(),
            reason: format!("run {run_id} is missing"),
        })?;
        Ok(Self {
            run,
            states,
            categories,
            elapsed,
        })
    }

    pub fn total(&self) -> u64 {
        self.states.values().sum()
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "run {} ({}, {}): {} jobs, {}, {:.1} s",
            self.run.id,
            self.run.name,
            self.run.mode,
            self.total(),
            self.run.status.as_str(),
            self.elapsed.as_secs_f64()
        );
        let width = 24;
        for state in JobState::ALL {
            let n = self.states.get(&state).copied().unwrap_or(0);
            if n > 0 {
                let _ = writeln!(out, "  {:<width$} {n:>8}", state.as_str());
            }
        }
        for (category, n) in &self.categories {
            let _ = writeln!(out, "  {:<width$} {n:>8}", format!("result: {category}"));
        }
        out
    }
}
