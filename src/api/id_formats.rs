//! The built-in table of id types: every (country, id_type) of seed 000's list and of
//! Smile ID's "ID Number Regex" page, with the ID number regex Smile ID publishes for it
//! (where it publishes one) and the fields a request for it needs beyond the common ones.
//!
//! The manifest validator refuses a row whose number fails its format before anything is
//! sent (the server would answer 1014), and the sandbox answers 1014 for the same rows.
//! At the start of a submit run the runner asks `GET /v1/services` for the current list
//! and merges it with this table ([`super::id_types`]); this table is what is used when
//! the host cannot be asked and nothing was stored.
//!
//! Where each regex comes from: the "ID Number Regex" page of docs.usesmileid.com
//! (Supported ID types > For Individuals > Using ID Number) for GH, KE, NG, ZA, UG and ZM
//! TPIN; the new types' own pages for the rest (noted on each row). A type without a published regex has `pattern: None`: any non-empty ID number is
//! accepted and the API judges it.

use std::sync::OnceLock;

use regex_lite::Regex;

/// One supported id type.
#[derive(Debug)]
pub struct IdFormat {
    pub country: &'static str,
    pub id_type: &'static str,
    /// The published regex; `None` when Smile ID publishes none (any non-empty number).
    pub pattern: Option<&'static str>,
    /// The documented regex carries `/i`.
    pub case_insensitive: bool,
    /// Fields this type needs beyond [`REQUIRED_FIELDS`] (its page's "Required Inputs").
    pub extra_required: &'static [&'static str],
}

const fn f(country: &'static str, id_type: &'static str, pattern: &'static str) -> IdFormat {
    IdFormat {
        country,
        id_type,
        pattern: Some(pattern),
        case_insensitive: false,
        extra_required: &[],
    }
}

const fn fi(country: &'static str, id_type: &'static str, pattern: &'static str) -> IdFormat {
    IdFormat {
        case_insensitive: true,
        ..f(country, id_type, pattern)
    }
}

/// A type for which Smile ID publishes no ID number regex.
const fn unpublished(country: &'static str, id_type: &'static str) -> IdFormat {
    IdFormat {
        country,
        id_type,
        pattern: None,
        case_insensitive: false,
        extra_required: &[],
    }
}

/// The field holding a bank account's bank (`bank_code` in the request body).
pub const BANK_CODE: &str = "bank_code";

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
    // Seed 000's other types. Côte d'Ivoire National ID and Resident ID (without photo):
    // Smile ID's regex page lists no regex for them and their own pages could not be read
    // here (third-party integrations quote `^[0-9]{11}$` or `^[A-Za-z][0-9]{10}$`, unseen
    // at the source), so any non-empty number is accepted and the API judges it.
    unpublished("CI", "NATIONAL_ID_NO_PHOTO"),
    unpublished("CI", "RESIDENT_ID_NO_PHOTO"),
    // Ghana Card: its page (.../supported-countries/ghana/ghana-card), `/^[A-Z]{3}-?\d{9}-?\d$/i`
    // (sandbox sample GHA-000000000-0). The page also lists a selfie, which only the
    // biometric products take; ID-number verification sends none.
    fi("GH", "GHANA_CARD", r"^[A-Z]{3}-?\d{9}-?\d$"),
    // Nigeria Bank Account: its page, `/^[0-9]{10}$/` (NUBAN); Required Inputs name
    // `bank_code`, "the 3-digit CBN issued code for the bank".
    IdFormat {
        extra_required: &[BANK_CODE],
        ..f("NG", "BANK_ACCOUNT", r"^[0-9]{10}$")
    },
    // Nigeria V_NIN (virtual NIN): its page, `/^[a-zA-Z0-9]{16}$/`.
    f("NG", "V_NIN", r"^[a-zA-Z0-9]{16}$"),
    // Zambia Bank Account: the regex page leaves its cell empty (the bank codes table gives
    // a regex per bank, most of them `.+`): no regex. Required Inputs name `bank_code`, "the
    // holding institution code for the bank" (absa, zanaco, ...).
    IdFormat {
        extra_required: &[BANK_CODE],
        ..unpublished("ZM", "BANK_ACCOUNT")
    },
    // Zimbabwe National ID (without photo): its page, `/^[0-9]{8,9}[A-Za-z]\d{2}$/`
    // (sandbox sample 000000000A00).
    f("ZW", "NATIONAL_ID_NO_PHOTO", r"^[0-9]{8,9}[A-Za-z]\d{2}$"),
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

impl IdFormat {
    /// Every field a request of this type needs: the common ones and its own.
    pub fn required_fields(&self) -> Vec<&'static str> {
        REQUIRED_FIELDS
            .iter()
            .chain(self.extra_required)
            .copied()
            .collect()
    }
}

/// A regex as the API writes it, with `/i` turned into `(?i)`.
pub fn compile(pattern: &str, case_insensitive: bool) -> Result<Regex, regex_lite::Error> {
    if case_insensitive {
        Regex::new(&format!("(?i){pattern}"))
    } else {
        Regex::new(pattern)
    }
}

fn compiled() -> &'static Vec<Option<Regex>> {
    static COMPILED: OnceLock<Vec<Option<Regex>>> = OnceLock::new();
    COMPILED.get_or_init(|| {
        FORMATS
            .iter()
            .map(|f| {
                // The patterns are constants above; a test compiles every one of them.
                f.pattern
                    .map(|p| compile(p, f.case_insensitive).expect("documented id regex compiles"))
            })
            .collect()
    })
}

/// The countries of the table, for messages ("known: CI, GH, ...").
pub fn known_countries() -> String {
    let mut countries: Vec<&str> = FORMATS.iter().map(|f| f.country).collect();
    countries.sort_unstable();
    countries.dedup();
    countries.join(", ")
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
    #[error("unknown country {country:?} (known: {known})")]
    UnknownCountry { country: String, known: String },
    #[error("id_type {id_type:?} is not supported for {country}")]
    UnknownIdType { country: String, id_type: String },
    #[error("id_number does not match the {country} {id_type} format {pattern}")]
    BadFormat {
        country: String,
        id_type: String,
        pattern: String,
    },
}

/// Checks an ID number against its documented format.
pub fn check(country: &str, id_type: &str, id_number: &str) -> Result<(), IdNumberError> {
    if !is_known_country(country) {
        return Err(IdNumberError::UnknownCountry {
            country: country.to_owned(),
            known: known_countries(),
        });
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
    match &compiled()[index] {
        // No published regex: the API judges any non-empty number.
        None if !id_number.is_empty() => Ok(()),
        Some(re) if re.is_match(id_number) => Ok(()),
        _ => Err(IdNumberError::BadFormat {
            country: country.to_owned(),
            id_type: id_type.to_owned(),
            pattern: FORMATS[index].pattern.unwrap_or(".+").to_owned(),
        }),
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
        // Seed 000's types.
        assert!(check("GH", "GHANA_CARD", "GHA-123456789-0").is_ok());
        assert!(
            check("GH", "GHANA_CARD", "gha1234567890").is_ok(),
            "/i, dashes optional"
        );
        assert!(check("GH", "GHANA_CARD", "GHA-12345678-0").is_err());
        assert!(check("NG", "BANK_ACCOUNT", "0123456789").is_ok());
        assert!(check("NG", "BANK_ACCOUNT", "012345678").is_err());
        assert!(check("NG", "V_NIN", "AB12cd34EF56gh78").is_ok());
        assert!(check("NG", "V_NIN", "AB12cd34EF56gh7").is_err());
        assert!(check("ZW", "NATIONAL_ID_NO_PHOTO", "000000000A00").is_ok());
        assert!(check("ZW", "NATIONAL_ID_NO_PHOTO", "00000000A0").is_err());
        // No published regex: anything non-empty.
        assert!(check("CI", "NATIONAL_ID_NO_PHOTO", "C0123456789").is_ok());
        assert!(check("CI", "RESIDENT_ID_NO_PHOTO", "x").is_ok());
        assert!(check("ZM", "BANK_ACCOUNT", "0000000000000").is_ok());
        assert!(check("ZM", "BANK_ACCOUNT", "").is_err());
    }

    #[test]
    fn bank_accounts_need_a_bank_code() {
        for (country, id_type) in [("NG", "BANK_ACCOUNT"), ("ZM", "BANK_ACCOUNT")] {
            let f = find(country, id_type).unwrap();
            assert!(f.required_fields().contains(&BANK_CODE), "{f:?}");
        }
        assert!(
            !find("NG", "BVN")
                .unwrap()
                .required_fields()
                .contains(&BANK_CODE)
        );
    }

    #[test]
    fn unknown_country_and_type_are_told_apart() {
        assert!(matches!(
            check("XX", "BVN", "1"),
            Err(IdNumberError::UnknownCountry { .. })
        ));
        assert!(matches!(
            check("NG", "DRIVERS_LICENSE", "1"),
            Err(IdNumberError::UnknownIdType { .. })
        ));
    }
}
