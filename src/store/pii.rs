//! Personal data minimised: once a job is final its staged row (`input_json`) no longer
//! needs the ID number, names, date of birth or phone number, nor its answer
//! (`result_json`) the ID authority's record of the person. The writer replaces them, in
//! the same transaction that makes the job final, with what reports need: the ID number
//! masked (`*******1234`) and a keyed hash of it (HMAC-SHA256 under this database's own
//! random secret, table `pii_key`), which still tells two rows with the same ID number
//! apart from the rest without revealing it. `--keep-pii` keeps rows as staged.

use hmac::{Hmac, KeyInit, Mac};
use rusqlite::Connection;
use serde_json::{Map, Value, json};
use sha2::Sha256;

use crate::api::models::VerifyResult;

/// The key a minimised input carries: such a row can be reported, never sent again.
pub const REMOVED_MARK: &str = "pii_removed";

/// The personal fields an answer may carry (Enhanced KYC returns the ID authority's
/// record). Export hides them unless `--show-pii`; a final job's answer keeps none of them
/// (the ID number masked) unless the run kept personal data.
pub const PERSONAL_FIELDS: [&str; 14] = [
    "FullName",
    "Gender",
    "FirstName",
    "MiddleName",
    "LastName",
    "OtherNames",
    "DOB",
    "PhoneNumber",
    "PhoneNumber2",
    "Address",
    "Photo",
    "Email",
    "IDNumber",
    "SecondaryIDNumber",
];

/// What an answer's removed field reads.
pub const REMOVED: &str = "(removed)";

/// An ID number with all but its last four characters hidden (all hidden when it has four
/// or fewer).
pub fn mask(id_number: &str) -> String {
    let chars: Vec<char> = id_number.chars().collect();
    let shown = if chars.len() > 4 { 4 } else { 0 };
    let hidden = chars.len() - shown;
    let mut out = "*".repeat(hidden);
    out.extend(&chars[hidden..]);
    out
}

/// Minimises final jobs with this database's secret.
#[derive(Clone)]
pub struct Minimiser {
    secret: Vec<u8>,
}

impl std::fmt::Debug for Minimiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Minimiser")
    }
}

impl Minimiser {
    /// The database's secret (made by its schema).
    pub fn load(conn: &Connection) -> rusqlite::Result<Minimiser> {
        let secret: Vec<u8> =
            conn.query_row("SELECT secret FROM pii_key WHERE id = 1", [], |r| r.get(0))?;
        Ok(Minimiser { secret })
    }

    #[cfg(test)]
    pub fn with_secret(secret: &[u8]) -> Minimiser {
        Minimiser {
            secret: secret.to_vec(),
        }
    }

    /// The keyed hash of an ID number within its country and id type, hex.
    pub fn hash(&self, country: &str, id_type: &str, id_number: &str) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.secret)
            .expect("HMAC takes a key of any length");
        for part in [country, id_type, id_number] {
            mac.update(part.as_bytes());
            mac.update(&[0]);
        }
        hex::encode(mac.finalize().into_bytes())
    }

    /// A staged row without its personal data, or `None` when there is nothing to remove
    /// (already minimised, an invalid row's reason, a poll row without extra columns).
    /// A verify row keeps its ID number masked and hashed; its names, date of birth,
    /// phone number and extra columns go.
    pub fn input(&self, input_json: &str) -> Option<String> {
        let value: Value = serde_json::from_str(input_json).ok()?;
        let map = value.as_object()?;
        if map.contains_key(REMOVED_MARK) || map.contains_key("reason") || map.is_empty() {
            return None;
        }
        let Some(info) = map.get("id_info") else {
            // A poll row: only its extra columns, whose content nobody reads afterwards.
            return Some(json!({ REMOVED_MARK: true }).to_string());
        };
        let text = |k: &str| info.get(k).and_then(Value::as_str).unwrap_or_default();
        let number = text("id_number");
        Some(
            json!({
                REMOVED_MARK: true,
                "id_number_masked": mask(number),
                "id_number_hash": self.hash(text("country"), text("id_type"), number),
            })
            .to_string(),
        )
    }

    /// An answer without the person's record, or `None` when it holds none. A stored
    /// answer that is not JSON (only a damaged or altered database holds one) cannot be
    /// searched for personal fields, so it goes whole: reports cannot read it either.
    pub fn result(&self, result_json: &str) -> Option<String> {
        let Ok(mut value) = serde_json::from_str::<Value>(result_json) else {
            return Some(json!({ REMOVED_MARK: "the stored answer was not JSON" }).to_string());
        };
        remove_personal_fields(&mut value).then(|| value.to_string())
    }
}

/// The stored answer in column `index` of `row` without the person's record (`None`:
/// nothing to change). An answer that does not decode (a damaged or altered value)
/// cannot be searched, so it is replaced whole, as one that is not JSON is.
pub(super) fn minimised_answer(
    m: &Minimiser,
    row: &rusqlite::Row<'_>,
    index: usize,
) -> rusqlite::Result<Option<super::Answer>> {
    let text = match row.get::<_, Option<super::Answer>>(index) {
        Ok(answer) => answer.map(|a| a.0),
        Err(
            rusqlite::Error::FromSqlConversionFailure(..) | rusqlite::Error::InvalidColumnType(..),
        ) => Some(String::new()),
        Err(e) => return Err(e),
    };
    Ok(text.and_then(|t| m.result(&t)).map(super::Answer))
}

/// Replaces [`PERSONAL_FIELDS`] wherever they appear (a job_status answer holds the result
/// under `result`) except under `Actions`, whose `DOB`, `Names`... are verdicts. True when
/// anything changed.
fn remove_personal_fields(value: &mut Value) -> bool {
    let mut changed = false;
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if k == "Actions" {
                    continue;
                }
                if k == "PartnerParams" {
                    changed |= remove_partner_extras(v);
                    continue;
                }
                if PERSONAL_FIELDS.contains(&k.as_str()) {
                    changed |= remove_one(k, v);
                } else {
                    changed |= remove_personal_fields(v);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                changed |= remove_personal_fields(item);
            }
        }
        _ => {}
    }
    changed
}

/// Whether an answer, as the client parsed it, may hold anything [`Minimiser::result`]
/// would remove: a personal field outside `Actions`, or an extra partner parameter. It
/// reads the parsed answer, so the writer parses only the answers that say yes (an
/// Enhanced KYC record, an echoed manifest column); it follows the same rules as
/// [`remove_personal_fields`] and errs towards yes (a field already masked still counts).
pub fn result_holds_personal(result: &VerifyResult) -> bool {
    result
        .partner_params
        .as_ref()
        .is_some_and(|p| p.extra.values().any(is_unremoved))
        || map_holds_personal(&result.extra)
}

/// [`result_holds_personal`] for the fields beside a job_status answer's `result`.
pub fn map_holds_personal(map: &Map<String, Value>) -> bool {
    map.iter().any(|(k, v)| match k.as_str() {
        "Actions" => false,
        "PartnerParams" => v.as_object().is_some_and(|p| {
            p.iter()
                .any(|(k, v)| !PARTNER_KEYS.contains(&k.as_str()) && is_unremoved(v))
        }),
        k if PERSONAL_FIELDS.contains(&k) => !v.is_null(),
        _ => value_holds_personal(v),
    })
}

fn value_holds_personal(value: &Value) -> bool {
    match value {
        Value::Object(map) => map_holds_personal(map),
        Value::Array(items) => items.iter().any(value_holds_personal),
        _ => false,
    }
}

fn is_unremoved(v: &Value) -> bool {
    *v != Value::String(REMOVED.into())
}

/// The partner parameters Smile ID needs to name a job; any other is a manifest's extra
/// column echoed back in the answer, which may hold anything, so it goes like the row's.
const PARTNER_KEYS: [&str; 3] = ["job_id", "user_id", "job_type"];

fn remove_partner_extras(params: &mut Value) -> bool {
    let Value::Object(map) = params else {
        return false;
    };
    let mut changed = false;
    for (k, v) in map.iter_mut() {
        if !PARTNER_KEYS.contains(&k.as_str()) && *v != Value::String(REMOVED.into()) {
            *v = Value::String(REMOVED.into());
            changed = true;
        }
    }
    changed
}

fn remove_one(key: &str, v: &mut Value) -> bool {
    let kept = match v {
        Value::Null => return false,
        Value::String(s) if s == REMOVED || s.chars().all(|c| c == '*') => return false,
        Value::String(s) if key.ends_with("IDNumber") => {
            let masked = mask(s);
            if masked == *s {
                return false;
            }
            masked
        }
        _ => REMOVED.to_owned(),
    };
    *v = Value::String(kept);
    true
}

/// The ID number a stored row shows: the staged one, or the masked one a minimised row
/// keeps (poll rows and invalid rows have none).
pub fn shown_id_number(input_json: &str) -> Option<String> {
    let input: Map<String, Value> = serde_json::from_str(input_json).ok()?;
    let number = match input.get("id_info") {
        Some(info) => info.get("id_number"),
        None => input.get("id_number_masked"),
    };
    number.and_then(Value::as_str).map(str::to_owned)
}

/// Whether a stored row's personal data was removed.
pub fn is_minimised(input_json: &str) -> bool {
    serde_json::from_str::<Map<String, Value>>(input_json)
        .is_ok_and(|m| m.contains_key(REMOVED_MARK))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROW: &str = r#"{"id_info":{"country":"NG","id_type":"NIN","id_number":"12345678901",
        "first_name":"Ada","last_name":"Obi","dob":"1990-02-03","phone_number":"0803111222"},
        "extra":{"branch":"Ikeja"}}"#;

    #[test]
    fn a_verify_row_keeps_only_the_masked_number_and_its_hash() {
        let m = Minimiser::with_secret(b"k1");
        let out = m.input(ROW).unwrap();
        for gone in [
            "12345678901",
            "Ada",
            "Obi",
            "1990-02-03",
            "0803111222",
            "Ikeja",
        ] {
            assert!(!out.contains(gone), "{gone} kept: {out}");
        }
        assert_eq!(shown_id_number(&out).as_deref(), Some("*******8901"));
        assert!(is_minimised(&out) && !is_minimised(ROW));
        assert_eq!(m.input(&out), None, "minimised twice");
        // The same number hashes alike under one secret, differently under another.
        assert_eq!(m.input(ROW), Some(out.clone()));
        let other = Minimiser::with_secret(b"k2").input(ROW).unwrap();
        assert_ne!(other, out);
    }

    #[test]
    fn invalid_and_empty_rows_are_left_alone_and_poll_extras_go() {
        let m = Minimiser::with_secret(b"k");
        assert_eq!(m.input(r#"{"field":"dob","reason":"not a date"}"#), None);
        assert_eq!(m.input("{}"), None);
        assert_eq!(m.input("not json"), None);
        let poll = m.input(r#"{"note":"Ada Obi"}"#).unwrap();
        assert!(!poll.contains("Ada") && is_minimised(&poll), "{poll}");
    }

    #[test]
    fn an_answer_loses_the_extra_columns_it_echoes_but_not_the_jobs_name() {
        let m = Minimiser::with_secret(b"k");
        let answer = r#"{"ResultCode":"1012","PartnerParams":{"job_id":"j1","user_id":"u1","job_type":5,"note":"A1234567"}}"#;
        let kept = m.result(answer).unwrap();
        assert!(!kept.contains("A1234567"), "{kept}");
        let v: Value = serde_json::from_str(&kept).unwrap();
        assert_eq!(v["PartnerParams"]["job_id"], "j1");
        assert_eq!(v["PartnerParams"]["user_id"], "u1");
        assert_eq!(v["PartnerParams"]["job_type"], 5);
        assert_eq!(v["PartnerParams"]["note"], REMOVED);
        assert_eq!(m.result(&kept), None, "nothing left to remove");
    }

    #[test]
    fn an_answer_loses_the_persons_record_but_not_its_verdicts() {
        let m = Minimiser::with_secret(b"k");
        let answer = r#"{"job_complete":true,"result":{"ResultCode":"1012",
            "FullName":"Ada Obi","DOB":"1990-02-03","IDNumber":"12345678901",
            "Photo":"aGVsbG8=","IDType":"BVN","Country":"Nigeria",
            "Actions":{"DOB":"Verified","Names":"Exact Match"}}}"#;
        let out = m.result(answer).unwrap();
        for gone in ["Ada", "1990-02-03", "12345678901", "aGVsbG8="] {
            assert!(!out.contains(gone), "{gone} kept: {out}");
        }
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["result"]["IDNumber"], "*******8901");
        assert_eq!(v["result"]["Actions"]["DOB"], "Verified");
        assert_eq!(v["result"]["ResultCode"], "1012");
        // where the record comes from is not personal: reports place the job by it
        assert_eq!(v["result"]["Country"], "Nigeria");
        assert_eq!(v["result"]["IDType"], "BVN");
        assert_eq!(m.result(&out), None, "minimised twice");
        assert_eq!(m.result(r#"{"ResultCode":"1020"}"#), None);
    }

    /// An answer that is not JSON (cut short, altered) cannot be searched, so it goes.
    #[test]
    fn an_answer_that_is_not_json_is_removed_whole() {
        let m = Minimiser::with_secret(b"k");
        for bad in [
            r#"{"result":{"FullName":"Ada Obi","DOB":"1990"#,
            "Ada Obi",
            "",
        ] {
            let out = m.result(bad).unwrap();
            assert!(!out.contains("Ada") && out.contains(REMOVED_MARK), "{out}");
            assert_eq!(m.result(&out), None, "removed twice");
        }
    }

    /// The cheap check must say yes to every answer the minimiser would change: an
    /// answer it passes is stored as received.
    #[test]
    fn the_parsed_answer_check_agrees_with_the_minimiser() {
        use crate::api::models::JobStatusResponse;
        let m = Minimiser::with_secret(b"k");
        let results = [
            (
                r#"{"ResultCode":"1020","Actions":{"DOB":"Exact Match","Names":"Exact Match"}}"#,
                false,
            ),
            (
                r#"{"ResultCode":"1020","Country":"NG","IDType":"BVN","Source":"x"}"#,
                false,
            ),
            (
                r#"{"ResultCode":"1020","PartnerParams":{"job_id":"j","user_id":"u","job_type":5}}"#,
                false,
            ),
            (
                r#"{"ResultCode":"1020","PartnerParams":{"job_id":"j","user_id":"u","note":"(removed)"}}"#,
                false,
            ),
            (r#"{"ResultCode":"1020","FullName":null}"#, false),
            (
                r#"{"ResultCode":"1020","PartnerParams":{"job_id":"j","user_id":"u","note":"A1"}}"#,
                true,
            ),
            (r#"{"ResultCode":"1012","FullName":"Ada Obi"}"#, true),
            (r#"{"ResultCode":"1012","IDNumber":"12345678901"}"#, true),
            (
                r#"{"ResultCode":"1012","FullData":{"Photo":"aGVsbG8="}}"#,
                true,
            ),
            (
                r#"{"ResultCode":"1012","Records":[{"x":1},{"DOB":"1990-02-03"}]}"#,
                true,
            ),
            (
                r#"{"ResultCode":"1012","Nested":{"PartnerParams":{"job_id":"j","memo":"A1"}}}"#,
                true,
            ),
        ];
        for (json, personal) in results {
            let result: VerifyResult = serde_json::from_str(json).unwrap();
            assert_eq!(result_holds_personal(&result), personal, "{json}");
            assert_eq!(m.result(json).is_some(), personal, "{json}");
            // The same result inside a job_status answer, and beside it.
            let status = format!(
                r#"{{"timestamp":"t","signature":"s","job_complete":true,"code":"2302","result":{json}}}"#
            );
            let parsed: JobStatusResponse = serde_json::from_str(&status).unwrap();
            assert!(!map_holds_personal(&parsed.extra), "{status}");
            assert_eq!(m.result(&status).is_some(), personal, "{status}");
        }
        let beside = r#"{"timestamp":"t","signature":"s","job_complete":true,"code":"2302","FullName":"Ada"}"#;
        let parsed: JobStatusResponse = serde_json::from_str(beside).unwrap();
        assert!(map_holds_personal(&parsed.extra));
        assert!(m.result(beside).is_some());
    }
}
