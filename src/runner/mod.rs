//! Runs a batch in four phases: [`bind`] (the configuration resolved, the run bound to
//! its manifest), [`stage`] (the rows into the database), [`run_engine`] and [`close`] (how
//! it ended recorded and turned into an exit code). Used by
//! `run`, `submit`, `poll` and `resume`.

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
use crate::exit::{Error, Outcome};
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
}

/// How a run ended, for the caller (the `demo` and tests read it).
#[derive(Clone, Debug)]
pub struct Finished {
    pub run_id: i64,
    pub outcome: Outcome,
    pub report: Option<crate::job_spec::ReportSpec>,
    /// The metrics file's last figures (`--metrics-file`), rewritten with the final exit
    /// code once the reports have judged it.
    pub metrics: Option<metrics::Ending>,
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
    report: Option<ReportSpec>,
}

fn plan(request: &Invocation, store: &Store) -> Result<Plan, Error> {
    let flags = request.flags.clone();
    let key_in_env = credentials::key_in_environment();
    let stored = |run: Option<&RunRecord>| {
        run.map(|r| Layer::from_stored(&r.config_json))
            .unwrap_or_default()
    };
    match &request.target {
        Target::Spec(path) => {
            let (spec, name) = JobSpec::load(path)?;
            let existing = store.unfinished_run_named(&name)?;
            let lower = spec.layer().or(stored(existing.as_ref()));
            Ok(Plan {
                layer: Layer::merge(flags, lower, key_in_env),
                source: ManifestSource::from_args(
                    spec.manifest.path.clone(),
                    spec.manifest.query.clone(),
                ),
                name,
                mode: spec.mode,
                existing,
                report: request.report.clone().or(spec.report),
            })
        }
        Target::Manifest { mode, source } => {
            let name = format!("{}:{}", mode.as_str(), source.display());
            let existing = store.unfinished_run_named(&name)?;
            Ok(Plan {
                layer: Layer::merge(flags, stored(existing.as_ref()), key_in_env),
                name,
                mode: *mode,
                source: source.clone(),
                existing,
                report: request.report.clone(),
            })
        }
        Target::Resume(id) => {
            let run = match id {
                Some(id) => store.run(*id)?.ok_or(Error::NoSuchRun(*id))?,
                None => store.latest_run(true)?.ok_or(Error::NothingToResume)?,
            };
            if run.status == RunStatus::Abandoned {
                return Err(Error::usage(format!(
                    "run {} was abandoned: it is kept in history and never resumed",
                    run.id
                )));
            }
            Ok(Plan {
                layer: Layer::merge(flags, stored(Some(&run)), key_in_env),
                name: run.name.clone(),
                mode: run.mode,
                source: ManifestSource::from_args(
                    PathBuf::from(&run.manifest_path),
                    run.manifest_query.clone(),
                ),
                existing: Some(run),
                report: request.report.clone(),
            })
        }
    }
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

/// What [`bind`] found: a run to work, or a finished one (nothing to do).
enum Binding {
    Run(Box<Bound>),
    Finished(Box<Finished>),
}

/// Runs the request to its end. Holds the database lock throughout.
pub async fn execute(request: Invocation) -> Result<Finished, Error> {
    let started = Instant::now();
    let mut bound = match bind(&request)? {
        Binding::Run(bound) => *bound,
        Binding::Finished(finished) => return Ok(*finished),
    };
    stage(&mut bound).await?;
    let ran = run_engine(&request, bound, started).await?;
    close(&request.db, ran, started)
}

/// Phase 1: the database locked and opened, the layers merged and the settings resolved
/// (everything that can be wrong with the configuration is found before the run exists),
/// then the run resumed (its manifest unchanged) or created.
fn bind(request: &Invocation) -> Result<Binding, Error> {
    // Out-of-range flags are refused before the database is even opened.
    request.flags.check()?;
    let lock = DbLock::acquire(&request.db)?;
    let store = Store::open(&request.db)?;
    // The lock is ours: a run still marked running lost its process.
    store.settle_orphans(&lock)?;
    let plan = plan(request, &store)?;
    let settings = Settings::resolve(&plan.layer, plan.mode)?;
    let credentials = settings.credentials(request.api_key.clone())?;
    let client = SmileClient::new(settings.client_config(credentials)?)
        .map_err(|e| Error::fatal(e.to_string()))?;
    let fingerprint = manifest::fingerprint(&plan.source)?;
    let run = match plan.existing {
        Some(run) if run.status == RunStatus::Finished => {
            crate::log::set_run(run.id);
            crate::log::say(
                false,
                &format!("run {} is finished; nothing to resume", run.id),
            );
            return Ok(Binding::Finished(Box::new(Finished {
                run_id: run.id,
                outcome: Outcome::Success,
                report: plan.report,
                metrics: None,
            })));
        }
        Some(run) => resume_run(&store, run, &settings, &plan.source, &fingerprint)?,
        None => {
            let id = store.create_run(&NewRun {
                name: plan.name.clone(),
                mode: plan.mode,
                endpoint: settings.layer.endpoint.map(|e| e.as_str().to_owned()),
                manifest_path: plan.source.path().display().to_string(),
                manifest_query: match &plan.source {
                    ManifestSource::Sqlite { query, .. } => Some(query.clone()),
                    ManifestSource::Csv(_) => None,
                },
                manifest_sha256: fingerprint,
                config_json: settings.layer.to_json(),
            })?;
            crate::log::set_run(id);
            tracing::info!(run = id, name = %plan.name, "new run");
            store
                .run(id)?
                .ok_or_else(|| Error::fatal(format!("run {id} vanished after creation")))?
        }
    };
    Ok(Binding::Run(Box::new(Bound {
        lock,
        store,
        run,
        settings,
        client,
        mode: plan.mode,
        source: plan.source,
        report: plan.report,
    })))
}

/// An unfinished run continues only on its own endpoint and its own manifest; it takes the
/// configuration resolved now.
fn resume_run(
    store: &Store,
    run: RunRecord,
    settings: &Settings,
    source: &ManifestSource,
    fingerprint: &str,
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
    Ok(())
}

/// How the engine left the run, for [`close`].
struct Ran {
    _lock: DbLock,
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
    let shutdown = signals::listen();
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
        _lock: lock,
        report: report.or_else(|| settings.report.clone()),
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
                Some(Error::Breaker { run: run_id, why }),
            ),
        },
        Err(e) => (format!("failed: {e}"), Some(Error::Engine(e.to_string()))),
    };
    store.end_execution(ran.execution, &ending)?;
    // One count of the run's jobs serves the exit code, the run's status and the summary
    // (each is a scan of the run's rows).
    let (counts, categories) = store.counts(run_id)?;
    let outcome = match (&error, interrupted) {
        (Some(_), _) => Outcome::Fatal,
        (None, true) => Outcome::Interrupted,
        (None, false) => {
            let errors: u64 = [JobState::Failed, JobState::GaveUp, JobState::Invalid]
                .iter()
                .filter_map(|s| counts.get(s))
                .sum();
            if errors > 0 {
                Outcome::JobErrors
            } else {
                Outcome::Success
            }
        }
    };
    let active: u64 = counts
        .iter()
        .filter(|(s, _)| !s.is_final())
        .map(|(_, n)| *n)
        .sum();
    let status = if active == 0 {
        RunStatus::Finished
    } else {
        RunStatus::Interrupted
    };
    store.set_run_status(run_id, status)?;
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
    if outcome == Outcome::Interrupted {
        let text =
            format!("run {run_id} interrupted; `smile-recon resume --run {run_id}` continues it");
        crate::log::say(false, &text);
    }
    Ok(Finished {
        run_id,
        outcome,
        report: ran.report,
        metrics,
    })
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}
