//! Drift: the jobs a run shares with an earlier one (the run it is compared with, or the
//! previous run of the same name) whose state or ResultCode changed, counted for the
//! summary and listed in `drift.csv`.

use std::path::{Path, PathBuf};

use super::sink::CsvFile;
use super::summary::Drift;
use super::{ReportError, results_csv};
use crate::store::{DriftPair, RunRecord, Store, StoreError};

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

/// The run `run` is compared with: `compare` if given, else the previous run of its name.
pub fn previous_run(
    store: &Store,
    run: &RunRecord,
    compare: Option<i64>,
) -> Result<Option<RunRecord>, ReportError> {
    match compare {
        Some(id) => Ok(Some(store.run(id)?.ok_or(ReportError::NoRun(id))?)),
        None => Ok(store.previous_run_named(&run.name, run.id)?),
    }
}

/// Counts the drift of `run_id` against `previous`, writing `drift.csv` into `dir` when
/// given (its path is pushed onto `files`).
pub fn measure(
    store: &Store,
    run_id: i64,
    previous: i64,
    dir: Option<&Path>,
    files: &mut Vec<PathBuf>,
) -> Result<Drift, ReportError> {
    let mut drift = Drift {
        compared_with_run: previous,
        ..Default::default()
    };
    let mut csv = match dir {
        Some(dir) => Some(CsvFile::create(dir.join("drift.csv"), &DRIFT_HEADER)?),
        None => None,
    };
    // A write error is kept here; the StoreError returned for it only stops the scan.
    let mut failed = None;
    let scan = store.drift_pairs(run_id, previous, |pair| {
        drift.matched += 1;
        if pair.code == pair.previous_code && pair.state == pair.previous_state {
            return Ok(());
        }
        drift.changed += 1;
        if let Some(csv) = csv.as_mut()
            && let Err(e) = csv.row(|w| write_pair(w, &pair, previous))
        {
            failed = Some(e);
            return Err(stop_scan());
        }
        Ok(())
    });
    if let Some(e) = failed {
        return Err(e);
    }
    scan?;
    if let Some(csv) = csv {
        files.push(csv.finish()?);
    }
    Ok(drift)
}

/// The error that ends a store scan whose callback failed for a reason of its own (the
/// caller reports that reason instead).
pub(super) fn stop_scan() -> StoreError {
    StoreError::Io {
        path: String::new(),
        reason: "report writing stopped".into(),
    }
}

fn write_pair<W: std::io::Write>(
    w: &mut csv::Writer<W>,
    pair: &DriftPair,
    previous: i64,
) -> csv::Result<()> {
    let line = pair.line.to_string();
    let prev_run = previous.to_string();
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
}
