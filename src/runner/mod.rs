//! Runs a batch in four phases: [`bind`] (the configuration resolved, the run bound to
//! its manifest), [`stage`] (the rows into the database), [`run_engine`] and [`close`] (how
//! it ended recorded and turned into an exit code). Used by
//! `run`, `submit`, `poll` and `resume`.

pub mod identity;
pub mod metrics;
pub mod progress;
pub mod services;
pub mod signals;
pub mod staging;
pub mod summary;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::api::{self, SmileClient};
use crate::config::{Settings, credentials};
use crate::engine::{self, Backoff, EngineConfig, EngineEnd, EngineError, Stop, Tally};
use crate::exit::{Error, ExitStatus, FailOn};
use crate::job_spec::{JobSpec, ReportSpec, RunMode};
use crate::manifest::{self, ManifestSource, RowKind};
use crate::store::{DbLock, JobState, NewRun, RunRecord, RunStatus, Store};

pub use crate::config::Layer;
pub use progress::ProgressMode;

/// Consecutive systemic failures (bad credentials, host down) that stop a run.
pub const BREAKER_THRESHOLD: u32 = 5;
/// How long in-flight requests may take to finish after Ctrl-C / SIGTERM.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Up to this much extra wait per request, so that released workers do not fire together.
pub const RATE_JITTER: Duration = Duration::from_millis(5);

/// What the command names: a job spec, a manifest, or a run to resume.
#[derive(Clone, Debug)]
pub enum Target {
    Spec(PathBuf),
    Manifest {
        mode: RunMode,
        source: ManifestSource,
    },
    Resume(Option<i64>),
}

/// One invocation of `run`, `submit`, `poll` or `resume`.
#[derive(Clone, Debug)]
pub struct Invocation {
    /// The command, as recorded with the execution (`submit`, `run jobs/x.toml`, ...).
    pub command: String,
    pub target: Target,
    /// Flags and their environment variables: the highest layer.
    pub flags: Layer,
    pub db: PathBuf,
    pub progress: ProgressMode,
    /// The job spec's `[report]` section, handed back in [`Finished`].
    pub report: Option<crate::job_spec::ReportSpec>,
    /// A key held in memory (the demo's own sandbox); otherwise it is read from
    /// `SMILE_API_KEY` or the key file.
    pub api_key: Option<crate::api::ApiKey>,
    /// `--again`: the identity finished before; this is a deliberate new run of it.
    pub again: bool,
}

/// How a run ended, for the caller (the `demo` and tests read it).
#[derive(Clone, Debug)]
pub struct Finished {
    pub run_id: i64,
    pub outcome: ExitStatus,
    pub report: Option<crate::job_spec::ReportSpec>,
    /// The metrics file's last figures (`--metrics-file`), rewritten with the final exit
    /// code once the reports have judged it.
    pub metrics: Option<metrics::Ending>,
    /// Which findings set the exit code (the run's stored `fail_on`).
    pub fail_on: FailOn,
    /// Every job is final but the run is `finished` only once its reports are written:
    /// [`Finished::settle`] records it. A process killed before then leaves the run
    /// unfinished, so the same command again writes the reports and sends nothing.
    pub reports_pending: bool,
    /// The database lock while the reports are pending, held until the run is settled.
    pub lock: Option<Arc<DbLock>>,
}

impl Finished {
    /// Marks a run whose reports were pending `finished` (they are written now) and lets
    /// the database go.
    pub fn settle(self, db: &std::path::Path) -> Result<(), Error> {
        if self.reports_pending {
            Store::open(db)?.set_run_status(self.run_id, RunStatus::Finished)?;
        }
        Ok(())
    }
}

/// The run this request works on, before its configuration is resolved: an unfinished run
/// to resume, or a new one.
struct Plan {
    name: String,
    mode: RunMode,
    source: ManifestSource,
    /// Every layer merged, the defaults included.
    layer: Layer,
    existing: Option<RunRecord>,
    /// A new run's identifying key and generation.
    key: String,
    generation: i64,
    report: Option<ReportSpec>,
    fingerprint: String,
}

/// The stored configuration of `run`, as a layer (nothing for a new run).
fn stored(run: Option<&RunRecord>) -> Layer {
    run.map(|r| Layer::from_stored(&r.config_json))
        .unwrap_or_default()
}

fn plan(request: &Invocation, store: &mut Store, lock: &DbLock) -> Result<Plan, Error> {
    let (name, mode, source, spec_layer, spec_report) = match &request.target {
        Target::Spec(path) => {
            let (spec, name) = JobSpec::load(path)?;
            let source =
                ManifestSource::from_args(spec.manifest.path.clone(), spec.manifest.query.clone());
            (name, spec.mode, source, spec.layer(), spec.report)
        }
        Target::Manifest { mode, source } => {
            let name = format!("{}:{}", mode.as_str(), source.display());
            (name, *mode, source.clone(), Layer::default(), None)
        }
        Target::Resume(id) => return plan_resume(request, store, *id),
    };
    let fingerprint = manifest::fingerprint(&source)?;
    let given = request.flags.run_key.clone().or(spec_layer.run_key.clone());
    let key = identity::key(given.as_deref(), &fingerprint);
    let policy = request
        .flags
        .on_changed_manifest
        .or(spec_layer.on_changed_manifest)
        .unwrap_or_default();
    let who = identity::Identity {
        name: &name,
        key: &key,
        explicit: given.is_some(),
        db: &request.db,
    };
    let choice = identity::choose(store, lock, &who, &fingerprint, policy, request.again)?;
    let (existing, generation) = match choice {
        identity::Choice::Resume(run) => {
            let generation = run.generation;
            (Some(*run), generation)
        }
        identity::Choice::New {
            generation,
            again_of,
        } => {
            if let Some(old) = again_of {
                crate::log::say(
                    false,
                    &format!(
                        "--again: a new run of {name} (generation {generation}); run {old} \
                         finished it before. Its rows are sent again, under new job_ids where \
                         they are derived (job_ids the manifest gives are sent as given)"
                    ),
                );
            }
            (None, generation)
        }
    };
    let mut flags = request.flags.clone();
    flags.run_key = Some(key.clone());
    let lower = spec_layer.or(stored(existing.as_ref()));
    Ok(Plan {
        layer: Layer::merge(flags, lower, credentials::key_in_environment()),
        name,
        mode,
        source,
        existing,
        key,
        generation,
        report: request.report.clone().or(spec_report),
        fingerprint,
    })
}

/// `resume [--run ID]`: the run named, or the newest unfinished one.
fn plan_resume(request: &Invocation, store: &Store, id: Option<i64>) -> Result<Plan, Error> {
    let run = match id {
        Some(id) => store.run(id)?.ok_or(Error::NoSuchRun(id))?,
        None => store.latest_run(true)?.ok_or_else(|| {
            Error::NothingToResume(format!("no unfinished run in {}", request.db.display()))
        })?,
    };
    if run.status == RunStatus::Abandoned {
        return Err(Error::usage(format!(
            "run {} was abandoned: it is kept in history and never resumed",
            run.id
        )));
    }
    let source = ManifestSource::from_args(
        PathBuf::from(&run.manifest_path),
        run.manifest_query.clone(),
    );
    let fingerprint = if run.status == RunStatus::Finished {
        run.manifest_sha256.clone()
    } else {
        manifest::fingerprint(&source)?
    };
    Ok(Plan {
        layer: Layer::merge(
            request.flags.clone(),
            stored(Some(&run)),
            credentials::key_in_environment(),
        ),
        name: run.name.clone(),
        mode: run.mode,
        source,
        key: run.run_key.clone().unwrap_or_default(),
        generation: run.generation,
        existing: Some(run),
        report: request.report.clone(),
        fingerprint,
    })
}

/// A run bound to its manifest and its resolved settings, the database locked.
struct Bound {
    lock: DbLock,
    store: Store,
    run: RunRecord,
    settings: Settings,
    client: SmileClient,
    mode: RunMode,
    source: ManifestSource,
    report: Option<ReportSpec>,
}

/// Runs the request to its end. Holds the database lock throughout.
pub async fn execute(request: Invocation) -> Result<Finished, Error> {
    let started = Instant::now();
    let mut bound = bind(&request)?;
    stage(&mut bound).await?;
    let ran = run_engine(&request, bound, started).await?;
    close(&request.db, ran, started)
}

/// Phase 1: the database locked and opened, the layers merged and the settings resolved
/// (everything that can be wrong with the configuration is found before the run exists),
/// then the run resumed (its manifest unchanged) or created, and its report folder made
/// ready before anything is sent.
fn bind(request: &Invocation) -> Result<Bound, Error> {
    // Out-of-range flags are refused before the database is even opened.
    request.flags.check()?;
    if matches!(request.target, Target::Resume(_)) && !request.db.exists() {
        return Err(Error::fatal(format!(
            "{}: no such database, so nothing to resume (pass --db PATH or set \
             SMILE_RECON_DB)",
            request.db.display()
        )));
    }
    let lock = DbLock::acquire(&request.db)?;
    let mut store = Store::open(&request.db)?;
    // The lock is ours: a run still marked running lost its process.
    store.settle_orphans(&lock)?;
    let plan = plan(request, &mut store, &lock)?;
    let settings = Settings::resolve(&plan.layer, plan.mode)?;
    let credentials = settings.credentials(request.api_key.clone())?;
    let client = SmileClient::new(settings.client_config(credentials)?)
        .map_err(|e| Error::fatal(e.to_string()))?;
    let run = match plan.existing {
        Some(ref run) if run.status == RunStatus::Finished => {
            return Err(Error::NothingToResume(format!(
                "run {} is finished",
                run.id
            )));
        }
        Some(run) => resume_run(
            &store,
            run,
            &settings,
            (&plan.source, &plan.fingerprint),
            &request.db,
        )?,
        None => create_run(&store, &plan, &settings)?,
    };
    let report = ready_reports(plan.report.or_else(|| settings.report.clone()), &run)?;
    Ok(Bound {
        lock,
        store,
        run,
        settings,
        client,
        mode: plan.mode,
        source: plan.source,
        report,
    })
}

/// A new run of the plan's identity, in the `staging` status.
fn create_run(store: &Store, plan: &Plan, settings: &Settings) -> Result<RunRecord, Error> {
    let id = store.create_run(&NewRun {
        name: plan.name.clone(),
        mode: plan.mode,
        endpoint: settings.layer.endpoint.map(|e| e.as_str().to_owned()),
        manifest_path: plan.source.path().display().to_string(),
        manifest_query: match &plan.source {
            ManifestSource::Sqlite { query, .. } => Some(query.clone()),
            ManifestSource::Csv(_) => None,
        },
        manifest_sha256: plan.fingerprint.clone(),
        config_json: settings.layer.to_json(),
        run_key: plan.key.clone(),
        generation: plan.generation,
    })?;
    crate::log::set_run(id);
    tracing::info!(run = id, name = %plan.name, key = %identity::short(&plan.key),
        generation = plan.generation, "new run");
    store
        .run(id)?
        .ok_or_else(|| Error::fatal(format!("run {id} vanished after creation")))
}

/// The run's reports with `{run}`, `{name}` and `{date}` in their folder filled in, the
/// folder created and proved writable now, before the first request.
fn ready_reports(report: Option<ReportSpec>, run: &RunRecord) -> Result<Option<ReportSpec>, Error> {
    let Some(mut report) = report else {
        return Ok(None);
    };
    let id = identity::path_component(&run.id.to_string());
    let name = identity::path_component(&run.name);
    let today = identity::path_component(&identity::today());
    let vars = [
        ("run", id.as_str()),
        ("name", name.as_str()),
        ("date", today.as_str()),
    ];
    report.out = PathBuf::from(identity::expand(&report.out.display().to_string(), &vars));
    let cannot = |e: std::io::Error| {
        Error::fatal(format!(
            "report folder {}: {e} (checked before anything is sent)",
            report.out.display()
        ))
    };
    // A folder made here is private (0700), as `report` makes one; an existing one is kept.
    crate::files::create_private_dir_all(&report.out).map_err(cannot)?;
    crate::files::probe_writable(&report.out).map_err(cannot)?;
    Ok(Some(report))
}

/// An unfinished run continues only on its own endpoint and its own manifest; it takes the
/// configuration resolved now.
fn resume_run(
    store: &Store,
    run: RunRecord,
    settings: &Settings,
    (source, fingerprint): (&ManifestSource, &str),
    db: &std::path::Path,
) -> Result<RunRecord, Error> {
    if let (Some(started), Some(now)) = (run.endpoint.as_deref(), settings.layer.endpoint)
        && started != now.as_str()
    {
        return Err(Error::EndpointChanged {
            run: run.id,
            started: started.to_owned(),
            now: now.as_str(),
        });
    }
    if run.manifest_sha256 != fingerprint {
        return Err(Error::ManifestChanged {
            manifest: source.display().to_string(),
            run: run.id,
            then: short(&run.manifest_sha256).to_owned(),
            now: short(fingerprint).to_owned(),
            abandon: identity::abandon_command(db, run.id),
        });
    }
    store.set_run_config(run.id, &settings.layer.to_json())?;
    crate::log::set_run(run.id);
    tracing::info!(run = run.id, name = %run.name, "resuming run");
    Ok(run)
}

/// Phase 2: the rows not yet staged, validated (a submit run's against the id types
/// `/v1/services` gives now) and written to the database.
async fn stage(bound: &mut Bound) -> Result<(), Error> {
    if bound.run.status != RunStatus::Staging {
        return Ok(());
    }
    let (kind, rules) = match bound.mode {
        RunMode::Submit => {
            // Only rows still to validate need the current id types.
            let fetched = services::fetch(&bound.client).await;
            let (rules, _) = services::resolve(
                &bound.store,
                bound.client.base_url(),
                fetched,
                bound.settings.unknown_id_types,
            );
            (RowKind::Verify, rules)
        }
        RunMode::Poll => (RowKind::Poll, api::id_types::IdTypes::builtin()),
    };
    staging::stage(&mut bound.store, &bound.run, &bound.source, kind, &rules)?;
    if !bound.store.has_jobs(bound.run.id)? && bound.settings.layer.allow_empty != Some(true) {
        let why = "abandoned: its manifest has no rows";
        bound.store.abandon_run(&bound.lock, bound.run.id, why)?;
        return Err(Error::EmptyManifest {
            manifest: bound.source.display().to_string(),
            run: bound.run.id,
        });
    }
    Ok(())
}

/// How the engine left the run, for [`close`].
struct Ran {
    lock: DbLock,
    fail_on: FailOn,
    run: RunRecord,
    execution: i64,
    result: Result<EngineEnd, EngineError>,
    metrics_file: Option<metrics::MetricsFile>,
    report: Option<ReportSpec>,
}

/// Phase 3: a new execution of the run, the engine run to its stop with the progress
/// display and the metrics file beside it.
async fn run_engine(request: &Invocation, bound: Bound, started: Instant) -> Result<Ran, Error> {
    let Bound {
        lock,
        store,
        run,
        settings,
        client,
        report,
        ..
    } = bound;
    let (counts, categories) = store.counts(run.id)?;
    let tally = Arc::new(Tally::from_counts(&counts, &categories));
    let execution = store.start_execution(run.id, &request.command)?;
    store.set_run_status(run.id, RunStatus::Running)?;
    let config = engine_config(run.id, &settings);
    let shutdown = signals::listen(identity::resume_command(&request.db, run.id));
    let progress = progress::Progress::start(tally.clone(), request.progress);
    let mut metrics_file = settings.metrics_file.clone().map(|path| {
        let info = metrics::RunInfo {
            run_id: run.id,
            name: run.name.clone(),
            mode: run.mode,
        };
        metrics::MetricsFile::start(path, info, tally.clone(), started)
    });
    let result = engine::run(config, client, store, tally, shutdown).await;
    progress.finish().await;
    if let Some(m) = metrics_file.as_mut() {
        m.stop().await;
    }
    Ok(Ran {
        lock,
        fail_on: settings.layer.fail_on.unwrap_or_default(),
        report,
        run,
        execution,
        result,
        metrics_file,
    })
}

/// The engine's configuration: the run's settings and the runner's fixed policies.
fn engine_config(run_id: i64, settings: &Settings) -> EngineConfig {
    EngineConfig {
        run_id,
        mode: settings.mode.clone(),
        concurrency: settings.concurrency,
        rate: settings.rate,
        burst: settings.burst,
        rate_jitter: RATE_JITTER,
        max_attempts: settings.max_attempts,
        deadline: settings.deadline,
        result_timeout: settings.result_timeout,
        keep_pii: settings.keep_pii,
        backoff: Backoff {
            poll_initial: settings.poll_interval,
            ..Backoff::default()
        },
        breaker_threshold: BREAKER_THRESHOLD,
        shutdown_grace: SHUTDOWN_GRACE,
        callback_listen: settings.callback_listen,
        callback: settings.callback_policy(),
    }
}

/// Phase 4: how the execution ended recorded, the run's status and exit outcome from one
/// count of its jobs, the metrics file's last figures and the summary printed.
fn close(db: &std::path::Path, mut ran: Ran, started: Instant) -> Result<Finished, Error> {
    // The engine's connection is gone with its writer; the ending is recorded afresh, as
    // soon as the engine has stopped (the counts below are the report's, not the run's).
    let store = Store::open(db)?;
    let run_id = ran.run.id;
    let interrupted = matches!(&ran.result, Ok(end) if end.stop == Stop::Interrupted);
    let (ending, error) = match ran.result {
        Ok(EngineEnd { stop, .. }) => match stop {
            Stop::Drained | Stop::Deadline => ("finished".to_owned(), None),
            Stop::Interrupted => ("interrupted".to_owned(), None),
            Stop::Tripped(why) => (
                format!("stopped: {why}"),
                Some(Error::Breaker {
                    run: run_id,
                    why,
                    resume: identity::resume_command(db, run_id),
                }),
            ),
        },
        Err(e) => (format!("failed: {e}"), Some(Error::Engine(e.to_string()))),
    };
    store.end_execution(ran.execution, &ending)?;
    // One count of the run's jobs serves the exit code, the run's status and the summary
    // (each is a scan of the run's rows).
    let (counts, categories) = store.counts(run_id)?;
    let outcome = outcome_of(error.is_some(), interrupted, &counts);
    let active: u64 = counts
        .iter()
        .filter(|(s, _)| !s.is_final())
        .map(|(_, n)| *n)
        .sum();
    // With reports to write the run stays `running` (this process holds the lock) until
    // they are: see [`Finished::settle`].
    let reports_pending = active == 0 && ran.report.is_some();
    let status = match (active, reports_pending) {
        (0, true) => RunStatus::Running,
        (0, false) => RunStatus::Finished,
        _ => RunStatus::Interrupted,
    };
    if reports_pending {
        store.mark_reports_pending(run_id)?;
    } else {
        store.set_run_status(run_id, status)?;
    }
    let metrics = ran.metrics_file.as_mut().map(|m| {
        let end = metrics::End {
            exit_code: outcome.code(),
            discrepancies: None,
        };
        m.finish(counts.clone(), categories.clone(), end)
    });
    let summary =
        summary::FinalSummary::with_counts(&store, run_id, counts, categories, started.elapsed())?;
    print!("{}", summary.render());
    if crate::log::json() {
        summary.log();
    }
    if let Some(error) = error {
        return Err(error);
    }
    if outcome == ExitStatus::Interrupted {
        let text = format!(
            "run {run_id} interrupted; `{}` continues it",
            identity::resume_command(db, run_id)
        );
        crate::log::say(false, &text);
    }
    Ok(Finished {
        run_id,
        outcome,
        report: ran.report,
        metrics,
        fail_on: ran.fail_on,
        reports_pending,
        lock: reports_pending.then(|| Arc::new(ran.lock)),
    })
}

/// The exit outcome of an execution from how the engine stopped and the run's counts.
fn outcome_of(
    failed: bool,
    interrupted: bool,
    counts: &std::collections::BTreeMap<JobState, u64>,
) -> ExitStatus {
    if failed {
        return ExitStatus::Fatal;
    }
    if interrupted {
        return ExitStatus::Interrupted;
    }
    let errors: u64 = [JobState::Failed, JobState::GaveUp, JobState::Invalid]
        .iter()
        .filter_map(|s| counts.get(s))
        .sum();
    if errors > 0 {
        ExitStatus::JobErrors
    } else {
        ExitStatus::Success
    }
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn run_named(name: &str) -> RunRecord {
        RunRecord {
            id: 7,
            name: name.into(),
            mode: RunMode::Poll,
            endpoint: None,
            manifest_path: "m.csv".into(),
            manifest_query: None,
            manifest_sha256: "0".repeat(64),
            config_json: "{}".into(),
            status: RunStatus::Staging,
            staged_rows: 0,
            created_at: 0,
            updated_at: 0,
            finished_at: None,
            run_key: None,
            generation: 1,
        }
    }

    pub(super) fn spec(out: &std::path::Path) -> ReportSpec {
        ReportSpec {
            formats: vec!["json".into()],
            out: out.to_owned(),
            fail_on: None,
        }
    }

    #[test]
    fn the_write_check_never_writes_through_a_planted_link() {
        let dir = tempfile::tempdir().unwrap();
        let rep = dir.path().join("rep");
        std::fs::create_dir(&rep).unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"data").unwrap();
        let planted = rep.join(format!(".smile-recon-write-check-{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        ready_reports(Some(spec(&rep)), &run_named("n")).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"data");
        assert!(std::fs::symlink_metadata(&planted).unwrap().is_symlink());
        assert_eq!(std::fs::read_dir(&rep).unwrap().count(), 1, "no probe left");
    }

    #[test]
    fn a_report_folder_the_run_creates_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("reports").join("nightly");
        ready_reports(Some(spec(&out)), &run_named("n")).unwrap();
        for made in [&out, &dir.path().join("reports")] {
            let mode = std::fs::metadata(made).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", made.display());
        }
    }

    #[test]
    fn a_name_of_dots_stays_inside_the_report_folder() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("a").join("b");
        std::fs::create_dir_all(&base).unwrap();
        let out = base.join("{name}/{name}/x-{run}");
        let ready = ready_reports(Some(spec(&out)), &run_named(".."))
            .unwrap()
            .unwrap();
        assert_eq!(ready.out, base.join("__/__/x-7"));
        assert!(!dir.path().join("a").join("x-7").exists());
    }
}
