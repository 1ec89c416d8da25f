//! `summary.json`: the run's figures, versioned; its JSON Schema is
//! `schemas/summary.schema.json` (a test validates every field against it).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::provenance::Provenance;
use crate::store::Latency;

/// Bumped whenever a field is added, changes meaning or disappears: the schema lists every
/// field and allows no other (`additionalProperties: false`). Version 2 added
/// `generated_by`, `pii_shown`, the run's `base_url` and `environment`, and each
/// execution's provenance.
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub schema_version: u32,
    pub generated_at: String,
    /// The version, host, user and command line that wrote this report.
    pub generated_by: Provenance,
    /// Whether the reports written with this summary show personal data (ID numbers) in
    /// clear (`--show-pii`).
    pub pii_shown: bool,
    pub run: RunMeta,
    pub totals: Totals,
    /// By ResultCode, with the catalogue's text and category.
    pub result_codes: Vec<CodeCount>,
    /// The job_status calls' own codes (2302 success, 2304 not found, ...).
    pub job_status_codes: Vec<CodeCount>,
    pub by_country_id_type: Vec<CountryIdType>,
    pub requests: Requests,
    pub callbacks: Callbacks,
    pub signatures: Signatures,
    pub reconciliation: Reconciliation,
    pub drift: Option<Drift>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    pub id: i64,
    pub name: String,
    pub mode: crate::job_spec::RunMode,
    pub endpoint: Option<String>,
    pub manifest_path: String,
    pub manifest_query: Option<String>,
    pub manifest_sha256: String,
    /// The API host the run spoke to (a password in the URL hidden).
    pub base_url: Option<String>,
    /// `sandbox` or `production` when chosen by name (`--env`).
    pub environment: Option<String>,
    pub status: String,
    pub created_at: String,
    pub finished_at: Option<String>,
    pub executions: Vec<Execution>,
    /// The effective configuration, without secrets (the API key is never stored).
    pub config: serde_json::Value,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    pub pid: i64,
    pub command: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub outcome: Option<String>,
    /// `None` for executions recorded before the provenance was kept.
    pub tool_version: Option<String>,
    pub host: Option<String>,
    pub os_user: Option<String>,
    pub command_line: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub jobs: u64,
    /// queued, in_flight, awaiting, done, failed, gave_up, invalid.
    pub by_state: BTreeMap<String, u64>,
    /// Approved, Provisionally Approved, Rejected, Error, and "none" for jobs without a
    /// result.
    pub by_category: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CodeCount {
    pub code: String,
    pub text: String,
    pub category: Option<crate::api::Category>,
    pub count: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CountryIdType {
    pub country: String,
    pub id_type: String,
    pub jobs: u64,
    pub approved: u64,
    pub rejected: u64,
    pub error: u64,
    pub no_result: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Requests {
    pub total: u64,
    pub by_kind: BTreeMap<String, u64>,
    /// Failed attempts that were tried again, over all jobs.
    pub retries: u64,
    /// job_status calls made for the run's jobs.
    pub pending_polls: u64,
    pub jobs_retried: u64,
    pub latency_ms: LatencyMs,
}

/// Callbacks taken by the receiver, and how job_status judged their results.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Callbacks {
    /// Callbacks recorded (refused ones cost no write and are not here: the run's log
    /// and its metrics count them).
    pub recorded: u64,
    /// job_status answered the ResultCode the callback claimed.
    pub confirmed: u64,
    /// job_status answered another ResultCode; job_status's was recorded.
    pub mismatched: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyMs {
    pub p50: Option<i64>,
    pub p90: Option<i64>,
    pub p99: Option<i64>,
    pub max: Option<i64>,
}

impl From<Latency> for LatencyMs {
    fn from(l: Latency) -> Self {
        Self {
            p50: l.p50_ms,
            p90: l.p90_ms,
            p99: l.p99_ms,
            max: l.max_ms,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Signatures {
    pub confirmed: u64,
    pub unconfirmed: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Reconciliation {
    /// Jobs that carried an expectation.
    pub checked: u64,
    pub discrepancies: u64,
    pub by_kind: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    pub compared_with_run: i64,
    /// Jobs found in both runs.
    pub matched: u64,
    /// Of those, jobs whose state or result code changed.
    pub changed: u64,
}

/// Unix milliseconds as RFC 3339 UTC.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}
