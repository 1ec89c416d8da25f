//! The minimal server (issue 19): the cheapest `POST /v1/job_status` that a client must
//! still treat as Smile ID's. It checks the request's signature (`src/api/signature.rs`,
//! the same code the client signs with) and answers every signed request with one fixed,
//! signed job_status body: a finished job, ResultCode 1020, no `PartnerParams` (an answer
//! that names no job is taken as the one asked about). A bad signature gets the unsigned
//! 2305 error body with HTTP 401; a body that is not a job_status request gets 2303 or 2313.
//!
//! It is the harness's second reference beside the sandbox: the sandbox does real work
//! per answer (a registry lookup, a fresh timestamp and HMAC, the stored result), which
//! takes a share of the two cores and hides what the runner costs. The harness starts it
//! as a separate process by running its own executable with `--minimal-server` (the first
//! line on stdout is `listening on http://ADDR`; the key comes from `SMILE_API_KEY`).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use smile_recon::api::{ApiKey, Credentials};

/// The request fields the server reads; everything else is ignored.
#[derive(serde::Deserialize)]
struct Asked<'a> {
    #[serde(borrow)]
    timestamp: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    signature: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    partner_id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    user_id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    job_id: std::borrow::Cow<'a, str>,
}

struct Server {
    credentials: Credentials,
    /// The one answer, signed once at start.
    answer: Bytes,
}

/// The fixed answer: what the sandbox sends for a finished Basic KYC job, less the job's
/// own names, with its timestamp and signature.
fn answer(credentials: &Credentials) -> Bytes {
    let stamp = credentials.stamp_now();
    let body = serde_json::json!({
        "job_complete": true,
        "job_success": true,
        "code": "2302",
        "result": {
            "SmileJobID": "0000000001",
            "ResultType": "ID Verification",
            "ResultText": "Exact Match",
            "ResultCode": "1020",
            "IsFinalResult": "true",
            "Actions": {"Verify_ID_Number": "Verified", "Return_Personal_Info": "Returned",
                        "Names": "Exact Match", "DOB": "Exact Match", "Gender": "Exact Match",
                        "Phone_Number": "Exact Match", "ID_Verification": "Verified"},
            "Source": "minimal server",
        },
        "timestamp": stamp.timestamp,
        "signature": stamp.signature,
    });
    Bytes::from(body.to_string())
}

fn json(status: StatusCode, body: Bytes) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn error(status: StatusCode, code: &str, text: &str) -> Response {
    let body = serde_json::json!({"code": code, "error": text}).to_string();
    json(status, Bytes::from(body))
}

async fn job_status(State(server): State<Arc<Server>>, body: Bytes) -> Response {
    let asked = match serde_json::from_slice::<Asked>(&body) {
        Ok(asked) => asked,
        Err(e) if e.classify() == serde_json::error::Category::Data => {
            return error(
                StatusCode::BAD_REQUEST,
                "2313",
                "Missing required parameters",
            );
        }
        Err(_) => return error(StatusCode::BAD_REQUEST, "2303", "Invalid JSON"),
    };
    let ours = asked.partner_id == server.credentials.partner_id();
    if !ours
        || !server
            .credentials
            .confirm(&asked.timestamp, &asked.signature)
        || asked.user_id.is_empty()
        || asked.job_id.is_empty()
    {
        return error(StatusCode::UNAUTHORIZED, "2305", "Invalid sec_key");
    }
    json(StatusCode::OK, server.answer.clone())
}

/// Serves until killed. Exits 1 with a message when the key is missing or the port
/// cannot be bound.
pub fn run() {
    let key = std::env::var("SMILE_API_KEY").unwrap_or_default();
    let partner = std::env::var("SMILE_PARTNER_ID").unwrap_or_else(|_| "002".into());
    let credentials = match ApiKey::new(key).and_then(|k| Credentials::new(partner, k)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("minimal server: {e}");
            std::process::exit(1);
        }
    };
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    runtime.block_on(async move {
        let server = Arc::new(Server {
            answer: answer(&credentials),
            credentials,
        });
        let app = Router::new()
            .route("/v1/job_status", post(job_status))
            .with_state(server);
        let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("minimal server: cannot listen: {e}");
                std::process::exit(1);
            }
        };
        let addr = listener.local_addr().expect("a bound address");
        println!("listening on http://{addr}");
        axum::serve(listener, app).await.expect("serve");
    });
}
