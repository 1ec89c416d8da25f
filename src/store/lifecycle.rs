//! A run's life outside the engine: runs whose process died, abandoning a run, and
//! putting failed jobs back for a new execution (`retry`). Every write here takes the
//! database lock as proof that no run is being worked.

use rusqlite::{OptionalExtension, params};
use sha2::{Digest, Sha256};

use super::kinds::RunMode;
use super::lock::LockProbe;
use super::{DbLock, JobState, RunRecord, RunStatus, Store, StoreError, now_ms};

/// What `runs` shows for a run: a run stored `running` is `interrupted` when no process
/// holds the database, or when the holder is not the process of the run's open execution
/// (its own process died, another run is being worked now).
pub fn shown_status(stored: RunStatus, probe: LockProbe, open_pid: Option<i64>) -> RunStatus {
    if stored != RunStatus::Running {
        return stored;
    }
    match probe {
        LockProbe::Free => RunStatus::Interrupted,
        LockProbe::Held { pid: Some(holder) }
            if open_pid.is_some_and(|p| p != i64::from(holder)) =>
        {
            RunStatus::Interrupted
        }
        LockProbe::Held { .. } => RunStatus::Running,
    }
}

/// How a failed or gave_up job goes back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryPlan {
    /// Nothing reached Smile ID (or a poll run, which only reads): queued, same job_id.
    Resend,
    /// A submission left but nothing says whether Smile ID took it: in_flight with the
    /// same job_id, so job_status is asked first (not found: sent again; found: read).
    CheckFirst,
    /// Smile ID accepted it (a SmileJobID or a result): the same job_id would meet 2215
    /// and read the old result, so it is queued under a new job_id.
    NewJobId,
}

impl RetryPlan {
    /// `accepted`: the job holds a SmileJobID, a ResultCode or a result; `requested`: a
    /// request was sent for it.
    pub fn choose(mode: RunMode, accepted: bool, requested: bool) -> RetryPlan {
        match mode {
            RunMode::Poll => RetryPlan::Resend,
            RunMode::Submit if accepted => RetryPlan::NewJobId,
            RunMode::Submit if requested => RetryPlan::CheckFirst,
            RunMode::Submit => RetryPlan::Resend,
        }
    }
}

/// The job_id a job is sent under after its `retries`-th retry: derived from the job_id it
/// was staged with and that count alone, so a retry run again derives the same id.
pub fn retry_job_id(first_job_id: &str, retries: i64) -> String {
    let mut hash = Sha256::new();
    for part in ["retry", first_job_id, &retries.to_string()] {
        hash.update(part.as_bytes());
        hash.update([0u8]);
    }
    format!("sr-{}", &hex::encode(hash.finalize())[..24])
}

/// What a retry put back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetryCounts {
    pub failed: u64,
    pub gave_up: u64,
    /// Of those, how many go out under a new job_id.
    pub new_job_ids: u64,
    /// Of those, how many are checked with job_status before anything is sent.
    pub checked_first: u64,
}

impl RetryCounts {
    pub fn total(&self) -> u64 {
        self.failed + self.gave_up
    }

    /// One line for the run's executions and the log.
    pub fn describe(&self) -> String {
        format!(
            "put back {} jobs (failed {}, gave_up {}; {} under a new job_id, {} checked with \
             job_status first)",
            self.total(),
            self.failed,
            self.gave_up,
            self.new_job_ids,
            self.checked_first
        )
    }
}

/// A job about to be put back.
struct Candidate {
    row: i64,
    state: JobState,
    job_id: String,
    first_job_id: Option<String>,
    retries: i64,
    accepted: bool,
    requested: bool,
}

impl Store {
    /// The pid of the run's newest execution that has not ended.
    pub fn open_execution_pid(&self, run_id: i64) -> Result<Option<i64>, StoreError> {
        self.conn
            .query_row(
                "SELECT pid FROM executions WHERE run_id = ?1 AND ended_at IS NULL \
                 ORDER BY id DESC LIMIT 1",
                [run_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// With the lock held no run can be being worked: every run stored `running` is
    /// interrupted (its process died), and executions that never ended are closed. The
    /// number of runs so marked.
    pub fn settle_orphans(&self, _lock: &DbLock) -> Result<usize, StoreError> {
        let now = now_ms();
        self.conn
            .execute(
                "UPDATE executions SET ended_at = ?1, \
                 outcome = 'interrupted: the process ended without recording it' \
                 WHERE ended_at IS NULL",
                [now],
            )
            .map_err(|e| self.err(e))?;
        self.conn
            .execute(
                "UPDATE runs SET status = ?1, updated_at = ?2 WHERE status = ?3",
                params![RunStatus::Interrupted, now, RunStatus::Running],
            )
            .map_err(|e| self.err(e))
    }

    /// Retires a run: kept with its jobs and events, never resumed. Recorded as an
    /// execution of `command`.
    pub fn abandon_run(
        &mut self,
        _lock: &DbLock,
        run_id: i64,
        command: &str,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |e| super::sqlite(&path, e);
        let now = now_ms();
        let tx = self.conn.transaction().map_err(err)?;
        tx.execute(
            "UPDATE runs SET status = ?2, updated_at = ?3 WHERE id = ?1",
            params![run_id, RunStatus::Abandoned, now],
        )
        .map_err(err)?;
        tx.execute(
            "INSERT INTO executions (run_id, pid, command, started_at, ended_at, outcome) \
             VALUES (?1, ?2, ?3, ?4, ?4, 'abandoned')",
            params![run_id, std::process::id(), command, now],
        )
        .map_err(err)?;
        let removed = match &self.minimiser {
            Some(m) if !kept_pii(&tx, run_id).map_err(err)? => {
                forget_run_pii(&tx, m, run_id).map_err(err)?
            }
            _ => 0,
        };
        tx.commit().map_err(err)?;
        // An abandoned run's jobs never need their rows again: their personal data goes
        // now, as a final job's does, unless the run kept it (`--keep-pii`).
        self.minimised += removed;
        self.scrub();
        Ok(())
    }

    /// Puts the run's jobs in `states` (failed and/or gave_up; never invalid ones) back
    /// for a new execution, in one transaction with the execution that records it. A
    /// finished run becomes unfinished again when any job went back.
    pub fn retry_jobs(
        &mut self,
        _lock: &DbLock,
        run: &RunRecord,
        states: &[JobState],
        command: &str,
    ) -> Result<RetryCounts, StoreError> {
        let path = self.path.clone();
        let err = |e| super::sqlite(&path, e);
        let now = now_ms();
        let tx = self.conn.transaction().map_err(err)?;
        let candidates = retry_candidates(&tx, run.id, states).map_err(err)?;
        let mut counts = RetryCounts::default();
        for job in candidates {
            match job.state {
                JobState::GaveUp => counts.gave_up += 1,
                _ => counts.failed += 1,
            }
            let retries = job.retries + 1;
            let plan = RetryPlan::choose(run.mode, job.accepted, job.requested);
            let first = job.first_job_id.unwrap_or_else(|| job.job_id.clone());
            let (state, job_id, first_job_id) = match plan {
                RetryPlan::Resend => (JobState::Queued, job.job_id, None),
                RetryPlan::CheckFirst => {
                    counts.checked_first += 1;
                    (JobState::InFlight, job.job_id, None)
                }
                RetryPlan::NewJobId => {
                    counts.new_job_ids += 1;
                    (JobState::Queued, retry_job_id(&first, retries), Some(first))
                }
            };
            tx.execute(
                RESET_SQL,
                params![job.row, state, job_id, first_job_id, retries, now],
            )
            .map_err(err)?;
        }
        if counts.total() > 0 {
            tx.execute(
                "UPDATE runs SET status = ?2, finished_at = NULL, updated_at = ?3 WHERE id = ?1",
                params![run.id, RunStatus::Interrupted, now],
            )
            .map_err(err)?;
        }
        tx.execute(
            "INSERT INTO executions (run_id, pid, command, started_at, ended_at, outcome) \
             VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
            params![
                run.id,
                std::process::id(),
                command,
                now,
                format!("retry: {}", counts.describe())
            ],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(counts)
    }
}

/// A job put back: its answer forgotten (the events keep every request), its attempts
/// and result time limit counted afresh.
const RESET_SQL: &str = "UPDATE jobs SET state = ?2, job_id = ?3, \
     first_job_id = COALESCE(?4, first_job_id), retries = ?5, attempts = 0, polls = 0, \
     next_attempt_at = 0, last_http_status = NULL, last_code = NULL, last_error = NULL, \
     result_code = NULL, result_text = NULL, job_success = NULL, category = NULL, \
     smile_job_id = NULL, result_source = NULL, result_json = NULL, \
     signature_confirmed = NULL, first_request_at = NULL, completed_at = NULL, \
     callback_claim = NULL, updated_at = ?6 WHERE id = ?1";

impl Store {
    /// How many of the run's jobs in `states` had their personal data removed when they
    /// turned final (a retry cannot send those again).
    pub fn minimised_jobs(&self, run_id: i64, states: &[JobState]) -> Result<u64, StoreError> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT COUNT(*) FROM jobs WHERE run_id = ?1 AND state = ?2 \
                 AND instr(input_json, '\"{}\"') > 0",
                super::pii::REMOVED_MARK
            ))
            .map_err(|e| self.err(e))?;
        let mut total = 0;
        for state in states {
            let n: i64 = stmt
                .query_row(params![run_id, state], |r| r.get(0))
                .map_err(|e| self.err(e))?;
            total += n as u64;
        }
        Ok(total)
    }
}

fn retry_candidates(
    conn: &rusqlite::Connection,
    run_id: i64,
    states: &[JobState],
) -> rusqlite::Result<Vec<Candidate>> {
    let mut stmt = conn.prepare(
        "SELECT id, state, job_id, first_job_id, retries, \
         (smile_job_id IS NOT NULL OR result_code IS NOT NULL OR result_json IS NOT NULL), \
         (first_request_at IS NOT NULL) \
         FROM jobs WHERE run_id = ?1 AND state = ?2 AND staged_invalid = 0 ORDER BY id",
    )?;
    let mut all = Vec::new();
    for state in states.iter().filter(|s| **s != JobState::Invalid) {
        let rows = stmt.query_map(params![run_id, state], |r| {
            Ok(Candidate {
                row: r.get(0)?,
                state: r.get(1)?,
                job_id: r.get(2)?,
                first_job_id: r.get(3)?,
                retries: r.get(4)?,
                accepted: r.get(5)?,
                requested: r.get(6)?,
            })
        })?;
        for row in rows {
            all.push(row?);
        }
    }
    Ok(all)
}

/// Whether the run was made with `--keep-pii` (its stored configuration says so).
fn kept_pii(tx: &rusqlite::Transaction<'_>, run_id: i64) -> rusqlite::Result<bool> {
    let config: String = tx.query_row(
        "SELECT config_json FROM runs WHERE id = ?1",
        [run_id],
        |r| r.get(0),
    )?;
    let config: serde_json::Value = serde_json::from_str(&config).unwrap_or_default();
    Ok(config.get("keep_pii").and_then(serde_json::Value::as_bool) == Some(true))
}

/// Every job of the run without its personal data (rows and answers); how many changed.
fn forget_run_pii(
    tx: &rusqlite::Transaction<'_>,
    m: &super::pii::Minimiser,
    run_id: i64,
) -> rusqlite::Result<u64> {
    let mut changed = Vec::new();
    {
        let mut jobs =
            tx.prepare("SELECT id, input_json, result_json FROM jobs WHERE run_id = ?1")?;
        let mut rows = jobs.query([run_id])?;
        while let Some(row) = rows.next()? {
            let (id, input): (i64, String) = (row.get(0)?, row.get(1)?);
            let input = m.input(&input);
            let result = super::pii::minimised_answer(m, row, 2)?;
            if input.is_some() || result.is_some() {
                changed.push((id, input, result));
            }
        }
    }
    let mut update = tx.prepare(
        "UPDATE jobs SET input_json = COALESCE(?2, input_json), \
         result_json = COALESCE(?3, result_json) WHERE id = ?1",
    )?;
    for (id, input, result) in &changed {
        update.execute(params![id, input, result])?;
    }
    Ok(changed.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Abandoning minimises every answer, including one that does not decode or is not
    /// JSON (a damaged or altered database): it goes whole, and the run can be retired.
    #[test]
    fn abandoned_answers_that_cannot_be_read_go_whole() {
        use crate::store::{Answer, JobState, NewJob};
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("a.db")).unwrap();
        let run = super::super::poll_run_for_tests(&mut store);
        let rows: Vec<NewJob> = (2..6)
            .map(|line| {
                super::super::new_job_for_tests(line, &format!("j{line}"), JobState::Queued)
            })
            .collect();
        store.stage(run, &rows).unwrap();
        let record = Answer(r#"{"result":{"FullName":"Ada Obi","ResultCode":"1012"}}"#.into());
        let cut = r#"{"result":{"FullName":"Ada Obi","DOB":"1990"#;
        let set = |line: i64, value: &dyn rusqlite::ToSql| {
            store
                .conn
                .execute(
                    "UPDATE jobs SET result_json = ?2 WHERE line = ?1",
                    params![line, value],
                )
                .unwrap();
        };
        set(2, &record);
        set(3, &cut);
        set(4, &Answer(cut.into()));
        set(5, &vec![1u8, 0xff, 0xff, 0xff, 0x7f, 0]);
        let m = super::super::pii::Minimiser::with_secret(b"k");
        let tx = store.conn.transaction().unwrap();
        assert_eq!(forget_run_pii(&tx, &m, run).unwrap(), 4);
        tx.commit().unwrap();
        let mut answers = Vec::new();
        store
            .for_each_job(run, |j| {
                answers.push(j.result_json.unwrap());
                Ok(())
            })
            .unwrap();
        assert_eq!(answers.len(), 4);
        for a in &answers {
            assert!(!a.contains("Ada"), "{a}");
        }
        assert!(
            answers[0].contains("1012"),
            "the verdict stays: {}",
            answers[0]
        );
        for a in &answers[1..] {
            assert!(a.contains(super::super::pii::REMOVED_MARK), "{a}");
        }
    }

    #[test]
    fn a_running_run_without_a_live_holder_is_shown_interrupted() {
        use RunStatus::*;
        let free = LockProbe::Free;
        let held = |pid| LockProbe::Held { pid: Some(pid) };
        assert_eq!(shown_status(Running, free, Some(7)), Interrupted);
        assert_eq!(shown_status(Running, held(7), Some(7)), Running);
        assert_eq!(shown_status(Running, held(8), Some(7)), Interrupted);
        // a holder that cannot be named, or a run without an open execution: trust it
        assert_eq!(
            shown_status(Running, LockProbe::Held { pid: None }, Some(7)),
            Running
        );
        assert_eq!(shown_status(Running, held(8), None), Running);
        for other in [Staging, Ready, Interrupted, Finished, Abandoned] {
            assert_eq!(shown_status(other, free, None), other);
        }
    }

    #[test]
    fn only_accepted_submissions_get_a_new_job_id() {
        use RetryPlan::*;
        assert_eq!(RetryPlan::choose(RunMode::Submit, true, true), NewJobId);
        assert_eq!(RetryPlan::choose(RunMode::Submit, false, true), CheckFirst);
        assert_eq!(RetryPlan::choose(RunMode::Submit, false, false), Resend);
        assert_eq!(RetryPlan::choose(RunMode::Poll, true, true), Resend);
    }

    #[test]
    fn retry_job_ids_are_stable_and_distinct() {
        let a = retry_job_id("job-1", 1);
        assert_eq!(a, retry_job_id("job-1", 1));
        assert_eq!(a.len(), 27);
        assert!(a.starts_with("sr-"));
        assert_ne!(a, retry_job_id("job-1", 2));
        assert_ne!(a, retry_job_id("job-2", 1));
        assert_ne!(retry_job_id("job-1", 11), retry_job_id("job-11", 1));
    }

    fn seeded() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("life.db");
        drop(Store::open(&path).unwrap());
        super::super::seed_for_tests(
            &path,
            &[
                (1, 1, "failed", None),
                (1, 2, "gave_up", None),
                (1, 3, "done", None),
            ],
        );
        (dir, path)
    }

    #[test]
    fn a_retry_puts_jobs_back_and_new_ids_are_derived_from_the_first_one() {
        let (_dir, path) = seeded();
        let lock = DbLock::acquire(&path).unwrap();
        let mut store = Store::open(&path).unwrap();
        store
            .conn
            .execute_batch(
                "UPDATE runs SET mode = 'submit', status = 'finished', finished_at = 5;
                 UPDATE jobs SET smile_job_id = 'S1', result_code = '1022', \
                 first_request_at = 1 WHERE id = 1;
                 UPDATE jobs SET first_request_at = 1 WHERE id = 2;",
            )
            .unwrap();
        let run = store.run(1).unwrap().unwrap();
        let counts = store
            .retry_jobs(&lock, &run, &[JobState::Failed, JobState::GaveUp], "retry")
            .unwrap();
        assert_eq!(
            counts,
            RetryCounts {
                failed: 1,
                gave_up: 1,
                new_job_ids: 1,
                checked_first: 1
            }
        );
        let run = store.run(1).unwrap().unwrap();
        assert_eq!(run.status, RunStatus::Interrupted);
        assert_eq!(run.finished_at, None);
        type Job = (String, String, Option<String>, i64, Option<String>);
        let job = |store: &Store, id: i64| -> Job {
            store
                .conn
                .query_row(
                    "SELECT state, job_id, first_job_id, retries, smile_job_id FROM jobs \
                     WHERE id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .unwrap()
        };
        assert_eq!(
            job(&store, 1),
            (
                "queued".into(),
                retry_job_id("j1", 1),
                Some("j1".into()),
                1,
                None
            )
        );
        assert_eq!(
            job(&store, 2),
            ("in_flight".into(), "j2".into(), None, 1, None)
        );
        assert_eq!(job(&store, 3).0, "done");
        // failed again after being accepted under its new id: the next id comes from the
        // first job_id and the count, never from the id in between
        store
            .conn
            .execute(
                "UPDATE jobs SET state = 'failed', smile_job_id = 'S2' WHERE id = 1",
                [],
            )
            .unwrap();
        let counts = store
            .retry_jobs(&lock, &run, &[JobState::Failed], "retry")
            .unwrap();
        assert_eq!(counts.total(), 1);
        assert_eq!(job(&store, 1).1, retry_job_id("j1", 2));
        let outcomes: Vec<Option<String>> = store
            .executions(1)
            .unwrap()
            .into_iter()
            .map(|e| e.outcome)
            .collect();
        assert_eq!(outcomes.len(), 2);
        assert!(
            outcomes[0]
                .as_deref()
                .is_some_and(|o| o.starts_with("retry: put back 2 jobs")),
            "{outcomes:?}"
        );
    }

    #[test]
    fn settling_marks_running_runs_interrupted_and_closes_executions() {
        let (_dir, path) = seeded();
        let lock = DbLock::acquire(&path).unwrap();
        let store = Store::open(&path).unwrap();
        store.set_run_status(1, RunStatus::Running).unwrap();
        store.start_execution(1, "submit").unwrap();
        assert_eq!(store.settle_orphans(&lock).unwrap(), 1);
        assert_eq!(
            store.run(1).unwrap().unwrap().status,
            RunStatus::Interrupted
        );
        assert_eq!(store.run(2).unwrap().unwrap().status, RunStatus::Ready);
        assert_eq!(store.open_execution_pid(1).unwrap(), None);
    }
}
