//! `results.csv` (one row per job) and `discrepancies.csv` (one row per disagreement).

use std::borrow::Cow;

use serde::Serialize;
use serde_json::Value;

use super::mask::mask;
use super::reconcile::DiscrepancyKind;
use super::summary::rfc3339;
use crate::api::Category;
use crate::manifest::ExpectedStatus;
use crate::store::{JobRecord, ResultSource};

/// The `Actions` of an Identity Verification result, in the order Smile ID lists them.
pub const ACTIONS: [&str; 7] = [
    "Verify_ID_Number",
    "Return_Personal_Info",
    "Names",
    "DOB",
    "Gender",
    "Phone_Number",
    "ID_Verification",
];

#[derive(Serialize)]
struct ResultRow<'a> {
    line: i64,
    user_id: Cow<'a, str>,
    job_id: Cow<'a, str>,
    /// Smile ID's own reference for the job (`SmileJobID`), the one its support and a
    /// partner's auditor share.
    smile_job_id: Cow<'a, str>,
    country: Cow<'a, str>,
    id_type: Cow<'a, str>,
    id_number: Cow<'a, str>,
    state: Cow<'a, str>,
    result_code: Cow<'a, str>,
    result_text: Cow<'a, str>,
    category: Cow<'a, str>,
    job_success: Cow<'a, str>,
    #[serde(rename = "Verify_ID_Number")]
    verify_id_number: Cow<'a, str>,
    #[serde(rename = "Return_Personal_Info")]
    return_personal_info: Cow<'a, str>,
    #[serde(rename = "Names")]
    names: Cow<'a, str>,
    #[serde(rename = "DOB")]
    dob: Cow<'a, str>,
    #[serde(rename = "Gender")]
    gender: Cow<'a, str>,
    #[serde(rename = "Phone_Number")]
    phone_number: Cow<'a, str>,
    #[serde(rename = "ID_Verification")]
    id_verification: Cow<'a, str>,
    attempts: i64,
    polls: i64,
    first_request_at: Cow<'a, str>,
    completed_at: Cow<'a, str>,
    result_source: Cow<'a, str>,
    signature_confirmed: Cow<'a, str>,
    last_error: Cow<'a, str>,
}

fn yes_no(b: Option<bool>) -> &'static str {
    match b {
        Some(true) => "true",
        Some(false) => "false",
        None => "",
    }
}

/// The ID number of a verify row as stored: in clear while its run keeps personal data
/// (or until the job is final), else already masked. Poll rows have none.
pub fn id_number(job: &JobRecord) -> Option<String> {
    crate::store::pii::shown_id_number(&job.input_json)
}

fn actions(job: &JobRecord) -> [String; 7] {
    let parsed: Option<Value> = job
        .result_json
        .as_deref()
        .and_then(|j| serde_json::from_str(j).ok());
    // A sync answer or a callback is the result itself; a job_status answer holds it
    // under `result`.
    let actions = parsed
        .as_ref()
        .and_then(|v| v.get("Actions").or_else(|| v.get("result")?.get("Actions")));
    ACTIONS.map(|name| {
        actions
            .and_then(|a| a.get(name))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    })
}

pub fn write_result<W: std::io::Write>(
    out: &mut csv::Writer<W>,
    job: &JobRecord,
    show_pii: bool,
) -> csv::Result<()> {
    let number = id_number(job).unwrap_or_default();
    let [
        verify_id_number,
        return_personal_info,
        names,
        dob,
        gender,
        phone_number,
        id_verification,
    ] = actions(job);
    out.serialize(ResultRow {
        line: job.line,
        user_id: cell(&job.user_id),
        job_id: cell(&job.job_id),
        smile_job_id: cell(job.smile_job_id.as_deref().unwrap_or("")),
        country: cell(job.country.as_deref().unwrap_or("")),
        id_type: cell(job.id_type.as_deref().unwrap_or("")),
        id_number: owned(if show_pii { number } else { mask(&number) }),
        state: cell(job.state.as_str()),
        result_code: cell(job.result_code.as_deref().unwrap_or("")),
        result_text: cell(job.result_text.as_deref().unwrap_or("")),
        category: cell(job.category.map_or("", Category::as_str)),
        job_success: cell(yes_no(job.job_success)),
        verify_id_number: owned(verify_id_number),
        return_personal_info: owned(return_personal_info),
        names: owned(names),
        dob: owned(dob),
        gender: owned(gender),
        phone_number: owned(phone_number),
        id_verification: owned(id_verification),
        attempts: job.attempts,
        polls: job.polls,
        first_request_at: owned(job.first_request_at.map(rfc3339).unwrap_or_default()),
        completed_at: owned(job.completed_at.map(rfc3339).unwrap_or_default()),
        result_source: cell(job.result_source.map_or("", ResultSource::as_str)),
        signature_confirmed: cell(yes_no(job.signature_confirmed)),
        last_error: cell(job.last_error.as_deref().unwrap_or("")),
    })
}

/// A text cell as a spreadsheet will not run it: one that starts with `=`, `+`, `-`, `@`,
/// a tab or a carriage return (a formula, or a way to start one) gets a leading `'`, as
/// OWASP's "CSV Injection" page recommends; quoting is the csv writer's. Every text cell
/// of every CSV goes through here: user_id, job_id and the ID number come from the
/// manifest, the result text and `Actions` from the API. Numbers we count ourselves
/// (line, attempts, polls) are written as numbers and are never negative.
pub fn cell(text: &str) -> Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

fn owned<'a>(text: String) -> Cow<'a, str> {
    match cell(&text) {
        Cow::Borrowed(_) => Cow::Owned(text),
        Cow::Owned(escaped) => Cow::Owned(escaped),
    }
}

#[derive(Serialize)]
struct DiscrepancyRow<'a> {
    line: i64,
    user_id: Cow<'a, str>,
    job_id: Cow<'a, str>,
    kind: Cow<'a, str>,
    expected_status: Cow<'a, str>,
    expected_result_code: Cow<'a, str>,
    state: Cow<'a, str>,
    result_code: Cow<'a, str>,
    result_text: Cow<'a, str>,
    category: Cow<'a, str>,
    last_code: Cow<'a, str>,
}

pub fn write_discrepancy<W: std::io::Write>(
    out: &mut csv::Writer<W>,
    job: &JobRecord,
    kind: DiscrepancyKind,
) -> csv::Result<()> {
    out.serialize(DiscrepancyRow {
        line: job.line,
        user_id: cell(&job.user_id),
        job_id: cell(&job.job_id),
        kind: cell(kind.as_str()),
        expected_status: cell(job.expected_status.map_or("", ExpectedStatus::as_str)),
        expected_result_code: cell(job.expected_result_code.as_deref().unwrap_or("")),
        state: cell(job.state.as_str()),
        result_code: cell(job.result_code.as_deref().unwrap_or("")),
        result_text: cell(job.result_text.as_deref().unwrap_or("")),
        category: cell(job.category.map_or("", Category::as_str)),
        last_code: cell(job.last_code.as_deref().unwrap_or("")),
    })
}

pub const RESULT_HEADER: [&str; 26] = [
    "line",
    "user_id",
    "job_id",
    "smile_job_id",
    "country",
    "id_type",
    "id_number",
    "state",
    "result_code",
    "result_text",
    "category",
    "job_success",
    "Verify_ID_Number",
    "Return_Personal_Info",
    "Names",
    "DOB",
    "Gender",
    "Phone_Number",
    "ID_Verification",
    "attempts",
    "polls",
    "first_request_at",
    "completed_at",
    "result_source",
    "signature_confirmed",
    "last_error",
];

pub const DISCREPANCY_HEADER: [&str; 11] = [
    "line",
    "user_id",
    "job_id",
    "kind",
    "expected_status",
    "expected_result_code",
    "state",
    "result_code",
    "result_text",
    "category",
    "last_code",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::JobState;

    fn job() -> JobRecord {
        JobRecord {
            row: 1,
            line: 2,
            user_id: "u".into(),
            job_id: "j".into(),
            job_id_derived: false,
            country: Some("GH".into()),
            id_type: Some("PASSPORT".into()),
            input_json:
                r#"{"id_info":{"country":"GH","id_type":"PASSPORT","id_number":"G4583959"}}"#.into(),
            state: JobState::Done,
            attempts: 0,
            polls: 0,
            last_http_status: None,
            last_code: None,
            last_error: None,
            result_code: Some("1020".into()),
            result_text: None,
            job_success: Some(true),
            category: Some(Category::Approved),
            smile_job_id: None,
            result_source: None,
            result_json: Some(r#"{"Actions":{"Names":"Exact Match"}}"#.into()),
            signature_confirmed: Some(true),
            expected_result_code: None,
            expected_status: None,
            first_request_at: None,
            completed_at: None,
        }
    }

    fn header_of(write: impl FnOnce(&mut csv::Writer<Vec<u8>>)) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        write(&mut w);
        let bytes = w.into_inner().unwrap();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn headers_match_the_rows() {
        let j = job();
        assert_eq!(
            header_of(|w| write_result(w, &j, false).unwrap()),
            RESULT_HEADER.join(",")
        );
        assert_eq!(
            header_of(|w| write_discrepancy(w, &j, DiscrepancyKind::JobNotFound).unwrap()),
            DISCREPANCY_HEADER.join(",")
        );
    }

    #[test]
    fn id_numbers_are_masked_unless_asked() {
        let j = job();
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        write_result(&mut w, &j, false).unwrap();
        write_result(&mut w, &j, true).unwrap();
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("****3959") && !lines[0].contains("G4583959"));
        assert!(lines[1].contains("G4583959"));
        assert!(lines[0].contains("Exact Match"));
    }

    #[test]
    fn cells_that_would_start_a_formula_are_escaped() {
        let mut j = job();
        j.user_id = "=HYPERLINK(\"http://evil\",\"x\")".into();
        j.job_id = "+1+1".into();
        j.result_text = Some("-2+3".into());
        j.last_error = Some("@SUM(A1)".into());
        j.country = Some("\tGH".into());
        j.id_type = Some("\r=1".into());
        j.input_json = r#"{"id_info":{"id_number":"=1+1"}}"#.into();
        j.result_json = Some(r#"{"Actions":{"Names":"=cmd|' /C calc'!A0"}}"#.into());
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_writer(Vec::new());
        write_result(&mut w, &j, true).unwrap();
        write_discrepancy(&mut w, &j, DiscrepancyKind::JobNotFound).unwrap();
        let bytes = w.into_inner().unwrap();
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(bytes.as_slice());
        for record in r.records() {
            for field in record.unwrap().iter() {
                assert!(
                    !field.starts_with(['=', '+', '-', '@', '\t', '\r']),
                    "a cell starts a formula: {field:?}"
                );
            }
        }
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains("'=HYPERLINK"), "{text}");
        assert!(
            text.contains("'-2+3") && text.contains("'@SUM(A1)"),
            "{text}"
        );
        assert!(text.contains("'=1+1") && text.contains("'=cmd|"), "{text}");
        // Ordinary cells are untouched.
        assert_eq!(cell("1020"), "1020");
        assert_eq!(cell("****3959"), "****3959");
        assert_eq!(cell("2026-11-22T10:00:00Z"), "2026-11-22T10:00:00Z");
    }

    #[test]
    fn actions_are_read_from_a_job_status_answer_too() {
        let mut j = job();
        j.result_json = Some(
            r#"{"job_complete":true,"result":{"ResultCode":"1021","Actions":{"DOB":"Partial Match"}}}"#
                .into(),
        );
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        write_result(&mut w, &j, false).unwrap();
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        assert!(text.contains("Partial Match"), "{text}");
    }
}
