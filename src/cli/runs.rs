//! `runs`: the list of runs, and `runs abandon ID` (`runs prune` is in `prune.rs`).

use crate::exit::{Error, ExitStatus};
use crate::store::{self, DbLock, JobState, RunStatus, RunSummary, Store};

use super::args::{AbandonArgs, RunsAction, RunsArgs};

pub fn run(args: RunsArgs) -> Result<ExitStatus, Error> {
    match args.action {
        Some(RunsAction::Abandon(abandon_args)) => abandon(&abandon_args),
        Some(RunsAction::Prune(prune_args)) => super::prune::run(&prune_args),
        None => list(&args),
    }
}

pub(super) fn fatal(e: impl std::fmt::Display) -> Error {
    Error::fatal(e.to_string())
}

/// What a command that reads a database says when there is none (it never creates one).
pub(super) fn no_database(db: &std::path::Path) -> Error {
    Error::fatal(format!(
        "{}: no such database (pass --db PATH)",
        db.display()
    ))
}

/// `runs abandon ID`: the run is kept with its jobs and events and never resumed. Needs
/// the database lock (no run may be being worked), so it is refused while a process holds
/// the database.
fn abandon(args: &AbandonArgs) -> Result<ExitStatus, Error> {
    let db = &args.store.db;
    if !db.exists() {
        return Err(no_database(db));
    }
    let lock = DbLock::acquire(db).map_err(fatal)?;
    let mut store = Store::open(db).map_err(fatal)?;
    store.settle_orphans(&lock).map_err(fatal)?;
    let run = store
        .run(args.run)
        .map_err(fatal)?
        .ok_or_else(|| Error::usage(format!("no run {} in {}", args.run, db.display())))?;
    match run.status {
        RunStatus::Abandoned => {
            println!("run {} was already abandoned", run.id);
            return Ok(ExitStatus::Success);
        }
        RunStatus::Finished => {
            return Err(Error::usage(format!(
                "run {} is finished: nothing would resume it, so there is nothing to abandon",
                run.id
            )));
        }
        _ => {}
    }
    store
        .abandon_run(&lock, run.id, &format!("runs abandon {}", run.id))
        .map_err(fatal)?;
    println!(
        "run {} ({}) abandoned: kept in history, never resumed; its {} jobs stay as they were",
        run.id,
        run.name,
        store
            .counts_by_state(run.id)
            .map_err(fatal)?
            .values()
            .sum::<u64>()
    );
    Ok(ExitStatus::Success)
}

/// One line per run with its counts per state, started and finished times; filtered by
/// name, status and start time; `--json` for scripts. A run stored `running` whose
/// process is gone is shown `interrupted`.
fn list(args: &RunsArgs) -> Result<ExitStatus, Error> {
    if !args.store.db.exists() {
        return Err(no_database(&args.store.db));
    }
    let since = args
        .since
        .as_deref()
        .map(|s| cutoff_ms("--since", s, store::now_ms()).map_err(Error::usage))
        .transpose()?;
    // Before any connection is opened (see `lock::probe`).
    let probe = store::lock::probe(&args.store.db).map_err(fatal)?;
    let store = Store::open_read_only(&args.store.db).map_err(fatal)?;
    let mut runs = Vec::new();
    for mut summary in store.list_runs().map_err(fatal)? {
        let open_pid = store.open_execution_pid(summary.run.id).map_err(fatal)?;
        summary.run.status = store::shown_status(summary.run.status, probe, open_pid);
        runs.push(summary);
    }
    runs.retain(|r| {
        args.name.as_deref().is_none_or(|n| r.run.name.contains(n))
            && args
                .status
                .as_deref()
                .is_none_or(|s| r.run.status.as_str().eq_ignore_ascii_case(s))
            && since.is_none_or(|t| r.run.created_at >= t)
    });
    if let Some(limit) = args.limit {
        let skip = runs.len().saturating_sub(limit);
        runs.drain(..skip);
    }
    if args.json {
        let list: Vec<serde_json::Value> = runs.iter().map(json_line).collect();
        println!("{}", serde_json::Value::Array(list));
    } else if runs.is_empty() {
        println!("no runs in {}", args.store.db.display());
    } else {
        print_table(&runs);
    }
    Ok(ExitStatus::Success)
}

fn json_line(summary: &RunSummary) -> serde_json::Value {
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
}

fn print_table(runs: &[RunSummary]) {
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
}

fn time_text(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// "2026-11-20 14:03" (UTC), or "-".
pub(super) fn short_time(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "-".into())
}

/// `--since` and `--older-than` (`flag`): a date (YYYY-MM-DD, UTC midnight), or a
/// duration back from `now` (7d, 12h, 30m), as Unix ms.
pub(super) fn cutoff_ms(flag: &str, text: &str, now: i64) -> Result<i64, String> {
    let text = text.trim();
    let usage = || format!("{flag} {text}: a date (2026-11-20) or a duration (7d, 12h, 30m)");
    if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return date
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_millis())
            .ok_or_else(|| format!("{flag} {text}: not a date"));
    }
    let unit = text.chars().last().unwrap_or(' ');
    let number: u32 = text[..text.len().saturating_sub(unit.len_utf8())]
        .parse()
        .map_err(|_| usage())?;
    let seconds = match unit {
        'd' => 86_400,
        'h' => 3_600,
        'm' => 60,
        's' => 1,
        _ => return Err(usage()),
    };
    let cutoff = now.saturating_sub(i64::from(number) * seconds * 1000);
    if cutoff < 0 {
        return Err(format!("{flag} {text}: reaches back before 1970"));
    }
    Ok(cutoff)
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
    use super::cutoff_ms;

    fn since_ms(text: &str, now: i64) -> Result<i64, String> {
        cutoff_ms("--since", text, now)
    }

    #[test]
    fn since_reads_dates_and_durations() {
        let now = 10 * 86_400_000;
        assert_eq!(since_ms("7d", now), Ok(3 * 86_400_000));
        assert_eq!(since_ms("2h", now), Ok(now - 7_200_000));
        assert_eq!(since_ms("1970-01-02", now), Ok(86_400_000));
        assert!(since_ms("7w", now).is_err());
        assert!(since_ms("yesterday", now).is_err());
        assert!(since_ms("", now).is_err());
        assert!(
            cutoff_ms("--older-than", "99999999d", now).is_err(),
            "before 1970"
        );
        let refused = cutoff_ms("--older-than", "3 weeks", now).unwrap_err();
        assert!(refused.starts_with("--older-than 3 weeks:"), "{refused}");
    }
}
