//! Ctrl-C and SIGTERM: the first asks the engine to stop dispatching and finish in-flight
//! requests within its grace; a second one ends the process at once (everything committed
//! so far is safe in the WAL, and resume checks in-flight jobs before resending).

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::exit::Outcome;

/// Starts listening; the receiver turns `true` on the first signal.
pub fn listen() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM: {e}");
                return;
            }
        };
        for n in 0.. {
            tokio::select! {
                r = tokio::signal::ctrl_c() => if r.is_err() { return },
                _ = term.recv() => {}
            }
            if n == 0 {
                eprintln!(
                    "smile-recon: interrupted; finishing in-flight requests, then stopping \
                     (again to stop now; `smile-recon resume` continues)"
                );
                let _ = tx.send(true);
            } else {
                eprintln!("smile-recon: stopped; `smile-recon resume` continues the run");
                std::process::exit(i32::from(Outcome::Interrupted.code()));
            }
        }
    });
    rx
}
