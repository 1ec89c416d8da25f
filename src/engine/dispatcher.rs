//! The dispatcher owns the run's progress: it pages through the jobs that are due, hands
//! each to a worker task, and knows which jobs are being worked so none is picked twice.
//! It stops when no job needs work, at the deadline, on a signal, or when the breaker
//! trips.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::store::{Store, StoreError, now_ms};

use super::worker::{self, Ctx};
use super::writer::WriteError;

/// Why dispatching stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    /// No job needs work any more.
    Drained,
    /// Ctrl-C / SIGTERM.
    Interrupted,
    /// The circuit breaker tripped, with its reason.
    Tripped(String),
    /// The deadline passed with jobs still pending.
    Deadline,
}

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// How long to wait, at most, before looking at the store again when nothing is due.
const IDLE_POLL: Duration = Duration::from_millis(250);

pub struct Dispatcher {
    ctx: Arc<Ctx>,
    reader: Store,
    tasks: JoinSet<Result<(), WriteError>>,
    /// The jobs being worked, by row, and which task works each.
    working: HashSet<i64>,
    task_rows: HashMap<tokio::task::Id, i64>,
    cursor: i64,
    /// Jobs handed out at once at most: four times the request concurrency, so that a job's
    /// commit overlaps the next job's request.
    capacity: usize,
    /// Refill only once this many places are free: one query per batch of finished jobs,
    /// not one per job (the rest of the capacity keeps every request slot busy meanwhile).
    refill_at: usize,
    page: usize,
}

impl Dispatcher {
    pub fn new(ctx: Arc<Ctx>, reader: Store) -> Self {
        let capacity = ctx.config.concurrency.max(1) * 4;
        Self {
            ctx,
            reader,
            tasks: JoinSet::new(),
            working: HashSet::new(),
            task_rows: HashMap::new(),
            cursor: 0,
            capacity,
            refill_at: (capacity / 8).max(1),
            page: capacity.clamp(64, 1024),
        }
    }

    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<Stop, DispatchError> {
        let stop = self.dispatch(&mut shutdown).await;
        // Let the work in hand finish (bounded on a signal), then abandon the rest: its
        // jobs keep their committed state (in_flight ones are checked on resume).
        let grace = match &stop {
            Ok(Stop::Interrupted) | Err(_) => self.ctx.config.shutdown_grace,
            _ => Duration::from_secs(3600),
        };
        let drained = tokio::time::timeout(grace, async {
            while let Some(done) = self.tasks.join_next().await {
                if let Ok(Err(e)) = done {
                    return Err(e);
                }
            }
            Ok(())
        })
        .await;
        self.tasks.abort_all();
        match (stop, drained) {
            (Err(e), _) => Err(e),
            (Ok(_), Ok(Err(e))) => Err(e.into()),
            (Ok(stop), _) => Ok(stop),
        }
    }

    async fn dispatch(
        &mut self,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Stop, DispatchError> {
        let run_id = self.ctx.config.run_id;
        let mut handed_out_this_pass = false;
        loop {
            if *shutdown.borrow() {
                return Ok(Stop::Interrupted);
            }
            if let Some(reason) = self.ctx.breaker.tripped() {
                return Ok(Stop::Tripped(reason));
            }
            let now = now_ms();
            if self.ctx.deadline_at.is_some_and(|d| now >= d) {
                return Ok(Stop::Deadline);
            }
            while let Some(done) = self.tasks.try_join_next_with_id() {
                self.finish(done)?;
            }
            let room = self.capacity.saturating_sub(self.working.len());
            if room >= self.refill_at || (room > 0 && self.working.is_empty()) {
                let page = tokio::task::block_in_place(|| {
                    self.reader
                        .due_jobs(run_id, now, self.cursor, room.min(self.page))
                })?;
                if let Some(last) = page.last() {
                    self.cursor = last.row;
                    for job in page {
                        if self.working.insert(job.row) {
                            handed_out_this_pass = true;
                            let ctx = self.ctx.clone();
                            let row = job.row;
                            let handle = self.tasks.spawn(worker::work(ctx, job));
                            self.task_rows.insert(handle.id(), row);
                        }
                    }
                    continue;
                }
                // The end of the run: start the next pass from the top.
                let wrapped = self.cursor != 0;
                self.cursor = 0;
                if wrapped && handed_out_this_pass {
                    handed_out_this_pass = false;
                    continue;
                }
                handed_out_this_pass = false;
                if self.working.is_empty() {
                    let next = tokio::task::block_in_place(|| self.reader.next_due_at(run_id))?;
                    match next {
                        None => return Ok(Stop::Drained),
                        Some(at) => {
                            let wait = Duration::from_millis(at.saturating_sub(now).max(0) as u64);
                            self.idle(shutdown, wait.min(IDLE_POLL * 4)).await?;
                            continue;
                        }
                    }
                }
            }
            // Full, or everything due is already being worked: wait for a worker.
            self.idle(shutdown, IDLE_POLL).await?;
        }
    }

    /// Waits for a worker to finish, a signal, or `wait`, whichever comes first.
    async fn idle(
        &mut self,
        shutdown: &mut watch::Receiver<bool>,
        wait: Duration,
    ) -> Result<(), DispatchError> {
        tokio::select! {
            done = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                if let Some(done) = done {
                    self.finish(done)?;
                }
            }
            _ = shutdown.changed() => {}
            _ = tokio::time::sleep(wait) => {}
        }
        Ok(())
    }

    fn finish(
        &mut self,
        done: Result<(tokio::task::Id, Result<(), WriteError>), tokio::task::JoinError>,
    ) -> Result<(), DispatchError> {
        let (id, result) = match done {
            Ok((id, result)) => (id, Some(result)),
            // A worker panicked: its job keeps its committed state and is picked up again
            // on a later pass (or on resume).
            Err(e) => {
                tracing::error!("a worker stopped unexpectedly: {e}");
                (e.id(), None)
            }
        };
        if let Some(row) = self.task_rows.remove(&id) {
            self.working.remove(&row);
        }
        if let Some(result) = result {
            result?;
        }
        Ok(())
    }
}
