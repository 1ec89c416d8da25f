//! `run`, `submit`, `poll`, `resume` and `runs`: the flags become a [`runner::Request`];
//! the runner does the work.

use std::io::IsTerminal;

use crate::exit::{Failure, Outcome};
use crate::job_spec::RunMode;
use crate::manifest::ManifestSource;
use crate::runner::{self, Layer, ProgressMode, Request, Target};
use crate::store::{JobState, Store};

use super::args::{OutputArgs, PollArgs, ResumeArgs, RunArgs, RunReportArgs, RunsArgs, SubmitArgs};
use super::logging;

fn progress(output: &OutputArgs) -> ProgressMode {
    // JSON logs are for machines: progress comes as JSON lines, never as a bar.
    let bar_possible =
        std::io::stderr().is_terminal() && output.log_format == super::args::LogFormat::Text;
    let mode = ProgressMode::choose(output.quiet, bar_possible);
    logging::init(output.log_format, mode == ProgressMode::Bar);
    mode
}

/// A run request from the command line (no job spec report, the key from the environment).
fn request(
    command: impl Into<String>,
    target: Target,
    flags: Layer,
    db: std::path::PathBuf,
    output: &OutputArgs,
) -> Request {
    Request {
        command: command.into(),
        target,
        flags: Layer {
            metrics_file: output.metrics_file.clone().or(flags.metrics_file.clone()),
            ..flags
        },
        db,
        progress: progress(output),
        report: None,
        api_key: None,
    }
}

async fn execute(request: Request, reports: &RunReportArgs) -> Result<Outcome, Failure> {
    let db = request.db.clone();
    let finished = runner::execute(request).await?;
    if finished.outcome == Outcome::Interrupted {
        return Ok(finished.outcome);
    }
    let judged = super::report::after_run_counted(&db, &finished, reports);
    if let Some(metrics) = &finished.metrics {
        // The metrics file's last word: the exit code the process ends with.
        let (exit_code, discrepancies) = match &judged {
            Ok((outcome, discrepancies)) => (outcome.code(), *discrepancies),
            Err(failure) => (failure.outcome.code(), None),
        };
        metrics.rewrite(runner::metrics::End {
            exit_code,
            discrepancies,
        });
    }
    judged.map(|(outcome, _)| outcome)
}

pub async fn run(args: RunArgs) -> Result<Outcome, Failure> {
    execute(
        request(
            format!("run {}", args.spec.display()),
            Target::Spec(args.spec),
            Layer::from_flags(&args.api, &args.limits),
            args.store.db,
            &args.output,
        ),
        &args.report,
    )
    .await
}

pub async fn submit(args: SubmitArgs) -> Result<Outcome, Failure> {
    let flags = Layer {
        endpoint: args.endpoint,
        callback_url: args.callback_url,
        callback_listen: args.callback_listen,
        callback_grace: args.callback_grace,
        unknown_id_types: args.unknown_id_types,
        ..Layer::from_flags(&args.api, &args.limits)
    };
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

pub async fn poll(args: PollArgs) -> Result<Outcome, Failure> {
    let flags = Layer {
        deadline: args.deadline,
        poll_interval: args.poll_interval,
        ..Layer::from_flags(&args.api, &args.limits)
    };
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

pub async fn resume(args: ResumeArgs) -> Result<Outcome, Failure> {
    execute(
        request(
            "resume",
            Target::Resume(args.run),
            Layer::from_flags(&args.api, &args.limits),
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

/// `runs`: one line per run with its counts per state.
pub fn runs(args: RunsArgs) -> Result<Outcome, Failure> {
    if !args.store.db.exists() {
        return Err(Failure::fatal(format!(
            "{}: no such database (pass --db PATH)",
            args.store.db.display()
        )));
    }
    let store = Store::open_read_only(&args.store.db).map_err(|e| Failure::fatal(e.to_string()))?;
    let runs = store
        .list_runs()
        .map_err(|e| Failure::fatal(e.to_string()))?;
    if runs.is_empty() {
        println!("no runs in {}", args.store.db.display());
        return Ok(Outcome::Success);
    }
    let mut header = format!(
        "{:>4}  {:<11}  {:<7}  {:<24}",
        "id", "status", "mode", "name"
    );
    for state in JobState::ALL {
        header.push_str(&format!("  {:>8}", state.as_str()));
    }
    println!("{header}");
    for summary in runs {
        let run = &summary.run;
        let mut line = format!(
            "{:>4}  {:<11}  {:<7}  {:<24}",
            run.id,
            run.status.as_str(),
            run.mode,
            ellipsize(&run.name, 24)
        );
        for state in JobState::ALL {
            line.push_str(&format!(
                "  {:>8}",
                summary.counts.get(&state).copied().unwrap_or(0)
            ));
        }
        println!("{line}");
    }
    Ok(Outcome::Success)
}

fn ellipsize(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_owned()
    } else {
        let tail: String = s
            .chars()
            .rev()
            .take(width - 1)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("…{tail}")
    }
}
