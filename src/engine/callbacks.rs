//! The built-in callback receiver for async submissions.
//!
//! Smile ID POSTs each async result to the callback URL. Its signature covers only
//! `timestamp + partner_id + "sid_request"`, not the body, so a signature that confirms
//! proves only that someone once had a signed pair. A callback is therefore taken only if:
//!
//! - its signature confirms with our key (else 401);
//! - its timestamp is within `--callback-max-age` of now, past or future (else 401);
//! - its (timestamp, signature) pair was never accepted before, in any run of this
//!   database (else 409; accepted pairs are kept in `callback_replays`). With job_status
//!   confirming, a pair used by another job is taken once more per job and execution, as
//!   a claim: two genuine callbacks signed in the same millisecond share a pair;
//! - its `PartnerParams` name a job of this run, `job_id` and `user_id` both (else 404);
//! - that job was sent and is not final (queued: 409; final: 200 "already recorded");
//! - with job_status confirming, that job has no claim being confirmed already (else 200,
//!   nothing written: one claim per job, so posted-back pairs cannot keep it asking).
//!
//! A refused callback writes nothing to the database: it is counted in memory
//! ([`Refusals`]) and the counts are printed when the run ends. With `--callback-confirm
//! job-status` (the default) an accepted callback's ResultCode is only a claim: the job
//! becomes due for one job_status call at once, and job_status's answer is what is
//! recorded (counted as a confirmation or a mismatch). With `none` the callback's result
//! is recorded as final.
//!
//! The server's limits ([`Limits`]) bound what clients can hold: a header read timeout
//! (also the idle keep-alive timeout), a body read timeout, a cap on connections (beyond
//! it no more are accepted until one closes), a cap on bytes buffered across all
//! requests (beyond it 503), and a stop bounded by the grace whatever clients do.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use http_body_util::BodyExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::api::models::SignedResult;
use crate::api::{Category, SmileClient};
use crate::store::{
    CallbackTarget, EventKind, EventOutcome, EventRecord, JobState, JobUpdate, ResultSource, Store,
    WriteOp, now_ms,
};

use super::outcome::{self, Next};
use super::tally::Tally;
use super::writer::Writer;

/// A callback body larger than this is refused with 413.
pub const MAX_CALLBACK_BYTES: usize = 1024 * 1024;

/// The path callbacks are posted to when we make the URL from `--callback-listen`.
pub const CALLBACK_PATH: &str = "/callback";

/// `--callback-max-age`'s default: a callback's timestamp may be this far from now, in
/// the past or the future.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);

/// Whether a callback's result is final by itself or needs job_status to confirm it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallbackConfirm {
    /// One job_status call confirms a callback's result; job_status's answer is recorded.
    #[default]
    JobStatus,
    /// A callback whose signature, timestamp and job check out is recorded as final.
    None,
}

impl CallbackConfirm {
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackConfirm::JobStatus => "job-status",
            CallbackConfirm::None => "none",
        }
    }
}

/// What one client can hold of the receiver.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// A request's headers must arrive within this; it is also how long an idle
    /// keep-alive connection is kept.
    pub header_timeout: Duration,
    /// A request's body must arrive within this once its headers are in.
    pub body_timeout: Duration,
    /// Connections open at once at most; beyond it, no more are accepted until one
    /// closes (they wait in the kernel's backlog).
    pub max_connections: usize,
    /// Body bytes buffered across all requests at once at most; beyond it, 503.
    pub max_buffered: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            max_connections: default_max_connections(),
            max_buffered: 64 * 1024 * 1024,
        }
    }
}

/// A quarter of the process's file descriptors (`RLIMIT_NOFILE`), at most 512 and at
/// least 16: the rest stay for the client's own requests and the database.
pub fn default_max_connections() -> usize {
    #[cfg(target_os = "linux")]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit only writes the struct we pass.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
            let quarter = usize::try_from(limit.rlim_cur / 4).unwrap_or(usize::MAX);
            return quarter.clamp(16, 512);
        }
    }
    256
}

/// The receiver's whole policy.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub confirm: CallbackConfirm,
    pub max_age: Duration,
    pub limits: Limits,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            confirm: CallbackConfirm::default(),
            max_age: DEFAULT_MAX_AGE,
            limits: Limits::default(),
        }
    }
}

/// Why a callback was refused; each is counted, none is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    Malformed,
    /// The body did not arrive within the body timeout.
    Slow,
    /// The body is over [`MAX_CALLBACK_BYTES`].
    TooLarge,
    Signature,
    Timestamp,
    Replay,
    UnknownJob,
    NotSent,
    AlreadyFinal,
    /// The job has a callback's claim already (job_status settles it).
    ClaimPending,
    Busy,
}

impl Refusal {
    pub const ALL: [Refusal; 11] = [
        Refusal::Malformed,
        Refusal::Slow,
        Refusal::TooLarge,
        Refusal::Signature,
        Refusal::Timestamp,
        Refusal::Replay,
        Refusal::UnknownJob,
        Refusal::NotSent,
        Refusal::AlreadyFinal,
        Refusal::ClaimPending,
        Refusal::Busy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed",
            Refusal::Slow => "body_too_slow",
            Refusal::TooLarge => "body_too_large",
            Refusal::Signature => "bad_signature",
            Refusal::Timestamp => "timestamp_outside_window",
            Refusal::Replay => "replayed",
            Refusal::UnknownJob => "unknown_job",
            Refusal::NotSent => "job_not_sent",
            Refusal::AlreadyFinal => "job_already_final",
            Refusal::ClaimPending => "claim_being_confirmed",
            Refusal::Busy => "over_limits",
        }
    }
}

/// The receiver's counters (memory only: a refused callback costs no write).
#[derive(Debug, Default)]
pub struct Refusals {
    counts: [AtomicU64; Refusal::ALL.len()],
    pub accepted: AtomicU64,
    /// job_status answered the ResultCode a callback claimed.
    pub confirmed: AtomicU64,
    /// job_status answered another ResultCode than the callback claimed (job_status's wins).
    pub mismatched: AtomicU64,
}

impl Refusals {
    pub fn count(&self, why: Refusal) {
        if let Some(i) = Refusal::ALL.iter().position(|r| *r == why) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The refusals with a count, by reason.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        Refusal::ALL
            .iter()
            .zip(&self.counts)
            .map(|(r, n)| (r.as_str(), n.load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    pub fn refused(&self) -> u64 {
        self.counts.iter().map(|n| n.load(Ordering::Relaxed)).sum()
    }
}

struct Receiver {
    run_id: i64,
    client: SmileClient,
    writer: Writer,
    reader: Mutex<Store>,
    tally: Arc<Tally>,
    policy: Policy,
    /// Pairs accepted by this execution (the database has every run's): two copies of
    /// one pair posted at once cannot both pass the database check.
    pairs: Mutex<HashSet<(String, String)>>,
    /// Jobs (rows) that took a callback in this execution. Two genuine callbacks signed
    /// in the same instant share a pair (the signature covers only the timestamp, which
    /// Smile ID may write to the millisecond), so with job_status confirming, where a
    /// callback is a claim and never a result, a job not in this set takes a pair used
    /// before by another job. A copied pair thus claims each job at most once an
    /// execution; with `none` a pair is taken once, whatever the job.
    shared: Mutex<HashSet<i64>>,
    /// Body bytes buffered across all requests now.
    buffered: AtomicUsize,
}

/// A running receiver.
pub struct CallbackServer {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl CallbackServer {
    #[allow(clippy::too_many_arguments)]
    pub async fn start(
        listen: SocketAddr,
        run_id: i64,
        client: SmileClient,
        writer: Writer,
        reader: Store,
        tally: Arc<Tally>,
        policy: Policy,
        grace: Duration,
        stop: watch::Receiver<bool>,
    ) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let limits = policy.limits.clone();
        let state = Arc::new(Receiver {
            run_id,
            client,
            writer,
            reader: Mutex::new(reader),
            tally,
            policy,
            pairs: Mutex::new(HashSet::new()),
            shared: Mutex::new(HashSet::new()),
            buffered: AtomicUsize::new(0),
        });
        // Any path: `--callback-url https://hooks.example.com/smile` behind a proxy that
        // keeps the path must reach the receiver as well as our own `/callback` does.
        let app = Router::new()
            .route("/", post(counted))
            .route("/{*path}", post(counted))
            .with_state(state);
        let task = tokio::spawn(serve(listener, app, limits, grace, stop));
        Ok(Self { addr, task })
    }

    pub async fn stopped(self) {
        let _ = self.task.await;
    }
}

/// The accept loop: one task per connection, at most `max_connections` at once. When
/// `stop` turns true it stops accepting; a connection with no request being handled is
/// closed at once, the others may finish within `grace`, and whatever is left then is
/// dropped.
async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: Limits,
    grace: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut connections = JoinSet::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(64 * 1024);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = stopping(&mut stop) => break,
        };
        let (stream, _) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, say: wait a moment instead of spinning.
                    tracing::warn!("callback receiver cannot accept: {e}");
                    drop(permit);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopping(&mut stop) => break,
        };
        // Reap finished connections so the set does not grow with the run.
        while connections.try_join_next().is_some() {}
        let busy = Arc::new(AtomicBool::new(false));
        let service = {
            let busy = busy.clone();
            let app = app.clone();
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                busy.store(true, Ordering::Relaxed);
                let busy = busy.clone();
                // A Router is always ready: it is called without poll_ready.
                let mut app = app.clone();
                async move {
                    let r = tower::Service::call(&mut app, req).await;
                    busy.store(false, Ordering::Relaxed);
                    r
                }
            })
        };
        let conn = http.serve_connection(TokioIo::new(stream), service);
        let mut stop = stop.clone();
        connections.spawn(async move {
            let _permit = permit;
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stopping(&mut stop) => {
                    if busy.load(Ordering::Relaxed) {
                        conn.as_mut().graceful_shutdown();
                        let _ = tokio::time::timeout(grace, conn).await;
                    }
                }
            }
        });
    }
    drop(listener);
    // Every connection task ends within `grace` by itself; this is the backstop.
    let all = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(grace + Duration::from_millis(100), all)
        .await
        .is_err()
    {
        connections.abort_all();
    }
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn stopping(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Body bytes reserved from the receiver's budget, given back when dropped.
struct Reserved<'a> {
    budget: &'a AtomicUsize,
    bytes: usize,
}

impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        self.budget.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

impl Reserved<'_> {
    fn more(&mut self, n: usize, max: usize) -> bool {
        let ok = self
            .budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(n).filter(|total| *total <= max)
            })
            .is_ok();
        if ok {
            self.bytes += n;
        }
        ok
    }
}

/// Reads a body within the time, size and memory limits.
async fn read_body(
    rx: &Receiver,
    headers: &HeaderMap,
    body: Body,
) -> Result<Bytes, (StatusCode, &'static str)> {
    let too_large = (StatusCode::PAYLOAD_TOO_LARGE, "callback body too large\n");
    let busy = (
        StatusCode::SERVICE_UNAVAILABLE,
        "receiver busy, try again\n",
    );
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_CALLBACK_BYTES) {
        return Err(too_large);
    }
    let mut reserved = Reserved {
        budget: &rx.buffered,
        bytes: 0,
    };
    let max = rx.policy.limits.max_buffered;
    if let Some(n) = declared
        && !reserved.more(n, max)
    {
        return Err(busy);
    }
    let read = async {
        let mut body = body;
        let mut buf = Vec::with_capacity(declared.unwrap_or(0));
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| (StatusCode::BAD_REQUEST, "cannot read the body\n"))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if buf.len() + data.len() > MAX_CALLBACK_BYTES {
                return Err(too_large);
            }
            let beyond = (buf.len() + data.len()).saturating_sub(reserved.bytes);
            if beyond > 0 && !reserved.more(beyond, max) {
                return Err(busy);
            }
            buf.extend_from_slice(&data);
        }
        Ok(Bytes::from(buf))
    };
    match tokio::time::timeout(rx.policy.limits.body_timeout, read).await {
        Ok(r) => r,
        Err(_) => Err((StatusCode::REQUEST_TIMEOUT, "body not received in time\n")),
    }
}

/// Counts every callback received, and whether it was taken (2xx) or refused, for the
/// progress line and the metrics.
async fn counted(
    State(rx): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Body,
) -> (StatusCode, &'static str) {
    rx.tally.callbacks_received.fetch_add(1, Ordering::Relaxed);
    let tally = rx.tally.clone();
    let answer = receive(State(rx), headers, body).await;
    if answer.0.is_success() {
        tally.callbacks_accepted.fetch_add(1, Ordering::Relaxed);
    } else {
        tally.callbacks_refused.fetch_add(1, Ordering::Relaxed);
    }
    answer
}

/// Whether an ISO-8601 timestamp is within `max_age` of now, either side. Read: `...Z` as
/// Node sends it, `+00:00` with microseconds as Python does, any other offset, and no
/// offset at all, taken as UTC: Smile ID's Identity Verification page shows its answers
/// (the same body a callback carries) signed with `2021-08-12T17:57:00.614879`.
/// Unparseable: no.
pub fn timestamp_is_fresh(timestamp: &str, now_ms: i64, max_age: Duration) -> bool {
    let Some(at) = timestamp_millis(timestamp.trim()) else {
        return false;
    };
    let skew = at.abs_diff(now_ms);
    u128::from(skew) <= max_age.as_millis()
}

/// Unix milliseconds of an ISO-8601 date and time, with an offset or (UTC) without.
fn timestamp_millis(timestamp: &str) -> Option<i64> {
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(timestamp) {
        return Some(at.timestamp_millis());
    }
    // The separators RFC 3339 allows with an offset ('T', 't', ' ') are allowed without.
    [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dt%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
    ]
    .iter()
    .find_map(|f| chrono::NaiveDateTime::parse_from_str(timestamp, f).ok())
    .map(|at| at.and_utc().timestamp_millis())
}

/// A status and text to answer a callback with.
type Answer = (StatusCode, &'static str);

/// Counts a refused callback by its reason, and answers it.
fn refused(rx: &Receiver, why: Refusal, answer: Answer) -> Answer {
    rx.tally.callbacks.count(why);
    answer
}

async fn receive(State(rx): State<Arc<Receiver>>, headers: HeaderMap, body: Body) -> Answer {
    let (signed, now) = match authenticated(&rx, &headers, body).await {
        Ok(a) => a,
        Err(answer) => return answer,
    };
    let (row, state, seen) = match awaited_job(&rx, &signed) {
        Ok(j) => j,
        Err(answer) => return answer,
    };
    let pair = (signed.timestamp.clone(), signed.signature.clone());
    // The pair is taken in memory before anything is written: of two copies posted at
    // once, one passes.
    let fresh = !seen && lock(&rx.pairs).insert(pair.clone());
    // A job that takes a fresh pair takes no used one after it: its own pair again is a
    // replay.
    let first_for_job = lock(&rx.shared).insert(row);
    let taken = fresh || (first_for_job && rx.policy.confirm == CallbackConfirm::JobStatus);
    if !taken {
        if first_for_job {
            lock(&rx.shared).remove(&row);
        }
        return refused(
            &rx,
            Refusal::Replay,
            (
                StatusCode::CONFLICT,
                "this timestamp and signature were already used\n",
            ),
        );
    }
    let answer = record(&rx, row, state, &signed, fresh.then(|| pair.clone()), now).await;
    if answer.0 != StatusCode::OK {
        // Nothing was recorded: the pair (or the job's one shared claim) may come again
        // (Smile ID retrying).
        if fresh {
            lock(&rx.pairs).remove(&pair);
        }
        if first_for_job {
            lock(&rx.shared).remove(&row);
        }
    }
    answer
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The callback's signed result, once its body is read whole, parses, confirms with our
/// key and carries a fresh timestamp; with the time it was judged at.
async fn authenticated(
    rx: &Receiver,
    headers: &HeaderMap,
    body: Body,
) -> Result<(SignedResult, i64), Answer> {
    let body = match read_body(rx, headers, body).await {
        Ok(b) => b,
        Err(answer) => {
            let why = match answer.0 {
                StatusCode::SERVICE_UNAVAILABLE => Refusal::Busy,
                StatusCode::REQUEST_TIMEOUT => Refusal::Slow,
                StatusCode::PAYLOAD_TOO_LARGE => Refusal::TooLarge,
                _ => Refusal::Malformed,
            };
            return Err(refused(rx, why, answer));
        }
    };
    let signed: SignedResult = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(_) => {
            return Err(refused(
                rx,
                Refusal::Malformed,
                (StatusCode::BAD_REQUEST, "malformed callback body\n"),
            ));
        }
    };
    drop(body);
    if !rx.client.confirm_result(&signed) {
        return Err(refused(
            rx,
            Refusal::Signature,
            (StatusCode::UNAUTHORIZED, "signature does not confirm\n"),
        ));
    }
    let now = now_ms();
    if !timestamp_is_fresh(&signed.timestamp, now, rx.policy.max_age) {
        return Err(refused(
            rx,
            Refusal::Timestamp,
            (
                StatusCode::UNAUTHORIZED,
                "timestamp missing, unreadable or outside the accepted window\n",
            ),
        ));
    }
    Ok((signed, now))
}

/// The run's job a confirmed callback names (its row and state), if it was sent and is
/// not final; and whether the callback's (timestamp, signature) pair is in the store.
fn awaited_job(rx: &Receiver, signed: &SignedResult) -> Result<(i64, JobState, bool), Answer> {
    let Some(params) = signed.result.partner_params.as_ref() else {
        return Err(refused(
            rx,
            Refusal::Malformed,
            (
                StatusCode::BAD_REQUEST,
                "no PartnerParams in the callback\n",
            ),
        ));
    };
    let found = {
        let reader = rx.reader.lock().unwrap_or_else(|p| p.into_inner());
        tokio::task::block_in_place(|| {
            let job = reader.job_by_job_id(rx.run_id, &params.job_id)?;
            let seen = reader.callback_pair_seen(&signed.timestamp, &signed.signature)?;
            Ok::<_, crate::store::StoreError>((job, seen))
        })
    };
    let (target, seen) = match found {
        Ok((Some(target), seen)) => (target, seen),
        Ok((None, _)) => {
            return Err(refused(
                rx,
                Refusal::UnknownJob,
                (StatusCode::NOT_FOUND, "unknown job_id\n"),
            ));
        }
        Err(e) => {
            tracing::error!("callback lookup failed: {e}");
            return Err((StatusCode::SERVICE_UNAVAILABLE, "try again\n"));
        }
    };
    let CallbackTarget {
        row,
        user_id,
        state,
        claimed,
    } = target;
    if user_id != params.user_id {
        return Err(refused(
            rx,
            Refusal::UnknownJob,
            (StatusCode::NOT_FOUND, "unknown job\n"),
        ));
    }
    if state.is_final() {
        // Smile ID delivering again what was recorded: answered 200 so it stops.
        return Err(refused(
            rx,
            Refusal::AlreadyFinal,
            (StatusCode::OK, "already recorded\n"),
        ));
    }
    if state == JobState::Queued {
        return Err(refused(
            rx,
            Refusal::NotSent,
            (StatusCode::CONFLICT, "this job was not sent\n"),
        ));
    }
    if claimed {
        // One claim per job: job_status settles it (or, still pending, is asked again
        // after the grace). Another callback, genuine or copied, would only ask again
        // sooner; answered 200 so Smile ID stops retrying, and nothing is written.
        return Err(refused(
            rx,
            Refusal::ClaimPending,
            (StatusCode::OK, "a claim for this job is being confirmed\n"),
        ));
    }
    Ok((row, state, seen))
}

/// Records an accepted callback: its pair (unless it was used before), its event, and
/// the claim (confirm) or the result itself (none).
async fn record(
    rx: &Receiver,
    row: i64,
    state: JobState,
    signed: &SignedResult,
    pair: Option<(String, String)>,
    now: i64,
) -> Answer {
    let pair = pair.map(|(timestamp, signature)| WriteOp::CallbackPair {
        run_id: rx.run_id,
        row,
        timestamp,
        signature,
        at: now,
    });
    let event = |outcome| {
        WriteOp::Event(EventRecord {
            run_id: rx.run_id,
            row,
            at: now,
            kind: EventKind::Callback,
            http_status: None,
            code: signed.result.result_code.clone(),
            outcome,
            error: None,
            latency_ms: None,
        })
    };
    let next = outcome::after_result(signed, ResultSource::Callback, JobState::Queued);
    match next {
        // A final result to confirm: the job asks job_status now.
        Next::Final {
            code: Some(code), ..
        } if rx.policy.confirm == CallbackConfirm::JobStatus => {
            let ops = pair
                .into_iter()
                .chain([
                    event(EventOutcome::Claim),
                    WriteOp::Claim { row, code, at: now },
                ])
                .collect();
            commit_noted(rx, state, ops).await
        }
        Next::Final {
            state: to,
            result,
            code,
            error,
        } => {
            let category = result.as_ref().and_then(|r| r.category);
            let update = WriteOp::Update(JobUpdate {
                row,
                state: to,
                attempts: None,
                polls: None,
                next_attempt_at: now,
                last_http_status: None,
                last_code: code,
                last_error: error,
                result,
                staged_input: None,
                at: now,
            });
            let ops = pair
                .into_iter()
                .chain([event(EventOutcome::Callback), update])
                .collect();
            commit_result(rx, state, to, category, ops).await
        }
        // Not a final result (a pending or retryable code): noted; job_status polling
        // takes the job from here.
        _ => {
            let ops = pair
                .into_iter()
                .chain([event(EventOutcome::Callback)])
                .collect();
            commit_noted(rx, state, ops).await
        }
    }
}

/// Commits a callback's final result, taken without confirmation (moving the job from
/// `state` to `to`), and counts it.
async fn commit_result(
    rx: &Receiver,
    state: JobState,
    to: JobState,
    category: Option<Category>,
    ops: Vec<WriteOp>,
) -> Answer {
    match rx.writer.commit(ops).await {
        Ok(applied) => {
            rx.tally.callbacks.accepted.fetch_add(1, Ordering::Relaxed);
            if applied.last() == Some(&true) {
                rx.tally.transition(state, to);
                if let (true, Some(c)) = (to.is_final(), category) {
                    rx.tally.categorise(c);
                }
            }
            (StatusCode::OK, "recorded\n")
        }
        Err(e) => {
            tracing::error!("cannot record a callback: {e}");
            (StatusCode::SERVICE_UNAVAILABLE, "try again\n")
        }
    }
}

/// Commits a callback that leaves the job to job_status: a claim to confirm (the ops end
/// with a `Claim`, which moves the job to awaiting), or a callback merely noted.
async fn commit_noted(rx: &Receiver, state: JobState, ops: Vec<WriteOp>) -> Answer {
    let claim = matches!(ops.last(), Some(WriteOp::Claim { .. }));
    match rx.writer.commit(ops).await {
        Ok(applied) => {
            rx.tally.callbacks.accepted.fetch_add(1, Ordering::Relaxed);
            if claim && applied.last() == Some(&true) {
                rx.tally.transition(state, JobState::Awaiting);
                (StatusCode::OK, "received; confirming with job_status\n")
            } else {
                (StatusCode::OK, "noted\n")
            }
        }
        Err(e) => {
            tracing::error!("cannot record a callback: {e}");
            (StatusCode::SERVICE_UNAVAILABLE, "try again\n")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_as_the_sdks_send_them_are_read_and_judged_against_the_window() {
        let now = chrono::DateTime::parse_from_rfc3339("2025-06-01T12:00:00Z")
            .unwrap()
            .timestamp_millis();
        let window = Duration::from_secs(300);
        for fresh in [
            "2025-06-01T12:00:00.000Z",         // Node
            "2025-06-01T11:58:00.123456+00:00", // Python, microseconds
            "2025-06-01T14:04:59+02:00",        // another offset, within the window
            "2025-06-01T12:05:00.000Z",         // the edge, in the future
            "2025-06-01T12:00:00.614879",       // no offset (Smile ID's example): UTC
            "2025-06-01T11:59:30",              // no offset, no fraction
            "2025-06-01t12:00:00.5",            // a lower-case t, as with an offset
            "2025-06-01 12:00:00.5",            // a space, as with an offset
            "2025-06-01 12:00:00.5Z",
        ] {
            assert!(timestamp_is_fresh(fresh, now, window), "{fresh}");
        }
        for stale in [
            "2019-03-01T10:00:00.000Z",
            "2025-06-01T11:54:59.999Z",
            "2025-06-01T12:05:00.001Z",
            "2025-06-01T14:00:00.000", // no offset is UTC, not local time: 2 h off
            "2025-06-01_12:00:00",     // not the ISO-8601 form
            "1559383200",              // a Unix time: not ISO-8601
            "",
            "not a time",
        ] {
            assert!(!timestamp_is_fresh(stale, now, window), "{stale}");
        }
    }

    #[test]
    fn the_connection_cap_leaves_most_descriptors_to_the_client() {
        let cap = default_max_connections();
        assert!((16..=512).contains(&cap), "{cap}");
    }
}
