//! `run`, `submit`, `poll`, `resume` and `runs`: the flags become a [`runner::Invocation`];
//! the runner does the work.

use std::io::IsTerminal;

use crate::exit::{Error, Outcome};
use crate::job_spec::RunMode;
use crate::manifest::ManifestSource;
use crate::runner::{self, Invocation, Layer, ProgressMode, Target};
use crate::store::{JobState, Store};

use super::args::{OutputArgs, PollArgs, ResumeArgs, RunArgs, RunReportArgs, RunsArgs, SubmitArgs};
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

/// `runs`: one line per run with its counts per state, started and finished times;
/// filtered by name, status and start time; `--json` for scripts.
pub fn runs(args: RunsArgs) -> Result<Outcome, Error> {
    if !args.store.db.exists() {
        return Err(Error::fatal(format!(
            "{}: no such database (pass --db PATH)",
            args.store.db.display()
        )));
    }
    let since = args
        .since
        .as_deref()
        .map(|s| since_ms(s, crate::store::now_ms()).map_err(Error::usage))
        .transpose()?;
    let store = Store::open_read_only(&args.store.db)?;
    let mut runs: Vec<_> = store
        .list_runs()?
        .into_iter()
        .filter(|r| args.name.as_deref().is_none_or(|n| r.run.name.contains(n)))
        .filter(|r| {
            args.status
                .as_deref()
                .is_none_or(|s| r.run.status.as_str().eq_ignore_ascii_case(s))
        })
        .filter(|r| since.is_none_or(|t| r.run.created_at >= t))
        .collect();
    if let Some(limit) = args.limit {
        let skip = runs.len().saturating_sub(limit);
        runs.drain(..skip);
    }
    if args.json {
        println!("{}", runs_json(&runs));
        return Ok(Outcome::Success);
    }
    if runs.is_empty() {
        println!("no runs in {}", args.store.db.display());
        return Ok(Outcome::Success);
    }
    let mut header = format!(
        "{:>4}  {:<11}  {:<7}  {:<24}  {:<16}  {:<16}",
        "id", "status", "mode", "name", "started", "finished"
    );
    for state in JobState::ALL {
        header.push_str(&format!("  {:>8}", state.as_str()));
    }
    println!("{header}");
    for summary in runs {
        let run = &summary.run;
        let mut line = format!(
            "{:>4}  {:<11}  {:<7}  {:<24}  {:<16}  {:<16}",
            run.id,
            run.status.as_str(),
            run.mode,
            ellipsize(&run.name, 24),
            short_time(Some(run.created_at)),
            short_time(run.finished_at),
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

/// `runs --json`: one array, each run with its counts per state.
fn runs_json(runs: &[crate::store::RunSummary]) -> serde_json::Value {
    let list: Vec<serde_json::Value> = runs
        .iter()
        .map(|summary| {
            let run = &summary.run;
            let counts: serde_json::Map<String, serde_json::Value> = JobState::ALL
                .iter()
                .map(|s| {
                    let n = summary.counts.get(s).copied().unwrap_or(0);
                    (s.as_str().to_owned(), n.into())
                })
                .collect();
            serde_json::json!({
                "id": run.id,
                "name": run.name,
                "mode": run.mode,
                "status": run.status.as_str(),
                "started": time_text(Some(run.created_at)),
                "finished": run.finished_at.map(|t| time_text(Some(t))),
                "jobs": summary.counts.values().sum::<u64>(),
                "counts": counts,
            })
        })
        .collect();
    serde_json::Value::Array(list)
}

fn time_text(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// "2026-11-20 14:03" (UTC), or "-".
fn short_time(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "-".into())
}

/// `--since`: a date (YYYY-MM-DD, UTC midnight), or a duration back from `now` (7d, 12h,
/// 30m), as Unix ms.
fn since_ms(text: &str, now: i64) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return date
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_millis())
            .ok_or_else(|| format!("--since {text}: not a date"));
    }
    let unit = text.chars().last().unwrap_or(' ');
    let number: u32 = text[..text.len().saturating_sub(unit.len_utf8())]
        .parse()
        .map_err(|_| format!("--since {text}: a date (2026-11-20) or a duration (7d, 12h, 30m)"))?;
    let seconds = match unit {
        'd' => 86_400,
        'h' => 3_600,
        'm' => 60,
        's' => 1,
        _ => {
            return Err(format!(
                "--since {text}: a date (2026-11-20) or a duration (7d, 12h, 30m)"
            ));
        }
    };
    Ok(now.saturating_sub(i64::from(number) * seconds * 1000))
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

#[cfg(test)]
mod tests {
    use super::since_ms;

    #[test]
    fn since_reads_dates_and_durations() {
        let now = 10 * 86_400_000;
        assert_eq!(since_ms("7d", now), Ok(3 * 86_400_000));
        assert_eq!(since_ms("2h", now), Ok(now - 7_200_000));
        assert_eq!(since_ms("1970-01-02", now), Ok(86_400_000));
        assert!(since_ms("7w", now).is_err());
        assert!(since_ms("yesterday", now).is_err());
        assert!(since_ms("", now).is_err());
    }
}
