//! Runs (one manifest processed under one configuration) and their executions (each
//! process that worked on it).

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use super::kinds::RunMode;
use super::{JobState, Store, StoreError, now_ms};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Rows are being read into the jobs table.
    Staging,
    /// Staged; nothing run yet.
    Ready,
    Running,
    /// Stopped by a signal, a kill or the circuit breaker: resumable.
    Interrupted,
    /// Every job final.
    Finished,
    /// Retired by `runs abandon`: kept in history, never resumed.
    Abandoned,
}

impl RunStatus {
    pub const ALL: [RunStatus; 6] = [
        RunStatus::Staging,
        RunStatus::Ready,
        RunStatus::Running,
        RunStatus::Interrupted,
        RunStatus::Finished,
        RunStatus::Abandoned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Staging => "staging",
            RunStatus::Ready => "ready",
            RunStatus::Running => "running",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Finished => "finished",
            RunStatus::Abandoned => "abandoned",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// What a new run is.
#[derive(Clone, Debug)]
pub struct NewRun {
    pub name: String,
    pub mode: RunMode,
    pub endpoint: Option<String>,
    pub manifest_path: String,
    pub manifest_query: Option<String>,
    pub manifest_sha256: String,
    /// The effective configuration as JSON, without secrets.
    pub config_json: String,
    /// The identifying key: with the name, the run's identity.
    pub run_key: String,
    /// 0 for the identity's first run, one more for each deliberate re-run (`--again`).
    pub generation: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct RunRecord {
    pub id: i64,
    pub name: String,
    pub mode: RunMode,
    pub endpoint: Option<String>,
    pub manifest_path: String,
    pub manifest_query: Option<String>,
    pub manifest_sha256: String,
    pub config_json: String,
    pub status: RunStatus,
    pub staged_rows: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
    /// The identifying key; `None` for a run stored before runs had identities.
    pub run_key: Option<String>,
    pub generation: i64,
}

/// A run and how many of its jobs are in each state.
#[derive(Clone, Debug, Serialize)]
pub struct RunSummary {
    pub run: RunRecord,
    pub counts: BTreeMap<JobState, u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ExecutionRecord {
    pub id: i64,
    pub pid: i64,
    pub command: String,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub outcome: Option<String>,
    /// `None` for executions recorded before provenance was kept.
    pub provenance: Option<crate::provenance::Provenance>,
}

const RUN_COLUMNS: &str = "id, name, mode, endpoint, manifest_path, manifest_query, \
     manifest_sha256, config_json, status, staged_rows, created_at, updated_at, finished_at, \
     run_key, generation";

impl RunRecord {
    /// The status reports show: a running run whose jobs are all final and whose reports
    /// are being written ([`Store::mark_reports_pending`]) is shown finished, as it will be
    /// once they are.
    pub fn reported_status(&self) -> RunStatus {
        match (self.status, self.finished_at) {
            (RunStatus::Running, Some(_)) => RunStatus::Finished,
            (status, _) => status,
        }
    }
}

fn run_from_row(row: &Row<'_>) -> rusqlite::Result<RunRecord> {
    Ok(RunRecord {
        id: row.get(0)?,
        name: row.get(1)?,
        mode: row.get(2)?,
        endpoint: row.get(3)?,
        manifest_path: row.get(4)?,
        manifest_query: row.get(5)?,
        manifest_sha256: row.get(6)?,
        config_json: row.get(7)?,
        status: row.get(8)?,
        staged_rows: row.get(9)?,
        created_at: row.get(10)?,
        updated_at: row.get(11)?,
        finished_at: row.get(12)?,
        run_key: row.get(13)?,
        generation: row.get(14)?,
    })
}

impl Store {
    pub fn create_run(&self, run: &NewRun) -> Result<i64, StoreError> {
        let now = now_ms();
        self.conn
            .execute(
                // The id follows the highest ever given (`run_ids`), pruned runs' included.
                "INSERT INTO runs (id, name, mode, endpoint, manifest_path, manifest_query, \
                 manifest_sha256, config_json, status, created_at, updated_at, run_key, \
                 generation) VALUES ((SELECT MAX((SELECT COALESCE(MAX(id), 0) FROM runs), \
                 (SELECT COALESCE(MAX(last), 0) FROM run_ids)) + 1), \
                 ?1, ?2, ?3, ?4, ?5, ?6, ?7, 'staging', ?8, ?8, ?9, ?10)",
                params![
                    run.name,
                    run.mode,
                    run.endpoint,
                    run.manifest_path,
                    run.manifest_query,
                    run.manifest_sha256,
                    run.config_json,
                    now,
                    run.run_key,
                    run.generation
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn run(&self, id: i64) -> Result<Option<RunRecord>, StoreError> {
        self.conn
            .query_row(
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"),
                [id],
                run_from_row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// The newest run, or the newest not finished (nor abandoned) one.
    pub fn latest_run(&self, unfinished_only: bool) -> Result<Option<RunRecord>, StoreError> {
        let filter = if unfinished_only {
            "WHERE status <> 'finished' AND status <> 'abandoned'"
        } else {
            ""
        };
        self.conn
            .query_row(
                &format!("SELECT {RUN_COLUMNS} FROM runs {filter} ORDER BY id DESC LIMIT 1"),
                [],
                run_from_row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// The newest run of this name that is neither finished nor abandoned: re-running it
    /// resumes it.
    pub fn unfinished_run_named(&self, name: &str) -> Result<Option<RunRecord>, StoreError> {
        self.conn
            .query_row(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM runs WHERE name = ?1 AND status <> 'finished' \
                     AND status <> 'abandoned' \
                     ORDER BY id DESC LIMIT 1"
                ),
                [name],
                run_from_row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// The newest run of this identity (name and key) that was not abandoned.
    pub fn latest_run_of_identity(
        &self,
        name: &str,
        key: &str,
    ) -> Result<Option<RunRecord>, StoreError> {
        self.conn
            .query_row(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM runs WHERE name = ?1 AND run_key = ?2 \
                     AND status <> 'abandoned' ORDER BY id DESC LIMIT 1"
                ),
                params![name, key],
                run_from_row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Whether the identity ran in this database and none of its runs is left (pruned).
    pub fn identity_pruned(&self, name: &str, key: &str) -> Result<bool, StoreError> {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM identity_generations WHERE name = ?1 AND run_key = ?2) \
                 AND NOT EXISTS (SELECT 1 FROM runs WHERE name = ?1 AND run_key = ?2)",
                params![name, key],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// The next generation of an identity: one more than any of its runs, abandoned ones
    /// included (their job_ids were sent too), and pruned ones (`identity_generations`
    /// outlives them).
    pub fn next_generation(&self, name: &str, key: &str) -> Result<i64, StoreError> {
        self.conn
            .query_row(
                "SELECT MAX( \
                   (SELECT COALESCE(MAX(generation) + 1, 0) FROM runs \
                    WHERE name = ?1 AND run_key = ?2), \
                   (SELECT COALESCE(MAX(next_generation), 0) FROM identity_generations \
                    WHERE name = ?1 AND run_key = ?2))",
                params![name, key],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// The newest *finished* run of this name before `before` (for drift comparisons):
    /// an abandoned or interrupted run's partial results would read as drift.
    pub fn previous_run_named(
        &self,
        name: &str,
        before: i64,
    ) -> Result<Option<RunRecord>, StoreError> {
        self.conn
            .query_row(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM runs WHERE name = ?1 AND id < ?2 \
                     AND status = ?3 ORDER BY id DESC LIMIT 1"
                ),
                params![name, before, RunStatus::Finished.as_str()],
                run_from_row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn list_runs(&self) -> Result<Vec<RunSummary>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {RUN_COLUMNS} FROM runs ORDER BY id"))
            .map_err(|e| self.err(e))?;
        let runs = stmt
            .query_map([], run_from_row)
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.err(e))?;
        runs.into_iter()
            .map(|run| {
                let counts = self.counts_by_state(run.id)?;
                Ok(RunSummary { run, counts })
            })
            .collect()
    }

    /// Every job of a running run is final and only its reports are pending: the run keeps
    /// `running` (so that a process killed now leaves a run the same command completes)
    /// but records when its work ended; reports written now show it finished.
    pub fn mark_reports_pending(&self, run_id: i64) -> Result<(), StoreError> {
        let now = now_ms();
        self.conn
            .execute(
                "UPDATE runs SET status = ?2, updated_at = ?3, finished_at = ?3 WHERE id = ?1",
                params![run_id, RunStatus::Running, now],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn set_run_status(&self, run_id: i64, status: RunStatus) -> Result<(), StoreError> {
        let now = now_ms();
        let finished = (status == RunStatus::Finished).then_some(now);
        self.conn
            .execute(
                "UPDATE runs SET status = ?2, updated_at = ?3, \
                 finished_at = COALESCE(?4, finished_at) WHERE id = ?1",
                params![run_id, status.as_str(), now, finished],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Replaces the stored configuration (a resume with new flags).
    pub fn set_run_config(&self, run_id: i64, config_json: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE runs SET config_json = ?2, updated_at = ?3 WHERE id = ?1",
                params![run_id, config_json, now_ms()],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Records that this process starts working on `run_id`, with its provenance
    /// (version, host, user, command line).
    pub fn start_execution(&self, run_id: i64, command: &str) -> Result<i64, StoreError> {
        let p = crate::provenance::Provenance::current();
        self.conn
            .execute(
                "INSERT INTO executions (run_id, pid, command, started_at, tool_version, host, \
                 os_user, command_line) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    run_id,
                    std::process::id(),
                    command,
                    now_ms(),
                    p.tool_version,
                    p.host,
                    p.os_user,
                    p.command_line
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn end_execution(&self, execution_id: i64, outcome: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE executions SET ended_at = ?2, outcome = ?3 WHERE id = ?1",
                params![execution_id, now_ms(), outcome],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn executions(&self, run_id: i64) -> Result<Vec<ExecutionRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, pid, command, started_at, ended_at, outcome, tool_version, host, \
                 os_user, command_line FROM executions WHERE run_id = ?1 ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        stmt.query_map([run_id], |r| {
            Ok(ExecutionRecord {
                id: r.get(0)?,
                pid: r.get(1)?,
                command: r.get(2)?,
                started_at: r.get(3)?,
                ended_at: r.get(4)?,
                outcome: r.get(5)?,
                provenance: match r.get::<_, Option<String>>(6)? {
                    Some(tool_version) => Some(crate::provenance::Provenance {
                        tool_version,
                        host: r.get::<_, Option<String>>(7)?.unwrap_or_default(),
                        os_user: r.get::<_, Option<String>>(8)?.unwrap_or_default(),
                        command_line: r.get::<_, Option<String>>(9)?.unwrap_or_default(),
                    }),
                    None => None,
                },
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_run(name: &str) -> NewRun {
        NewRun {
            name: name.into(),
            mode: RunMode::Poll,
            endpoint: None,
            manifest_path: "m.csv".into(),
            manifest_query: None,
            manifest_sha256: "0".repeat(64),
            config_json: "{}".into(),
            run_key: "k".into(),
            generation: 0,
        }
    }

    #[test]
    fn drift_compares_with_the_latest_finished_run_of_the_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let finished = store.create_run(&new_run("nightly")).unwrap();
        store.set_run_status(finished, RunStatus::Finished).unwrap();
        let abandoned = store.create_run(&new_run("nightly")).unwrap();
        store
            .set_run_status(abandoned, RunStatus::Abandoned)
            .unwrap();
        let interrupted = store.create_run(&new_run("nightly")).unwrap();
        store
            .set_run_status(interrupted, RunStatus::Running)
            .unwrap();
        let other = store.create_run(&new_run("other")).unwrap();
        store.set_run_status(other, RunStatus::Finished).unwrap();
        let now = store.create_run(&new_run("nightly")).unwrap();
        let previous = store.previous_run_named("nightly", now).unwrap().unwrap();
        assert_eq!(previous.id, finished);
        assert!(
            store
                .previous_run_named("nightly", finished)
                .unwrap()
                .is_none()
        );
    }
}
