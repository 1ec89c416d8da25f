//! Reading request bodies the way the API judges them: invalid JSON, then the signature,
//! then wrong types, then missing fields, each with its documented code.
//!
//! job_status answers with its own documented family (2303 invalid JSON, 2305 invalid
//! signature, 2313 missing parameter, seed 000); the submission endpoints with the request
//! family (2203, 2205, 2213, seed 004). A wrong type is 2204 everywhere: job_status
//! documents no code of its own for it.

use axum::http::StatusCode;
use serde_json::{Map, Value};

use crate::api::Credentials;
use crate::api::models::{IdInfo, NumberOrString, PartnerParams};

/// An answer refusing a request: a Smile ID code, its HTTP status and a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds, for 429 answers.
    pub retry_after: Option<u64>,
}

impl Rejection {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }
}

/// Which code family an endpoint speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    JobStatus,
    Request,
}

impl Family {
    fn invalid_json(self) -> &'static str {
        match self {
            Family::JobStatus => "2303",
            Family::Request => "2203",
        }
    }
    fn unauthorized(self) -> &'static str {
        match self {
            Family::JobStatus => "2305",
            Family::Request => "2205",
        }
    }
    fn missing(self) -> &'static str {
        match self {
            Family::JobStatus => "2313",
            Family::Request => "2213",
        }
    }
}

pub fn invalid_json(family: Family, why: &str) -> Rejection {
    Rejection::new(
        StatusCode::BAD_REQUEST,
        family.invalid_json(),
        format!("Invalid JSON: {why}"),
    )
}

fn wrong_type(field: &str, expected: &str) -> Rejection {
    Rejection::new(
        StatusCode::BAD_REQUEST,
        "2204",
        format!("A parameter is of the wrong data type: {field} must be {expected}"),
    )
}

fn missing(family: Family, field: &str) -> Rejection {
    Rejection::new(
        StatusCode::BAD_REQUEST,
        family.missing(),
        format!("A required parameter is missing: {field}"),
    )
}

/// The body as a JSON object.
pub fn object(body: &[u8], family: Family) -> Result<Map<String, Value>, Rejection> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(invalid_json(family, "the body must be a JSON object")),
        Err(e) => Err(invalid_json(family, &e.to_string())),
    }
}

/// The partner id, timestamp and signature must be there and confirm with the key. A
/// partner id sent as a JSON number is read as its text: the SDKs sign `str(partner_id)`,
/// so `2` and `"002"` are different partners, as they are to the HMAC.
pub fn authenticate(
    obj: &Map<String, Value>,
    credentials: &Credentials,
    family: Family,
) -> Result<(), Rejection> {
    let text = |name: &str| obj.get(name).and_then(Value::as_str);
    let partner = match obj.get("partner_id") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let unauthorized = |why: &str| {
        Rejection::new(
            StatusCode::UNAUTHORIZED,
            family.unauthorized(),
            format!("You're not authorized to do that: {why}"),
        )
    };
    let Some(partner) = partner else {
        return Err(unauthorized("partner_id is missing"));
    };
    if partner != credentials.partner_id() {
        return Err(unauthorized("unknown partner_id"));
    }
    let (Some(timestamp), Some(signature)) = (text("timestamp"), text("signature")) else {
        return Err(unauthorized("timestamp and signature are required"));
    };
    if !credentials.confirm(timestamp, signature) {
        return Err(unauthorized("the signature does not match"));
    }
    Ok(())
}

/// An optional string field: absent, null and "" are `None`; any other non-string is 2204.
fn opt_string(obj: &Map<String, Value>, name: &str) -> Result<Option<String>, Rejection> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(wrong_type(name, "a string")),
    }
}

/// `history` and `image_links`: booleans, or the strings "true"/"false" seed 000 shows;
/// null (what the Python SDK sends when the option is unset) is false.
fn flag(obj: &Map<String, Value>, name: &str) -> Result<bool, Rejection> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") || s.is_empty() => Ok(false),
        Some(_) => Err(wrong_type(name, "a boolean")),
    }
}

/// A job_status body, after authentication.
#[derive(Debug, PartialEq, Eq)]
pub struct JobStatusBody {
    pub user_id: String,
    pub job_id: String,
    pub history: bool,
    pub image_links: bool,
}

pub fn job_status(obj: &Map<String, Value>) -> Result<JobStatusBody, Rejection> {
    let user_id = opt_string(obj, "user_id")?;
    let job_id = opt_string(obj, "job_id")?;
    let history = flag(obj, "history")?;
    let image_links = flag(obj, "image_links")?;
    let user_id = user_id.ok_or_else(|| missing(Family::JobStatus, "user_id"))?;
    let job_id = job_id.ok_or_else(|| missing(Family::JobStatus, "job_id"))?;
    Ok(JobStatusBody {
        user_id,
        job_id,
        history,
        image_links,
    })
}

/// What a submission asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubmitKind {
    /// Enhanced KYC (`/v1/...id_verification`): names are not required.
    pub enhanced: bool,
    /// `callback_url` is required.
    pub asynchronous: bool,
}

/// A submission body, after authentication.
#[derive(Clone, Debug, PartialEq)]
pub struct SubmitBody {
    pub id_info: IdInfo,
    pub partner_params: PartnerParams,
    pub callback_url: Option<String>,
}

const ID_FIELDS: [&str; 10] = [
    "country",
    "id_type",
    "id_number",
    "first_name",
    "middle_name",
    "last_name",
    "dob",
    "gender",
    "phone_number",
    "bank_code",
];

/// Positions in [`ID_FIELDS`] of the fields a submission requires.
const COUNTRY: usize = 0;
const ID_TYPE: usize = 1;
const ID_NUMBER: usize = 2;
const FIRST_NAME: usize = 3;
const LAST_NAME: usize = 5;
/// Enhanced KYC needs the ID only; the other submissions the names too.
const ENHANCED_REQUIRED: &[usize] = &[COUNTRY, ID_TYPE, ID_NUMBER];
const WITH_NAMES_REQUIRED: &[usize] = &[COUNTRY, ID_TYPE, ID_NUMBER, FIRST_NAME, LAST_NAME];

/// A submission's body, checked in this order: every field's type, then the required
/// fields, then the values (job type, callback URL).
pub fn submit(obj: &Map<String, Value>, kind: SubmitKind) -> Result<SubmitBody, Rejection> {
    // Types first, over every field, so a request with both faults learns about the
    // wrong type (the one a client cannot fix by adding a field).
    let mut fields: IdFields = Default::default();
    for (slot, name) in fields.iter_mut().zip(ID_FIELDS) {
        *slot = opt_string(obj, name)?;
    }
    let callback_url = opt_string(obj, "callback_url")?;
    let given = GivenParams::typed(obj)?;

    require_id_fields(&fields, kind)?;
    let Some(params) = given.object else {
        return Err(missing(Family::Request, "partner_params"));
    };
    let job_id = given
        .job_id
        .ok_or_else(|| missing(Family::Request, "partner_params.job_id"))?;
    let user_id = given
        .user_id
        .ok_or_else(|| missing(Family::Request, "partner_params.user_id"))?;
    if kind.asynchronous && callback_url.is_none() {
        return Err(missing(Family::Request, "callback_url"));
    }
    if let Some(t) = &given.job_type
        && t.as_i64() != Some(crate::api::models::JOB_TYPE_ID_VERIFICATION)
    {
        return Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            "2212",
            "Invalid job type: set partner_params.job_type to 5",
        ));
    }
    if let Some(url) = &callback_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return Err(wrong_type("callback_url", "an http(s) URL"));
    }
    let mut extra = params.clone();
    for k in ["job_id", "user_id", "job_type"] {
        extra.remove(k);
    }
    Ok(SubmitBody {
        id_info: id_info(fields),
        partner_params: PartnerParams {
            job_id,
            user_id,
            job_type: Some(given.job_type.unwrap_or(NumberOrString::Number(
                crate::api::models::JOB_TYPE_ID_VERIFICATION,
            ))),
            extra,
        },
        callback_url,
    })
}

/// The values of [`ID_FIELDS`], in its order.
type IdFields = [Option<String>; ID_FIELDS.len()];

/// A submission's `partner_params` as given, each part of the right type (none required
/// yet).
struct GivenParams<'a> {
    object: Option<&'a Map<String, Value>>,
    job_id: Option<String>,
    user_id: Option<String>,
    job_type: Option<NumberOrString>,
}

impl<'a> GivenParams<'a> {
    /// Refuses a `partner_params` that is not an object, or whose `job_type`, `job_id` or
    /// `user_id` has the wrong type.
    fn typed(obj: &'a Map<String, Value>) -> Result<Self, Rejection> {
        let object = match obj.get("partner_params") {
            None | Some(Value::Null) => None,
            Some(Value::Object(p)) => Some(p),
            Some(_) => return Err(wrong_type("partner_params", "an object")),
        };
        let Some(p) = object else {
            return Ok(Self {
                object,
                job_id: None,
                user_id: None,
                job_type: None,
            });
        };
        let job_type = match p.get("job_type") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => match n.as_i64() {
                Some(i) => Some(NumberOrString::Number(i)),
                None => return Err(wrong_type("partner_params.job_type", "an integer")),
            },
            Some(Value::String(s)) if s.trim().parse::<i64>().is_ok() => {
                Some(NumberOrString::String(s.clone()))
            }
            Some(_) => return Err(wrong_type("partner_params.job_type", "an integer")),
        };
        let job_id =
            opt_string(p, "job_id").map_err(|_| wrong_type("partner_params.job_id", "a string"))?;
        let user_id = opt_string(p, "user_id")
            .map_err(|_| wrong_type("partner_params.user_id", "a string"))?;
        Ok(Self {
            object,
            job_id,
            user_id,
            job_type,
        })
    }
}

/// Refuses (2213) a submission without a field its kind requires, or without one its id
/// type needs beyond those (a bank account's bank_code).
fn require_id_fields(fields: &IdFields, kind: SubmitKind) -> Result<(), Rejection> {
    let required = if kind.enhanced {
        ENHANCED_REQUIRED
    } else {
        WITH_NAMES_REQUIRED
    };
    for &i in required {
        if fields[i].is_none() {
            return Err(missing(Family::Request, ID_FIELDS[i]));
        }
    }
    if let (Some(country), Some(id_type)) = (&fields[COUNTRY], &fields[ID_TYPE])
        && let Some(format) = crate::api::id_formats::find(country, id_type)
    {
        for extra in format.extra_required {
            let given = ID_FIELDS
                .iter()
                .position(|f| f == extra)
                .is_some_and(|i| fields[i].is_some());
            if !given {
                return Err(missing(Family::Request, extra));
            }
        }
    }
    Ok(())
}

fn id_info(fields: IdFields) -> IdInfo {
    let [
        country,
        id_type,
        id_number,
        first_name,
        middle_name,
        last_name,
        dob,
        gender,
        phone_number,
        bank_code,
    ] = fields;
    IdInfo {
        country: country.unwrap_or_default(),
        id_type: id_type.unwrap_or_default(),
        id_number: id_number.unwrap_or_default(),
        first_name,
        middle_name,
        last_name,
        dob,
        gender,
        phone_number,
        bank_code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ApiKey;
    use serde_json::json;

    #[test]
    fn the_named_positions_name_their_fields() {
        let named = [
            (COUNTRY, "country"),
            (ID_TYPE, "id_type"),
            (ID_NUMBER, "id_number"),
            (FIRST_NAME, "first_name"),
            (LAST_NAME, "last_name"),
        ];
        for (i, name) in named {
            assert_eq!(ID_FIELDS[i], name);
        }
    }

    fn creds() -> Credentials {
        Credentials::new("002", ApiKey::new("k").unwrap()).unwrap()
    }

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn signed(mut v: Value) -> Map<String, Value> {
        let c = creds();
        let stamp = c.stamp_now();
        v["partner_id"] = json!("002");
        v["timestamp"] = json!(stamp.timestamp);
        v["signature"] = json!(stamp.signature);
        obj(v)
    }

    #[test]
    fn invalid_json_and_non_objects_are_refused_with_the_family_code() {
        assert_eq!(object(b"{", Family::Request).unwrap_err().code, "2203");
        assert_eq!(object(b"[1]", Family::Request).unwrap_err().code, "2203");
        assert_eq!(object(b"nope", Family::JobStatus).unwrap_err().code, "2303");
    }

    #[test]
    fn authentication_needs_partner_timestamp_and_a_confirming_signature() {
        let c = creds();
        assert!(authenticate(&signed(json!({})), &c, Family::Request).is_ok());
        let mut m = signed(json!({}));
        m.insert("partner_id".into(), json!("003"));
        let e = authenticate(&m, &c, Family::Request).unwrap_err();
        assert_eq!((e.code, e.status), ("2205", StatusCode::UNAUTHORIZED));
        let mut m = signed(json!({}));
        m.insert("timestamp".into(), json!("2000-01-01T00:00:00Z"));
        assert_eq!(
            authenticate(&m, &c, Family::JobStatus).unwrap_err().code,
            "2305"
        );
        let mut m = signed(json!({}));
        m.remove("signature");
        assert_eq!(
            authenticate(&m, &c, Family::Request).unwrap_err().code,
            "2205"
        );
    }

    #[test]
    fn job_status_flags_accept_bools_strings_and_null() {
        let b = job_status(&obj(
            json!({"user_id":"u","job_id":"j","history":"true","image_links":null}),
        ))
        .unwrap();
        assert!(b.history && !b.image_links);
        assert_eq!(
            job_status(&obj(json!({"user_id":"u","job_id":"j","history":3})))
                .unwrap_err()
                .code,
            "2204"
        );
        assert_eq!(
            job_status(&obj(json!({"user_id":"u"}))).unwrap_err().code,
            "2313"
        );
        assert_eq!(
            job_status(&obj(json!({"user_id":5,"job_id":"j"})))
                .unwrap_err()
                .code,
            "2204"
        );
    }

    fn basic() -> Value {
        json!({
            "country": "NG", "id_type": "BVN", "id_number": "12345678901",
            "first_name": "Ada", "last_name": "Obi",
            "partner_params": {"job_id": "j", "user_id": "u", "job_type": 5, "tag": "x"}
        })
    }

    const SYNC: SubmitKind = SubmitKind {
        enhanced: false,
        asynchronous: false,
    };

    #[test]
    fn submit_reads_fields_and_keeps_extra_partner_params() {
        let b = submit(&obj(basic()), SYNC).unwrap();
        assert_eq!(b.id_info.first_name.as_deref(), Some("Ada"));
        assert_eq!(b.partner_params.extra["tag"], "x");
        assert_eq!(b.partner_params.job_type.unwrap().as_i64(), Some(5));
    }

    #[test]
    fn submit_codes_for_each_fault() {
        let code = |v: Value, kind| submit(&obj(v), kind).unwrap_err().code;
        let mut v = basic();
        v["first_name"] = json!(7);
        assert_eq!(code(v, SYNC), "2204");
        let mut v = basic();
        v["partner_params"] = json!("j");
        assert_eq!(code(v, SYNC), "2204");
        let mut v = basic();
        v.as_object_mut().unwrap().remove("last_name");
        assert_eq!(code(v.clone(), SYNC), "2213");
        let enhanced = SubmitKind {
            enhanced: true,
            asynchronous: false,
        };
        assert!(
            submit(&obj(v), enhanced).is_ok(),
            "Enhanced KYC needs no names"
        );
        let mut v = basic();
        v["partner_params"]
            .as_object_mut()
            .unwrap()
            .remove("job_id");
        assert_eq!(code(v, SYNC), "2213");
        let asynchronous = SubmitKind {
            enhanced: false,
            asynchronous: true,
        };
        assert_eq!(code(basic(), asynchronous), "2213", "callback_url");
        let mut v = basic();
        v["partner_params"]["job_type"] = json!(1);
        assert_eq!(code(v, SYNC), "2212");
        let mut v = basic();
        v["first_name"] = json!(7);
        v.as_object_mut().unwrap().remove("country");
        assert_eq!(
            code(v, SYNC),
            "2204",
            "a wrong type is reported before a gap"
        );
    }
}
