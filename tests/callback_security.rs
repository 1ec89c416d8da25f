//! Issue 14, findings 1-3: the callback receiver attacked as an attacker would (loopback
//! only), through real `submit --endpoint verify-async --callback-listen 127.0.0.1:0` runs
//! against a fake Smile ID whose job_status knows each job's genuine result.
//!
//! 1. forged results through replay: a stale or replayed (timestamp, signature) pair, or a
//!    callback for a job never sent, is refused and writes nothing;
//! 2. one slow client does not hold a finished run;
//! 3. a flood of idle and slow connections, under `ulimit -n 1024`, neither exhausts file
//!    descriptors nor memory, and the run still ends with every job's genuine result.

mod common;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use serde_json::{Value, json};
use smile_recon::api::{ApiKey, Credentials, SubmitEndpoint};
use smile_recon::engine::callbacks::CallbackConfirm;
use smile_recon::exit::{Error, ExitStatus};
use smile_recon::job_spec::RunMode;
use smile_recon::manifest::ManifestSource;
use smile_recon::runner::{self, Finished, Invocation, Layer, ProgressMode, Target};
use smile_recon::store::{EventKind, JobRecord, JobState, ResultSource, Store};
use tempfile::TempDir;
use tokio::io::AsyncWriteExt;
use tokio::task::JoinHandle;

const PARTNER: &str = "002";
const KEY: &str = "callback-security-test-key";

fn creds() -> Credentials {
    Credentials::new(PARTNER, ApiKey::new(KEY).unwrap()).unwrap()
}

fn job_id(i: usize) -> String {
    format!("job-{i}")
}

fn user_id(i: usize) -> String {
    format!("user-{i}")
}

/// Job i's genuine result, as job_status tells it.
fn genuine(i: usize) -> &'static str {
    ["1022", "1020", "1021"][i % 3]
}

/// What the fake Smile ID received: (job_id, callback_url) per submission.
type Submissions = Arc<Mutex<Vec<(String, String)>>>;

/// Acknowledges every async submission; job_status answers each job's genuine result.
async fn fake_smile_id(submissions: Submissions) -> SocketAddr {
    let router = Router::new()
        .route(
            "/v2/verify_async",
            post(move |body: axum::Json<Value>| {
                let submissions = submissions.clone();
                async move {
                    submissions.lock().unwrap().push((
                        body["partner_params"]["job_id"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                        body["callback_url"].as_str().unwrap_or_default().to_owned(),
                    ));
                    axum::Json(json!({"success": true}))
                }
            }),
        )
        .route(
            "/v1/job_status",
            post(|body: axum::Json<Value>| async move {
                let id = body["job_id"].as_str().unwrap_or_default();
                let i: usize = id.trim_start_matches("job-").parse().unwrap_or(0);
                let stamp = creds().stamp_now();
                axum::Json(json!({
                    "timestamp": stamp.timestamp, "signature": stamp.signature,
                    "job_complete": true, "job_success": genuine(i) != "1022", "code": "2302",
                    "result": {
                        "ResultCode": genuine(i), "ResultText": "genuine",
                        "SmileJobID": format!("{i:010}"),
                        "PartnerParams": {"job_id": id, "user_id": user_id(i), "job_type": 5}
                    }
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

fn manifest(dir: &Path, jobs: usize) -> PathBuf {
    let path = dir.join("manifest.csv");
    let mut text = String::from("country,id_type,id_number,first_name,last_name,user_id,job_id\n");
    for i in 0..jobs {
        text.push_str(&format!(
            "NG,BVN,{:011},Ada,Obi,{},{}\n",
            44_000_000_000u64 + i as u64,
            user_id(i),
            job_id(i)
        ));
    }
    std::fs::write(&path, text).unwrap();
    path
}

struct Run {
    _dir: TempDir,
    db: PathBuf,
    submissions: Submissions,
    handle: JoinHandle<Result<Finished, Error>>,
}

/// A verify-async run in this process. `rate`: submissions per second (0: unlimited).
async fn start_run(jobs: usize, rate: f64, burst: u32) -> Run {
    start_run_confirming(jobs, rate, burst, CallbackConfirm::JobStatus).await
}

/// [`start_run`], with callbacks' results confirmed by job_status or taken as they are.
async fn start_run_confirming(jobs: usize, rate: f64, burst: u32, confirm: CallbackConfirm) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(dir.path(), jobs);
    let submissions = Submissions::default();
    let base = fake_smile_id(submissions.clone()).await;
    let db = dir.path().join("runs.db");
    let flags = Layer {
        base_url: Some(format!("http://{base}")),
        partner_id: Some(PARTNER.into()),
        rate: Some(rate),
        burst: Some(burst),
        concurrency: Some(1),
        max_attempts: Some(3),
        timeout: Some(10.0),
        endpoint: Some(SubmitEndpoint::VerifyAsync),
        callback_listen: Some("127.0.0.1:0".parse().unwrap()),
        // no job_status poll for want of a callback during the test
        callback_grace: Some(600.0),
        callback_confirm: Some(confirm),
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
    Run {
        _dir: dir,
        db,
        submissions,
        handle,
    }
}

impl Run {
    /// The run's end, within 30 s (its folder stays until the run is dropped).
    async fn ends(&mut self) -> Finished {
        tokio::time::timeout(Duration::from_secs(30), &mut self.handle)
            .await
            .expect("the run did not end")
            .unwrap()
            .unwrap_or_else(|f| panic!("{f}"))
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

fn job(db: &Path, i: usize) -> JobRecord {
    read_jobs(db)
        .into_iter()
        .find(|j| j.job_id == job_id(i))
        .unwrap()
}

fn events(db: &Path) -> BTreeMap<EventKind, u64> {
    let store = Store::open_read_only(db).unwrap();
    let run = store.latest_run(false).unwrap().unwrap();
    store.events_by_kind(run.id).unwrap().into_iter().collect()
}

/// The receiver's URL, once the first `n` submissions were made.
async fn callback_url(submissions: &Submissions, n: usize, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        {
            let subs = submissions.lock().unwrap();
            if subs.len() >= n {
                return subs[0].1.clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "{n} submissions not made in time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_for(db: &Path, within: Duration, what: &str, ok: impl Fn(&[JobRecord]) -> bool) {
    let deadline = Instant::now() + within;
    while !ok(&read_jobs(db)) {
        assert!(Instant::now() < deadline, "not in time: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A signed callback for job `i` claiming `code`, with this (timestamp, signature) pair.
fn callback_with(i: usize, code: &str, timestamp: &str, signature: &str) -> Value {
    json!({
        "timestamp": timestamp,
        "signature": signature,
        "SmileJobID": format!("{i:010}"),
        "PartnerParams": {"job_id": job_id(i), "user_id": user_id(i), "job_type": 5},
        "ResultType": "ID Verification",
        "ResultText": "callback",
        "ResultCode": code,
        "IsFinalResult": "true",
    })
}

fn callback(i: usize, code: &str) -> Value {
    let t = common::fresh_timestamp();
    let s = creds().sign(&t);
    callback_with(i, code, &t, &s)
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn send(http: &reqwest::Client, url: &str, body: &Value) -> u16 {
    http.post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// Finding 1. One run of 20 jobs submitted at 1 a second (the first two at once): while
/// most are still queued, a stale pair, a callback for a queued job and 5,000 bad posts
/// are refused and write nothing, but for one claim per sent job: a used pair is taken
/// once more per job, as a claim job_status settles (two genuine callbacks signed in one
/// instant share a pair). No forged code becomes a result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_stale_and_unsent_callbacks_are_refused_without_a_write() {
    let run = start_run(20, 1.0, 2).await;
    let url = callback_url(&run.submissions, 2, Duration::from_secs(30)).await;
    let db = run.db.clone();
    wait_for(
        &db,
        Duration::from_secs(30),
        "jobs 0 and 1 awaiting",
        |jobs| jobs[..2].iter().all(|j| j.state == JobState::Awaiting),
    )
    .await;
    let http = http();
    let before = events(&db);

    // A pair from 2019: its signature confirms, but it is far outside the window.
    let old = "2019-03-01T10:00:00.000Z";
    let stale = callback_with(0, "1020", old, &creds().sign(old));
    assert_eq!(send(&http, &url, &stale).await, 401);
    // A callback for a job never sent (still queued).
    assert_eq!(job(&db, 19).state, JobState::Queued);
    assert_eq!(send(&http, &url, &callback(19, "1020")).await, 409);
    assert_eq!(
        job(&db, 19).state,
        JobState::Queued,
        "a queued job stays queued"
    );
    // The genuine callback for job 0, then its pair posted for job 1 with a false code:
    // taken once as a claim (job_status will overrule it), then refused as a replay.
    let t = common::fresh_timestamp();
    let s = creds().sign(&t);
    assert_eq!(
        send(&http, &url, &callback_with(0, genuine(0), &t, &s)).await,
        200
    );
    // Job 1's genuine result is 1020; this claims 1022.
    let replay = callback_with(1, "1022", &t, &s);
    assert_eq!(send(&http, &url, &replay).await, 200);
    // Job 1 now has a claim being confirmed: it takes no other callback, the same pair or
    // a fresh one (a proxy posting back each request's own pair cannot keep a job asking);
    // answered 200, nothing written. Nor does job 0.
    assert_eq!(send(&http, &url, &replay).await, 200);
    assert_eq!(send(&http, &url, &callback(0, genuine(0))).await, 200);
    assert_eq!(job(&db, 1).state, JobState::Awaiting);
    assert_eq!(job(&db, 1).result_code, None, "a claim is not a result");

    // 5,000 bad posts: replays and stale pairs for every job.
    let started = Instant::now();
    let mut refused = BTreeMap::<u16, usize>::new();
    let mut posts = Vec::new();
    for n in 0..5_000usize {
        let body = if n % 2 == 0 {
            callback_with(n % 20, "1020", &t, &s)
        } else {
            callback_with(n % 20, "1020", old, &creds().sign(old))
        };
        posts.push(body);
    }
    while !posts.is_empty() {
        let chunk: Vec<Value> = posts.drain(..posts.len().min(50)).collect();
        let mut set = tokio::task::JoinSet::new();
        for body in chunk {
            let (http, url) = (http.clone(), url.clone());
            set.spawn(async move { send(&http, &url, &body).await });
        }
        while let Some(a) = set.join_next().await {
            *refused.entry(a.unwrap()).or_default() += 1;
        }
    }
    let flooding = started.elapsed();
    let after = events(&db);
    let callbacks =
        |e: &BTreeMap<EventKind, u64>| e.get(&EventKind::Callback).copied().unwrap_or(0);
    assert_eq!(refused.values().sum::<usize>(), 5_000);
    assert!(
        refused.keys().all(|s| [200, 401, 409].contains(s)),
        "{refused:?}"
    );
    // At most one claim per sent job on the used pair (200; also 200, with nothing
    // written, for a job final or with a claim already).
    let sent = read_jobs(&db)
        .iter()
        .filter(|j| j.state != JobState::Queued)
        .count();
    assert_eq!(refused.get(&401).copied(), Some(2_500), "{refused:?}");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let per_job: Vec<(i64, i64)> = conn
        .prepare("SELECT job_row, COUNT(*) FROM events WHERE kind = 'callback' GROUP BY job_row")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    // One callback event per job at most: job 0's genuine one (its own pair again is a
    // replay), job 1's claim, one claim for each other job sent.
    assert!(per_job.iter().all(|(_, n)| *n == 1), "{per_job:?}");
    // The events: job 0's genuine callback, job 1's claim, and the flood's claims.
    let written = callbacks(&after) - callbacks(&before);
    assert!(
        (2..=2 + sent as u64).contains(&written),
        "{written} callback events, {sent} jobs sent; refused: {refused:?}"
    );
    // Jobs 0 and 1 get their genuine results (job_status settles the claims when the
    // dispatcher's pass comes round to them); no forged code is anyone's result.
    wait_for(&db, Duration::from_secs(60), "jobs 0 and 1 done", |jobs| {
        jobs[..2].iter().all(|j| j.state == JobState::Done)
    })
    .await;
    let jobs = read_jobs(&db);
    for (i, j) in jobs.iter().enumerate() {
        if j.state.is_final() {
            assert_eq!(j.result_code.as_deref(), Some(genuine(i)), "{j:?}");
            assert_eq!(j.result_source, Some(ResultSource::JobStatus), "{j:?}");
        }
    }
    println!(
        "RELIABILITY security replay: 1 stale pair, 1 pair reused for another job, 1 unsent \
         job and 5,000 bad posts in {:.2} s: {refused:?}, {written} callback events ({sent} \
         jobs sent), no forged result",
        flooding.as_secs_f64()
    );
    run.handle.abort();
}

/// Two genuine callbacks signed in the same instant carry one (timestamp, signature) pair:
/// the signature covers only the timestamp, which Smile ID may write to the millisecond.
/// With job_status confirming (the default) both are taken, each a claim job_status
/// settles; with `none`, where a callback is the result, the pair is taken once and the
/// second job waits for job_status after the grace. A third post of the pair writes
/// nothing either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_callbacks_signed_in_the_same_instant_share_a_pair() {
    // (confirm, the second job's answer, its answer to the pair again)
    for (confirm, second, again) in [
        (CallbackConfirm::JobStatus, 200, 200),
        (CallbackConfirm::None, 409, 409),
    ] {
        let mut run = start_run_confirming(2, 0.0, 5, confirm).await;
        let url = callback_url(&run.submissions, 2, Duration::from_secs(30)).await;
        let db = run.db.clone();
        wait_for(&db, Duration::from_secs(30), "both awaiting", |jobs| {
            jobs.iter().all(|j| j.state == JobState::Awaiting)
        })
        .await;
        let http = http();
        let t = common::fresh_timestamp();
        let s = creds().sign(&t);
        let first = callback_with(0, genuine(0), &t, &s);
        let other = callback_with(1, genuine(1), &t, &s);
        assert_eq!(send(&http, &url, &first).await, 200, "{confirm:?}");
        assert_eq!(send(&http, &url, &other).await, second, "{confirm:?}");
        // job-status: job 1's claim is being confirmed (nothing more written); none: the
        // pair was used.
        assert_eq!(send(&http, &url, &other).await, again, "{confirm:?}");
        match confirm {
            CallbackConfirm::JobStatus => {
                let finished = run.ends().await;
                assert_eq!(finished.outcome, ExitStatus::Success);
                for (i, j) in read_jobs(&db).iter().enumerate() {
                    assert_eq!(j.result_code.as_deref(), Some(genuine(i)), "{j:?}");
                    assert_eq!(j.result_source, Some(ResultSource::JobStatus), "{j:?}");
                }
            }
            CallbackConfirm::None => {
                wait_for(&db, Duration::from_secs(30), "job 0 done", |jobs| {
                    jobs[0].state == JobState::Done
                })
                .await;
                let jobs = read_jobs(&db);
                assert_eq!(jobs[0].result_source, Some(ResultSource::Callback));
                assert_eq!(jobs[1].state, JobState::Awaiting, "{:?}", jobs[1]);
                run.handle.abort();
            }
        }
    }
}

/// Finding 2. A client that sends its headers a byte at a time does not keep a finished
/// run from ending: the run ends within seconds of its last job, not when the client
/// gives up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_does_not_hold_a_finished_run() {
    const JOBS: usize = 5;
    let run = start_run(JOBS, 0.0, 5).await;
    let url = callback_url(&run.submissions, JOBS, Duration::from_secs(30)).await;
    let db = run.db.clone();
    wait_for(&db, Duration::from_secs(30), "all awaiting", |jobs| {
        jobs.iter().all(|j| j.state == JobState::Awaiting)
    })
    .await;
    let addr: SocketAddr = url
        .trim_start_matches("http://")
        .trim_end_matches("/callback")
        .parse()
        .unwrap();
    // The slow client: one header byte every 300 ms, for at most 60 s.
    let slow = tokio::spawn(async move {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head =
            b"POST /callback HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Slow: ";
        for b in head.iter().chain(std::iter::repeat(&b'a')).take(200) {
            if s.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let http = http();
    for i in 0..JOBS {
        assert_eq!(send(&http, &url, &callback(i, genuine(i))).await, 200);
    }
    wait_for(&db, Duration::from_secs(30), "all done", |jobs| {
        jobs.iter().all(|j| j.state == JobState::Done)
    })
    .await;
    let last_job = Instant::now();
    let finished = tokio::time::timeout(Duration::from_secs(20), run.handle)
        .await
        .expect("a slow client held the finished run")
        .unwrap()
        .unwrap_or_else(|f| panic!("{f}"));
    let to_exit = last_job.elapsed();
    assert_eq!(finished.outcome, ExitStatus::Success);
    assert!(to_exit < Duration::from_secs(5), "{to_exit:?}");
    for (i, j) in read_jobs(&db).iter().enumerate() {
        assert_eq!(j.result_code.as_deref(), Some(genuine(i)), "{j:?}");
    }
    slow.abort();
    println!(
        "RELIABILITY security slow client: {:.2} s from the last job done to the run's end \
         with a client sending its headers a byte per 300 ms",
        to_exit.as_secs_f64()
    );
}

/// VmRSS (current, kB) of a process.
fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Finding 3, and the run under attack. The run is a child process under `ulimit -n
/// 1024`; the attacker opens 1,100 connections to its receiver: 800 that send nothing and
/// 300 that send the headers of a 1 MiB callback and 900 kB of it, then hold. Meanwhile
/// forged and replayed callbacks flood in. The genuine callbacks still get through, the
/// run's job_status confirmations never fail for want of a descriptor, its memory stays
/// small, and every job ends with its genuine result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_idle_and_slow_connections_neither_starves_nor_bloats_the_run() {
    const JOBS: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(dir.path(), JOBS);
    let submissions = Submissions::default();
    let base = fake_smile_id(submissions.clone()).await;
    let db = dir.path().join("runs.db");
    let exe = env!("CARGO_BIN_EXE_smile-recon");
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 1024 && exec \"$0\" \"$@\"")
        .arg(exe)
        .args(["submit", "--manifest", manifest.to_str().unwrap()])
        .args(["--db", db.to_str().unwrap()])
        .args(["--base-url", &format!("http://{base}")])
        .args(["--partner-id", PARTNER])
        .args([
            "--endpoint",
            "verify-async",
            "--callback-listen",
            "127.0.0.1:0",
        ])
        .args([
            "--callback-grace",
            "600",
            "--rate",
            "0",
            "--concurrency",
            "4",
        ])
        .args(["--timeout", "10", "--quiet"])
        .env("SMILE_API_KEY", KEY)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let url = callback_url(&submissions, JOBS, Duration::from_secs(30)).await;
    let addr: SocketAddr = url
        .trim_start_matches("http://")
        .trim_end_matches("/callback")
        .parse()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_before = rss_kb(pid).unwrap();
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(rss_before));
    let watch = {
        let peak = peak.clone();
        tokio::spawn(async move {
            while let Some(kb) = rss_kb(pid) {
                peak.fetch_max(kb, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    // The attack: 800 idle connections and 300 slow 1 MiB bodies, held open.
    let mut held = Vec::new();
    for n in 0..1_100usize {
        let Ok(Ok(mut s)) =
            tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr))
                .await
        else {
            continue;
        };
        if n % 11 < 3 {
            held.push(tokio::spawn(async move {
                let head = format!(
                    "POST /callback HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\n\r\n",
                    1024 * 1024 - 8
                );
                if s.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = vec![b' '; 64 * 1024];
                for _ in 0..14 {
                    if s.write_all(&chunk).await.is_err() {
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_secs(120)).await;
                drop(s);
            }));
        } else {
            held.push(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(120)).await;
                drop(s);
            }));
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_attacked = rss_kb(pid).unwrap_or(0);

    // Forged and replayed callbacks flood in while the genuine ones are delivered, each
    // retried (as Smile ID would) until it is taken.
    let http = http();
    let old = "2019-03-01T10:00:00.000Z";
    let flood = {
        let (http, url) = (http.clone(), url.clone());
        tokio::spawn(async move {
            for n in 0..2_000usize {
                let body = callback_with(n % JOBS, "1020", old, &creds().sign(old));
                let _ = send(&http, &url, &body).await;
            }
        })
    };
    let started = Instant::now();
    let mut delivered = Vec::new();
    for i in 0..JOBS {
        let (http, url) = (http.clone(), url.clone());
        delivered.push(tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(90);
            while Instant::now() < deadline {
                if send(&http, &url, &callback(i, genuine(i))).await == 200 {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            false
        }));
    }
    for d in delivered {
        assert!(d.await.unwrap(), "a genuine callback never got through");
    }
    let delivering = started.elapsed();
    let exited = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .unwrap();
    let status = exited.expect("the run did not end under attack");
    watch.abort();
    flood.abort();
    for h in held {
        h.abort();
    }
    assert!(status.success(), "{status:?}");
    let jobs = read_jobs(&db);
    assert_eq!(jobs.len(), JOBS);
    for (i, j) in jobs.iter().enumerate() {
        assert_eq!(j.state, JobState::Done, "{j:?}");
        assert_eq!(j.result_code.as_deref(), Some(genuine(i)), "{j:?}");
    }
    let peak = peak.load(Ordering::Relaxed);
    assert!(
        peak < 200 * 1024,
        "peak RSS {peak} kB under 1,100 idle and slow connections"
    );
    println!(
        "RELIABILITY security limits: ulimit -n 1024, 1,100 connections (800 idle, 300 \
         holding 900 kB of a 1 MiB body) and 2,000 forged posts: RSS {rss_before} kB before, \
         {rss_attacked} kB attacked, peak {peak} kB; all {JOBS} genuine callbacks taken in \
         {:.1} s; every job done with its genuine result",
        delivering.as_secs_f64()
    );
    let _ = std::io::stdout().flush();
}

/// `--callback-confirm job-status` (the default): a callback's ResultCode is only a claim;
/// job_status's answer is recorded, and the job_status event says whether it confirmed
/// the claim or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_status_confirms_or_overrules_a_callbacks_claim() {
    const JOBS: usize = 3;
    let mut run = start_run(JOBS, 0.0, 5).await;
    let url = callback_url(&run.submissions, JOBS, Duration::from_secs(30)).await;
    let db = run.db.clone();
    wait_for(&db, Duration::from_secs(30), "all awaiting", |jobs| {
        jobs.iter().all(|j| j.state == JobState::Awaiting)
    })
    .await;
    let http = http();
    // job 0's genuine result is 1022; its callback claims 1020
    assert_eq!(send(&http, &url, &callback(0, "1020")).await, 200);
    // The last one at a path of a proxy's own (`--callback-url https://host/smile/results`
    // behind a proxy that keeps the path): the receiver takes callbacks at any path.
    let elsewhere = format!("{}/smile/results", url.trim_end_matches("/callback"));
    for i in 1..JOBS {
        let to = if i == JOBS - 1 { &elsewhere } else { &url };
        assert_eq!(send(&http, to, &callback(i, genuine(i))).await, 200, "{to}");
    }
    let finished = run.ends().await;
    assert_eq!(finished.outcome, ExitStatus::Success);
    for (i, j) in read_jobs(&db).iter().enumerate() {
        assert_eq!(j.state, JobState::Done, "{j:?}");
        assert_eq!(j.result_code.as_deref(), Some(genuine(i)), "{j:?}");
        assert_eq!(j.result_source, Some(ResultSource::JobStatus), "{j:?}");
    }
    let conn = rusqlite::Connection::open(&db).unwrap();
    let outcomes: BTreeMap<String, i64> = conn
        .prepare("SELECT outcome, COUNT(*) FROM events WHERE kind = 'job_status' GROUP BY outcome")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        outcomes,
        BTreeMap::from([("confirmed".to_owned(), 2), ("mismatch".to_owned(), 1)])
    );
    // The report counts them: summary.json's `callbacks`.
    let store = Store::open_read_only(&db).unwrap();
    let (summary, _) = smile_recon::report::build(&store, finished.run_id, None, None).unwrap();
    assert_eq!(
        (
            summary.callbacks.recorded,
            summary.callbacks.confirmed,
            summary.callbacks.mismatched
        ),
        (JOBS as u64, 2, 1)
    );
}
