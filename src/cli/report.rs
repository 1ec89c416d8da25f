//! `report`, and the reports written when a run stops.

use std::path::{Path, PathBuf};

use crate::exit::{Error, ExitStatus, FailOn, fatal};
use crate::report::{self, Format, ReportOptions, Summary};
use crate::store::{JobState, Store};

use super::args::{ReportArgs, RunReportArgs};

/// The exit code a finished run gets once its findings are known.
pub fn apply_fail_on(outcome: ExitStatus, summary: &Summary, fail_on: FailOn) -> ExitStatus {
    if !matches!(outcome, ExitStatus::Success | ExitStatus::JobErrors) {
        return outcome;
    }
    match fail_on {
        FailOn::None => ExitStatus::Success,
        FailOn::Errors => outcome,
        FailOn::Discrepancies if summary.reconciliation.discrepancies > 0 => {
            ExitStatus::Discrepancies
        }
        FailOn::Discrepancies => outcome,
    }
}

/// Writes the reports of `run_id` and prints where they are.
pub fn write(db: &Path, run_id: i64, options: &ReportOptions) -> Result<Summary, Error> {
    let store = Store::open_read_only(db).map_err(fatal)?;
    let written = report::write(&store, run_id, options).map_err(fatal)?;
    let s = &written.summary;
    if s.reconciliation.checked > 0 {
        println!(
            "reconciliation: {} of {} jobs disagree with the records",
            s.reconciliation.discrepancies, s.reconciliation.checked
        );
    }
    if let Some(d) = &s.drift {
        println!(
            "drift against run {}: {} of {} shared jobs changed",
            d.compared_with_run, d.changed, d.matched
        );
    }
    println!("reports for run {run_id}:");
    for f in &written.files {
        println!("  {}", f.display());
    }
    Ok(written.summary)
}

/// `report`.
pub fn run(args: ReportArgs) -> Result<ExitStatus, Error> {
    if !args.store.db.exists() {
        return Err(super::runs::no_database(&args.store.db));
    }
    let formats = Format::parse_list(&args.format).map_err(Error::usage)?;
    let run_id = match args.run {
        Some(id) => id,
        None => {
            let store = Store::open_read_only(&args.store.db).map_err(fatal)?;
            store
                .latest_run(false)
                .map_err(fatal)?
                .ok_or_else(|| Error::fatal("no runs in this database"))?
                .id
        }
    };
    let summary = write(
        &args.store.db,
        run_id,
        &ReportOptions {
            formats,
            out: args.out,
            show_pii: args.show_pii,
            compare: args.compare,
        },
    )?;
    let errors = JobState::ALL
        .into_iter()
        .filter(|s| s.is_error())
        .filter_map(|s| summary.totals.by_state.get(s.as_str()))
        .sum::<u64>();
    let outcome = if errors > 0 {
        ExitStatus::JobErrors
    } else {
        ExitStatus::Success
    };
    Ok(apply_fail_on(outcome, &summary, args.fail_on.into()))
}

/// After `run` / `submit` / `poll` / `resume`: reports as the run's settings say (flags,
/// else the spec, else what is stored with the run), and the exit code with the findings
/// as the run's `fail_on` judges them.
/// Also says how many jobs disagree, when the run was reconciled (for the metrics file).
pub fn after_run_counted(
    db: &Path,
    finished: &crate::runner::Finished,
    args: &RunReportArgs,
) -> Result<(ExitStatus, Option<u64>), Error> {
    let spec = finished.report.as_ref();
    let fail_on = finished.fail_on;
    let out: Option<PathBuf> = spec.map(|r| r.out.clone());
    let summary = match out {
        Some(out) => {
            let formats = match spec {
                Some(r) => Format::parse_list(&r.formats),
                None => Ok(Format::ALL.to_vec()),
            }
            .map_err(Error::usage)?;
            write(
                db,
                finished.run_id,
                &ReportOptions {
                    formats,
                    out,
                    show_pii: args.show_pii,
                    compare: None,
                },
            )?
        }
        None => {
            let store = Store::open_read_only(db).map_err(fatal)?;
            let Some(run) = store.run(finished.run_id).map_err(fatal)? else {
                return Ok((
                    apply_fail_on(finished.outcome, &Summary::default(), fail_on),
                    None,
                ));
            };
            // Both modes reconcile the rows that carry expectations (a submit row its
            // expected_result_code); a poll run also flags jobs Smile ID does not know.
            Summary {
                reconciliation: report::reconciliation(&store, finished.run_id, run.mode)
                    .map_err(fatal)?,
                ..Summary::default()
            }
        }
    };
    if summary.reconciliation.discrepancies > 0 && spec.is_none() {
        println!(
            "reconciliation: {} of {} jobs disagree with the records (`{}` writes \
             discrepancies.csv)",
            summary.reconciliation.discrepancies,
            summary.reconciliation.checked,
            crate::runner::identity::report_command(db, finished.run_id)
        );
    }
    Ok((
        apply_fail_on(finished.outcome, &summary, fail_on),
        Some(summary.reconciliation.discrepancies),
    ))
}
