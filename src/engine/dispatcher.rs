//! The dispatcher owns the run's progress: it pages through the jobs that are due, queues
//! them for the workers, and knows which jobs are being worked so none is picked twice. A
//! job is being worked from the moment it is queued until the writer reports its turn
//! committed (or a worker hands it back unworked). The dispatcher counts committed turns
//! in the tally. It stops when no job needs work, at the deadline, on a signal, or when
//! the breaker trips.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::store::{DueJob, Store, StoreError, now_ms};

use super::worker::{self, Ctx};
use super::writer::{Committed, Turns, WriteError};

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

/// Jobs handed out at once, per request slot: with a rate limit, and without. A job is
/// handed out from the moment it is queued until its turn is committed, which is up to the
/// writer's linger plus a commit after its answer, so without a rate limit a short queue
/// leaves workers idle while their finished jobs wait for the commit. With a rate limit
/// the limiter sets the pace, and a short queue keeps each job's state fresh when it is
/// worked (a callback may finish a job that waits in the queue).
const QUEUE_DEPTH: (usize, usize) = (4, 16);

pub struct Dispatcher {
    ctx: Arc<Ctx>,
    reader: Store,
    shutdown: watch::Receiver<bool>,
    /// Jobs for the workers; bounded by `capacity`, which `working` never exceeds.
    queue: async_channel::Sender<DueJob>,
    queue_out: async_channel::Receiver<DueJob>,
    workers: JoinSet<Result<(), WriteError>>,
    /// The writer's reports of committed turns.
    turns: Turns,
    /// Jobs the workers hand back unworked.
    unworked: mpsc::UnboundedReceiver<i64>,
    hand_back: mpsc::UnboundedSender<i64>,
    /// The jobs being worked, by row.
    working: HashSet<i64>,
    /// Jobs whose last turn failed and that wait for their retry (shown as "waiting").
    retrying: HashSet<i64>,
    cursor: i64,
    /// Whether a pass over the run can find anything new (see [`Rescan`]).
    rescan: Rescan,
    /// Jobs handed out at once at most (see [`QUEUE_DEPTH`]).
    capacity: usize,
    /// Refill only once this many places are free: one query per batch of finished jobs,
    /// not one per job (the rest of the capacity keeps every request slot busy meanwhile).
    refill_at: usize,
    page: usize,
}

impl Dispatcher {
    /// Starts `--concurrency` workers (the limit on requests in flight).
    pub fn new(
        ctx: Arc<Ctx>,
        reader: Store,
        turns: Turns,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let concurrency = ctx.config.concurrency.max(1);
        let depth = if ctx.config.rate.is_some() {
            QUEUE_DEPTH.0
        } else {
            QUEUE_DEPTH.1
        };
        let capacity = concurrency * depth;
        let (queue, queue_out) = async_channel::bounded(capacity);
        let (hand_back, unworked) = mpsc::unbounded_channel();
        let mut dispatcher = Self {
            ctx,
            reader,
            shutdown,
            queue,
            queue_out,
            workers: JoinSet::new(),
            turns,
            unworked,
            hand_back,
            working: HashSet::new(),
            retrying: HashSet::new(),
            cursor: 0,
            rescan: Rescan::default(),
            capacity,
            refill_at: (capacity / 8).max(1),
            page: capacity.clamp(64, 1024),
        };
        for _ in 0..concurrency {
            dispatcher.spawn_worker();
        }
        dispatcher
    }

    fn spawn_worker(&mut self) {
        self.workers.spawn(worker::serve(
            self.ctx.clone(),
            self.queue_out.clone(),
            self.hand_back.clone(),
        ));
    }

    pub async fn run(mut self) -> Result<Stop, DispatchError> {
        let stop = self.dispatch().await;
        // Jobs still queued are handed back unworked, except when the run drained (then
        // none are). Let the work in hand finish and its turns land (bounded on a signal),
        // then abandon the rest: its jobs keep their committed state (in_flight ones are
        // checked on resume).
        if !matches!(stop, Ok(Stop::Drained)) {
            self.ctx.stopping.store(true, Ordering::Relaxed);
        }
        self.queue.close();
        let grace = match &stop {
            Ok(Stop::Interrupted) | Err(_) => self.ctx.config.shutdown_grace,
            _ => Duration::from_secs(3600),
        };
        let settled = tokio::time::timeout(grace, async {
            while !(self.working.is_empty() && self.workers.is_empty()) {
                self.wait(None).await?;
            }
            Ok::<(), DispatchError>(())
        })
        .await;
        self.workers.abort_all();
        match (stop, settled) {
            (Err(e), _) => Err(e),
            (Ok(_), Ok(Err(e))) => Err(e),
            (Ok(stop), _) => Ok(stop),
        }
    }

    async fn dispatch(&mut self) -> Result<Stop, DispatchError> {
        let run_id = self.ctx.config.run_id;
        let mut handed_out_this_pass = false;
        loop {
            if *self.shutdown.borrow() {
                return Ok(Stop::Interrupted);
            }
            if let Some(reason) = self.ctx.breaker.tripped() {
                return Ok(Stop::Tripped(reason));
            }
            let now = now_ms();
            if self.ctx.deadline_at.is_some_and(|d| now >= d) {
                return Ok(Stop::Deadline);
            }
            self.collect()?;
            let room = self.capacity.saturating_sub(self.working.len());
            let refill = room >= self.refill_at && self.rescan.allows(now);
            if refill || (room > 0 && self.working.is_empty()) {
                let (reader, working) = (&self.reader, &self.working);
                let page = tokio::task::block_in_place(|| {
                    // Jobs being worked are passed over without being read.
                    reader.due_page(run_id, now, self.cursor, room.min(self.page), |row| {
                        working.contains(&row)
                    })
                })?;
                if let Some(last) = page.last {
                    self.cursor = last;
                    for job in page.jobs {
                        if self.working.insert(job.row) {
                            handed_out_this_pass = true;
                            if self.retrying.remove(&job.row) {
                                self.ctx.tally.waiting.store(
                                    self.retrying.len() as u64,
                                    std::sync::atomic::Ordering::Relaxed,
                                );
                            }
                            let row = job.row;
                            // Never waits: everything queued is in `working`, which is
                            // at most the queue's bound.
                            if self.queue.send(job).await.is_err() {
                                self.working.remove(&row);
                            }
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
                self.rescan.found_nothing(now);
                if self.working.is_empty() {
                    let next = tokio::task::block_in_place(|| self.reader.next_due_at(run_id))?;
                    match next {
                        None => return Ok(Stop::Drained),
                        Some(at) => {
                            let wait = Duration::from_millis(at.saturating_sub(now).max(0) as u64);
                            self.wait(Some(wait.min(IDLE_POLL * 4))).await?;
                            continue;
                        }
                    }
                }
            }
            // Full, or everything due is already being worked: wait for a commit.
            self.wait(Some(IDLE_POLL)).await?;
        }
    }

    /// Takes in what has happened without waiting.
    fn collect(&mut self) -> Result<(), DispatchError> {
        while let Ok(committed) = self.turns.try_recv() {
            self.committed(committed)?;
        }
        while let Ok(row) = self.unworked.try_recv() {
            self.handed_back(row);
        }
        while let Some(ended) = self.workers.try_join_next() {
            self.worker_ended(ended)?;
        }
        Ok(())
    }

    /// Waits for a commit, a job handed back, a worker's end or a signal; with `wait`, at
    /// most that long.
    async fn wait(&mut self, wait: Option<Duration>) -> Result<(), DispatchError> {
        tokio::select! {
            Some(committed) = self.turns.recv() => self.committed(committed)?,
            Some(row) = self.unworked.recv() => self.handed_back(row),
            Some(ended) = self.workers.join_next(), if !self.workers.is_empty() => {
                self.worker_ended(ended)?;
            }
            _ = self.shutdown.changed(), if wait.is_some() => {}
            _ = tokio::time::sleep(wait.unwrap_or_default()), if wait.is_some() => {}
            // Nothing left to wait for: the writer is gone and so are the workers.
            else => return Err(WriteError::Stopped.into()),
        }
        Ok(())
    }

    /// A commit landed: its jobs are free again, and their transitions count.
    fn committed(&mut self, committed: Committed) -> Result<(), DispatchError> {
        let turns = committed.map_err(WriteError::Commit)?;
        let tally = &self.ctx.tally;
        for (turn, changed) in turns {
            self.working.remove(&turn.row);
            if !turn.to.is_final() {
                self.rescan.may_be_due();
            }
            if turn.retry && changed {
                self.retrying.insert(turn.row);
            }
            if changed {
                tally.transition(turn.from, turn.to);
                if let (true, Some(c)) = (turn.to.is_final(), turn.category) {
                    tally.categorise(c);
                }
            }
        }
        tally.waiting.store(
            self.retrying.len() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        Ok(())
    }

    /// A worker gave a job back unworked: it is due again at once.
    fn handed_back(&mut self, row: i64) {
        self.working.remove(&row);
        self.rescan.may_be_due();
    }

    fn worker_ended(
        &mut self,
        ended: Result<Result<(), WriteError>, tokio::task::JoinError>,
    ) -> Result<(), DispatchError> {
        match ended {
            // The queue closed.
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.into()),
            // A worker panicked: its job was handed back and keeps its committed state
            // (it is picked up again on a later pass, or on resume). Keep the concurrency.
            Err(e) if e.is_panic() => {
                tracing::error!("a worker stopped unexpectedly: {e}");
                self.spawn_worker();
                Ok(())
            }
            Err(_) => Ok(()),
        }
    }
}

/// Whether a pass over the run's due jobs can find one that is not being worked. After a
/// pass that found nothing new, every due job is being worked; a job becomes due again
/// only when its turn commits with the job still unfinished, when a worker hands it back,
/// or when time passes (a retry's or a poll's next attempt, a callback's claim made due
/// by the receiver). Until one of those, a pass would only read the jobs being worked
/// again, once per commit: so the dispatcher skips it, for [`IDLE_POLL`] at most, which
/// bounds how late a job made due by time or by the receiver is seen. A run's first pass,
/// and a pass when nothing is being worked, are never skipped.
#[derive(Debug, Default)]
struct Rescan {
    /// When a pass last found nothing new, if nothing may have become due since.
    quiet_since: Option<i64>,
}

impl Rescan {
    fn found_nothing(&mut self, now: i64) {
        self.quiet_since = Some(now);
    }

    fn may_be_due(&mut self) {
        self.quiet_since = None;
    }

    fn allows(&self, now: i64) -> bool {
        self.quiet_since
            .is_none_or(|since| now.saturating_sub(since) >= IDLE_POLL.as_millis() as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_that_found_nothing_is_not_repeated_until_a_job_may_be_due() {
        let mut rescan = Rescan::default();
        assert!(rescan.allows(1_000));
        rescan.found_nothing(1_000);
        assert!(!rescan.allows(1_000));
        assert!(!rescan.allows(1_000 + IDLE_POLL.as_millis() as i64 - 1));
        // time alone makes jobs due again
        assert!(rescan.allows(1_000 + IDLE_POLL.as_millis() as i64));
        // a turn that left its job unfinished, or a job handed back
        rescan.found_nothing(2_000);
        rescan.may_be_due();
        assert!(rescan.allows(2_000));
    }
}
