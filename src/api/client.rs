//! The HTTP client: one pooled reqwest client, every request signed, every signed answer
//! confirmed, every failure sorted into one [`ApiError`] variant a caller can act on.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::codes::{self, RetryClass};
use super::endpoint::{Endpoint, SubmitEndpoint};
use super::models::{
    ApiErrorBody, AsyncAck, IdInfo, JobStatusRequest, JobStatusResponse, PartnerParams,
    SignedResult, VerifyRequest,
};
use super::signature::Credentials;

/// A body larger than this is refused rather than buffered: an Enhanced KYC answer with a
/// photo is a few hundred KiB, so 8 MiB is generous and still bounds memory per request.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// How much of an unexpected body an error keeps, for the operator to read.
const KEPT_BODY_BYTES: usize = 4096;

/// The longest `Retry-After` we honour. A larger number of seconds, or a date further
/// ahead (`Fri, 31 Dec 9999 ...`), or a number too large to read, is taken as this: one
/// header must not park a run for days.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(15 * 60);

/// The job_status call's code for success; any other code is an error, in whichever shape
/// it arrives (seed 000: `code` "maps to an error condition or success").
const JOB_STATUS_SUCCESS: &str = "2302";

#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Scheme and host, without the `/v1` path: `https://testapi.smileidentity.com`.
    pub base_url: String,
    pub connect_timeout: Duration,
    /// The bound on one whole request, body included.
    pub request_timeout: Duration,
    pub credentials: Credentials,
    /// Trusted in addition to the built-in roots (`--ca-cert`; see [`super::tls`]).
    pub extra_roots: Vec<rustls_pki_types::CertificateDer<'static>>,
}

/// One failed call, sorted by what the caller should do about it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request did not reach the server or the answer broke off (refused, DNS, reset).
    #[error("cannot reach {url}: {reason}")]
    Transport { url: String, reason: String },
    /// No complete answer within the configured bound.
    #[error("no answer from {url} within {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    /// A non-2xx answer that is not a Smile ID error body (a proxy's HTML 502, a redirect).
    #[error("HTTP {status} from {url}: {}", snippet(body))]
    HttpStatus {
        url: String,
        status: u16,
        body: String,
        retry_after: Option<Duration>,
    },
    /// A Smile ID error code (2205, 2213, 2222, ...), whatever the HTTP status.
    #[error("Smile ID code {code} from {url} (HTTP {status}): {}", message.as_deref().unwrap_or_else(|| code_text(code)))]
    Api {
        url: String,
        status: u16,
        code: String,
        message: Option<String>,
        retry_after: Option<Duration>,
    },
    /// A signed answer whose signature does not confirm with our key: never trusted.
    #[error("the answer from {url} carries a signature that does not confirm")]
    Unconfirmed { url: String },
    /// A signed answer about another job than the one asked about (its `PartnerParams` or
    /// its `job_id`/`user_id` differ): a proxy or cache mixing answers. Never recorded.
    #[error(
        "the answer from {url} is for another job ({answered}), not the one asked about ({asked})"
    )]
    WrongJob {
        url: String,
        asked: String,
        answered: String,
    },
    /// A 2xx answer that is not the JSON this endpoint returns.
    #[error("unparseable answer from {url} (HTTP {status}): {reason}")]
    Unparseable {
        url: String,
        status: u16,
        reason: String,
        body: String,
    },
}

fn code_text(code: &str) -> &'static str {
    codes::lookup(code).map_or("unknown code", |c| c.text)
}

fn snippet(body: &str) -> String {
    let flat: String = body.chars().take(200).collect();
    flat.replace(['\n', '\r'], " ")
}

impl ApiError {
    /// What a runner should do: transport trouble, timeouts, HTTP statuses without a Smile
    /// ID code, and retryable codes are tried again; the rest ends the job (or, for
    /// credential codes, the run).
    pub fn retry_class(&self) -> RetryClass {
        match self {
            ApiError::Transport { .. } | ApiError::Timeout { .. } => RetryClass::Retryable,
            // Smile ID answers its own errors with a JSON code. A bare status (a redirect, a
            // 404 from a wrong base URL, a proxy's 502) says nothing about the job: it is
            // tried again, and the circuit breaker judges the run (see engine::outcome).
            ApiError::HttpStatus { .. } => RetryClass::Retryable,
            ApiError::Api { code, status, .. } => match codes::lookup(code) {
                Some(info) => info.class,
                None if *status >= 500 || *status == 429 => RetryClass::Retryable,
                None => RetryClass::Permanent,
            },
            // A garbled or unconfirmed answer may be a proxy's doing; it is retried, and a
            // run that sees only these trips its circuit breaker (both count as systemic).
            ApiError::Unconfirmed { .. }
            | ApiError::Unparseable { .. }
            | ApiError::WrongJob { .. } => RetryClass::Retryable,
        }
    }

    /// The server's Retry-After, when it gave one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::HttpStatus { retry_after, .. } | ApiError::Api { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    /// The Smile ID code, when the answer carried one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ApiError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The HTTP status, when there was an answer.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            ApiError::HttpStatus { status, .. }
            | ApiError::Api { status, .. }
            | ApiError::Unparseable { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A short machine-readable name of the variant, for the store and reports.
    pub fn kind(&self) -> &'static str {
        match self {
            ApiError::Transport { .. } => "transport",
            ApiError::Timeout { .. } => "timeout",
            ApiError::HttpStatus { .. } => "http_status",
            ApiError::Api { .. } => "api_code",
            ApiError::Unconfirmed { .. } => "unconfirmed_signature",
            ApiError::WrongJob { .. } => "wrong_job",
            ApiError::Unparseable { .. } => "unparseable",
        }
    }
}

/// The answer to a submission.
#[derive(Clone, Debug)]
pub enum SubmitReply {
    /// The async endpoints: the job was taken; its result comes to the callback.
    Accepted(AsyncAck),
    /// The sync endpoints: the result itself, its signature confirmed.
    Result(Box<SignedResult>),
}

/// Something the server signed, so the client can confirm it.
trait Signed {
    fn stamp(&self) -> (&str, &str);
}

impl Signed for JobStatusResponse {
    fn stamp(&self) -> (&str, &str) {
        (&self.timestamp, &self.signature)
    }
}

impl Signed for SignedResult {
    fn stamp(&self) -> (&str, &str) {
        (&self.timestamp, &self.signature)
    }
}

/// A Smile ID API client. Cheap to clone: the connection pool is shared.
#[derive(Clone, Debug)]
pub struct SmileClient {
    http: reqwest::Client,
    base_url: String,
    /// Each endpoint's URL, parsed once rather than per request (parsing includes an IDNA
    /// host check). `None`: not a URL; the request says why when sent.
    parsed: Arc<[Option<reqwest::Url>; Endpoint::ALL.len()]>,
    request_timeout: Duration,
    credentials: Credentials,
}

impl SmileClient {
    pub fn new(config: ClientConfig) -> Result<Self, ApiError> {
        let base_url = config.base_url.trim_end_matches('/').to_owned();
        let mut builder = reqwest::Client::builder();
        for der in &config.extra_roots {
            let cert = reqwest::Certificate::from_der(der).map_err(|e| ApiError::Transport {
                url: base_url.clone(),
                reason: format!("cannot use an extra trusted certificate: {e}"),
            })?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            // A signed body is never replayed to another address behind our back.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("smile-recon/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError::Transport {
                url: base_url.clone(),
                reason: format!("cannot build the HTTP client: {e}"),
            })?;
        let parsed = Arc::new(
            Endpoint::ALL.map(|e| reqwest::Url::parse(&format!("{base_url}{}", e.path())).ok()),
        );
        Ok(Self {
            http,
            base_url,
            parsed,
            request_timeout: config.request_timeout,
            credentials: config.credentials,
        })
    }

    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn url(&self, endpoint: Endpoint) -> String {
        format!("{}{}", self.base_url, endpoint.path())
    }

    /// `/v1/job_status` for one job; the answer's signature is confirmed.
    pub async fn job_status(
        &self,
        user_id: &str,
        job_id: &str,
        history: bool,
        image_links: bool,
    ) -> Result<JobStatusResponse, ApiError> {
        let mut body = JobStatusRequest::new(
            self.credentials.partner_id(),
            self.credentials.stamp_now(),
            user_id,
            job_id,
        );
        body.history = history;
        body.image_links = image_links;
        let url = self.url(Endpoint::JobStatus);
        let (status, bytes) = self.post(Endpoint::JobStatus, &url, &body).await?;
        // The usual answer, a 2302, is parsed once: the body is read as an answer first,
        // and only one that does not parse, or carries another code, is looked at as an
        // error.
        let parsed = serde_json::from_slice::<JobStatusResponse>(&bytes);
        let plain_success = matches!(&parsed, Ok(a) if a.code == JOB_STATUS_SUCCESS);
        // A code other than 2302 is an error whether it comes as an unsigned `{"code",
        // "error"}` body with a 4xx (handled in `read`) or inside a 200 answer with
        // `job_complete: false` (seed 000; the Java SDK's 2314 fixture): never "pending".
        if let Some(found) = (!plain_success).then(|| job_status_error(&bytes)).flatten() {
            if let Some((timestamp, signature)) = &found.stamp {
                // A 2305 says our signature was refused: we may hold the wrong key, so its
                // own signature cannot confirm either. It is what it says.
                if !codes::is_credential_failure(&found.code)
                    && !self.credentials.confirm(timestamp, signature)
                {
                    return Err(ApiError::Unconfirmed { url });
                }
            }
            // Signed or not (an unsigned one is trusted as far as an unsigned 4xx error
            // body is: it can make a job fail or be sent again, never give it a result),
            // an error about another job is never taken as this job's.
            let (user, job) = &found.named;
            same_job(
                &url,
                (user_id, job_id),
                (
                    user.as_deref().unwrap_or(user_id),
                    job.as_deref().unwrap_or(job_id),
                ),
            )?;
            return Err(ApiError::Api {
                url,
                status: status.as_u16(),
                code: found.code,
                message: found.message,
                retry_after: None,
            });
        }
        let mut answer: JobStatusResponse = match parsed {
            Ok(answer) => answer,
            Err(_) => parse(&url, status, &bytes)?,
        };
        self.confirm(&url, &answer)?;
        check_job(&url, user_id, job_id, &answer)?;
        answer.raw = String::from_utf8(bytes).ok();
        Ok(answer)
    }

    /// One Identity Verification / Enhanced KYC submission. `job_type` is set to 5 when
    /// the partner params do not carry one.
    pub async fn submit(
        &self,
        endpoint: SubmitEndpoint,
        id_info: &IdInfo,
        partner_params: &PartnerParams,
        callback_url: Option<&str>,
    ) -> Result<SubmitReply, ApiError> {
        let stamp = self.credentials.stamp_now();
        let mut partner_params = partner_params.clone();
        if partner_params.job_type.is_none() {
            partner_params.job_type = Some(super::models::NumberOrString::Number(
                super::models::JOB_TYPE_ID_VERIFICATION,
            ));
        }
        let body = VerifyRequest {
            partner_id: self.credentials.partner_id().to_owned(),
            timestamp: stamp.timestamp,
            signature: stamp.signature,
            id_info: id_info.clone(),
            callback_url: callback_url.map(str::to_owned),
            partner_params,
            source_sdk: Some("smile-recon".into()),
            source_sdk_version: Some(env!("CARGO_PKG_VERSION").into()),
        };
        let endpoint = endpoint.endpoint();
        let url = self.url(endpoint);
        let (status, bytes) = self.post(endpoint, &url, &body).await?;
        if endpoint.is_async() {
            let ack: AsyncAck = parse(&url, status, &bytes)?;
            Ok(SubmitReply::Accepted(ack))
        } else {
            let result: SignedResult = parse(&url, status, &bytes)?;
            self.confirm(&url, &result)?;
            if let Some(answered) = &result.result.partner_params {
                same_job(
                    &url,
                    (&body.partner_params.user_id, &body.partner_params.job_id),
                    (&answered.user_id, &answered.job_id),
                )?;
            }
            Ok(SubmitReply::Result(Box::new(result)))
        }
    }

    /// `GET /v1/services`: the supported id types (unauthenticated, unsigned).
    pub async fn services(&self) -> Result<serde_json::Value, ApiError> {
        let url = self.url(Endpoint::Services);
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| self.send_error(&url, e))?;
        let (status, bytes) = self.read(&url, response).await?;
        parse(&url, status, &bytes)
    }

    /// Confirms a callback body or any other signed result with this partner's key.
    pub fn confirm_result(&self, result: &SignedResult) -> bool {
        self.credentials
            .confirm(&result.timestamp, &result.signature)
    }

    fn confirm<T: Signed>(&self, url: &str, answer: &T) -> Result<(), ApiError> {
        let (timestamp, signature) = answer.stamp();
        if self.credentials.confirm(timestamp, signature) {
            Ok(())
        } else {
            Err(ApiError::Unconfirmed {
                url: url.to_owned(),
            })
        }
    }

    async fn post<B: Serialize>(
        &self,
        endpoint: Endpoint,
        url: &str,
        body: &B,
    ) -> Result<(StatusCode, Vec<u8>), ApiError> {
        let index = Endpoint::ALL.iter().position(|e| *e == endpoint);
        let request = match index.and_then(|i| self.parsed[i].clone()) {
            Some(parsed) => self.http.post(parsed),
            None => self.http.post(url),
        };
        let response = request
            .json(body)
            .send()
            .await
            .map_err(|e| self.send_error(url, e))?;
        self.read(url, response).await
    }

    /// Reads the body (bounded), and turns a non-2xx answer into the matching error.
    async fn read(
        &self,
        url: &str,
        mut response: reqwest::Response,
    ) -> Result<(StatusCode, Vec<u8>), ApiError> {
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let mut bytes = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if bytes.len() + chunk.len() > MAX_BODY_BYTES {
                        return Err(ApiError::Unparseable {
                            url: url.to_owned(),
                            status: status.as_u16(),
                            reason: format!("the body is larger than {MAX_BODY_BYTES} bytes"),
                            body: lossy(&bytes),
                        });
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err(self.send_error(url, e)),
            }
        }
        if status.is_success() {
            return Ok((status, bytes));
        }
        if let Some((code, message)) = error_code(&bytes) {
            return Err(ApiError::Api {
                url: url.to_owned(),
                status: status.as_u16(),
                code,
                message,
                retry_after,
            });
        }
        Err(ApiError::HttpStatus {
            url: url.to_owned(),
            status: status.as_u16(),
            body: lossy(&bytes),
            retry_after,
        })
    }

    fn send_error(&self, url: &str, e: reqwest::Error) -> ApiError {
        if e.is_timeout() {
            ApiError::Timeout {
                url: url.to_owned(),
                timeout: self.request_timeout,
            }
        } else {
            let mut reason = error_chain(&e);
            if let Some(hint) = super::tls::untrusted_certificate_hint(&reason) {
                reason = format!("{reason} ({hint})");
            }
            ApiError::Transport {
                url: url.to_owned(),
                reason,
            }
        }
    }
}

/// Parses a 2xx body; a body that is a Smile ID error (`{"code": "2213", ...}` with HTTP
/// 200) becomes [`ApiError::Api`], anything else unreadable [`ApiError::Unparseable`].
fn parse<T: DeserializeOwned>(url: &str, status: StatusCode, bytes: &[u8]) -> Result<T, ApiError> {
    match serde_json::from_slice::<T>(bytes) {
        Ok(v) => Ok(v),
        Err(e) => {
            if let Some((code, message)) = error_code(bytes) {
                return Err(ApiError::Api {
                    url: url.to_owned(),
                    status: status.as_u16(),
                    code,
                    message,
                    retry_after: None,
                });
            }
            Err(ApiError::Unparseable {
                url: url.to_owned(),
                status: status.as_u16(),
                reason: e.to_string(),
                body: lossy(bytes),
            })
        }
    }
}

/// The code and message of a Smile ID error body, if the bytes are one.
fn error_code(bytes: &[u8]) -> Option<(String, Option<String>)> {
    let body: ApiErrorBody = serde_json::from_slice(bytes).ok()?;
    let code = body.code?;
    // Success is never an error: a 2302 body that did not parse is unparseable.
    if is_success(code.trim()) {
        return None;
    }
    // A job_status answer also has a `code`; it is an error body only without the fields
    // a real answer carries.
    if body.extra.contains_key("job_complete") || body.extra.contains_key("ResultCode") {
        return None;
    }
    Some((code, body.error))
}

fn lossy(bytes: &[u8]) -> String {
    let end = bytes.len().min(KEPT_BODY_BYTES);
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// Retry-After as seconds or as an HTTP date, at most [`MAX_RETRY_AFTER`].
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for a u64 is absurd, not unreadable: the cap.
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = when.signed_duration_since(chrono::Utc::now());
    Some(wait.to_std().unwrap_or(Duration::ZERO).min(MAX_RETRY_AFTER))
}

/// A job_status body whose `code` is not 2302 (in the body, whatever the HTTP status).
#[derive(Debug, PartialEq)]
struct StatusError {
    code: String,
    /// `error`, or the `result` text, or the result's `ResultText`.
    message: Option<String>,
    /// The body's timestamp and signature, when it carries both.
    stamp: Option<(String, String)>,
    /// The job the body names (top-level `user_id` / `job_id`, or the result's
    /// `PartnerParams`), when it names one.
    named: (Option<String>, Option<String>),
}

/// The `code` alone, so that a success answer costs no second full parse.
#[derive(serde::Deserialize)]
struct CodeOnly {
    #[serde(default)]
    code: Option<serde_json::Value>,
}

/// A code as text: `"2304"`, ` 2304 `, `2304` and `2304.0` are the same code.
fn code_of(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.trim().to_owned()),
        serde_json::Value::Number(n) => Some(match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 1e15 => (f as i64).to_string(),
            _ => n.to_string(),
        }),
        _ => None,
    }
}

fn is_success(code: &str) -> bool {
    codes::lookup(code).map_or(code, |c| c.code) == JOB_STATUS_SUCCESS
}

fn job_status_error(bytes: &[u8]) -> Option<StatusError> {
    let code = code_of(
        serde_json::from_slice::<CodeOnly>(bytes)
            .ok()?
            .code
            .as_ref()?,
    )?;
    if is_success(&code) {
        return None;
    }
    let body: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(bytes).ok()?;
    let text = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(str::to_owned);
    let result = body.get("result");
    let message = text(body.get("error"))
        .or_else(|| text(result))
        .or_else(|| text(result.and_then(|r| r.get("ResultText"))));
    let stamp = text(body.get("timestamp")).zip(text(body.get("signature")));
    let params = result.and_then(|r| r.get("PartnerParams"));
    let named = |key: &str| text(body.get(key)).or_else(|| text(params.and_then(|p| p.get(key))));
    Some(StatusError {
        code,
        message,
        stamp,
        named: (named("user_id"), named("job_id")),
    })
}

/// A job_status answer is about the job asked about: its result's `PartnerParams`, and
/// the `user_id` / `job_id` it may carry at the top, must be that job's. An answer that
/// names no job is taken as the one asked about.
fn check_job(
    url: &str,
    user_id: &str,
    job_id: &str,
    answer: &JobStatusResponse,
) -> Result<(), ApiError> {
    let asked = (user_id, job_id);
    if let Some(p) = answer
        .result
        .as_ref()
        .and_then(|r| r.as_object())
        .and_then(|r| r.partner_params.as_ref())
    {
        same_job(url, asked, (&p.user_id, &p.job_id))?;
    }
    let top = |key: &str| answer.extra.get(key).and_then(|v| v.as_str());
    same_job(
        url,
        asked,
        (
            top("user_id").unwrap_or(user_id),
            top("job_id").unwrap_or(job_id),
        ),
    )
}

fn same_job(url: &str, asked: (&str, &str), answered: (&str, &str)) -> Result<(), ApiError> {
    if asked == answered {
        return Ok(());
    }
    let name = |(user, job): (&str, &str)| {
        let user: String = user.chars().take(80).collect();
        let job: String = job.chars().take(80).collect();
        format!("user_id {user:?}, job_id {job:?}")
    };
    Err(ApiError::WrongJob {
        url: url.to_owned(),
        asked: name(asked),
        answered: name(answered),
    })
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(
            retry_after(&h),
            Some(Duration::ZERO),
            "a past date means now"
        );
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
        for absurd in [
            "999999",
            "99999999999999999999999999",
            "Fri, 31 Dec 9999 23:59:59 GMT",
        ] {
            h.insert(RETRY_AFTER, HeaderValue::from_static(absurd));
            assert_eq!(retry_after(&h), Some(MAX_RETRY_AFTER), "{absurd}");
        }
    }

    #[test]
    fn job_status_codes_other_than_2302_are_errors_in_either_shape() {
        let signed = br#"{"timestamp":"t","signature":"s","job_complete":false,"code":"2304","result":"Job not found"}"#;
        assert_eq!(
            job_status_error(signed),
            Some(StatusError {
                code: "2304".into(),
                message: Some("Job not found".into()),
                stamp: Some(("t".into(), "s".into())),
                named: (None, None),
            })
        );
        let bare = br#"{"code":2314.0,"error":"No zip file received","job_id":"j"}"#;
        assert_eq!(
            job_status_error(bare),
            Some(StatusError {
                code: "2314".into(),
                message: Some("No zip file received".into()),
                stamp: None,
                named: (None, Some("j".into())),
            })
        );
        let about = br#"{"code":"2310","result":{"PartnerParams":{"user_id":"u2","job_id":"j2"}}}"#;
        assert_eq!(
            job_status_error(about).map(|e| e.named),
            Some((Some("u2".into()), Some("j2".into())))
        );
        for ok in [
            &br#"{"code":"2302","job_complete":false,"result":"Job is still being processed"}"#[..],
            br#"{"code":2302,"job_complete":true}"#,
            br#"{"code":2302.0}"#,
            br#"{"code":" 2302 "}"#,
            b"not json",
            br#"{"job_complete":true}"#,
        ] {
            assert_eq!(job_status_error(ok), None);
        }
        // A success code that did not parse as an answer is not an error body either.
        assert_eq!(error_code(br#"{"code":"2302","job_success":true}"#), None);
    }

    #[test]
    fn error_bodies_are_told_from_answers() {
        assert_eq!(
            error_code(br#"{"code":"2205","error":"You're not authorized"}"#),
            Some(("2205".into(), Some("You're not authorized".into())))
        );
        assert_eq!(error_code(br#"{"code":2213}"#), Some(("2213".into(), None)));
        assert_eq!(error_code(br#"{"code":"2302","job_complete":true}"#), None);
        assert_eq!(error_code(b"<html>"), None);
    }

    #[test]
    fn classes_follow_policy() {
        let http = |status| ApiError::HttpStatus {
            url: String::new(),
            status,
            body: String::new(),
            retry_after: None,
        };
        assert_eq!(http(502).retry_class(), RetryClass::Retryable);
        assert_eq!(http(429).retry_class(), RetryClass::Retryable);
        // a bare status is not Smile ID's verdict on the job: the breaker judges the run
        assert_eq!(http(302).retry_class(), RetryClass::Retryable);
        assert_eq!(http(404).retry_class(), RetryClass::Retryable);
        let api = |code: &str, status| ApiError::Api {
            url: String::new(),
            status,
            code: code.into(),
            message: None,
            retry_after: None,
        };
        assert_eq!(api("2205", 401).retry_class(), RetryClass::Permanent);
        assert_eq!(api("2222", 429).retry_class(), RetryClass::Retryable);
        assert_eq!(api("2301", 500).retry_class(), RetryClass::Retryable);
        assert_eq!(api("9999", 503).retry_class(), RetryClass::Retryable);
        assert_eq!(api("9999", 400).retry_class(), RetryClass::Permanent);
    }
}
