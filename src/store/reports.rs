//! Read-only queries behind the reports: latency percentiles from the event log, and the
//! pairs of jobs that two runs share (drift).

use rusqlite::params;

use super::{EventKind, Store, StoreError};

/// Request latency over a run's events, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Latency {
    pub requests: u64,
    pub p50_ms: Option<i64>,
    pub p90_ms: Option<i64>,
    pub p99_ms: Option<i64>,
    pub max_ms: Option<i64>,
}

/// One job as two runs saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct DriftPair {
    pub user_id: String,
    pub job_id: String,
    pub line: i64,
    pub previous_job_id: String,
    pub previous_state: String,
    pub previous_code: Option<String>,
    pub previous_text: Option<String>,
    pub state: String,
    pub code: Option<String>,
    pub text: Option<String>,
}

impl Store {
    /// Percentiles by walking the sorted latencies once (nearest rank), without holding
    /// them all in memory.
    pub fn latency(&self, run_id: i64) -> Result<Latency, StoreError> {
        let n: i64 = self
            .conn
            .query_row(
                "SELECT COUNT(*) FROM events WHERE run_id = ?1 AND latency_ms IS NOT NULL",
                [run_id],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        if n == 0 {
            return Ok(Latency::default());
        }
        let rank = |p: f64| ((p * n as f64).ceil() as i64).clamp(1, n);
        let wanted = [rank(0.50), rank(0.90), rank(0.99), n];
        let mut found = [None; 4];
        let mut stmt = self
            .conn
            .prepare(
                "SELECT latency_ms FROM events WHERE run_id = ?1 AND latency_ms IS NOT NULL \
                 ORDER BY latency_ms",
            )
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([run_id]).map_err(|e| self.err(e))?;
        let mut i = 0i64;
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            i += 1;
            let v: i64 = row.get(0).map_err(|e| self.err(e))?;
            for (k, w) in wanted.iter().enumerate() {
                if *w == i {
                    found[k] = Some(v);
                }
            }
        }
        Ok(Latency {
            requests: n as u64,
            p50_ms: found[0],
            p90_ms: found[1],
            p99_ms: found[2],
            max_ms: found[3],
        })
    }

    /// Requests by kind (submit, job_status, callback) in a run's event log.
    pub fn events_by_kind(&self, run_id: i64) -> Result<Vec<(EventKind, u64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT kind, COUNT(*) FROM events WHERE run_id = ?1 GROUP BY kind")
            .map_err(|e| self.err(e))?;
        stmt.query_map([run_id], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(e))
    }

    /// Callbacks recorded for a run's jobs, and of the job_status calls that checked one
    /// (`--callback-confirm job-status`) those that confirmed its ResultCode and those that
    /// answered another (which was recorded instead).
    pub fn callback_checks(&self, run_id: i64) -> Result<(u64, u64, u64), StoreError> {
        self.conn
            .query_row(
                "SELECT \
                   COALESCE(SUM(kind = 'callback'), 0), \
                   COALESCE(SUM(kind = 'job_status' AND outcome = 'confirmed'), 0), \
                   COALESCE(SUM(kind = 'job_status' AND outcome = 'mismatch'), 0) \
                 FROM events WHERE run_id = ?1",
                [run_id],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?.max(0) as u64,
                        r.get::<_, i64>(1)?.max(0) as u64,
                        r.get::<_, i64>(2)?.max(0) as u64,
                    ))
                },
            )
            .map_err(|e| self.err(e))
    }

    /// The job_status calls' own codes over a run's events: the API's error code, 2302 for
    /// a successful answer, or what the transport saw.
    pub fn job_status_codes(&self, run_id: i64) -> Result<Vec<(String, u64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT COALESCE(code, CASE WHEN http_status BETWEEN 200 AND 299 THEN '2302'                  WHEN http_status IS NULL THEN 'no answer'                  ELSE 'HTTP ' || http_status END) AS c, COUNT(*)                  FROM events WHERE run_id = ?1 AND kind = 'job_status' GROUP BY c ORDER BY c",
            )
            .map_err(|e| self.err(e))?;
        stmt.query_map([run_id], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(e))
    }

    /// Every job of `run_id` matched with the same job of `previous`: by job_id, or for
    /// derived job_ids (which differ per run) by user_id and manifest line.
    pub fn drift_pairs(
        &self,
        run_id: i64,
        previous: i64,
        mut f: impl FnMut(DriftPair) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT a.user_id, a.job_id, a.line, b.job_id, b.state, b.result_code, \
                 b.result_text, a.state, a.result_code, a.result_text \
                 FROM jobs a JOIN jobs b ON b.run_id = ?2 AND b.job_id = a.job_id \
                 AND b.user_id = a.user_id AND b.staged_invalid = 0 \
                 WHERE a.run_id = ?1 AND a.job_id_derived = 0 AND a.staged_invalid = 0 \
                 UNION ALL \
                 SELECT a.user_id, a.job_id, a.line, b.job_id, b.state, b.result_code, \
                 b.result_text, a.state, a.result_code, a.result_text \
                 FROM jobs a JOIN jobs b ON b.run_id = ?2 AND b.line = a.line \
                 AND b.user_id = a.user_id \
                 WHERE a.run_id = ?1 AND a.job_id_derived = 1 \
                 ORDER BY 3",
            )
            .map_err(|e| self.err(e))?;
        let mut rows = stmt
            .query(params![run_id, previous])
            .map_err(|e| self.err(e))?;
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let pair = (|| {
                Ok::<_, rusqlite::Error>(DriftPair {
                    user_id: r.get(0)?,
                    job_id: r.get(1)?,
                    line: r.get(2)?,
                    previous_job_id: r.get(3)?,
                    previous_state: r.get(4)?,
                    previous_code: r.get(5)?,
                    previous_text: r.get(6)?,
                    state: r.get(7)?,
                    code: r.get(8)?,
                    text: r.get(9)?,
                })
            })()
            .map_err(|e| self.err(e))?;
            f(pair)?;
        }
        Ok(())
    }
}

/// One entry of a run's audit trail: a request we sent or a callback we took.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct EventRow {
    pub at: i64,
    pub line: i64,
    pub user_id: String,
    pub job_id: String,
    /// submit, job_status or callback.
    pub kind: String,
    pub http_status: Option<i64>,
    pub code: Option<String>,
    pub outcome: String,
    pub error: Option<String>,
    pub latency_ms: Option<i64>,
}

impl Store {
    /// Every event of a run in the order it was recorded, with its job's line, user_id and
    /// job_id, one at a time (a run of any size in flat memory).
    pub fn for_each_event(
        &self,
        run_id: i64,
        mut f: impl FnMut(EventRow) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT e.at, j.line, j.user_id, j.job_id, e.kind, e.http_status, e.code, \
                 e.outcome, e.error, e.latency_ms \
                 FROM events e JOIN jobs j ON j.id = e.job_row \
                 WHERE e.run_id = ?1 ORDER BY e.id",
            )
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([run_id]).map_err(|e| self.err(e))?;
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let event = (|| {
                Ok::<_, rusqlite::Error>(EventRow {
                    at: r.get(0)?,
                    line: r.get(1)?,
                    user_id: r.get(2)?,
                    job_id: r.get(3)?,
                    kind: r.get(4)?,
                    http_status: r.get(5)?,
                    code: r.get(6)?,
                    outcome: r.get(7)?,
                    error: r.get(8)?,
                    latency_ms: r.get(9)?,
                })
            })()
            .map_err(|e| self.err(e))?;
            f(event)?;
        }
        Ok(())
    }
}
