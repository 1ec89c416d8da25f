//! HTTP plumbing: routes, the fault and stats layer in front of them, and handlers that
//! turn [`AppState`]'s answers into responses.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};

use crate::api::Endpoint;

use super::request::SubmitKind;
use super::respond;
use super::state::AppState;
use super::stats;

type Shared = Arc<AppState>;

/// Paths under this prefix are the sandbox's own (stats): never faulted, never counted.
pub const INTERNAL_PREFIX: &str = "/__sandbox/";

pub fn router(state: Shared) -> Router {
    let submit = |kind: SubmitKind| {
        move |State(st): State<Shared>, body: Bytes| async move { answer(st.submit(&body, kind)) }
    };
    let api = Router::new()
        .route(
            Endpoint::JobStatus.path(),
            post(|State(st): State<Shared>, body: Bytes| async move { st.job_status(&body) }),
        )
        .route(
            Endpoint::Verify.path(),
            post(submit(SubmitKind {
                enhanced: false,
                asynchronous: false,
            })),
        )
        .route(
            Endpoint::VerifyAsync.path(),
            post(submit(SubmitKind {
                enhanced: false,
                asynchronous: true,
            })),
        )
        .route(
            Endpoint::IdVerification.path(),
            post(submit(SubmitKind {
                enhanced: true,
                asynchronous: false,
            })),
        )
        .route(
            Endpoint::AsyncIdVerification.path(),
            post(submit(SubmitKind {
                enhanced: true,
                asynchronous: true,
            })),
        )
        .route(
            Endpoint::Services.path(),
            get(|State(st): State<Shared>| async move {
                respond::json(StatusCode::OK, st.services.clone())
            }),
        )
        .route(
            Endpoint::IdNumberRateLimitReset.path(),
            post(|State(st): State<Shared>, body: Bytes| async move {
                answer(st.reset_id_limit(&body))
            }),
        )
        .layer(middleware::from_fn_with_state(state.clone(), guard));
    Router::new()
        .route(
            "/__sandbox/stats",
            get(|State(st): State<Shared>| async move {
                let body =
                    serde_json::to_string(&st.stats.snapshot()).unwrap_or_else(|_| "{}".to_owned());
                respond::json(StatusCode::OK, body)
            }),
        )
        .merge(api)
        .fallback(fallback)
        .with_state(state)
}

fn answer(r: Result<Response, super::request::Rejection>) -> Response {
    r.unwrap_or_else(|rej| respond::rejection(&rej))
}

/// Unknown paths: counted as `other`, answered 404 like any API gateway would.
async fn fallback(State(st): State<Shared>, req: Request) -> Response {
    if !req.uri().path().starts_with(INTERNAL_PREFIX) {
        st.stats.arrived(st.started.elapsed().as_secs() as u32);
        st.stats.answered(stats::OTHER, 404);
    }
    let mut r = Response::new("Not Found".into());
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}

/// In front of every API route: count the request, then the injected faults in the order
/// a real deployment shows them (latency first, then a gateway's throttle, then a failing
/// backend), and finally count the answer by endpoint and status.
async fn guard(State(st): State<Shared>, req: Request, next: Next) -> Response {
    let arrived = std::time::Instant::now();
    let slot = stats::slot(req.uri().path());
    let count = st.stats.arrived(st.started.elapsed().as_secs() as u32);
    let latency = st.faults.latency();
    if !latency.is_zero() {
        // From the request's arrival, to the tenth of a millisecond (see `delay`).
        match arrived.checked_add(latency) {
            Some(deadline) => st.delays.until(deadline).await,
            // Beyond what an Instant can hold: never answered in practice.
            None => tokio::time::sleep(latency).await,
        }
    }
    let response = if st.faults.throttled(count) {
        stats::StatsRecorder::bump(&st.stats.injected_throttles);
        respond::throttled()
    } else if st.faults.fails() {
        stats::StatsRecorder::bump(&st.stats.injected_failures);
        respond::html_500()
    } else {
        next.run(req).await
    };
    st.stats.answered(slot, response.status().as_u16());
    response
}
