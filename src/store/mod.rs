//! The checkpoint database: runs, executions, jobs and their events, in SQLite (WAL).
//!
//! Every job's state lives here, so a killed process loses nothing. Only one writer at a
//! time: staging before the engine starts, then the engine's writer task; readers (the
//! dispatcher's paging, the callback receiver, reports) use their own connections.

mod answer;
mod jobs;
mod kinds;
mod lifecycle;
pub mod lock;
pub mod pii;
mod prune;
mod reports;
mod runs;
mod services;
mod sql;
pub mod state;
mod write;

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use rusqlite_migration::{M, Migrations};

use crate::files;

pub use answer::Answer;
pub use jobs::{CallbackTarget, DueJob, DuePage, JobRecord, NewJob, StageCounts};
pub use kinds::{EventKind, EventOutcome, ResultSource, RunMode};
pub use lifecycle::{RetryCounts, RetryPlan, retry_job_id, shown_status};
pub use lock::{DbLock, LockProbe};
pub use prune::{PruneCounts, PrunePlan, bytes_on_disk};
pub use reports::{DriftPair, EventRow, Latency};
pub use runs::ExecutionRecord;
pub use runs::{NewRun, RunRecord, RunStatus, RunSummary};
pub use services::StoredServices;
pub use state::JobState;
pub use write::{EventRecord, JobUpdate, ResultFields, WriteOp};

/// The schema, applied in order at open. Never edit a released migration: add one.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/001_initial.sql"),
    include_str!("../../migrations/002_job_id_index_without_state.sql"),
    include_str!("../../migrations/003_active_index_without_in.sql"),
    include_str!("../../migrations/004_drop_events_by_job.sql"),
    include_str!("../../migrations/005_services_cache.sql"),
    include_str!("../../migrations/006_callback_replays.sql"),
    include_str!("../../migrations/007_audit.sql"),
    include_str!("../../migrations/008_job_retries.sql"),
    include_str!("../../migrations/009_run_identity.sql"),
    include_str!("../../migrations/010_pii_key.sql"),
    include_str!("../../migrations/011_identity_generations.sql"),
];

fn migrations() -> Migrations<'static> {
    Migrations::new(MIGRATIONS.iter().map(|sql| M::up(sql)).collect())
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
    #[error("database {path}: {source}")]
    Sqlite {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("database {path}: cannot apply the schema: {reason}")]
    Migration { path: String, reason: String },
    #[error("database {db} is in use by another smile-recon process (pid {pid})")]
    Locked { db: String, pid: String },
    #[error("database {path}: {reason}")]
    Corrupt { path: String, reason: String },
}

impl StoreError {
    pub(crate) fn io(path: &Path, e: std::io::Error) -> Self {
        StoreError::Io {
            path: path.display().to_string(),
            reason: e.to_string(),
        }
    }
}

/// One connection to the checkpoint database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// Removes a job's personal data when the writer makes it final; `None` keeps it
    /// (`--keep-pii`, and read-only connections, which never write).
    minimiser: Option<pii::Minimiser>,
    /// Jobs whose personal data this connection removed.
    minimised: u64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating it mode 0600 if needed) and brings the schema up to date. The file
    /// is refused if it is a symbolic link, another user's, or writable by group or
    /// others (see [`check_files`]); its -wal and -shm are kept 0600.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let real = check_files(path)?;
        if files::lstat(&real)
            .map_err(|e| StoreError::io(path, e))?
            .is_none()
        {
            // Created here, not by SQLite, so that it is 0600 from the first byte; SQLite
            // gives the -wal and -shm files the same mode.
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(files::NOFOLLOW)
                .open(&real)
                .map_err(|e| StoreError::io(path, e))?;
        }
        let mut conn = Connection::open_with_flags(
            &real,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NOFOLLOW,
        )
        .map_err(|e| sqlite(path, e))?;
        configure(&conn, path)?;
        migrations()
            .to_latest(&mut conn)
            .map_err(|e| StoreError::Migration {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        private_companions(&real)?;
        let minimiser = pii::Minimiser::load(&conn).map_err(|e| sqlite(path, e))?;
        Ok(Self {
            conn,
            path: real,
            minimiser: Some(minimiser),
            minimised: 0,
        })
    }

    /// Whether jobs turning final keep their personal data (`--keep-pii`). Off by default:
    /// a final job keeps only what reports need.
    pub fn keep_pii(&mut self, keep: bool) -> Result<(), StoreError> {
        self.minimiser = if keep {
            None
        } else {
            Some(pii::Minimiser::load(&self.conn).map_err(|e| self.err(e))?)
        };
        Ok(())
    }

    /// After jobs lost their personal data: the database is rebuilt (VACUUM) and its
    /// write-ahead log emptied. `secure_delete` zeroes what a deletion frees, but a page
    /// SQLite rebalances keeps stale bytes of its old cells in its unused space, so only a
    /// rebuild removes every trace. Nothing is done when nothing was removed. Best effort:
    /// a failure is logged, and the next run's end tries again.
    pub fn scrub(&mut self) {
        if self.minimised == 0 {
            return;
        }
        let started = std::time::Instant::now();
        if let Err(e) = self.conn.execute_batch("VACUUM") {
            tracing::warn!(db = %self.path.display(), error = %e, "VACUUM after removing personal data failed");
        }
        self.truncate_wal();
        tracing::info!(
            jobs = self.minimised,
            seconds = (started.elapsed().as_secs_f64() * 100.0).round() / 100.0,
            "personal data of final jobs removed; database rebuilt"
        );
        self.minimised = 0;
    }

    /// Empties the write-ahead log into the database and truncates it to nothing, so the
    /// pages that held removed personal data do not linger there. Best effort: a reader
    /// still using the log leaves it as it is, and the next run truncates it.
    pub fn truncate_wal(&self) {
        let result = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                r.get::<_, i64>(0)
            });
        if !matches!(result, Ok(0)) {
            tracing::debug!(db = %self.path.display(), "the WAL could not be truncated now");
        }
    }

    /// A read-only connection (reports, the dispatcher's paging, the callback receiver),
    /// under the same rules as [`Store::open`].
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        let real = check_files(path)?;
        if !real.is_file() {
            return Err(StoreError::Io {
                path: path.display().to_string(),
                reason: "no such database".into(),
            });
        }
        let conn = Connection::open_with_flags(
            &real,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_NOFOLLOW,
        )
        .map_err(|e| sqlite(path, e))?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(|e| sqlite(path, e))?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| sqlite(path, e))?;
        if version != MIGRATIONS.len() as i64 {
            return Err(StoreError::Corrupt {
                path: path.display().to_string(),
                reason: format!(
                    "schema version {version}, this smile-recon expects {}",
                    MIGRATIONS.len()
                ),
            });
        }
        private_companions(&real)?;
        Ok(Self {
            conn,
            path: real,
            minimiser: None,
            minimised: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn err(&self, e: rusqlite::Error) -> StoreError {
        sqlite(&self.path, e)
    }
}

/// The database's path with its directories resolved, once the database and its -wal,
/// -shm and .lock files (those that exist) have been checked: none may be a symbolic link,
/// belong to another user, or be writable by group or others. The message says how to
/// fix it (`chmod 600`, `chown`, or pass the file itself).
pub fn check_files(path: &Path) -> Result<PathBuf, StoreError> {
    let real = files::resolve(path).map_err(|e| StoreError::io(path, e))?;
    for suffix in ["", "-wal", "-shm", ".lock"] {
        let mut name = real.as_os_str().to_owned();
        name.push(suffix);
        let file = PathBuf::from(name);
        files::check_existing(&file).map_err(|e| StoreError::io(&file, e))?;
    }
    if let Some(meta) = files::lstat(&real).map_err(|e| StoreError::io(path, e))? {
        files::one_name(&real, &meta).map_err(|e| StoreError::io(path, e))?;
    }
    Ok(real)
}

/// -wal and -shm at 0600 whatever the umask or a database's mode gave them.
fn private_companions(real: &Path) -> Result<(), StoreError> {
    for suffix in ["-wal", "-shm"] {
        let mut name = real.as_os_str().to_owned();
        name.push(suffix);
        let file = PathBuf::from(name);
        files::make_private(&file).map_err(|e| StoreError::io(&file, e))?;
    }
    Ok(())
}

fn configure(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(|e| sqlite(path, e))?;
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))
        .map_err(|e| sqlite(path, e))?;
    // WAL with synchronous=NORMAL is durable against a process kill (what resume needs);
    // only a power cut may lose the last transactions, and those are re-checked on resume.
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(|e| sqlite(path, e))?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(|e| sqlite(path, e))?;
    // Deleted and overwritten rows (a final job's personal data, a pruned run) are zeroed
    // in the file, not left in free space.
    conn.pragma_update(None, "secure_delete", "ON")
        .map_err(|e| sqlite(path, e))?;
    // Checkpoint every ~16 MiB of WAL instead of 4 MiB: a quarter of the checkpoints (each
    // one an fsync) in a long run; and an 8 MiB page cache for the writer's b-tree pages.
    conn.pragma_update(None, "wal_autocheckpoint", 4000)
        .map_err(|e| sqlite(path, e))?;
    conn.pragma_update(None, "cache_size", -8192)
        .map_err(|e| sqlite(path, e))?;
    // A size cap for the checkpoint database, to rehearse a full disk (SQLite then answers
    // SQLITE_FULL, as it does when the disk fills): `SMILE_RECON_DB_MAX_PAGES=N` (4 KiB
    // pages). Unset in normal use.
    if let Some(pages) = std::env::var(MAX_PAGES_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok())
    {
        conn.pragma_update(None, "max_page_count", pages)
            .map_err(|e| sqlite(path, e))?;
    }
    Ok(())
}

/// See [`configure`]: caps the database at this many pages.
pub const MAX_PAGES_ENV: &str = "SMILE_RECON_DB_MAX_PAGES";

fn sqlite(path: &Path, e: rusqlite::Error) -> StoreError {
    StoreError::Sqlite {
        path: path.display().to_string(),
        source: e,
    }
}

/// Now, in the store's unit (Unix milliseconds).
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Seeds a fresh database for unit tests: runs 1 and 2, and one job per
/// `(run_id, row id, state, category)` (line = id + 1, job_id `j<id>`).
#[cfg(test)]
pub(crate) fn seed_for_tests(path: &Path, jobs: &[(i64, i64, &str, Option<&str>)]) {
    let conn = Connection::open(path).expect("open the test database");
    conn.execute_batch(
        "INSERT INTO runs (id, name, mode, manifest_path, manifest_sha256, config_json, status, \
         created_at, updated_at) VALUES (1, 'r', 'poll', 'm', 'x', '{}', 'ready', 0, 0), \
         (2, 's', 'poll', 'm', 'x', '{}', 'ready', 0, 0);",
    )
    .expect("insert the test runs");
    for (run_id, id, state, category) in jobs {
        conn.execute(
            "INSERT INTO jobs (id, run_id, line, user_id, job_id, input_json, state, category, \
             updated_at) VALUES (?1, ?2, ?1 + 1, 'u', 'j' || ?1, '{}', ?3, ?4, 0)",
            rusqlite::params![id, run_id, state, category],
        )
        .expect("insert a test job");
    }
}

/// A manifest row for unit tests (user `u<line>`, an invalid one with a reason).
#[cfg(test)]
pub(crate) fn new_job_for_tests(line: i64, job_id: &str, state: JobState) -> NewJob {
    NewJob {
        line,
        user_id: format!("u{line}"),
        job_id: job_id.to_owned(),
        job_id_derived: false,
        country: None,
        id_type: None,
        input_json: "{}".into(),
        state,
        error: (state == JobState::Invalid).then(|| "field dob: bad".to_owned()),
        expected_result_code: None,
        expected_status: Some(crate::manifest::ExpectedStatus::Approved),
    }
}

/// A poll run in `store` for unit tests; its id.
#[cfg(test)]
pub(crate) fn poll_run_for_tests(store: &mut Store) -> i64 {
    store
        .create_run(&NewRun {
            name: "n".into(),
            mode: RunMode::Poll,
            endpoint: None,
            manifest_path: "-".into(),
            manifest_query: None,
            manifest_sha256: "0".repeat(64),
            config_json: "{}".into(),
            run_key: "k".into(),
            generation: 0,
        })
        .expect("create the test run")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::params;

    #[test]
    fn migrations_are_valid() {
        migrations().validate().unwrap();
    }

    #[test]
    fn paging_through_active_jobs_uses_the_partial_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("plan.db")).unwrap();
        let plan: Vec<String> = store
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", jobs::due_jobs_sql()))
            .unwrap()
            .query_map(params![1, 0, 5], |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let plan = plan.join("; ");
        assert!(plan.contains("jobs_active"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }

    #[test]
    fn the_due_jobs_statement_is_not_prepared_again_on_each_page() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("due.db");
        let store = Store::open(&path).unwrap();
        seed_for_tests(&path, &[(1, 1, "queued", None), (1, 2, "queued", None)]);
        let reader = Store::open_read_only(&path).unwrap();
        for limit in [1, 2, 3, 1] {
            let page = reader.due_jobs(1, now_ms(), 0, limit).unwrap();
            assert_eq!(page.len(), limit.min(2));
        }
        assert_eq!(reader.due_jobs(1, now_ms(), 1, 5).unwrap()[0].row, 2);
        drop(store);
        // Jobs being worked are passed over and do not count towards the limit.
        let page = reader.due_page(1, now_ms(), 0, 1, |row| row == 1).unwrap();
        assert_eq!(page.jobs.iter().map(|j| j.row).collect::<Vec<_>>(), [2]);
        assert_eq!(page.last, Some(2));
        let page = reader.due_page(1, now_ms(), 0, 5, |_| true).unwrap();
        assert!(page.jobs.is_empty());
        assert_eq!(page.last, Some(2));
        assert_eq!(
            reader.due_page(1, now_ms(), 2, 5, |_| false).unwrap().last,
            None
        );
        let stmt = reader.conn.prepare_cached(&jobs::due_jobs_sql()).unwrap();
        assert_eq!(stmt.get_status(rusqlite::StatementStatus::RePrepare), 0);
    }

    #[test]
    fn a_version_1_database_keeps_its_jobs_and_their_validity() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.db");
        {
            let mut conn = Connection::open(&path).unwrap();
            Migrations::new(vec![M::up(MIGRATIONS[0])])
                .to_latest(&mut conn)
                .unwrap();
            conn.execute_batch(
                "INSERT INTO runs (id, name, mode, manifest_path, manifest_sha256, config_json, \
                 status, created_at, updated_at) VALUES (1, 'r', 'poll', 'm', 'x', '{}', \
                 'ready', 0, 0);
                 INSERT INTO jobs (run_id, line, user_id, job_id, input_json, state, updated_at) \
                 VALUES (1, 2, 'u', 'j1', '{}', 'done', 0), (1, 3, 'u', 'j1', '{}', 'invalid', 0);",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let flags: Vec<(i64, bool)> = store
            .conn
            .prepare("SELECT line, staged_invalid FROM jobs ORDER BY line")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(flags, vec![(2, false), (3, true)]);
        // the unique index still refuses a second valid j1
        let clash = store.conn.execute(
            "INSERT INTO jobs (run_id, line, user_id, job_id, input_json, state, updated_at) \
             VALUES (1, 4, 'u', 'j1', '{}', 'queued', 0)",
            [],
        );
        assert!(clash.is_err());
    }

    #[test]
    fn the_database_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        let _store = Store::open(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_second_process_lock_is_refused_with_the_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        let _held = DbLock::acquire(&path).unwrap();
        let err = DbLock::acquire(&path).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(&std::process::id().to_string()), "{text}");
    }
}
