//! The built-in callback receiver under abuse (issue 6), through a real `submit` run with
//! `--endpoint verify-async --callback-listen 127.0.0.1:0`.
//!
//! The run submits to a small fake Smile ID that acknowledges every async submission and
//! sends no callback itself; the test learns the receiver's address from the
//! `callback_url` the run puts in each submission (the URL the engine makes from the
//! receiver's bound address when no `--callback-url` is given), then plays Smile ID and
//! an attacker against it.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use serde_json::{Value, json};
use smile_recon::api::{ApiKey, Credentials, SubmitEndpoint};
use smile_recon::engine::callbacks::MAX_CALLBACK_BYTES;
use smile_recon::exit::{Error, ExitStatus};
use smile_recon::job_spec::RunMode;
use smile_recon::manifest::ManifestSource;
use smile_recon::runner::{self, Finished, Invocation, Layer, ProgressMode, Target};
use smile_recon::store::{EventKind, JobRecord, JobState, ResultSource, Store};
use tempfile::TempDir;
use tokio::task::JoinHandle;

const PARTNER: &str = "002";
const KEY: &str = "callback-abuse-test-key";

fn creds() -> Credentials {
    Credentials::new(PARTNER, ApiKey::new(KEY).unwrap()).unwrap()
}

/// What the fake Smile ID received: (job_id, user_id, callback_url) per submission.
type Submissions = Arc<Mutex<Vec<(String, String, String)>>>;

/// Acknowledges every async submission (`{"success": true}`) and records it; job_status
/// says "still processing" (the runs here wait long enough never to ask).
async fn fake_smile_id(submissions: Submissions) -> SocketAddr {
    let router = Router::new()
        .route(
            "/v2/verify_async",
            post(move |body: axum::Json<Value>| {
                let submissions = submissions.clone();
                async move {
                    let p = &body["partner_params"];
                    submissions.lock().unwrap().push((
                        p["job_id"].as_str().unwrap_or_default().to_owned(),
                        p["user_id"].as_str().unwrap_or_default().to_owned(),
                        body["callback_url"].as_str().unwrap_or_default().to_owned(),
                    ));
                    axum::Json(json!({"success": true}))
                }
            }),
        )
        .route(
            "/v1/job_status",
            post(|| async {
                let stamp = creds().stamp_now();
                axum::Json(json!({
                    "timestamp": stamp.timestamp, "signature": stamp.signature,
                    "job_complete": false, "code": "2302",
                    "result": "Job is still being processed"
                }))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    addr
}

struct AsyncRun {
    _dir: TempDir,
    db: PathBuf,
    submissions: Submissions,
    handle: JoinHandle<Result<Finished, Error>>,
    jobs: usize,
}

fn job_id(i: usize) -> String {
    format!("job-{i}")
}

fn user_id(i: usize) -> String {
    format!("user-{i}")
}

/// Starts a verify-async run of `jobs` rows (in its own task) against a fake Smile ID.
async fn start_run(jobs: usize, concurrency: usize) -> AsyncRun {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("manifest.csv");
    let mut text = String::from("country,id_type,id_number,first_name,last_name,user_id,job_id\n");
    for i in 0..jobs {
        text.push_str(&format!(
            "NG,BVN,{:011},Ada,Obi,{},{}\n",
            33_000_000_000u64 + i as u64,
            user_id(i),
            job_id(i)
        ));
    }
    std::fs::write(&manifest, text).unwrap();
    let submissions = Submissions::default();
    let base = fake_smile_id(submissions.clone()).await;
    let db = dir.path().join("runs.db");
    let flags = Layer {
        base_url: Some(format!("http://{base}")),
        partner_id: Some(PARTNER.into()),
        rate: Some(0.0),
        concurrency: Some(concurrency),
        max_attempts: Some(3),
        timeout: Some(10.0),
        endpoint: Some(SubmitEndpoint::VerifyAsync),
        callback_listen: Some("127.0.0.1:0".parse().unwrap()),
        // long enough that no job_status poll happens during the test: every result
        // must come through the receiver
        callback_grace: Some(600.0),
        // these tests are about the receiver itself: a callback's result is final
        callback_confirm: Some(smile_recon::engine::callbacks::CallbackConfirm::None),
        ..Layer::default()
    };
    let request = Invocation {
        command: "submit".into(),
        target: Target::Manifest {
            mode: RunMode::Submit,
            source: ManifestSource::Csv(manifest),
        },
        flags,
        db: db.clone(),
        progress: ProgressMode::Quiet,
        report: None,
        api_key: Some(ApiKey::new(KEY).unwrap()),
        again: false,
    };
    let handle = tokio::spawn(runner::execute(request));
    AsyncRun {
        _dir: dir,
        db,
        submissions,
        handle,
        jobs,
    }
}

fn read_jobs(db: &Path) -> Vec<JobRecord> {
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

impl AsyncRun {
    /// Waits until every row was submitted and acknowledged (every job `awaiting`), and
    /// returns the callback URL the run gave Smile ID.
    async fn accepted(&self, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let submitted = self.submissions.lock().unwrap().len();
            if submitted == self.jobs {
                let awaiting = read_jobs(&self.db)
                    .iter()
                    .filter(|j| j.state == JobState::Awaiting)
                    .count();
                if awaiting == self.jobs {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{submitted} of {} submitted within {within:?}",
                self.jobs
            );
            assert!(!self.handle.is_finished(), "the run ended early");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let subs = self.submissions.lock().unwrap();
        let url = subs[0].2.clone();
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        assert!(
            subs.iter().all(|s| s.2 == url),
            "one receiver for the whole run"
        );
        url
    }

    fn job(&self, i: usize) -> JobRecord {
        read_jobs(&self.db)
            .into_iter()
            .find(|j| j.job_id == job_id(i))
            .unwrap()
    }

    fn callback_events(&self) -> u64 {
        let store = Store::open_read_only(&self.db).unwrap();
        let run = store.latest_run(false).unwrap().unwrap();
        store
            .events_by_kind(run.id)
            .unwrap()
            .into_iter()
            .find(|(k, _)| *k == EventKind::Callback)
            .map_or(0, |(_, n)| n)
    }

    async fn finished(self, within: Duration) -> (Finished, Vec<JobRecord>) {
        let db = self.db.clone();
        let finished = tokio::time::timeout(within, self.handle)
            .await
            .expect("the run did not end once every callback was in")
            .expect("the run panicked")
            .unwrap_or_else(|f| panic!("the run failed: {f}"));
        (finished, read_jobs(&db))
    }
}

/// The result Smile ID would POST for job `i`, signed with `key`.
fn callback_with_key(i: usize, code: &str, key: &str) -> Value {
    let c = Credentials::new(PARTNER, ApiKey::new(key).unwrap()).unwrap();
    let timestamp = common::fresh_timestamp();
    let stamp = smile_recon::api::SignedStamp {
        signature: c.sign(&timestamp),
        timestamp,
    };
    let text = match code {
        "1020" => "Exact Match",
        "1022" => "No Match",
        _ => "Partial Match",
    };
    json!({
        "timestamp": stamp.timestamp,
        "signature": stamp.signature,
        "SmileJobID": format!("{:010}", i),
        "PartnerParams": {"job_id": job_id(i), "user_id": user_id(i), "job_type": 5},
        "ResultType": "ID Verification",
        "ResultText": text,
        "ResultCode": code,
        "IsFinalResult": "true",
        "Actions": {"Verify_ID_Number": "Verified", "Names": text, "Return_Personal_Info": "Returned"}
    })
}

fn callback(i: usize, code: &str) -> Value {
    callback_with_key(i, code, KEY)
}

/// `body` with a `Padding` field that makes it exactly `len` bytes of JSON.
fn padded(mut body: Value, len: usize) -> String {
    body["Padding"] = json!("");
    let base = body.to_string().len();
    body["Padding"] = json!("x".repeat(len - base));
    let text = body.to_string();
    assert_eq!(text.len(), len);
    text
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn send(http: &reqwest::Client, url: &str, body: impl Into<reqwest::Body>) -> (u16, String) {
    let r = http
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receiver_refuses_abuse_and_records_each_result_once() {
    let run = start_run(4, 4).await;
    let url = run.accepted(Duration::from_secs(30)).await;
    let http = http();
    let awaiting = |i: usize| {
        let job = run.job(i);
        assert_eq!(job.state, JobState::Awaiting, "{job:?}");
        assert_eq!(job.result_code, None, "{job:?}");
    };

    // A bad signature: 401, nothing recorded. Well-formed base64 for another timestamp,
    // then one made with another key.
    let mut forged = callback(0, "1022");
    forged["signature"] = json!(creds().sign("2000-01-01T00:00:00.000Z"));
    assert_eq!(
        send(&http, &url, forged.to_string()).await,
        (401, "signature does not confirm\n".into())
    );
    let other_key = callback_with_key(0, "1022", "someone-elses-key");
    assert_eq!(send(&http, &url, other_key.to_string()).await.0, 401);
    awaiting(0);
    assert_eq!(
        run.callback_events(),
        0,
        "a refused callback leaves no event"
    );

    // Over 1 MiB: 413 (a valid, signed result, only too large).
    // The receiver refuses it from its Content-Length without reading the body, so the
    // client may see the 413 or the connection closed under its upload; either way it is
    // not recorded.
    let oversize = padded(callback(1, "1020"), MAX_CALLBACK_BYTES + 1);
    let answer = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(&url)
        .header("content-type", "application/json")
        .body(oversize)
        .send()
        .await;
    if let Ok(r) = answer {
        assert_eq!(r.status().as_u16(), 413);
    }
    awaiting(1);

    // Unknown job_id, and a known job_id with another user_id: 404.
    let mut unknown = callback(0, "1020");
    unknown["PartnerParams"]["job_id"] = json!("job-nobody-has");
    unknown["PartnerParams"]["user_id"] = json!("user-nobody");
    assert_eq!(
        send(&http, &url, unknown.to_string()).await,
        (404, "unknown job_id\n".into())
    );
    let mut wrong_user = callback(0, "1020");
    wrong_user["PartnerParams"]["user_id"] = json!(user_id(3));
    assert_eq!(send(&http, &url, wrong_user.to_string()).await.0, 404);
    awaiting(0);

    // Malformed: 400.
    let text = callback(2, "1020").to_string();
    for bad in [
        "{not json".to_owned(),
        String::new(),
        "[1, 2, 3]".to_owned(),
        text[..text.len() / 2].to_owned(),
        "\u{0}\u{1}\u{2}".to_owned(),
    ] {
        assert_eq!(send(&http, &url, bad.clone()).await.0, 400, "{bad:?}");
    }
    let mut no_params = callback(2, "1020");
    no_params.as_object_mut().unwrap().remove("PartnerParams");
    assert_eq!(send(&http, &url, no_params.to_string()).await.0, 400);
    let mut no_signature = callback(2, "1020");
    no_signature.as_object_mut().unwrap().remove("signature");
    assert_eq!(send(&http, &url, no_signature.to_string()).await.0, 400);
    awaiting(2);
    assert_eq!(run.callback_events(), 0, "nothing recorded so far");

    // Just under the limit is accepted: the limit is 1 MiB, not less.
    let big = padded(callback(1, "1020"), MAX_CALLBACK_BYTES - 16);
    assert_eq!(send(&http, &url, big).await, (200, "recorded\n".into()));
    assert_eq!(run.job(1).state, JobState::Done);

    // The same callback twice: 200 both times, one state change. A different result for
    // a job already done changes nothing either (the first confirmed result stands).
    let once = callback(2, "1020").to_string();
    assert_eq!(
        send(&http, &url, once.clone()).await,
        (200, "recorded\n".into())
    );
    let first = serde_json::to_value(run.job(2)).unwrap();
    assert_eq!(first["state"], "done");
    assert_eq!(first["result_code"], "1020");
    assert_eq!(first["result_source"], "callback");
    assert_eq!(first["signature_confirmed"], true);
    assert_eq!(
        send(&http, &url, once).await,
        (200, "already recorded\n".into())
    );
    assert_eq!(
        send(&http, &url, callback(2, "1022").to_string()).await,
        (200, "already recorded\n".into())
    );
    assert_eq!(serde_json::to_value(run.job(2)).unwrap(), first);
    assert_eq!(run.callback_events(), 2, "jobs 1 and 2, once each");

    // The rest arrive properly; the run finishes with every job done, from callbacks.
    for i in [0, 3] {
        assert_eq!(
            send(&http, &url, callback(i, "1020").to_string()).await,
            (200, "recorded\n".into())
        );
    }
    let (finished, jobs) = run.finished(Duration::from_secs(30)).await;
    assert_eq!(finished.outcome, ExitStatus::Success);
    // job 0 included: it holds the genuine 1020, not the forged 1022 sent first
    for job in &jobs {
        assert_eq!(job.state, JobState::Done, "{job:?}");
        assert_eq!(job.result_code.as_deref(), Some("1020"), "{job:?}");
        assert_eq!(job.result_source, Some(ResultSource::Callback));
        assert_eq!(job.signature_confirmed, Some(true));
    }
    // the receiver stops with the run
    assert!(http.post(&url).body("{}").send().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_5000_callbacks_loses_none() {
    const JOBS: usize = 5_000;
    const IN_FLIGHT: usize = 64;
    let submitted_at = Instant::now();
    let run = start_run(JOBS, IN_FLIGHT).await;
    let url = run.accepted(Duration::from_secs(180)).await;
    let submitting = submitted_at.elapsed();

    let http = http();
    let next = Arc::new(AtomicUsize::new(0));
    let statuses = Arc::new(Mutex::new(BTreeMap::<(u16, String), usize>::new()));
    let started = Instant::now();
    let mut senders = Vec::new();
    for _ in 0..IN_FLIGHT {
        let (http, url, next, statuses) =
            (http.clone(), url.clone(), next.clone(), statuses.clone());
        senders.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= JOBS {
                    break;
                }
                let code = ["1020", "1021", "1022"][i % 3];
                // As Smile ID would, a callback refused for want of room (503, 408 on a
                // starved machine) is sent again, freshly signed; the guarantee is that
                // none is lost and each is recorded once.
                let mut answer = send(&http, &url, callback(i, code).to_string()).await;
                for _ in 0..4 {
                    if answer.0 != 503 && answer.0 != 408 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    answer = send(&http, &url, callback(i, code).to_string()).await;
                }
                *statuses.lock().unwrap().entry(answer).or_default() += 1;
            }
        }));
    }
    for s in senders {
        s.await.unwrap();
    }
    let flooding = started.elapsed();
    let statuses = statuses.lock().unwrap().clone();
    assert_eq!(
        statuses,
        BTreeMap::from([((200, "recorded\n".to_owned()), JOBS)]),
        "every callback recorded"
    );
    assert_eq!(run.callback_events(), JOBS as u64);

    let (finished, jobs) = run.finished(Duration::from_secs(60)).await;
    assert_eq!(finished.outcome, ExitStatus::Success);
    assert_eq!(jobs.len(), JOBS);
    let mut by_code = BTreeMap::<String, usize>::new();
    for job in &jobs {
        assert_eq!(job.state, JobState::Done, "{job:?}");
        assert_eq!(job.result_source, Some(ResultSource::Callback));
        assert_eq!(job.signature_confirmed, Some(true));
        *by_code
            .entry(job.result_code.clone().unwrap_or_default())
            .or_default() += 1;
    }
    // each job holds its own result: job i got code [1020, 1021, 1022][i % 3]
    for job in &jobs {
        let i: usize = job.job_id.trim_start_matches("job-").parse().unwrap();
        assert_eq!(
            job.result_code.as_deref(),
            Some(["1020", "1021", "1022"][i % 3]),
            "{job:?}"
        );
    }
    let done = jobs.iter().filter(|j| j.state == JobState::Done).count();
    println!(
        "RELIABILITY flood: {JOBS} jobs submitted and acknowledged in {:.1} s; {JOBS} callbacks \
         at {IN_FLIGHT} concurrent in {:.2} s ({:.0}/s): {done} recorded, {} lost; by code {by_code:?}",
        submitting.as_secs_f64(),
        flooding.as_secs_f64(),
        JOBS as f64 / flooding.as_secs_f64(),
        JOBS - done
    );
}
