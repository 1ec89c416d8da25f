//! The id types a run validates its rows against: the answer of `GET /v1/services` merged
//! with the built-in table ([`super::id_formats`]).
//!
//! `/v1/services` maps `id_types[country][id_type]` either to a plain array of required
//! field names (what Smile ID's own SDKs read: the Python SDK's `validate_id_params`
//! checks each named key is present) or to an object with `required_fields`,
//! `id_number_regex` (optionally `/.../i`), `case_insensitive` and `test_data` (what this
//! project's sandbox answers). Both are read. A type's regex is the answer's when it gives
//! one that compiles, else the built-in one when the table knows the type, else none (any
//! non-empty ID number; the API judges). Types only the table knows are kept, so an answer
//! that lists fewer types refuses nothing the table accepts.

use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;

use regex_lite::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::id_formats::{self, FORMATS, IdNumberError};

/// What happens to a row whose (country, id_type) neither `/v1/services` nor the built-in
/// table knows (`--unknown-id-types`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownIdTypes {
    /// The row is `invalid`, naming its line and the field (country or id_type).
    #[default]
    Refuse,
    /// The row is sent; the API judges it (no regex, no required-field check).
    Allow,
}

impl UnknownIdTypes {
    pub fn as_str(self) -> &'static str {
        match self {
            UnknownIdTypes::Refuse => "refuse",
            UnknownIdTypes::Allow => "allow",
        }
    }
}

/// Where a type's entry came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    BuiltIn,
    Services,
}

/// One (country, id_type).
#[derive(Clone, Debug)]
pub struct IdType {
    /// The regex as given (without `(?i)`), `None`: any non-empty number.
    pub pattern: Option<String>,
    regex: Option<Regex>,
    /// Fields a request of this type needs (as the answer or the table names them).
    pub required_fields: Vec<String>,
    pub origin: Origin,
}

/// Why a `/v1/services` answer cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("the /v1/services answer is not usable: {0}")]
pub struct ServicesError(String);

/// The id types a run knows, and what to do with the others.
#[derive(Clone, Debug)]
pub struct IdTypes {
    types: HashMap<(String, String), IdType>,
    countries: BTreeSet<String>,
    unknown: UnknownIdTypes,
    /// Types the services answer listed but whose regex did not compile (kept without it).
    pub bad_regexes: Vec<String>,
}

impl IdTypes {
    /// The built-in table alone, refusing unknown types.
    pub fn builtin() -> Self {
        let mut types = HashMap::new();
        for f in FORMATS {
            types.insert(
                (f.country.to_owned(), f.id_type.to_owned()),
                IdType {
                    pattern: f.pattern.map(str::to_owned),
                    regex: f.pattern.map(|p| {
                        // The table's patterns are constants; a unit test compiles them.
                        id_formats::compile(p, f.case_insensitive)
                            .expect("documented id regex compiles")
                    }),
                    required_fields: f.required_fields().into_iter().map(str::to_owned).collect(),
                    origin: Origin::BuiltIn,
                },
            );
        }
        Self::new(types)
    }

    /// A shared built-in table (validation without a server, the tests' default).
    pub fn builtin_shared() -> &'static IdTypes {
        static BUILTIN: OnceLock<IdTypes> = OnceLock::new();
        BUILTIN.get_or_init(IdTypes::builtin)
    }

    fn new(types: HashMap<(String, String), IdType>) -> Self {
        let countries = types.keys().map(|(c, _)| c.clone()).collect();
        Self {
            types,
            countries,
            unknown: UnknownIdTypes::Refuse,
            bad_regexes: Vec::new(),
        }
    }

    /// The built-in table merged with a `/v1/services` body (either shape).
    pub fn from_services(body: &Value) -> Result<Self, ServicesError> {
        let Some(countries) = body.get("id_types").and_then(Value::as_object) else {
            return Err(ServicesError("it has no \"id_types\" object".into()));
        };
        let mut merged = Self::builtin();
        let mut listed = 0usize;
        for (country, types) in countries {
            let Some(types) = types.as_object() else {
                return Err(ServicesError(format!(
                    "id_types.{country} is not an object of id types"
                )));
            };
            for (id_type, entry) in types {
                let (required, given, case_insensitive) = match entry {
                    Value::Array(fields) => (strings(fields), None, false),
                    Value::Object(o) => (
                        o.get("required_fields")
                            .and_then(Value::as_array)
                            .map(|a| strings(a))
                            .unwrap_or_default(),
                        o.get("id_number_regex")
                            .and_then(Value::as_str)
                            .filter(|s| !s.trim().is_empty())
                            .map(str::to_owned),
                        o.get("case_insensitive")
                            .and_then(Value::as_bool)
                            .unwrap_or(false),
                    ),
                    _ => {
                        return Err(ServicesError(format!(
                            "id_types.{country}.{id_type} is neither a list of fields nor \
                             an object"
                        )));
                    }
                };
                listed += 1;
                let key = (country.clone(), id_type.clone());
                let builtin = merged.types.remove(&key);
                let from_answer = given.and_then(|raw| {
                    let (pattern, flag_i) = strip_js_literal(&raw);
                    match id_formats::compile(&pattern, case_insensitive || flag_i) {
                        Ok(regex) => Some((pattern, regex)),
                        Err(_) => {
                            merged.bad_regexes.push(format!("{country} {id_type}"));
                            None
                        }
                    }
                });
                let (pattern, regex) = match (from_answer, &builtin) {
                    (Some((p, r)), _) => (Some(p), Some(r)),
                    (None, Some(b)) => (b.pattern.clone(), b.regex.clone()),
                    (None, None) => (None, None),
                };
                let required_fields = if required.is_empty() {
                    builtin
                        .map(|b| b.required_fields)
                        .unwrap_or_else(|| strings_of(id_formats::REQUIRED_FIELDS))
                } else {
                    required
                };
                merged.types.insert(
                    key,
                    IdType {
                        pattern,
                        regex,
                        required_fields,
                        origin: Origin::Services,
                    },
                );
            }
        }
        if listed == 0 {
            return Err(ServicesError("it lists no id type".into()));
        }
        merged.countries = merged.types.keys().map(|(c, _)| c.clone()).collect();
        Ok(merged)
    }

    pub fn with_unknown(mut self, unknown: UnknownIdTypes) -> Self {
        self.unknown = unknown;
        self
    }

    pub fn unknown(&self) -> UnknownIdTypes {
        self.unknown
    }

    pub fn len(&self) -> usize {
        self.types.len()
    }

    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    pub fn get(&self, country: &str, id_type: &str) -> Option<&IdType> {
        // Two short strings per row; the map is small.
        self.types.get(&(country.to_owned(), id_type.to_owned()))
    }

    /// Checks an ID number. `Ok(None)`: an unknown type let through (`allow`);
    /// `Ok(Some(t))`: a known type whose number passes.
    pub fn check(
        &self,
        country: &str,
        id_type: &str,
        id_number: &str,
    ) -> Result<Option<&IdType>, IdNumberError> {
        let Some(t) = self.get(country, id_type) else {
            if self.unknown == UnknownIdTypes::Allow {
                return Ok(None);
            }
            if !self.countries.contains(country) {
                return Err(IdNumberError::UnknownCountry {
                    country: country.to_owned(),
                    known: self
                        .countries
                        .iter()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
            return Err(IdNumberError::UnknownIdType {
                country: country.to_owned(),
                id_type: id_type.to_owned(),
            });
        };
        let ok = match &t.regex {
            Some(re) => re.is_match(id_number),
            None => !id_number.is_empty(),
        };
        if ok {
            Ok(Some(t))
        } else {
            Err(IdNumberError::BadFormat {
                country: country.to_owned(),
                id_type: id_type.to_owned(),
                pattern: t.pattern.clone().unwrap_or_else(|| ".+".into()),
            })
        }
    }
}

fn strings(values: &[Value]) -> Vec<String> {
    values
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

fn strings_of(values: &[&str]) -> Vec<String> {
    values.iter().map(|s| (*s).to_owned()).collect()
}

/// `/^...$/i` as documentation pages write regexes: the pattern and whether `i` is set.
fn strip_js_literal(raw: &str) -> (String, bool) {
    let raw = raw.trim();
    if let Some(rest) = raw.strip_prefix('/')
        && let Some(end) = rest.rfind('/')
    {
        let flags = &rest[end + 1..];
        if flags.chars().all(|c| c.is_ascii_alphabetic()) {
            return (rest[..end].to_owned(), flags.contains('i'));
        }
    }
    (raw.to_owned(), false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_builtin_table_compiles_and_knows_every_type() {
        let t = IdTypes::builtin();
        assert_eq!(t.len(), FORMATS.len());
        assert!(t.check("NG", "BVN", "12345678901").unwrap().is_some());
        assert!(t.check("NG", "BVN", "1234").is_err());
    }

    #[test]
    fn the_array_shape_gives_types_and_fields_and_keeps_builtin_regexes() {
        // The shape Smile ID's Python SDK reads (its tests' fixture).
        let body = json!({"id_types": {"NG": {
            "BVN": ["country", "id_type", "id_number", "user_id", "job_id"],
            "DRIVERS_LICENSE": ["country", "id_type", "id_number", "user_id", "job_id",
                                "first_name", "last_name", "dob"],
        }}});
        let t = IdTypes::from_services(&body).unwrap();
        // BVN keeps the built-in regex.
        assert!(t.check("NG", "BVN", "12345678901").is_ok());
        assert!(matches!(
            t.check("NG", "BVN", "123"),
            Err(IdNumberError::BadFormat { .. })
        ));
        // A type only the server knows: any non-empty number, its fields as listed.
        let dl = t
            .check("NG", "DRIVERS_LICENSE", "ABC000000000")
            .unwrap()
            .unwrap();
        assert_eq!(dl.origin, Origin::Services);
        assert!(dl.pattern.is_none());
        assert!(dl.required_fields.contains(&"dob".to_owned()));
        // Types the answer does not list stay known from the table.
        assert!(
            t.check("ZW", "NATIONAL_ID_NO_PHOTO", "000000000A00")
                .is_ok()
        );
    }

    #[test]
    fn the_object_shape_gives_regexes_and_both_notations_are_read() {
        let body = json!({"id_types": {
            "NG": {"BVN": {"required_fields": ["country"], "id_number_regex": "^[0-9]{5}$",
                           "test_data": "12345"}},
            "XX": {"CARD": {"required_fields": ["id_number"], "id_number_regex": "/^ab[0-9]$/i"},
                   "OTHER": {"required_fields": ["id_number"], "id_number_regex": null},
                   "BROKEN": {"id_number_regex": "^[0-9"}},
        }});
        let t = IdTypes::from_services(&body).unwrap();
        // The answer's regex wins over the table's.
        assert!(t.check("NG", "BVN", "12345").is_ok());
        assert!(t.check("NG", "BVN", "12345678901").is_err());
        assert!(
            t.check("XX", "CARD", "AB1").is_ok(),
            "/i read from the literal"
        );
        assert!(t.check("XX", "CARD", "AB12").is_err());
        assert!(t.check("XX", "OTHER", "anything").is_ok());
        assert!(t.check("XX", "OTHER", "").is_err());
        // A regex that does not compile: kept without it, and said.
        assert!(t.check("XX", "BROKEN", "x").is_ok());
        assert_eq!(t.bad_regexes, vec!["XX BROKEN".to_owned()]);
        // No required_fields given: the common ones.
        assert!(
            t.get("XX", "BROKEN")
                .unwrap()
                .required_fields
                .contains(&"id_number".to_owned())
        );
    }

    #[test]
    fn unknown_types_are_refused_or_allowed() {
        let t = IdTypes::builtin();
        assert!(matches!(
            t.check("XX", "CARD", "1"),
            Err(IdNumberError::UnknownCountry { .. })
        ));
        assert!(matches!(
            t.check("NG", "CARD", "1"),
            Err(IdNumberError::UnknownIdType { .. })
        ));
        let t = t.with_unknown(UnknownIdTypes::Allow);
        assert!(t.check("NG", "CARD", "1").unwrap().is_none());
        // A known type is still checked.
        assert!(t.check("NG", "BVN", "1").is_err());
    }

    #[test]
    fn unusable_answers_are_refused() {
        for body in [
            json!({}),
            json!({"id_types": []}),
            json!({"id_types": {}}),
            json!({"id_types": {"NG": 3}}),
            json!({"id_types": {"NG": {"BVN": 3}}}),
        ] {
            assert!(IdTypes::from_services(&body).is_err(), "{body}");
        }
    }
}
