//! Every figure the reports take from a run's jobs, folded one job at a time: a pure
//! function of the rows, so one scan of the jobs serves the summary, the Markdown and the
//! HTML page (whose tables of discrepancies and failures are kept here too).

use std::collections::BTreeMap;

use super::reconcile::{self, DiscrepancyKind};
use super::summary::{CountryIdType, Reconciliation, Requests, Signatures, Totals};
use crate::api::Category;
use crate::job_spec::RunMode;
use crate::manifest::ExpectedStatus;
use crate::store::JobRecord;

/// How many rows the HTML tables show (the CSVs have all of them).
pub const HTML_ROWS: usize = 200;

/// A table row for the HTML page: line, user_id, job_id, what, detail.
pub type HtmlRow = [String; 5];

/// The first [`HTML_ROWS`] discrepancies and failures, in manifest order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HtmlTables {
    pub discrepancies: Vec<HtmlRow>,
    pub failures: Vec<HtmlRow>,
}

/// The per-job figures of a run, as far as the jobs added so far.
#[derive(Clone, Debug, Default)]
pub struct Aggregate {
    poll_run: bool,
    pub totals: Totals,
    /// Jobs by ResultCode.
    pub result_codes: BTreeMap<String, u64>,
    /// Keyed by (country, id_type); "-" where a job has none.
    pub by_country_id_type: BTreeMap<(String, String), CountryIdType>,
    /// Only the per-job counts (retries, pending polls, jobs retried); the event log's
    /// figures are added when the summary is assembled.
    pub requests: Requests,
    pub signatures: Signatures,
    pub reconciliation: Reconciliation,
    pub tables: HtmlTables,
}

impl Aggregate {
    pub fn new(mode: RunMode) -> Self {
        Self {
            poll_run: mode == RunMode::Poll,
            ..Default::default()
        }
    }

    /// Folds one job in; returns its discrepancy (poll runs only), which the caller may
    /// also write to `discrepancies.csv`.
    pub fn add(&mut self, job: &JobRecord) -> Option<DiscrepancyKind> {
        // A category counts only with the ResultCode it came with.
        let category = job.category.filter(|_| job.result_code.is_some());
        self.count_totals(job, category);
        self.count_place(job, category);
        self.count_requests(job);
        match job.signature_confirmed {
            Some(true) => self.signatures.confirmed += 1,
            Some(false) => self.signatures.unconfirmed += 1,
            None => {}
        }
        let found = self.reconcile(job);
        if job.state.is_error() && self.tables.failures.len() < HTML_ROWS {
            self.tables.failures.push([
                job.line.to_string(),
                job.user_id.clone(),
                job.job_id.clone(),
                job.state.as_str().to_owned(),
                job.last_error.clone().unwrap_or_default(),
            ]);
        }
        found
    }

    fn count_totals(&mut self, job: &JobRecord, category: Option<Category>) {
        let totals = &mut self.totals;
        totals.jobs += 1;
        *totals
            .by_state
            .entry(job.state.as_str().to_owned())
            .or_default() += 1;
        *totals
            .by_category
            .entry(category.map_or("none", Category::as_str).to_owned())
            .or_default() += 1;
        if let Some(code) = &job.result_code {
            *self.result_codes.entry(code.clone()).or_default() += 1;
        }
    }

    fn count_place(&mut self, job: &JobRecord, category: Option<Category>) {
        let key = if self.poll_run {
            answered_place(job)
        } else {
            (
                job.country.clone().unwrap_or_else(|| "-".into()),
                job.id_type.clone().unwrap_or_else(|| "-".into()),
            )
        };
        let place = self
            .by_country_id_type
            .entry(key)
            .or_insert_with_key(|(c, t)| CountryIdType {
                country: c.clone(),
                id_type: t.clone(),
                ..Default::default()
            });
        place.jobs += 1;
        match category {
            Some(Category::Approved | Category::ProvisionallyApproved) => place.approved += 1,
            Some(Category::Rejected) => place.rejected += 1,
            Some(Category::Error) => place.error += 1,
            None => place.no_result += 1,
        }
    }

    fn count_requests(&mut self, job: &JobRecord) {
        // `attempts` counts a submit run's every submission (the first one too) and a
        // poll run's failed job_status calls: the tries beyond the first are retries.
        let retries = if self.poll_run {
            job.attempts.max(0)
        } else {
            (job.attempts - 1).max(0)
        } as u64;
        self.requests.retries += retries;
        self.requests.pending_polls += job.polls.max(0) as u64;
        if retries > 0 {
            self.requests.jobs_retried += 1;
        }
    }

    /// Jobs are checked against the manifest's expectations; a job counts as checked when
    /// it carries one, or when it disagrees without one (a poll run's job not found).
    fn reconcile(&mut self, job: &JobRecord) -> Option<DiscrepancyKind> {
        let mode = if self.poll_run {
            RunMode::Poll
        } else {
            RunMode::Submit
        };
        let found = reconcile::check(mode, job);
        if !reconcile::is_checked(mode, job, found) {
            return None;
        }
        let r = &mut self.reconciliation;
        r.checked += 1;
        let kind = found?;
        r.discrepancies += 1;
        *r.by_kind.entry(kind.as_str().to_owned()).or_default() += 1;
        if self.tables.discrepancies.len() < HTML_ROWS {
            self.tables.discrepancies.push([
                job.line.to_string(),
                job.user_id.clone(),
                job.job_id.clone(),
                kind.as_str().to_owned(),
                format!(
                    "expected {} {}, got {} {}",
                    job.expected_status.map_or("-", ExpectedStatus::as_str),
                    job.expected_result_code.as_deref().unwrap_or(""),
                    job.result_code.as_deref().unwrap_or(job.state.as_str()),
                    job.result_text.as_deref().unwrap_or("")
                ),
            ]);
        }
        Some(kind)
    }
}

/// Where a poll run's job counts in the country x id_type table. A job_status row names
/// neither, so they come from the answer: its result's `Country` and `IDType` (Enhanced
/// KYC answers carry the authority's record; both survive personal-data minimisation),
/// the country as its ISO code when it is one of the id types table's countries. A part
/// the answer does not give is "unknown".
fn answered_place(job: &JobRecord) -> (String, String) {
    let answer: Option<serde_json::Value> = job
        .result_json
        .as_deref()
        .and_then(|text| serde_json::from_str(text).ok());
    // A job_status answer holds the result under `result`; a verify answer is the result.
    let result = answer
        .as_ref()
        .map(|a| a.get("result").filter(|r| r.is_object()).unwrap_or(a));
    let field = |stored: &Option<String>, key: &str| {
        stored
            .as_deref()
            .or_else(|| result.and_then(|r| r.get(key)).and_then(|v| v.as_str()))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let country = field(&job.country, "Country").map(|c| country_code(&c));
    let id_type = field(&job.id_type, "IDType");
    (
        country.unwrap_or_else(|| UNKNOWN.into()),
        id_type.unwrap_or_else(|| UNKNOWN.into()),
    )
}

/// A poll run's country or id_type that its answer does not give.
const UNKNOWN: &str = "unknown";

/// The names answers give the id types table's countries, with their ISO codes.
const COUNTRY_NAMES: [(&str, &str); 10] = [
    ("Côte d'Ivoire", "CI"),
    ("Cote d'Ivoire", "CI"),
    ("Ivory Coast", "CI"),
    ("Ghana", "GH"),
    ("Kenya", "KE"),
    ("Nigeria", "NG"),
    ("Uganda", "UG"),
    ("South Africa", "ZA"),
    ("Zambia", "ZM"),
    ("Zimbabwe", "ZW"),
];

/// An answer's country as an ISO code where it names one of the table's countries (by
/// name or code, in any case); otherwise as the answer gives it.
fn country_code(country: &str) -> String {
    COUNTRY_NAMES
        .iter()
        .find(|(name, code)| {
            name.eq_ignore_ascii_case(country) || code.eq_ignore_ascii_case(country)
        })
        .map_or_else(|| country.to_owned(), |(_, code)| (*code).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::JobState;

    fn job(
        line: i64,
        state: JobState,
        code: Option<&str>,
        category: Option<Category>,
    ) -> JobRecord {
        JobRecord {
            row: line,
            line,
            user_id: format!("u{line}"),
            job_id: format!("j{line}"),
            job_id_derived: false,
            country: Some("GH".into()),
            id_type: Some("PASSPORT".into()),
            input_json: String::new(),
            state,
            attempts: 1,
            polls: 0,
            last_http_status: None,
            last_code: None,
            last_error: None,
            result_code: code.map(str::to_owned),
            result_text: None,
            job_success: None,
            category,
            smile_job_id: None,
            result_source: None,
            result_json: None,
            signature_confirmed: Some(true),
            expected_result_code: None,
            expected_status: None,
            first_request_at: None,
            completed_at: None,
        }
    }

    #[test]
    fn a_submit_run_counts_retries_beyond_the_first_attempt() {
        let mut agg = Aggregate::new(RunMode::Submit);
        let mut a = job(2, JobState::Done, Some("1020"), Some(Category::Approved));
        a.attempts = 3;
        a.polls = 2;
        let mut b = job(3, JobState::Failed, None, Some(Category::Error));
        b.last_error = Some("HTTP 500".into());
        b.country = None;
        assert_eq!(agg.add(&a), None);
        assert_eq!(agg.add(&b), None);
        assert_eq!(agg.totals.jobs, 2);
        assert_eq!(agg.totals.by_state["done"], 1);
        assert_eq!(agg.totals.by_state["failed"], 1);
        // A category without a ResultCode is no result.
        assert_eq!(agg.totals.by_category["none"], 1);
        assert_eq!(agg.result_codes["1020"], 1);
        assert_eq!(agg.requests.retries, 2);
        assert_eq!(agg.requests.jobs_retried, 1);
        assert_eq!(agg.requests.pending_polls, 2);
        assert_eq!(agg.signatures.confirmed, 2);
        let place = &agg.by_country_id_type[&("-".to_owned(), "PASSPORT".to_owned())];
        assert_eq!((place.jobs, place.no_result), (1, 1));
        assert_eq!(
            agg.reconciliation.checked, 0,
            "a submit run reconciles nothing"
        );
        assert_eq!(agg.tables.failures.len(), 1);
        assert_eq!(agg.tables.failures[0][3], "failed");
        assert_eq!(agg.tables.failures[0][4], "HTTP 500");
    }

    #[test]
    fn a_submit_run_reconciles_the_expected_result_codes_only() {
        let mut agg = Aggregate::new(RunMode::Submit);
        let expecting = |line, state, code: Option<&str>| {
            let mut j = job(line, state, code, Some(Category::Approved));
            j.expected_result_code = Some("1020".into());
            j
        };
        let same = expecting(2, JobState::Done, Some("1020"));
        let differs = expecting(3, JobState::Done, Some("1021"));
        let no_result = expecting(4, JobState::Failed, None);
        let mut unknown = job(5, JobState::Done, Some("1020"), Some(Category::Approved));
        unknown.last_code = Some("2304".into());
        assert_eq!(agg.add(&same), None);
        assert_eq!(agg.add(&differs), Some(DiscrepancyKind::ResultCodeDiffers));
        assert_eq!(agg.add(&no_result), None);
        assert_eq!(
            agg.add(&unknown),
            None,
            "job not found is a poll run's rule"
        );
        assert_eq!(agg.reconciliation.checked, 3);
        assert_eq!(agg.reconciliation.discrepancies, 1);
        assert_eq!(agg.reconciliation.by_kind["result_code_differs"], 1);
    }

    #[test]
    fn a_poll_run_places_jobs_by_their_answers_country_and_id_type() {
        let mut agg = Aggregate::new(RunMode::Poll);
        let polled = |line, answer: Option<&str>| {
            let mut j = job(line, JobState::Done, Some("1012"), Some(Category::Approved));
            j.country = None;
            j.id_type = None;
            j.result_json = answer.map(str::to_owned);
            j
        };
        // a job_status answer (result under `result`), minimised as a final job is
        let ekyc = r#"{"code":"2302","job_complete":true,"result":{"ResultCode":"1012",
            "FullName":"(removed)","IDType":"BVN","Country":"Nigeria","IDNumber":"****5678"}}"#;
        agg.add(&polled(2, Some(ekyc)));
        agg.add(&polled(3, Some(ekyc)));
        // a verify answer is the result itself; a code stays a code, a foreign name as given
        agg.add(&polled(
            4,
            Some(r#"{"ResultCode":"1012","IDType":"NIN","Country":"ng"}"#),
        ));
        agg.add(&polled(
            5,
            Some(r#"{"result":{"IDType":"PASSPORT","Country":"Atlantis"}}"#),
        ));
        // basic KYC answers name neither; no answer, or one that is not JSON: unknown
        agg.add(&polled(
            6,
            Some(r#"{"result":{"ResultCode":"1020","Country":""}}"#),
        ));
        agg.add(&polled(7, None));
        agg.add(&polled(8, Some("not json")));
        let places: Vec<(&str, &str, u64)> = agg
            .by_country_id_type
            .values()
            .map(|p| (p.country.as_str(), p.id_type.as_str(), p.jobs))
            .collect();
        assert_eq!(
            places,
            [
                ("Atlantis", "PASSPORT", 1),
                ("NG", "BVN", 2),
                ("NG", "NIN", 1),
                ("unknown", "unknown", 3)
            ]
        );
    }

    #[test]
    fn a_submit_run_places_jobs_by_their_row_whatever_the_answer_says() {
        let mut agg = Aggregate::new(RunMode::Submit);
        let mut j = job(2, JobState::Done, Some("1012"), Some(Category::Approved));
        j.result_json = Some(r#"{"IDType":"BVN","Country":"Nigeria"}"#.into());
        agg.add(&j);
        j.country = None;
        agg.add(&j);
        let keys: Vec<_> = agg.by_country_id_type.keys().cloned().collect();
        assert_eq!(
            keys,
            [
                ("-".to_owned(), "PASSPORT".to_owned()),
                ("GH".to_owned(), "PASSPORT".to_owned())
            ]
        );
    }

    #[test]
    fn a_poll_run_counts_discrepancies_and_keeps_the_first_rows() {
        let mut agg = Aggregate::new(RunMode::Poll);
        for line in 0..(HTML_ROWS as i64 + 5) {
            let mut j = job(line, JobState::Done, Some("1021"), Some(Category::Rejected));
            j.expected_status = Some(ExpectedStatus::Approved);
            j.attempts = 0;
            assert_eq!(
                agg.add(&j),
                Some(DiscrepancyKind::ExpectedApprovedButRejected)
            );
        }
        let agreeing = {
            let mut j = job(999, JobState::Done, Some("1020"), Some(Category::Approved));
            j.expected_result_code = Some("1020".into());
            j
        };
        assert_eq!(agg.add(&agreeing), None);
        let r = &agg.reconciliation;
        assert_eq!(r.checked, HTML_ROWS as u64 + 6);
        assert_eq!(r.discrepancies, HTML_ROWS as u64 + 5);
        assert_eq!(
            r.by_kind["expected_approved_but_rejected"],
            HTML_ROWS as u64 + 5
        );
        assert_eq!(agg.tables.discrepancies.len(), HTML_ROWS);
        assert_eq!(agg.tables.discrepancies[0][0], "0");
        assert!(agg.tables.discrepancies[0][4].starts_with("expected approved"));
        // A poll run's `attempts` are failed job_status calls: each one is a retry.
        assert_eq!(agg.requests.retries, 1);
    }
}
