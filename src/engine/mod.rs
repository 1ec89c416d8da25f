//! The engine: a dispatcher that owns the run's progress, `--concurrency` workers that
//! each do one request at a time, one writer that commits state changes, and (for async
//! submissions) a callback receiver. Reporters only read the [`tally::Tally`].

pub mod breaker;
pub mod callbacks;
pub mod dispatcher;
pub mod outcome;
pub mod retry;
pub mod tally;
pub mod worker;
pub mod writer;

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::api::models::IdInfo;
use crate::api::{SmileClient, SubmitEndpoint};
use crate::store::{Store, StoreError, WriteOp, now_ms};

pub use dispatcher::Stop;
pub use retry::Backoff;
pub use tally::{Snapshot, Tally};

/// What a staged verify row carries into a submission (the store's `input_json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubmitInput {
    pub id_info: IdInfo,
    /// Extra `partner_params` from unknown manifest columns.
    #[serde(default)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Mode {
    Submit {
        endpoint: SubmitEndpoint,
        /// Where Smile ID posts results (async endpoints).
        callback_url: Option<String>,
        /// How long to wait for a callback before polling job_status.
        callback_grace: Duration,
    },
    Poll,
}

/// `--result-timeout`'s default: an hour for a job's result to arrive. Smile ID answers
/// an Identity Verification in seconds; the official SDKs stop polling after about 80 s.
pub const DEFAULT_RESULT_TIMEOUT: Duration = Duration::from_secs(3600);

#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub run_id: i64,
    pub mode: Mode,
    pub concurrency: usize,
    /// Requests per second across all workers; `None`: unlimited.
    pub rate: Option<f64>,
    pub burst: u32,
    /// Each request waits up to this much more than the limiter asks, so that workers
    /// released together do not hit the server in the same instant.
    pub rate_jitter: Duration,
    pub max_attempts: u32,
    /// From the start of this execution.
    pub deadline: Option<Duration>,
    /// How long one job may wait for its result after its first request before it gives
    /// up ("still pending at the deadline"): nothing waits for ever.
    pub result_timeout: Duration,
    pub backoff: Backoff,
    pub breaker_threshold: u32,
    /// On a signal, how long in-flight requests may take to finish.
    pub shutdown_grace: Duration,
    /// Run the callback receiver here (async submissions).
    pub callback_listen: Option<SocketAddr>,
    /// What the receiver accepts, and its limits.
    pub callback: callbacks::Policy,
    /// Final jobs keep their personal data (else the writer removes it).
    pub keep_pii: bool,
}

/// How a run's execution ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineEnd {
    pub stop: Stop,
    pub requests: u64,
    pub retries: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Dispatch(#[from] dispatcher::DispatchError),
    #[error(transparent)]
    Write(#[from] writer::WriteError),
    #[error("cannot start the callback receiver on {addr}: {reason}")]
    Callback { addr: SocketAddr, reason: String },
    #[error("invalid limits: {0}")]
    Limits(String),
}

fn limiter(
    config: &EngineConfig,
) -> Result<Option<governor::DefaultDirectRateLimiter>, EngineError> {
    let Some(rate) = config.rate else {
        return Ok(None);
    };
    if !(rate.is_finite() && rate > 0.0) {
        return Err(EngineError::Limits(format!(
            "--rate must be positive, got {rate}"
        )));
    }
    // (A rate so low that its period overflows a Duration is an error, not a panic.)
    let period = Duration::try_from_secs_f64(1.0 / rate)
        .map_err(|_| EngineError::Limits(format!("--rate {rate} is too low")))?;
    let burst = NonZeroU32::new(config.burst.max(1)).unwrap_or(NonZeroU32::MIN);
    let quota = Quota::with_period(period)
        .ok_or_else(|| EngineError::Limits(format!("--rate {rate} is too high")))?
        .allow_burst(burst);
    Ok(Some(RateLimiter::direct(quota)))
}

/// Runs the engine over a staged run until it drains, stops or is interrupted. `store`
/// becomes the writer's connection; `db` is opened again for the readers.
pub async fn run(
    mut config: EngineConfig,
    client: SmileClient,
    mut store: Store,
    tally: Arc<Tally>,
    shutdown: watch::Receiver<bool>,
) -> Result<EngineEnd, EngineError> {
    let db = store.path().to_owned();
    store.keep_pii(config.keep_pii)?;
    let limiter = limiter(&config)?;
    let (writer, turns, writer_thread) = writer::Writer::spawn(store);
    let (stop_receiver, receiver_stop) = watch::channel(false);

    let callback_server =
        start_receiver(&mut config, &client, &writer, &db, &tally, receiver_stop).await?;

    let deadline_at = config
        .deadline
        .map(|d| now_ms().saturating_add(d.as_millis().min(i64::MAX as u128) as i64));
    let ctx = Arc::new(worker::Ctx {
        breaker: breaker::Breaker::new(config.breaker_threshold),
        deadline_at,
        limiter,
        client,
        writer: writer.clone(),
        tally: tally.clone(),
        stopping: std::sync::atomic::AtomicBool::new(false),
        config,
    });
    let reader = Store::open_read_only(&db)?;
    let result = dispatcher::Dispatcher::new(ctx.clone(), reader, turns, shutdown)
        .run()
        .await;

    if let Ok(Stop::Deadline) = &result {
        writer
            .commit(vec![WriteOp::GiveUpRemaining {
                run_id: ctx.config.run_id,
                reason: "not final at the deadline".into(),
                at: now_ms(),
            }])
            .await?;
    }
    let _ = stop_receiver.send(true);
    if let Some(server) = callback_server {
        server.stopped().await;
        log_callback_counts(&tally);
    }
    let report = EngineEnd {
        stop: Stop::Drained,
        requests: tally.requests.load(std::sync::atomic::Ordering::Relaxed),
        retries: tally.retries.load(std::sync::atomic::Ordering::Relaxed),
    };
    drop(writer);
    drop(ctx);
    let joined = tokio::task::spawn_blocking(move || writer_thread.join())
        .await
        .ok()
        .and_then(|j| j.ok());
    let stop = result?;
    match joined {
        Some(Err(e)) => Err(e.into()),
        _ => Ok(EngineEnd { stop, ..report }),
    }
}

/// Starts the callback receiver of a submit run that listens for callbacks, and points
/// the run's callback URL at it when none was given.
async fn start_receiver(
    config: &mut EngineConfig,
    client: &SmileClient,
    writer: &writer::Writer,
    db: &std::path::Path,
    tally: &Arc<Tally>,
    stop: watch::Receiver<bool>,
) -> Result<Option<callbacks::CallbackServer>, EngineError> {
    let (Some(listen), Mode::Submit { callback_url, .. }) =
        (config.callback_listen, &mut config.mode)
    else {
        return Ok(None);
    };
    let server = callbacks::CallbackServer::start(
        listen,
        config.run_id,
        client.clone(),
        writer.clone(),
        Store::open_read_only(db)?,
        tally.clone(),
        config.callback.clone(),
        config.shutdown_grace,
        stop,
    )
    .await
    .map_err(|e| EngineError::Callback {
        addr: listen,
        reason: e.to_string(),
    })?;
    if callback_url.is_none() {
        *callback_url = Some(format!(
            "http://{}{}",
            server.addr,
            callbacks::CALLBACK_PATH
        ));
    }
    tracing::info!(addr = %server.addr, "callback receiver listening");
    Ok(Some(server))
}

/// Logs what the stopped callback receiver took and refused.
fn log_callback_counts(tally: &Tally) {
    let counts = &tally.callbacks;
    // The refusals as one readable field, "replayed:31,stale:2" ("none" when there were
    // none), so that a text log line never reads `refused=replayed=31`.
    let refused = counts
        .snapshot()
        .iter()
        .map(|(why, n)| format!("{why}:{n}"))
        .collect::<Vec<_>>()
        .join(",");
    let refused = if refused.is_empty() {
        "none".to_owned()
    } else {
        refused
    };
    tracing::info!(
        accepted = counts.accepted.load(std::sync::atomic::Ordering::Relaxed),
        confirmed = counts.confirmed.load(std::sync::atomic::Ordering::Relaxed),
        mismatched = counts.mismatched.load(std::sync::atomic::Ordering::Relaxed),
        refused = %refused,
        "callback receiver stopped"
    );
}
