//! Helpers shared by the sandbox integration tests: a sandbox on port 0, signed bodies,
//! raw HTTP, and a callback receiver.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing;
use serde_json::{Value, json};
use smile_recon::api::{ApiKey, Credentials};
use smile_recon::sandbox::{self, Person, Registry, RunningSandbox, SandboxConfig};

pub const PARTNER: &str = "002";
pub const KEY: &str = "sandbox-integration-key";

pub fn creds() -> Credentials {
    Credentials::new(PARTNER, ApiKey::new(KEY).unwrap()).unwrap()
}

pub fn registry() -> Registry {
    Registry::generate(60, 7)
}

pub fn config() -> SandboxConfig {
    SandboxConfig::new(PARTNER.into(), ApiKey::new(KEY).unwrap(), registry())
}

pub async fn start(config: SandboxConfig) -> RunningSandbox {
    sandbox::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// `body` with partner_id, a fresh timestamp and its signature.
pub fn signed(mut body: Value) -> Value {
    let stamp = creds().stamp_now();
    body["partner_id"] = json!(PARTNER);
    body["timestamp"] = json!(stamp.timestamp);
    body["signature"] = json!(stamp.signature);
    body
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

pub struct Answer {
    pub status: StatusCode,
    pub retry_after: Option<String>,
    pub content_type: String,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }

    /// The Smile ID code of an error body.
    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_owned()
    }

    /// Whether the body's timestamp and signature confirm with the partner's key.
    pub fn confirms(&self) -> bool {
        let v = self.json();
        creds().confirm(
            v["timestamp"].as_str().unwrap_or_default(),
            v["signature"].as_str().unwrap_or_default(),
        )
    }
}

pub async fn post_bytes(sb: &RunningSandbox, path: &str, body: impl Into<reqwest::Body>) -> Answer {
    let r = http()
        .post(format!("{}{path}", sb.base_url()))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = StatusCode::from_u16(r.status().as_u16()).unwrap();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let retry_after = header("retry-after");
    let content_type = header("content-type").unwrap_or_default();
    Answer {
        status,
        retry_after,
        content_type,
        text: r.text().await.unwrap(),
    }
}

pub async fn post(sb: &RunningSandbox, path: &str, body: &Value) -> Answer {
    post_bytes(sb, path, body.to_string()).await
}

/// A Basic KYC body for `person`, every field as the authority has it.
pub fn verify_body(p: &Person, user_id: &str, job_id: &str) -> Value {
    signed(json!({
        "country": p.country,
        "id_type": p.id_type,
        "id_number": p.id_number,
        "first_name": p.first_name,
        "middle_name": p.middle_name,
        "last_name": p.last_name,
        "dob": p.dob,
        "gender": p.gender,
        "phone_number": p.phone_number,
        "partner_params": {"user_id": user_id, "job_id": job_id, "job_type": 5}
    }))
}

pub fn status_body(user_id: &str, job_id: &str) -> Value {
    signed(json!({"user_id": user_id, "job_id": job_id}))
}

/// A callback endpoint on loopback that records what it receives; it answers 500 to the
/// first `fail_first` POSTs and 200 afterwards.
pub struct Receiver {
    pub addr: SocketAddr,
    pub bodies: Arc<Mutex<Vec<Value>>>,
    pub hits: Arc<AtomicUsize>,
}

impl Receiver {
    pub fn url(&self) -> String {
        format!("http://{}/callback", self.addr)
    }

    pub fn received(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Waits until `n` bodies arrived (or `within` passes) and returns them.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + within;
        while self.received().len() < n && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.received()
    }
}

pub async fn receiver(fail_first: usize) -> Receiver {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let hits = Arc::new(AtomicUsize::new(0));
    let (b, h) = (bodies.clone(), hits.clone());
    let router = Router::new().route(
        "/callback",
        routing::post(move |body: String| {
            let (b, h) = (b.clone(), h.clone());
            async move {
                let n = h.fetch_add(1, Ordering::SeqCst);
                if n < fail_first {
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                b.lock()
                    .unwrap()
                    .push(serde_json::from_str(&body).unwrap_or(Value::Null));
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    Receiver { addr, bodies, hits }
}

/// Polls job_status until the job is complete (or `within` passes); returns the last answer.
pub async fn wait_complete(
    sb: &RunningSandbox,
    user_id: &str,
    job_id: &str,
    within: Duration,
) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let a = post(sb, "/v1/job_status", &status_body(user_id, job_id)).await;
        let v = a.json();
        if v["job_complete"] == true || tokio::time::Instant::now() >= deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
pub mod batch;
pub mod cli;

/// `n` deterministic moments (ms after a child starts) in `from..from + span`, for the
/// kill -9 tests: a seeded LCG, so a failing run can be replayed.
pub fn kill_points(seed: u64, n: usize, from: u64, span: u64) -> Vec<u64> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            from + (x >> 33) % span
        })
        .collect()
}

/// A distinct fresh timestamp per call (a (timestamp, signature) pair is accepted once),
/// as Python's SDK writes them (`+00:00`, microseconds).
pub fn fresh_timestamp() -> String {
    // Strictly increasing microseconds, so no two callbacks of a test share a timestamp
    // (and so a signature, which covers only the timestamp): `now + a counter` did not
    // ensure it when the clock moved between two concurrent callers.
    static LAST: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    let now = chrono::Utc::now().timestamp_micros();
    let micros = LAST
        .fetch_update(
            std::sync::atomic::Ordering::SeqCst,
            std::sync::atomic::Ordering::SeqCst,
            |last| Some(now.max(last + 1)),
        )
        .map_or(now, |last| now.max(last + 1));
    chrono::DateTime::from_timestamp_micros(micros)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
}
