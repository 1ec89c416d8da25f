//! Reports: built from the store alone (never the engine's memory), so `smile-recon
//! report` on a finished run writes exactly what the run wrote. `summary.json`,
//! `results.csv`, `discrepancies.csv`, `drift.csv`, `summary.md` and `report.html`.

mod html;
mod markdown;
pub mod mask;
pub mod reconcile;
mod results_csv;
pub mod summary;

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::api::{Category, codes};
use crate::files::AtomicFile;
use crate::job_spec::RunMode;
use crate::manifest::ExpectedStatus;
use crate::store::{Store, StoreError};

pub use reconcile::DiscrepancyKind;
pub use summary::{SCHEMA_VERSION, Summary};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Format {
    Json,
    Csv,
    Md,
    Html,
}

/// The formats written when none are named (`--format`, `--report-format`, a spec's
/// `[report]`): all of them.
pub const DEFAULT_FORMATS: &str = "json,csv,md,html";

impl Format {
    pub const ALL: [Format; 4] = [Format::Json, Format::Csv, Format::Md, Format::Html];

    pub fn parse_list(items: &[String]) -> Result<Vec<Format>, String> {
        let mut formats = Vec::new();
        for item in items.iter().flat_map(|s| s.split(',')) {
            let f = match item.trim().to_ascii_lowercase().as_str() {
                "json" => Format::Json,
                "csv" => Format::Csv,
                "md" | "markdown" => Format::Md,
                "html" => Format::Html,
                "" => continue,
                other => {
                    return Err(format!(
                        "unknown report format {other:?} (json, csv, md, html)"
                    ));
                }
            };
            if !formats.contains(&f) {
                formats.push(f);
            }
        }
        Ok(formats)
    }
}

#[derive(Clone, Debug)]
pub struct ReportOptions {
    pub formats: Vec<Format>,
    pub out: PathBuf,
    pub show_pii: bool,
    /// Drift against this run; `None`: the previous run of the same name, if any.
    pub compare: Option<i64>,
}

/// What was written.
#[derive(Clone, Debug)]
pub struct Written {
    pub summary: Summary,
    pub files: Vec<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
    #[error("no run {0} in this database")]
    NoRun(i64),
}

fn io(path: &Path, e: impl std::fmt::Display) -> ReportError {
    ReportError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

type CsvOut = csv::Writer<BufWriter<AtomicFile>>;

/// A CSV written to a temporary file beside `path` (0600, never through a link), which
/// becomes `path` only once complete ([`finish_csv`]).
fn csv_writer(path: &Path, header: &[&str]) -> Result<CsvOut, ReportError> {
    let file = AtomicFile::create(path).map_err(|e| io(path, e))?;
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(BufWriter::new(file));
    w.write_record(header).map_err(|e| io(path, e))?;
    Ok(w)
}

fn finish_csv(w: CsvOut, path: &Path) -> Result<(), ReportError> {
    let buffered = w.into_inner().map_err(|e| io(path, e.error()))?;
    let file = buffered.into_inner().map_err(|e| io(path, e.error()))?;
    file.commit().map_err(|e| io(path, e))
}

fn catalogue_text(code: &str) -> (String, Option<Category>) {
    match codes::lookup(code) {
        Some(info) => (info.text.to_owned(), info.category),
        None if code.bytes().all(|b| b.is_ascii_digit()) => ("(not in the catalogue)".into(), None),
        // Not an API code: what the transport saw ("HTTP 500", "no answer").
        None => (String::new(), None),
    }
}

/// Builds the summary (and, when `out` is given, streams results.csv and
/// discrepancies.csv into it) in one pass over the run's jobs.
pub fn build(
    store: &Store,
    run_id: i64,
    out: Option<(&Path, bool)>,
    compare: Option<i64>,
) -> Result<(Summary, Vec<PathBuf>), ReportError> {
    let run = store.run(run_id)?.ok_or(ReportError::NoRun(run_id))?;
    let executions = store.executions(run_id)?;
    let mut files = Vec::new();

    let mut results = None;
    let mut discrepancies = None;
    if let Some((dir, _)) = out {
        let p = dir.join("results.csv");
        results = Some((csv_writer(&p, &results_csv::RESULT_HEADER)?, p.clone()));
        files.push(p);
        let p = dir.join("discrepancies.csv");
        discrepancies = Some((csv_writer(&p, &results_csv::DISCREPANCY_HEADER)?, p.clone()));
        files.push(p);
    }
    let show_pii = out.map(|(_, s)| s).unwrap_or(false);

    let mut totals = summary::Totals::default();
    let mut codes_seen: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_place: BTreeMap<(String, String), summary::CountryIdType> = BTreeMap::new();
    let mut requests = summary::Requests::default();
    let mut signatures = summary::Signatures::default();
    let mut reconciliation = summary::Reconciliation::default();
    let poll_run = run.mode == RunMode::Poll;

    store.for_each_job(run_id, |job| {
        totals.jobs += 1;
        *totals
            .by_state
            .entry(job.state.as_str().to_owned())
            .or_default() += 1;
        let category = job.category.filter(|_| job.result_code.is_some());
        *totals
            .by_category
            .entry(category.map_or("none", Category::as_str).to_owned())
            .or_default() += 1;
        if let Some(code) = &job.result_code {
            *codes_seen.entry(code.clone()).or_default() += 1;
        }
        let place = by_place
            .entry((
                job.country.clone().unwrap_or_else(|| "-".into()),
                job.id_type.clone().unwrap_or_else(|| "-".into()),
            ))
            .or_insert_with_key(|(c, t)| summary::CountryIdType {
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
        // `attempts` counts a submit run's every submission (the first one too) and a
        // poll run's failed job_status calls: the tries beyond the first are retries.
        let retries = if poll_run {
            job.attempts.max(0)
        } else {
            (job.attempts - 1).max(0)
        } as u64;
        requests.retries += retries;
        requests.pending_polls += job.polls.max(0) as u64;
        if retries > 0 {
            requests.jobs_retried += 1;
        }
        match job.signature_confirmed {
            Some(true) => signatures.confirmed += 1,
            Some(false) => signatures.unconfirmed += 1,
            None => {}
        }
        let expects = job.expected_status.is_some() || job.expected_result_code.is_some();
        let found = if poll_run {
            reconcile::check(&job)
        } else {
            None
        };
        if poll_run && (expects || found.is_some()) {
            reconciliation.checked += 1;
            if let Some(kind) = found {
                reconciliation.discrepancies += 1;
                *reconciliation
                    .by_kind
                    .entry(kind.as_str().to_owned())
                    .or_default() += 1;
                if let Some((w, p)) = discrepancies.as_mut() {
                    results_csv::write_discrepancy(w, &job, kind).map_err(|e| StoreError::Io {
                        path: p.display().to_string(),
                        reason: e.to_string(),
                    })?;
                }
            }
        }
        if let Some((w, p)) = results.as_mut() {
            results_csv::write_result(w, &job, show_pii).map_err(|e| StoreError::Io {
                path: p.display().to_string(),
                reason: e.to_string(),
            })?;
        }
        Ok(())
    })?;
    for (w, p) in [results, discrepancies].into_iter().flatten() {
        finish_csv(w, &p)?;
    }

    let by_kind = store.events_by_kind(run_id)?;
    // Requests we sent; callbacks came to us (they stay in `by_kind`, and are counted
    // under `callbacks`).
    requests.total = by_kind
        .iter()
        .filter(|(kind, _)| kind.is_request())
        .map(|(_, n)| n)
        .sum();
    requests.by_kind = by_kind
        .into_iter()
        .map(|(kind, n)| (kind.as_str().to_owned(), n))
        .collect();
    requests.latency_ms = store.latency(run_id)?.into();
    let (recorded, confirmed, mismatched) = store.callback_checks(run_id)?;
    let callbacks = summary::Callbacks {
        recorded,
        confirmed,
        mismatched,
    };

    let job_status_codes = store
        .job_status_codes(run_id)?
        .into_iter()
        .map(|(code, count)| {
            let (text, _) = catalogue_text(&code);
            summary::CodeCount {
                code,
                text,
                category: None,
                count,
            }
        })
        .collect();

    let previous = match compare {
        Some(id) => Some(store.run(id)?.ok_or(ReportError::NoRun(id))?),
        None => store.previous_run_named(&run.name, run.id)?,
    };
    let drift = match previous {
        Some(prev) => {
            let mut d = summary::Drift {
                compared_with_run: prev.id,
                ..Default::default()
            };
            let mut writer = match out {
                Some((dir, _)) => {
                    let p = dir.join("drift.csv");
                    files.push(p.clone());
                    Some((csv_writer(&p, &DRIFT_HEADER)?, p))
                }
                None => None,
            };
            store.drift_pairs(run_id, prev.id, |pair| {
                d.matched += 1;
                if pair.code != pair.previous_code || pair.state != pair.previous_state {
                    d.changed += 1;
                    if let Some((w, p)) = writer.as_mut() {
                        let line = pair.line.to_string();
                        let prev_run = prev.id.to_string();
                        w.write_record(
                            [
                                pair.user_id.as_str(),
                                &pair.job_id,
                                &line,
                                &prev_run,
                                &pair.previous_job_id,
                                &pair.previous_state,
                                pair.previous_code.as_deref().unwrap_or(""),
                                pair.previous_text.as_deref().unwrap_or(""),
                                &pair.state,
                                pair.code.as_deref().unwrap_or(""),
                                pair.text.as_deref().unwrap_or(""),
                            ]
                            .map(results_csv::cell)
                            .iter()
                            .map(|c| c.as_ref()),
                        )
                        .map_err(|e| StoreError::Io {
                            path: p.display().to_string(),
                            reason: e.to_string(),
                        })?;
                    }
                }
                Ok(())
            })?;
            if let Some((w, p)) = writer {
                finish_csv(w, &p)?;
            }
            Some(d)
        }
        None => None,
    };

    let config = serde_json::from_str(&run.config_json).unwrap_or(serde_json::Value::Null);
    let summary = Summary {
        schema_version: SCHEMA_VERSION,
        generated_at: summary::rfc3339(crate::store::now_ms()),
        run: summary::RunMeta {
            id: run.id,
            name: run.name.clone(),
            mode: run.mode,
            endpoint: run.endpoint.clone(),
            manifest_path: run.manifest_path.clone(),
            manifest_query: run.manifest_query.clone(),
            manifest_sha256: run.manifest_sha256.clone(),
            status: run.status.as_str().to_owned(),
            created_at: summary::rfc3339(run.created_at),
            finished_at: run.finished_at.map(summary::rfc3339),
            executions: executions
                .into_iter()
                .map(|e| summary::Execution {
                    pid: e.pid,
                    command: e.command,
                    started_at: summary::rfc3339(e.started_at),
                    ended_at: e.ended_at.map(summary::rfc3339),
                    outcome: e.outcome,
                })
                .collect(),
            config,
        },
        totals,
        result_codes: codes_seen
            .into_iter()
            .map(|(code, count)| {
                let (text, category) = catalogue_text(&code);
                summary::CodeCount {
                    code,
                    text,
                    category,
                    count,
                }
            })
            .collect(),
        job_status_codes,
        by_country_id_type: by_place.into_values().collect(),
        requests,
        callbacks,
        signatures,
        reconciliation,
        drift,
    };
    Ok((summary, files))
}

/// Reconciliation figures alone (for the exit code after a run), from a lean pass over the
/// jobs that carry an expectation; the same rules as the reports.
pub fn reconciliation(store: &Store, run_id: i64) -> Result<summary::Reconciliation, ReportError> {
    let mut r = summary::Reconciliation::default();
    store.for_each_expectation(run_id, |job| {
        r.checked += 1;
        if let Some(kind) = reconcile::check(&job) {
            r.discrepancies += 1;
            *r.by_kind.entry(kind.as_str().to_owned()).or_default() += 1;
        }
        Ok(())
    })?;
    Ok(r)
}

pub const DRIFT_HEADER: [&str; 11] = [
    "user_id",
    "job_id",
    "line",
    "previous_run",
    "previous_job_id",
    "previous_state",
    "previous_result_code",
    "previous_result_text",
    "state",
    "result_code",
    "result_text",
];

/// Writes the chosen formats into `options.out` (created if needed).
pub fn write(store: &Store, run_id: i64, options: &ReportOptions) -> Result<Written, ReportError> {
    // A folder made here is private (0700); an existing one is left as it is.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&options.out)
        .map_err(|e| io(&options.out, e))?;
    let wants_csv = options.formats.contains(&Format::Csv);
    let (summary, csv_files) = build(
        store,
        run_id,
        wants_csv.then_some((options.out.as_path(), options.show_pii)),
        options.compare,
    )?;
    let mut files = csv_files;
    let mut put = |name: &str, text: String| -> Result<(), ReportError> {
        let path = options.out.join(name);
        let mut f = AtomicFile::create(&path).map_err(|e| io(&path, e))?;
        f.write_all(text.as_bytes()).map_err(|e| io(&path, e))?;
        f.commit().map_err(|e| io(&path, e))?;
        files.push(path);
        Ok(())
    };
    if options.formats.contains(&Format::Json) {
        let text = serde_json::to_string_pretty(&summary).map_err(|e| io(&options.out, e))?;
        put("summary.json", text + "\n")?;
    }
    if options.formats.contains(&Format::Md) {
        put("summary.md", markdown::render(&summary))?;
    }
    if options.formats.contains(&Format::Html) {
        let discrepancies = top_rows(store, run_id, &summary, Table::Discrepancies)?;
        let failures = top_rows(store, run_id, &summary, Table::Failures)?;
        put(
            "report.html",
            html::render(&summary, &discrepancies, &failures),
        )?;
    }
    files.sort();
    Ok(Written { summary, files })
}

/// How many rows the HTML tables show (the CSVs have all of them).
pub const HTML_ROWS: usize = 200;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Table {
    Discrepancies,
    Failures,
}

/// A table row for the HTML page: line, user_id, job_id, what, detail.
pub type HtmlRow = [String; 5];

fn top_rows(
    store: &Store,
    run_id: i64,
    summary: &Summary,
    table: Table,
) -> Result<Vec<HtmlRow>, ReportError> {
    let poll_run = summary.run.mode == RunMode::Poll;
    let mut rows = Vec::new();
    store.for_each_job(run_id, |job| {
        if rows.len() >= HTML_ROWS {
            return Ok(());
        }
        match table {
            Table::Discrepancies if poll_run => {
                if let Some(kind) = reconcile::check(&job) {
                    rows.push([
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
            }
            Table::Failures if job.state.is_error() => {
                rows.push([
                    job.line.to_string(),
                    job.user_id.clone(),
                    job.job_id.clone(),
                    job.state.as_str().to_owned(),
                    job.last_error.clone().unwrap_or_default(),
                ]);
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_formats_are_all_of_them() {
        assert_eq!(
            Format::parse_list(&[DEFAULT_FORMATS.to_owned()]).unwrap(),
            Format::ALL
        );
    }
}
