//! What produced a job's result, what an event records and what a run does: typed above
//! the store, stored as the text they always had.

use serde::{Deserialize, Serialize};

/// Where a job's final result came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultSource {
    /// The submission's synchronous answer.
    Sync,
    /// A signed callback.
    Callback,
    /// A job_status answer.
    JobStatus,
}

impl ResultSource {
    pub const ALL: [ResultSource; 3] = [
        ResultSource::Sync,
        ResultSource::Callback,
        ResultSource::JobStatus,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ResultSource::Sync => "sync",
            ResultSource::Callback => "callback",
            ResultSource::JobStatus => "job_status",
        }
    }
}

impl std::fmt::Display for ResultSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an event in a run's log is: a request we sent, or a callback that came to us.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Submit,
    JobStatus,
    Callback,
}

impl EventKind {
    pub const ALL: [EventKind; 3] = [EventKind::Submit, EventKind::JobStatus, EventKind::Callback];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Submit => "submit",
            EventKind::JobStatus => "job_status",
            EventKind::Callback => "callback",
        }
    }

    /// A request we sent (a callback is not one).
    pub fn is_request(self) -> bool {
        self != EventKind::Callback
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What came of one request or callback, as the `events` table records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventOutcome {
    /// Not decided when the event was made (a request's event before its answer is read).
    Unset,
    /// The job ended done.
    Done,
    /// The job ended in error.
    Failed,
    /// Sent again after a retryable answer.
    Retry,
    /// job_status said not complete yet.
    Pending,
    /// Waiting for a callback or a later check.
    Wait,
    /// The job exists at Smile ID (2215): read through job_status.
    Exists,
    /// job_status does not know the job (2304): sent again.
    NotFound,
    /// job_status confirmed a callback's result.
    Confirmed,
    /// job_status's ResultCode differs from a callback's.
    Mismatch,
    /// A callback claimed a result that job_status is to confirm.
    Claim,
    /// A callback recorded or noted.
    Callback,
}

impl EventOutcome {
    pub const ALL: [EventOutcome; 12] = [
        EventOutcome::Unset,
        EventOutcome::Done,
        EventOutcome::Failed,
        EventOutcome::Retry,
        EventOutcome::Pending,
        EventOutcome::Wait,
        EventOutcome::Exists,
        EventOutcome::NotFound,
        EventOutcome::Confirmed,
        EventOutcome::Mismatch,
        EventOutcome::Claim,
        EventOutcome::Callback,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventOutcome::Unset => "",
            EventOutcome::Done => "done",
            EventOutcome::Failed => "failed",
            EventOutcome::Retry => "retry",
            EventOutcome::Pending => "pending",
            EventOutcome::Wait => "wait",
            EventOutcome::Exists => "exists",
            EventOutcome::NotFound => "not_found",
            EventOutcome::Confirmed => "confirmed",
            EventOutcome::Mismatch => "mismatch",
            EventOutcome::Claim => "claim",
            EventOutcome::Callback => "callback",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
/// What a run does: submit verification jobs, or poll job_status for past ones.
pub enum RunMode {
    /// (The default only for an empty report summary.)
    #[default]
    Submit,
    Poll,
}

impl RunMode {
    pub const ALL: [RunMode; 2] = [RunMode::Submit, RunMode::Poll];

    pub fn as_str(self) -> &'static str {
        match self {
            RunMode::Submit => "submit",
            RunMode::Poll => "poll",
        }
    }
}

impl std::fmt::Display for RunMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
