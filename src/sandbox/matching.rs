//! Seed 004's matching rules, field by field, and the overall result they make.
//!
//! - Exact Match: the values are a case-insensitive exact match.
//! - Partial Match: names within a Levenshtein distance of 2; a date of birth with one
//!   component (day, month, year) within 1 of the authority's. More than one date
//!   component off is No Match.
//! - Transposed: two elements swapped: first and last name, or day and month of birth.
//! - Not Provided: an optional field (dob, gender, phone_number) was not sent.
//! - No Match: everything else.
//!
//! Overall: every compared field an Exact Match gives 1020; any No Match gives 1022; any
//! other mixture of Exact, Partial and Transposed gives 1021. Not Provided fields are left
//! out of the overall result: an optional field the partner chose not to send can neither
//! confirm nor spoil a match.
//!
//! Choices the seed leaves open, made here and documented in README's Sandbox section:
//! names are compared value by value (first, last, and middle when both sides have one),
//! each value within distance 2 for a Partial Match, after trimming, folding case and
//! collapsing inner white space; a transposition must be exact (no typo on top); dates
//! are compared component by component as numbers; phone numbers compare their digits
//! only; an authority record without a phone number treats the phone as Not Provided.

use crate::api::models::IdInfo;

use super::registry::Person;

/// The outcome of comparing one field, with the wording of seed 004's `Actions`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldMatch {
    Exact,
    Partial,
    Transposed,
    NotProvided,
    NoMatch,
}

impl FieldMatch {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldMatch::Exact => "Exact Match",
            FieldMatch::Partial => "Partial Match",
            FieldMatch::Transposed => "Transposed",
            FieldMatch::NotProvided => "Not Provided",
            FieldMatch::NoMatch => "No Match",
        }
    }
}

/// The overall Identity Verification result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overall {
    ExactMatch,
    PartialMatch,
    NoMatch,
}

impl Overall {
    pub fn code(self) -> &'static str {
        match self {
            Overall::ExactMatch => "1020",
            Overall::PartialMatch => "1021",
            Overall::NoMatch => "1022",
        }
    }

    pub fn text(self) -> &'static str {
        match self {
            Overall::ExactMatch => "Exact Match",
            Overall::PartialMatch => "Partial Match",
            Overall::NoMatch => "No Match",
        }
    }
}

/// Names farther apart than this are not a Partial Match.
pub const MAX_NAME_DISTANCE: usize = 2;

fn normalise(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

fn given(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// Names: first and last are required by the API; middle is compared only when the
/// request and the record both have one.
pub fn compare_names(
    first: Option<&str>,
    middle: Option<&str>,
    last: Option<&str>,
    person: &Person,
) -> FieldMatch {
    let (Some(first), Some(last)) = (given(first), given(last)) else {
        // Cannot happen through the server (2213 first); a missing name matches nothing.
        return FieldMatch::NoMatch;
    };
    let (f, l) = (normalise(first), normalise(last));
    let (pf, pl) = (normalise(&person.first_name), normalise(&person.last_name));
    let middle = match (given(middle), given(Some(&person.middle_name))) {
        (Some(m), Some(pm)) => Some((normalise(m), normalise(pm))),
        _ => None,
    };
    let middle_exact = middle.as_ref().is_none_or(|(m, pm)| m == pm);
    if f == pf && l == pl && middle_exact {
        return FieldMatch::Exact;
    }
    if f == pl && l == pf && middle_exact {
        return FieldMatch::Transposed;
    }
    let close = |a: &str, b: &str| strsim::levenshtein(a, b) <= MAX_NAME_DISTANCE;
    let middle_close = middle.as_ref().is_none_or(|(m, pm)| close(m, pm));
    if close(&f, &pf) && close(&l, &pl) && middle_close {
        return FieldMatch::Partial;
    }
    FieldMatch::NoMatch
}

/// `YYYY-MM-DD` as three numbers, without calendar checks: a transposed date such as
/// 1990-25-03 must still be read to be recognised as transposed.
pub fn parse_dob(s: &str) -> Option<(u32, u32, u32)> {
    let mut parts = s.trim().split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 || !(1..=2).contains(&m.len()) {
        return None;
    }
    if !(1..=2).contains(&d.len()) {
        return None;
    }
    let num = |p: &str| -> Option<u32> {
        if p.bytes().all(|b| b.is_ascii_digit()) {
            p.parse().ok()
        } else {
            None
        }
    };
    Some((num(y)?, num(m)?, num(d)?))
}

pub fn compare_dob(dob: Option<&str>, person: &Person) -> FieldMatch {
    let Some(dob) = given(dob) else {
        return FieldMatch::NotProvided;
    };
    let (Some(g), Some(p)) = (parse_dob(dob), parse_dob(&person.dob)) else {
        return FieldMatch::NoMatch;
    };
    if g == p {
        return FieldMatch::Exact;
    }
    let (gy, gm, gd) = g;
    let (py, pm, pd) = p;
    if gy == py && gm == pd && gd == pm {
        return FieldMatch::Transposed;
    }
    let diffs = [gy.abs_diff(py), gm.abs_diff(pm), gd.abs_diff(pd)];
    let off: Vec<u32> = diffs.into_iter().filter(|&d| d != 0).collect();
    if off.len() == 1 && off[0] <= 1 {
        return FieldMatch::Partial;
    }
    FieldMatch::NoMatch
}

fn gender_letter(s: &str) -> String {
    match s.trim().to_ascii_uppercase().as_str() {
        "MALE" => "M".into(),
        "FEMALE" => "F".into(),
        other => other.to_owned(),
    }
}

pub fn compare_gender(gender: Option<&str>, person: &Person) -> FieldMatch {
    match given(gender) {
        None => FieldMatch::NotProvided,
        Some(g) if gender_letter(g) == gender_letter(&person.gender) => FieldMatch::Exact,
        Some(_) => FieldMatch::NoMatch,
    }
}

pub fn compare_phone(phone: Option<&str>, person: &Person) -> FieldMatch {
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    let Some(phone) = given(phone) else {
        return FieldMatch::NotProvided;
    };
    let on_file = digits(&person.phone_number);
    if on_file.is_empty() {
        return FieldMatch::NotProvided;
    }
    if digits(phone) == on_file {
        FieldMatch::Exact
    } else {
        FieldMatch::NoMatch
    }
}

/// The four comparisons of one request against one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Comparison {
    pub names: FieldMatch,
    pub dob: FieldMatch,
    pub gender: FieldMatch,
    pub phone_number: FieldMatch,
}

impl Comparison {
    pub fn of(request: &IdInfo, person: &Person) -> Self {
        Self {
            names: compare_names(
                request.first_name.as_deref(),
                request.middle_name.as_deref(),
                request.last_name.as_deref(),
                person,
            ),
            dob: compare_dob(request.dob.as_deref(), person),
            gender: compare_gender(request.gender.as_deref(), person),
            phone_number: compare_phone(request.phone_number.as_deref(), person),
        }
    }

    pub fn overall(&self) -> Overall {
        let compared = [self.names, self.dob, self.gender, self.phone_number]
            .into_iter()
            .filter(|m| *m != FieldMatch::NotProvided);
        let mut all_exact = true;
        for m in compared {
            match m {
                FieldMatch::NoMatch => return Overall::NoMatch,
                FieldMatch::Exact => {}
                _ => all_exact = false,
            }
        }
        if all_exact {
            Overall::ExactMatch
        } else {
            Overall::PartialMatch
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use FieldMatch::*;

    fn person() -> Person {
        Person {
            country: "NG".into(),
            id_type: "BVN".into(),
            id_number: "12345678901".into(),
            first_name: "Chinedu".into(),
            middle_name: "Emeka".into(),
            last_name: "Okafor".into(),
            dob: "1990-04-12".into(),
            gender: "M".into(),
            phone_number: "08031234567".into(),
        }
    }

    fn names(first: &str, last: &str) -> FieldMatch {
        compare_names(Some(first), None, Some(last), &person())
    }

    fn dob(d: &str) -> FieldMatch {
        compare_dob(Some(d), &person())
    }

    // Exact Match: "The values are a case-insensitive exact match".
    #[test]
    fn names_exact_ignores_case_and_spacing() {
        assert_eq!(names("Chinedu", "Okafor"), Exact);
        assert_eq!(names("CHINEDU", "okafor"), Exact);
        assert_eq!(names("  chinedu ", "OKAFOR"), Exact);
        assert_eq!(
            compare_names(Some("Chinedu"), Some("emeka"), Some("Okafor"), &person()),
            Exact
        );
    }

    // Partial Match: "a levenshtein distance of <= 2 apart".
    #[test]
    fn names_distance_one_and_two_are_partial() {
        assert_eq!(names("Chinedi", "Okafor"), Partial, "one substitution");
        assert_eq!(names("Chined", "Okafor"), Partial, "one deletion");
        assert_eq!(names("Chinedu", "Okaffor"), Partial, "one insertion");
        assert_eq!(names("Chinadi", "Okafor"), Partial, "distance 2");
        assert_eq!(names("Chinedi", "Okafur"), Partial, "1 + 1 on two values");
        assert_eq!(names("Chinedu", "Okfr"), Partial, "two deletions");
    }

    // "...<= 2 apart": 3 is beyond the boundary.
    #[test]
    fn names_distance_three_is_no_match() {
        assert_eq!(names("Chinxxx", "Okafor"), NoMatch, "three substitutions");
        assert_eq!(names("Chin", "Okafor"), NoMatch, "three deletions");
        assert_eq!(names("Chinedu", "Okaforxyz"), NoMatch, "three insertions");
        assert_eq!(names("Ngozi", "Okafor"), NoMatch, "another name");
    }

    #[test]
    fn middle_name_counts_only_when_both_sides_have_one() {
        let p = person();
        assert_eq!(
            compare_names(Some("Chinedu"), Some(""), Some("Okafor"), &p),
            Exact
        );
        assert_eq!(
            compare_names(Some("Chinedu"), Some("Emeke"), Some("Okafor"), &p),
            Partial
        );
        assert_eq!(
            compare_names(Some("Chinedu"), Some("Tunde"), Some("Okafor"), &p),
            NoMatch
        );
        let mut no_middle = person();
        no_middle.middle_name.clear();
        assert_eq!(
            compare_names(Some("Chinedu"), Some("Tunde"), Some("Okafor"), &no_middle),
            Exact
        );
    }

    // Transposed: "first name and last name".
    #[test]
    fn swapped_first_and_last_name_is_transposed() {
        assert_eq!(names("Okafor", "Chinedu"), Transposed);
        assert_eq!(names("OKAFOR", "chinedu"), Transposed);
        assert_eq!(names("Okafar", "Chinedu"), NoMatch, "swapped with a typo");
    }

    #[test]
    fn dob_exact() {
        assert_eq!(dob("1990-04-12"), Exact);
        assert_eq!(dob("1990-4-12"), Exact, "components compare as numbers");
    }

    // "if any single component (Day, Month, Year) is within 1 digit".
    #[test]
    fn one_dob_component_off_by_one_is_partial() {
        assert_eq!(dob("1990-04-13"), Partial, "day +1");
        assert_eq!(dob("1990-04-11"), Partial, "day -1");
        assert_eq!(dob("1990-05-12"), Partial, "month +1");
        assert_eq!(dob("1989-04-12"), Partial, "year -1");
    }

    #[test]
    fn one_dob_component_off_by_two_is_no_match() {
        assert_eq!(dob("1990-04-14"), NoMatch);
        assert_eq!(dob("1992-04-12"), NoMatch);
    }

    // "If more than one component of date birth is off then it is no match."
    #[test]
    fn two_dob_components_off_is_no_match() {
        assert_eq!(dob("1990-05-13"), NoMatch, "month and day");
        assert_eq!(dob("1991-04-13"), NoMatch, "year and day");
        assert_eq!(dob("1991-05-13"), NoMatch, "all three");
    }

    // Transposed: "month of birth and date of birth".
    #[test]
    fn swapped_day_and_month_is_transposed() {
        assert_eq!(dob("1990-12-04"), Transposed);
        let mut late = person();
        late.dob = "1990-03-25".into();
        assert_eq!(compare_dob(Some("1990-25-03"), &late), Transposed);
        assert_eq!(dob("1991-12-04"), NoMatch, "swapped and another year");
    }

    #[test]
    fn optional_fields_not_sent_are_not_provided() {
        let p = person();
        assert_eq!(compare_dob(None, &p), NotProvided);
        assert_eq!(compare_dob(Some("  "), &p), NotProvided);
        assert_eq!(compare_gender(None, &p), NotProvided);
        assert_eq!(compare_phone(Some(""), &p), NotProvided);
    }

    #[test]
    fn gender_and_phone_are_exact_or_no_match() {
        let p = person();
        assert_eq!(compare_gender(Some("m"), &p), Exact);
        assert_eq!(compare_gender(Some("Male"), &p), Exact);
        assert_eq!(compare_gender(Some("F"), &p), NoMatch);
        assert_eq!(compare_phone(Some("08031234567"), &p), Exact);
        assert_eq!(compare_phone(Some("0803 123 4567"), &p), Exact);
        assert_eq!(compare_phone(Some("08031234568"), &p), NoMatch);
    }

    #[test]
    fn unreadable_dob_is_no_match() {
        assert_eq!(dob("12/04/1990"), NoMatch);
        assert_eq!(dob("1990-04"), NoMatch);
        assert_eq!(dob("1990-04-12-01"), NoMatch);
    }

    fn overall(
        names: FieldMatch,
        dob: FieldMatch,
        gender: FieldMatch,
        phone: FieldMatch,
    ) -> Overall {
        Comparison {
            names,
            dob,
            gender,
            phone_number: phone,
        }
        .overall()
    }

    // "If all the underlying fields are an exact match the overall result is an exact match."
    #[test]
    fn all_exact_is_1020() {
        assert_eq!(overall(Exact, Exact, Exact, Exact).code(), "1020");
        assert_eq!(
            overall(Exact, NotProvided, NotProvided, NotProvided),
            Overall::ExactMatch
        );
    }

    // "any mixture of exact, partial match, or transposed ... is a partial match"
    #[test]
    fn mixture_of_exact_partial_transposed_is_1021() {
        assert_eq!(overall(Partial, Exact, Exact, Exact).code(), "1021");
        assert_eq!(
            overall(Exact, Transposed, NotProvided, Exact).code(),
            "1021"
        );
        assert_eq!(
            overall(Transposed, Partial, Exact, NotProvided).code(),
            "1021"
        );
    }

    // "If any of the fields are no match then the entire result is no match."
    #[test]
    fn any_no_match_is_1022() {
        assert_eq!(overall(Exact, Exact, Exact, NoMatch).code(), "1022");
        assert_eq!(overall(Partial, NoMatch, Exact, Exact).code(), "1022");
        assert_eq!(
            overall(NoMatch, NotProvided, NotProvided, NotProvided).code(),
            "1022"
        );
    }

    #[test]
    fn comparison_of_a_request_reads_every_field() {
        let p = person();
        let req = IdInfo {
            country: "NG".into(),
            id_type: "BVN".into(),
            id_number: p.id_number.clone(),
            first_name: Some("okafor".into()),
            middle_name: None,
            last_name: Some("CHINEDU".into()),
            dob: Some("1990-04-13".into()),
            gender: None,
            phone_number: Some("08031234567".into()),
            bank_code: None,
        };
        let c = Comparison::of(&req, &p);
        assert_eq!(
            c,
            Comparison {
                names: Transposed,
                dob: Partial,
                gender: NotProvided,
                phone_number: Exact
            }
        );
        assert_eq!(c.overall().text(), "Partial Match");
    }
}
