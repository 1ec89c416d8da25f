//! The state changes the engine's writer task commits, in batches (group commit).

use rusqlite::params;

use super::answer;
use super::pii::Minimiser;
use super::state::ACTIVE_SQL;
use super::{EventKind, EventOutcome, JobState, ResultSource, Store, StoreError};
use crate::api::Category;

/// A job's final result as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct ResultFields {
    pub result_code: Option<String>,
    pub result_text: Option<String>,
    pub job_success: Option<bool>,
    pub category: Option<Category>,
    pub smile_job_id: Option<String>,
    pub source: ResultSource,
    /// The result object as received (signature fields included).
    pub json: String,
    pub signature_confirmed: bool,
    /// Whether `json` may hold personal data (see [`super::pii::result_holds_personal`]):
    /// only such an answer is parsed again to minimise it. True when not known.
    pub personal: bool,
}

/// A job's new state after one turn of work. Counts are absolute (the worker read them
/// with the job), so applying an update twice changes nothing.
#[derive(Clone, Debug, PartialEq)]
pub struct JobUpdate {
    pub row: i64,
    pub state: JobState,
    /// `None` keeps the stored count (a callback does not know it).
    pub attempts: Option<i64>,
    pub polls: Option<i64>,
    pub next_attempt_at: i64,
    pub last_http_status: Option<u16>,
    pub last_code: Option<String>,
    pub last_error: Option<String>,
    pub result: Option<ResultFields>,
    /// The job's staged row as the worker read it (while the job was not final, so it is
    /// the stored one): a job turning final is minimised from it without reading the row
    /// back. `None`: the writer reads it.
    pub staged_input: Option<String>,
    pub at: i64,
}

/// One request and what came of it (the append-only audit trail; never a secret).
#[derive(Clone, Debug, PartialEq)]
pub struct EventRecord {
    pub run_id: i64,
    pub row: i64,
    pub at: i64,
    pub kind: EventKind,
    pub http_status: Option<u16>,
    pub code: Option<String>,
    pub outcome: EventOutcome,
    pub error: Option<String>,
    pub latency_ms: Option<i64>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum WriteOp {
    /// About to send a submission: queued -> in_flight, committed before the request leaves.
    Intent {
        row: i64,
        at: i64,
    },
    Update(JobUpdate),
    Event(EventRecord),
    /// A callback was accepted with this (timestamp, signature) pair: it is refused from
    /// now on. Applied: false when the pair was already stored.
    CallbackPair {
        run_id: i64,
        row: i64,
        timestamp: String,
        signature: String,
        at: i64,
    },
    /// A callback claims `code` for a job that was sent and is not final: the job is
    /// due for one job_status call now, which confirms or overrules the claim.
    Claim {
        row: i64,
        code: String,
        at: i64,
    },
    /// The deadline passed: every job of the run still needing work gives up.
    GiveUpRemaining {
        run_id: i64,
        reason: String,
        at: i64,
    },
}

/// Event rows per INSERT statement, at most (9 parameters each).
const EVENTS_PER_INSERT: usize = 32;

/// `INSERT INTO events ... VALUES (...), (...)` for `rows` rows.
fn insert_events_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO events (run_id, job_row, at, kind, http_status, code, outcome, error, \
         latency_ms) VALUES ",
    );
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str("(?,?,?,?,?,?,?,?,?)");
    }
    sql
}

/// The SQL of an update without a result.
fn update_sql() -> String {
    format!(
        "UPDATE jobs SET state = ?2, attempts = COALESCE(?3, attempts), polls = COALESCE(?4, polls), next_attempt_at = ?5, \
         last_http_status = ?6, last_code = ?7, last_error = ?8, updated_at = ?9, \
         first_request_at = COALESCE(first_request_at, ?9), \
         input_json = COALESCE(?10, input_json) \
         WHERE id = ?1 AND {ACTIVE_SQL}"
    )
}

/// The same update with the result, in one statement: the row (result JSON included) is
/// rewritten once, not twice.
fn update_with_result_sql() -> String {
    format!(
        "UPDATE jobs SET state = ?2, attempts = COALESCE(?3, attempts), polls = COALESCE(?4, polls), next_attempt_at = ?5, \
         last_http_status = ?6, last_code = ?7, last_error = ?8, updated_at = ?9, \
         first_request_at = COALESCE(first_request_at, ?9), \
         result_code = ?10, result_text = ?11, job_success = ?12, category = ?13, \
         smile_job_id = ?14, result_source = ?15, result_json = ?16, \
         signature_confirmed = ?17, completed_at = ?9, \
         input_json = COALESCE(?18, input_json) \
         WHERE id = ?1 AND {ACTIVE_SQL}"
    )
}

/// The submission about to leave is counted with its intent: a job killed before its turn
/// was recorded still shows it was sent.
const INTENT_SQL: &str = "UPDATE jobs SET state = 'in_flight', updated_at = ?2, \
     attempts = attempts + 1, \
     first_request_at = COALESCE(first_request_at, ?2) \
     WHERE id = ?1 AND state = 'queued'";

/// One batch's transaction with the statements most ops use, prepared once per batch.
struct Batch<'t> {
    tx: &'t rusqlite::Transaction<'t>,
    intent: rusqlite::CachedStatement<'t>,
    update: rusqlite::CachedStatement<'t>,
    update_with_result: rusqlite::CachedStatement<'t>,
    minimiser: Option<&'t Minimiser>,
    /// Jobs whose personal data this batch removed.
    minimised: u64,
}

impl<'t> Batch<'t> {
    fn new(
        tx: &'t rusqlite::Transaction<'t>,
        minimiser: Option<&'t Minimiser>,
    ) -> rusqlite::Result<Self> {
        Ok(Batch {
            tx,
            intent: tx.prepare_cached(INTENT_SQL)?,
            update: tx.prepare_cached(&update_sql())?,
            update_with_result: tx.prepare_cached(&update_with_result_sql())?,
            minimiser,
            minimised: 0,
        })
    }

    /// One op other than an event; whether it changed a job.
    fn apply(&mut self, op: &WriteOp) -> rusqlite::Result<bool> {
        let changed = match op {
            WriteOp::Intent { row, at } => self.intent.execute(params![row, at])?,
            WriteOp::Update(u) => self.update(u)?,
            WriteOp::CallbackPair {
                run_id,
                row,
                timestamp,
                signature,
                at,
            } => self
                .tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO callback_replays \
                     (timestamp, signature, run_id, job_row, at) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![timestamp, signature, run_id, row, at])?,
            WriteOp::Claim { row, code, at } => self
                .tx
                .prepare_cached(
                    "UPDATE jobs SET state = 'awaiting', callback_claim = ?2, \
                     next_attempt_at = CASE WHEN callback_claim IS NULL THEN ?3 \
                     ELSE next_attempt_at END, updated_at = ?3 \
                     WHERE id = ?1 AND (state = 'in_flight' OR state = 'awaiting')",
                )?
                .execute(params![row, code, at])?,
            WriteOp::GiveUpRemaining { run_id, reason, at } => {
                self.give_up_remaining(*run_id, reason, *at)?
            }
            // Events are inserted by the batch, in chunks.
            WriteOp::Event(_) => 1,
        };
        Ok(changed > 0)
    }

    fn update(&mut self, u: &JobUpdate) -> rusqlite::Result<usize> {
        let turns_final = u.state.is_final();
        // A job turning final keeps only what reports need: its staged row and its answer
        // are minimised in the same statement, from what the update carries.
        let minimiser = self.minimiser.filter(|_| turns_final);
        let input = minimiser
            .zip(u.staged_input.as_deref())
            .and_then(|(m, s)| m.input(s));
        let result = minimiser
            .zip(u.result.as_ref().filter(|r| r.personal))
            .and_then(|(m, r)| m.result(&r.json));
        let changed = match &u.result {
            None => self.update.execute(params![
                u.row,
                u.state.as_str(),
                u.attempts,
                u.polls,
                u.next_attempt_at,
                u.last_http_status,
                u.last_code,
                u.last_error,
                u.at,
                input,
            ])?,
            Some(r) => self.update_with_result.execute(params![
                u.row,
                u.state.as_str(),
                u.attempts,
                u.polls,
                u.next_attempt_at,
                u.last_http_status,
                u.last_code,
                u.last_error,
                u.at,
                r.result_code,
                r.result_text,
                r.job_success,
                r.category,
                r.smile_job_id,
                r.source,
                answer::encode(result.as_deref().unwrap_or(&r.json)),
                r.signature_confirmed,
                input,
            ])?,
        };
        if changed > 0 && minimiser.is_some() {
            if u.staged_input.is_none() {
                // Not carried (a callback's update): read back and minimised.
                self.minimise(u.row)?;
            } else if input.is_some() || result.is_some() {
                self.minimised += 1;
            }
        }
        Ok(changed)
    }

    /// Every job of the run still needing work gives up, each minimised.
    fn give_up_remaining(&mut self, run_id: i64, reason: &str, at: i64) -> rusqlite::Result<usize> {
        let rows: Vec<i64> = self
            .tx
            .prepare(&format!(
                "UPDATE jobs SET state = 'gave_up', last_error = ?2, \
                 updated_at = ?3 WHERE run_id = ?1 AND {ACTIVE_SQL} RETURNING id"
            ))?
            .query_map(params![run_id, reason, at], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for row in &rows {
            self.minimise(*row)?;
        }
        Ok(rows.len())
    }

    /// A job that just turned final keeps only what reports need of its staged row and of
    /// its answer (nothing, when the run keeps personal data).
    fn minimise(&mut self, row: i64) -> rusqlite::Result<()> {
        let Some(m) = self.minimiser else {
            return Ok(());
        };
        let (input, result) = self
            .tx
            .prepare_cached("SELECT input_json, result_json FROM jobs WHERE id = ?1")?
            .query_row([row], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    super::pii::minimised_answer(m, r, 1)?,
                ))
            })?;
        let input = m.input(&input);
        if input.is_some() || result.is_some() {
            self.tx
                .prepare_cached(
                    "UPDATE jobs SET input_json = COALESCE(?2, input_json), \
                     result_json = COALESCE(?3, result_json) WHERE id = ?1",
                )?
                .execute(params![row, input, result])?;
            self.minimised += 1;
        }
        Ok(())
    }
}

/// Inserts `events` in [`EVENTS_PER_INSERT`] rows per statement (one step, one bind
/// pass: a statement per event was 29% of the writer's instructions), then the rest by
/// eights and ones: three statements in the cache, not one per remainder size.
fn insert_events(
    tx: &rusqlite::Transaction<'_>,
    events: &mut Vec<&EventRecord>,
) -> rusqlite::Result<()> {
    let mut rest = &events[..];
    while !rest.is_empty() {
        let n = [EVENTS_PER_INSERT, 8, 1]
            .into_iter()
            .find(|n| *n <= rest.len())
            .unwrap_or(1);
        let (these, more) = rest.split_at(n);
        let mut stmt = tx.prepare_cached(&insert_events_sql(n))?;
        let values = these.iter().flat_map(|e| {
            [
                &e.run_id as &dyn rusqlite::ToSql,
                &e.row,
                &e.at,
                &e.kind,
                &e.http_status,
                &e.code,
                &e.outcome,
                &e.error,
                &e.latency_ms,
            ]
        });
        stmt.execute(rusqlite::params_from_iter(values))?;
        rest = more;
    }
    events.clear();
    Ok(())
}

impl Store {
    /// Applies a batch in one transaction. A final job is never changed again: an update
    /// for it (a poll answer racing a callback, say) is dropped. A job turning final loses
    /// its personal data here unless the run keeps it (see [`super::pii`]). Returns, for
    /// each op, whether it changed a job (events: always true).
    pub fn apply(&mut self, batch: &[WriteOp]) -> Result<Vec<bool>, StoreError> {
        let path = self.path.clone();
        let err = |e| super::sqlite(&path, e);
        let tx = self.conn.transaction().map_err(err)?;
        let (applied, minimised) = apply_in(&tx, self.minimiser.as_ref(), batch).map_err(err)?;
        tx.commit().map_err(err)?;
        self.minimised += minimised;
        Ok(applied)
    }
}

fn apply_in(
    tx: &rusqlite::Transaction<'_>,
    minimiser: Option<&Minimiser>,
    batch: &[WriteOp],
) -> rusqlite::Result<(Vec<bool>, u64)> {
    let mut applied = Vec::with_capacity(batch.len());
    let mut ops = Batch::new(tx, minimiser)?;
    let mut events = Vec::with_capacity(EVENTS_PER_INSERT);
    for op in batch {
        if let WriteOp::Event(e) = op {
            events.push(e);
            if events.len() == EVENTS_PER_INSERT {
                insert_events(tx, &mut events)?;
            }
        }
        applied.push(ops.apply(op)?);
    }
    insert_events(tx, &mut events)?;
    Ok((applied, ops.minimised))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store with run 1 and jobs on rows 1 (queued) and 2 (done).
    fn store(dir: &tempfile::TempDir) -> Store {
        let path = dir.path().join("w.db");
        let store = Store::open(&path).unwrap();
        super::super::seed_for_tests(&path, &[(1, 1, "queued", None), (1, 2, "done", None)]);
        store
    }

    fn event(i: i64) -> WriteOp {
        WriteOp::Event(EventRecord {
            run_id: 1,
            row: 1 + i % 2,
            at: i,
            kind: if i % 3 == 0 {
                EventKind::Submit
            } else {
                EventKind::JobStatus
            },
            http_status: (i % 5 != 0).then_some(200),
            code: (i % 7 == 0).then(|| format!("22{i:02}")),
            outcome: EventOutcome::Retry,
            error: (i % 4 == 0).then(|| format!("error {i}")),
            latency_ms: Some(i * 10),
        })
    }

    fn update(row: i64) -> WriteOp {
        WriteOp::Update(JobUpdate {
            row,
            state: JobState::Awaiting,
            attempts: Some(1),
            polls: None,
            next_attempt_at: 9,
            last_http_status: None,
            last_code: None,
            last_error: None,
            result: None,
            staged_input: None,
            at: 9,
        })
    }

    #[test]
    fn every_event_of_a_batch_is_stored_in_order_whatever_the_chunking() {
        // 32 + 8 + 1 x 5 rows, with updates between them.
        let dir = tempfile::tempdir().unwrap();
        let mut store = store(&dir);
        let mut batch: Vec<WriteOp> = (0..45).map(event).collect();
        batch.insert(10, update(1));
        batch.insert(40, update(2));
        let applied = store.apply(&batch).unwrap();
        let mut expected = vec![true; 47];
        expected[40] = false; // row 2 is final: never changed again
        assert_eq!(applied, expected);
        let stored: Vec<WriteOp> = store
            .conn
            .prepare(
                "SELECT run_id, job_row, at, kind, http_status, code, outcome, error, latency_ms \
                 FROM events ORDER BY id",
            )
            .unwrap()
            .query_map([], |r| {
                Ok(WriteOp::Event(EventRecord {
                    run_id: r.get(0)?,
                    row: r.get(1)?,
                    at: r.get(2)?,
                    kind: r.get(3)?,
                    http_status: r.get(4)?,
                    code: r.get(5)?,
                    outcome: r.get(6)?,
                    error: r.get(7)?,
                    latency_ms: r.get(8)?,
                }))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let sent: Vec<WriteOp> = (0..45).map(event).collect();
        assert_eq!(stored, sent);
        let state: String = store
            .conn
            .query_row("SELECT state FROM jobs WHERE id = 1", [], |r| r.get(0))
            .unwrap();
        assert_eq!(state, "awaiting");
    }

    #[test]
    fn the_statement_for_n_events_has_n_rows_of_nine_parameters() {
        let sql = insert_events_sql(3);
        assert_eq!(sql.matches("(?,?,?,?,?,?,?,?,?)").count(), 3);
        assert!(sql.ends_with("(?,?,?,?,?,?,?,?,?)"));
    }
}
