//! The HTTP client against small in-process axum servers that misbehave on purpose.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use serde_json::json;
use smile_recon::api::models::{IdInfo, PartnerParams};
use smile_recon::api::{
    ApiError, ApiKey, ClientConfig, Credentials, RetryClass, SmileClient, SubmitEndpoint,
    SubmitReply,
};

const PARTNER: &str = "002";
const KEY: &str = "client-test-key";

fn creds() -> Credentials {
    Credentials::new(PARTNER, ApiKey::new(KEY).unwrap()).unwrap()
}

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    addr
}

fn client(addr: SocketAddr, timeout: Duration) -> SmileClient {
    SmileClient::new(ClientConfig {
        base_url: format!("http://{addr}/"),
        connect_timeout: Duration::from_secs(2),
        request_timeout: timeout,
        credentials: creds(),
        extra_roots: Vec::new(),
    })
    .unwrap()
}

fn signed_status(signature_ok: bool) -> serde_json::Value {
    let stamp = creds().stamp_now();
    let signature = if signature_ok {
        stamp.signature
    } else {
        // a well-formed signature for another timestamp: only the check can catch it
        creds().sign("2000-01-01T00:00:00.000Z")
    };
    json!({
        "timestamp": stamp.timestamp,
        "signature": signature,
        "job_complete": true,
        "job_success": true,
        "code": "2302",
        "result": {"ResultCode": "1020", "ResultText": "Exact Match"}
    })
}

#[tokio::test]
async fn a_confirmed_answer_is_returned_and_the_request_is_signed() {
    let router = Router::new().route(
        "/v1/job_status",
        post(|body: axum::Json<serde_json::Value>| async move {
            let ok = body["partner_id"] == PARTNER
                && body["user_id"] == "u1"
                && body["job_id"] == "j1"
                && creds().confirm(
                    body["timestamp"].as_str().unwrap_or_default(),
                    body["signature"].as_str().unwrap_or_default(),
                );
            if ok {
                axum::Json(signed_status(true)).into_response()
            } else {
                (
                    StatusCode::UNAUTHORIZED,
                    axum::Json(json!({"code": "2205", "error": "no"})),
                )
                    .into_response()
            }
        }),
    );
    let addr = serve(router).await;
    let answer = client(addr, Duration::from_secs(5))
        .job_status("u1", "j1", false, false)
        .await
        .unwrap();
    assert_eq!(answer.result_code(), Some("1020"));
}

#[tokio::test]
async fn a_tampered_signature_is_unconfirmed() {
    let router = Router::new().route(
        "/v1/job_status",
        post(|| async { axum::Json(signed_status(false)) }),
    );
    let addr = serve(router).await;
    let err = client(addr, Duration::from_secs(5))
        .job_status("u", "j", false, false)
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::Unconfirmed { .. }), "{err:?}");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_within_the_bound() {
    let router = Router::new().route(
        "/v1/job_status",
        post(|| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            "never"
        }),
    );
    let addr = serve(router).await;
    let bound = Duration::from_millis(300);
    let started = Instant::now();
    let err = client(addr, bound)
        .job_status("u", "j", false, false)
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, ApiError::Timeout { .. }), "{err:?}");
    assert_eq!(err.retry_class(), RetryClass::Retryable);
    assert!(took >= bound, "gave up early: {took:?}");
    assert!(took < bound + Duration::from_secs(2), "took {took:?}");
}

#[tokio::test]
async fn an_html_502_is_an_http_status_error_with_its_body() {
    let html = "<html><body><h1>502 Bad Gateway</h1></body></html>";
    let router = Router::new().route(
        "/v1/job_status",
        post(move || async move {
            (
                StatusCode::BAD_GATEWAY,
                [(header::CONTENT_TYPE, "text/html")],
                html,
            )
        }),
    );
    let addr = serve(router).await;
    let err = client(addr, Duration::from_secs(5))
        .job_status("u", "j", false, false)
        .await
        .unwrap_err();
    match &err {
        ApiError::HttpStatus { status, body, .. } => {
            assert_eq!(*status, 502);
            assert_eq!(body, html);
        }
        other => panic!("expected HttpStatus, got {other:?}"),
    }
    assert_eq!(err.retry_class(), RetryClass::Retryable);
}

#[tokio::test]
async fn an_error_code_body_is_an_api_error_with_retry_after() {
    let router = Router::new().route(
        "/v2/verify",
        post(|| async {
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, "3")],
                axum::Json(json!({"code": "2222", "error": "rate limit"})),
            )
        }),
    );
    let addr = serve(router).await;
    let err = client(addr, Duration::from_secs(5))
        .submit(SubmitEndpoint::Verify, &id_info(), &partner_params(), None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("2222"));
    assert_eq!(err.http_status(), Some(429));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
    assert_eq!(err.retry_class(), RetryClass::Retryable);
}

#[tokio::test]
async fn a_sync_result_is_confirmed_and_an_async_ack_accepted() {
    let router = Router::new()
        .route(
            "/v2/verify",
            post(|body: axum::Json<serde_json::Value>| async move {
                let stamp = creds().stamp_now();
                axum::Json(json!({
                    "timestamp": stamp.timestamp, "signature": stamp.signature,
                    "ResultCode": "1021", "PartnerParams": body["partner_params"].clone(),
                }))
            }),
        )
        .route(
            "/v2/verify_async",
            post(|body: axum::Json<serde_json::Value>| async move {
                assert_eq!(body["callback_url"], "http://cb.example/");
                assert_eq!(body["partner_params"]["job_type"], 5);
                axum::Json(json!({"success": true}))
            }),
        );
    let addr = serve(router).await;
    let c = client(addr, Duration::from_secs(5));
    match c
        .submit(SubmitEndpoint::Verify, &id_info(), &partner_params(), None)
        .await
        .unwrap()
    {
        SubmitReply::Result(r) => {
            assert_eq!(r.result.result_code.as_deref(), Some("1021"));
            assert_eq!(r.result.partner_params.as_ref().unwrap().job_id, "job-1");
        }
        other => panic!("{other:?}"),
    }
    match c
        .submit(
            SubmitEndpoint::VerifyAsync,
            &id_info(),
            &partner_params(),
            Some("http://cb.example/"),
        )
        .await
        .unwrap()
    {
        SubmitReply::Accepted(ack) => assert!(ack.success),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn non_json_200_and_redirects_are_classified() {
    let router = Router::new()
        .route("/v1/job_status", post(|| async { "OK" }))
        .route(
            "/v2/verify",
            post(|| async {
                (
                    StatusCode::FOUND,
                    [(header::LOCATION, "http://elsewhere.invalid/")],
                )
            }),
        );
    let addr = serve(router).await;
    let c = client(addr, Duration::from_secs(5));
    let err = c.job_status("u", "j", false, false).await.unwrap_err();
    assert!(
        matches!(err, ApiError::Unparseable { status: 200, .. }),
        "{err:?}"
    );
    let err = c
        .submit(SubmitEndpoint::Verify, &id_info(), &partner_params(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ApiError::HttpStatus { status: 302, .. }),
        "{err:?}"
    );
    // Not a per-job verdict: retried, and judged for the run by the circuit breaker.
    assert_eq!(err.retry_class(), RetryClass::Retryable);
}

#[tokio::test]
async fn a_refused_connection_is_a_transport_error() {
    // bind, learn the port, close: nothing listens there now
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = client(addr, Duration::from_secs(5))
        .job_status("u", "j", false, false)
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::Transport { .. }), "{err:?}");
    assert!(!format!("{err}").contains(KEY));
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
        job_id: "job-1".into(),
        user_id: "user-1".into(),
        job_type: None,
        extra: Default::default(),
    }
}
