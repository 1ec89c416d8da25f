//! The state changes the engine's writer task commits, in batches (group commit).

use rusqlite::params;

use super::state::ACTIVE_SQL;
use super::{JobState, Store, StoreError};

/// A job's final result as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct ResultFields {
    pub result_code: Option<String>,
    pub result_text: Option<String>,
    pub job_success: Option<bool>,
    pub category: Option<String>,
    pub smile_job_id: Option<String>,
    /// sync | callback | job_status
    pub source: &'static str,
    /// The result object as received (signature fields included).
    pub json: String,
    pub signature_confirmed: bool,
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
    pub at: i64,
}

/// One request and what came of it (the append-only audit trail; never a secret).
#[derive(Clone, Debug, PartialEq)]
pub struct EventRecord {
    pub run_id: i64,
    pub row: i64,
    pub at: i64,
    pub kind: &'static str,
    pub http_status: Option<u16>,
    pub code: Option<String>,
    pub outcome: &'static str,
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
    /// The deadline passed: every job of the run still needing work gives up.
    GiveUpRemaining {
        run_id: i64,
        reason: String,
        at: i64,
    },
}

impl Store {
    /// Applies a batch in one transaction. A final job is never changed again: an update
    /// for it (a poll answer racing a callback, say) is dropped. Returns, for each op,
    /// whether it changed a job (events: always true).
    pub fn apply(&mut self, batch: &[WriteOp]) -> Result<Vec<bool>, StoreError> {
        let path = self.path.clone();
        let err = |e| super::sqlite(&path, e);
        let tx = self.conn.transaction().map_err(err)?;
        let mut applied = Vec::with_capacity(batch.len());
        {
            let mut intent = tx
                .prepare_cached(
                    "UPDATE jobs SET state = 'in_flight', updated_at = ?2, \
                     first_request_at = COALESCE(first_request_at, ?2) \
                     WHERE id = ?1 AND state = 'queued'",
                )
                .map_err(err)?;
            let mut update = tx
                .prepare_cached(&format!(
                    "UPDATE jobs SET state = ?2, attempts = COALESCE(?3, attempts), polls = COALESCE(?4, polls), next_attempt_at = ?5, \
                     last_http_status = ?6, last_code = ?7, last_error = ?8, updated_at = ?9, \
                     first_request_at = COALESCE(first_request_at, ?9) \
                     WHERE id = ?1 AND {ACTIVE_SQL}"
                ))
                .map_err(err)?;
            // The same update with the result, in one statement: the row (result JSON
            // included) is rewritten once, not twice.
            let mut update_with_result = tx
                .prepare_cached(&format!(
                    "UPDATE jobs SET state = ?2, attempts = COALESCE(?3, attempts), polls = COALESCE(?4, polls), next_attempt_at = ?5, \
                     last_http_status = ?6, last_code = ?7, last_error = ?8, updated_at = ?9, \
                     first_request_at = COALESCE(first_request_at, ?9), \
                     result_code = ?10, result_text = ?11, job_success = ?12, category = ?13, \
                     smile_job_id = ?14, result_source = ?15, result_json = ?16, \
                     signature_confirmed = ?17, completed_at = ?9 \
                     WHERE id = ?1 AND {ACTIVE_SQL}"
                ))
                .map_err(err)?;
            let mut event = tx
                .prepare_cached(
                    "INSERT INTO events (run_id, job_row, at, kind, http_status, code, outcome, \
                     error, latency_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .map_err(err)?;
            for op in batch {
                match op {
                    WriteOp::Intent { row, at } => {
                        let changed = intent.execute(params![row, at]).map_err(err)?;
                        applied.push(changed > 0);
                    }
                    WriteOp::Update(u) => {
                        let changed = match &u.result {
                            None => update.execute(params![
                                u.row,
                                u.state.as_str(),
                                u.attempts,
                                u.polls,
                                u.next_attempt_at,
                                u.last_http_status,
                                u.last_code,
                                u.last_error,
                                u.at
                            ]),
                            Some(r) => update_with_result.execute(params![
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
                                r.json,
                                r.signature_confirmed
                            ]),
                        }
                        .map_err(err)?;
                        applied.push(changed > 0);
                    }
                    WriteOp::GiveUpRemaining { run_id, reason, at } => {
                        let changed = tx
                            .execute(
                                &format!(
                                    "UPDATE jobs SET state = 'gave_up', last_error = ?2, \
                                     updated_at = ?3 WHERE run_id = ?1 AND {ACTIVE_SQL}"
                                ),
                                params![run_id, reason, at],
                            )
                            .map_err(err)?;
                        applied.push(changed > 0);
                    }
                    WriteOp::Event(e) => {
                        event
                            .execute(params![
                                e.run_id,
                                e.row,
                                e.at,
                                e.kind,
                                e.http_status,
                                e.code,
                                e.outcome,
                                e.error,
                                e.latency_ms
                            ])
                            .map_err(err)?;
                        applied.push(true);
                    }
                }
            }
        }
        tx.commit().map_err(err)?;
        Ok(applied)
    }
}
