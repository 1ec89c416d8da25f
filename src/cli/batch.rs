//! `run`, `submit`, `poll` and `resume`: the flags become a [`runner::Invocation`];
//! the runner does the work.

use std::io::IsTerminal;

use crate::exit::{Error, Outcome};
use crate::job_spec::RunMode;
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
) -> Invocation {
    Invocation {
        command: command.into(),
        target,
        flags,
        db,
        progress: progress(output),
        report: None,
        api_key: None,
    }
}

async fn execute(request: Invocation, reports: &RunReportArgs) -> Result<Outcome, Error> {
    let db = request.db.clone();
    let finished = runner::execute(request).await?;
    if finished.outcome == Outcome::Interrupted {
        return Ok(finished.outcome);
    }
    let judged = super::report::after_run_counted(&db, &finished, reports);
    let (exit_code, discrepancies) = match &judged {
        Ok((outcome, discrepancies)) => (outcome.code(), *discrepancies),
        Err(error) => (error.code(), None),
    };
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
    judged.map(|(outcome, _)| outcome)
}

pub async fn run(args: RunArgs) -> Result<Outcome, Error> {
    execute(
        request(
            format!("run {}", args.spec.display()),
            Target::Spec(args.spec),
            super::flags::common(&args.api, &args.limits, &args.output),
            args.store.db,
            &args.output,
        ),
        &args.report,
    )
    .await
}

pub async fn submit(args: SubmitArgs) -> Result<Outcome, Error> {
    let flags = super::flags::submit(&args);
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
        ),
        &args.report,
    )
    .await
}

pub async fn poll(args: PollArgs) -> Result<Outcome, Error> {
    let flags = super::flags::poll(&args);
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
        ),
        &args.report,
    )
    .await
}

pub async fn resume(args: ResumeArgs) -> Result<Outcome, Error> {
    execute(
        request(
            "resume",
            Target::Resume(args.run),
            super::flags::common(&args.api, &args.limits, &args.output),
            args.store.db,
            &args.output,
        ),
        &RunReportArgs {
            report_dir: None,
            report_format: None,
            show_pii: false,
            fail_on: super::args::FailOn::Discrepancies,
        },
    )
    .await
}
