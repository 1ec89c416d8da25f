//! Progress while a run works: a bar on a terminal, one log line every few seconds
//! otherwise (cron), nothing with `--quiet`. Reporters only read the tally; they never
//! touch the engine's work.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::engine::{Snapshot, Tally};
use crate::store::JobState;

/// How often a log line is written when there is no terminal.
pub const LOG_EVERY: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressMode {
    Bar,
    Lines,
    Quiet,
}

impl ProgressMode {
    pub fn choose(quiet: bool, stderr_is_terminal: bool) -> Self {
        match (quiet, stderr_is_terminal) {
            (true, _) => ProgressMode::Quiet,
            (false, true) => ProgressMode::Bar,
            (false, false) => ProgressMode::Lines,
        }
    }
}

pub struct Progress {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Progress {
    pub fn start(tally: Arc<Tally>, mode: ProgressMode) -> Self {
        let (stop, stopped) = watch::channel(false);
        let task = match mode {
            ProgressMode::Quiet => None,
            ProgressMode::Bar => Some(tokio::spawn(bar(tally, stopped))),
            ProgressMode::Lines => Some(tokio::spawn(lines(tally, stopped))),
        };
        Self { stop, task }
    }

    pub async fn finish(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// Requests per second between two looks at the tally.
struct RateMeter {
    at: Instant,
    requests: u64,
}

impl RateMeter {
    fn new(snapshot: &Snapshot) -> Self {
        Self {
            at: Instant::now(),
            requests: snapshot.requests,
        }
    }

    fn rate(&mut self, snapshot: &Snapshot) -> f64 {
        let elapsed = self.at.elapsed().as_secs_f64();
        let rate = if elapsed > 0.0 {
            snapshot.requests.saturating_sub(self.requests) as f64 / elapsed
        } else {
            0.0
        };
        self.at = Instant::now();
        self.requests = snapshot.requests;
        rate
    }
}

/// "812 approved, 40 rejected, 3 error · 2 gave up · 5 invalid · 16 in flight · 48.1 req/s
/// · 7 retries"
pub fn describe(snapshot: &Snapshot, rate: f64) -> String {
    let mut out = String::new();
    let categories: Vec<String> = snapshot
        .categories
        .iter()
        .map(|(c, n)| format!("{n} {}", c.to_lowercase()))
        .collect();
    if !categories.is_empty() {
        out.push_str(&categories.join(", "));
        out.push_str(" · ");
    }
    for (state, label) in [
        (JobState::Failed, "failed"),
        (JobState::GaveUp, "gave up"),
        (JobState::Invalid, "invalid"),
        (JobState::Awaiting, "awaiting result"),
    ] {
        let n = snapshot.get(state);
        if n > 0 {
            let _ = write!(out, "{n} {label} · ");
        }
    }
    let _ = write!(
        out,
        "{} in flight · {rate:.1} req/s · {} retries",
        snapshot.in_flight, snapshot.retries
    );
    out
}

async fn bar(tally: Arc<Tally>, mut stopped: watch::Receiver<bool>) {
    let first = tally.snapshot();
    let bar = ProgressBar::with_draw_target(Some(first.total()), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{elapsed_precise} [{bar:30}] {pos}/{len} done · ETA {eta} · {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    let mut meter = RateMeter::new(&first);
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped.changed() => break,
        }
        let snapshot = tally.snapshot();
        bar.set_length(snapshot.total());
        bar.set_position(snapshot.finished());
        bar.set_message(describe(&snapshot, meter.rate(&snapshot)));
    }
    bar.finish_and_clear();
}

async fn lines(tally: Arc<Tally>, mut stopped: watch::Receiver<bool>) {
    let mut meter = RateMeter::new(&tally.snapshot());
    let mut tick = tokio::time::interval(LOG_EVERY);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped.changed() => break,
        }
        let snapshot = tally.snapshot();
        let rate = meter.rate(&snapshot);
        tracing::info!(
            target: "smile_recon::progress",
            done = snapshot.finished(),
            total = snapshot.total(),
            in_flight = snapshot.in_flight,
            requests = snapshot.requests,
            retries = snapshot.retries,
            rate = format!("{rate:.1}"),
            "{}/{} done · {}",
            snapshot.finished(),
            snapshot.total(),
            describe(&snapshot, rate)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn description_names_categories_problems_and_rate() {
        let snapshot = Snapshot {
            states: BTreeMap::from([(JobState::Done, 10), (JobState::GaveUp, 2)]),
            requests: 20,
            retries: 3,
            in_flight: 4,
            categories: BTreeMap::from([("Approved", 8), ("Rejected", 2)]),
        };
        let text = describe(&snapshot, 12.345);
        assert_eq!(
            text,
            "8 approved, 2 rejected · 2 gave up · 4 in flight · 12.3 req/s · 3 retries"
        );
    }

    #[test]
    fn mode_follows_quiet_and_terminal() {
        assert_eq!(ProgressMode::choose(true, true), ProgressMode::Quiet);
        assert_eq!(ProgressMode::choose(false, true), ProgressMode::Bar);
        assert_eq!(ProgressMode::choose(false, false), ProgressMode::Lines);
    }
}
