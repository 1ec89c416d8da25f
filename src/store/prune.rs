//! `runs prune`: runs created before a cutoff that are over (finished or abandoned) are
//! deleted with every row that refers to them or to their jobs, and the file is rebuilt so
//! the space (and the bytes of what was deleted) goes. An unfinished run is never pruned:
//! it may still be resumed.

use std::path::Path;

use rusqlite::{OptionalExtension, params};

use super::{DbLock, RunStatus, RunSummary, Store, StoreError, now_ms};

/// The runs created before a cutoff: those that would be deleted and those kept because
/// they are not over.
#[derive(Clone, Debug, Default)]
pub struct PrunePlan {
    /// Finished or abandoned runs.
    pub prunable: Vec<RunSummary>,
    /// Runs not over yet (staging, ready, running, interrupted): kept.
    pub unfinished: Vec<RunSummary>,
}

impl PrunePlan {
    pub fn ids(&self) -> Vec<i64> {
        self.prunable.iter().map(|r| r.run.id).collect()
    }
}

/// Rows deleted, per table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PruneCounts {
    pub runs: u64,
    pub jobs: u64,
    pub events: u64,
    pub executions: u64,
    pub callback_replays: u64,
}

/// Every table that holds rows of a run, children first (jobs and executions reference
/// `runs(id)`; events and callback replays carry the run's id).
const RUN_TABLES: [&str; 5] = ["events", "callback_replays", "executions", "jobs", "runs"];

/// A callback's (timestamp, signature) pair is kept this long after it was accepted, even
/// when its run is pruned: the timestamp may be up to `--callback-max-age` (a day at most)
/// ahead of the clock when accepted and is taken until as far behind, so a pair deleted
/// sooner could be replayed into a later run.
pub const REPLAY_PAIRS_KEPT_MS: i64 = 2 * 86_400_000;

/// Whether a run is over, so that nothing would ever resume it.
pub fn is_over(status: RunStatus) -> bool {
    matches!(status, RunStatus::Finished | RunStatus::Abandoned)
}

/// The database's size on disk: the file and its write-ahead log.
pub fn bytes_on_disk(db: &Path) -> u64 {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    [db.to_path_buf(), wal.into()]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

impl Store {
    /// The runs created before `cutoff_ms` (Unix ms), split into those a prune deletes and
    /// those it keeps.
    pub fn prune_plan(&self, cutoff_ms: i64) -> Result<PrunePlan, StoreError> {
        let mut plan = PrunePlan::default();
        for summary in self.list_runs()? {
            if summary.run.created_at >= cutoff_ms {
                continue;
            }
            if is_over(summary.run.status) {
                plan.prunable.push(summary);
            } else {
                plan.unfinished.push(summary);
            }
        }
        Ok(plan)
    }

    /// Deletes the runs `ids` with every row of theirs in every table, in one transaction.
    /// A run that is not over is left alone whatever `ids` says. Needs the lock: no run may
    /// be being worked.
    pub fn prune_runs(&mut self, _lock: &DbLock, ids: &[i64]) -> Result<PruneCounts, StoreError> {
        let path = self.path.clone();
        let err = |e| super::sqlite(&path, e);
        let tx = self.conn.transaction().map_err(err)?;
        let mut counts = PruneCounts::default();
        for &id in ids {
            let status: Option<RunStatus> = tx
                .query_row("SELECT status FROM runs WHERE id = ?1", [id], |r| r.get(0))
                .optional()
                .map_err(err)?;
            if !status.is_some_and(is_over) {
                continue;
            }
            for table in RUN_TABLES {
                let column = if table == "runs" { "id" } else { "run_id" };
                let n = if table == "callback_replays" {
                    // Pairs still young enough to be replayed stay (a later prune takes them).
                    tx.execute(
                        "DELETE FROM callback_replays WHERE run_id = ?1 AND at < ?2",
                        params![id, now_ms().saturating_sub(REPLAY_PAIRS_KEPT_MS)],
                    )
                } else {
                    tx.execute(
                        &format!("DELETE FROM {table} WHERE {column} = ?1"),
                        params![id],
                    )
                }
                .map_err(err)? as u64;
                match table {
                    "events" => counts.events += n,
                    "callback_replays" => counts.callback_replays += n,
                    "executions" => counts.executions += n,
                    "jobs" => counts.jobs += n,
                    _ => counts.runs += n,
                }
            }
        }
        tx.commit().map_err(err)?;
        Ok(counts)
    }

    /// Rebuilds the database (VACUUM), so that the space of deleted rows goes back to the
    /// file system, and empties the write-ahead log into it.
    pub fn reclaim(&self) -> Result<(), StoreError> {
        self.conn.execute_batch("VACUUM").map_err(|e| self.err(e))?;
        self.truncate_wal();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_finished_and_abandoned_runs_are_over() {
        use RunStatus::*;
        let over: Vec<RunStatus> = RunStatus::ALL.into_iter().filter(|s| is_over(*s)).collect();
        assert_eq!(over, [Finished, Abandoned]);
    }

    #[test]
    fn a_prune_deletes_every_row_of_an_over_run_and_nothing_of_another() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prune.db");
        drop(Store::open(&path).unwrap());
        super::super::seed_for_tests(&path, &[(1, 1, "done", None), (2, 2, "queued", None)]);
        let lock = DbLock::acquire(&path).unwrap();
        let mut store = Store::open(&path).unwrap();
        store
            .conn
            .execute_batch(
                "UPDATE runs SET status = 'finished' WHERE id = 1;
                 INSERT INTO events (run_id, job_row, at, kind, outcome) VALUES
                   (1, 1, 0, 'submit', 'ok'), (1, 1, 1, 'callback', 'ok'), (2, 2, 0, 'submit', 'ok');
                 INSERT INTO executions (run_id, pid, command, started_at) VALUES
                   (1, 1, 'submit', 0), (2, 1, 'poll', 0);
                 INSERT INTO callback_replays (timestamp, signature, run_id, job_row, at)
                   VALUES ('t', 's', 1, 1, 0), ('t2', 's', 2, 2, 0);",
            )
            .unwrap();
        let plan = store.prune_plan(1).unwrap();
        assert_eq!(plan.ids(), [1]);
        assert_eq!(plan.unfinished.len(), 1);
        // run 2 is named too, but it is not over: it stays
        let counts = store.prune_runs(&lock, &[1, 2, 99]).unwrap();
        assert_eq!(
            counts,
            PruneCounts {
                runs: 1,
                jobs: 1,
                events: 2,
                executions: 1,
                callback_replays: 1
            }
        );
        for table in RUN_TABLES {
            let column = if table == "runs" { "id" } else { "run_id" };
            let left: i64 = store
                .conn
                .query_row(
                    &format!("SELECT COUNT(*) FROM {table} WHERE {column} = 1"),
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(left, 0, "{table}");
            let other: i64 = store
                .conn
                .query_row(
                    &format!("SELECT COUNT(*) FROM {table} WHERE {column} = 2"),
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(other, 1, "{table}");
        }
        store.reclaim().unwrap();
    }

    /// Pruning an identity's runs does not let `--again` reuse a generation (it would
    /// derive the same job_ids, which Smile ID answers with the old results), nor a new
    /// run reuse a run id.
    #[test]
    fn a_pruned_identity_keeps_counting_its_generations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prune.db");
        let mut store = Store::open(&path).unwrap();
        let first = super::super::poll_run_for_tests(&mut store);
        assert_eq!(store.next_generation("n", "k").unwrap(), 1);
        store
            .conn
            .execute("UPDATE runs SET status = 'finished' WHERE id = ?1", [first])
            .unwrap();
        let lock = DbLock::acquire(&path).unwrap();
        assert_eq!(store.prune_runs(&lock, &[first]).unwrap().runs, 1);
        assert!(store.run(first).unwrap().is_none());
        assert_eq!(store.next_generation("n", "k").unwrap(), 1);
        assert_eq!(store.next_generation("n", "another key").unwrap(), 0);
        // Nor is a pruned run's id given again (reports under `{run}` would be overwritten).
        let next = super::super::poll_run_for_tests(&mut store);
        assert_eq!(next, first + 1);
    }

    /// A pair accepted within the last two days outlives its pruned run: it could still be
    /// replayed within `--callback-max-age`.
    #[test]
    fn a_prune_keeps_the_callback_pairs_that_could_still_be_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prune.db");
        drop(Store::open(&path).unwrap());
        super::super::seed_for_tests(&path, &[(1, 1, "done", None)]);
        let lock = DbLock::acquire(&path).unwrap();
        let mut store = Store::open(&path).unwrap();
        let now = now_ms();
        store
            .conn
            .execute("UPDATE runs SET status = 'finished' WHERE id = 1", [])
            .unwrap();
        store
            .conn
            .execute(
                "INSERT INTO callback_replays (timestamp, signature, run_id, job_row, at)
                 VALUES ('old', 's', 1, 1, ?1), ('young', 's', 1, 1, ?2)",
                params![
                    now - REPLAY_PAIRS_KEPT_MS - 1,
                    now - REPLAY_PAIRS_KEPT_MS + 60_000
                ],
            )
            .unwrap();
        let counts = store.prune_runs(&lock, &[1]).unwrap();
        assert_eq!((counts.runs, counts.callback_replays), (1, 1));
        assert!(store.callback_pair_seen("young", "s").unwrap());
        assert!(!store.callback_pair_seen("old", "s").unwrap());
    }
}
