//! Runs a batch: resolves the configuration, binds the run to its manifest, stages the
//! rows, hands the run to the engine, and turns how it ended into an exit code. Used by
//! `run`, `submit`, `poll` and `resume`.

pub mod config;
pub mod metrics;
pub mod progress;
pub mod services;
pub mod signals;
pub mod staging;
pub mod summary;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::api::{self, SmileClient, SubmitEndpoint};
use crate::engine::{self, Backoff, EngineConfig, Mode, Stop, Tally};
use crate::exit::{Failure, Outcome};
use crate::job_spec::{JobSpec, RunMode};
use crate::manifest::{self, ManifestSource, RowKind};
use crate::store::{DbLock, JobState, NewRun, RunRecord, RunStatus, Store};

pub use config::Layer;
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

fn fatal(e: impl std::fmt::Display) -> Failure {
    Failure::fatal(e.to_string())
}

/// The run this request works on: an unfinished one to resume, or a new one.
struct Plan {
    name: String,
    mode: RunMode,
    source: ManifestSource,
    layer: Layer,
    existing: Option<RunRecord>,
    report: Option<crate::job_spec::ReportSpec>,
}

fn plan(request: &Invocation, store: &Store) -> Result<Plan, Failure> {
    match &request.target {
        Target::Spec(path) => {
            let (spec, name) = JobSpec::load(path)?;
            let source =
                ManifestSource::from_args(spec.manifest.path.clone(), spec.manifest.query.clone());
            let existing = store.unfinished_run_named(&name).map_err(fatal)?;
            let stored = existing
                .as_ref()
                .map(|r| Layer::from_stored(&r.config_json))
                .unwrap_or_default();
            Ok(Plan {
                layer: request
                    .flags
                    .clone()
                    .or(Layer::from_spec(&spec))
                    .or(stored)
                    .or(Layer::defaults()),
                name,
                mode: spec.mode,
                source,
                existing,
                report: request.report.clone().or(spec.report),
            })
        }
        Target::Manifest { mode, source } => {
            let name = format!("{}:{}", mode.as_str(), source.display());
            let existing = store.unfinished_run_named(&name).map_err(fatal)?;
            let stored = existing
                .as_ref()
                .map(|r| Layer::from_stored(&r.config_json))
                .unwrap_or_default();
            Ok(Plan {
                layer: request.flags.clone().or(stored).or(Layer::defaults()),
                name,
                mode: *mode,
                source: source.clone(),
                existing,
                report: request.report.clone(),
            })
        }
        Target::Resume(id) => {
            let run = match id {
                Some(id) => store
                    .run(*id)
                    .map_err(fatal)?
                    .ok_or_else(|| Failure::fatal(format!("no run {id} in this database")))?,
                None => store.latest_run(true).map_err(fatal)?.ok_or_else(|| {
                    Failure::fatal("no unfinished run to resume in this database")
                })?,
            };
            if run.status == RunStatus::Abandoned {
                return Err(Failure::usage(format!(
                    "run {} was abandoned: it is kept in history and never resumed",
                    run.id
                )));
            }
            let mode = run.mode;
            Ok(Plan {
                layer: request
                    .flags
                    .clone()
                    .or(Layer::from_stored(&run.config_json))
                    .or(Layer::defaults()),
                name: run.name.clone(),
                mode,
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

fn engine_mode(mode: RunMode, layer: &Layer) -> Result<Mode, Failure> {
    Ok(match mode {
        RunMode::Poll => Mode::Poll,
        RunMode::Submit => {
            let endpoint = layer.endpoint.unwrap_or(SubmitEndpoint::VerifyAsync);
            if endpoint.endpoint().is_async()
                && layer.callback_url.is_none()
                && layer.callback_listen.is_none()
            {
                return Err(Failure::usage(format!(
                    "--endpoint {} needs --callback-listen ADDR (the built-in receiver) and/or \
                     --callback-url URL (where Smile ID posts results)",
                    endpoint.as_str()
                )));
            }
            Mode::Submit {
                endpoint,
                callback_url: layer.callback_url.clone(),
                callback_grace: layer.callback_grace()?,
            }
        }
    })
}

/// Runs the request to its end. Holds the database lock throughout.
pub async fn execute(request: Invocation) -> Result<Finished, Failure> {
    let started = Instant::now();
    // Out-of-range flags are refused before the database is even opened.
    request.flags.check()?;
    let _lock = DbLock::acquire(&request.db).map_err(fatal)?;
    let mut store = Store::open(&request.db).map_err(fatal)?;
    // The lock is ours: a run still marked running lost its process.
    store.settle_orphans(&_lock).map_err(fatal)?;
    let plan = plan(&request, &store)?;

    // Everything that can be wrong with the configuration is found before the run exists.
    let mut layer = plan.layer.clone();
    layer.check()?;
    // The key's precedence: --api-key-file > SMILE_API_KEY > the spec's or the stored
    // api_key_file. A key in the environment beats a file named by a lower layer.
    if request.flags.api_key_file.is_none()
        && std::env::var_os(crate::cli::settings::API_KEY_ENV).is_some()
    {
        layer.api_key_file = None;
    }
    if plan.mode == RunMode::Poll {
        layer.endpoint = None;
    } else if layer.endpoint.is_none() {
        layer.endpoint = Some(SubmitEndpoint::VerifyAsync);
    }
    let mode = engine_mode(plan.mode, &layer)?;
    let client_config = layer.client_config(request.api_key.clone())?;
    let rate = layer.rate()?;
    let concurrency = layer.concurrency()?;
    let max_attempts = layer.max_attempts()?;
    let deadline = layer.deadline()?;
    let result_timeout = layer.result_timeout()?;
    let poll_interval = layer.poll_interval()?;
    let client = SmileClient::new(client_config).map_err(fatal)?;

    let fingerprint = manifest::fingerprint(&plan.source).map_err(fatal)?;
    let run = match plan.existing {
        Some(run) => {
            if run.status == RunStatus::Finished {
                crate::cli::logging::set_run(run.id);
                crate::cli::logging::say(
                    false,
                    &format!("run {} is finished; nothing to resume", run.id),
                );
                return Ok(Finished {
                    run_id: run.id,
                    outcome: Outcome::Success,
                    report: plan.report,
                    metrics: None,
                });
            }
            if let (Some(started), Some(now)) = (run.endpoint.as_deref(), layer.endpoint)
                && started != now.as_str()
            {
                return Err(Failure::usage(format!(
                    "run {} was started with --endpoint {started}; it cannot continue with \
                     --endpoint {} (resume it without --endpoint)",
                    run.id,
                    now.as_str()
                )));
            }
            if run.manifest_sha256 != fingerprint {
                return Err(Failure::fatal(format!(
                    "{} has changed since run {} started (SHA-256 {} then, {} now); a run \
                     is bound to its manifest: restore the file to resume, or start a new \
                     run in another database",
                    plan.source.display(),
                    run.id,
                    short(&run.manifest_sha256),
                    short(&fingerprint)
                )));
            }
            store
                .set_run_config(run.id, &layer.to_json())
                .map_err(fatal)?;
            crate::cli::logging::set_run(run.id);
            tracing::info!(run = run.id, name = %run.name, "resuming run");
            run
        }
        None => {
            let id = store
                .create_run(&NewRun {
                    name: plan.name.clone(),
                    mode: plan.mode,
                    endpoint: layer.endpoint.map(|e| e.as_str().to_owned()),
                    manifest_path: plan.source.path().display().to_string(),
                    manifest_query: match &plan.source {
                        ManifestSource::Sqlite { query, .. } => Some(query.clone()),
                        ManifestSource::Csv(_) => None,
                    },
                    manifest_sha256: fingerprint,
                    config_json: layer.to_json(),
                })
                .map_err(fatal)?;
            crate::cli::logging::set_run(id);
            tracing::info!(run = id, name = %plan.name, "new run");
            store
                .run(id)
                .map_err(fatal)?
                .ok_or_else(|| Failure::fatal(format!("run {id} vanished after creation")))?
        }
    };

    if run.status == RunStatus::Staging {
        let (kind, rules) = match plan.mode {
            RunMode::Submit => {
                // Only rows still to validate need the current id types.
                let fetched = services::fetch(&client).await;
                let (rules, _) =
                    services::resolve(&store, client.base_url(), fetched, layer.unknown_id_types());
                (RowKind::Verify, rules)
            }
            RunMode::Poll => (RowKind::Poll, api::id_types::IdTypes::builtin()),
        };
        staging::stage(&mut store, &run, &plan.source, kind, &rules)?;
    }

    let (counts, categories) = store.counts(run.id).map_err(fatal)?;
    let tally = Arc::new(Tally::from_counts(&counts, &categories));
    let execution = store
        .start_execution(run.id, &request.command)
        .map_err(fatal)?;
    store
        .set_run_status(run.id, RunStatus::Running)
        .map_err(fatal)?;

    let config = EngineConfig {
        run_id: run.id,
        mode,
        concurrency,
        rate,
        burst: layer.burst.unwrap_or(config::DEFAULT_BURST),
        rate_jitter: RATE_JITTER,
        max_attempts,
        deadline,
        result_timeout,
        backoff: Backoff {
            poll_initial: poll_interval,
            ..Backoff::default()
        },
        breaker_threshold: BREAKER_THRESHOLD,
        shutdown_grace: SHUTDOWN_GRACE,
        callback_listen: layer.callback_listen,
        callback: engine::callbacks::Policy {
            confirm: layer.callback_confirm.unwrap_or_default(),
            max_age: layer.callback_max_age()?,
            limits: engine::callbacks::Limits::default(),
        },
    };
    let shutdown = signals::listen();
    let progress = progress::Progress::start(tally.clone(), request.progress);
    let mut metrics_file = layer.metrics_file.clone().map(|path| {
        metrics::MetricsFile::start(
            path,
            metrics::RunInfo {
                run_id: run.id,
                name: run.name.clone(),
                mode: run.mode,
            },
            tally.clone(),
            started,
        )
    });
    let result = engine::run(config, client, store, tally.clone(), shutdown).await;
    progress.finish().await;
    if let Some(m) = metrics_file.as_mut() {
        m.stop().await;
    }

    // The engine's connection is gone with its writer; the ending is recorded afresh, as
    // soon as the engine has stopped (the counts below are the report's, not the run's).
    let store = Store::open(&request.db).map_err(fatal)?;
    let (ending, message) = match &result {
        Ok(report) => match &report.stop {
            Stop::Drained | Stop::Deadline => ("finished".to_owned(), None),
            Stop::Interrupted => ("interrupted".to_owned(), None),
            Stop::Tripped(why) => (
                format!("stopped: {why}"),
                Some(format!(
                    "stopped after repeated systemic failures: {why}; the remaining jobs are \
                     left pending, fix the cause and run `smile-recon resume --run {}`",
                    run.id
                )),
            ),
        },
        Err(e) => (format!("failed: {e}"), Some(e.to_string())),
    };
    store.end_execution(execution, &ending).map_err(fatal)?;
    // One count of the run's jobs serves the exit code, the run's status and the summary
    // (each is a scan of the run's rows).
    let (counts, categories) = store.counts(run.id).map_err(fatal)?;
    let outcome = match &result {
        Ok(report) => match &report.stop {
            Stop::Drained | Stop::Deadline => {
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
            Stop::Interrupted => Outcome::Interrupted,
            Stop::Tripped(_) => Outcome::Fatal,
        },
        Err(_) => Outcome::Fatal,
    };
    let active = counts
        .iter()
        .filter(|(s, _)| !s.is_final())
        .map(|(_, n)| *n)
        .sum::<u64>();
    let status = if active == 0 {
        RunStatus::Finished
    } else {
        RunStatus::Interrupted
    };
    store.set_run_status(run.id, status).map_err(fatal)?;

    let ending = metrics_file.as_mut().map(|m| {
        m.finish(
            counts.clone(),
            categories.clone(),
            metrics::End {
                exit_code: outcome.code(),
                discrepancies: None,
            },
        )
    });
    let summary =
        summary::FinalSummary::with_counts(&store, run.id, counts, categories, started.elapsed())
            .map_err(fatal)?;
    print!("{}", summary.render());
    if crate::cli::logging::json() {
        summary.log();
    }
    if let Some(message) = message {
        return Err(Failure { outcome, message });
    }
    if outcome == Outcome::Interrupted {
        crate::cli::logging::say(
            false,
            &format!(
                "run {} interrupted; `smile-recon resume --run {}` continues it",
                run.id, run.id
            ),
        );
    }
    Ok(Finished {
        run_id: run.id,
        outcome,
        report: plan.report.or_else(|| layer.report()),
        metrics: ending,
    })
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}
