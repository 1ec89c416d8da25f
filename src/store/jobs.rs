//! Staging jobs and reading them back.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{ErrorCode, OptionalExtension, params};
use serde::Serialize;

use super::state::ACTIVE_SQL;
use super::{JobState, ResultSource, Store, StoreError, now_ms};
use crate::api::Category;
use crate::manifest::ExpectedStatus;

/// A manifest row, ready to stage.
#[derive(Clone, Debug)]
pub struct NewJob {
    pub line: i64,
    pub user_id: String,
    pub job_id: String,
    pub job_id_derived: bool,
    pub country: Option<String>,
    pub id_type: Option<String>,
    /// The validated row as JSON (or the invalid row's reason).
    pub input_json: String,
    /// `Queued`, or `Invalid` with `error` saying why.
    pub state: JobState,
    pub error: Option<String>,
    pub expected_result_code: Option<String>,
    pub expected_status: Option<ExpectedStatus>,
}

/// The job a callback names, as the receiver judges it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallbackTarget {
    pub row: i64,
    pub user_id: String,
    pub state: JobState,
    /// A callback's claim waits for (or was answered by) job_status.
    pub claimed: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StageCounts {
    pub staged: u64,
    pub invalid: u64,
    /// Rows refused because an earlier row of the run has the same job_id.
    pub duplicate_job_ids: u64,
}

impl StageCounts {
    fn add(&mut self, row: StagedRow) {
        self.staged += 1;
        if row.clashed {
            self.duplicate_job_ids += 1;
        }
        if row.invalid {
            self.invalid += 1;
        }
    }
}

/// What a worker needs to act on a job.
#[derive(Clone, Debug)]
pub struct DueJob {
    pub row: i64,
    pub line: i64,
    pub user_id: String,
    pub job_id: String,
    pub state: JobState,
    pub attempts: i64,
    pub polls: i64,
    pub input_json: String,
    pub first_request_at: Option<i64>,
    /// The ResultCode a callback claimed, waiting for job_status to confirm it.
    pub callback_claim: Option<String>,
}

/// One page of [`Store::due_page`].
#[derive(Debug, Default)]
pub struct DuePage {
    /// The jobs to hand out.
    pub jobs: Vec<DueJob>,
    /// The last row read, skipped or not: the dispatcher's next cursor (`None`: no due
    /// job after the cursor).
    pub last: Option<i64>,
}

/// Everything stored about a job, for reports.
#[derive(Clone, Debug, Serialize)]
pub struct JobRecord {
    pub row: i64,
    pub line: i64,
    pub user_id: String,
    pub job_id: String,
    pub job_id_derived: bool,
    pub country: Option<String>,
    pub id_type: Option<String>,
    pub input_json: String,
    pub state: JobState,
    pub attempts: i64,
    pub polls: i64,
    pub last_http_status: Option<i64>,
    pub last_code: Option<String>,
    pub last_error: Option<String>,
    pub result_code: Option<String>,
    pub result_text: Option<String>,
    pub job_success: Option<bool>,
    pub category: Option<Category>,
    pub smile_job_id: Option<String>,
    pub result_source: Option<ResultSource>,
    pub result_json: Option<String>,
    pub signature_confirmed: Option<bool>,
    pub expected_result_code: Option<String>,
    pub expected_status: Option<ExpectedStatus>,
    pub first_request_at: Option<i64>,
    pub completed_at: Option<i64>,
}

impl Store {
    /// The last manifest line already staged for a run (0 when none): staging interrupted
    /// by a kill continues after it.
    pub fn max_staged_line(&self, run_id: i64) -> Result<i64, StoreError> {
        self.conn
            .query_row(
                "SELECT COALESCE(MAX(line), 0) FROM jobs WHERE run_id = ?1",
                [run_id],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// Stages a batch of rows in one transaction. A valid row whose job_id an earlier row
    /// already uses is staged `invalid`, naming that row's line.
    pub fn stage(&mut self, run_id: i64, rows: &[NewJob]) -> Result<StageCounts, StoreError> {
        // The rows' run is checked once per batch (the closing UPDATE of `runs` must find
        // it), so the foreign-key lookup SQLite would make for every row is off meanwhile.
        // The pragma takes effect only outside a transaction, hence around it.
        let off = self.conn.pragma_update(None, "foreign_keys", "OFF");
        let staged = off
            .map_err(|e| self.err(e))
            .and_then(|()| self.stage_batch(run_id, rows));
        let on = self.conn.pragma_update(None, "foreign_keys", "ON");
        let counts = staged?;
        on.map_err(|e| self.err(e))?;
        Ok(counts)
    }

    fn stage_batch(&mut self, run_id: i64, rows: &[NewJob]) -> Result<StageCounts, StoreError> {
        let path = self.path.clone();
        let err = |e| super::sqlite(&path, e);
        let now = now_ms();
        let tx = self.conn.transaction().map_err(err)?;
        let mut counts = StageCounts::default();
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO jobs (run_id, line, user_id, job_id, job_id_derived, country, \
                     id_type, input_json, state, last_error, expected_result_code, \
                     expected_status, updated_at, staged_invalid) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                )
                .map_err(err)?;
            let mut first_use = tx
                .prepare_cached(
                    "SELECT line FROM jobs WHERE run_id = ?1 AND job_id = ?2 AND staged_invalid = 0",
                )
                .map_err(err)?;
            let mut insert_many = tx.prepare_cached(&insert_many_sql()).map_err(err)?;
            let mut chunks = rows.chunks_exact(ROWS_PER_INSERT);
            for chunk in &mut chunks {
                // Rows go in ROWS_PER_INSERT at a time; a chunk that meets a constraint
                // (a job_id used before) is undone whole by SQLite and staged row by row.
                match insert_chunk(&mut insert_many, run_id, chunk, now) {
                    Ok(()) => {
                        counts.staged += chunk.len() as u64;
                        counts.invalid += chunk
                            .iter()
                            .filter(|r| r.state == JobState::Invalid)
                            .count() as u64;
                        continue;
                    }
                    Err(rusqlite::Error::SqliteFailure(e, _))
                        if e.code == ErrorCode::ConstraintViolation => {}
                    Err(e) => return Err(err(e)),
                }
                for row in chunk {
                    let state = stage_row(&mut insert, &mut first_use, &path, run_id, row, now)?;
                    counts.add(state);
                }
            }
            for row in chunks.remainder() {
                let state = stage_row(&mut insert, &mut first_use, &path, run_id, row, now)?;
                counts.add(state);
            }
        }
        let runs = tx
            .execute(
                "UPDATE runs SET staged_rows = staged_rows + ?2, updated_at = ?3 WHERE id = ?1",
                params![run_id, counts.staged as i64, now],
            )
            .map_err(err)?;
        if runs != 1 {
            // Undone with the transaction: no job may name a run that does not exist.
            return Err(StoreError::Corrupt {
                path: path.display().to_string(),
                reason: format!("no run {run_id} to stage rows into"),
            });
        }
        tx.commit().map_err(err)?;
        Ok(counts)
    }

    /// Up to `limit` jobs that need work and are due by `now`, after row `after`.
    pub fn due_jobs(
        &self,
        run_id: i64,
        now: i64,
        after: i64,
        limit: usize,
    ) -> Result<Vec<DueJob>, StoreError> {
        Ok(self.due_page(run_id, now, after, limit, |_| false)?.jobs)
    }

    /// The dispatcher's page: up to `limit` jobs that need work and are due by `now`,
    /// after row `after` (the dispatcher pages through the run with this cursor). A row
    /// for which `skip` holds (a job already being worked) is passed over without being
    /// decoded and does not count towards `limit`.
    pub fn due_page(
        &self,
        run_id: i64,
        now: i64,
        after: i64,
        limit: usize,
        skip: impl Fn(i64) -> bool,
    ) -> Result<DuePage, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(&due_jobs_sql())
            .map_err(|e| self.err(e))?;
        let mut rows = stmt
            .query(params![run_id, after, now])
            .map_err(|e| self.err(e))?;
        let mut page = DuePage {
            jobs: Vec::with_capacity(limit.min(1024)),
            last: None,
        };
        // The rows come in index order, one step at a time, so the page ends by no longer
        // stepping (see [`due_jobs_sql`] for why the SQL has no LIMIT).
        while page.jobs.len() < limit {
            let Some(r) = rows.next().map_err(|e| self.err(e))? else {
                break;
            };
            let row: i64 = r.get(0).map_err(|e| self.err(e))?;
            page.last = Some(row);
            if skip(row) {
                continue;
            }
            let job = (|| {
                Ok::<_, rusqlite::Error>(DueJob {
                    row,
                    line: r.get(1)?,
                    user_id: r.get(2)?,
                    job_id: r.get(3)?,
                    state: r.get(4)?,
                    attempts: r.get(5)?,
                    polls: r.get(6)?,
                    input_json: r.get(7)?,
                    first_request_at: r.get(8)?,
                    callback_claim: r.get(9)?,
                })
            })()
            .map_err(|e| self.err(e))?;
            page.jobs.push(job);
        }
        Ok(page)
    }

    /// When the next job that still needs work is due (None: no such job).
    pub fn next_due_at(&self, run_id: i64) -> Result<Option<i64>, StoreError> {
        self.conn
            .query_row(
                &format!(
                    "SELECT MIN(next_attempt_at) FROM jobs WHERE run_id = ?1 AND {ACTIVE_SQL}"
                ),
                [run_id],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    pub fn counts_by_state(&self, run_id: i64) -> Result<BTreeMap<JobState, u64>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT state, COUNT(*) FROM jobs WHERE run_id = ?1 GROUP BY state")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([run_id], |r| Ok((r.get(0)?, r.get::<_, i64>(1)?)))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.err(e))?;
        Ok(rows.into_iter().map(|(s, n)| (s, n as u64)).collect())
    }

    /// Whether a run has any job row (staged valid or invalid).
    pub fn has_jobs(&self, run_id: i64) -> Result<bool, StoreError> {
        self.conn
            .prepare_cached("SELECT 1 FROM jobs WHERE run_id = ?1 LIMIT 1")
            .and_then(|mut s| s.exists([run_id]))
            .map_err(|e| self.err(e))
    }

    /// Jobs per state, and final jobs per result category, in one pass over the run's
    /// rows. The rows are folded here rather than grouped by SQLite: `GROUP BY state,
    /// category` sorts every row of the run in a temporary b-tree first.
    pub fn counts(&self, run_id: i64) -> Result<RunCounts, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT state, category FROM jobs WHERE run_id = ?1")
            .map_err(|e| self.err(e))?;
        let mut per_state = [0u64; JobState::ALL.len()];
        let mut categories: BTreeMap<String, u64> = BTreeMap::new();
        let mut rows = stmt.query([run_id]).map_err(|e| self.err(e))?;
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let state: JobState = r.get(0).map_err(|e| self.err(e))?;
            per_state[state as usize] += 1;
            if !counts_category(state) {
                continue;
            }
            let category = r.get_ref(1).map_err(|e| self.err(e))?;
            let Some(c) = category.as_str_or_null().map_err(|e| self.err(e.into()))? else {
                continue;
            };
            match categories.get_mut(c) {
                Some(n) => *n += 1,
                None => {
                    categories.insert(c.to_owned(), 1);
                }
            }
        }
        let states = JobState::ALL
            .into_iter()
            .zip(per_state)
            .filter(|(_, n)| *n > 0)
            .collect();
        Ok((states, categories))
    }

    /// A run's job by its job_id (the callback receiver matches callbacks with it).
    pub fn job_by_job_id(
        &self,
        run_id: i64,
        job_id: &str,
    ) -> Result<Option<CallbackTarget>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT id, user_id, state, callback_claim IS NOT NULL FROM jobs \
                 WHERE run_id = ?1 AND job_id = ?2 AND staged_invalid = 0",
            )
            .and_then(|mut s| {
                s.query_row(params![run_id, job_id], |r| {
                    Ok(CallbackTarget {
                        row: r.get(0)?,
                        user_id: r.get(1)?,
                        state: r.get(2)?,
                        claimed: r.get(3)?,
                    })
                })
                .optional()
            })
            .map_err(|e| self.err(e))
    }

    /// Whether a callback was already accepted with this (timestamp, signature) pair, in
    /// any run of this database.
    pub fn callback_pair_seen(&self, timestamp: &str, signature: &str) -> Result<bool, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT 1 FROM callback_replays WHERE timestamp = ?1 AND signature = ?2",
            )
            .and_then(|mut s| s.exists(params![timestamp, signature]))
            .map_err(|e| self.err(e))
    }

    /// Every job of a run in manifest order, streamed to `f` (reports).
    pub fn for_each_job(
        &self,
        run_id: i64,
        f: impl FnMut(JobRecord) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.each_job(
            "SELECT id, line, user_id, job_id, job_id_derived, country, id_type, input_json, \
             state, attempts, polls, last_http_status, last_code, last_error, result_code, \
             result_text, job_success, category, smile_job_id, result_source, result_json, \
             signature_confirmed, expected_result_code, expected_status, first_request_at, \
             completed_at FROM jobs WHERE run_id = ?1 ORDER BY line",
            run_id,
            f,
        )
    }

    /// The jobs of a run that carry an expectation, or that Smile ID does not know (2304),
    /// without their input and result JSON (empty and `None` here): what reconciliation
    /// reads, at a fraction of the cost.
    pub fn for_each_expectation(
        &self,
        run_id: i64,
        f: impl FnMut(JobRecord) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.each_job(
            "SELECT id, line, user_id, job_id, job_id_derived, country, id_type, '', \
             state, attempts, polls, last_http_status, last_code, last_error, result_code, \
             result_text, job_success, category, smile_job_id, result_source, NULL, \
             signature_confirmed, expected_result_code, expected_status, first_request_at, \
             completed_at FROM jobs WHERE run_id = ?1 \
             AND (expected_status IS NOT NULL OR expected_result_code IS NOT NULL \
             OR last_code = '2304')",
            run_id,
            f,
        )
    }

    fn each_job(
        &self,
        sql: &str,
        run_id: i64,
        mut f: impl FnMut(JobRecord) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare(sql).map_err(|e| self.err(e))?;
        let mut rows = stmt.query([run_id]).map_err(|e| self.err(e))?;
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let record = (|| {
                Ok::<_, rusqlite::Error>(JobRecord {
                    row: r.get(0)?,
                    line: r.get(1)?,
                    user_id: r.get(2)?,
                    job_id: r.get(3)?,
                    job_id_derived: r.get(4)?,
                    country: r.get(5)?,
                    id_type: r.get(6)?,
                    input_json: r.get(7)?,
                    state: r.get(8)?,
                    attempts: r.get(9)?,
                    polls: r.get(10)?,
                    last_http_status: r.get(11)?,
                    last_code: r.get(12)?,
                    last_error: r.get(13)?,
                    result_code: r.get(14)?,
                    result_text: r.get(15)?,
                    job_success: r.get(16)?,
                    category: r.get(17)?,
                    smile_job_id: r.get(18)?,
                    result_source: r.get(19)?,
                    result_json: stored_answer(r, 20)?,
                    signature_confirmed: r.get(21)?,
                    expected_result_code: r.get(22)?,
                    expected_status: r.get(23)?,
                    first_request_at: r.get(24)?,
                    completed_at: r.get(25)?,
                })
            })()
            .map_err(|e| self.err(e))?;
            f(record)?;
        }
        Ok(())
    }
}

/// The dispatcher's page of due jobs: the partial index `jobs_active` (run_id, id) gives
/// them in `id` order, so no sort is needed and the caller stops stepping at its page
/// size. There is no `LIMIT ?`: SQLite reads a bound LIMIT's value while planning, and so
/// marks the statement to be prepared again whenever that parameter is bound, which was
/// every call.
pub(crate) fn due_jobs_sql() -> String {
    format!(
        "SELECT id, line, user_id, job_id, state, attempts, polls, input_json, \
         first_request_at, callback_claim FROM jobs \
         WHERE run_id = ?1 AND {ACTIVE_SQL} AND id > ?2 AND next_attempt_at <= ?3 ORDER BY id"
    )
}

/// A run's jobs per state, and its final jobs per result category.
pub type RunCounts = (BTreeMap<JobState, u64>, BTreeMap<String, u64>);

/// Whether a job in `state` is counted under its result category: a final job with a
/// result (an invalid row has none).
fn counts_category(state: JobState) -> bool {
    matches!(state, JobState::Done | JobState::Failed | JobState::GaveUp)
}

/// A job's stored answer (column `index` of `r`, whose first two columns are the job's
/// row and manifest line), text again; a value that does not decode names its job.
fn stored_answer(r: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Option<String>> {
    match r.get::<_, Option<super::Answer>>(index) {
        Ok(answer) => Ok(answer.map(|a| a.0)),
        Err(rusqlite::Error::FromSqlConversionFailure(i, kind, why)) => {
            let (row, line): (i64, i64) = (r.get(0)?, r.get(1)?);
            Err(rusqlite::Error::FromSqlConversionFailure(
                i,
                kind,
                format!("job row {row} (manifest line {line}), result_json: {why}").into(),
            ))
        }
        Err(e) => Err(e),
    }
}

/// How one row was staged.
struct StagedRow {
    /// A valid row whose job_id an earlier row uses, staged `invalid`.
    clashed: bool,
    invalid: bool,
}

/// Rows per multi-row staging INSERT (14 parameters each).
const ROWS_PER_INSERT: usize = 64;

/// `INSERT INTO jobs ... VALUES (...), (...)` for [`ROWS_PER_INSERT`] rows, in the column
/// order [`insert_chunk`] binds.
fn insert_many_sql() -> String {
    let row = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    format!(
        "INSERT INTO jobs (run_id, line, user_id, job_id, job_id_derived, country, id_type, \
         input_json, state, last_error, expected_result_code, expected_status, updated_at, \
         staged_invalid) VALUES {}",
        vec![row; ROWS_PER_INSERT].join(", ")
    )
}

/// Inserts `chunk` (exactly [`ROWS_PER_INSERT`] rows) with one step of `insert_many`.
fn insert_chunk(
    insert_many: &mut rusqlite::CachedStatement<'_>,
    run_id: i64,
    chunk: &[NewJob],
    now: i64,
) -> rusqlite::Result<()> {
    let mut i = 0;
    let mut bind = |value: &dyn rusqlite::ToSql| {
        i += 1;
        insert_many.raw_bind_parameter(i, value)
    };
    for row in chunk {
        bind(&run_id)?;
        bind(&row.line)?;
        bind(&row.user_id)?;
        bind(&row.job_id)?;
        bind(&row.job_id_derived)?;
        bind(&row.country)?;
        bind(&row.id_type)?;
        bind(&row.input_json)?;
        bind(&row.state.as_str())?;
        bind(&row.error)?;
        bind(&row.expected_result_code)?;
        bind(&row.expected_status)?;
        bind(&now)?;
        bind(&(row.state == JobState::Invalid))?;
    }
    insert_many.raw_execute().map(|_| ())
}

/// Inserts one row with `insert`; a valid row whose job_id an earlier row of the run
/// uses (found with `first_use`) is inserted `invalid` instead, naming that row's line.
fn stage_row(
    insert: &mut rusqlite::CachedStatement<'_>,
    first_use: &mut rusqlite::CachedStatement<'_>,
    path: &Path,
    run_id: i64,
    row: &NewJob,
    now: i64,
) -> Result<StagedRow, StoreError> {
    let err = |e| super::sqlite(path, e);
    let mut state = row.state;
    let mut error = row.error.clone();
    let mut clashed = false;
    loop {
        let result = insert.execute(params![
            run_id,
            row.line,
            row.user_id,
            row.job_id,
            row.job_id_derived,
            row.country,
            row.id_type,
            row.input_json,
            state.as_str(),
            error,
            row.expected_result_code,
            row.expected_status,
            now,
            state == JobState::Invalid
        ]);
        match result {
            Ok(_) => break,
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == ErrorCode::ConstraintViolation && state != JobState::Invalid =>
            {
                let line: Option<i64> = first_use
                    .query_row(params![run_id, row.job_id], |r| r.get(0))
                    .optional()
                    .map_err(err)?;
                let Some(line) = line else {
                    // Not a job_id clash: the line itself exists (cannot happen when
                    // staging continues after max_staged_line).
                    return Err(StoreError::Corrupt {
                        path: path.display().to_string(),
                        reason: format!("line {} of run {run_id} staged twice", row.line),
                    });
                };
                state = JobState::Invalid;
                error = Some(
                    crate::manifest::RowError::duplicate_job_id(row.line, &row.job_id, line)
                        .to_string(),
                );
                clashed = true;
            }
            Err(e) => return Err(err(e)),
        }
    }
    Ok(StagedRow {
        clashed,
        invalid: state == JobState::Invalid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::new_job_for_tests as new_job;

    /// Staging checks its run once per batch instead of SQLite's per-row foreign key:
    /// rows for a run that does not exist are refused whole, and the foreign keys are on
    /// again afterwards, whether the batch was staged or refused.
    #[test]
    fn staging_into_a_missing_run_is_refused_and_foreign_keys_come_back_on() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.db")).unwrap();
        let rows: Vec<NewJob> = (2..2 + ROWS_PER_INSERT as i64 + 3)
            .map(|line| new_job(line, &format!("j{line}"), JobState::Queued))
            .collect();
        let refused = store.stage(7, &rows).unwrap_err();
        assert!(refused.to_string().contains("no run 7"), "{refused}");
        let fk = |store: &Store| -> i64 {
            store
                .conn
                .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(fk(&store), 1);
        let jobs: i64 = store
            .conn
            .query_row("SELECT COUNT(*) FROM jobs", [], |r| r.get(0))
            .unwrap();
        assert_eq!(jobs, 0, "a refused batch leaves no row");
        let run = super::super::poll_run_for_tests(&mut store);
        assert_eq!(store.stage(run, &rows).unwrap().staged, rows.len() as u64);
        assert_eq!(fk(&store), 1);
    }

    /// A stored answer that does not decode is an error that names its job and column,
    /// not a panic or an empty answer.
    #[test]
    fn a_damaged_stored_answer_names_its_job() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.db")).unwrap();
        let run = super::super::poll_run_for_tests(&mut store);
        let rows: Vec<NewJob> = (2..5)
            .map(|line| new_job(line, &format!("j{line}"), JobState::Queued))
            .collect();
        store.stage(run, &rows).unwrap();
        let answer = super::super::Answer(r#"{"ResultCode":"1020"}"#.into());
        store
            .conn
            .execute("UPDATE jobs SET result_json = ?1 WHERE line = 2", [&answer])
            .unwrap();
        store
            .conn
            .execute(
                "UPDATE jobs SET result_json = x'01ffffff7f00' WHERE line = 4",
                [],
            )
            .unwrap();
        let mut seen = Vec::new();
        let err = store
            .for_each_job(run, |j| {
                seen.push(j.result_json);
                Ok(())
            })
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("manifest line 4") && err.contains("result_json"),
            "{err}"
        );
        assert_eq!(seen, [Some(answer.0), None]);
    }

    /// line, job_id, state, last_error, staged_invalid, expected_status
    type StoredRow = (i64, String, String, Option<String>, i64, Option<String>);

    /// Rows staged in multi-row INSERTs end as they do one by one: a reused job_id (in the
    /// same chunk, in a later chunk, in the remainder) makes that row invalid, naming the
    /// first line, and every other row is stored as given, in line order.
    #[test]
    fn staging_in_chunks_keeps_every_rows_state_and_the_duplicate_rule() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.db")).unwrap();
        let run = super::super::poll_run_for_tests(&mut store);
        let n = ROWS_PER_INSERT as i64 * 3 + 5;
        let dup_of = |line: i64| match line {
            12 => Some(5),   // same chunk
            100 => Some(7),  // a later chunk
            196 => Some(90), // the remainder
            _ => None,
        };
        let rows: Vec<NewJob> = (2..n + 2)
            .map(|line| match (dup_of(line), line) {
                (Some(first), _) => new_job(line, &format!("j{first}"), JobState::Queued),
                (None, 40) => new_job(line, "j40", JobState::Invalid),
                (None, _) => new_job(line, &format!("j{line}"), JobState::Queued),
            })
            .collect();
        let counts = store.stage(run, &rows).unwrap();
        assert_eq!(
            counts,
            StageCounts {
                staged: n as u64,
                invalid: 4,
                duplicate_job_ids: 3
            }
        );
        let stored: Vec<StoredRow> = store
            .conn
            .prepare("SELECT line, job_id, state, last_error, staged_invalid, expected_status FROM jobs WHERE run_id = ?1 ORDER BY id")
            .unwrap()
            .query_map([run], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(stored.len(), n as usize);
        for (i, (line, job_id, state, error, staged_invalid, expected)) in
            stored.into_iter().enumerate()
        {
            assert_eq!(line, i as i64 + 2);
            assert_eq!(expected.as_deref(), Some("approved"));
            let want_error = match (dup_of(line), line) {
                (Some(first), _) => Some(format!(
                    "line {line}, field job_id: \"j{first}\" is already used on line {first}"
                )),
                (None, 40) => Some("field dob: bad".to_owned()),
                _ => None,
            };
            let invalid = want_error.is_some();
            assert_eq!(
                job_id,
                dup_of(line).map_or(format!("j{line}"), |f| format!("j{f}"))
            );
            assert_eq!(
                state,
                if invalid { "invalid" } else { "queued" },
                "line {line}"
            );
            assert_eq!(staged_invalid, invalid as i64);
            assert_eq!(error, want_error, "line {line}");
        }
    }

    #[test]
    fn counts_per_state_and_per_category_of_final_jobs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let store = Store::open(&path).unwrap();
        super::super::seed_for_tests(
            &path,
            &[
                (1, 1, "done", Some("Approved")),
                (1, 2, "done", Some("Approved")),
                (1, 3, "done", Some("Rejected")),
                (1, 4, "failed", Some("Error")),
                (1, 5, "failed", None),
                (1, 6, "awaiting", Some("Approved")),
                (1, 7, "queued", None),
                (2, 8, "done", Some("Approved")),
            ],
        );
        assert!(store.has_jobs(1).unwrap() && store.has_jobs(2).unwrap());
        assert!(!store.has_jobs(3).unwrap());
        assert_eq!(store.counts(3).unwrap(), Default::default());
        let (states, categories) = store.counts(1).unwrap();
        assert_eq!(states, store.counts_by_state(1).unwrap());
        assert_eq!(states.values().sum::<u64>(), 7);
        assert_eq!(
            categories.into_iter().collect::<Vec<_>>(),
            vec![
                ("Approved".to_owned(), 2),
                ("Error".to_owned(), 1),
                ("Rejected".to_owned(), 1)
            ]
        );
    }
}
