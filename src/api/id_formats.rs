//! The documented ID number formats, per country and id_type (API-FACTS.md).
//!
//! The manifest validator refuses a row whose number fails its format before anything is
//! sent (the server would answer 1014), and the sandbox answers 1014 for the same rows.

use std::sync::OnceLock;

use regex_lite::Regex;

/// One supported id type.
#[derive(Debug)]
pub struct IdFormat {
    pub country: &'static str,
    pub id_type: &'static str,
    pub pattern: &'static str,
    /// The documented regex carries `/i`.
    pub case_insensitive: bool,
}

const fn f(country: &'static str, id_type: &'static str, pattern: &'static str) -> IdFormat {
    IdFormat {
        country,
        id_type,
        pattern,
        case_insensitive: false,
    }
}

const fn fi(country: &'static str, id_type: &'static str, pattern: &'static str) -> IdFormat {
    IdFormat {
        country,
        id_type,
        pattern,
        case_insensitive: true,
    }
}

pub const FORMATS: &[IdFormat] = &[
    fi("GH", "PASSPORT", r"^[A-Z]{1,2}[0-9]{6,7}$"),
    fi("GH", "SSNIT", r"^[a-zA-Z]{1}[a-zA-Z0-9]{12,14}$"),
    f("GH", "VOTER_ID", r"^[0-9]{10,12}$"),
    f("GH", "NEW_VOTER_ID", r"^[0-9]{10,12}$"),
    f("KE", "ALIEN_CARD", r"^[0-9]{6,9}$"),
    f("KE", "KRA_PIN", r"^[0-9]{1,9}$"),
    f("KE", "NATIONAL_ID", r"^[0-9]{1,9}$"),
    f("KE", "NATIONAL_ID_NO_PHOTO", r"^[0-9]{1,9}$"),
    fi("KE", "PASSPORT", r"^[A-Z0-9]{7,9}$"),
    f("KE", "TAX_INFORMATION", r"^[Aa]\d{9}[a-zA-Z]$"),
    f("NG", "BVN", r"^[0-9]{11}$"),
    f("NG", "NIN_V2", r"^[0-9]{11}$"),
    f("NG", "NIN_SLIP", r"^[0-9]{11}$"),
    f("NG", "PHONE_NUMBER", r"^[0-9]{11}$"),
    fi("NG", "VOTER_ID", r"^[a-zA-Z0-9 ]{9,29}$"),
    f("ZA", "NATIONAL_ID", r"^[0-9]{13}$"),
    f("ZA", "NATIONAL_ID_NO_PHOTO", r"^[0-9]{13}$"),
    f("ZA", "PHONE_NUMBER", r"^[0-9]{10}$"),
    fi("UG", "NATIONAL_ID_NO_PHOTO", r"^[A-Z0-9]{14}$"),
    f("ZM", "TPIN", r"^[0-9]{10}$"),
];

/// The fields every Identity Verification request needs, whatever the id type.
pub const REQUIRED_FIELDS: &[&str] = &[
    "country",
    "id_type",
    "id_number",
    "first_name",
    "last_name",
    "user_id",
    "job_id",
];

fn compiled() -> &'static Vec<Regex> {
    static COMPILED: OnceLock<Vec<Regex>> = OnceLock::new();
    COMPILED.get_or_init(|| {
        FORMATS
            .iter()
            .map(|f| {
                let pattern = if f.case_insensitive {
                    format!("(?i){}", f.pattern)
                } else {
                    f.pattern.to_owned()
                };
                // The patterns are constants above; a test compiles every one of them.
                Regex::new(&pattern).expect("documented id regex compiles")
            })
            .collect()
    })
}

/// The format of `country`/`id_type` (both matched case-sensitively, as the API does).
pub fn find(country: &str, id_type: &str) -> Option<&'static IdFormat> {
    FORMATS
        .iter()
        .find(|f| f.country == country && f.id_type == id_type)
}

pub fn is_known_country(country: &str) -> bool {
    FORMATS.iter().any(|f| f.country == country)
}

/// Why an ID number cannot be sent.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdNumberError {
    #[error("unknown country {0:?} (known: GH, KE, NG, UG, ZA, ZM)")]
    UnknownCountry(String),
    #[error("id_type {id_type:?} is not supported for {country}")]
    UnknownIdType { country: String, id_type: String },
    #[error("id_number does not match the {country} {id_type} format {pattern}")]
    BadFormat {
        country: String,
        id_type: String,
        pattern: &'static str,
    },
}

/// Checks an ID number against its documented format.
pub fn check(country: &str, id_type: &str, id_number: &str) -> Result<(), IdNumberError> {
    if !is_known_country(country) {
        return Err(IdNumberError::UnknownCountry(country.to_owned()));
    }
    let Some(index) = FORMATS
        .iter()
        .position(|f| f.country == country && f.id_type == id_type)
    else {
        return Err(IdNumberError::UnknownIdType {
            country: country.to_owned(),
            id_type: id_type.to_owned(),
        });
    };
    if compiled()[index].is_match(id_number) {
        Ok(())
    } else {
        Err(IdNumberError::BadFormat {
            country: country.to_owned(),
            id_type: id_type.to_owned(),
            pattern: FORMATS[index].pattern,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_compiles() {
        assert_eq!(compiled().len(), FORMATS.len());
    }

    #[test]
    fn formats_accept_and_refuse_per_the_table() {
        assert!(check("NG", "BVN", "12345678901").is_ok());
        assert!(check("NG", "BVN", "1234567890").is_err());
        assert!(check("NG", "BVN", "1234567890a").is_err());
        assert!(check("GH", "PASSPORT", "g1234567").is_ok(), "/i");
        assert!(check("KE", "TAX_INFORMATION", "a123456789Z").is_ok());
        assert!(check("KE", "TAX_INFORMATION", "B123456789Z").is_err());
        assert!(check("ZA", "NATIONAL_ID", "1234567890123").is_ok());
        assert!(check("UG", "NATIONAL_ID_NO_PHOTO", "cm1234567890ab").is_ok());
        assert!(check("NG", "VOTER_ID", "ab12 cd34 ef").is_ok());
    }

    #[test]
    fn unknown_country_and_type_are_told_apart() {
        assert!(matches!(
            check("XX", "BVN", "1"),
            Err(IdNumberError::UnknownCountry(_))
        ));
        assert!(matches!(
            check("NG", "DRIVERS_LICENSE", "1"),
            Err(IdNumberError::UnknownIdType { .. })
        ));
    }
}
