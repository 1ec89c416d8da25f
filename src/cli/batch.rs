//! `run`, `submit`, `poll` and `resume`: the flags become a [`runner::Invocation`];
//! the runner does the work.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::exit::{Error, ExitStatus, FailOn};
use crate::job_spec::{JobSpec, RunMode};
use crate::manifest::ManifestSource;
use crate::runner::{self, Invocation, Layer, ProgressMode, Target};

use super::args::{OutputArgs, PollArgs, ResumeArgs, RunArgs, RunReportArgs, SubmitArgs};
use super::logging;

fn progress(output: &OutputArgs) -> ProgressMode {
    // JSON logs are for machines: progress comes as JSON lines, never as a bar.
    let bar_possible =
        std::io::stderr().is_terminal() && output.log_format == super::args::LogFormat::Text;
    let mode = ProgressMode::choose(output.quiet, bar_possible);
    logging::init(output.log_format, mode == ProgressMode::Bar, output.quiet);
    mode
}

/// A run request from the command line (no job spec report, the key from the environment).
fn request(
    command: impl Into<String>,
    target: Target,
    flags: Layer,
    db: std::path::PathBuf,
    output: &OutputArgs,
    again: bool,
) -> Invocation {
    Invocation {
        command: command.into(),
        target,
        flags,
        db,
        progress: progress(output),
        report: None,
        api_key: None,
        again,
    }
}

/// `run`'s database: `--db` or `SMILE_RECON_DB`, else the spec's `db` (relative to the
/// spec's folder), else the default; with where it came from, for messages. Without
/// `--db`, a spec that cannot be read is reported now, before any database is opened.
fn spec_db(given: Option<PathBuf>, spec: &Path) -> Result<(PathBuf, String), Error> {
    if let Some(db) = given {
        let from = db_origin(&db);
        return Ok((db, from));
    }
    Ok(match JobSpec::load(spec)?.0.db {
        Some(db) => (db, format!("`db` in {}", spec.display())),
        None => (
            PathBuf::from(runner::identity::DEFAULT_DB),
            "the default".into(),
        ),
    })
}

/// Where a `--db` value came from: the flag, `SMILE_RECON_DB`, or the default.
fn db_origin(db: &Path) -> String {
    let flag = std::env::args_os()
        .skip(1)
        .any(|a| a == "--db" || a.to_string_lossy().starts_with("--db="));
    let env = std::env::var_os("SMILE_RECON_DB").is_some_and(|v| Path::new(&v) == db);
    match (flag, env) {
        (true, _) => "--db".into(),
        (false, true) => "SMILE_RECON_DB".into(),
        (false, false) => "the default".into(),
    }
}

/// A run's first night: the database's missing folder is created (0700, it will hold
/// identity data) so that a spec's `db = "../state/x.db"` works without a set-up step.
/// Only `run`, `submit` and `poll` do this; commands that read never create a database.
fn ready_db_folder(db: &Path, from: &str) -> Result<(), Error> {
    let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    if dir.is_dir() {
        return Ok(());
    }
    crate::files::create_private_dir_all(dir).map_err(|e| {
        Error::fatal(format!(
            "{}: cannot create the database's folder: {e} (the database {} comes from {from})",
            dir.display(),
            db.display()
        ))
    })
}

async fn execute(request: Invocation, reports: &RunReportArgs) -> Result<ExitStatus, Error> {
    let db = request.db.clone();
    let finished = runner::execute(request).await?;
    if finished.outcome == ExitStatus::Interrupted {
        return Ok(finished.outcome);
    }
    let judged = super::report::after_run_counted(&db, &finished, reports);
    let (exit_code, discrepancies) = match &judged {
        Ok((outcome, discrepancies)) => (outcome.code(), *discrepancies),
        Err(error) => (error.code(), None),
    };
    if let Ok((outcome, discrepancies)) = &judged {
        println!(
            "{}",
            exit_reason(*outcome, *discrepancies, finished.fail_on)
        );
    }
    // The run's last word in the log (a JSON event with --log-format json): the exit code
    // the process ends with, and what set it.
    tracing::info!(
        target: "smile_recon::runner::summary",
        event = "exit",
        run = finished.run_id,
        exit_code = u64::from(exit_code),
        discrepancies = discrepancies.unwrap_or(0),
        "run {} ends with exit {exit_code}",
        finished.run_id
    );
    if let Some(metrics) = &finished.metrics {
        // The metrics file's last word: the exit code the process ends with.
        metrics.rewrite(runner::metrics::End {
            exit_code,
            discrepancies,
        });
    }
    let judged = judged.map(|(outcome, _)| outcome)?;
    // Only now, its reports written, is the run finished.
    finished.settle(&db)?;
    Ok(judged)
}

/// The rule that set the exit code, for the summary's last line.
fn exit_reason(outcome: ExitStatus, discrepancies: Option<u64>, fail_on: FailOn) -> String {
    let code = outcome.code();
    let rule = format!("--fail-on {}", fail_on.as_str());
    match outcome {
        ExitStatus::Success if fail_on == FailOn::None => {
            format!("exit {code}: the run finished ({rule}: findings do not fail it)")
        }
        ExitStatus::Success => format!("exit {code}: every job final, none in error ({rule})"),
        ExitStatus::JobErrors => format!(
            "exit {code}: some jobs ended failed, gave_up or invalid ({rule}; `--fail-on none` \
             accepts them)"
        ),
        ExitStatus::Discrepancies => format!(
            "exit {code}: {} jobs disagree with the manifest's expectations ({rule})",
            discrepancies.unwrap_or(0)
        ),
        _ => format!("exit {code}"),
    }
}

pub async fn run(args: RunArgs) -> Result<ExitStatus, Error> {
    let common = super::flags::common(&args.api, &args.limits, &args.output);
    let flags = super::flags::identity(&args.identity, &args.report, common);
    let (db, from) = spec_db(args.store.db, &args.spec)?;
    ready_db_folder(&db, &from)?;
    execute(
        request(
            format!("run {}", args.spec.display()),
            Target::Spec(args.spec),
            flags,
            db,
            &args.output,
            args.identity.again,
        ),
        &args.report,
    )
    .await
}

pub async fn submit(args: SubmitArgs) -> Result<ExitStatus, Error> {
    let flags = super::flags::submit(&args);
    ready_db_folder(&args.store.db, &db_origin(&args.store.db))?;
    execute(
        request(
            "submit",
            Target::Manifest {
                mode: RunMode::Submit,
                source: ManifestSource::from_args(args.manifest.manifest, args.manifest.query),
            },
            flags,
            args.store.db,
            &args.output,
            args.identity.again,
        ),
        &args.report,
    )
    .await
}

pub async fn poll(args: PollArgs) -> Result<ExitStatus, Error> {
    let flags = super::flags::poll(&args);
    ready_db_folder(&args.store.db, &db_origin(&args.store.db))?;
    execute(
        request(
            "poll",
            Target::Manifest {
                mode: RunMode::Poll,
                source: ManifestSource::from_args(args.manifest.manifest, args.manifest.query),
            },
            flags,
            args.store.db,
            &args.output,
            args.identity.again,
        ),
        &args.report,
    )
    .await
}

pub async fn resume(args: ResumeArgs) -> Result<ExitStatus, Error> {
    execute(
        request(
            "resume",
            Target::Resume(args.run),
            super::flags::common(&args.api, &args.limits, &args.output),
            args.store.db,
            &args.output,
            false,
        ),
        &RunReportArgs {
            report_dir: None,
            report_format: None,
            show_pii: false,
            fail_on: None,
        },
    )
    .await
}
