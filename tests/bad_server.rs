//! A corpus of bad servers (issue 6, "Reliability and security"): each misbehaves in one
//! way, and is met twice: through the real client (the error's kind, retry class and
//! breaker health), and through a whole run (`runner::execute` on a small manifest, rate 0,
//! `--max-attempts 3`, quick timeouts): no job ends `done` from a bad answer, the run
//! does not panic, and the exit outcome is the one PRODUCT.md documents.
//!
//! What a whole run does with each answer follows from `engine::outcome` and
//! `engine::breaker` (threshold `runner::BREAKER_THRESHOLD` = 5):
//! - an HTML 5xx is retryable and *neutral* for the breaker (a server's passing trouble):
//!   every job spends its 3 attempts and gives up; exit 3.
//! - unparseable answers (non-JSON 200, truncated JSON, a missing signature, `job_complete`
//!   as a string, a body over 8 MiB), a redirect (never followed), a signature that does
//!   not confirm, a timeout and a reset connection are retryable and *systemic*: the base
//!   URL does not lead to a working Smile ID, so the breaker trips after 5 requests (one
//!   probe at a time, as no answer was ever healthy), the jobs stay pending, exit 1.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use smile_recon::api::client::MAX_BODY_BYTES;
use smile_recon::api::models::{IdInfo, PartnerParams};
use smile_recon::api::{
    ApiError, ApiKey, ClientConfig, Credentials, RetryClass, SmileClient, SubmitEndpoint,
};
use smile_recon::engine::breaker::Health;
use smile_recon::engine::outcome::health_of_error;
use smile_recon::exit::{Error, ExitStatus};
use smile_recon::job_spec::RunMode;
use smile_recon::manifest::ManifestSource;
use smile_recon::runner::{self, Finished, Invocation, Layer, ProgressMode, Target};
use smile_recon::store::{JobRecord, JobState, RunStatus, Store};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PARTNER: &str = "002";
const KEY: &str = "bad-server-test-key";
/// Jobs in each whole run: more than the breaker's threshold, so that a systemic failure
/// trips it before any one job could spend its 3 attempts.
const JOBS: usize = 8;
const MAX_ATTEMPTS: usize = 3;
/// The request timeout of the client tests and the runs.
const TIMEOUT: Duration = Duration::from_millis(400);
const FIFTY_MIB: usize = 50 * 1024 * 1024;

fn creds() -> Credentials {
    Credentials::new(PARTNER, ApiKey::new(KEY).unwrap()).unwrap()
}

/// One way to misbehave.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Bad {
    NonJson200,
    Html502,
    TruncatedJson,
    MissingSignature,
    WrongSignature,
    JobCompleteString,
    FiftyMiB,
    NeverAnswers,
    ResetMidBody,
    Redirect(u16),
}

/// A correctly signed job_status answer, complete with a result.
fn status_body() -> Value {
    let stamp = creds().stamp_now();
    json!({
        "timestamp": stamp.timestamp,
        "signature": stamp.signature,
        "job_complete": true,
        "job_success": true,
        "code": "2302",
        "result": {"ResultCode": "1020", "ResultText": "Exact Match", "SmileJobID": "0000001"}
    })
}

/// A correctly signed sync verify answer.
fn result_body() -> Value {
    let stamp = creds().stamp_now();
    json!({
        "timestamp": stamp.timestamp,
        "signature": stamp.signature,
        "ResultCode": "1020",
        "ResultText": "Exact Match",
        "SmileJobID": "0000001",
        "PartnerParams": {"job_id": "j", "user_id": "u", "job_type": 5}
    })
}

/// The well-formed answer of the endpoint at `path`.
fn good_body(path: &str) -> Value {
    if path.ends_with("/job_status") {
        status_body()
    } else {
        result_body()
    }
}

fn json_response(status: StatusCode, body: impl Into<Body>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.into(),
    )
        .into_response()
}

/// What an axum bad server answers at `path`.
fn answer(bad: Bad, path: &str, elsewhere: SocketAddr, huge: &Bytes) -> Response {
    match bad {
        Bad::NonJson200 => (StatusCode::OK, "OK").into_response(),
        Bad::Html502 => (
            StatusCode::BAD_GATEWAY,
            [(header::CONTENT_TYPE, "text/html")],
            "<html><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>",
        )
            .into_response(),
        Bad::TruncatedJson => {
            let text = good_body(path).to_string();
            json_response(StatusCode::OK, text[..text.len() / 2].to_owned())
        }
        Bad::MissingSignature => {
            let mut body = good_body(path);
            body.as_object_mut().unwrap().remove("signature");
            json_response(StatusCode::OK, body.to_string())
        }
        Bad::WrongSignature => {
            let mut body = good_body(path);
            // well-formed base64 of the right length, for another timestamp: only the
            // check itself can catch it
            body["signature"] = json!(creds().sign("2000-01-01T00:00:00.000Z"));
            json_response(StatusCode::OK, body.to_string())
        }
        Bad::JobCompleteString => {
            let mut body = status_body();
            body["job_complete"] = json!("true");
            json_response(StatusCode::OK, body.to_string())
        }
        Bad::FiftyMiB => json_response(StatusCode::OK, huge.clone()),
        Bad::Redirect(code) => (
            StatusCode::from_u16(code).unwrap(),
            [(header::LOCATION, format!("http://{elsewhere}{path}"))],
        )
            .into_response(),
        Bad::NeverAnswers | Bad::ResetMidBody => unreachable!("raw TCP servers"),
    }
}

struct BadServer {
    addr: SocketAddr,
    /// Requests (or, for the raw TCP servers, connections) the bad server saw.
    hits: Arc<AtomicUsize>,
    /// Requests that reached the redirect's target: must stay 0.
    elsewhere_hits: Arc<AtomicUsize>,
}

impl BadServer {
    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn listen() -> (tokio::net::TcpListener, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

async fn serve(router: Router) -> SocketAddr {
    let (listener, addr) = listen().await;
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    addr
}

/// The redirect's target: a server that would answer perfectly well, so that a client
/// that followed the redirect would succeed (and this test would see it).
async fn elsewhere(hits: Arc<AtomicUsize>) -> SocketAddr {
    serve(Router::new().fallback(move |uri: Uri| {
        let hits = hits.clone();
        async move {
            hits.fetch_add(1, Ordering::SeqCst);
            json_response(StatusCode::OK, good_body(uri.path()).to_string())
        }
    }))
    .await
}

async fn start(bad: Bad) -> BadServer {
    let hits = Arc::new(AtomicUsize::new(0));
    let elsewhere_hits = Arc::new(AtomicUsize::new(0));
    let addr = match bad {
        Bad::NeverAnswers => {
            let (listener, addr) = listen().await;
            let h = hits.clone();
            tokio::spawn(async move {
                // accepted and held open, never read, never answered
                let mut held = Vec::new();
                while let Ok((socket, _)) = listener.accept().await {
                    h.fetch_add(1, Ordering::SeqCst);
                    held.push(socket);
                }
            });
            addr
        }
        Bad::ResetMidBody => {
            let (listener, addr) = listen().await;
            let h = hits.clone();
            tokio::spawn(async move {
                while let Ok((mut socket, _)) = listener.accept().await {
                    h.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(async move {
                        let mut buf = [0u8; 64];
                        let _ = socket.read(&mut buf).await;
                        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                                    content-length: 4096\r\n\r\n{\"timestamp\": \"2026-";
                        let _ = socket.write_all(head.as_bytes()).await;
                        let _ = socket.flush().await;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        // SO_LINGER 0: the close is a RST, not a FIN (the rest of the
                        // request is unread, which also makes the kernel reset)
                        let _ = socket.set_zero_linger();
                        drop(socket);
                    });
                }
            });
            addr
        }
        _ => {
            let target = elsewhere(elsewhere_hits.clone()).await;
            let huge = Bytes::from({
                let mut b = vec![b' '; FIFTY_MIB];
                b[..2].copy_from_slice(b"{\"");
                b
            });
            let h = hits.clone();
            serve(Router::new().fallback(move |uri: Uri| {
                let (h, huge) = (h.clone(), huge.clone());
                async move {
                    h.fetch_add(1, Ordering::SeqCst);
                    answer(bad, uri.path(), target, &huge)
                }
            }))
            .await
        }
    };
    BadServer {
        addr,
        hits,
        elsewhere_hits,
    }
}

fn client(addr: SocketAddr) -> SmileClient {
    SmileClient::new(ClientConfig {
        base_url: format!("http://{addr}"),
        connect_timeout: Duration::from_secs(2),
        request_timeout: TIMEOUT,
        credentials: creds(),
        extra_roots: Vec::new(),
    })
    .unwrap()
}

fn id_info() -> IdInfo {
    IdInfo {
        country: "NG".into(),
        id_type: "BVN".into(),
        id_number: "12345678901".into(),
        first_name: Some("Ada".into()),
        last_name: Some("Obi".into()),
        ..IdInfo::default()
    }
}

fn partner_params() -> PartnerParams {
    PartnerParams {
        job_id: "j".into(),
        user_id: "u".into(),
        job_type: None,
        extra: Default::default(),
    }
}

/// How the client must classify one bad answer.
struct Expect {
    kind: &'static str,
    class: RetryClass,
    /// Whether the breaker counts it against the run.
    systemic: bool,
    http_status: Option<u16>,
}

fn expect(bad: Bad) -> Expect {
    let (kind, class, systemic, http_status) = match bad {
        Bad::NonJson200
        | Bad::TruncatedJson
        | Bad::MissingSignature
        | Bad::JobCompleteString
        | Bad::FiftyMiB => ("unparseable", RetryClass::Retryable, true, Some(200)),
        Bad::Html502 => ("http_status", RetryClass::Retryable, false, Some(502)),
        Bad::WrongSignature => ("unconfirmed_signature", RetryClass::Retryable, true, None),
        Bad::NeverAnswers => ("timeout", RetryClass::Retryable, true, None),
        Bad::ResetMidBody => ("transport", RetryClass::Retryable, true, None),
        Bad::Redirect(code) => ("http_status", RetryClass::Retryable, true, Some(code)),
    };
    Expect {
        kind,
        class,
        systemic,
        http_status,
    }
}

fn check_error(bad: Bad, what: &str, err: &ApiError) {
    let want = expect(bad);
    assert_eq!(err.kind(), want.kind, "{bad:?} {what}: {err:?}");
    assert_eq!(err.retry_class(), want.class, "{bad:?} {what}: {err:?}");
    assert_eq!(
        err.http_status(),
        want.http_status,
        "{bad:?} {what}: {err:?}"
    );
    match health_of_error(err) {
        Health::Systemic(_) => assert!(want.systemic, "{bad:?} {what} is systemic: {err:?}"),
        Health::Neutral => assert!(!want.systemic, "{bad:?} {what} is neutral: {err:?}"),
        Health::Healthy => panic!("{bad:?} {what}: a bad answer counted healthy: {err:?}"),
    }
    assert!(!err.to_string().contains(KEY), "the key leaked: {err}");
}

/// The real client against `bad`: job_status and a sync submission (a job_status-only
/// fault is only asked through job_status). Returns the bad server for more checks.
async fn through_the_client(bad: Bad) -> (BadServer, Vec<ApiError>) {
    let server = start(bad).await;
    let c = client(server.addr);
    let mut errors = Vec::new();
    let started = Instant::now();
    let err = c.job_status("u", "j", false, false).await.unwrap_err();
    check_error(bad, "job_status", &err);
    errors.push(err);
    if bad != Bad::JobCompleteString {
        let err = c
            .submit(SubmitEndpoint::Verify, &id_info(), &partner_params(), None)
            .await
            .unwrap_err();
        check_error(bad, "verify", &err);
        errors.push(err);
    }
    if bad == Bad::NeverAnswers {
        let took = started.elapsed();
        let n = errors.len() as u32;
        assert!(took >= TIMEOUT * n, "gave up early: {took:?}");
        assert!(
            took < (TIMEOUT + Duration::from_secs(1)) * n,
            "took {took:?}"
        );
    }
    (server, errors)
}

// ---- whole runs --------------------------------------------------------------------

struct Run {
    _dir: TempDir,
    db: PathBuf,
    result: Result<Finished, Error>,
    took: Duration,
    /// Requests that were not a job's: a submit run first asks `GET /v1/services` once.
    probes: usize,
}

impl Run {
    fn run_id(&self) -> i64 {
        let store = Store::open_read_only(&self.db).unwrap();
        store.latest_run(false).unwrap().unwrap().id
    }

    fn status(&self) -> RunStatus {
        let store = Store::open_read_only(&self.db).unwrap();
        store.latest_run(false).unwrap().unwrap().status
    }

    fn jobs(&self) -> Vec<JobRecord> {
        let store = Store::open_read_only(&self.db).unwrap();
        let mut jobs = Vec::new();
        store
            .for_each_job(self.run_id(), |j| {
                jobs.push(j);
                Ok(())
            })
            .unwrap();
        jobs
    }
}

/// A manifest of `JOBS` valid rows: verify rows for submit, job_status rows for poll.
fn write_manifest(dir: &TempDir, mode: RunMode) -> PathBuf {
    let path = dir.path().join("manifest.csv");
    let mut text = String::new();
    match mode {
        RunMode::Submit => {
            text.push_str("country,id_type,id_number,first_name,last_name,user_id,job_id\n");
            for i in 0..JOBS {
                text.push_str(&format!(
                    "NG,BVN,{:011},Ada,Obi,user-{i},job-{i}\n",
                    22_000_000_000u64 + i as u64
                ));
            }
        }
        RunMode::Poll => {
            text.push_str("user_id,job_id\n");
            for i in 0..JOBS {
                text.push_str(&format!("user-{i},job-{i}\n"));
            }
        }
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// A whole run against `addr`: submit through the sync `/v2/verify` (the result is in the
/// answer), or poll job_status.
async fn whole_run(addr: SocketAddr, mode: RunMode) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_manifest(&dir, mode);
    let db = dir.path().join("runs.db");
    let flags = Layer {
        base_url: Some(format!("http://{addr}")),
        partner_id: Some(PARTNER.into()),
        rate: Some(0.0),
        concurrency: Some(16),
        max_attempts: Some(MAX_ATTEMPTS as u32),
        timeout: Some(TIMEOUT.as_secs_f64()),
        connect_timeout: Some(2.0),
        endpoint: (mode == RunMode::Submit).then_some(SubmitEndpoint::Verify),
        poll_interval: Some(0.2),
        ..Layer::default()
    };
    let request = Invocation {
        command: mode.as_str().into(),
        target: Target::Manifest {
            mode,
            source: ManifestSource::Csv(manifest),
        },
        flags,
        db: db.clone(),
        progress: ProgressMode::Quiet,
        report: None,
        api_key: Some(ApiKey::new(KEY).unwrap()),
        again: false,
    };
    let started = Instant::now();
    // In its own task, so that a panic anywhere in the run shows as a JoinError here.
    let result = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::spawn(runner::execute(request)),
    )
    .await
    .expect("the run did not end within 60 s")
    .expect("the run panicked");
    Run {
        _dir: dir,
        db,
        result,
        took: started.elapsed(),
        probes: usize::from(mode == RunMode::Submit),
    }
}

/// Nothing a bad answer said was recorded as a result.
fn assert_no_result_recorded(bad: Bad, run: &Run) {
    let jobs = run.jobs();
    assert_eq!(jobs.len(), JOBS);
    for job in &jobs {
        assert_ne!(job.state, JobState::Done, "{bad:?}: {job:?}");
        assert_ne!(
            job.signature_confirmed,
            Some(false),
            "{bad:?}: an unconfirmed result was stored: {job:?}"
        );
        assert_eq!(job.result_code, None, "{bad:?}: {job:?}");
        assert_eq!(job.result_json, None, "{bad:?}: {job:?}");
    }
}

/// Every job spent its attempts and gave up; exit 3; the run is finished.
fn assert_gave_up(bad: Bad, run: &Run, server: &BadServer) {
    let finished = run
        .result
        .as_ref()
        .unwrap_or_else(|e| panic!("{bad:?}: expected exit 3, got {:?}: {}", e.outcome(), e));
    assert_eq!(finished.outcome, ExitStatus::JobErrors, "{bad:?}");
    assert_eq!(finished.outcome.code(), 3);
    assert_no_result_recorded(bad, run);
    for job in run.jobs() {
        assert_eq!(job.state, JobState::GaveUp, "{bad:?}: {job:?}");
        assert_eq!(job.attempts, MAX_ATTEMPTS as i64, "{bad:?}: {job:?}");
        let error = job.last_error.unwrap_or_default();
        assert!(error.starts_with("gave up after 3 attempts"), "{error}");
    }
    assert_eq!(
        server.hits() - run.probes,
        JOBS * MAX_ATTEMPTS,
        "{bad:?}: exactly the attempt budget was spent"
    );
    assert_eq!(run.status(), RunStatus::Finished);
}

/// The breaker tripped after `BREAKER_THRESHOLD` requests: exit 1 naming the cause, every
/// job left pending for `resume`.
fn assert_tripped(bad: Bad, run: &Run, server: &BadServer, cause: &str) {
    let failure = match &run.result {
        Err(f) => f,
        Ok(f) => panic!("{bad:?}: expected the breaker to trip, got {:?}", f.outcome),
    };
    assert_eq!(failure.outcome(), ExitStatus::Fatal, "{bad:?}");
    assert_eq!(failure.code(), 1);
    match failure {
        Error::Breaker { why, .. } => assert!(why.contains(cause), "{bad:?}: {why}"),
        other => panic!("{bad:?}: expected the breaker, got {other:?}"),
    }
    assert!(
        failure.to_string().contains("repeated systemic failures"),
        "{bad:?}: {failure}"
    );
    assert_no_result_recorded(bad, run);
    let jobs = run.jobs();
    assert!(
        jobs.iter().all(|j| !j.state.is_final()),
        "{bad:?}: no job is failed by a systemic error: {jobs:?}"
    );
    assert_eq!(
        server.hits() - run.probes,
        runner::BREAKER_THRESHOLD as usize,
        "{bad:?}: one probe at a time, stopped at the threshold"
    );
    assert_eq!(run.status(), RunStatus::Interrupted);
}

/// The client, then a whole submit run and a whole poll run, each against a fresh server.
async fn corpus_case(bad: Bad) -> Vec<ApiError> {
    let (_, errors) = through_the_client(bad).await;
    let modes: &[RunMode] = if bad == Bad::JobCompleteString {
        // job_complete exists only in job_status answers
        &[RunMode::Poll]
    } else {
        &[RunMode::Submit, RunMode::Poll]
    };
    for &mode in modes {
        let server = start(bad).await;
        let run = whole_run(server.addr, mode).await;
        match bad {
            Bad::WrongSignature => assert_tripped(bad, &run, &server, "does not confirm"),
            Bad::NeverAnswers => {
                assert_tripped(bad, &run, &server, "no answer");
                // 5 timeouts in a row, each bounded by the request timeout
                assert!(run.took < Duration::from_secs(10), "{:?}", run.took);
            }
            Bad::ResetMidBody => assert_tripped(bad, &run, &server, "cannot reach"),
            // A base URL that redirects (http -> https, a moved host) or answers
            // something that is not Smile ID's JSON stops the run; no job is failed.
            Bad::Redirect(_)
            | Bad::NonJson200
            | Bad::TruncatedJson
            | Bad::MissingSignature
            | Bad::JobCompleteString
            | Bad::FiftyMiB => {
                assert_tripped(bad, &run, &server, "does the base URL lead to Smile ID")
            }
            Bad::Html502 => assert_gave_up(bad, &run, &server),
        }
        assert_eq!(
            server.elsewhere_hits.load(Ordering::SeqCst),
            0,
            "{bad:?}: a redirect was followed"
        );
        let mut states = BTreeMap::<&str, usize>::new();
        for job in run.jobs() {
            *states.entry(job.state.as_str()).or_default() += 1;
        }
        let exit = match &run.result {
            Ok(f) => f.outcome.code(),
            Err(f) => f.code(),
        };
        println!(
            "RELIABILITY {bad:?} {}: exit {exit}, {states:?}, {} requests, {:.2} s",
            mode.as_str(),
            server.hits(),
            run.took.as_secs_f64()
        );
    }
    errors
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_json_200_is_unparseable_and_trips_the_breaker() {
    let errors = corpus_case(Bad::NonJson200).await;
    match &errors[0] {
        ApiError::Unparseable { body, .. } => assert_eq!(body, "OK"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_html_502_is_a_retryable_http_status_and_jobs_give_up() {
    let errors = corpus_case(Bad::Html502).await;
    match &errors[0] {
        ApiError::HttpStatus { body, .. } => assert!(body.contains("502 Bad Gateway"), "{body}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_json_is_unparseable_and_trips_the_breaker() {
    let errors = corpus_case(Bad::TruncatedJson).await;
    for e in &errors {
        match e {
            ApiError::Unparseable { reason, .. } => assert!(reason.contains("EOF"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_signature_is_unparseable_never_trusted() {
    // A signed answer must carry its signature: without one it does not parse, so it is
    // neither trusted nor confirmed; like a wrong signature, it stops the run (a proxy
    // that strips signatures is systemic).
    let errors = corpus_case(Bad::MissingSignature).await;
    for e in &errors {
        match e {
            ApiError::Unparseable { reason, .. } => {
                assert!(reason.contains("signature"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_signature_is_unconfirmed_and_trips_the_breaker() {
    let errors = corpus_case(Bad::WrongSignature).await;
    assert!(
        errors
            .iter()
            .all(|e| matches!(e, ApiError::Unconfirmed { .. }))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_complete_as_a_string_is_refused_not_read_leniently() {
    // `JobStatusResponse::job_complete` is a plain `bool` (src/api/models.rs): unlike the
    // codes (`lenient_string`), it gets no lenient parse, so `"true"` makes the whole
    // answer unparseable. That is the safe side: a string cannot make a job final, and
    // the job is asked again until it gives up.
    let errors = corpus_case(Bad::JobCompleteString).await;
    match &errors[0] {
        ApiError::Unparseable { reason, .. } => {
            assert!(reason.contains("expected a boolean"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifty_mib_body_is_refused_at_the_cap() {
    let errors = corpus_case(Bad::FiftyMiB).await;
    for e in &errors {
        match e {
            ApiError::Unparseable { reason, body, .. } => {
                assert!(
                    reason.contains(&format!("larger than {MAX_BODY_BYTES} bytes")),
                    "{reason}"
                );
                assert!(body.len() <= 4096, "the error keeps {} bytes", body.len());
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_times_out_and_trips_the_breaker() {
    corpus_case(Bad::NeverAnswers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_reset_mid_body_is_a_transport_error_and_trips_the_breaker() {
    corpus_case(Bad::ResetMidBody).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_301_is_not_followed_and_trips_the_breaker() {
    corpus_case(Bad::Redirect(301)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_302_is_not_followed_and_trips_the_breaker() {
    corpus_case(Bad::Redirect(302)).await;
}

// ---- signed but empty answers -------------------------------------------------------

/// Answers every POST with `body` made fresh (and correctly signed) each time.
async fn signed_server(body: fn() -> Value) -> SocketAddr {
    serve(Router::new().fallback(move || async move {
        let stamp = creds().stamp_now();
        let mut b = body();
        b["timestamp"] = json!(stamp.timestamp);
        b["signature"] = json!(stamp.signature);
        json_response(StatusCode::OK, b.to_string())
    }))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_sync_answer_without_a_result_code_is_never_final() {
    // A correctly signed `/v2/verify` answer that carries no ResultCode at all parses (every
    // result field is optional) but has no outcome to record: the job is asked again and,
    // when the server keeps answering so, gives up. Never `done` with an empty result.
    let addr = signed_server(|| json!({})).await;
    let run = whole_run(addr, RunMode::Submit).await;
    let finished = run.result.as_ref().unwrap();
    assert_eq!(finished.outcome, ExitStatus::JobErrors);
    for job in run.jobs() {
        assert_eq!(job.state, JobState::GaveUp, "{job:?}");
        assert_eq!(job.result_code, None);
        assert!(
            job.last_error
                .as_deref()
                .unwrap_or("")
                .contains("without a ResultCode"),
            "{job:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_complete_status_without_a_result_is_never_final() {
    // The same through job_status: `job_complete: true` with no `result` object.
    let addr = signed_server(|| json!({"job_complete": true, "code": "2302"})).await;
    let run = whole_run(addr, RunMode::Poll).await;
    let finished = run.result.as_ref().unwrap();
    assert_eq!(finished.outcome, ExitStatus::JobErrors);
    for job in run.jobs() {
        assert_eq!(job.state, JobState::GaveUp, "{job:?}");
        assert_eq!(job.result_code, None);
        assert!(
            job.last_error
                .as_deref()
                .unwrap_or("")
                .contains("carries no result"),
            "{job:?}"
        );
    }
}
