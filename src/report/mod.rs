//! Reports: built from the store alone (never the engine's memory), so `smile-recon
//! report` on a finished run writes exactly what the run wrote. `summary.json`,
//! `results.csv`, `discrepancies.csv`, `drift.csv`, `summary.md` and `report.html`.

mod aggregate;
mod drift;
pub mod export;
mod html;
mod markdown;
pub mod mask;
pub mod reconcile;
mod results_csv;
mod sink;
pub mod summary;

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::api::{Category, codes};
use crate::store::{RunRecord, Store, StoreError};

use sink::JobRowFiles;

pub use aggregate::{Aggregate, HTML_ROWS, HtmlRow, HtmlTables};
pub use drift::DRIFT_HEADER;
pub use reconcile::DiscrepancyKind;
pub use sink::Pii;
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
    /// A report file (or its folder) could not be created, written or renamed.
    #[error("{}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A CSV row could not be written.
    #[error("{}: {source}", path.display())]
    Csv {
        path: PathBuf,
        #[source]
        source: csv::Error,
    },
    #[error("{}: {source}", path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("no run {0} in this database")]
    NoRun(i64),
}

impl ReportError {
    pub(crate) fn write(path: &Path, source: std::io::Error) -> Self {
        ReportError::Write {
            path: path.to_owned(),
            source,
        }
    }

    pub(crate) fn csv(path: &Path, source: csv::Error) -> Self {
        ReportError::Csv {
            path: path.to_owned(),
            source,
        }
    }
}

fn catalogue_text(code: &str) -> (String, Option<Category>) {
    match codes::lookup(code) {
        Some(info) => (info.text.to_owned(), info.category),
        None if code.bytes().all(|b| b.is_ascii_digit()) => ("(not in the catalogue)".into(), None),
        // Not an API code: what the transport saw ("HTTP 500", "no answer").
        None => (String::new(), None),
    }
}

/// Where [`build`] writes the per-job CSVs (results.csv, discrepancies.csv, drift.csv),
/// and whether they show ID numbers in clear.
#[derive(Clone, Copy, Debug)]
pub struct CsvOutput<'a> {
    pub dir: &'a Path,
    pub pii: Pii,
}

/// A run's figures and the HTML tables, from one scan of its jobs.
struct Built {
    summary: Summary,
    tables: HtmlTables,
    /// The CSVs written.
    files: Vec<PathBuf>,
}

/// Builds the summary (and, when `csv` is given, streams results.csv, discrepancies.csv
/// and drift.csv into its folder) in one pass over the run's jobs.
pub fn build(
    store: &Store,
    run_id: i64,
    csv: Option<CsvOutput<'_>>,
    compare: Option<i64>,
) -> Result<(Summary, Vec<PathBuf>), ReportError> {
    let built = scan(store, run_id, csv, compare)?;
    Ok((built.summary, built.files))
}

fn scan(
    store: &Store,
    run_id: i64,
    csv: Option<CsvOutput<'_>>,
    compare: Option<i64>,
) -> Result<Built, ReportError> {
    let run = store.run(run_id)?.ok_or(ReportError::NoRun(run_id))?;
    let mut rows = match csv {
        Some(out) => Some(JobRowFiles::create(out.dir, out.pii)?),
        None => None,
    };
    let mut agg = Aggregate::new(run.mode);
    // A write error is kept here; the StoreError returned for it only stops the scan.
    let mut failed = None;
    let scanned = store.for_each_job(run_id, |job| {
        let discrepancy = agg.add(&job);
        if let Some(rows) = rows.as_mut()
            && let Err(e) = rows.add(&job, discrepancy)
        {
            failed = Some(e);
            return Err(drift::stop_scan());
        }
        Ok(())
    });
    if let Some(e) = failed {
        return Err(e);
    }
    scanned?;
    let mut files = Vec::new();
    if let Some(rows) = rows {
        files.extend(rows.finish()?);
    }
    let drift = match drift::previous_run(store, &run, compare)? {
        Some(prev) => Some(drift::measure(
            store,
            run_id,
            prev.id,
            csv.map(|c| c.dir),
            &mut files,
        )?),
        None => None,
    };
    let tables = std::mem::take(&mut agg.tables);
    let mut summary = assemble(store, run, agg, drift)?;
    summary.pii_shown = csv.is_some_and(|c| c.pii.shown());
    Ok(Built {
        summary,
        tables,
        files,
    })
}

/// The summary from the jobs' aggregate, the event log's figures and the run's record.
fn assemble(
    store: &Store,
    run: RunRecord,
    agg: Aggregate,
    drift: Option<summary::Drift>,
) -> Result<Summary, ReportError> {
    let mut requests = agg.requests;
    let by_kind = store.events_by_kind(run.id)?;
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
    requests.latency_ms = store.latency(run.id)?.into();
    let (recorded, confirmed, mismatched) = store.callback_checks(run.id)?;
    let job_status_codes = store
        .job_status_codes(run.id)?
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
    Ok(Summary {
        schema_version: SCHEMA_VERSION,
        generated_at: summary::rfc3339(crate::store::now_ms()),
        generated_by: crate::provenance::Provenance::current(),
        pii_shown: false,
        run: run_meta(store, run)?,
        totals: agg.totals,
        result_codes: agg
            .result_codes
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
        by_country_id_type: agg.by_country_id_type.into_values().collect(),
        requests,
        callbacks: summary::Callbacks {
            recorded,
            confirmed,
            mismatched,
        },
        signatures: agg.signatures,
        reconciliation: agg.reconciliation,
        drift,
    })
}

fn run_meta(store: &Store, run: RunRecord) -> Result<summary::RunMeta, ReportError> {
    let executions = store.executions(run.id)?;
    let config = serde_json::from_str(&run.config_json).unwrap_or(serde_json::Value::Null);
    let (base_url, environment) = api_target(&config);
    let status = run.reported_status();
    Ok(summary::RunMeta {
        id: run.id,
        name: run.name,
        mode: run.mode,
        endpoint: run.endpoint,
        manifest_path: run.manifest_path,
        manifest_query: run.manifest_query,
        manifest_sha256: run.manifest_sha256,
        base_url,
        environment,
        status: status.as_str().to_owned(),
        created_at: summary::rfc3339(run.created_at),
        finished_at: run.finished_at.map(summary::rfc3339),
        executions: executions
            .into_iter()
            .map(|e| {
                let p = e.provenance;
                summary::Execution {
                    pid: e.pid,
                    command: e.command,
                    started_at: summary::rfc3339(e.started_at),
                    ended_at: e.ended_at.map(summary::rfc3339),
                    outcome: e.outcome,
                    tool_version: p.as_ref().map(|p| p.tool_version.clone()),
                    host: p.as_ref().map(|p| p.host.clone()),
                    os_user: p.as_ref().map(|p| p.os_user.clone()),
                    command_line: p.map(|p| p.command_line),
                }
            })
            .collect(),
        config,
    })
}

/// The API host of a run's stored configuration (`base_url`, else the named
/// environment's host, else the sandbox's, as the runner chooses) and the environment's
/// name, if one was chosen. `None` when no configuration was stored.
fn api_target(config: &serde_json::Value) -> (Option<String>, Option<String>) {
    let environment = config
        .get("env")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned);
    let named = environment
        .as_deref()
        .and_then(|e| serde_json::from_value(serde_json::Value::String(e.to_owned())).ok())
        .map(|e: crate::api::Environment| e.base_url().to_owned());
    let base_url = config
        .get("base_url")
        .and_then(serde_json::Value::as_str)
        .map(crate::provenance::without_url_password)
        .or(named)
        .or_else(|| {
            config
                .is_object()
                .then(|| crate::api::Environment::Sandbox.base_url().to_owned())
        });
    (base_url, environment)
}

/// Reconciliation figures alone (for the exit code after a run), from a lean pass over the
/// jobs that carry an expectation; the same rules as the reports.
pub fn reconciliation(
    store: &Store,
    run_id: i64,
    mode: crate::store::RunMode,
) -> Result<summary::Reconciliation, ReportError> {
    let mut r = summary::Reconciliation::default();
    store.for_each_expectation(run_id, |job| {
        let found = reconcile::check(mode, &job);
        if !reconcile::is_checked(mode, &job, found) {
            return Ok(());
        }
        r.checked += 1;
        if let Some(kind) = found {
            r.discrepancies += 1;
            *r.by_kind.entry(kind.as_str().to_owned()).or_default() += 1;
        }
        Ok(())
    })?;
    Ok(r)
}

/// Writes the chosen formats into `options.out` (created if needed).
pub fn write(store: &Store, run_id: i64, options: &ReportOptions) -> Result<Written, ReportError> {
    let out = options.out.as_path();
    // A folder made here is private (0700); an existing one is left as it is.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(out)
        .map_err(|e| ReportError::write(out, e))?;
    let csv = options.formats.contains(&Format::Csv).then_some(CsvOutput {
        dir: out,
        pii: Pii::from_show_pii(options.show_pii),
    });
    let Built {
        summary,
        tables,
        mut files,
    } = scan(store, run_id, csv, options.compare)?;
    if options.formats.contains(&Format::Json) {
        let path = out.join("summary.json");
        let text = serde_json::to_string_pretty(&summary).map_err(|source| ReportError::Json {
            path: path.clone(),
            source,
        })?;
        files.push(sink::text_file(path, &(text + "\n"))?);
    }
    if options.formats.contains(&Format::Md) {
        files.push(sink::text_file(
            out.join("summary.md"),
            &markdown::render(&summary),
        )?);
    }
    if options.formats.contains(&Format::Html) {
        files.push(sink::text_file(
            out.join("report.html"),
            &html::render(&summary, &tables),
        )?);
    }
    files.sort();
    remove_other_reports(out, &files)?;
    Ok(Written { summary, files })
}

/// Every file a report can write into its folder, with how each of ours begins (a file
/// of that name that begins otherwise is the user's, and is never removed).
pub const REPORT_FILES: [(&str, &str); 6] = [
    ("summary.json", "{\n  \"schema_version\":"),
    ("summary.md", "# smile-recon run "),
    (
        "report.html",
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
    ),
    ("results.csv", "line,user_id,job_id,"),
    ("discrepancies.csv", "line,user_id,job_id,kind,"),
    ("drift.csv", "user_id,job_id,line,"),
];

/// A report folder holds one run's files: a report file this write did not produce (an
/// earlier run's `drift.csv`, a format not asked for this time) is removed when it is one
/// of ours (a regular file that begins as ours does), so nothing beside the new files can
/// be read as theirs; any other file is left alone.
fn remove_other_reports(out: &Path, written: &[PathBuf]) -> Result<(), ReportError> {
    for (name, begins) in REPORT_FILES {
        let path = out.join(name);
        if written.contains(&path) || !is_our_report(&path, begins) {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::info!(file = %path.display(), "removed an earlier report file"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(ReportError::write(&path, e)),
        }
    }
    Ok(())
}

/// Whether `path` is a regular file (not a link) that begins with `begins`.
fn is_our_report(path: &Path, begins: &str) -> bool {
    use std::io::Read as _;
    let regular = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file());
    let mut head = vec![0; begins.len()];
    regular
        && std::fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut head))
            .is_ok()
        && head == begins.as_bytes()
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
