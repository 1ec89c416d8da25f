//! The built-in callback receiver for async submissions.
//!
//! Smile ID POSTs each async result to the callback URL. A callback is recorded only if
//! its signature confirms with our key (else 401, nothing recorded); it is matched to the
//! run's job by job_id (unknown: 404); a repeat of a recorded callback is answered 200 and
//! changes nothing.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::post;
use tokio::sync::watch;

use crate::api::SmileClient;
use crate::api::models::SignedResult;
use crate::store::{EventRecord, JobState, JobUpdate, Store, WriteOp, now_ms};

use super::outcome::{self, Next};
use super::tally::Tally;
use super::writer::Writer;

/// A callback body larger than this is refused with 413.
pub const MAX_CALLBACK_BYTES: usize = 1024 * 1024;

/// The path callbacks are posted to when we make the URL from `--callback-listen`.
pub const CALLBACK_PATH: &str = "/callback";

struct Receiver {
    run_id: i64,
    client: SmileClient,
    writer: Writer,
    reader: Mutex<Store>,
    tally: Arc<Tally>,
}

/// A running receiver.
pub struct CallbackServer {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl CallbackServer {
    pub async fn start(
        listen: SocketAddr,
        run_id: i64,
        client: SmileClient,
        writer: Writer,
        reader: Store,
        tally: Arc<Tally>,
        mut stop: watch::Receiver<bool>,
    ) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Receiver {
            run_id,
            client,
            writer,
            reader: Mutex::new(reader),
            tally,
        });
        let app = Router::new()
            .route("/", post(counted))
            .route(CALLBACK_PATH, post(counted))
            .layer(DefaultBodyLimit::max(MAX_CALLBACK_BYTES))
            .with_state(state);
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            });
            if let Err(e) = serve.await {
                tracing::error!("callback receiver stopped: {e}");
            }
        });
        Ok(Self { addr, task })
    }

    pub async fn stopped(self) {
        let _ = self.task.await;
    }
}

/// Counts every callback received, and whether it was taken (2xx) or refused.
async fn counted(State(rx): State<Arc<Receiver>>, body: Bytes) -> (StatusCode, &'static str) {
    use std::sync::atomic::Ordering::Relaxed;
    rx.tally.callbacks_received.fetch_add(1, Relaxed);
    let tally = rx.tally.clone();
    let answer = receive(State(rx), body).await;
    if answer.0.is_success() {
        tally.callbacks_accepted.fetch_add(1, Relaxed);
    } else {
        tally.callbacks_refused.fetch_add(1, Relaxed);
    }
    answer
}

async fn receive(State(rx): State<Arc<Receiver>>, body: Bytes) -> (StatusCode, &'static str) {
    let signed: SignedResult = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(_) => return (StatusCode::BAD_REQUEST, "malformed callback body\n"),
    };
    if !rx.client.confirm_result(&signed) {
        tracing::warn!("callback refused: its signature does not confirm");
        return (StatusCode::UNAUTHORIZED, "signature does not confirm\n");
    }
    let Some(params) = signed.result.partner_params.as_ref() else {
        return (
            StatusCode::BAD_REQUEST,
            "no PartnerParams in the callback\n",
        );
    };
    let job_id = params.job_id.clone();
    let found = {
        let reader = rx.reader.lock().unwrap_or_else(|p| p.into_inner());
        tokio::task::block_in_place(|| reader.job_by_job_id(rx.run_id, &job_id))
    };
    let (row, user_id, state) = match found {
        Ok(Some(found)) => found,
        Ok(None) => {
            tracing::warn!(job_id = %job_id, "callback for a job this run does not have");
            return (StatusCode::NOT_FOUND, "unknown job_id\n");
        }
        Err(e) => {
            tracing::error!("callback lookup failed: {e}");
            return (StatusCode::SERVICE_UNAVAILABLE, "try again\n");
        }
    };
    if user_id != params.user_id {
        tracing::warn!(job_id = %job_id, "callback user_id does not match the job's");
        return (StatusCode::NOT_FOUND, "unknown job\n");
    }
    if state.is_final() {
        return (StatusCode::OK, "already recorded\n");
    }
    let now = now_ms();
    let next = outcome::after_result(&signed, "callback", JobState::Queued);
    let event = WriteOp::Event(EventRecord {
        run_id: rx.run_id,
        row,
        at: now,
        kind: "callback",
        http_status: None,
        code: signed.result.result_code.clone(),
        outcome: "callback",
        error: None,
        latency_ms: None,
    });
    let Next::Final {
        state: to,
        result,
        code,
        error,
    } = next
    else {
        // Not a final result (a pending or retryable code): note it; job_status polling
        // takes the job from here.
        let _ = rx.writer.send(vec![event]).await;
        return (StatusCode::OK, "noted\n");
    };
    let category = result.as_ref().and_then(|r| r.category.clone());
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
        at: now,
    });
    match rx.writer.commit(vec![event, update]).await {
        Ok(applied) => {
            if applied.last() == Some(&true) {
                rx.tally.transition(state, to);
                if let (true, Some(c)) = (to.is_final(), category) {
                    rx.tally.categorise(&c);
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
