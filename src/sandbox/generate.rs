//! Test data: a registry and a verification manifest whose every row says which ResultCode
//! it must get (`expected_result_code`), so a run against the sandbox can be checked row
//! by row.
//!
//! Each row is built *to be* one kind of case, from seed 004's rules, not by asking the
//! matcher what it thinks: the generator and the server are two witnesses that must agree.
//!
//! | mix key | row | expected |
//! |---|---|---|
//! | `exact` | the person's details (names in any case, optional fields sometimes left out) | 1020 |
//! | `partial` | one name 1 or 2 edits off, or one date component off by one | 1021 |
//! | `transposed` | first and last name swapped, or day and month swapped | 1021 |
//! | `nomatch` | a surname 3+ edits off, two date components off, the other gender, or another phone | 1022 |
//! | `invalid` | a well-formed ID number the authority does not know | 1013 |
//! | `badformat` | the person's ID number with a dash in it (fails its regex) | 1014 |
//!
//! `invalid` rows pass a client's own format check and reach the server; `badformat` rows
//! are what a client's validator should refuse before sending (0 by default).
//! Expected codes are Basic KYC's (`/v2/verify`, `/v2/verify_async`); Enhanced KYC answers
//! 1012 for every registered person instead of 1020/1021/1022.

use std::collections::HashSet;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::api::models::IdInfo;

use super::config::PreloadedJob;
use super::registry::{Person, Registry, RegistryError};
use super::{id_numbers, names};

/// Relative weights of each kind of row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mix {
    pub exact: u32,
    pub partial: u32,
    pub transposed: u32,
    pub nomatch: u32,
    pub invalid: u32,
    pub badformat: u32,
}

impl Default for Mix {
    fn default() -> Self {
        Self {
            exact: 60,
            partial: 15,
            transposed: 5,
            nomatch: 15,
            invalid: 5,
            badformat: 0,
        }
    }
}

impl FromStr for Mix {
    type Err = String;

    /// `exact=60,partial=10,...`; keys left out weigh 0.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut mix = Mix {
            exact: 0,
            partial: 0,
            transposed: 0,
            nomatch: 0,
            invalid: 0,
            badformat: 0,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?} is not key=weight"))?;
            let weight: u32 = value
                .trim()
                .parse()
                .map_err(|_| format!("{part:?}: the weight must be a whole number"))?;
            let slot = match key.trim() {
                "exact" => &mut mix.exact,
                "partial" => &mut mix.partial,
                "transposed" => &mut mix.transposed,
                "nomatch" => &mut mix.nomatch,
                "invalid" => &mut mix.invalid,
                "badformat" => &mut mix.badformat,
                other => {
                    return Err(format!(
                        "unknown kind {other:?} (exact, partial, transposed, nomatch, \
                         invalid, badformat)"
                    ));
                }
            };
            *slot = weight;
        }
        if mix.weights().iter().all(|(_, w)| *w == 0) {
            return Err("every weight is 0".into());
        }
        Ok(mix)
    }
}

/// The kind of case a row was built to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RowKind {
    Exact,
    Partial,
    Transposed,
    NoMatch,
    Invalid,
    BadFormat,
}

impl RowKind {
    pub fn expected_code(self) -> &'static str {
        match self {
            RowKind::Exact => "1020",
            RowKind::Partial | RowKind::Transposed => "1021",
            RowKind::NoMatch => "1022",
            RowKind::Invalid => "1013",
            RowKind::BadFormat => "1014",
        }
    }
}

impl Mix {
    fn weights(&self) -> [(RowKind, u32); 6] {
        [
            (RowKind::Exact, self.exact),
            (RowKind::Partial, self.partial),
            (RowKind::Transposed, self.transposed),
            (RowKind::NoMatch, self.nomatch),
            (RowKind::Invalid, self.invalid),
            (RowKind::BadFormat, self.badformat),
        ]
    }

    /// How many of `rows` rows each kind gets: proportional, remainders to the largest
    /// fractions, so the counts always add up to `rows`.
    pub fn counts(&self, rows: usize) -> Vec<(RowKind, usize)> {
        let weights = self.weights();
        let total: u64 = weights.iter().map(|(_, w)| u64::from(*w)).sum();
        if total == 0 {
            return Vec::new();
        }
        let mut counts: Vec<(RowKind, usize, u64)> = weights
            .iter()
            .map(|(k, w)| {
                let share = rows as u64 * u64::from(*w);
                (*k, (share / total) as usize, share % total)
            })
            .collect();
        let mut left = rows - counts.iter().map(|c| c.1).sum::<usize>();
        let mut order: Vec<usize> = (0..counts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(counts[i].2));
        for i in order {
            if left == 0 {
                break;
            }
            if weights[i].1 > 0 {
                counts[i].1 += 1;
                left -= 1;
            }
        }
        counts.into_iter().map(|(k, n, _)| (k, n)).collect()
    }
}

/// One verify manifest row and the result it must get.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeneratedRow {
    pub country: String,
    pub id_type: String,
    pub id_number: String,
    pub first_name: String,
    #[serde(default)]
    pub middle_name: String,
    pub last_name: String,
    #[serde(default)]
    pub dob: String,
    #[serde(default)]
    pub gender: String,
    #[serde(default)]
    pub phone_number: String,
    pub user_id: String,
    pub job_id: String,
    #[serde(default)]
    pub expected_result_code: String,
    /// A bank account's bank (empty for other id types).
    #[serde(default)]
    pub bank_code: String,
}

fn opt(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

impl GeneratedRow {
    pub fn id_info(&self) -> IdInfo {
        IdInfo {
            country: self.country.clone(),
            id_type: self.id_type.clone(),
            id_number: self.id_number.clone(),
            first_name: opt(&self.first_name),
            middle_name: opt(&self.middle_name),
            last_name: opt(&self.last_name),
            dob: opt(&self.dob),
            gender: opt(&self.gender),
            phone_number: opt(&self.phone_number),
            bank_code: opt(&self.bank_code),
        }
    }

    /// `approved` for the Approved codes, `rejected` for everything else.
    pub fn expected_status(&self) -> &'static str {
        match self.expected_result_code.as_str() {
            "1012" | "1020" | "1021" => "approved",
            _ => "rejected",
        }
    }
}

/// A registry and rows made against it.
#[derive(Clone, Debug)]
pub struct Generated {
    pub registry: Registry,
    pub rows: Vec<GeneratedRow>,
}

fn csv_err(path: &Path, e: impl std::fmt::Display) -> RegistryError {
    RegistryError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

#[derive(Serialize)]
struct PollRow<'a> {
    user_id: &'a str,
    job_id: &'a str,
    expected_result_code: &'a str,
    expected_status: &'a str,
}

impl Generated {
    pub fn write_registry_csv(&self, path: &Path) -> Result<(), RegistryError> {
        self.registry.write_csv(path)
    }

    /// The verify manifest: country,id_type,id_number,first_name,middle_name,last_name,
    /// dob,gender,phone_number,user_id,job_id,expected_result_code,bank_code.
    pub fn write_manifest_csv(&self, path: &Path) -> Result<(), RegistryError> {
        let mut w = csv::Writer::from_path(path).map_err(|e| csv_err(path, e))?;
        for r in &self.rows {
            w.serialize(r).map_err(|e| csv_err(path, e))?;
        }
        w.flush().map_err(|e| csv_err(path, e))
    }

    /// The job_status manifest: user_id,job_id,expected_result_code,expected_status.
    pub fn write_poll_manifest_csv(&self, path: &Path) -> Result<(), RegistryError> {
        let mut w = csv::Writer::from_path(path).map_err(|e| csv_err(path, e))?;
        for r in &self.rows {
            w.serialize(PollRow {
                user_id: &r.user_id,
                job_id: &r.job_id,
                expected_result_code: &r.expected_result_code,
                expected_status: r.expected_status(),
            })
            .map_err(|e| csv_err(path, e))?;
        }
        w.flush().map_err(|e| csv_err(path, e))
    }

    /// The rows as jobs a poll sandbox already holds, each pending for `pending_for`.
    pub fn preloaded_jobs(&self, pending_for: Duration) -> Vec<PreloadedJob> {
        preload(&self.rows, pending_for)
    }
}

/// Rows as preloaded Basic KYC jobs.
pub fn preload(rows: &[GeneratedRow], pending_for: Duration) -> Vec<PreloadedJob> {
    rows.iter()
        .map(|r| PreloadedJob {
            user_id: r.user_id.clone(),
            job_id: r.job_id.clone(),
            id_info: r.id_info(),
            enhanced: false,
            pending_for,
        })
        .collect()
}

/// Reads rows back from a verify manifest (extra columns are ignored; middle_name, dob,
/// gender, phone_number and expected_result_code may be absent).
pub fn read_rows_csv(path: &Path) -> Result<Vec<GeneratedRow>, RegistryError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| csv_err(path, e))?;
    let headers = reader.headers().map_err(|e| csv_err(path, e))?.clone();
    let mut rows = Vec::new();
    for record in reader.deserialize::<GeneratedRow>() {
        match record {
            Ok(r) => rows.push(r),
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                let field = match e.kind() {
                    csv::ErrorKind::Deserialize { err, .. } => err
                        .field()
                        .and_then(|f| headers.get(f as usize))
                        .unwrap_or("?")
                        .to_owned(),
                    _ => "?".to_owned(),
                };
                return Err(RegistryError::Record {
                    path: path.display().to_string(),
                    line,
                    field,
                    reason: e.to_string(),
                });
            }
        }
    }
    Ok(rows)
}

/// A random other letter for position `i` of `s` (so the edit is real, case aside).
fn substitute(rng: &mut StdRng, s: &str, i: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    let old = chars[i].to_ascii_lowercase();
    let mut new;
    loop {
        new = char::from(b'a' + rng.random_range(0..26u8));
        if new != old {
            break;
        }
    }
    chars
        .iter()
        .enumerate()
        .map(|(j, c)| if j == i { new } else { *c })
        .collect()
}

/// `s` with one or two letters changed: Levenshtein distance 1 or 2, never 0.
fn typo(rng: &mut StdRng, s: &str) -> String {
    let n = s.chars().count();
    if n == 0 {
        return "x".to_owned();
    }
    let first = rng.random_range(0..n);
    let once = substitute(rng, s, first);
    if n > 1 && rng.random_bool(0.5) {
        let mut second = rng.random_range(0..n);
        if second == first {
            second = (first + 1) % n;
        }
        substitute(rng, &once, second)
    } else {
        once
    }
}

fn is_date(y: u32, m: u32, d: u32) -> bool {
    chrono::NaiveDate::from_ymd_opt(y as i32, m, d).is_some()
}

fn date(y: u32, m: u32, d: u32) -> String {
    format!("{y:04}-{m:02}-{d:02}")
}

fn step(v: u32, up: bool) -> u32 {
    if up { v + 1 } else { v.saturating_sub(1) }
}

/// A valid date with exactly `which` components (0 = year, 1 = month, 2 = day) moved by
/// one, or None when no direction keeps the date valid.
fn shifted_dob(rng: &mut StdRng, dob: &str, which: &[usize]) -> Option<String> {
    let (y, m, d) = super::matching::parse_dob(dob)?;
    for attempt in 0..4u32 {
        let ups: Vec<bool> = which
            .iter()
            .enumerate()
            .map(|(i, _)| ((attempt >> i) & 1 == 1) ^ rng.random_bool(0.5))
            .collect();
        let mut parts = [y, m, d];
        for (&c, &up) in which.iter().zip(&ups) {
            parts[c] = step(parts[c], up);
        }
        if parts != [y, m, d] && is_date(parts[0], parts[1], parts[2]) {
            // Moving day and month toward each other could read as a transposition.
            let swapped = parts[1] == d && parts[2] == m;
            if !swapped {
                return Some(date(parts[0], parts[1], parts[2]));
            }
        }
    }
    None
}

fn lower(s: &str) -> String {
    s.trim().to_lowercase()
}

struct Builder<'a> {
    rng: StdRng,
    registry: &'a Registry,
    seed: u64,
    used_numbers: HashSet<(String, String, String)>,
}

impl Builder<'_> {
    fn base_row(&self, p: &Person, person_index: usize, row: usize) -> GeneratedRow {
        GeneratedRow {
            country: p.country.clone(),
            id_type: p.id_type.clone(),
            id_number: p.id_number.clone(),
            first_name: p.first_name.clone(),
            middle_name: p.middle_name.clone(),
            last_name: p.last_name.clone(),
            dob: p.dob.clone(),
            gender: p.gender.clone(),
            phone_number: p.phone_number.clone(),
            user_id: format!("u{}-{person_index:06}", self.seed),
            job_id: format!("j{}-{row:07}", self.seed),
            expected_result_code: String::new(),
            bank_code: super::id_numbers::bank_code(&p.country, &p.id_type, person_index)
                .unwrap_or_default()
                .to_owned(),
        }
    }

    /// Leaves optional fields out now and then, and varies the case of names: neither
    /// may change an exact match (seed 004: Not Provided, case-insensitive).
    fn vary_harmlessly(&mut self, r: &mut GeneratedRow) {
        let rng = &mut self.rng;
        if rng.random_bool(0.5) {
            r.middle_name.clear();
        }
        for field in [&mut r.dob, &mut r.gender, &mut r.phone_number] {
            if rng.random_bool(0.1) {
                field.clear();
            }
        }
        match rng.random_range(0..5) {
            0 => {
                r.first_name = r.first_name.to_uppercase();
                r.last_name = r.last_name.to_uppercase();
            }
            1 => {
                r.first_name = r.first_name.to_lowercase();
            }
            _ => {}
        }
    }

    /// A row of `kind` for person `p`, or None if this person cannot be that case
    /// (e.g. no transposable names or date).
    fn row(&mut self, kind: RowKind, i: usize, row: usize) -> Option<GeneratedRow> {
        let p = &self.registry.people()[i];
        let mut r = self.base_row(p, i, row);
        match kind {
            RowKind::Exact => self.vary_harmlessly(&mut r),
            RowKind::Partial => {
                self.vary_harmlessly(&mut r);
                self.partial(&mut r, p)?;
            }
            RowKind::Transposed => {
                self.vary_harmlessly(&mut r);
                self.transposed(&mut r, p)?;
            }
            RowKind::NoMatch => self.no_match(&mut r, p)?,
            RowKind::Invalid => {
                self.vary_harmlessly(&mut r);
                r.id_number = self.unregistered_number(p);
            }
            RowKind::BadFormat => {
                self.vary_harmlessly(&mut r);
                r.id_number = id_numbers::malformed(&p.id_number);
            }
        }
        r.expected_result_code = kind.expected_code().to_owned();
        Some(r)
    }

    /// One name a typo away, or one date component off by one (a partial match); None
    /// when the typo would read as a transposition.
    fn partial(&mut self, r: &mut GeneratedRow, p: &Person) -> Option<()> {
        match self.rng.random_range(0..3) {
            0 => r.first_name = typo(&mut self.rng, &p.first_name),
            1 => r.last_name = typo(&mut self.rng, &p.last_name),
            _ => {
                let c = self.rng.random_range(0..3);
                r.dob = shifted_dob(&mut self.rng, &p.dob, &[c])?;
            }
        }
        // A typo that lands on the other name would read as a transposition.
        if lower(&r.first_name) == lower(&p.last_name) {
            return None;
        }
        Some(())
    }

    /// The names swapped, or the date's day and month; None when neither can be.
    fn transposed(&mut self, r: &mut GeneratedRow, p: &Person) -> Option<()> {
        let (y, m, d) = super::matching::parse_dob(&p.dob)?;
        let names_ok = lower(&p.first_name) != lower(&p.last_name);
        let dob_ok = d != m && is_date(y, d, m);
        let swap_names = match (names_ok, dob_ok) {
            (false, false) => return None,
            (true, false) => true,
            (false, true) => false,
            (true, true) => self.rng.random_bool(0.5),
        };
        if swap_names {
            std::mem::swap(&mut r.first_name, &mut r.last_name);
        } else {
            r.dob = date(y, d, m);
        }
        Some(())
    }

    /// One field that does not match: a surname far from the person's, a date two
    /// components off, another phone number or the other gender.
    fn no_match(&mut self, r: &mut GeneratedRow, p: &Person) -> Option<()> {
        let pool = names::pool(&p.country);
        let far: Vec<&str> = pool
            .surnames
            .iter()
            .copied()
            .filter(|s| {
                strsim::levenshtein(&lower(s), &lower(&p.last_name))
                    > super::matching::MAX_NAME_DISTANCE
                    && lower(s) != lower(&p.first_name)
            })
            .collect();
        match self.rng.random_range(0..4) {
            0 if !far.is_empty() => {
                r.last_name = far[self.rng.random_range(0..far.len())].to_owned();
            }
            1 => {
                r.dob = shifted_dob(&mut self.rng, &p.dob, &[0, 2])
                    .or_else(|| shifted_dob(&mut self.rng, &p.dob, &[0, 1]))?;
            }
            2 if !p.phone_number.is_empty() => loop {
                let other = id_numbers::phone(&mut self.rng, &p.country);
                if other != p.phone_number {
                    r.phone_number = other;
                    break;
                }
            },
            _ => {
                r.gender = if p.gender.eq_ignore_ascii_case("M") {
                    "F"
                } else {
                    "M"
                }
                .to_owned();
            }
        }
        Some(())
    }

    /// A well-formed ID number of the person's type that is in no registry record and
    /// was not used by another generated row.
    fn unregistered_number(&mut self, p: &Person) -> String {
        loop {
            let n = id_numbers::valid(&mut self.rng, &p.country, &p.id_type, &p.dob);
            let key = (p.country.clone(), p.id_type.clone(), n.to_ascii_uppercase());
            if self.registry.lookup(&p.country, &p.id_type, &n).is_none()
                && self.used_numbers.insert(key)
            {
                break n;
            }
        }
    }
}

/// `people` synthetic people and `rows` rows mixed by `mix`, the same for the same
/// arguments. Rows use the people in turn, so no ID number gets more than
/// ceil(rows / people) requests (keep that at or under the 30-per-ID limit).
pub fn generate(people: usize, rows: usize, seed: u64, mix: &Mix) -> Generated {
    let registry = Registry::generate(people.max(1), seed);
    let rows = rows_for(&registry, rows, seed, mix);
    Generated { registry, rows }
}

/// Rows against an existing registry (one loaded from CSV, say).
pub fn rows_for(registry: &Registry, rows: usize, seed: u64, mix: &Mix) -> Vec<GeneratedRow> {
    let mut kinds: Vec<RowKind> = mix
        .counts(rows)
        .into_iter()
        .flat_map(|(k, n)| std::iter::repeat_n(k, n))
        .collect();
    // A seed of its own, so the rows do not replay the registry's draws.
    let mut rng = StdRng::seed_from_u64(seed ^ 0x0005_eed0_fa11_b0a7);
    kinds.shuffle(&mut rng);
    let n = registry.len();
    let mut builder = Builder {
        rng,
        registry,
        seed,
        used_numbers: HashSet::new(),
    };
    let mut out = Vec::with_capacity(rows);
    if n == 0 {
        return out;
    }
    for (row, kind) in kinds.into_iter().enumerate() {
        // Person `row % n`, or the next one that can be this kind of case.
        let made = (0..n).find_map(|step| builder.row(kind, (row + step) % n, row));
        if let Some(r) = made {
            out.push(r);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::matching::{Comparison, FieldMatch};

    #[test]
    fn mix_parses_and_refuses_nonsense() {
        let m: Mix = "exact=60, partial=10,transposed=10,nomatch=10,invalid=10"
            .parse()
            .unwrap();
        assert_eq!((m.exact, m.invalid, m.badformat), (60, 10, 0));
        assert!("exact=1,bogus=2".parse::<Mix>().is_err());
        assert!("exact".parse::<Mix>().is_err());
        assert!("exact=-1".parse::<Mix>().is_err());
        assert!("exact=0".parse::<Mix>().is_err());
    }

    #[test]
    fn counts_add_up_and_follow_weights() {
        let m: Mix = "exact=1,partial=1,nomatch=1".parse().unwrap();
        let c = m.counts(100);
        assert_eq!(c.iter().map(|(_, n)| n).sum::<usize>(), 100);
        for (k, n) in c {
            match k {
                RowKind::Exact | RowKind::Partial | RowKind::NoMatch => {
                    assert!((33..=34).contains(&n))
                }
                _ => assert_eq!(n, 0),
            }
        }
    }

    #[test]
    fn rows_are_reproducible_unique_and_what_they_claim() {
        let mix: Mix = "exact=3,partial=3,transposed=3,nomatch=3,invalid=2,badformat=1"
            .parse()
            .unwrap();
        let g = generate(200, 600, 11, &mix);
        assert_eq!(g.rows, generate(200, 600, 11, &mix).rows);
        assert_eq!(g.rows.len(), 600);
        let jobs: HashSet<_> = g.rows.iter().map(|r| &r.job_id).collect();
        assert_eq!(jobs.len(), 600);
        for r in &g.rows {
            let found = g.registry.lookup(&r.country, &r.id_type, &r.id_number);
            match r.expected_result_code.as_str() {
                "1013" => assert!(found.is_none()),
                "1014" => assert!(
                    super::id_numbers::authority_check(&r.country, &r.id_type, &r.id_number)
                        .is_err()
                ),
                code => {
                    let p = found.expect("a registered person");
                    let c = Comparison::of(&r.id_info(), p);
                    assert_eq!(c.overall().code(), code, "{r:?} {c:?}");
                    if code == "1021" {
                        let fields = [c.names, c.dob, c.gender, c.phone_number];
                        assert!(
                            fields
                                .iter()
                                .any(|f| matches!(f, FieldMatch::Partial | FieldMatch::Transposed)),
                            "{c:?}"
                        );
                    }
                }
            }
            assert!(
                chrono::NaiveDate::parse_from_str(&r.dob, "%Y-%m-%d").is_ok() || r.dob.is_empty()
            );
        }
    }

    #[test]
    fn manifests_round_trip_through_csv() {
        let g = generate(20, 30, 5, &Mix::default());
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("rows.csv");
        g.write_manifest_csv(&manifest).unwrap();
        let text = std::fs::read_to_string(&manifest).unwrap();
        assert!(text.starts_with(
            "country,id_type,id_number,first_name,middle_name,last_name,dob,gender,\
             phone_number,user_id,job_id,expected_result_code,bank_code\n"
        ));
        assert_eq!(read_rows_csv(&manifest).unwrap(), g.rows);
        let poll = dir.path().join("poll.csv");
        g.write_poll_manifest_csv(&poll).unwrap();
        let text = std::fs::read_to_string(&poll).unwrap();
        assert!(text.starts_with("user_id,job_id,expected_result_code,expected_status\n"));
        assert_eq!(text.lines().count(), 31);
        let jobs = g.preloaded_jobs(Duration::from_secs(1));
        assert_eq!(jobs.len(), 30);
        assert_eq!(jobs[0].job_id, g.rows[0].job_id);
    }

    #[test]
    fn unreadable_rows_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.csv");
        std::fs::write(&path, "user_id,job_id\nu,j\n").unwrap();
        let e = read_rows_csv(&path).unwrap_err().to_string();
        assert!(e.contains("rows.csv") && e.contains("line 2"), "{e}");
    }
}
