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
    /// The row's `country` and `id_type` cells as given (also for an invalid row, so its
    /// reports still say where it belongs); `None` when absent or empty.
    pub country: Option<String>,
    pub id_type: Option<String>,
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExpectedStatus {
    Approved,
    Rejected,
    Pending,
}

impl ExpectedStatus {
    pub const ALL: [ExpectedStatus; 3] = [
        ExpectedStatus::Approved,
        ExpectedStatus::Rejected,
        ExpectedStatus::Pending,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ExpectedStatus::Approved => "approved",
            ExpectedStatus::Rejected => "rejected",
            ExpectedStatus::Pending => "pending",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        Self::ALL
            .into_iter()
            .find(|e| s.eq_ignore_ascii_case(e.as_str()))
    }
}

/// Why a row cannot be sent. Never quotes the cell: it may hold personal data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowError {
    pub line: i64,
    pub field: String,
    pub reason: String,
}

impl RowError {
    /// A row whose job_id an earlier line of the manifest already uses: staged invalid, and
    /// said in these words by a run and by `validate` alike.
    pub fn duplicate_job_id(line: i64, job_id: &str, first_line: i64) -> Self {
        Self {
            line,
            field: "job_id".into(),
            reason: format!("{job_id:?} is already used on line {first_line}"),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_status_round_trips_any_case() {
        for status in [
            ExpectedStatus::Approved,
            ExpectedStatus::Rejected,
            ExpectedStatus::Pending,
        ] {
            assert_eq!(ExpectedStatus::parse(status.as_str()), Some(status));
            let shouted = status.as_str().to_uppercase();
            assert_eq!(ExpectedStatus::parse(&format!(" {shouted} ")), Some(status));
        }
        assert_eq!(ExpectedStatus::parse("approve"), None);
        assert_eq!(ExpectedStatus::parse(""), None);
    }

    #[test]
    fn a_row_error_names_line_and_field() {
        let e = RowError {
            line: 12,
            field: "dob".into(),
            reason: "must be an ISO date, YYYY-MM-DD".into(),
        };
        assert_eq!(
            e.to_string(),
            "line 12, field dob: must be an ISO date, YYYY-MM-DD"
        );
    }
}
