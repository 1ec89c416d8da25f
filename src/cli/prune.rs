//! `runs prune --older-than D`: old runs that are over go with their jobs, events and
//! executions, and the database gives the space back.

use crate::exit::{Error, ExitStatus};
use crate::store::{self, DbLock, PruneCounts, PrunePlan, RunSummary, Store};

use super::args::PruneArgs;
use super::runs::{cutoff_ms, fatal, no_database, short_time};

pub fn run(args: &PruneArgs) -> Result<ExitStatus, Error> {
    let db = &args.store.db;
    if !db.exists() {
        return Err(no_database(db));
    }
    let cutoff =
        cutoff_ms("--older-than", &args.older_than, store::now_ms()).map_err(Error::usage)?;
    println!(
        "runs started before {} UTC, finished or abandoned:",
        short_time(Some(cutoff))
    );
    if args.dry_run {
        return dry_run(db, cutoff);
    }
    let lock = DbLock::acquire(db).map_err(fatal)?;
    let mut store = Store::open(db).map_err(fatal)?;
    store.settle_orphans(&lock).map_err(fatal)?;
    let plan = store.prune_plan(cutoff).map_err(fatal)?;
    print_runs(&plan.prunable, "deleted");
    let before = store::bytes_on_disk(store.path());
    let counts = store.prune_runs(&lock, &plan.ids()).map_err(fatal)?;
    if counts.runs > 0 {
        store.reclaim().map_err(fatal)?;
    }
    let after = store::bytes_on_disk(store.path());
    println!("{}", deleted_line(&counts));
    print_kept(&plan);
    println!("database: {before} bytes before, {after} bytes after");
    Ok(ExitStatus::Success)
}

/// What a prune would delete, read without the lock and without writing anything.
fn dry_run(db: &std::path::Path, cutoff: i64) -> Result<ExitStatus, Error> {
    // Before any connection is opened (see `lock::probe`).
    let probe = store::lock::probe(db).map_err(fatal)?;
    let store = Store::open_read_only(db).map_err(fatal)?;
    let mut plan = store.prune_plan(cutoff).map_err(fatal)?;
    for summary in &mut plan.unfinished {
        let open_pid = store.open_execution_pid(summary.run.id).map_err(fatal)?;
        summary.run.status = store::shown_status(summary.run.status, probe, open_pid);
    }
    print_runs(&plan.prunable, "would be deleted");
    let jobs: u64 = plan.prunable.iter().map(job_count).sum();
    println!(
        "dry run, nothing deleted: {} runs and {jobs} jobs would go, with their events and \
         executions",
        plan.prunable.len()
    );
    print_kept(&plan);
    println!("database: {} bytes", store::bytes_on_disk(store.path()));
    Ok(ExitStatus::Success)
}

fn job_count(summary: &RunSummary) -> u64 {
    summary.counts.values().sum()
}

fn print_runs(runs: &[RunSummary], verb: &str) {
    for summary in runs {
        let run = &summary.run;
        println!(
            "  run {} ({}, {}, started {}): {} jobs {verb}",
            run.id,
            run.name,
            run.status.as_str(),
            short_time(Some(run.created_at)),
            job_count(summary)
        );
    }
}

fn deleted_line(counts: &PruneCounts) -> String {
    format!(
        "deleted {} runs, {} jobs ({} events, {} executions, {} callback replays)",
        counts.runs, counts.jobs, counts.events, counts.executions, counts.callback_replays
    )
}

/// The old runs a prune leaves because they are not over, and what to do about them.
fn print_kept(plan: &PrunePlan) {
    if plan.unfinished.is_empty() {
        return;
    }
    let list: Vec<String> = plan
        .unfinished
        .iter()
        .map(|s| format!("run {} ({})", s.run.id, s.run.status.as_str()))
        .collect();
    println!(
        "kept {} unfinished runs started before the cutoff: {}. An unfinished run may still \
         be resumed; finish it, or retire it with `smile-recon runs abandon ID`, and a later \
         prune removes it",
        plan.unfinished.len(),
        list.join(", ")
    );
}
