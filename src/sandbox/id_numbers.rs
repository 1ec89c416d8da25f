//! Synthetic ID numbers: ones that match each id_type's documented regex (for registry
//! people and for well-formed numbers the authority does not know) and ones that do not
//! (to provoke 1014). A unit test runs every generated number through `authority_check`.
//!
//! The authority judges a number by its published regex, and for the types Smile ID
//! publishes none for (the client then sends any non-empty number) by a format of its
//! own, taken from the sample numbers of each type's page, so that the sandbox still
//! answers 1014 for a malformed one.

use std::sync::OnceLock;

use rand::{Rng, RngExt};
use regex_lite::Regex;

use crate::api::id_formats::{self, IdNumberError};

/// The authority's own format for types without a published regex.
const UNPUBLISHED: &[(&str, &str, &str)] = &[
    // Côte d'Ivoire: 11 digits, or a letter and 10 digits (the NNI and older numbers).
    (
        "CI",
        "NATIONAL_ID_NO_PHOTO",
        r"^(?:[0-9]{11}|[A-Za-z][0-9]{10})$",
    ),
    (
        "CI",
        "RESIDENT_ID_NO_PHOTO",
        r"^(?:[0-9]{11}|[A-Za-z][0-9]{10})$",
    ),
    // Zambia bank accounts: 13 digits, as the type's sample numbers.
    ("ZM", "BANK_ACCOUNT", r"^[0-9]{13}$"),
];

fn unpublished(country: &str, id_type: &str) -> Option<&'static Regex> {
    static COMPILED: OnceLock<Vec<Regex>> = OnceLock::new();
    let compiled = COMPILED.get_or_init(|| {
        UNPUBLISHED
            .iter()
            // Constants; a unit test runs every one of them.
            .map(|(_, _, p)| Regex::new(p).expect("authority format compiles"))
            .collect()
    });
    UNPUBLISHED
        .iter()
        .position(|(c, t, _)| *c == country && *t == id_type)
        .map(|i| &compiled[i])
}

/// How this sandbox's ID authority judges an ID number: its published format, or the
/// authority's own where none is published.
pub fn authority_check(country: &str, id_type: &str, number: &str) -> Result<(), IdNumberError> {
    id_formats::check(country, id_type, number)?;
    match unpublished(country, id_type) {
        Some(re) if !re.is_match(number) => Err(IdNumberError::BadFormat {
            country: country.to_owned(),
            id_type: id_type.to_owned(),
            pattern: re.as_str().to_owned(),
        }),
        _ => Ok(()),
    }
}

/// A bank code for a bank account type (a few of each country's documented codes), so
/// that generated rows carry the `bank_code` their type needs. `None` for other types.
pub fn bank_code(country: &str, id_type: &str, i: usize) -> Option<&'static str> {
    let codes: &[&str] = match (country, id_type) {
        ("NG", "BANK_ACCOUNT") => &["044", "058", "011", "033", "232"],
        ("ZM", "BANK_ACCOUNT") => &["zanaco", "absa", "stanbic", "fnb", "indo"],
        _ => return None,
    };
    Some(codes[i % codes.len()])
}

const DIGITS: &[u8] = b"0123456789";
const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const UPPER_DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

fn pick<R: Rng + ?Sized>(rng: &mut R, set: &[u8], n: usize, out: &mut String) {
    for _ in 0..n {
        out.push(char::from(set[rng.random_range(0..set.len())]));
    }
}

/// A number of `n` digits that does not start with 0 (so it reads as an ID, not a code).
fn digits<R: Rng + ?Sized>(rng: &mut R, n: usize, out: &mut String) {
    out.push(char::from(b'1' + rng.random_range(0..9u8)));
    pick(rng, DIGITS, n.saturating_sub(1), out);
}

/// A well-formed ID number for `country`/`id_type`. `dob` (YYYY-MM-DD) seeds the birth-date
/// prefix where the real number has one (South African IDs). Unknown types get 10 digits.
pub fn valid<R: Rng + ?Sized>(rng: &mut R, country: &str, id_type: &str, dob: &str) -> String {
    let mut s = String::with_capacity(20);
    match (country, id_type) {
        ("GH", "PASSPORT") => {
            s.push('G');
            pick(rng, DIGITS, 7, &mut s);
        }
        ("GH", "SSNIT") => {
            pick(rng, UPPER, 1, &mut s);
            pick(rng, DIGITS, 12, &mut s);
        }
        ("GH", "VOTER_ID" | "NEW_VOTER_ID") => digits(rng, 10, &mut s),
        ("KE", "ALIEN_CARD") => digits(rng, 8, &mut s),
        ("KE", "KRA_PIN" | "NATIONAL_ID" | "NATIONAL_ID_NO_PHOTO") => digits(rng, 8, &mut s),
        ("KE", "PASSPORT") => {
            s.push_str("AK");
            pick(rng, DIGITS, 7, &mut s);
        }
        ("KE", "TAX_INFORMATION") => {
            s.push('A');
            pick(rng, DIGITS, 9, &mut s);
            pick(rng, UPPER, 1, &mut s);
        }
        ("NG", "PHONE_NUMBER") => {
            s.push_str(["080", "081", "070", "090"][rng.random_range(0..4)]);
            pick(rng, DIGITS, 8, &mut s);
        }
        ("NG", "BVN" | "NIN_V2" | "NIN_SLIP") => digits(rng, 11, &mut s),
        ("NG", "VOTER_ID") => {
            pick(rng, DIGITS, 2, &mut s);
            pick(rng, UPPER, 1, &mut s);
            pick(rng, UPPER_DIGITS, 16, &mut s);
        }
        ("ZA", "NATIONAL_ID" | "NATIONAL_ID_NO_PHOTO") => {
            // YYMMDD of birth, then seven digits, as South African ID numbers are built.
            let ymd: String = dob.chars().filter(char::is_ascii_digit).collect();
            if ymd.len() == 8 {
                s.push_str(&ymd[2..8]);
            } else {
                pick(rng, DIGITS, 6, &mut s);
            }
            pick(rng, DIGITS, 7, &mut s);
        }
        ("ZA", "PHONE_NUMBER") => {
            s.push_str(["082", "083", "072", "061"][rng.random_range(0..4)]);
            pick(rng, DIGITS, 7, &mut s);
        }
        ("UG", "NATIONAL_ID_NO_PHOTO") => {
            s.push_str(["CM", "CF"][rng.random_range(0..2)]);
            pick(rng, UPPER_DIGITS, 12, &mut s);
        }
        ("CI", "NATIONAL_ID_NO_PHOTO") => {
            if rng.random_bool(0.5) {
                pick(rng, UPPER, 1, &mut s);
                pick(rng, DIGITS, 10, &mut s);
            } else {
                digits(rng, 11, &mut s);
            }
        }
        ("CI", "RESIDENT_ID_NO_PHOTO") => digits(rng, 11, &mut s),
        ("GH", "GHANA_CARD") => {
            s.push_str("GHA-");
            digits(rng, 9, &mut s);
            s.push('-');
            pick(rng, DIGITS, 1, &mut s);
        }
        ("NG", "BANK_ACCOUNT") => pick(rng, DIGITS, 10, &mut s),
        ("NG", "V_NIN") => pick(rng, UPPER_DIGITS, 16, &mut s),
        ("ZM", "BANK_ACCOUNT") => pick(rng, DIGITS, 13, &mut s),
        ("ZW", "NATIONAL_ID_NO_PHOTO") => {
            digits(rng, 9, &mut s);
            pick(rng, UPPER, 1, &mut s);
            pick(rng, DIGITS, 2, &mut s);
        }
        _ => digits(rng, 10, &mut s),
    }
    s
}

/// A mobile number as the country writes it locally.
pub fn phone<R: Rng + ?Sized>(rng: &mut R, country: &str) -> String {
    let mut s = String::with_capacity(12);
    let (prefix, rest) = match country {
        "NG" => (["080", "081", "070", "090"][rng.random_range(0..4)], 8),
        "GH" => (["024", "054", "020", "055"][rng.random_range(0..4)], 7),
        "KE" => (["071", "072", "079", "011"][rng.random_range(0..4)], 7),
        "ZA" => (["082", "083", "072", "061"][rng.random_range(0..4)], 7),
        "UG" => (["077", "078", "070", "075"][rng.random_range(0..4)], 7),
        _ => (["097", "096", "095", "076"][rng.random_range(0..4)], 7),
    };
    s.push_str(prefix);
    pick(rng, DIGITS, rest, &mut s);
    s
}

/// `number` with a dash in the middle: what a person typing an ID often sends, and a
/// character no documented format accepts, so the authority answers 1014.
pub fn malformed(number: &str) -> String {
    // A char boundary, whatever the number holds.
    let mid = number
        .char_indices()
        .map(|(i, _)| i)
        .nth(number.chars().count() / 2)
        .unwrap_or(number.len());
    let mut s = String::with_capacity(number.len() + 1);
    s.push_str(&number[..mid]);
    s.push('-');
    s.push_str(&number[mid..]);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::id_formats::FORMATS;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn every_generated_number_matches_its_format_and_its_malformed_twin_does_not() {
        let mut rng = StdRng::seed_from_u64(7);
        for f in FORMATS {
            for _ in 0..200 {
                let n = valid(&mut rng, f.country, f.id_type, "1990-04-12");
                assert!(
                    authority_check(f.country, f.id_type, &n).is_ok(),
                    "{f:?} {n}"
                );
                let bad = malformed(&n);
                assert!(
                    authority_check(f.country, f.id_type, &bad).is_err(),
                    "{f:?} {bad}"
                );
            }
        }
    }

    #[test]
    fn the_authority_judges_unpublished_types_by_its_own_format() {
        assert!(authority_check("CI", "NATIONAL_ID_NO_PHOTO", "C0123456789").is_ok());
        assert!(authority_check("CI", "NATIONAL_ID_NO_PHOTO", "12345678901").is_ok());
        assert!(authority_check("CI", "NATIONAL_ID_NO_PHOTO", "1234").is_err());
        assert!(authority_check("ZM", "BANK_ACCOUNT", "0000000000000").is_ok());
        assert!(authority_check("ZM", "BANK_ACCOUNT", "000000000000").is_err());
        for (c, t, _) in UNPUBLISHED {
            let f = id_formats::find(c, t).expect("an unpublished type is in the table");
            assert!(f.pattern.is_none(), "{c} {t} has a published regex now");
        }
        assert_eq!(bank_code("NG", "BANK_ACCOUNT", 0), Some("044"));
        assert_eq!(bank_code("NG", "BVN", 0), None);
    }

    #[test]
    fn phone_number_ids_are_phone_numbers() {
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(valid(&mut rng, "NG", "PHONE_NUMBER", "").len(), 11);
        assert_eq!(valid(&mut rng, "ZA", "PHONE_NUMBER", "").len(), 10);
        assert!(valid(&mut rng, "ZA", "NATIONAL_ID", "1990-04-12").starts_with("900412"));
    }
}
