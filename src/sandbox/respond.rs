//! Answer bodies. Results are stored as JSON text once; every answer splices a fresh
//! timestamp and signature in front, so a job_status answer costs one HMAC and one string
//! build, not a re-serialisation of the result.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

use crate::api::SignedStamp;

use super::jobs::Finished;
use super::request::Rejection;

/// What job_status says in `result` while a job is still running.
pub const PENDING_RESULT: &str = "Job is still being processed";

pub fn json(status: StatusCode, body: impl Into<Body>) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// `{"code": "2205", "error": "..."}` with the rejection's status (and Retry-After).
pub fn rejection(rej: &Rejection) -> Response {
    let body = serde_json::json!({"code": rej.code, "error": rej.message});
    let mut r = json(rej.status, body.to_string());
    if let Some(secs) = rej.retry_after {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    }
    r
}

/// Timestamp and signature as the first members of the object `object_json`.
pub fn signed(object_json: &str, stamp: &SignedStamp) -> String {
    let rest = object_json.trim_start().strip_prefix('{').unwrap_or("}");
    let mut s = String::with_capacity(object_json.len() + 120);
    push_stamp(&mut s, stamp);
    if rest.trim_start().starts_with('}') {
        s.pop(); // no members follow: drop the comma
    }
    s.push_str(rest);
    s
}

fn push_stamp(s: &mut String, stamp: &SignedStamp) {
    // Our own timestamps and base64 signatures need no escaping; the serialiser is used
    // anyway so the body stays valid JSON whatever the clock formatting becomes.
    s.push_str("{\"timestamp\":");
    s.push_str(&serde_json::Value::from(stamp.timestamp.as_str()).to_string());
    s.push_str(",\"signature\":");
    s.push_str(&serde_json::Value::from(stamp.signature.as_str()).to_string());
    s.push(',');
}

/// A job_status answer.
pub fn job_status(
    stamp: &SignedStamp,
    finished: Option<&Finished>,
    history: Option<&[Arc<Finished>]>,
    image_links: bool,
) -> String {
    let mut s = String::with_capacity(
        256 + finished.map_or(0, |f| f.json.len())
            + history.map_or(0, |h| h.iter().map(|f| f.json.len() + 1).sum()),
    );
    push_stamp(&mut s, stamp);
    match finished {
        Some(f) => {
            s.push_str("\"job_complete\":true,\"job_success\":");
            s.push_str(if f.success { "true" } else { "false" });
            s.push_str(",\"code\":\"2302\",\"result\":");
            s.push_str(&f.json);
        }
        None => {
            s.push_str("\"job_complete\":false,\"job_success\":false,\"code\":\"2302\",");
            s.push_str("\"result\":\"");
            s.push_str(PENDING_RESULT);
            s.push('"');
        }
    }
    if let Some(h) = history {
        s.push_str(",\"history\":[");
        for (i, f) in h.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str(&f.json);
        }
        s.push(']');
    }
    if image_links {
        // ID-number jobs capture no images: the key is there because it was asked for,
        // with no links in it.
        s.push_str(",\"image_links\":{}");
    }
    s.push('}');
    s
}

/// A job_status error in the signed reading of seed 000: HTTP 200, the code in the body,
/// `job_complete: false`, and the error's text as `result` (as the Java SDK's fixture
/// `{"job_complete": false, "code": "2314", "result": "No zip file received"}`).
pub fn job_status_error(stamp: &SignedStamp, code: &str, message: &str) -> String {
    let body = serde_json::json!({
        "job_complete": false,
        "job_success": false,
        "code": code,
        "result": message,
    });
    signed(&body.to_string(), stamp)
}

/// What a load balancer in front of an API says when the service behind it fails.
pub fn html_500() -> Response {
    let mut r = Response::new(Body::from(
        "<html><head><title>500 Internal Server Error</title></head><body>\
         <h1>Internal Server Error</h1><p>The server encountered an error (injected by the \
         smile-recon sandbox).</p></body></html>",
    ));
    *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

/// The throttle's answer: 429 with Retry-After, and no Smile ID code (the gateway, not the
/// API, refuses it).
pub fn throttled() -> Response {
    let mut r = Response::new(Body::from("Too Many Requests"));
    *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn stamp() -> SignedStamp {
        SignedStamp {
            timestamp: "2026-01-01T00:00:00.000Z".into(),
            signature: "c2ln".into(),
        }
    }

    #[test]
    fn signed_puts_the_stamp_first_and_stays_valid_json() {
        let v: Value = serde_json::from_str(&signed(r#"{"ResultCode":"1020"}"#, &stamp())).unwrap();
        assert_eq!(v["timestamp"], "2026-01-01T00:00:00.000Z");
        assert_eq!(v["signature"], "c2ln");
        assert_eq!(v["ResultCode"], "1020");
        let v: Value = serde_json::from_str(&signed("{}", &stamp())).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 2);
    }

    #[test]
    fn job_status_bodies_parse_as_the_client_model() {
        use crate::api::models::JobStatusResponse;
        let f = Arc::new(Finished {
            success: true,
            json: Arc::from(r#"{"ResultCode":"1020","SmileJobID":"0000000001"}"#),
        });
        let body = job_status(&stamp(), Some(&f), Some(&[f.clone(), f.clone()]), true);
        let r: JobStatusResponse = serde_json::from_str(&body).unwrap();
        assert!(r.job_complete && r.job_success == Some(true));
        assert_eq!(r.code, "2302");
        assert_eq!(r.result_code(), Some("1020"));
        assert_eq!(r.history.unwrap().len(), 2);
        assert!(r.image_links.is_some());
        let body = job_status(&stamp(), None, Some(&[]), false);
        let r: JobStatusResponse = serde_json::from_str(&body).unwrap();
        assert!(!r.job_complete);
        assert_eq!(r.history.unwrap().len(), 0);
        assert!(r.image_links.is_none());
    }
}
