//! The ID authority's records: synthetic people, generated from a seed or read from CSV.
//!
//! Every person's ID number matches its id_type's documented regex, so a well-formed
//! request for a registered person can only fail on the personal details it sends.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::api::id_formats::{self, FORMATS};

use super::{id_numbers, names};

/// One person as the ID authority knows them. `dob` is `YYYY-MM-DD`, `gender` `M` or `F`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub country: String,
    pub id_type: String,
    pub id_number: String,
    pub first_name: String,
    #[serde(default)]
    pub middle_name: String,
    pub last_name: String,
    pub dob: String,
    pub gender: String,
    #[serde(default)]
    pub phone_number: String,
}

impl Person {
    /// "First Middle Last", as Enhanced KYC returns `FullName`.
    pub fn full_name(&self) -> String {
        [&self.first_name, &self.middle_name, &self.last_name]
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Why a registry file was refused; always names the file, and the line and field when
/// the fault is in one record.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("{path}, line {line}, field {field}: {reason}")]
    Record {
        path: String,
        line: u64,
        field: String,
        reason: String,
    },
}

/// The people, indexed by (country, id_type, ID number). Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    people: Arc<Vec<Person>>,
    index: Arc<HashMap<(String, String, String), usize>>,
}

/// ID numbers compare without case: several documented formats are case-insensitive, and
/// for the purely numeric ones the fold changes nothing.
fn key(country: &str, id_type: &str, id_number: &str) -> (String, String, String) {
    (
        country.to_owned(),
        id_type.to_owned(),
        id_number.trim().to_ascii_uppercase(),
    )
}

const COLUMNS: [&str; 9] = [
    "country",
    "id_type",
    "id_number",
    "first_name",
    "middle_name",
    "last_name",
    "dob",
    "gender",
    "phone_number",
];

impl Registry {
    /// A registry of the given people; a later duplicate ID number is an error naming it.
    pub fn from_people(people: Vec<Person>) -> Result<Self, String> {
        let mut index = HashMap::with_capacity(people.len());
        for (i, p) in people.iter().enumerate() {
            if index
                .insert(key(&p.country, &p.id_type, &p.id_number), i)
                .is_some()
            {
                return Err(format!(
                    "{} {} {} appears twice",
                    p.country, p.id_type, p.id_number
                ));
            }
        }
        Ok(Self {
            people: Arc::new(people),
            index: Arc::new(index),
        })
    }

    /// `n` synthetic people, the same ones for the same seed. Id types are spread evenly
    /// over every documented (country, id_type).
    pub fn generate(n: usize, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut people = Vec::with_capacity(n);
        let mut seen = std::collections::HashSet::with_capacity(n);
        for i in 0..n {
            let format = &FORMATS[i % FORMATS.len()];
            let pool = names::pool(format.country);
            let male = rng.random_bool(0.5);
            let given = if male { pool.male } else { pool.female };
            let first = given[rng.random_range(0..given.len())];
            let middle = if rng.random_bool(0.4) {
                let m = given[rng.random_range(0..given.len())];
                if m == first { "" } else { m }
            } else {
                ""
            };
            let last = pool.surnames[rng.random_range(0..pool.surnames.len())];
            let dob = format!(
                "{:04}-{:02}-{:02}",
                rng.random_range(1955..2005),
                rng.random_range(1..=12),
                rng.random_range(1..=28)
            );
            let id_number = loop {
                let candidate = id_numbers::valid(&mut rng, format.country, format.id_type, &dob);
                if seen.insert(key(format.country, format.id_type, &candidate)) {
                    break candidate;
                }
            };
            let phone_number = if format.id_type == "PHONE_NUMBER" {
                id_number.clone()
            } else {
                id_numbers::phone(&mut rng, format.country)
            };
            people.push(Person {
                country: format.country.to_owned(),
                id_type: format.id_type.to_owned(),
                id_number,
                first_name: first.to_owned(),
                middle_name: middle.to_owned(),
                last_name: last.to_owned(),
                dob,
                gender: if male { "M" } else { "F" }.to_owned(),
                phone_number,
            });
        }
        // Unique by construction (the loop above retries collisions).
        Self::from_people(people).unwrap_or_default()
    }

    /// Reads a registry CSV (header: country,id_type,id_number,first_name,middle_name,
    /// last_name,dob,gender,phone_number; middle_name and phone_number may be empty).
    /// Every record is checked; the first fault is reported with its line and field.
    pub fn from_csv(path: &Path) -> Result<Self, RegistryError> {
        let shown = path.display().to_string();
        let file_err = |reason: String| RegistryError::File {
            path: shown.clone(),
            reason,
        };
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_path(path)
            .map_err(|e| file_err(e.to_string()))?;
        let headers = reader
            .headers()
            .map_err(|e| file_err(e.to_string()))?
            .clone();
        let positions = column_positions(&headers).map_err(file_err)?;
        let mut people = Vec::new();
        let mut lines: HashMap<(String, String, String), u64> = HashMap::new();
        for record in reader.records() {
            let record = record.map_err(|e| file_err(e.to_string()))?;
            let line = record.position().map_or(0, |p| p.line());
            let bad = |field: &str, reason: String| RegistryError::Record {
                path: shown.clone(),
                line,
                field: field.to_owned(),
                reason,
            };
            let get = |i: usize| {
                positions[i]
                    .and_then(|p| record.get(p))
                    .unwrap_or_default()
                    .to_owned()
            };
            let person = checked_person((0..COLUMNS.len()).map(get).collect(), &bad)?;
            let k = key(&person.country, &person.id_type, &person.id_number);
            if let Some(first) = lines.insert(k, line) {
                return Err(bad(
                    "id_number",
                    format!("{} is already on line {first}", person.id_number),
                ));
            }
            people.push(person);
        }
        Self::from_people(people).map_err(file_err)
    }

    pub fn write_csv(&self, path: &Path) -> Result<(), RegistryError> {
        let err = |e: csv::Error| RegistryError::File {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        let mut w = csv::Writer::from_path(path).map_err(err)?;
        for p in self.people.iter() {
            w.serialize(p).map_err(err)?;
        }
        w.flush().map_err(|e| err(e.into()))
    }

    /// The person with this ID number, if the authority knows them.
    pub fn lookup(&self, country: &str, id_type: &str, id_number: &str) -> Option<&Person> {
        self.index
            .get(&key(country, id_type, id_number))
            .map(|&i| &self.people[i])
    }

    pub fn people(&self) -> &[Person] {
        &self.people
    }

    pub fn len(&self) -> usize {
        self.people.len()
    }

    pub fn is_empty(&self) -> bool {
        self.people.is_empty()
    }
}

/// Where each of [`COLUMNS`] is in a registry CSV's header (a BOM before the first name
/// ignored); refused when a required column is missing.
fn column_positions(headers: &csv::StringRecord) -> Result<[Option<usize>; COLUMNS.len()], String> {
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}') == name)
    };
    let mut positions = [None; COLUMNS.len()];
    for (i, name) in COLUMNS.iter().enumerate() {
        positions[i] = column(name);
        let optional = matches!(*name, "middle_name" | "phone_number");
        if positions[i].is_none() && !optional {
            return Err(format!("the header has no {name} column"));
        }
    }
    Ok(positions)
}

/// The person of one registry record (`values` in the order of [`COLUMNS`]), once every
/// required value is there, the ID number is one the authority knows the format of, the
/// date of birth is a date and the gender M or F (either case); `bad` names the fault.
fn checked_person(
    mut values: Vec<String>,
    bad: &impl Fn(&str, String) -> RegistryError,
) -> Result<Person, RegistryError> {
    for (i, name) in COLUMNS.iter().enumerate() {
        let optional = matches!(*name, "middle_name" | "phone_number");
        if values[i].is_empty() && !optional {
            return Err(bad(name, "is empty".into()));
        }
    }
    if let Err(e) = id_numbers::authority_check(&values[0], &values[1], &values[2]) {
        let field = match e {
            id_formats::IdNumberError::UnknownCountry { .. } => "country",
            id_formats::IdNumberError::UnknownIdType { .. } => "id_type",
            id_formats::IdNumberError::BadFormat { .. } => "id_number",
        };
        return Err(bad(field, e.to_string()));
    }
    if super::matching::parse_dob(&values[6]).is_none()
        || chrono::NaiveDate::parse_from_str(&values[6], "%Y-%m-%d").is_err()
    {
        return Err(bad(
            "dob",
            format!("{:?} is not a YYYY-MM-DD date", values[6]),
        ));
    }
    values[7] = values[7].to_ascii_uppercase();
    if values[7] != "M" && values[7] != "F" {
        return Err(bad("gender", format!("{:?} is neither M nor F", values[7])));
    }
    let mut v = values.into_iter();
    let mut next = || v.next().unwrap_or_default();
    Ok(Person {
        country: next(),
        id_type: next(),
        id_number: next(),
        first_name: next(),
        middle_name: next(),
        last_name: next(),
        dob: next(),
        gender: next(),
        phone_number: next(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_people_are_valid_unique_and_reproducible() {
        let a = Registry::generate(500, 42);
        let b = Registry::generate(500, 42);
        assert_eq!(a.people(), b.people());
        assert_ne!(a.people(), Registry::generate(500, 43).people());
        for p in a.people() {
            assert!(id_numbers::authority_check(&p.country, &p.id_type, &p.id_number).is_ok());
            assert!(chrono::NaiveDate::parse_from_str(&p.dob, "%Y-%m-%d").is_ok());
            assert!(p.gender == "M" || p.gender == "F");
            assert_ne!(p.first_name, p.last_name);
            assert!(a.lookup(&p.country, &p.id_type, &p.id_number).is_some());
        }
        assert_eq!(a.len(), 500);
    }

    #[test]
    fn csv_round_trips_and_lookup_ignores_case() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("people.csv");
        let reg = Registry::generate(60, 1);
        reg.write_csv(&path).unwrap();
        let back = Registry::from_csv(&path).unwrap();
        assert_eq!(back.people(), reg.people());
        let gh = back
            .people()
            .iter()
            .find(|p| p.id_type == "PASSPORT")
            .unwrap();
        let lower = gh.id_number.to_ascii_lowercase();
        assert!(back.lookup(&gh.country, "PASSPORT", &lower).is_some());
    }

    fn write(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reg.csv");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    const HEADER: &str =
        "country,id_type,id_number,first_name,middle_name,last_name,dob,gender,phone_number\n";

    #[test]
    fn csv_faults_name_file_line_and_field() {
        let cases = [
            ("NG,BVN,1234,Ada,,Obi,1990-01-01,F,\n", "id_number"),
            ("NG,BVN,12345678901,,,Obi,1990-01-01,F,\n", "first_name"),
            ("NG,BVN,12345678901,Ada,,Obi,1990-13-01,F,\n", "dob"),
            ("NG,BVN,12345678901,Ada,,Obi,1990-01-01,X,\n", "gender"),
            ("XX,BVN,12345678901,Ada,,Obi,1990-01-01,F,\n", "country"),
            ("NG,CARD,12345678901,Ada,,Obi,1990-01-01,F,\n", "id_type"),
        ];
        for (row, field) in cases {
            let ok = "NG,BVN,22345678901,Ada,,Obi,1990-01-01,F,\n";
            let (_d, path) = write(&format!("{HEADER}{ok}{row}"));
            let e = Registry::from_csv(&path).unwrap_err().to_string();
            assert!(e.contains("reg.csv"), "{e}");
            assert!(e.contains("line 3"), "{e}");
            assert!(e.contains(&format!("field {field}")), "{field}: {e}");
        }
        let dup = "NG,BVN,12345678901,Ada,,Obi,1990-01-01,F,\n";
        let (_d, path) = write(&format!("{HEADER}{dup}{dup}"));
        let e = Registry::from_csv(&path).unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("line 2"), "{e}");
        let (_d, path) = write("country,id_type\nNG,BVN\n");
        let e = Registry::from_csv(&path).unwrap_err().to_string();
        assert!(e.contains("no id_number column"), "{e}");
        let e = Registry::from_csv(Path::new("/nonexistent/reg.csv"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/reg.csv"), "{e}");
    }
}
