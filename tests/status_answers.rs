//! Every answer the API can give (issue 13): job_status codes in both of seed 000's
//! shapes (a signed HTTP 200 with `job_complete: false`, or an unsigned `{"code",
//! "error"}` with a 4xx), answers about another job, absurd `Retry-After`s and results
//! that never come. Each is met by the real binary, against our sandbox or a stand-in
//! server that answers the way the seeds allow but we never chose, and each run must end
//! by itself with the documented exit status.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use smile_recon::api::client::MAX_RETRY_AFTER;
use smile_recon::sandbox::{PreloadedJob, StatusErrors};
use smile_recon::store::{JobRecord, JobState, Store};

use common::{KEY, PARTNER};

type Handler = Arc<dyn Fn(&str, &Value) -> Response + Send + Sync>;

/// A stand-in for Smile ID on loopback: `handler` answers each request from its path and
/// JSON body (`Null` when the body is not JSON).
async fn stand_in(handler: Handler) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = Router::new().fallback(move |uri: Uri, body: Bytes| {
        let handler = handler.clone();
        async move {
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            handler(uri.path(), &body)
        }
    });
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// `body` with a fresh timestamp and its signature, as Smile ID signs its answers.
fn signed(mut body: Value) -> Value {
    let stamp = common::creds().stamp_now();
    body["timestamp"] = json!(stamp.timestamp);
    body["signature"] = json!(stamp.signature);
    body
}

/// The job_status error `code` in `shape`.
fn status_error(shape: StatusErrors, code: &str, text: &str) -> Response {
    match shape {
        StatusErrors::Http | StatusErrors::Mixed => {
            let status = if code == "2301" {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::BAD_REQUEST
            };
            json_response(status, json!({"code": code, "error": text}))
        }
        StatusErrors::Signed => json_response(
            StatusCode::OK,
            signed(
                json!({"job_complete": false, "job_success": false, "code": code, "result": text}),
            ),
        ),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// Runs the binary with the common flags, killing it after `limit`: a run that does not
/// end by itself fails the test rather than hanging it.
fn run(args: &[&str], db: &Path, base_url: &str, limit: Duration) -> (Output, Duration) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_smile-recon"))
        .args(args)
        .args(["--db", db.to_str().unwrap(), "--base-url", base_url])
        .args(["--partner-id", PARTNER, "--rate", "0", "--quiet"])
        .args(["--timeout", "2", "--connect-timeout", "1"])
        .env("SMILE_API_KEY", KEY)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{args:?} still running after {limit:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (child.wait_with_output().unwrap(), started.elapsed())
}

fn jobs(db: &Path) -> Vec<JobRecord> {
    let store = Store::open_read_only(db).unwrap();
    let run = store.latest_run(false).unwrap().unwrap();
    let mut jobs = Vec::new();
    store
        .for_each_job(run.id, |j| {
            jobs.push(j);
            Ok(())
        })
        .unwrap();
    jobs
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_answers_job_status_errors_in_the_chosen_shape() {
    let unknown = common::signed(common::status_body("nobody", "no-such-job"));
    for shape in [
        StatusErrors::Http,
        StatusErrors::Signed,
        StatusErrors::Mixed,
    ] {
        let mut config = common::config();
        config.status_errors = shape;
        config.seed = 5;
        let sb = common::start(config).await;
        let (mut signed_seen, mut http_seen) = (0, 0);
        for _ in 0..40 {
            let a = common::post(&sb, "/v1/job_status", &unknown).await;
            assert_eq!(a.code(), "2304", "{shape:?}: {}", a.text);
            if a.status == StatusCode::OK {
                assert!(a.confirms(), "{shape:?}: a signed error must confirm");
                assert_eq!(a.json()["job_complete"], false);
                assert_eq!(a.json()["result"], "Job not found");
                signed_seen += 1;
            } else {
                assert_eq!(a.status, StatusCode::NOT_FOUND);
                assert!(a.json().get("signature").is_none());
                http_seen += 1;
            }
        }
        match shape {
            StatusErrors::Http => assert_eq!((signed_seen, http_seen), (0, 40)),
            StatusErrors::Signed => assert_eq!((signed_seen, http_seen), (40, 0)),
            StatusErrors::Mixed => assert!(signed_seen > 5 && http_seen > 5, "{signed_seen}"),
        }
        // A bad signature (2305) and a missing field (2313) follow the same shape.
        let mut bad = unknown.clone();
        bad["signature"] = json!("AAAA");
        let a = common::post(&sb, "/v1/job_status", &bad).await;
        assert_eq!(a.code(), "2305");
        let mut missing = unknown.clone();
        missing.as_object_mut().unwrap().remove("job_id");
        let a = common::post(&sb, "/v1/job_status", &missing).await;
        assert_eq!(a.code(), "2313");
        if shape == StatusErrors::Signed {
            assert_eq!(a.status, StatusCode::OK);
        }
        sb.shutdown().await;
    }
}

/// A poll of job_ids Smile ID never heard of ends by itself, without `--deadline`: every
/// job "job not found" (2304), a discrepancy, exit 4, in both shapes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_of_unknown_jobs_ends_with_not_found_in_both_shapes() {
    for shape in [StatusErrors::Signed, StatusErrors::Http] {
        let mut config = common::config();
        config.status_errors = shape;
        let sb = common::start(config).await;
        let dir = tempfile::tempdir().unwrap();
        let manifest = write(
            dir.path(),
            "poll.csv",
            "user_id,job_id\nu-1,never-sent-1\nu-2,never-sent-2\n",
        );
        let db = dir.path().join("runs.db");
        let (out, took) = run(
            &["poll", "--manifest", &manifest],
            &db,
            &sb.base_url(),
            Duration::from_secs(60),
        );
        assert_eq!(out.status.code(), Some(4), "{shape:?}: {}", stderr(&out));
        assert!(took < Duration::from_secs(30), "{shape:?}: {took:?}");
        for job in jobs(&db) {
            assert_eq!(job.state, JobState::Failed, "{shape:?}: {job:?}");
            assert_eq!(job.last_code.as_deref(), Some("2304"), "{shape:?}");
            assert_eq!(job.result_code, None);
        }
        sb.shutdown().await;
    }
}

/// Seed 000/001's job_status codes other than 2302 get the catalogue's treatment in both
/// shapes: 2314, 2310 and 2307 end the job in error at once; 2301 is retried until the
/// attempts run out; none of them leaves a job waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_status_codes_get_the_catalogue_treatment_in_both_shapes() {
    for shape in [StatusErrors::Signed, StatusErrors::Http] {
        let url = stand_in(Arc::new(move |path, body| {
            assert_eq!(path, "/v1/job_status");
            let job_id = body["job_id"].as_str().unwrap_or_default();
            let code = job_id.rsplit('-').next().unwrap_or_default().to_owned();
            let text = smile_recon::api::codes::lookup(&code).map_or("?", |c| c.text);
            status_error(shape, &code, text)
        }))
        .await;
        let dir = tempfile::tempdir().unwrap();
        let manifest = write(
            dir.path(),
            "poll.csv",
            "user_id,job_id\nu,j-2314\nu,j-2310\nu,j-2307\nu,j-2301\n",
        );
        let db = dir.path().join("runs.db");
        let (out, _) = run(
            &["poll", "--manifest", &manifest, "--max-attempts", "3"],
            &db,
            &url,
            Duration::from_secs(60),
        );
        assert_eq!(out.status.code(), Some(3), "{shape:?}: {}", stderr(&out));
        for job in jobs(&db) {
            let code = job.job_id.rsplit('-').next().unwrap().to_owned();
            assert_eq!(job.last_code.as_deref(), Some(code.as_str()), "{job:?}");
            assert_eq!(job.result_code, None, "{job:?}");
            if code == "2301" {
                assert_eq!(job.state, JobState::GaveUp, "{shape:?}: {job:?}");
                assert_eq!(job.attempts, 3, "{job:?}");
            } else {
                assert_eq!(job.state, JobState::Failed, "{shape:?}: {job:?}");
            }
        }
    }
}

/// A job_status manifest of `n` jobs nobody has heard of: `user-I,job-I`.
fn poll_manifest(dir: &Path, n: usize) -> String {
    let rows: String = (0..n).map(|i| format!("user-{i},job-{i}\n")).collect();
    write(dir, "poll.csv", &format!("user_id,job_id\n{rows}"))
}

const VERIFY_HEADER: &str =
    "country,id_type,id_number,first_name,last_name,dob,gender,phone_number,user_id,job_id\n";

fn verify_manifest(dir: &Path, rows: usize) -> String {
    let mut text = VERIFY_HEADER.to_owned();
    for i in 0..rows {
        text.push_str(&format!(
            "NG,BVN,{:011},Ada,Obi,1990-01-0{},F,08000000000,user-{i},job-{i}\n",
            10_000_000 + i,
            1 + i % 9
        ));
    }
    write(dir, "verify.csv", &text)
}

/// A signed answer about another job (a proxy or cache mixing answers) is never recorded,
/// and a run that sees only such answers trips its circuit breaker: exit 1, jobs pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_for_another_job_are_never_recorded_and_trip_the_breaker() {
    let url = stand_in(Arc::new(|path, _body| {
        let other = json!({"job_id": "someone-else", "user_id": "other-user", "job_type": 5});
        let result = json!({
            "ResultCode": "1020", "ResultText": "Exact Match", "SmileJobID": "0000000042",
            "PartnerParams": other,
        });
        match path {
            "/v1/job_status" => json_response(
                StatusCode::OK,
                signed(json!({"job_complete": true, "job_success": true, "code": "2302", "result": result})),
            ),
            "/v2/verify" => json_response(StatusCode::OK, signed(result)),
            _ => json_response(StatusCode::NOT_FOUND, json!({"error": "no"})),
        }
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let poll = poll_manifest(dir.path(), 8);
    let verify = verify_manifest(dir.path(), 8);
    for (args, db) in [
        (
            vec!["poll", "--manifest", &poll],
            dir.path().join("poll.db"),
        ),
        (
            vec!["submit", "--manifest", &verify, "--endpoint", "verify"],
            dir.path().join("verify.db"),
        ),
    ] {
        let (out, _) = run(&args, &db, &url, Duration::from_secs(60));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("another job"), "{err}");
        let jobs = jobs(&db);
        assert_eq!(jobs.len(), 8);
        for job in jobs {
            assert!(!job.state.is_final(), "{args:?}: {job:?}");
            assert_eq!(job.result_code, None);
            assert_eq!(job.result_json, None);
        }
    }
}

/// `Retry-After: 999999` or a date in the year 9999 parks a job for at most
/// `MAX_RETRY_AFTER`, and the run still ends by itself (here at its `--deadline`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absurd_retry_after_is_capped() {
    for value in ["999999", "Fri, 31 Dec 9999 23:59:59 GMT"] {
        let url = stand_in(Arc::new(move |_path, _body| {
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, value)],
                "slow down",
            )
                .into_response()
        }))
        .await;
        let dir = tempfile::tempdir().unwrap();
        let manifest = write(dir.path(), "poll.csv", "user_id,job_id\nu,j\n");
        let db = dir.path().join("runs.db");
        let (out, took) = run(
            &["poll", "--manifest", &manifest, "--deadline", "2"],
            &db,
            &url,
            Duration::from_secs(60),
        );
        assert_eq!(out.status.code(), Some(3), "{value}: {}", stderr(&out));
        assert!(took < Duration::from_secs(20), "{value}: {took:?}");
        let conn = rusqlite::Connection::open(&db).unwrap();
        let (next, updated): (i64, i64) = conn
            .query_row("SELECT next_attempt_at, updated_at FROM jobs", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        let parked = Duration::from_millis((next - updated).max(0) as u64);
        assert!(
            parked <= MAX_RETRY_AFTER + Duration::from_secs(5) && parked >= MAX_RETRY_AFTER / 2,
            "{value}: parked for {parked:?}"
        );
    }
}

/// A sandbox holding one job of its first registered person, `user_id` u-1, still
/// "being processed" for `pending_for`, and a poll manifest that asks for it.
async fn sandbox_with_pending_job(
    dir: &Path,
    job_id: &str,
    pending_for: Duration,
    enhanced: bool,
) -> (smile_recon::sandbox::RunningSandbox, String) {
    let mut config = common::config();
    let person = config.registry.people()[0].clone();
    config.preload = vec![PreloadedJob {
        user_id: "u-1".into(),
        job_id: job_id.into(),
        id_info: smile_recon::api::models::IdInfo {
            country: person.country.clone(),
            id_type: person.id_type.clone(),
            id_number: person.id_number.clone(),
            ..Default::default()
        },
        enhanced,
        pending_for,
    }];
    let sb = common::start(config).await;
    let manifest = write(dir, "poll.csv", &format!("user_id,job_id\nu-1,{job_id}\n"));
    (sb, manifest)
}

/// A job whose result never comes gives up at `--result-timeout` after its first request
/// ("still pending at the deadline"), and the run ends with exit 3: no `--deadline`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_that_never_comes_gives_up_at_the_result_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let (sb, manifest) = sandbox_with_pending_job(
        dir.path(),
        "pending-for-a-day",
        Duration::from_secs(86_400),
        false,
    )
    .await;
    let db = dir.path().join("runs.db");
    let (out, took) = run(
        &[
            "poll",
            "--manifest",
            &manifest,
            "--result-timeout",
            "2",
            "--poll-interval",
            "0.2",
        ],
        &db,
        &sb.base_url(),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(took < Duration::from_secs(20), "{took:?}");
    let job = &jobs(&db)[0];
    assert_eq!(job.state, JobState::GaveUp);
    let error = job.last_error.as_deref().unwrap_or_default();
    assert!(error.contains("still pending at the deadline"), "{error}");
    assert!(job.polls >= 2, "{job:?}");
    sb.shutdown().await;
}

/// A job whose next poll would come after its `--result-timeout` is asked once more at
/// the limit itself: a result that came in between is recorded, not given up on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_that_comes_just_before_the_result_timeout_is_recorded() {
    // Polls at 0 s, then 2-4 s (still pending), then the cadence would wait 4-8 s more:
    // past the 5 s limit, while the result is ready at 4.5 s.
    let dir = tempfile::tempdir().unwrap();
    let (sb, manifest) = sandbox_with_pending_job(
        dir.path(),
        "ready-at-4.5s",
        Duration::from_millis(4_500),
        true,
    )
    .await;
    let db = dir.path().join("runs.db");
    let (out, _) = run(
        &[
            "poll",
            "--manifest",
            &manifest,
            "--result-timeout",
            "5",
            "--poll-interval",
            "4",
        ],
        &db,
        &sb.base_url(),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let job = &jobs(&db)[0];
    assert_eq!(job.state, JobState::Done, "{job:?}");
    assert_eq!(job.result_code.as_deref(), Some("1012"));
    sb.shutdown().await;
}

/// A job_status *error* about another job (top level, or in the result's `PartnerParams`)
/// is never taken as this job's, signed or not: systemic, the breaker stops the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_about_another_job_are_never_recorded() {
    let other = json!({"job_id": "someone-else", "user_id": "other-user"});
    let answers = [
        signed(
            json!({"job_complete": false, "code": "2304", "result": "Job not found",
                      "job_id": "someone-else", "user_id": "other-user"}),
        ),
        signed(json!({"job_complete": false, "code": "2310",
                      "result": {"ResultText": "No enrolled user found", "PartnerParams": other}})),
        json!({"code": "2314", "error": "No zip file received", "job_id": "someone-else"}),
    ];
    for answer in answers {
        let body = answer.clone();
        let url = stand_in(Arc::new(move |_path, _body| {
            json_response(StatusCode::OK, body.clone())
        }))
        .await;
        let dir = tempfile::tempdir().unwrap();
        let poll = poll_manifest(dir.path(), 8);
        let db = dir.path().join("poll.db");
        let (out, _) = run(
            &["poll", "--manifest", &poll, "--concurrency", "1"],
            &db,
            &url,
            Duration::from_secs(60),
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{answer}: {err}");
        assert!(err.contains("another job"), "{err}");
        for job in jobs(&db) {
            assert!(!job.state.is_final(), "{answer}: {job:?}");
        }
    }
}

/// A signed answer with code 2302 but no `job_complete` is not Smile ID's answer shape:
/// unparseable and systemic, never a job "failed with 2302 Success".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_success_code_without_job_complete_fails_no_job() {
    let url = stand_in(Arc::new(|_path, body| {
        let params = json!({"job_id": body["job_id"], "user_id": body["user_id"]});
        json_response(
            StatusCode::OK,
            signed(json!({"job_success": true, "code": "2302",
                          "result": {"ResultCode": "1020", "PartnerParams": params}})),
        )
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let poll = poll_manifest(dir.path(), 8);
    let db = dir.path().join("poll.db");
    let (out, _) = run(
        &["poll", "--manifest", &poll, "--concurrency", "1"],
        &db,
        &url,
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    for job in jobs(&db) {
        assert!(!job.state.is_final(), "{job:?}");
    }
}

/// `--result-timeout` bounds a job's wait even when its next turn (the callback grace
/// here, 30 s) would come later: an async submission whose result never comes ends at
/// the limit, not at the grace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_result_timeout_bounds_the_callback_grace() {
    let url = stand_in(Arc::new(|path, _body| match path {
        "/v2/verify_async" => json_response(StatusCode::OK, json!({"success": true})),
        "/v1/job_status" => json_response(
            StatusCode::OK,
            signed(
                json!({"job_complete": false, "job_success": false, "code": "2302",
                          "result": "Job is still being processed"}),
            ),
        ),
        _ => json_response(StatusCode::NOT_FOUND, json!({"error": "no"})),
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = verify_manifest(dir.path(), 3);
    let db = dir.path().join("runs.db");
    let (out, took) = run(
        &[
            "submit",
            "--manifest",
            &manifest,
            "--callback-listen",
            "127.0.0.1:0",
            "--callback-grace",
            "30",
            "--result-timeout",
            "3",
        ],
        &db,
        &url,
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(took < Duration::from_secs(15), "{took:?}");
    for job in jobs(&db) {
        assert_eq!(job.state, JobState::GaveUp, "{job:?}");
        let error = job.last_error.as_deref().unwrap_or_default();
        assert!(error.contains("still pending at the deadline"), "{error}");
    }
}
