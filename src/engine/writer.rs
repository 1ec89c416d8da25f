//! The one task that writes the database during a run: group commit.
//!
//! Workers and the callback receiver send batches of [`WriteOp`]s; the writer thread
//! takes whatever has queued up (up to [`MAX_BATCH_OPS`]), commits it in one transaction
//! and acknowledges each sender. Under load the queue fills while a commit runs, so
//! batches grow by themselves. A small batch of results waits [`LINGER`] for company
//! before it commits; a batch holding an intent to submit (a request waits on it) commits
//! at once, and an intent that arrives during a linger waits at most [`LINGER`].

use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::store::{Store, StoreError, WriteOp};

/// Ops per transaction at most: bounds a commit's latency and memory.
pub const MAX_BATCH_OPS: usize = 4096;

/// How long a small batch without an intent waits for more before it commits. Each
/// commit writes every page it touched to the WAL in full (4 KiB), and the tail pages of
/// `events` and its indexes are touched by every commit: at 64 concurrent polls the
/// batches held ~6 jobs and the process wrote 6.7-7.4 kB per job; with this linger,
/// 3.9-4.2 kB (measured as the process's `wchar`, 100,000-job poll, BENCHMARKS.md). A worker's
/// request slot is free before its commit, so the wait costs no request time.
pub const LINGER: Duration = Duration::from_micros(500);

/// A batch with at least this many ops commits without lingering.
const LINGER_BELOW: usize = 256;

/// Messages queued at most before senders wait (back-pressure on the workers).
const QUEUE: usize = 16 * 1024;

type Ack = oneshot::Sender<Result<Vec<bool>, String>>;

struct Message {
    ops: Vec<WriteOp>,
    ack: Option<Ack>,
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
    /// the first commit error, if any).
    pub fn spawn(store: Store) -> (Writer, JoinHandle<Result<Store, StoreError>>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let handle = std::thread::Builder::new()
            .name("smile-recon-writer".into())
            .spawn(move || run(store, rx))
            .expect("spawning a thread only fails when the OS is out of resources");
        (Writer { tx }, handle)
    }

    /// Commits `ops` and waits for the commit; returns, per op, whether it took effect.
    pub async fn commit(&self, ops: Vec<WriteOp>) -> Result<Vec<bool>, WriteError> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send(Message {
                ops,
                ack: Some(ack),
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
        self.tx
            .send(Message { ops, ack: None })
            .await
            .map_err(|_| WriteError::Stopped)
    }
}

fn run(mut store: Store, mut rx: mpsc::Receiver<Message>) -> Result<Store, StoreError> {
    let mut batch: Vec<WriteOp> = Vec::new();
    let mut senders: Vec<(usize, usize, Option<Ack>)> = Vec::new();
    let mut failure: Option<StoreError> = None;
    while let Some(first) = rx.blocking_recv() {
        batch.clear();
        senders.clear();
        let mut push = |m: Message, batch: &mut Vec<WriteOp>| {
            let start = batch.len();
            batch.extend(m.ops);
            senders.push((start, batch.len(), m.ack));
        };
        push(first, &mut batch);
        let mut drain = |batch: &mut Vec<WriteOp>| {
            while batch.len() < MAX_BATCH_OPS {
                match rx.try_recv() {
                    Ok(m) => push(m, batch),
                    Err(_) => break,
                }
            }
        };
        drain(&mut batch);
        if batch.len() < LINGER_BELOW
            && !batch.iter().any(|op| matches!(op, WriteOp::Intent { .. }))
        {
            std::thread::sleep(LINGER);
            drain(&mut batch);
        }
        if let Some(first) = &failure {
            // After a failed commit nothing more is written: the run stops and resumes
            // from what was committed. Later senders learn the first failure's cause, so
            // whichever error reaches the operator says why (a full disk, say).
            let text = format!("an earlier commit failed: {first}");
            for (_, _, ack) in senders.drain(..) {
                if let Some(ack) = ack {
                    let _ = ack.send(Err(text.clone()));
                }
            }
            continue;
        }
        match store.apply(&batch) {
            Ok(applied) => {
                for (start, end, ack) in senders.drain(..) {
                    if let Some(ack) = ack {
                        let _ = ack.send(Ok(applied[start..end].to_vec()));
                    }
                }
            }
            Err(e) => {
                let text = e.to_string();
                for (_, _, ack) in senders.drain(..) {
                    if let Some(ack) = ack {
                        let _ = ack.send(Err(text.clone()));
                    }
                }
                failure = Some(e);
            }
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(store),
    }
}
