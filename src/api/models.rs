//! Request and response bodies, as they travel on the wire.
//!
//! Lenient where the API is (codes and `job_type` arrive as numbers or strings, `result`
//! as an object or a plain string, fields we do not know are kept in `extra`), strict where
//! it matters: every signed answer must carry `timestamp` and `signature`.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::signature::SignedStamp;

/// `partner_params.job_type` for Identity Verification and Enhanced KYC.
pub const JOB_TYPE_ID_VERIFICATION: i64 = 5;

/// A value the API sends as a string in one place and a number in another (`job_type`:
/// `4` in one seed, `"1"` in the next). Kept as it came so it is sent back unchanged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum NumberOrString {
    Number(i64),
    String(String),
}

impl NumberOrString {
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            NumberOrString::Number(n) => Some(*n),
            NumberOrString::String(s) => s.trim().parse().ok(),
        }
    }
}

/// Accepts a string, a number or a boolean where the API documents a string
/// (`ResultCode`, `ConfidenceValue`, `IsFinalResult`, `code`).
pub fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::Bool(b)) => Some(b.to_string()),
        Some(other) => {
            return Err(serde::de::Error::custom(format!(
                "expected a string or a number, found {other}"
            )));
        }
    })
}

/// Like [`lenient_string`] for a required field.
fn lenient_string_required<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    lenient_string(d)?.ok_or_else(|| serde::de::Error::custom("a code is required"))
}

/// `partner_params`: our job_id and user_id, the job type, and whatever else the partner
/// adds for tracking (returned unchanged in results).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartnerParams {
    pub job_id: String,
    pub user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_type: Option<NumberOrString>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The identity fields of an Identity Verification / Enhanced KYC request.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IdInfo {
    pub country: String,
    pub id_type: String,
    pub id_number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub middle_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dob: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// The bank of a `BANK_ACCOUNT` id type (NG: the CBN code; ZM: the institution code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank_code: Option<String>,
}

/// The body of `/v1/job_status`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobStatusRequest {
    pub partner_id: String,
    pub timestamp: String,
    pub signature: String,
    pub user_id: String,
    pub job_id: String,
    #[serde(default)]
    pub history: bool,
    #[serde(default)]
    pub image_links: bool,
}

impl JobStatusRequest {
    pub fn new(partner_id: &str, stamp: SignedStamp, user_id: &str, job_id: &str) -> Self {
        Self {
            partner_id: partner_id.to_owned(),
            timestamp: stamp.timestamp,
            signature: stamp.signature,
            user_id: user_id.to_owned(),
            job_id: job_id.to_owned(),
            history: false,
            image_links: false,
        }
    }
}

/// The body of `/v2/verify`, `/v2/verify_async`, `/v1/id_verification` and
/// `/v1/async_id_verification`: the four share their fields; the async ones need
/// `callback_url`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VerifyRequest {
    pub partner_id: String,
    pub timestamp: String,
    pub signature: String,
    #[serde(flatten)]
    pub id_info: IdInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    pub partner_params: PartnerParams,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_sdk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_sdk_version: Option<String>,
}

/// A job's result: the body of a sync verify response and of a callback (around the
/// signature), the `result` object of job_status, and each entry of its `history`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VerifyResult {
    #[serde(
        rename = "SmileJobID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub smile_job_id: Option<String>,
    #[serde(
        rename = "PartnerParams",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub partner_params: Option<PartnerParams>,
    #[serde(
        rename = "ResultType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub result_type: Option<String>,
    #[serde(
        rename = "ResultText",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub result_text: Option<String>,
    #[serde(
        rename = "ResultCode",
        default,
        deserialize_with = "lenient_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub result_code: Option<String>,
    #[serde(
        rename = "IsFinalResult",
        default,
        deserialize_with = "lenient_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub is_final_result: Option<String>,
    #[serde(rename = "Actions", default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<BTreeMap<String, Value>>,
    #[serde(
        rename = "ConfidenceValue",
        default,
        deserialize_with = "lenient_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub confidence_value: Option<String>,
    #[serde(rename = "Source", default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Everything else (`JSONVersion`, Enhanced KYC's `FullName`, `DOB`, ...), kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl VerifyResult {
    /// One `Actions` entry as text (`"Exact Match"`), when present.
    pub fn action(&self, name: &str) -> Option<&str> {
        self.actions.as_ref()?.get(name)?.as_str()
    }
}

/// A result with its signature: the sync verify / id_verification response and the body
/// POSTed to a callback URL.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignedResult {
    pub timestamp: String,
    pub signature: String,
    #[serde(flatten)]
    pub result: VerifyResult,
}

/// `result` in a job_status answer: normally an object, but a plain string when there is
/// nothing to show (`"No zip file received"` with code 2314).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum JobResult {
    Object(Box<VerifyResult>),
    Text(String),
}

impl JobResult {
    pub fn as_object(&self) -> Option<&VerifyResult> {
        match self {
            JobResult::Object(r) => Some(r),
            JobResult::Text(_) => None,
        }
    }
}

/// The answer of `/v1/job_status`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobStatusResponse {
    pub timestamp: String,
    pub signature: String,
    pub job_complete: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_success: Option<bool>,
    /// The job_status call's own code (2302 success, ...), not the job's result.
    #[serde(deserialize_with = "lenient_string_required")]
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<JobResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<VerifyResult>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_links: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
    /// The answer's body exactly as received (set by the client): what the store keeps as
    /// the result JSON, so it is the server's own bytes and is not serialised again.
    #[serde(skip)]
    pub raw: Option<String>,
}

impl JobStatusResponse {
    /// The job's ResultCode, when the job has a result object that carries one.
    pub fn result_code(&self) -> Option<&str> {
        self.result.as_ref()?.as_object()?.result_code.as_deref()
    }
}

/// The immediate answer of the async endpoints: `{"success": true}`. Not signed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AsyncAck {
    pub success: bool,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The body of an error answer: `{"code": "2205", "error": "You're not authorized..."}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    #[serde(default, deserialize_with = "lenient_string")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_type_number_or_string_round_trips() {
        let p: PartnerParams =
            serde_json::from_str(r#"{"job_id":"j","user_id":"u","job_type":"5","x":"y"}"#).unwrap();
        assert_eq!(p.job_type.as_ref().unwrap().as_i64(), Some(5));
        assert_eq!(p.extra["x"], "y");
        let back = serde_json::to_value(&p).unwrap();
        assert_eq!(back["job_type"], "5");
        let p: PartnerParams =
            serde_json::from_str(r#"{"job_id":"j","user_id":"u","job_type":5}"#).unwrap();
        assert_eq!(serde_json::to_value(&p).unwrap()["job_type"], 5);
    }

    #[test]
    fn codes_may_be_numbers() {
        let r: VerifyResult =
            serde_json::from_str(r#"{"ResultCode":1020,"ConfidenceValue":99}"#).unwrap();
        assert_eq!(r.result_code.as_deref(), Some("1020"));
        assert_eq!(r.confidence_value.as_deref(), Some("99"));
    }

    #[test]
    fn signed_result_requires_timestamp_and_signature() {
        assert!(serde_json::from_str::<SignedResult>(r#"{"ResultCode":"1020"}"#).is_err());
        assert!(
            serde_json::from_str::<SignedResult>(r#"{"ResultCode":"1020","timestamp":"t"}"#)
                .is_err()
        );
        let r: SignedResult = serde_json::from_str(
            r#"{"ResultCode":"1020","timestamp":"t","signature":"s","Extra":1}"#,
        )
        .unwrap();
        assert_eq!(r.result.extra["Extra"], 1);
    }

    #[test]
    fn verify_request_serialises_flat() {
        let req = VerifyRequest {
            partner_id: "002".into(),
            timestamp: "t".into(),
            signature: "s".into(),
            id_info: IdInfo {
                country: "NG".into(),
                id_type: "BVN".into(),
                id_number: "00000000000".into(),
                first_name: Some("Ada".into()),
                ..IdInfo::default()
            },
            callback_url: None,
            partner_params: PartnerParams {
                job_id: "j".into(),
                user_id: "u".into(),
                job_type: Some(NumberOrString::Number(5)),
                extra: Map::new(),
            },
            source_sdk: None,
            source_sdk_version: None,
        };
        let v = serde_json::to_value(&req).unwrap();
        assert_eq!(v["country"], "NG");
        assert_eq!(v["partner_params"]["job_type"], 5);
        assert!(v.get("middle_name").is_none());
        assert!(v.get("callback_url").is_none());
        let back: VerifyRequest = serde_json::from_value(v).unwrap();
        assert_eq!(back, req);
    }
}
