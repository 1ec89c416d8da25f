//! The catalogue of Smile ID codes: what each means, which category of result it is, and
//! what a batch runner should do about it.
//!
//! Three families share one number space: job_status call codes (23xx), request errors
//! (22xx, 24xx) and job results (0xxx, 1xxx). A code's meaning here is the one Smile ID's
//! pages give: "Job Status Codes" (seeds 000 and 001), the Identity Verification result
//! codes and the matching rules of seed 004.

use serde::{Deserialize, Serialize};

/// The result category of a job, as Smile ID's portal groups them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub enum Category {
    Approved,
    #[serde(rename = "Provisionally Approved")]
    ProvisionallyApproved,
    Rejected,
    Error,
}

impl Category {
    pub const ALL: [Category; 4] = [
        Category::Approved,
        Category::ProvisionallyApproved,
        Category::Rejected,
        Category::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Approved => "Approved",
            Category::ProvisionallyApproved => "Provisionally Approved",
            Category::Rejected => "Rejected",
            Category::Error => "Error",
        }
    }

    /// The category named `name` exactly as [`Self::as_str`] spells it.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// Approved or provisionally approved: what a partner counts as approved.
    pub fn is_approved(self) -> bool {
        matches!(self, Category::Approved | Category::ProvisionallyApproved)
    }
}

/// What a runner does with an answer carrying this code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RetryClass {
    /// The job has its result; nothing more to do.
    Final,
    /// The job is not finished yet; ask again later (job_status polling cadence).
    Pending,
    /// A transient failure; try again with backoff, within the attempt budget.
    /// 2222 (per-ID-number limit) is here too: the job is deferred, not failed.
    Retryable,
    /// Trying again gives the same answer; the job ends in error.
    /// 2215 (job_id exists) is here too: it is answered by reading the job, not resending.
    Permanent,
}

/// Which family a code belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeKind {
    /// The job_status call's own status.
    JobStatus,
    /// An error answering a request (submission or job_status).
    Request,
    /// A job's ResultCode.
    Result,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeInfo {
    pub code: &'static str,
    pub text: &'static str,
    pub kind: CodeKind,
    /// `None` for codes that are not a job's result (the job_status call's own codes).
    pub category: Option<Category>,
    pub class: RetryClass,
}

const fn info(
    code: &'static str,
    text: &'static str,
    kind: CodeKind,
    category: Option<Category>,
    class: RetryClass,
) -> CodeInfo {
    CodeInfo {
        code,
        text,
        kind,
        category,
        class,
    }
}

use Category::*;
use CodeKind::*;
use RetryClass::*;

/// Every code Smile ID's documentation and the seeds name.
pub const CATALOGUE: &[CodeInfo] = &[
    // job_status call codes (seeds 000 and 001, "Job Status Codes"). Every code but 2302
    // is an error, whether it comes in a signed 200 answer with `job_complete: false` or
    // as an unsigned error body with a 4xx; none of them means "still pending".
    info("2301", "System error", JobStatus, Some(Error), Retryable),
    info("2302", "Success", JobStatus, None, Final),
    info("2303", "Invalid JSON", JobStatus, Some(Error), Permanent),
    info("2304", "Job not found", JobStatus, Some(Error), Permanent),
    info(
        "2305",
        "Invalid sec_key / signature",
        JobStatus,
        Some(Error),
        Permanent,
    ),
    info(
        "2307",
        "Enrolled user is disabled",
        JobStatus,
        Some(Error),
        Permanent,
    ),
    info(
        "2310",
        "No enrolled user found",
        JobStatus,
        Some(Error),
        Permanent,
    ),
    info(
        "2313",
        "Missing required parameters",
        JobStatus,
        Some(Error),
        Permanent,
    ),
    // The job exists without its data (the Java SDK's fixture answers it with
    // `job_complete: false`): waiting will not bring the data, and sending the job again
    // meets 2215. It ends the job in error.
    info(
        "2314",
        "No zip file received",
        JobStatus,
        Some(Error),
        Permanent,
    ),
    // request errors
    info("2201", "System error", Request, Some(Error), Retryable),
    info("2401", "System error", Request, Some(Error), Retryable),
    info("2203", "Invalid JSON", Request, Some(Error), Permanent),
    info(
        "2204",
        "A parameter is of the wrong data type",
        Request,
        Some(Error),
        Permanent,
    ),
    info(
        "2205",
        "You are not authorized to do that",
        Request,
        Some(Error),
        Permanent,
    ),
    info(
        "2405",
        "You are not authorized to do that",
        Request,
        Some(Error),
        Permanent,
    ),
    info("2212", "Invalid job type", Request, Some(Error), Permanent),
    info(
        "2213",
        "A required parameter is missing",
        Request,
        Some(Error),
        Permanent,
    ),
    info(
        "2215",
        "Job already exists for job_id",
        Request,
        Some(Error),
        Permanent,
    ),
    info(
        "2220",
        "Production is not enabled for this account",
        Request,
        Some(Error),
        Permanent,
    ),
    info(
        "2222",
        "ID number rate limit reached",
        Request,
        Some(Error),
        Retryable,
    ),
    // Identity Verification and Enhanced KYC results
    info("1012", "ID Validated", Result, Some(Approved), Final),
    info("1013", "Invalid ID", Result, Some(Rejected), Final),
    info(
        "1014",
        "Unsupported ID number format",
        Result,
        Some(Error),
        Permanent,
    ),
    info(
        "1015",
        "Queried database unavailable",
        Result,
        Some(Error),
        Retryable,
    ),
    info(
        "1016",
        "Need to activate product",
        Result,
        Some(Error),
        Permanent,
    ),
    info("1020", "Exact Match", Result, Some(Approved), Final),
    info("1021", "Partial Match", Result, Some(Approved), Final),
    info("1022", "No Match", Result, Some(Rejected), Final),
    info("1023", "ID number not found", Result, Some(Rejected), Final),
    // general failures (seed 004) and the enrolment results seen in the seeds
    info("0001", "Data invalid", Result, Some(Rejected), Final),
    info("0903", "Zip corrupt", Result, Some(Rejected), Final),
    info(
        "0907",
        "Fail - possible spoof - strict setting",
        Result,
        Some(Rejected),
        Final,
    ),
    info("0810", "Enroll User", Result, Some(Approved), Final),
    info("1210", "Enroll User", Result, Some(Approved), Final),
    info(
        "0814",
        "Provisional Enroll - Under Review",
        Result,
        Some(ProvisionallyApproved),
        Final,
    ),
];

/// The job_status call's own codes, as seeds 000 and 001 list them.
pub const JOB_STATUS_CODES: &[&str] = &[
    "2301", "2302", "2303", "2304", "2305", "2307", "2310", "2313", "2314",
];

/// Looks a code up; numbers sent as JSON numbers or with lost leading zeros are matched
/// by their four-digit form ("1" and "0001" are the same code).
pub fn lookup(code: &str) -> Option<&'static CodeInfo> {
    let code = code.trim();
    let padded;
    let code = if code.len() < 4 && code.bytes().all(|b| b.is_ascii_digit()) && !code.is_empty() {
        padded = format!("{code:0>4}");
        padded.as_str()
    } else {
        code
    };
    CATALOGUE.iter().find(|c| c.code == code)
}

/// The category of a job's ResultCode; unknown codes have none.
pub fn category_of(code: &str) -> Option<Category> {
    lookup(code).and_then(|c| c.category)
}

/// The 2205-like codes that mean "these credentials do not work": a systemic failure that
/// must stop a run rather than fail every job.
pub fn is_credential_failure(code: &str) -> bool {
    matches!(code.trim(), "2205" | "2405" | "2305" | "2220")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_listed_once() {
        let mut seen = std::collections::HashSet::new();
        for c in CATALOGUE {
            assert!(seen.insert(c.code), "{} twice", c.code);
            assert_eq!(c.code.len(), 4, "{}", c.code);
        }
    }

    #[test]
    fn api_facts_codes_are_all_there() {
        for code in [
            "2301", "2302", "2303", "2304", "2305", "2307", "2310", "2313", "2314", "2203", "2204",
            "2205", "2405", "2212", "2213", "2215", "2220", "2201", "2401", "1020", "1021", "1022",
            "1013", "1023", "1012", "1014", "1015", "1016", "0001", "0903", "0907", "2222",
        ] {
            assert!(lookup(code).is_some(), "{code} missing");
        }
    }

    #[test]
    fn categories_and_classes_follow_the_docs() {
        assert_eq!(category_of("1020"), Some(Category::Approved));
        assert_eq!(category_of("1021"), Some(Category::Approved));
        assert_eq!(category_of("1022"), Some(Category::Rejected));
        assert_eq!(category_of("1013"), Some(Category::Rejected));
        assert_eq!(category_of("0814"), Some(Category::ProvisionallyApproved));
        assert_eq!(lookup("1015").unwrap().class, RetryClass::Retryable);
        assert_eq!(lookup("1014").unwrap().class, RetryClass::Permanent);
        assert_eq!(lookup("2314").unwrap().class, RetryClass::Permanent);
        assert_eq!(lookup("2205").unwrap().class, RetryClass::Permanent);
        assert_eq!(lookup("2301").unwrap().class, RetryClass::Retryable);
        assert_eq!(category_of("9999"), None);
    }

    #[test]
    fn the_seeds_job_status_table_is_here_and_only_2302_is_success() {
        for code in JOB_STATUS_CODES {
            let info = lookup(code).unwrap_or_else(|| panic!("{code} missing"));
            assert_eq!(info.kind, CodeKind::JobStatus, "{code}");
            if *code == "2302" {
                assert_eq!(info.class, RetryClass::Final);
            } else {
                assert_ne!(info.class, RetryClass::Pending, "{code} is an error");
                assert_ne!(info.class, RetryClass::Final, "{code} is an error");
            }
        }
        assert_eq!(lookup("2301").unwrap().class, RetryClass::Retryable);
        assert_eq!(lookup("2304").unwrap().text, "Job not found");
        assert_eq!(lookup("2307").unwrap().text, "Enrolled user is disabled");
    }

    #[test]
    fn lost_leading_zeros_still_match() {
        assert_eq!(lookup("1").unwrap().code, "0001");
        assert_eq!(lookup("907").unwrap().code, "0907");
        assert!(lookup("").is_none());
    }
}
