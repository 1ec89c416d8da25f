//! Reconciliation: where the partner's records (a poll manifest's expectations) and Smile
//! ID's answer disagree. One row per job, naming the first disagreement found.

use serde::Serialize;

use crate::manifest::ExpectedStatus;
use crate::store::{JobRecord, JobState};

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

/// The disagreement for one job of a poll run, if it has one. A job Smile ID does not
/// know (2304) always disagrees: a poll manifest says the job exists. Every other kind
/// needs the row's expectations.
pub fn check(job: &JobRecord) -> Option<DiscrepancyKind> {
    if job.state == JobState::Invalid {
        return None;
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
