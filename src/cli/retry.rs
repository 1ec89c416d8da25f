//! `retry --run ID [--state failed,gave_up]`: puts a run's failed jobs back (see
//! `Store::retry_jobs` for which keep their job_id), records it as an execution of the
//! run, then continues the run exactly as `resume --run ID`.

use crate::exit::{Error, ExitStatus};
use crate::store::{DbLock, JobState, RetryCounts, RunMode, RunRecord, RunStatus, Store};

use super::args::{LogFormat, ResumeArgs, RetryArgs};

fn fatal(e: impl std::fmt::Display) -> Error {
    Error::fatal(e.to_string())
}

/// `--state`'s names as states (clap has already refused any other name).
fn states(names: &[String]) -> Result<Vec<JobState>, Error> {
    let mut states = Vec::new();
    for name in names {
        match JobState::parse(name.trim()) {
            Some(s @ (JobState::Failed | JobState::GaveUp)) => {
                if !states.contains(&s) {
                    states.push(s);
                }
            }
            _ => {
                return Err(Error::usage(format!(
                    "--state {name}: only failed and gave_up jobs can be retried"
                )));
            }
        }
    }
    Ok(states)
}

pub async fn run(args: RetryArgs) -> Result<ExitStatus, Error> {
    let states = states(&args.state)?;
    let db = &args.store.db;
    if !db.exists() {
        return Err(super::runs::no_database(db));
    }
    let counts = put_back(&args, &states)?;
    announce(&args, &counts);
    // The lock is released here and taken again by the resume below: the same path as
    // `resume --run ID`, flags and all.
    super::batch::resume(ResumeArgs {
        run: Some(args.run),
        api: args.api,
        limits: args.limits,
        store: args.store,
        output: args.output,
    })
    .await
}

/// Under the database lock: the run must exist and not be abandoned; its jobs in `states`
/// go back, recorded as an execution of the run.
fn put_back(args: &RetryArgs, states: &[JobState]) -> Result<RetryCounts, Error> {
    let db = &args.store.db;
    let lock = DbLock::acquire(db).map_err(fatal)?;
    let mut store = Store::open(db).map_err(fatal)?;
    store.settle_orphans(&lock).map_err(fatal)?;
    let run = store
        .run(args.run)
        .map_err(fatal)?
        .ok_or_else(|| Error::usage(format!("no run {} in {}", args.run, db.display())))?;
    if run.status == RunStatus::Abandoned {
        return Err(Error::usage(format!(
            "run {} was abandoned: it is kept in history and never resumed or retried",
            run.id
        )));
    }
    // The resume that follows reads the manifest again: one it cannot read is refused
    // before any job is put back, not after.
    if run.manifest_path != "-"
        && let Err(e) = std::fs::File::open(&run.manifest_path)
    {
        return Err(Error::usage(format!(
            "run {}: its manifest {} cannot be read ({e}); nothing was put back",
            run.id, run.manifest_path
        )));
    }
    refuse_minimised(&store, &run, states)?;
    let names: Vec<&str> = states.iter().map(|s| s.as_str()).collect();
    let command = format!("retry --run {} --state {}", run.id, names.join(","));
    store
        .retry_jobs(&lock, &run, states, &command)
        .map_err(fatal)
}

/// A submit run's jobs whose personal data was removed when they turned final cannot be
/// sent again: the retry is refused, saying so, before anything is put back. (A poll run
/// only reads job_status, which needs no personal data.)
fn refuse_minimised(store: &Store, run: &RunRecord, states: &[JobState]) -> Result<(), Error> {
    if run.mode != RunMode::Submit {
        return Ok(());
    }
    let n = store.minimised_jobs(run.id, states).map_err(fatal)?;
    if n == 0 {
        return Ok(());
    }
    Err(Error::usage(format!(
        "run {}: {n} of the jobs to retry no longer hold their ID number and names (removed \
         when they turned final; the run did not use --keep-pii), so they cannot be sent \
         again: submit those rows of the manifest as a new run, and use --keep-pii (or \
         [privacy] keep_pii = true) for runs that may need retry",
        run.id
    )))
}

/// What was put back, on stderr (a JSON line with `--log-format json`, before the run's
/// own log starts).
fn announce(args: &RetryArgs, counts: &RetryCounts) {
    let text = format!("run {}: {}", args.run, counts.describe());
    if args.output.log_format == LogFormat::Json {
        let line = serde_json::json!({
            "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "level": "INFO",
            "message": text,
            "run": args.run,
            "event": "retry",
            "put_back": counts.total(),
            "failed": counts.failed,
            "gave_up": counts.gave_up,
            "new_job_ids": counts.new_job_ids,
            "checked_first": counts.checked_first,
        });
        eprintln!("{line}");
    } else {
        eprintln!("smile-recon: {text}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failed_and_gave_up_states_are_taken_once_each() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            states(&names(&["failed", "gave_up", "failed"])).unwrap(),
            vec![JobState::Failed, JobState::GaveUp]
        );
        assert!(states(&names(&["invalid"])).is_err());
        assert!(states(&names(&["done"])).is_err());
    }
}
