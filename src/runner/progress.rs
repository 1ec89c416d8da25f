//! Progress while a run works: a bar on a terminal, one log line every few seconds
//! otherwise (cron), nothing with `--quiet`. Reporters only read the tally; they never
//! touch the engine's work.

use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::Category;
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

/// Requests per second between two looks at the tally, and the ETA from the pace at which
/// jobs finish since the start.
struct RateMeter {
    at: Instant,
    requests: u64,
    started: Instant,
    finished_at_start: u64,
}

impl RateMeter {
    fn new(snapshot: &Snapshot) -> Self {
        Self {
            at: Instant::now(),
            requests: snapshot.requests,
            started: Instant::now(),
            finished_at_start: snapshot.finished(),
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

    /// The time left at the pace jobs have finished so far; `None` before any finished.
    fn eta(&self, snapshot: &Snapshot) -> Option<Duration> {
        let done = snapshot.finished().saturating_sub(self.finished_at_start);
        let left = snapshot.total().saturating_sub(snapshot.finished());
        if left == 0 {
            return Some(Duration::ZERO);
        }
        if done == 0 {
            return None;
        }
        let per_job = self.started.elapsed().as_secs_f64() / done as f64;
        Some(Duration::from_secs_f64((per_job * left as f64).min(1e9)))
    }
}

/// The share of the run's jobs that are final, in percent.
pub fn percent(snapshot: &Snapshot) -> f64 {
    if snapshot.total() == 0 {
        100.0
    } else {
        snapshot.finished() as f64 * 100.0 / snapshot.total() as f64
    }
}

/// "812 approved, 40 rejected, 3 error · 2 gave up · 5 invalid · 16 in flight · 3 waiting
/// to retry · 48.1 req/s · 7 retries"; "in flight" is requests on the wire.
pub fn describe(snapshot: &Snapshot, rate: f64) -> String {
    describe_within(snapshot, rate, usize::MAX)
}

/// [`describe`] in at most `width` characters: the least telling parts (retries, the
/// rate, waiting, awaiting, ...) are left out, whole, until the rest fits, so that a
/// narrow terminal shows fewer counts rather than a cut one.
pub fn describe_within(snapshot: &Snapshot, rate: f64, width: usize) -> String {
    let mut parts: Vec<String> = Vec::new();
    let categories: Vec<String> = snapshot
        .categories
        .iter()
        .map(|(c, n)| format!("{n} {}", c.to_lowercase()))
        .collect();
    if !categories.is_empty() {
        parts.push(categories.join(", "));
    }
    for (state, label) in [
        (JobState::Failed, "failed"),
        (JobState::GaveUp, "gave up"),
        (JobState::Invalid, "invalid"),
        (JobState::Awaiting, "awaiting result"),
    ] {
        let n = snapshot.get(state);
        if n > 0 {
            parts.push(format!("{n} {label}"));
        }
    }
    parts.push(format!("{} in flight", snapshot.in_flight));
    if snapshot.waiting > 0 {
        parts.push(format!("{} waiting to retry", snapshot.waiting));
    }
    parts.push(format!("{rate:.1} req/s"));
    parts.push(format!("{} retries", snapshot.retries));
    let mut out = parts.join(" · ");
    while out.chars().count() > width && parts.len() > 1 {
        parts.pop();
        out = parts.join(" · ");
    }
    if out.chars().count() > width {
        out = out.chars().take(width).collect();
    }
    out
}

fn eta_text(eta: Option<Duration>) -> String {
    match eta {
        Some(d) => format!("{:#}", indicatif::HumanDuration(d)),
        None => "unknown".into(),
    }
}

async fn bar(tally: Arc<Tally>, mut stopped: watch::Receiver<bool>) {
    let first = tally.snapshot();
    let bar = ProgressBar::with_draw_target(Some(first.total()), ProgressDrawTarget::stderr());
    // Two lines, each as wide as the terminal: the bar never wraps, and the counts are
    // shortened rather than wrapped on a narrow one.
    let style = ProgressStyle::with_template(
        "{elapsed_precise} [{wide_bar}] {pos}/{len} {percent}% · ETA {prefix}\n{wide_msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_position(first.finished());
    crate::log::show_bar(Some(bar.clone()));
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
        // Our own ETA (from finished jobs' pace): indicatif's says 0s before any is done.
        bar.set_prefix(eta_text(meter.eta(&snapshot)));
        let width = console::Term::stderr()
            .size_checked()
            .map_or(usize::MAX, |(_, cols)| usize::from(cols));
        bar.set_message(describe_within(&snapshot, meter.rate(&snapshot), width));
    }
    crate::log::show_bar(None);
    bar.finish_and_clear();
}

/// One progress log line: the counts as fields (numbers), and a readable message.
fn log_line(snapshot: &Snapshot, rate: f64, eta: Option<Duration>) {
    let category = |c: Category| snapshot.categories.get(c.as_str()).copied().unwrap_or(0);
    let pct = percent(snapshot);
    let message = format!(
        "{}/{} done ({pct:.1}%) · ETA {} · {}",
        snapshot.finished(),
        snapshot.total(),
        eta_text(eta),
        describe(snapshot, rate)
    );
    macro_rules! line {
        ($($eta:tt)*) => {
            tracing::info!(
                target: "smile_recon::progress",
                event = "progress",
                done = snapshot.finished(),
                total = snapshot.total(),
                percent = (pct * 10.0).round() / 10.0,
                approved = category(Category::Approved),
                provisionally_approved = category(Category::ProvisionallyApproved),
                rejected = category(Category::Rejected),
                error = category(Category::Error),
                failed = snapshot.get(JobState::Failed),
                gave_up = snapshot.get(JobState::GaveUp),
                invalid = snapshot.get(JobState::Invalid),
                awaiting = snapshot.get(JobState::Awaiting),
                in_flight = snapshot.in_flight,
                waiting = snapshot.waiting,
                rps = (rate * 10.0).round() / 10.0,
                requests = snapshot.requests,
                polls = snapshot.polls,
                callbacks = snapshot.callbacks_received,
                retries = snapshot.retries,
                $($eta)*
                "{message}"
            )
        };
    }
    match eta {
        Some(eta) => line!(eta_seconds = eta.as_secs(),),
        None => line!(),
    }
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
        log_line(&snapshot, rate, meter.eta(&snapshot));
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
            total: 16,
            requests: 20,
            retries: 3,
            in_flight: 4,
            waiting: 2,
            categories: BTreeMap::from([("Approved", 8), ("Rejected", 2)]),
            ..Snapshot::default()
        };
        let text = describe(&snapshot, 12.345);
        assert_eq!(
            text,
            "8 approved, 2 rejected · 2 gave up · 4 in flight · 2 waiting to retry · \
             12.3 req/s · 3 retries"
        );
        assert_eq!(percent(&snapshot), 75.0);
    }

    #[test]
    fn a_narrow_terminal_drops_whole_parts_instead_of_cutting_one() {
        let snapshot = Snapshot {
            total: 3000,
            in_flight: 16,
            waiting: 3,
            retries: 14,
            categories: BTreeMap::from([("Approved", 812), ("Rejected", 40)]),
            ..Snapshot::default()
        };
        let full = describe(&snapshot, 60.0);
        assert!(full.ends_with("60.0 req/s · 14 retries"), "{full}");
        let narrow = describe_within(&snapshot, 60.0, 60);
        assert!(narrow.chars().count() <= 60, "{narrow}");
        assert!(narrow.starts_with("812 approved, 40 rejected"), "{narrow}");
        // every part shown is whole
        for part in narrow.split(" · ") {
            assert!(
                full.split(" · ").any(|p| p == part),
                "{part:?} cut in {narrow}"
            );
        }
        assert_eq!(describe_within(&snapshot, 60.0, 1000), full);
    }

    #[test]
    fn eta_follows_the_pace_of_finished_jobs() {
        let start = Snapshot {
            states: BTreeMap::from([(JobState::Queued, 10)]),
            total: 10,
            ..Snapshot::default()
        };
        let meter = RateMeter::new(&start);
        assert_eq!(meter.eta(&start), None, "nothing finished yet");
        std::thread::sleep(Duration::from_millis(20));
        let half = Snapshot {
            states: BTreeMap::from([(JobState::Queued, 5), (JobState::Done, 5)]),
            total: 10,
            ..Snapshot::default()
        };
        let eta = meter.eta(&half).unwrap();
        assert!(
            eta >= Duration::from_millis(15) && eta < Duration::from_secs(2),
            "{eta:?}"
        );
        let all = Snapshot {
            states: BTreeMap::from([(JobState::Done, 10)]),
            total: 10,
            ..Snapshot::default()
        };
        assert_eq!(meter.eta(&all), Some(Duration::ZERO));
    }

    #[test]
    fn mode_follows_quiet_and_terminal() {
        assert_eq!(ProgressMode::choose(true, true), ProgressMode::Quiet);
        assert_eq!(ProgressMode::choose(false, true), ProgressMode::Bar);
        assert_eq!(ProgressMode::choose(false, false), ProgressMode::Lines);
    }
}
