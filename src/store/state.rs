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

/// The SQL test for a job that still needs work (not final), kept beside the enum so the
/// two cannot drift. Written as ORed equalities, not `state IN (...)`: SQLite evaluates a
/// constant IN list of three or more through a temporary b-tree, created and dropped on
/// every execution, which cost about a fifth of the runner's CPU (callgrind). The partial
/// index `jobs_active` (migration 003) has exactly this predicate, so that queries using
/// it can use the index.
pub const ACTIVE_SQL: &str = "(state = 'queued' OR state = 'in_flight' OR state = 'awaiting')";

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
    fn all_lists_the_states_in_declaration_order() {
        // `Store::counts` indexes an array by `state as usize`.
        for (i, s) in JobState::ALL.into_iter().enumerate() {
            assert_eq!(s as usize, i, "{s}");
        }
    }

    #[test]
    fn active_sql_names_exactly_the_states_that_are_not_final() {
        for s in JobState::ALL {
            assert_eq!(
                ACTIVE_SQL.contains(&format!("'{}'", s.as_str())),
                !s.is_final(),
                "{s}"
            );
        }
    }

    #[test]
    fn the_active_index_uses_the_same_predicate() {
        let migration = include_str!("../../migrations/003_active_index_without_in.sql");
        assert!(migration.contains(ACTIVE_SQL), "{migration}");
    }
}
