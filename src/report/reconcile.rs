//! Reconciliation: where the partner's records (a poll manifest's expectations) and Smile
//! ID's answer disagree. One row per job, naming the first disagreement found.

use serde::Serialize;

use crate::manifest::ExpectedStatus;
use crate::store::{JobRecord, JobState, RunMode};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscrepancyKind {
    /// job_status says there is no such job.
    JobNotFound,
    ExpectedApprovedButRejected,
    ExpectedRejectedButApproved,
    /// The records say pending; Smile ID has a final result.
    ExpectedPendingButComplete,
    /// The records say complete; Smile ID is still working on it (at the deadline).
    ExpectedCompleteButPending,
    ResultCodeDiffers,
}

impl DiscrepancyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DiscrepancyKind::JobNotFound => "job_not_found",
            DiscrepancyKind::ExpectedApprovedButRejected => "expected_approved_but_rejected",
            DiscrepancyKind::ExpectedRejectedButApproved => "expected_rejected_but_approved",
            DiscrepancyKind::ExpectedPendingButComplete => "expected_pending_but_complete",
            DiscrepancyKind::ExpectedCompleteButPending => "expected_complete_but_pending",
            DiscrepancyKind::ResultCodeDiffers => "result_code_differs",
        }
    }
}

/// Whether a result counts as approved (Approved or Provisionally Approved).
fn approved(job: &JobRecord) -> Option<bool> {
    match job.category {
        Some(c) => Some(c.is_approved()),
        None => job.job_success,
    }
}

/// Whether a job is reconciled at all: a row with an expectation, or (poll runs only) a
/// job Smile ID does not know, which a poll manifest says exists.
pub fn is_checked(mode: RunMode, job: &JobRecord, found: Option<DiscrepancyKind>) -> bool {
    let expects = job.expected_result_code.is_some()
        || (mode == RunMode::Poll && job.expected_status.is_some());
    expects || found.is_some()
}

/// The disagreement for one job, if it has one. In a poll run, a job Smile ID does not
/// know (2304) always disagrees: a poll manifest says the job exists; every other kind
/// needs the row's expectations. A submit run's rows can expect only a ResultCode
/// (`expected_result_code`), compared with the result the submission got.
pub fn check(mode: RunMode, job: &JobRecord) -> Option<DiscrepancyKind> {
    if job.state == JobState::Invalid {
        return None;
    }
    if mode == RunMode::Submit {
        let has_result = job.result_code.is_some() && job.state == JobState::Done;
        return match (
            job.expected_result_code.as_deref(),
            job.result_code.as_deref(),
        ) {
            (Some(want), Some(got)) if has_result && want != got => {
                Some(DiscrepancyKind::ResultCodeDiffers)
            }
            _ => None,
        };
    }
    let has_result = job.result_code.is_some() && job.state == JobState::Done;
    if !has_result && job.last_code.as_deref() == Some("2304") {
        return Some(DiscrepancyKind::JobNotFound);
    }
    let expected_status = job.expected_status;
    let expected_code = job.expected_result_code.as_deref();
    if expected_status.is_none() && expected_code.is_none() {
        return None;
    }
    if !has_result {
        // Still pending when the run stopped (deadline), or an error: a disagreement only
        // if the records say the job is complete.
        return match (expected_status, job.state) {
            (Some(ExpectedStatus::Pending), _) => None,
            (_, JobState::GaveUp) => Some(DiscrepancyKind::ExpectedCompleteButPending),
            _ => None,
        };
    }
    match (expected_status, approved(job)) {
        (Some(ExpectedStatus::Pending), _) => {
            return Some(DiscrepancyKind::ExpectedPendingButComplete);
        }
        (Some(ExpectedStatus::Approved), Some(false)) => {
            return Some(DiscrepancyKind::ExpectedApprovedButRejected);
        }
        (Some(ExpectedStatus::Rejected), Some(true)) => {
            return Some(DiscrepancyKind::ExpectedRejectedButApproved);
        }
        _ => {}
    }
    match (expected_code, job.result_code.as_deref()) {
        (Some(want), Some(got)) if want != got => Some(DiscrepancyKind::ResultCodeDiffers),
        _ => None,
    }
}
