//! The short table printed when a run stops: read from the store, never the engine's
//! memory, so it says what a report would say.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::api::Category;
use crate::store::{JobState, RunRecord, Store, StoreError};

#[derive(Clone, Debug)]
pub struct FinalSummary {
    pub run: RunRecord,
    pub states: BTreeMap<JobState, u64>,
    pub categories: BTreeMap<String, u64>,
    pub elapsed: Duration,
}

impl FinalSummary {
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
            self.run.reported_status().as_str(),
            self.elapsed.as_secs_f64()
        );
        let width = 24;
        for state in JobState::ALL {
            let n = self.states.get(&state).copied().unwrap_or(0);
            if n > 0 {
                let _ = writeln!(out, "  {:<width$} {n:>8}", label(state));
            }
        }
        for (category, n) in &self.categories {
            let _ = writeln!(out, "  {:<width$} {n:>8}", format!("result: {category}"));
        }
        out
    }

    /// The same figures as one JSON log event (with `--log-format json`), counts as numbers.
    pub fn log(&self) {
        let state = |s: JobState| self.states.get(&s).copied().unwrap_or(0);
        let category = |c: Category| self.categories.get(c.as_str()).copied().unwrap_or(0);
        tracing::info!(
            event = "summary",
            name = %self.run.name,
            mode = %self.run.mode,
            status = self.run.reported_status().as_str(),
            total = self.total(),
            queued = state(JobState::Queued),
            unconfirmed = state(JobState::InFlight),
            awaiting = state(JobState::Awaiting),
            done = state(JobState::Done),
            failed = state(JobState::Failed),
            gave_up = state(JobState::GaveUp),
            invalid = state(JobState::Invalid),
            approved = category(Category::Approved),
            provisionally_approved = category(Category::ProvisionallyApproved),
            rejected = category(Category::Rejected),
            error = category(Category::Error),
            elapsed_seconds = self.elapsed.as_secs_f64(),
            "run {} {}: {} jobs",
            self.run.id,
            self.run.reported_status().as_str(),
            self.total()
        );
    }
}

/// How a state reads in the summary: a job in `in_flight` at the end is not on the wire
/// (nothing is, once the run stopped); its last submission is unconfirmed and resume checks
/// it with job_status before anything is sent again.
pub fn label(state: JobState) -> &'static str {
    match state {
        JobState::InFlight => "sent, unconfirmed",
        JobState::Awaiting => "awaiting result",
        s => s.as_str(),
    }
}
