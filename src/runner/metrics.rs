//! `--metrics-file PATH`: the run's figures in Prometheus text exposition format, for
//! node_exporter's textfile collector. Written every few seconds while the run works and
//! once more when it ends, each time atomically (a temporary file in the same folder, then
//! a rename), so the collector never reads half a file. Like the progress reporter it only
//! reads the tally; it never steers the engine.
//!
//! Every series has a `name` label (the run's name, stable across runs of one job spec);
//! the run's id is on `smile_recon_run_info` alone, so that a new run does not make new
//! series. Counters (`_total`) count this execution's requests: a resume starts them at 0,
//! as a restarted exporter would.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::engine::{Snapshot, Tally};
use crate::job_spec::RunMode;
use crate::store::JobState;

/// How often the file is written while the run works (node_exporter reads it on scrape).
pub const WRITE_EVERY: Duration = Duration::from_secs(5);

const LAST_SUCCESS: &str = "smile_recon_last_success_timestamp_seconds";

/// What names the run in the file.
#[derive(Clone, Debug)]
pub struct RunInfo {
    pub run_id: i64,
    pub name: String,
    pub mode: RunMode,
}

/// How the run ended, for the last write.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct End {
    pub exit_code: u8,
    /// Jobs that disagree with the manifest's expectations, when reconciled.
    pub discrepancies: Option<u64>,
}

/// The file's figures at one moment.
#[derive(Clone, Debug)]
pub struct Figures {
    pub info: RunInfo,
    pub snapshot: Snapshot,
    /// Exact counts read from the store at the end (the tally's otherwise).
    pub states: BTreeMap<JobState, u64>,
    pub categories: BTreeMap<String, u64>,
    pub duration: Duration,
    /// Unix seconds of the last run of this name that ended with exit 0.
    pub last_success: Option<f64>,
    pub end: Option<End>,
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn category_label(category: &str) -> String {
    category.to_lowercase().replace(' ', "_")
}

/// The exposition text.
pub fn render(f: &Figures) -> String {
    let name = escape(&f.info.name);
    let mut out = String::new();
    render_run(&mut out, &name, f);
    render_jobs(&mut out, &name, f);
    render_traffic(&mut out, &name, &f.snapshot);
    render_end(&mut out, &name, f);
    out
}

/// A metric family's HELP and TYPE lines.
fn family(out: &mut String, metric: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {metric} {help}");
    let _ = writeln!(out, "# TYPE {metric} {kind}");
}

/// A family of one series labelled by the run's name alone.
fn single(out: &mut String, metric: &str, kind: &str, help: &str, name: &str, value: &str) {
    family(out, metric, kind, help);
    let _ = writeln!(out, "{metric}{{name=\"{name}\"}} {value}");
}

/// Which run the file describes, and whether it still works.
fn render_run(out: &mut String, name: &str, f: &Figures) {
    family(
        out,
        "smile_recon_run_info",
        "gauge",
        "The run this file describes (always 1).",
    );
    let _ = writeln!(
        out,
        "smile_recon_run_info{{name=\"{name}\",run=\"{}\",mode=\"{}\"}} 1",
        f.info.run_id,
        escape(f.info.mode.as_str())
    );
    single(
        out,
        "smile_recon_run_running",
        "gauge",
        "1 while the run works, 0 once it has ended.",
        name,
        &u8::from(f.end.is_none()).to_string(),
    );
}

/// The run's jobs by state and by result category.
fn render_jobs(out: &mut String, name: &str, f: &Figures) {
    family(out, "smile_recon_jobs", "gauge", "The run's jobs by state.");
    for state in JobState::ALL {
        let _ = writeln!(
            out,
            "smile_recon_jobs{{name=\"{name}\",state=\"{}\"}} {}",
            state.as_str(),
            f.states.get(&state).copied().unwrap_or(0)
        );
    }
    family(
        out,
        "smile_recon_jobs_by_category",
        "gauge",
        "The run's finished jobs by result category.",
    );
    for category in crate::engine::tally::CATEGORIES {
        let _ = writeln!(
            out,
            "smile_recon_jobs_by_category{{name=\"{name}\",category=\"{}\"}} {}",
            category_label(category.as_str()),
            f.categories.get(category.as_str()).copied().unwrap_or(0)
        );
    }
}

/// This execution's requests, callbacks and retries, and what is on the wire or waiting.
fn render_traffic(out: &mut String, name: &str, snapshot: &Snapshot) {
    family(
        out,
        "smile_recon_requests_total",
        "counter",
        "Requests this execution sent, by endpoint path and HTTP status (\"error\": no answer).",
    );
    for ((endpoint, status), n) in &snapshot.answers {
        let _ = writeln!(
            out,
            "smile_recon_requests_total{{name=\"{name}\",endpoint=\"{endpoint}\",status=\"{status}\"}} {n}"
        );
    }
    family(
        out,
        "smile_recon_callbacks_total",
        "counter",
        "Callbacks the built-in receiver got (received), took (accepted) or refused.",
    );
    for (outcome, n) in [
        ("received", snapshot.callbacks_received),
        ("accepted", snapshot.callbacks_accepted),
        ("refused", snapshot.callbacks_refused),
    ] {
        let _ = writeln!(
            out,
            "smile_recon_callbacks_total{{name=\"{name}\",outcome=\"{outcome}\"}} {n}"
        );
    }
    single(
        out,
        "smile_recon_retries_total",
        "counter",
        "Requests that failed and were scheduled to be tried again.",
        name,
        &snapshot.retries.to_string(),
    );
    single(
        out,
        "smile_recon_requests_in_flight",
        "gauge",
        "Requests on the wire.",
        name,
        &snapshot.in_flight.to_string(),
    );
    single(
        out,
        "smile_recon_jobs_waiting_retry",
        "gauge",
        "Jobs whose last request failed, waiting for their retry.",
        name,
        &snapshot.waiting.to_string(),
    );
}

/// How long the execution has worked, the last success of this name, and how the run
/// ended once it has.
fn render_end(out: &mut String, name: &str, f: &Figures) {
    single(
        out,
        "smile_recon_run_duration_seconds",
        "gauge",
        "How long this execution has worked.",
        name,
        &format!("{:.3}", f.duration.as_secs_f64()),
    );
    if let Some(at) = f.last_success {
        single(
            out,
            LAST_SUCCESS,
            "gauge",
            "Unix time at which a run of this name last ended with exit code 0.",
            name,
            &format!("{at:.3}"),
        );
    }
    let Some(end) = f.end else {
        return;
    };
    single(
        out,
        "smile_recon_exit_code",
        "gauge",
        "The exit code the run ended with (0 every job final, 3 job errors, 4 \
         discrepancies, 130 interrupted, 1 fatal).",
        name,
        &end.exit_code.to_string(),
    );
    if let Some(n) = end.discrepancies {
        single(
            out,
            "smile_recon_discrepancies",
            "gauge",
            "Jobs whose Smile ID result disagrees with the manifest's expectations.",
            name,
            &n.to_string(),
        );
    }
}

/// Writes `text` to `path` atomically and privately (0600): a temporary file beside it
/// created O_EXCL|O_NOFOLLOW, then a rename; a link at `path` is refused, never followed.
pub fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    // The folder is made like a report folder's (0700), so a first cron night finds its file.
    crate::files::create_private_dir_all(&dir)?;
    // The temporary's name ends in .tmp, which the textfile collector ignores (*.prom).
    let mut file = crate::files::AtomicFile::create(path)?;
    file.write_all(text.as_bytes())?;
    file.commit()
}

/// The last-success time a previous file at `path` recorded, if any.
pub fn previous_last_success(path: &Path) -> Option<f64> {
    use std::io::Read as _;
    // Only a regular file of ours is read, never a link, a FIFO (an open would block) or a
    // device, and at most 1 MiB of it.
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.file_type().is_file() {
        return None;
    }
    let mut file = open_no_follow(path).ok()?;
    if !file.metadata().ok()?.file_type().is_file() {
        return None;
    }
    let mut text = String::new();
    (&mut file).take(1 << 20).read_to_string(&mut text).ok()?;
    text.lines()
        .filter(|l| l.starts_with(LAST_SUCCESS))
        .find_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .filter(|v| v.is_finite())
}

/// Opens `path` for reading without following a link and without blocking on a FIFO.
fn open_no_follow(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    options.open(path)
}

pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The writer for one execution: the periodic task, and what the last write needs.
pub struct MetricsFile {
    pub path: PathBuf,
    pub info: RunInfo,
    tally: Arc<Tally>,
    started: Instant,
    last_success: Option<f64>,
    stop: Option<watch::Sender<bool>>,
    task: Option<JoinHandle<()>>,
}

impl MetricsFile {
    /// Writes the file now and every [`WRITE_EVERY`] until [`MetricsFile::stop`].
    pub fn start(path: PathBuf, info: RunInfo, tally: Arc<Tally>, started: Instant) -> Self {
        let last_success = previous_last_success(&path);
        let (stop, mut stopped) = watch::channel(false);
        let task = {
            let (path, info, tally) = (path.clone(), info.clone(), tally.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(WRITE_EVERY);
                let mut warned = false;
                loop {
                    tokio::select! {
                        _ = tick.tick() => {}
                        _ = stopped.changed() => break,
                    }
                    let snapshot = tally.snapshot();
                    let figures = Figures {
                        info: info.clone(),
                        states: snapshot.states.clone(),
                        categories: snapshot
                            .categories
                            .iter()
                            .map(|(c, n)| ((*c).to_owned(), *n))
                            .collect(),
                        snapshot,
                        duration: started.elapsed(),
                        last_success,
                        end: None,
                    };
                    if let Err(e) = write_atomic(&path, &render(&figures))
                        && !warned
                    {
                        warned = true;
                        tracing::warn!(path = %path.display(), error = %e, "cannot write the metrics file");
                    }
                }
            })
        };
        Self {
            path,
            info,
            tally,
            started,
            last_success,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the periodic writes (before the last one).
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// The last write: exact counts from the store, how the run ended. The figures are
    /// handed back, for [`Ending::rewrite`] once the reports have judged the exit code.
    pub fn finish(
        &mut self,
        states: BTreeMap<JobState, u64>,
        categories: BTreeMap<String, u64>,
        end: End,
    ) -> Ending {
        let ending = Ending {
            path: self.path.clone(),
            figures: Figures {
                info: self.info.clone(),
                snapshot: self.tally.snapshot(),
                states,
                categories,
                duration: self.started.elapsed(),
                last_success: self.last_success,
                end: None,
            },
        };
        ending.rewrite(end);
        ending
    }
}

/// The figures of a run that has ended, kept for the final word on its exit code.
#[derive(Clone, Debug)]
pub struct Ending {
    pub path: PathBuf,
    pub figures: Figures,
}

impl Ending {
    /// Writes the file with this ending. A run that finished its work is the last success:
    /// exit 0, or 4 (it found discrepancies, which is the reconciliation doing its job and
    /// has its own metric and alert).
    pub fn rewrite(&self, end: End) {
        let mut figures = self.figures.clone();
        if end.exit_code == 0 || end.exit_code == 4 {
            figures.last_success = Some(unix_now());
        }
        figures.end = Some(end);
        if let Err(e) = write_atomic(&self.path, &render(&figures)) {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot write the metrics file");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(end: Option<End>) -> Figures {
        Figures {
            info: RunInfo {
                run_id: 7,
                name: "night\"ly".into(),
                mode: RunMode::Poll,
            },
            snapshot: Snapshot {
                answers: BTreeMap::from([
                    (
                        ("/v1/job_status", crate::engine::tally::Status::Http(200)),
                        9,
                    ),
                    (
                        ("/v1/job_status", crate::engine::tally::Status::NoAnswer),
                        1,
                    ),
                ]),
                ..Snapshot::default()
            },
            states: BTreeMap::from([(JobState::Done, 4)]),
            categories: BTreeMap::from([("Approved".to_owned(), 3)]),
            duration: Duration::from_millis(1500),
            last_success: Some(100.0),
            end,
        }
    }

    /// The last success is read only from a regular file: a FIFO (which would block the
    /// run) or a link (to /dev/zero, or anything) is not read at all.
    #[cfg(unix)]
    #[test]
    fn the_previous_file_is_read_only_when_it_is_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("m.prom");
        std::fs::write(&plain, format!("{LAST_SUCCESS} 1700000000\n")).unwrap();
        assert_eq!(previous_last_success(&plain), Some(1_700_000_000.0));
        let link = dir.path().join("link.prom");
        std::os::unix::fs::symlink(&plain, &link).unwrap();
        assert_eq!(previous_last_success(&link), None);
        let fifo = dir.path().join("fifo.prom");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path and a mode.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert_eq!(previous_last_success(&fifo), None);
    }

    #[test]
    fn exposition_names_labels_and_escapes() {
        let text = render(&figures(None));
        assert!(text.contains("smile_recon_jobs{name=\"night\\\"ly\",state=\"done\"} 4\n"));
        assert!(text.contains("smile_recon_jobs{name=\"night\\\"ly\",state=\"queued\"} 0\n"));
        assert!(text.contains(
            "smile_recon_requests_total{name=\"night\\\"ly\",endpoint=\"/v1/job_status\",status=\"error\"} 1\n"
        ));
        assert!(text.contains("category=\"approved\"} 3\n"));
        assert!(text.contains("# TYPE smile_recon_requests_total counter\n"));
        assert!(text.contains("smile_recon_run_running{name=\"night\\\"ly\"} 1\n"));
        assert!(
            !text.contains("smile_recon_exit_code"),
            "not before the end"
        );
        let end = render(&figures(Some(End {
            exit_code: 4,
            discrepancies: Some(2),
        })));
        assert!(end.contains("smile_recon_exit_code{name=\"night\\\"ly\"} 4\n"));
        assert!(end.contains("smile_recon_discrepancies{name=\"night\\\"ly\"} 2\n"));
    }

    #[test]
    fn the_file_is_replaced_whole_and_keeps_the_last_success() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("smile.prom");
        write_atomic(&path, &render(&figures(None))).unwrap();
        assert_eq!(previous_last_success(&path), Some(100.0));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("smile.prom")],
            "no temporary left"
        );
    }

    #[test]
    fn the_file_is_private_and_never_written_through_a_link() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("smile.prom");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"data").unwrap();
        let planted = dir
            .path()
            .join(format!(".smile.prom.{}.tmp", std::process::id()));
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        std::fs::write(&path, b"old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_atomic(&path, &render(&figures(None))).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"data");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // A link where the file goes is refused, not followed.
        let linked = dir.path().join("linked.prom");
        std::os::unix::fs::symlink(&victim, &linked).unwrap();
        assert!(write_atomic(&linked, "x").is_err());
        assert_eq!(std::fs::read(&victim).unwrap(), b"data");
    }
}
