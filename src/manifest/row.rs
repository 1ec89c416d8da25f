//! A validated manifest row.

use std::fmt;

use serde_json::{Map, Value};

use crate::api::models::IdInfo;

#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub line: i64,
    pub user_id: String,
    pub job_id: String,
    /// The manifest had no job_id for this row; it was derived.
    pub job_id_derived: bool,
    pub body: RowBody,
}

#[derive(Clone, Debug, PartialEq)]
pub enum RowBody {
    Verify(Box<VerifyRow>),
    Poll(PollRow),
    Invalid(RowError),
}

#[derive(Clone, Debug, PartialEq)]
pub struct VerifyRow {
    pub id_info: IdInfo,
    /// Unknown columns: extra `partner_params`.
    pub extra: Map<String, Value>,
    pub expected_result_code: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PollRow {
    pub expected_result_code: Option<String>,
    pub expected_status: Option<ExpectedStatus>,
    pub extra: Map<String, Value>,
}

/// What the partner's records say a job's outcome is (reconciliation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectedStatus {
    Approved,
    Rejected,
    Pending,
}

impl ExpectedStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExpectedStatus::Approved => "approved",
            ExpectedStatus::Rejected => "rejected",
            ExpectedStatus::Pending => "pending",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "approved" => Some(ExpectedStatus::Approved),
            "rejected" => Some(ExpectedStatus::Rejected),
            "pending" => Some(ExpectedStatus::Pending),
            _ => None,
        }
    }
}

/// Why a row cannot be sent. Never quotes the cell: it may hold personal data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowError {
    pub line: i64,
    pub field: String,
    pub reason: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, field {}: {}",
            self.line, self.field, self.reason
        )
    }
}
