//! Turning a raw row into a [`Row`]: required fields, ISO dates, gender, known country and
//! id_type, the ID number's format and the fields its id type needs (the run's [`IdTypes`]:
//! `/v1/services` merged with the built-in table). The first problem found is the row's
//! reason.

use std::collections::HashMap;

use chrono::NaiveDate;
use serde_json::{Map, Value};

use super::error::ManifestError;
use super::job_id::derive_job_id;
use super::row::{ExpectedStatus, PollRow, Row, RowBody, RowError, VerifyRow};
use super::{RawRow, RowKind};
use crate::api::id_formats;
use crate::api::id_types::IdTypes;
use crate::api::models::IdInfo;

/// A cell longer than this is refused (no real name, number or id is near it).
pub const MAX_FIELD_BYTES: usize = 65_536;
/// Columns a manifest may have in all (the known ones and extras).
pub const MAX_COLUMNS: usize = 64;
/// Extra (unknown) columns, sent as `partner_params`, a manifest may have.
pub const MAX_EXTRA_COLUMNS: usize = 32;
/// An extra column's name, in bytes.
pub const MAX_COLUMN_NAME_BYTES: usize = 64;
/// An extra column's cell, in bytes: a longer one makes the row invalid.
pub const MAX_EXTRA_CELL_BYTES: usize = 1_024;
/// A CSV header line, in bytes (checked before the header is split into columns).
pub const MAX_HEADER_BYTES: usize = 16_384;
/// Names an extra column may not have: the keys `partner_params` and the request body
/// already carry (matched without regard to case).
pub const RESERVED_COLUMNS: &[&str] = &[
    "job_type",
    "user_id",
    "job_id",
    "partner_id",
    "partner_params",
    "signature",
    "timestamp",
    "sec_key",
    "callback_url",
    "source_sdk",
    "source_sdk_version",
    "id_info",
];

/// A job_id longer than this is refused rather than sent (or silently replaced).
pub const MAX_JOB_ID_BYTES: usize = 256;

const VERIFY_COLUMNS: &[&str] = &[
    "country",
    "id_type",
    "id_number",
    "first_name",
    "middle_name",
    "last_name",
    "dob",
    "gender",
    "phone_number",
    "user_id",
    "job_id",
    "expected_result_code",
    "bank_code",
];
const VERIFY_REQUIRED: &[&str] = &[
    "country",
    "id_type",
    "id_number",
    "first_name",
    "last_name",
    "user_id",
];
const POLL_COLUMNS: &[&str] = &[
    "user_id",
    "job_id",
    "expected_result_code",
    "expected_status",
];
const POLL_REQUIRED: &[&str] = &["user_id", "job_id"];

/// The header: column names (trimmed, lower-cased for matching) and where each is.
#[derive(Debug)]
pub struct Columns {
    names: Vec<String>,
    known: &'static [&'static str],
    /// Where each of `known` is in the header (`known_at[k]` for `known[k]`): the columns
    /// every row reads, found without hashing the name once per row.
    known_at: Vec<Option<usize>>,
    /// The names lower-cased, in header order.
    lower: Vec<String>,
    /// Whether the column at each position is an extra (unknown) one, sent as
    /// `partner_params`.
    extra: Vec<bool>,
}

impl Columns {
    pub fn new(path: &str, header: Vec<String>, kind: RowKind) -> Result<Self, ManifestError> {
        let (known, required) = match kind {
            RowKind::Verify => (VERIFY_COLUMNS, VERIFY_REQUIRED),
            RowKind::Poll => (POLL_COLUMNS, POLL_REQUIRED),
        };
        if header.len() > MAX_COLUMNS {
            return Err(ManifestError::TooManyColumns {
                path: path.into(),
                count: header.len(),
                max: MAX_COLUMNS,
                extra: MAX_EXTRA_COLUMNS,
            });
        }
        let names: Vec<String> = header.into_iter().map(|h| h.trim().to_owned()).collect();
        let mut extras = 0;
        for name in &names {
            let lower = name.to_ascii_lowercase();
            if name.is_empty() || known.contains(&lower.as_str()) {
                continue;
            }
            if name.len() > MAX_COLUMN_NAME_BYTES {
                return Err(ManifestError::ColumnNameTooLong {
                    path: path.into(),
                    column: name.chars().take(32).collect::<String>() + "...",
                    len: name.len(),
                    max: MAX_COLUMN_NAME_BYTES,
                });
            }
            if RESERVED_COLUMNS.contains(&lower.as_str()) {
                return Err(ManifestError::ReservedColumn {
                    path: path.into(),
                    column: name.clone(),
                });
            }
            extras += 1;
        }
        if extras > MAX_EXTRA_COLUMNS {
            return Err(ManifestError::TooManyExtraColumns {
                path: path.into(),
                count: extras,
                max: MAX_EXTRA_COLUMNS,
            });
        }
        let mut index = HashMap::new();
        for (i, name) in names.iter().enumerate() {
            if name.is_empty() {
                continue;
            }
            if index.insert(name.to_ascii_lowercase(), i).is_some() {
                return Err(ManifestError::DuplicateColumn {
                    path: path.into(),
                    column: name.clone(),
                });
            }
        }
        for column in required {
            if !index.contains_key(*column) {
                return Err(ManifestError::MissingColumn {
                    path: path.into(),
                    column: (*column).into(),
                    needed: required.join(", "),
                });
            }
        }
        let known_at = known.iter().map(|k| index.get(*k).copied()).collect();
        let lower = names.iter().map(|name| name.to_ascii_lowercase()).collect();
        let extra = names
            .iter()
            .map(|name| !name.is_empty() && !known.contains(&name.to_ascii_lowercase().as_str()))
            .collect();
        Ok(Self {
            names,
            known,
            known_at,
            lower,
            extra,
        })
    }

    /// Where `column` (a lower-case name) is in the header.
    fn position(&self, column: &str) -> Option<usize> {
        match self.known.iter().position(|k| *k == column) {
            Some(k) => self.known_at.get(k).copied().flatten(),
            // Another column (one an id type requires): the header is short, a scan of its
            // lower-cased names costs less than hashing the name.
            None => self
                .lower
                .iter()
                .position(|name| !name.is_empty() && name == column),
        }
    }

    fn is_extra(&self, i: usize) -> bool {
        self.extra.get(i).copied().unwrap_or(false)
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn name(&self, i: usize) -> Option<&str> {
        self.names.get(i).map(String::as_str)
    }
}

/// One row's cells, looked up by column name.
struct Cells<'a> {
    columns: &'a Columns,
    cells: &'a [String],
    line: i64,
}

impl Cells<'_> {
    /// The trimmed cell, `None` when absent or empty.
    fn get(&self, column: &str) -> Option<&str> {
        let i = self.columns.position(column)?;
        let cell = self.cells.get(i)?.trim();
        (!cell.is_empty()).then_some(cell)
    }

    fn error(&self, field: &str, reason: impl Into<String>) -> RowError {
        RowError {
            line: self.line,
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Whether the row gives a (non-empty) value for `field`, in any column of that name.
    /// A job_id is derived when absent, so it is always given.
    fn gives(&self, field: &str) -> bool {
        let field = field.trim().to_ascii_lowercase();
        field == "job_id" || self.get(&field).is_some()
    }

    fn required(&self, column: &str) -> Result<&str, RowError> {
        self.get(column)
            .ok_or_else(|| self.error(column, "is required but empty"))
    }

    /// Unknown columns, for `partner_params`.
    fn extra(&self) -> Map<String, Value> {
        let mut extra = Map::new();
        for (i, name) in self.columns.names.iter().enumerate() {
            if !self.columns.is_extra(i) {
                continue;
            }
            if let Some(cell) = self
                .cells
                .get(i)
                .map(|c| c.trim())
                .filter(|c| !c.is_empty())
            {
                extra.insert(name.clone(), Value::String(cell.to_owned()));
            }
        }
        extra
    }

    fn check_shape(&self) -> Result<(), RowError> {
        if self.cells.len() != self.columns.len() {
            return Err(self.error(
                "(row)",
                format!(
                    "has {} fields but the header has {}",
                    self.cells.len(),
                    self.columns.len()
                ),
            ));
        }
        for (i, cell) in self.cells.iter().enumerate() {
            if self.columns.is_extra(i) && cell.trim().len() > MAX_EXTRA_CELL_BYTES {
                let field = self.columns.names.get(i).cloned().unwrap_or_default();
                return Err(self.error(
                    &field,
                    format!(
                        "is {} bytes, longer than {MAX_EXTRA_CELL_BYTES} bytes (an extra column, \
                         sent as a partner_params value)",
                        cell.trim().len()
                    ),
                ));
            }
            if cell.len() > MAX_FIELD_BYTES {
                let field = self.columns.names.get(i).cloned().unwrap_or_default();
                return Err(self.error(
                    &field,
                    format!(
                        "is {} bytes, longer than {MAX_FIELD_BYTES} bytes",
                        cell.len()
                    ),
                ));
            }
        }
        Ok(())
    }

    fn expected_result_code(&self) -> Result<Option<String>, RowError> {
        match self.get("expected_result_code") {
            None => Ok(None),
            Some(c) if c.len() == 4 && c.bytes().all(|b| b.is_ascii_digit()) => {
                Ok(Some(c.to_owned()))
            }
            Some(_) => Err(self.error("expected_result_code", "must be a 4-digit ResultCode")),
        }
    }
}

/// A date of birth as the API takes it: `YYYY-MM-DD`, a real calendar date.
pub fn check_dob(dob: &str) -> Result<(), String> {
    let shape = dob.len() == 10
        && dob.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    if !shape {
        return Err("must be an ISO date, YYYY-MM-DD".into());
    }
    NaiveDate::parse_from_str(dob, "%Y-%m-%d")
        .map(|_| ())
        .map_err(|_| "is not a real calendar date".into())
}

fn verify(cells: &Cells, rules: &IdTypes) -> Result<VerifyRow, RowError> {
    for column in VERIFY_REQUIRED {
        cells.required(column)?;
    }
    let country = cells.required("country")?;
    let id_type = cells.required("id_type")?;
    let id_number = cells.required("id_number")?;
    match rules.check(country, id_type, id_number) {
        Err(e) => {
            let field = match e {
                id_formats::IdNumberError::UnknownCountry { .. } => "country",
                id_formats::IdNumberError::UnknownIdType { .. } => "id_type",
                id_formats::IdNumberError::BadFormat { .. } => "id_number",
            };
            return Err(cells.error(field, e.to_string()));
        }
        Ok(Some(known)) => {
            for field in &known.required_fields {
                if !cells.gives(field) {
                    return Err(cells.error(
                        field,
                        format!("is required for {country} {id_type} but empty or missing"),
                    ));
                }
            }
        }
        // An unknown type let through (--unknown-id-types allow): the API judges it.
        Ok(None) => {}
    }
    let dob = cells.get("dob");
    if let Some(d) = dob {
        check_dob(d).map_err(|reason| cells.error("dob", reason))?;
    }
    let gender = match cells.get("gender") {
        None => None,
        Some(g) if g.eq_ignore_ascii_case("m") => Some("M".to_owned()),
        Some(g) if g.eq_ignore_ascii_case("f") => Some("F".to_owned()),
        Some(_) => return Err(cells.error("gender", "must be M or F")),
    };
    let phone_number = cells.get("phone_number");
    if let Some(p) = phone_number {
        let digits = p.strip_prefix('+').unwrap_or(p);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(cells.error("phone_number", "must be digits, optionally after a +"));
        }
    }
    let owned = |s: Option<&str>| s.map(str::to_owned);
    Ok(VerifyRow {
        id_info: IdInfo {
            country: country.to_owned(),
            id_type: id_type.to_owned(),
            id_number: id_number.to_owned(),
            first_name: owned(cells.get("first_name")),
            middle_name: owned(cells.get("middle_name")),
            last_name: owned(cells.get("last_name")),
            dob: owned(dob),
            gender,
            phone_number: owned(phone_number),
            bank_code: owned(cells.get("bank_code")),
        },
        extra: cells.extra(),
        expected_result_code: cells.expected_result_code()?,
    })
}

fn poll(cells: &Cells) -> Result<PollRow, RowError> {
    for column in POLL_REQUIRED {
        cells.required(column)?;
    }
    let expected_status = match cells.get("expected_status") {
        None => None,
        Some(s) => Some(ExpectedStatus::parse(s).ok_or_else(|| {
            cells.error("expected_status", "must be approved, rejected or pending")
        })?),
    };
    Ok(PollRow {
        expected_result_code: cells.expected_result_code()?,
        expected_status,
        extra: cells.extra(),
    })
}

/// Validates one raw row against the run's id types. Always returns a row: a bad one as
/// [`RowBody::Invalid`].
pub fn row(columns: &Columns, kind: RowKind, salt: &str, rules: &IdTypes, raw: RawRow<'_>) -> Row {
    let RawRow { line, cells, error } = raw;
    let cells = Cells {
        columns,
        cells,
        line,
    };
    let shape = cells.check_shape();
    // Identity for staging, usable even when the row is invalid. A row of the wrong shape
    // has its cells under the wrong columns (one might be an ID number), so it has none.
    let misaligned = cells.cells.len() != columns.len();
    let short = |c: &str| {
        if misaligned {
            return "";
        }
        cells
            .get(c)
            .filter(|v| v.len() <= MAX_FIELD_BYTES)
            .unwrap_or("")
    };
    let user_id = short("user_id").to_owned();
    let given_job_id = short("job_id");
    let (job_id, job_id_derived) =
        if given_job_id.is_empty() || given_job_id.len() > MAX_JOB_ID_BYTES {
            (
                derive_job_id(salt, line, &user_id, short("id_number")),
                true,
            )
        } else {
            (given_job_id.to_owned(), false)
        };
    let checked = match error {
        Some(e) => Err(e),
        None => shape.and_then(|()| {
            if given_job_id.len() > MAX_JOB_ID_BYTES {
                return Err(
                    cells.error("job_id", format!("is longer than {MAX_JOB_ID_BYTES} bytes"))
                );
            }
            match kind {
                RowKind::Verify => verify(&cells, rules).map(|v| RowBody::Verify(Box::new(v))),
                RowKind::Poll => poll(&cells).map(RowBody::Poll),
            }
        }),
    };
    let given = |c: &str| Some(short(c).to_owned()).filter(|v| !v.is_empty());
    Row {
        line,
        user_id,
        job_id,
        job_id_derived,
        country: given("country"),
        id_type: given("id_type"),
        body: checked.unwrap_or_else(RowBody::Invalid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dob_must_be_iso_and_real() {
        assert!(check_dob("1990-02-28").is_ok());
        assert!(check_dob("2000-02-29").is_ok());
        assert!(check_dob("1990-02-30").is_err());
        assert!(check_dob("1990-2-3").is_err());
        assert!(check_dob("03/02/1990").is_err());
        assert!(check_dob("19900203").is_err());
        assert!(check_dob("1990-02-03T00:00").is_err());
    }

    fn header(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn header_names_match_trimmed_and_in_any_case() {
        let columns = Columns::new("m.csv", header(&[" User_ID ", "JOB_ID"]), RowKind::Poll);
        assert!(columns.is_ok());
        let twice = Columns::new(
            "m.csv",
            header(&["user_id", "job_id", "User_Id"]),
            RowKind::Poll,
        )
        .unwrap_err()
        .to_string();
        assert!(
            twice.contains("m.csv") && twice.contains("User_Id"),
            "{twice}"
        );
        let missing = Columns::new("m.csv", header(&["user_id"]), RowKind::Poll)
            .unwrap_err()
            .to_string();
        assert!(missing.contains("\"job_id\""), "{missing}");
    }

    fn validate(cells: &[&str]) -> Row {
        let names = [
            "country",
            "id_type",
            "id_number",
            "first_name",
            "last_name",
            "gender",
            "user_id",
            "expected_result_code",
        ];
        let columns = Columns::new("m.csv", header(&names), RowKind::Verify).unwrap();
        let cells = header(cells);
        let raw = RawRow {
            line: 7,
            cells: &cells,
            error: None,
        };
        row(
            &columns,
            RowKind::Verify,
            "salt",
            IdTypes::builtin_shared(),
            raw,
        )
    }

    fn invalid_field(row: &Row) -> Option<&str> {
        match &row.body {
            RowBody::Invalid(e) => Some(e.field.as_str()),
            _ => None,
        }
    }

    #[test]
    fn cells_are_trimmed_and_gender_normalised() {
        let row = validate(&[" NG ", "BVN", " 12345678901 ", "Ada", "Obi", "m", "u1", ""]);
        let RowBody::Verify(v) = &row.body else {
            panic!("{row:?}")
        };
        assert_eq!(v.id_info.country, "NG");
        assert_eq!(v.id_info.id_number, "12345678901");
        assert_eq!(v.id_info.gender.as_deref(), Some("M"));
        assert_eq!(v.expected_result_code, None);
        assert!(row.job_id_derived);
    }

    #[test]
    fn each_rule_names_its_field() {
        let ok = ["NG", "BVN", "12345678901", "Ada", "Obi", "F", "u1", "1020"];
        assert_eq!(invalid_field(&validate(&ok)), None);
        for (i, value, field) in [
            (0, "XX", "country"),
            (1, "DRIVERS_LICENSE", "id_type"),
            (2, "123", "id_number"),
            (3, "", "first_name"),
            (5, "X", "gender"),
            (6, " ", "user_id"),
            (7, "102", "expected_result_code"),
            (7, "10a0", "expected_result_code"),
        ] {
            let mut cells = ok;
            cells[i] = value;
            assert_eq!(invalid_field(&validate(&cells)), Some(field), "{value:?}");
        }
    }
}
