//! Holds answers for the configured latency, precisely.
//!
//! tokio's timer has millisecond ticks: a deadline is rounded up to the next tick, and the
//! driver's `epoll_wait` timeout is rounded up again, so a `tokio::time::sleep` ends one to
//! two milliseconds late, and a client measured against the sandbox's latency looks slower
//! than it is. One thread here keeps the pending deadlines in a heap and sleeps on a
//! channel with a nanosecond timeout (a futex with a high-resolution timer on Linux), so
//! an answer leaves within tens of microseconds of its deadline. The thread is started on first use and ends when the sandbox is dropped.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::OnceLock;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Instant;

use tokio::sync::oneshot;

/// One pending wake-up, ordered by its deadline alone (which of two equal deadlines goes
/// first does not matter).
struct Pending {
    at: Instant,
    wake: oneshot::Sender<()>,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.at.cmp(&other.at)
    }
}

#[derive(Default)]
pub struct Delays {
    /// Started on the first delay: a sandbox without latency has no thread.
    queue: OnceLock<mpsc::Sender<(Instant, oneshot::Sender<()>)>>,
}

impl std::fmt::Debug for Delays {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delays").finish_non_exhaustive()
    }
}

impl Delays {
    /// Resolves at `deadline` (or at once if it has passed). Falls back to tokio's timer
    /// if the thread cannot be started.
    pub async fn until(&self, deadline: Instant) {
        if deadline <= Instant::now() {
            return;
        }
        let (wake, woken) = oneshot::channel();
        let sent = self.queue.get_or_init(start).send((deadline, wake)).is_ok();
        if !sent || woken.await.is_err() {
            tokio::time::sleep_until(deadline.into()).await;
        }
    }
}

fn start() -> mpsc::Sender<(Instant, oneshot::Sender<()>)> {
    let (tx, rx) = mpsc::channel();
    // If the thread cannot be spawned, `rx` is dropped with the closure, every send fails
    // and `until` uses tokio's timer instead.
    let _ = std::thread::Builder::new()
        .name("sandbox-latency".into())
        .spawn(move || {
            precise_timer_slack();
            run(&rx)
        });
    tx
}

/// Linux lets a thread's timed waits end up to its "timer slack" late (50 us by default)
/// so that wake-ups can be grouped; this thread exists to be on time, so it asks for 1 ns.
#[cfg(target_os = "linux")]
fn precise_timer_slack() {
    // SAFETY: prctl(PR_SET_TIMERSLACK) takes plain integers and changes only the calling
    // thread's timer slack; a failure leaves the default, which is merely less precise.
    let _ = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
}

#[cfg(not(target_os = "linux"))]
fn precise_timer_slack() {}

fn run(rx: &mpsc::Receiver<(Instant, oneshot::Sender<()>)>) {
    let mut heap: BinaryHeap<Reverse<Pending>> = BinaryHeap::new();
    loop {
        let now = Instant::now();
        while heap.peek().is_some_and(|Reverse(p)| p.at <= now) {
            if let Some(Reverse(p)) = heap.pop() {
                // The request may have gone (client hung up); nothing to wake then.
                let _ = p.wake.send(());
            }
        }
        let next = match heap.peek() {
            Some(Reverse(p)) => rx.recv_timeout(p.at.saturating_duration_since(now)),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match next {
            Ok((at, wake)) => heap.push(Reverse(Pending { at, wake })),
            Err(RecvTimeoutError::Timeout) => {}
            // The sandbox is gone; dropping the heap wakes the rest (their `until` then
            // finishes on tokio's timer).
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn never_wakes_early_nor_much_late() {
        let delays = std::sync::Arc::new(Delays::default());
        let start = Instant::now();
        let mut tasks = Vec::new();
        for ms in [30u64, 10, 20, 10, 0] {
            let delays = delays.clone();
            tasks.push(tokio::spawn(async move {
                let at = start + Duration::from_millis(ms);
                delays.until(at).await;
                (ms, at, Instant::now())
            }));
        }
        for t in tasks {
            let (ms, at, woke) = t.await.unwrap();
            assert!(woke >= at, "{ms} ms woke early");
            // Generous: a loaded CI machine may deschedule the thread; early is the bug.
            let late = woke - at;
            assert!(
                late < Duration::from_millis(500),
                "{ms} ms woke {late:?} late"
            );
        }
    }
}
