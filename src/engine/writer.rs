//! The one task that writes the database during a run: group commit.
//!
//! Workers and the callback receiver send batches of [`WriteOp`]s; the writer thread
//! takes whatever has queued up (up to [`MAX_BATCH_OPS`]), commits it in one transaction
//! and acknowledges each sender that waits ([`Writer::commit`]). A worker's finished turn
//! ([`Writer::finish`]) is not acknowledged to the worker, which has gone on to its next
//! job: the writer reports every turn a commit made durable to the dispatcher, in one
//! message per commit ([`Turns`]), so a commit wakes one task instead of one per job.
//!
//! Under load the queue fills while a commit runs, so batches grow by themselves. A small
//! batch of results lingers for company while company keeps arriving (up to [`LINGER`]);
//! a batch holding an intent to submit (a request waits on it) commits at once, and an
//! intent that arrives during a linger waits at most one [`LINGER_STEP`].

use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::store::{JobState, Store, StoreError, WriteOp};

/// Ops per transaction at most: bounds a commit's latency and memory.
pub const MAX_BATCH_OPS: usize = 4096;

/// How long a small batch without an intent waits for more, at most, before it commits.
/// Each commit writes every page it touched to the WAL in full (4 KiB), and the tail pages
/// of `events` and `jobs` and their indexes are touched by every commit, so fewer, larger
/// commits write fewer bytes per job and cost this thread less CPU. A worker goes on to
/// its next job before its turn commits, so the wait costs no request time.
pub const LINGER: Duration = Duration::from_millis(2);

/// The linger goes in steps, and ends at the first step that brought nothing: committers
/// that all wait for their commit (the callback receiver, a test) are not kept waiting.
pub const LINGER_STEP: Duration = Duration::from_micros(500);

/// A batch with at least this many ops commits without lingering.
const LINGER_BELOW: usize = 256;

/// Messages queued at most before senders wait (back-pressure on the workers).
const QUEUE: usize = 16 * 1024;

type Ack = oneshot::Sender<Result<Vec<bool>, String>>;

/// One job's turn of work, as the dispatcher needs to hear of it once it is committed.
#[derive(Clone, Debug, PartialEq)]
pub struct Turn {
    pub row: i64,
    /// The job's state before the turn's update (after its intent, if one was committed).
    pub from: JobState,
    pub to: JobState,
    /// The result category of a job the turn finished.
    pub category: Option<crate::api::Category>,
    /// The turn's request failed and the job waits for its retry.
    pub retry: bool,
}

/// What one commit made durable: each turn, and whether its update changed the job (a
/// final job is never changed again, so a late answer's update is dropped). `Err`: the
/// commit failed, with its cause; nothing more will be written.
pub type Committed = Result<Vec<(Turn, bool)>, String>;

/// The dispatcher's end of the writer's reports.
pub type Turns = mpsc::UnboundedReceiver<Committed>;

enum Reply {
    /// Fire and forget (audit events).
    None,
    /// The sender waits for its commit.
    Ack(Ack),
    /// Reported to the dispatcher once committed.
    Turn(Turn),
}

struct Message {
    ops: Vec<WriteOp>,
    reply: Reply,
}

/// A handle to send writes; cheap to clone. The writer stops when every handle is dropped.
#[derive(Clone, Debug)]
pub struct Writer {
    tx: mpsc::Sender<Message>,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("the database writer has stopped")]
    Stopped,
    #[error("cannot commit to the database: {0}")]
    Commit(String),
}

impl Writer {
    /// Starts the writer thread over `store`. Join the handle to get the store back (and
    /// the first commit error, if any). Committed turns are reported on [`Turns`].
    pub fn spawn(store: Store) -> (Writer, Turns, JoinHandle<Result<Store, StoreError>>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let (turns_tx, turns) = mpsc::unbounded_channel();
        let handle = std::thread::Builder::new()
            .name("smile-recon-writer".into())
            .spawn(move || run(store, rx, turns_tx))
            .expect("spawning a thread only fails when the OS is out of resources");
        (Writer { tx }, turns, handle)
    }

    /// Commits `ops` and waits for the commit; returns, per op, whether it took effect.
    pub async fn commit(&self, ops: Vec<WriteOp>) -> Result<Vec<bool>, WriteError> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send(Message {
                ops,
                reply: Reply::Ack(ack),
            })
            .await
            .map_err(|_| WriteError::Stopped)?;
        match done.await {
            Ok(Ok(applied)) => Ok(applied),
            Ok(Err(e)) => Err(WriteError::Commit(e)),
            Err(_) => Err(WriteError::Stopped),
        }
    }

    /// Queues `ops` without waiting for the commit (audit events).
    pub async fn send(&self, ops: Vec<WriteOp>) -> Result<(), WriteError> {
        self.queue(ops, Reply::None).await
    }

    /// Queues a job's turn: its `ops` (the update last), reported on [`Turns`] once
    /// committed. Returns as soon as the writer has the ops.
    pub async fn finish(&self, ops: Vec<WriteOp>, turn: Turn) -> Result<(), WriteError> {
        self.queue(ops, Reply::Turn(turn)).await
    }

    async fn queue(&self, ops: Vec<WriteOp>, reply: Reply) -> Result<(), WriteError> {
        self.tx
            .send(Message { ops, reply })
            .await
            .map_err(|_| WriteError::Stopped)
    }
}

/// Where each message's ops sit in a batch (`start..end`), and whom to tell.
type Senders = Vec<(usize, usize, Reply)>;

fn run(
    mut store: Store,
    mut rx: mpsc::Receiver<Message>,
    turns: mpsc::UnboundedSender<Committed>,
) -> Result<Store, StoreError> {
    let mut batch: Vec<WriteOp> = Vec::new();
    let mut senders: Senders = Vec::new();
    let mut failure: Option<StoreError> = None;
    while let Some(first) = rx.blocking_recv() {
        batch.clear();
        senders.clear();
        gather(first, &mut rx, &mut batch, &mut senders);
        if let Some(first) = &failure {
            // After a failed commit nothing more is written: the run stops and resumes
            // from what was committed. Later senders learn the first failure's cause, so
            // whichever error reaches the operator says why (a full disk, say).
            refuse(
                &mut senders,
                &turns,
                &format!("an earlier commit failed: {first}"),
            );
            continue;
        }
        match store.apply(&batch) {
            Ok(applied) => report(&applied, &mut senders, &turns),
            Err(e) => {
                refuse(&mut senders, &turns, &e.to_string());
                failure = Some(e);
            }
        }
    }
    match failure {
        Some(e) => Err(e),
        None => {
            store.scrub();
            Ok(store)
        }
    }
}

/// Gathers a batch: `first`, what is already queued behind it, and, for a small batch
/// without an intent, what comes while it lingers (in steps, until a step brings nothing).
fn gather(
    first: Message,
    rx: &mut mpsc::Receiver<Message>,
    batch: &mut Vec<WriteOp>,
    senders: &mut Senders,
) {
    push(first, batch, senders);
    drain(rx, batch, senders);
    let is_intent = |op: &WriteOp| matches!(op, WriteOp::Intent { .. });
    let mut lingered = Duration::ZERO;
    let mut seen = 0;
    while lingered < LINGER && batch.len() < LINGER_BELOW && !batch[seen..].iter().any(is_intent) {
        seen = batch.len();
        std::thread::sleep(LINGER_STEP);
        lingered += LINGER_STEP;
        drain(rx, batch, senders);
        if batch.len() == seen {
            break;
        }
    }
}

/// Adds a message's ops to the batch.
fn push(m: Message, batch: &mut Vec<WriteOp>, senders: &mut Senders) {
    let start = batch.len();
    batch.extend(m.ops);
    senders.push((start, batch.len(), m.reply));
}

/// Adds the messages already queued, up to [`MAX_BATCH_OPS`].
fn drain(rx: &mut mpsc::Receiver<Message>, batch: &mut Vec<WriteOp>, senders: &mut Senders) {
    while batch.len() < MAX_BATCH_OPS {
        match rx.try_recv() {
            Ok(m) => push(m, batch, senders),
            Err(_) => break,
        }
    }
}

/// Tells every sender of a committed batch what took effect: acks get their ops' results,
/// the turns go to the dispatcher in one message.
fn report(applied: &[bool], senders: &mut Senders, turns: &mpsc::UnboundedSender<Committed>) {
    let mut done = Vec::new();
    for (start, end, reply) in senders.drain(..) {
        match reply {
            Reply::None => {}
            Reply::Ack(ack) => {
                let _ = ack.send(Ok(applied[start..end].to_vec()));
            }
            // The update is the turn's last op; a turn without ops changed nothing.
            Reply::Turn(turn) => done.push((turn, end > start && applied[end - 1])),
        }
    }
    if !done.is_empty() {
        // The dispatcher may have stopped listening (it has stopped the run).
        let _ = turns.send(Ok(done));
    }
}

/// Tells every sender of a batch that was not committed why.
fn refuse(senders: &mut Senders, turns: &mpsc::UnboundedSender<Committed>, why: &str) {
    let mut any_turn = false;
    for (_, _, reply) in senders.drain(..) {
        match reply {
            Reply::None => {}
            Reply::Ack(ack) => {
                let _ = ack.send(Err(why.to_owned()));
            }
            Reply::Turn(_) => any_turn = true,
        }
    }
    if any_turn {
        let _ = turns.send(Err(why.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{JobUpdate, WriteOp};

    fn done(row: i64) -> WriteOp {
        WriteOp::Update(JobUpdate {
            row,
            state: JobState::Done,
            attempts: Some(0),
            polls: Some(1),
            next_attempt_at: 0,
            last_http_status: None,
            last_code: None,
            last_error: None,
            result: None,
            staged_input: None,
            at: 1,
        })
    }

    fn turn(row: i64) -> Turn {
        Turn {
            row,
            from: JobState::Queued,
            to: JobState::Done,
            category: None,
            retry: false,
        }
    }

    #[test]
    fn committed_turns_are_reported_with_whether_they_changed_their_job() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let store = Store::open(&path).unwrap();
        crate::store::seed_for_tests(&path, &[(1, 1, "queued", None), (1, 2, "queued", None)]);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (writer, mut turns, thread) = Writer::spawn(store);
        let reported = runtime.block_on(async {
            writer.finish(vec![done(1)], turn(1)).await.unwrap();
            // row 1 is final now: a second update of it changes nothing
            writer.finish(vec![done(1)], turn(1)).await.unwrap();
            // a turn without ops (the breaker tripped before its request)
            writer.finish(vec![], turn(2)).await.unwrap();
            writer.finish(vec![done(2)], turn(2)).await.unwrap();
            drop(writer);
            let mut all = Vec::new();
            while let Some(committed) = turns.recv().await {
                all.extend(committed.unwrap());
            }
            all
        });
        assert_eq!(
            reported,
            vec![
                (turn(1), true),
                (turn(1), false),
                (turn(2), false),
                (turn(2), true)
            ]
        );
        thread.join().unwrap().unwrap();
    }
}
