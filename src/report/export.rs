//! `smile-recon export`: every job of a run with its full result, or the run's audit trail
//! (every request sent and callback taken), as CSV or JSON Lines, streamed row by row so a
//! run of any size exports in flat memory.

use std::io::Write;

use serde_json::{Value, json};

use super::ReportError;
use super::drift::stop_scan;
use super::mask::mask;
use super::results_csv::{self, cell};
use super::sink::Pii;
use super::summary::rfc3339;
use crate::api::Category;
use crate::store::pii::PERSONAL_FIELDS;
use crate::store::{EventRow, JobRecord, JobState, ResultSource, Store};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Jsonl,
}

pub const EVENT_HEADER: [&str; 10] = [
    "at",
    "line",
    "user_id",
    "job_id",
    "kind",
    "http_status",
    "code",
    "outcome",
    "error",
    "latency_ms",
];

/// Writes the jobs of `run_id` (those in `states`, or all when empty) to `out`; `name`
/// names the output in errors.
pub fn jobs(
    store: &Store,
    run_id: i64,
    format: ExportFormat,
    states: &[JobState],
    pii: Pii,
    out: impl Write,
    name: &str,
) -> Result<u64, ReportError> {
    store.run(run_id)?.ok_or(ReportError::NoRun(run_id))?;
    let path = std::path::Path::new(name);
    let mut w = Output::new(format, out, &results_csv::RESULT_HEADER, path)?;
    let mut n = 0;
    let mut failed = None;
    let scanned = store.for_each_job(run_id, |job| {
        if !states.is_empty() && !states.contains(&job.state) {
            return Ok(());
        }
        n += 1;
        let written = match &mut w {
            Output::Csv(w) => results_csv::write_result(w, &job, pii.shown())
                .map_err(|e| ReportError::csv(path, e)),
            Output::Jsonl(w) => {
                json_line(w, &job_json(&job, pii)).map_err(|e| ReportError::write(path, e))
            }
        };
        written.map_err(|e| {
            failed = Some(e);
            stop_scan()
        })
    });
    if let Some(e) = failed {
        return Err(e);
    }
    scanned?;
    w.flush().map_err(|e| ReportError::write(path, e))?;
    Ok(n)
}

/// Writes the audit trail of `run_id` to `out`.
pub fn events(
    store: &Store,
    run_id: i64,
    format: ExportFormat,
    out: impl Write,
    name: &str,
) -> Result<u64, ReportError> {
    store.run(run_id)?.ok_or(ReportError::NoRun(run_id))?;
    let path = std::path::Path::new(name);
    let mut w = Output::new(format, out, &EVENT_HEADER, path)?;
    let mut n = 0;
    let mut failed = None;
    let scanned = store.for_each_event(run_id, |e| {
        n += 1;
        let written = match &mut w {
            Output::Csv(w) => event_record(w, &e).map_err(|x| ReportError::csv(path, x)),
            Output::Jsonl(w) => {
                json_line(w, &event_json(&e)).map_err(|x| ReportError::write(path, x))
            }
        };
        written.map_err(|x| {
            failed = Some(x);
            stop_scan()
        })
    });
    if let Some(e) = failed {
        return Err(e);
    }
    scanned?;
    w.flush().map_err(|e| ReportError::write(path, e))?;
    Ok(n)
}

/// Where rows go: a CSV writer (its header written), or JSON Lines straight to `out`.
enum Output<W: Write> {
    Csv(Box<csv::Writer<W>>),
    Jsonl(W),
}

impl<W: Write> Output<W> {
    fn new(
        format: ExportFormat,
        out: W,
        header: &[&str],
        path: &std::path::Path,
    ) -> Result<Self, ReportError> {
        Ok(match format {
            ExportFormat::Csv => {
                let mut w = csv::WriterBuilder::new()
                    .has_headers(false)
                    .from_writer(out);
                w.write_record(header)
                    .map_err(|e| ReportError::csv(path, e))?;
                Output::Csv(Box::new(w))
            }
            ExportFormat::Jsonl => Output::Jsonl(out),
        })
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Output::Csv(w) => w.flush(),
            Output::Jsonl(w) => w.flush(),
        }
    }
}

fn json_line(out: &mut impl Write, value: &Value) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"\n")
}

fn event_json(e: &EventRow) -> Value {
    json!({
        "at": rfc3339(e.at),
        "line": e.line,
        "user_id": e.user_id,
        "job_id": e.job_id,
        "kind": e.kind,
        "http_status": e.http_status,
        "code": e.code,
        "outcome": e.outcome,
        "error": e.error,
        "latency_ms": e.latency_ms,
    })
}

fn event_record<W: Write>(w: &mut csv::Writer<W>, e: &EventRow) -> csv::Result<()> {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let number = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
    let fields = [
        rfc3339(e.at),
        e.line.to_string(),
        cell(&e.user_id).into_owned(),
        cell(&e.job_id).into_owned(),
        cell(&e.kind).into_owned(),
        number(e.http_status),
        cell(&text(&e.code)).into_owned(),
        cell(&e.outcome).into_owned(),
        cell(&text(&e.error)).into_owned(),
        number(e.latency_ms),
    ];
    w.write_record(&fields)
}

/// One job as a JSON object: what results.csv has, plus the whole answer as stored.
fn job_json(job: &JobRecord, pii: Pii) -> Value {
    let number = results_csv::id_number(job).unwrap_or_default();
    let mut result: Value = job
        .result_json
        .as_deref()
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or(Value::Null);
    if !pii.shown() {
        hide_personal_fields(&mut result);
    }
    json!({
        "line": job.line,
        "user_id": job.user_id,
        "job_id": job.job_id,
        "smile_job_id": job.smile_job_id,
        "country": job.country,
        "id_type": job.id_type,
        "id_number": if pii.shown() { number } else { mask(&number) },
        "state": job.state.as_str(),
        "result_code": job.result_code,
        "result_text": job.result_text,
        "category": job.category.map(Category::as_str),
        "job_success": job.job_success,
        "attempts": job.attempts,
        "polls": job.polls,
        "last_code": job.last_code,
        "last_error": job.last_error,
        "first_request_at": job.first_request_at.map(rfc3339),
        "completed_at": job.completed_at.map(rfc3339),
        "result_source": job.result_source.map(ResultSource::as_str),
        "signature_confirmed": job.signature_confirmed,
        "result": result,
    })
}

/// Hides [`PERSONAL_FIELDS`] wherever they appear in an answer (a job_status answer holds
/// the result under `result`), except under `Actions`, whose `DOB`, `Names`... are
/// verdicts ("Verified", "Partial Match"), not personal data.
fn hide_personal_fields(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if k == "Actions" {
                    continue;
                }
                if PERSONAL_FIELDS.contains(&k.as_str()) {
                    if let Value::String(s) = v {
                        *s = if k == "IDNumber" || k == "SecondaryIDNumber" {
                            mask(s)
                        } else {
                            "(hidden)".to_owned()
                        };
                    }
                } else {
                    hide_personal_fields(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(hide_personal_fields),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_fields_of_an_answer_are_hidden() {
        let mut v = json!({"job_complete": true, "result": {
            "ResultCode": "1012", "FullName": "Ama Mensah", "DOB": "1990-01-01",
            "IDNumber": "GHA123456789", "Actions": {"DOB": "Verified"}}});
        hide_personal_fields(&mut v);
        let text = v.to_string();
        assert!(
            !text.contains("Ama") && !text.contains("1990-01-01"),
            "{text}"
        );
        assert!(text.contains("********6789"), "{text}");
        assert_eq!(v["result"]["Actions"]["DOB"], "Verified");
        assert_eq!(v["result"]["ResultCode"], "1012");
    }
}
