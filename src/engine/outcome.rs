//! What one answer means for a job: which errors are retried with backoff, deferred or
//! permanent, and when a result is final, as pure functions from an answer (or an error)
//! to the job's next step.

use std::time::Duration;

use crate::api::codes::{self, RetryClass};
use crate::api::models::{JobStatusResponse, SignedResult, VerifyResult};
use crate::api::{ApiError, codes::is_credential_failure};
use crate::store::{JobState, ResultFields, ResultSource, pii};

use super::breaker::Health;

/// How long to wait before asking again, decided later from the job's counters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Wait {
    /// The retry backoff (counts an attempt), at least this long if the server said so.
    Retry(Option<Duration>),
    /// The job_status cadence for a pending job (counts a poll).
    Poll,
    /// A fixed wait that counts nothing (the callback grace, a 2222 deferral, a
    /// credential failure that the breaker is judging).
    Fixed(Duration),
}

/// A job's next step.
#[derive(Clone, Debug, PartialEq)]
pub enum Next {
    /// A final state: done (with a result) or failed (with or without one).
    Final {
        state: JobState,
        result: Option<ResultFields>,
        code: Option<String>,
        error: Option<String>,
    },
    /// Not final: try again later in `state`.
    Again {
        state: JobState,
        wait: Wait,
        code: Option<String>,
        error: Option<String>,
    },
    /// The job exists at Smile ID (2215): read it through job_status now.
    ReadStatus,
    /// job_status says the job does not exist (2304) after an unsure submission: send it.
    Resubmit,
}

/// The run-wide meaning of an answer, for the circuit breaker.
pub fn health_of_error(e: &ApiError) -> Health {
    match e {
        ApiError::Api { code, .. } if is_credential_failure(code) => {
            Health::Systemic(format!("Smile ID refused the credentials: {e}"))
        }
        ApiError::Api { .. } => Health::Healthy,
        ApiError::Transport { .. } | ApiError::Timeout { .. } => Health::Systemic(e.to_string()),
        ApiError::Unconfirmed { .. } => {
            Health::Systemic(format!("{e} (is the API key right, and is this Smile ID?)"))
        }
        // Answers mixed between jobs: a proxy or cache in the way is a broken host.
        ApiError::WrongJob { .. } => Health::Systemic(format!(
            "{e} (is a proxy or cache between us and Smile ID mixing answers?)"
        )),
        // A server error or throttling is the server's passing trouble: per job.
        ApiError::HttpStatus { status, .. }
            if *status >= 500 || *status == 408 || *status == 429 =>
        {
            Health::Neutral
        }
        // A redirect, a 404 or any other bare status, or an answer that is not Smile ID's
        // JSON: the base URL does not lead to Smile ID. Judged for the run, not per job.
        ApiError::HttpStatus { .. } | ApiError::Unparseable { .. } => {
            Health::Systemic(format!("{e} (does the base URL lead to Smile ID?)"))
        }
    }
}

/// The job's next step after a failed request. `unsure` is the state to keep when the
/// request may have been processed (for a submission: in_flight, checked before resending);
/// `refused` the state when it certainly was not.
pub fn after_error(e: &ApiError, unsure: JobState, refused: JobState) -> Next {
    let code = e.code().map(str::to_owned);
    let error = Some(e.to_string());
    if let Some(c) = e.code() {
        if c == "2215" {
            return Next::ReadStatus;
        }
        if is_credential_failure(c) {
            return Next::Again {
                state: refused,
                wait: Wait::Fixed(Duration::from_secs(1)),
                code,
                error,
            };
        }
        if c == "2222" {
            // The per-ID-number limit: deferred, not failed, and no attempt spent.
            let wait = e.retry_after().unwrap_or(Duration::from_secs(60));
            return Next::Again {
                state: refused,
                wait: Wait::Fixed(wait),
                code,
                error,
            };
        }
    }
    match e.retry_class() {
        RetryClass::Retryable => {
            let definite = matches!(e, ApiError::Api { .. })
                || matches!(e, ApiError::HttpStatus { status: 429, .. });
            Next::Again {
                state: if definite { refused } else { unsure },
                wait: Wait::Retry(e.retry_after()),
                code,
                error,
            }
        }
        RetryClass::Pending => Next::Again {
            state: JobState::Awaiting,
            wait: Wait::Poll,
            code,
            error,
        },
        RetryClass::Permanent | RetryClass::Final => Next::Final {
            state: JobState::Failed,
            result: None,
            code,
            error,
        },
    }
}

/// The most bytes of an answer kept with a job (`result_json`). A larger answer keeps its
/// call fields and the result's ResultCode, ResultText, Actions, SmileJobID and
/// PartnerParams, marked `"truncated": true`; if even that is larger, only the codes.
pub const MAX_STORED_ANSWER_BYTES: usize = 65_536;

/// job_status fields we never ask for (`history`, `image_links` are sent as false): not
/// kept even when a server sends them anyway.
const UNASKED: &[&str] = &["history", "image_links"];

/// [`UNASKED`] as they appear as keys in an answer's text.
const UNASKED_KEYS: &[&str] = &["\"history\"", "\"image_links\""];

/// What is stored of an answer: `raw` (the server's bytes) when it is small and holds
/// nothing we did not ask for; else a trimmed copy within [`MAX_STORED_ANSWER_BYTES`].
pub fn stored_answer(raw: String) -> String {
    if raw.len() <= MAX_STORED_ANSWER_BYTES && !UNASKED_KEYS.iter().any(|k| raw.contains(k)) {
        return raw;
    }
    let Ok(serde_json::Value::Object(mut top)) = serde_json::from_str::<serde_json::Value>(&raw)
    else {
        // Not a JSON object (nothing we parse as a result): keep a bounded prefix as text.
        let cut = raw
            .char_indices()
            .map(|(i, _)| i)
            .take_while(|&i| i <= MAX_STORED_ANSWER_BYTES - 64)
            .last()
            .unwrap_or(0);
        return serde_json::json!({ "truncated": true, "text": &raw[..cut] }).to_string();
    };
    for k in UNASKED {
        top.remove(*k);
    }
    let whole = serde_json::Value::Object(top.clone()).to_string();
    if whole.len() <= MAX_STORED_ANSWER_BYTES {
        return whole;
    }
    let pick = |from: &serde_json::Map<String, serde_json::Value>, keys: &[&str]| {
        keys.iter()
            .filter_map(|k| from.get(*k).map(|v| ((*k).to_owned(), v.clone())))
            .collect::<serde_json::Map<_, _>>()
    };
    const CALL: &[&str] = &[
        "timestamp",
        "signature",
        "job_complete",
        "job_success",
        "code",
    ];
    const RESULT: &[&str] = &[
        "ResultCode",
        "ResultText",
        "Actions",
        "SmileJobID",
        "PartnerParams",
    ];
    let mut kept = pick(&top, CALL);
    // A job_status answer holds the result under `result`; a callback or sync answer is it.
    let result = match top.get("result") {
        Some(serde_json::Value::Object(r)) => Some(("result", r.clone())),
        _ => None,
    };
    match &result {
        Some((key, r)) => {
            kept.insert((*key).to_owned(), pick(r, RESULT).into());
        }
        None => kept.extend(pick(&top, RESULT)),
    }
    kept.insert("truncated".into(), true.into());
    let trimmed = serde_json::Value::Object(kept).to_string();
    if trimmed.len() <= MAX_STORED_ANSWER_BYTES {
        return trimmed;
    }
    let codes = &["ResultCode", "ResultText"];
    let mut minimal = pick(&top, &["job_complete", "job_success", "code"]);
    match &result {
        Some((key, r)) => {
            minimal.insert((*key).to_owned(), pick(r, codes).into());
        }
        None => minimal.extend(pick(&top, codes)),
    }
    minimal.insert("truncated".into(), true.into());
    let minimal = serde_json::Value::Object(minimal).to_string();
    if minimal.len() <= MAX_STORED_ANSWER_BYTES {
        minimal
    } else {
        r#"{"truncated":true}"#.to_owned()
    }
}

/// A confirmed result (sync answer or callback): done, failed, or to be sent again.
pub fn after_result(signed: &SignedResult, source: ResultSource, refused: JobState) -> Next {
    let json = stored_answer(serde_json::to_string(signed).unwrap_or_default());
    let personal = pii::result_holds_personal(&signed.result);
    from_result(&signed.result, None, source, (json, personal), refused)
}

/// A confirmed job_status answer.
pub fn after_status(answer: &JobStatusResponse, refused: JobState) -> Next {
    if !answer.job_complete {
        return Next::Again {
            state: JobState::Awaiting,
            wait: Wait::Poll,
            code: Some(answer.code.clone()),
            error: None,
        };
    }
    let json = stored_answer(match &answer.raw {
        Some(raw) => raw.clone(),
        None => serde_json::to_string(answer).unwrap_or_default(),
    });
    match answer.result.as_ref().and_then(|r| r.as_object()) {
        Some(result) => {
            let personal =
                pii::result_holds_personal(result) || pii::map_holds_personal(&answer.extra);
            from_result(
                result,
                answer.job_success,
                ResultSource::JobStatus,
                (json, personal),
                refused,
            )
        }
        // "Complete" without a result object: nothing to record as final; asked again
        // (counting an attempt, so a server that keeps saying it gives the job up).
        None => Next::Again {
            state: JobState::Awaiting,
            wait: Wait::Retry(None),
            code: Some(answer.code.clone()),
            error: Some(match answer.result.as_ref() {
                Some(crate::api::models::JobResult::Text(t)) => {
                    format!("job_status says complete but its result is only text: {t}")
                }
                _ => "job_status says complete but carries no result".to_owned(),
            }),
        },
    }
}

fn from_result(
    result: &VerifyResult,
    job_success: Option<bool>,
    source: ResultSource,
    (json, personal): (String, bool),
    refused: JobState,
) -> Next {
    let Some(code) = result_code(result.result_code.as_deref()) else {
        // Signed, but no ResultCode, an empty one, or one that is not four digits: nothing
        // to record as the job's outcome. Asked again (a sync job_id already created
        // answers 2215 and is read through job_status).
        return Next::Again {
            state: refused,
            wait: Wait::Retry(None),
            code: None,
            error: Some(match result.result_code.as_deref() {
                None => format!("a signed {source} answer without a ResultCode"),
                Some(c) => format!(
                    "a signed {source} answer whose ResultCode {:?} is not a result code",
                    c.chars().take(40).collect::<String>()
                ),
            }),
        };
    };
    let info = codes::lookup(&code);
    let code = Some(code);
    let class = info.map_or(RetryClass::Final, |i| i.class);
    let fields = ResultFields {
        result_code: code.clone(),
        result_text: result
            .result_text
            .clone()
            .or_else(|| info.map(|i| i.text.to_owned())),
        job_success: job_success.or_else(|| {
            info.and_then(|i| i.category)
                .map(|c| c == codes::Category::Approved)
        }),
        category: info.and_then(|i| i.category),
        smile_job_id: result.smile_job_id.clone(),
        source,
        json,
        signature_confirmed: true,
        personal,
    };
    match class {
        RetryClass::Final => Next::Final {
            state: JobState::Done,
            result: Some(fields),
            code,
            error: None,
        },
        // 1015 on a sync call: the ID authority is down; the job was not created, so the
        // same job_id is sent again later.
        RetryClass::Retryable if source == ResultSource::Sync => Next::Again {
            state: refused,
            wait: Wait::Retry(None),
            code,
            error: fields.result_text.clone(),
        },
        RetryClass::Pending => Next::Again {
            state: JobState::Awaiting,
            wait: Wait::Poll,
            code,
            error: None,
        },
        RetryClass::Retryable | RetryClass::Permanent => Next::Final {
            state: JobState::Failed,
            error: fields.result_text.clone(),
            result: Some(fields),
            code,
        },
    }
}

/// A job's ResultCode when it is one: exactly four ASCII digits and not a job_status or
/// request code (2302). Anything else (empty, padded, text, a short number such as `1`
/// that may have lost its zeros) is not recorded as a result.
fn result_code(sent: Option<&str>) -> Option<String> {
    let code = sent?;
    if code.len() != 4 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match codes::lookup(code) {
        Some(info) if info.kind != codes::CodeKind::Result => None,
        _ => Some(code.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unasked_keys_are_the_unasked_fields_quoted() {
        let quoted: Vec<String> = UNASKED.iter().map(|k| format!("\"{k}\"")).collect();
        assert_eq!(UNASKED_KEYS, quoted);
    }

    fn api(code: &str, status: u16) -> ApiError {
        ApiError::Api {
            url: "u".into(),
            status,
            code: code.into(),
            message: None,
            retry_after: None,
        }
    }

    fn signed(code: &str) -> SignedResult {
        SignedResult {
            timestamp: "t".into(),
            signature: "s".into(),
            result: VerifyResult {
                result_code: Some(code.into()),
                ..VerifyResult::default()
            },
        }
    }

    #[test]
    fn errors_follow_the_policy() {
        use JobState::*;
        assert_eq!(
            after_error(&api("2215", 400), InFlight, Queued),
            Next::ReadStatus
        );
        assert!(matches!(
            after_error(&api("2205", 401), InFlight, Queued),
            Next::Again {
                state: Queued,
                wait: Wait::Fixed(_),
                ..
            }
        ));
        assert!(matches!(
            after_error(&api("2222", 429), InFlight, Queued),
            Next::Again {
                state: Queued,
                wait: Wait::Fixed(_),
                ..
            }
        ));
        assert!(matches!(
            after_error(&api("2213", 400), InFlight, Queued),
            Next::Final { state: Failed, .. }
        ));
        let timeout = ApiError::Timeout {
            url: "u".into(),
            timeout: Duration::from_secs(1),
        };
        assert!(matches!(
            after_error(&timeout, InFlight, Queued),
            Next::Again {
                state: InFlight,
                wait: Wait::Retry(None),
                ..
            }
        ));
        let html500 = ApiError::HttpStatus {
            url: "u".into(),
            status: 500,
            body: "<html>".into(),
            retry_after: None,
        };
        assert!(matches!(
            after_error(&html500, InFlight, Queued),
            Next::Again {
                state: InFlight,
                ..
            }
        ));
        let throttled = ApiError::HttpStatus {
            url: "u".into(),
            status: 429,
            body: String::new(),
            retry_after: Some(Duration::from_secs(2)),
        };
        assert!(matches!(
            after_error(&throttled, InFlight, Queued),
            Next::Again {
                state: Queued,
                wait: Wait::Retry(Some(_)),
                ..
            }
        ));
    }

    #[test]
    fn results_follow_their_codes() {
        use JobState::*;
        assert!(matches!(
            after_result(&signed("1020"), ResultSource::Sync, Queued),
            Next::Final { state: Done, .. }
        ));
        assert!(matches!(
            after_result(&signed("1022"), ResultSource::Sync, Queued),
            Next::Final { state: Done, .. }
        ));
        assert!(matches!(
            after_result(&signed("1014"), ResultSource::Sync, Queued),
            Next::Final { state: Failed, .. }
        ));
        assert!(matches!(
            after_result(&signed("1015"), ResultSource::Sync, Queued),
            Next::Again { state: Queued, .. }
        ));
        match after_result(&signed("1021"), ResultSource::Callback, Queued) {
            Next::Final {
                result: Some(r), ..
            } => {
                assert_eq!(r.category, Some(codes::Category::Approved));
                assert_eq!(r.source, ResultSource::Callback);
                assert!(r.signature_confirmed);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn credential_codes_and_unreachable_hosts_are_systemic() {
        assert!(matches!(
            health_of_error(&api("2205", 401)),
            Health::Systemic(_)
        ));
        assert_eq!(health_of_error(&api("2213", 400)), Health::Healthy);
        let refused = ApiError::Transport {
            url: "u".into(),
            reason: "refused".into(),
        };
        assert!(matches!(health_of_error(&refused), Health::Systemic(_)));
        let status = |status| ApiError::HttpStatus {
            url: "u".into(),
            status,
            body: String::new(),
            retry_after: None,
        };
        assert_eq!(health_of_error(&status(502)), Health::Neutral);
        assert_eq!(health_of_error(&status(429)), Health::Neutral);
        assert!(matches!(health_of_error(&status(301)), Health::Systemic(_)));
        assert!(matches!(health_of_error(&status(404)), Health::Systemic(_)));
        // Never a per-job failure: the breaker decides.
        assert_eq!(status(404).retry_class(), RetryClass::Retryable);
    }

    #[test]
    fn a_result_code_that_is_not_four_digits_is_never_final() {
        for bad in [
            "", "  ", "abcd", "10200", "2302", "2304", "1O20", "١٠٢٠", " 1020 ",
        ] {
            assert!(
                matches!(
                    after_result(&signed(bad), ResultSource::Callback, JobState::Queued),
                    Next::Again { .. }
                ),
                "{bad:?} was taken as final"
            );
        }
        // A short code is not guessed at: "1" may be 0001 that lost its zeros as a JSON
        // number, or anything else. Never final; job_status is asked instead.
        for short in ["1", "10", "907"] {
            assert!(
                matches!(
                    after_result(&signed(short), ResultSource::Callback, JobState::Queued),
                    Next::Again { .. }
                ),
                "{short:?} was taken as final"
            );
        }
        // An unknown but well-formed code is still a result (no category).
        assert!(matches!(
            after_result(&signed("9876"), ResultSource::Sync, JobState::Queued),
            Next::Final {
                state: JobState::Done,
                ..
            }
        ));
    }

    #[test]
    fn a_signed_answer_without_a_result_code_is_never_final() {
        let mut s = signed("1020");
        s.result.result_code = None;
        assert!(matches!(
            after_result(&s, ResultSource::Sync, JobState::Queued),
            Next::Again {
                state: JobState::Queued,
                wait: Wait::Retry(None),
                ..
            }
        ));
    }
}
