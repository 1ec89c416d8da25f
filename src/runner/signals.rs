//! Ctrl-C and SIGTERM: the first asks the engine to stop dispatching and finish in-flight
//! requests within its grace; a second one ends the process at once (everything committed
//! so far is safe in the WAL, and resume checks in-flight jobs before resending).

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;

use crate::exit::ExitStatus;

/// The next delivery of `s`; never, when the handler could not be installed.
pub async fn recv_or_never(s: &mut Option<Signal>) {
    match s {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}

/// Starts listening; the receiver turns `true` on the first signal (a second one exits
/// at once, naming `resume`, the command that continues the run). The handlers are in
/// place when this returns (a signal right after start is not lost to the default action).
pub fn listen(resume: String) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    let mut term = signal(SignalKind::terminate()).ok();
    let mut interrupt = signal(SignalKind::interrupt()).ok();
    if term.is_none() || interrupt.is_none() {
        tracing::warn!("cannot listen for SIGTERM or SIGINT; they will stop the run at once");
    }
    tokio::spawn(async move {
        for n in 0.. {
            tokio::select! {
                _ = recv_or_never(&mut term) => {}
                _ = recv_or_never(&mut interrupt) => {}
            }
            if n == 0 {
                crate::log::say(
                    false,
                    "interrupted: finishing requests in flight (Ctrl-C again stops now)",
                );
                let _ = tx.send(true);
            } else {
                crate::log::say(false, &format!("stopped; `{resume}` continues the run"));
                std::process::exit(i32::from(ExitStatus::Interrupted.code()));
            }
        }
    });
    rx
}
