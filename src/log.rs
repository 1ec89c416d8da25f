//! Messages for the operator on stderr, and the state every log line needs (the run's id,
//! whether stderr speaks JSON, the progress bar lines go above). Below `cli` so that the
//! runner can speak; `cli::logging` sets up the tracing subscriber that formats lines.

use std::io::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

/// The run being worked (0: none yet); every JSON line carries it.
pub(crate) static RUN: AtomicI64 = AtomicI64::new(0);
/// Whether stderr speaks JSON.
pub(crate) static JSON: AtomicBool = AtomicBool::new(false);

/// From now on, log lines name this run.
pub fn set_run(id: i64) {
    RUN.store(id, Ordering::Relaxed);
}

pub fn json() -> bool {
    JSON.load(Ordering::Relaxed)
}

/// The progress bar on the terminal, while one is drawn: lines written meanwhile go above it
/// whole, instead of being torn or cut by its redraw.
static BAR: Mutex<Option<indicatif::ProgressBar>> = Mutex::new(None);

pub fn show_bar(bar: Option<indicatif::ProgressBar>) {
    *BAR.lock().unwrap_or_else(|p| p.into_inner()) = bar;
}

/// Writes to stderr; with a bar shown, above it (the bar is hidden for the write).
pub(crate) fn write_stderr(buf: &[u8]) -> std::io::Result<()> {
    let bar = BAR.lock().unwrap_or_else(|p| p.into_inner()).clone();
    match bar {
        Some(bar) => bar.suspend(|| std::io::stderr().lock().write_all(buf)),
        None => std::io::stderr().lock().write_all(buf),
    }
}

/// A message for the operator on stderr: `smile-recon: TEXT` as plain text, or a JSON event
/// (level warn, or error when `error`) with `--log-format json`.
pub fn say(error: bool, text: &str) {
    if json() {
        if error {
            tracing::error!("{text}");
        } else {
            tracing::warn!("{text}");
        }
    } else {
        let _ = write_stderr(format!("smile-recon: {text}\n").as_bytes());
    }
}
