//! A job's lifecycle state, as stored.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Staged, nothing sent yet (or sent and definitely refused, to be sent again).
    Queued,
    /// The intent to submit is committed; the request may have left. On the next turn
    /// (or after a crash) the job is checked through job_status before anything is resent.
    InFlight,
    /// Accepted, or being polled: waiting for a final result.
    Awaiting,
    /// A final result, its signature confirmed.
    Done,
    /// A permanent error, or retries exhausted.
    Failed,
    /// Still pending when the deadline passed.
    GaveUp,
    /// The manifest row did not validate; never sent.
    Invalid,
}

impl JobState {
    pub const ALL: [JobState; 7] = [
        JobState::Queued,
        JobState::InFlight,
        JobState::Awaiting,
        JobState::Done,
        JobState::Failed,
        JobState::GaveUp,
        JobState::Invalid,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::InFlight => "in_flight",
            JobState::Awaiting => "awaiting",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::GaveUp => "gave_up",
            JobState::Invalid => "invalid",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Nothing more will be done for a final job; a final state is never overwritten.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Done | JobState::Failed | JobState::GaveUp | JobState::Invalid
        )
    }

    /// A final state that counts as an error for the exit code.
    pub fn is_error(self) -> bool {
        matches!(
            self,
            JobState::Failed | JobState::GaveUp | JobState::Invalid
        )
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The SQL list of final states, kept beside the enum so the two cannot drift.
pub const FINAL_STATES_SQL: &str = "('done', 'failed', 'gave_up', 'invalid')";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for s in JobState::ALL {
            assert_eq!(JobState::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }

    #[test]
    fn final_states_sql_lists_exactly_the_final_states() {
        for s in JobState::ALL {
            assert_eq!(
                FINAL_STATES_SQL.contains(&format!("'{}'", s.as_str())),
                s.is_final(),
                "{s}"
            );
        }
    }
}
