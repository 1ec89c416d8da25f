//! Property tests (issue 6): the manifest row validator, the response parsers and the
//! sandbox's matching rules hold their contracts on arbitrary input, and never panic.
//! 256 cases per property keep the file to a few seconds.

use std::convert::Infallible;

use proptest::prelude::*;
use serde_json::{Map, Value};
use smile_recon::api::id_formats;
use smile_recon::api::models::{
    ApiErrorBody, AsyncAck, IdInfo, JobStatusResponse, SignedResult, VerifyResult,
};
use smile_recon::api::{ApiKey, Credentials};
use smile_recon::manifest::{self, ManifestSource, Row, RowBody, RowKind};
use smile_recon::sandbox::Person;
use smile_recon::sandbox::matching::{
    self, Comparison, FieldMatch, MAX_NAME_DISTANCE, Overall, compare_dob, compare_names,
};

const CASES: u32 = 256;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        // a failing case is printed; nothing is written next to the sources
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---- (a) the manifest row validator -------------------------------------------------

const VERIFY_HEADER: [&str; 13] = [
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
    "note",
];
/// A row that validates, cell by cell in `VERIFY_HEADER`'s order.
const VERIFY_GOOD: [&str; 13] = [
    "NG",
    "BVN",
    "12345678901",
    "Ada",
    "",
    "Obi",
    "1990-04-12",
    "F",
    "+2348031234567",
    "user-1",
    "job-1",
    "1020",
    "batch 7",
];
const POLL_HEADER: [&str; 5] = [
    "user_id",
    "job_id",
    "expected_result_code",
    "expected_status",
    "note",
];
const POLL_GOOD: [&str; 5] = ["user-1", "job-1", "1020", "approved", ""];
/// `manifest::validate::MAX_FIELD_BYTES` (not exported): a longer cell is refused.
const MAX_FIELD_BYTES: usize = 65_536;
/// Cells that may hold personal data: a reason must never quote them.
const PII: [&str; 6] = [
    "id_number",
    "first_name",
    "middle_name",
    "last_name",
    "dob",
    "phone_number",
];

/// A cell: the good value, anything at all (any Unicode: quotes, commas, CR, LF, NUL,
/// BOMs), something near a real value, or one byte over the cell limit.
fn cell(good: &'static str) -> BoxedStrategy<String> {
    prop_oneof![
        4 => Just(good.to_owned()),
        4 => any::<String>(),
        2 => "[ \t]{0,2}[0-9A-Za-z+/-]{0,14}[ \t\r]{0,2}",
        1 => Just("x".repeat(MAX_FIELD_BYTES + 1)),
    ]
    .boxed()
}

/// A row: the good one with about one cell in six replaced by [`cell`]'s choice, so that
/// both valid and invalid rows come up.
fn cells(good: &'static [&'static str]) -> impl Strategy<Value = Vec<String>> {
    let replacements = good.iter().map(|g| cell(g)).collect::<Vec<_>>();
    let replaced = prop::collection::vec(prop::bool::weighted(0.16), good.len());
    (replacements, replaced).prop_map(move |(cells, replaced)| {
        cells
            .into_iter()
            .zip(replaced)
            .zip(good)
            .map(|((c, r), g)| if r { c } else { (*g).to_owned() })
            .collect()
    })
}

/// Runs `check` on `CASES` rows of `strategy`; returns (valid, invalid) counts so that a
/// test can see both branches were reached.
fn run_rows(
    strategy: impl Strategy<Value = Vec<String>>,
    check: impl Fn(&[String]) -> bool,
) -> (usize, usize) {
    use std::cell::Cell;
    let (valid, invalid) = (Cell::new(0), Cell::new(0));
    let mut runner = proptest::test_runner::TestRunner::new(config());
    runner
        .run(&strategy, |row| {
            if check(&row) {
                valid.set(valid.get() + 1);
            } else {
                invalid.set(invalid.get() + 1);
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    (valid.get(), invalid.get())
}

/// Writes a header and one row (every cell quoted, records ending in LF, as the reader
/// takes them) and reads it back through `manifest::read`.
fn read_one(header: &[&str], row: &[String], kind: RowKind) -> Row {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.csv");
    let mut w = csv::WriterBuilder::new()
        .quote_style(csv::QuoteStyle::Always)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_path(&path)
        .unwrap();
    w.write_record(header).unwrap();
    w.write_record(row).unwrap();
    w.flush().unwrap();
    drop(w);
    let mut rows = Vec::new();
    let summary = manifest::read(
        &ManifestSource::Csv(path.clone()),
        kind,
        "salt",
        0,
        |r| -> Result<(), Infallible> {
            rows.push(r);
            Ok(())
        },
    )
    .unwrap_or_else(|e| panic!("the manifest did not read: {e}"));
    assert_eq!(summary.rows, 1);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(summary.valid + summary.invalid, 1);
    rows.pop().unwrap()
}

fn cell_of<'a>(header: &[&str], row: &'a [String], name: &str) -> &'a str {
    let i = header.iter().position(|h| *h == name).unwrap();
    row[i].trim()
}

/// Invalid rows name one of the header's fields (or "(row)") and never quote personal data.
fn check_invalid(header: &[&str], row: &[String], parsed: &Row) {
    let RowBody::Invalid(e) = &parsed.body else {
        return;
    };
    assert_eq!(e.line, 2);
    assert!(
        e.field == "(row)" || header.contains(&e.field.as_str()),
        "the reason names {:?}, not a header field",
        e.field
    );
    assert!(!e.reason.is_empty());
    for name in PII {
        if !header.contains(&name) {
            continue;
        }
        let value = cell_of(header, row, name);
        if value.chars().count() >= 6 {
            assert!(
                !e.reason.contains(value),
                "the reason quotes {name}: {}",
                e.reason
            );
        }
    }
}

#[test]
fn verify_rows_are_valid_or_name_their_field() {
    let (valid, invalid) = run_rows(cells(&VERIFY_GOOD), |row| {
        let parsed = read_one(&VERIFY_HEADER, row, RowKind::Verify);
        assert!(!parsed.job_id.is_empty());
        check_invalid(&VERIFY_HEADER, row, &parsed);
        let RowBody::Verify(v) = &parsed.body else {
            assert!(
                matches!(parsed.body, RowBody::Invalid(_)),
                "{:?}",
                parsed.body
            );
            return false;
        };
        // a valid row carries exactly the trimmed cells, and they pass every rule
        let info = &v.id_info;
        let get = |n| cell_of(&VERIFY_HEADER, row, n);
        assert_eq!(info.country, get("country"));
        assert_eq!(info.id_type, get("id_type"));
        assert_eq!(info.id_number, get("id_number"));
        assert!(id_formats::check(&info.country, &info.id_type, &info.id_number).is_ok());
        assert_eq!(info.first_name.as_deref(), Some(get("first_name")));
        assert_eq!(info.last_name.as_deref(), Some(get("last_name")));
        assert!(!get("user_id").is_empty());
        assert_eq!(parsed.user_id, get("user_id"));
        if let Some(dob) = &info.dob {
            assert!(
                chrono::NaiveDate::parse_from_str(dob, "%Y-%m-%d").is_ok(),
                "{dob}"
            );
            assert_eq!(dob.len(), 10);
        }
        assert!(matches!(
            info.gender.as_deref(),
            None | Some("M") | Some("F")
        ));
        if let Some(p) = &info.phone_number {
            let digits = p.strip_prefix('+').unwrap_or(p);
            assert!(!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()));
        }
        if let Some(code) = &v.expected_result_code {
            assert!(code.len() == 4 && code.bytes().all(|b| b.is_ascii_digit()));
        }
        true
    });
    assert!(
        valid >= 10 && invalid >= 10,
        "{valid} valid, {invalid} invalid"
    );
}

#[test]
fn poll_rows_are_valid_or_name_their_field() {
    let (valid, invalid) = run_rows(cells(&POLL_GOOD), |row| {
        let parsed = read_one(&POLL_HEADER, row, RowKind::Poll);
        check_invalid(&POLL_HEADER, row, &parsed);
        match &parsed.body {
            RowBody::Poll(_) => {
                assert_eq!(parsed.user_id, cell_of(&POLL_HEADER, row, "user_id"));
                assert_eq!(parsed.job_id, cell_of(&POLL_HEADER, row, "job_id"));
                true
            }
            RowBody::Invalid(_) => false,
            other => panic!("a poll manifest gave {other:?}"),
        }
    });
    assert!(
        valid >= 10 && invalid >= 10,
        "{valid} valid, {invalid} invalid"
    );
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_row_with_the_wrong_number_of_cells_names_the_row(
        n in (1usize..20).prop_filter("not the header's width", |n| *n != VERIFY_HEADER.len()),
        filler in "[a-z]{1,5}",
    ) {
        let row: Vec<String> = vec![filler; n];
        let mut w = csv::WriterBuilder::new().flexible(true).from_writer(Vec::new());
        w.write_record(VERIFY_HEADER).unwrap();
        w.write_record(&row).unwrap();
        let bytes = w.into_inner().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.csv");
        std::fs::write(&path, bytes).unwrap();
        let mut rows = Vec::new();
        let read = manifest::read(
            &ManifestSource::Csv(path),
            RowKind::Verify,
            "salt",
            0,
            |r| -> Result<(), Infallible> {
                rows.push(r);
                Ok(())
            },
        );
        prop_assert!(read.is_ok());
        prop_assert_eq!(rows.len(), 1);
        match &rows[0].body {
            RowBody::Invalid(e) => prop_assert_eq!(e.field.as_str(), "(row)"),
            other => prop_assert!(false, "{:?}", other),
        }
    }
}

#[test]
fn the_good_rows_are_valid() {
    // so that the properties above reach their valid branches
    let row: Vec<String> = VERIFY_GOOD.iter().map(|s| s.to_string()).collect();
    let parsed = read_one(&VERIFY_HEADER, &row, RowKind::Verify);
    assert!(
        matches!(parsed.body, RowBody::Verify(_)),
        "{:?}",
        parsed.body
    );
    let row: Vec<String> = POLL_GOOD.iter().map(|s| s.to_string()).collect();
    let parsed = read_one(&POLL_HEADER, &row, RowKind::Poll);
    assert!(matches!(parsed.body, RowBody::Poll(_)), "{:?}", parsed.body);
}

// ---- (b) the response parsers ---------------------------------------------------------

/// Keys the parsers look for, and some they do not.
const KEYS: &[&str] = &[
    "timestamp",
    "signature",
    "job_complete",
    "job_success",
    "code",
    "error",
    "result",
    "history",
    "image_links",
    "success",
    "ResultCode",
    "ResultText",
    "SmileJobID",
    "PartnerParams",
    "job_id",
    "user_id",
    "job_type",
    "Actions",
    "IsFinalResult",
    "ConfidenceValue",
    "Source",
    "x",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        // binary fractions: exact through serde_json's float printing and parsing
        any::<i32>().prop_map(|i| Value::from(f64::from(i) / 8.0)),
        any::<String>().prop_map(Value::String),
        "(true|false|[0-9]{4})".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(
                (prop::sample::select(KEYS).prop_map(str::to_owned), inner),
                0..8
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Mostly a job_status or result shape with arbitrary values, so that many parse.
fn answer_like() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec((prop::sample::select(KEYS), json_value()), 0..10),
        any::<bool>(),
    )
        .prop_map(|(kv, complete)| {
            let mut m = Map::new();
            m.insert("timestamp".into(), Value::from("2026-01-01T00:00:00.000Z"));
            m.insert("signature".into(), Value::from("c2ln"));
            m.insert("job_complete".into(), Value::Bool(complete));
            m.insert("code".into(), Value::from("2302"));
            for (k, v) in kv {
                m.insert(k.to_owned(), v);
            }
            Value::Object(m)
        })
}

fn parse_all(bytes: &[u8]) {
    let _ = serde_json::from_slice::<JobStatusResponse>(bytes);
    let _ = serde_json::from_slice::<SignedResult>(bytes);
    let _ = serde_json::from_slice::<VerifyResult>(bytes);
    let _ = serde_json::from_slice::<AsyncAck>(bytes);
    let _ = serde_json::from_slice::<ApiErrorBody>(bytes);
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic_a_parser(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        parse_all(&bytes);
    }

    #[test]
    fn arbitrary_json_never_panics_a_parser(v in json_value()) {
        parse_all(&serde_json::to_vec(&v).unwrap());
    }

    #[test]
    fn only_the_right_signature_confirms(timestamp in any::<String>(), forged in any::<String>()) {
        let c = Credentials::new("002", ApiKey::new("property-key").unwrap()).unwrap();
        let right = c.sign(&timestamp);
        prop_assert!(c.confirm(&timestamp, &right));
        prop_assert_eq!(c.confirm(&timestamp, &forged), forged == right);
        let other = Credentials::new("002", ApiKey::new("another-key").unwrap()).unwrap();
        prop_assert!(!other.confirm(&timestamp, &right));
    }
}

#[test]
fn a_parsed_status_had_a_real_boolean_and_round_trips() {
    use std::cell::Cell;
    let (statuses, results) = (Cell::new(0), Cell::new(0));
    let mut runner = proptest::test_runner::TestRunner::new(config());
    runner
        .run(&answer_like(), |v| {
            let bytes = serde_json::to_vec(&v).unwrap();
            parse_all(&bytes);
            if let Ok(parsed) = serde_json::from_slice::<JobStatusResponse>(&bytes) {
                statuses.set(statuses.get() + 1);
                // no lenient reading of job_complete: only a JSON boolean makes a status
                prop_assert_eq!(Some(parsed.job_complete), v["job_complete"].as_bool());
                prop_assert!(v["signature"].is_string() && v["timestamp"].is_string());
                // what the store keeps (the parsed answer, serialised) reads back the same
                let again: JobStatusResponse =
                    serde_json::from_str(&serde_json::to_string(&parsed).unwrap()).unwrap();
                prop_assert_eq!(again, parsed);
            }
            if let Ok(parsed) = serde_json::from_slice::<SignedResult>(&bytes) {
                results.set(results.get() + 1);
                let again: SignedResult =
                    serde_json::from_str(&serde_json::to_string(&parsed).unwrap()).unwrap();
                prop_assert_eq!(again, parsed);
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    // both parsers were reached on their success paths, not only refused
    assert!(
        statuses.get() >= 10 && results.get() >= 10,
        "{} statuses and {} results parsed",
        statuses.get(),
        results.get()
    );
}

// ---- (c) the matching rules -------------------------------------------------------------

fn person(first: &str, middle: &str, last: &str, dob: &str, gender: &str, phone: &str) -> Person {
    Person {
        country: "NG".into(),
        id_type: "BVN".into(),
        id_number: "12345678901".into(),
        first_name: first.into(),
        middle_name: middle.into(),
        last_name: last.into(),
        dob: dob.into(),
        gender: gender.into(),
        phone_number: phone.into(),
    }
}

fn norm(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// A name: any Unicode, or a plausible one.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[A-Za-z]{1,12}( [A-Za-z]{1,8})?"]
}

fn non_blank_name() -> impl Strategy<Value = String> {
    name().prop_filter("a name", |s| !s.trim().is_empty())
}

/// `s` after `edits` random single-character edits (insert, delete, substitute).
fn edited(s: String, edits: Vec<(u8, usize, char)>) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    for (op, at, c) in edits {
        let at = if chars.is_empty() {
            0
        } else {
            at % (chars.len() + 1)
        };
        match op % 3 {
            0 => chars.insert(at, c),
            1 if at < chars.len() => {
                chars.remove(at);
            }
            _ if at < chars.len() => chars[at] = c,
            _ => chars.push(c),
        }
    }
    chars.into_iter().collect()
}

fn name_and_variant() -> impl Strategy<Value = (String, String)> {
    (
        "[A-Za-z]{1,12}",
        prop::collection::vec(
            (any::<u8>(), any::<usize>(), prop::char::range('a', 'z')),
            0..5,
        ),
    )
        .prop_map(|(n, edits)| (n.clone(), edited(n, edits)))
}

fn date() -> impl Strategy<Value = (u32, u32, u32)> {
    (1900u32..2030, 1u32..=12, 1u32..=28)
}

fn iso((y, m, d): (u32, u32, u32)) -> String {
    format!("{y:04}-{m:02}-{d:02}")
}

fn field_match() -> impl Strategy<Value = FieldMatch> {
    prop::sample::select(vec![
        FieldMatch::Exact,
        FieldMatch::Partial,
        FieldMatch::Transposed,
        FieldMatch::NotProvided,
        FieldMatch::NoMatch,
    ])
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_unicode_never_panics_the_rules(
        request in prop::collection::vec(any::<String>(), 6),
        record in prop::collection::vec(any::<String>(), 6),
    ) {
        let p = person(&record[0], &record[1], &record[2], &record[3], &record[4], &record[5]);
        let info = IdInfo {
            country: "NG".into(),
            id_type: "BVN".into(),
            id_number: "12345678901".into(),
            first_name: Some(request[0].clone()),
            middle_name: Some(request[1].clone()),
            last_name: Some(request[2].clone()),
            dob: Some(request[3].clone()),
            gender: Some(request[4].clone()),
            phone_number: Some(request[5].clone()),
            bank_code: None,
        };
        let c = Comparison::of(&info, &p);
        let _ = c.overall().code();
        let _ = matching::parse_dob(&request[3]);
    }

    #[test]
    fn identical_values_match_exactly(
        first in non_blank_name(),
        middle in name(),
        last in non_blank_name(),
        dob in date(),
        gender in "[MF]",
        phone in "\\+?[0-9]{6,13}",
    ) {
        let dob = iso(dob);
        let p = person(&first, &middle, &last, &dob, &gender, &phone);
        let info = IdInfo {
            country: "NG".into(),
            id_type: "BVN".into(),
            id_number: "12345678901".into(),
            first_name: Some(first),
            middle_name: Some(middle),
            last_name: Some(last),
            dob: Some(dob),
            gender: Some(gender),
            phone_number: Some(phone),
            bank_code: None,
        };
        let c = Comparison::of(&info, &p);
        prop_assert_eq!(
            c,
            Comparison {
                names: FieldMatch::Exact,
                dob: FieldMatch::Exact,
                gender: FieldMatch::Exact,
                phone_number: FieldMatch::Exact,
            }
        );
        prop_assert_eq!(c.overall(), Overall::ExactMatch);
    }

    #[test]
    fn names_ignore_ascii_case_and_spacing(first in "[A-Za-z]{1,12}", last in "[A-Za-z]{1,12}") {
        let p = person(&first, "", &last, "1990-01-01", "M", "");
        let shouted = format!("  {}\t", first.to_uppercase());
        let whispered = last.to_lowercase();
        prop_assert_eq!(
            compare_names(Some(&shouted), None, Some(&whispered), &p),
            FieldMatch::Exact
        );
    }

    #[test]
    fn names_follow_the_levenshtein_bound((record, request) in name_and_variant(), last in "[A-Za-z]{1,12}") {
        let p = person(&record, "", &last, "1990-01-01", "M", "");
        let got = compare_names(Some(&request), None, Some(&last), &p);
        let distance = strsim::levenshtein(&norm(&request), &norm(&record));
        let want = match distance {
            // every edit deleted: a blank name matches nothing
            _ if request.trim().is_empty() => FieldMatch::NoMatch,
            0 => FieldMatch::Exact,
            d if d <= MAX_NAME_DISTANCE => FieldMatch::Partial,
            _ => FieldMatch::NoMatch,
        };
        prop_assert_eq!(got, want, "{:?} vs {:?}: distance {}", request, record, distance);
    }

    #[test]
    fn name_comparison_is_symmetric(
        f1 in non_blank_name(), l1 in non_blank_name(),
        f2 in non_blank_name(), l2 in non_blank_name(),
    ) {
        let a = compare_names(Some(&f1), None, Some(&l1), &person(&f2, "", &l2, "", "", ""));
        let b = compare_names(Some(&f2), None, Some(&l2), &person(&f1, "", &l1, "", "", ""));
        prop_assert_eq!(a, b);
    }

    #[test]
    fn swapped_names_are_transposed(first in "[A-Za-z]{1,12}", last in "[A-Za-z]{1,12}") {
        prop_assume!(first.to_lowercase() != last.to_lowercase());
        let p = person(&first, "", &last, "1990-01-01", "M", "");
        prop_assert_eq!(
            compare_names(Some(&last), None, Some(&first), &p),
            FieldMatch::Transposed
        );
    }

    #[test]
    fn one_date_component_off_by_one_is_partial(d in date(), which in 0usize..3, up in any::<bool>()) {
        let mut parts = [d.0, d.1, d.2];
        if up { parts[which] += 1 } else { parts[which] -= 1 }
        let p = person("A", "", "B", &iso(d), "M", "");
        let off = iso((parts[0], parts[1], parts[2]));
        prop_assert_eq!(compare_dob(Some(&off), &p), FieldMatch::Partial, "{} vs {}", off, iso(d));
    }

    #[test]
    fn date_comparison_is_symmetric(a in date(), b in date()) {
        let (a, b) = (iso(a), iso(b));
        prop_assert_eq!(
            compare_dob(Some(&a), &person("A", "", "B", &b, "M", "")),
            compare_dob(Some(&b), &person("A", "", "B", &a, "M", ""))
        );
    }

    #[test]
    fn no_match_anywhere_is_1022_and_all_exact_is_1020(
        names in field_match(), dob in field_match(), gender in field_match(), phone in field_match(),
    ) {
        let fields = [names, dob, gender, phone];
        let c = Comparison { names, dob, gender, phone_number: phone };
        let want = if fields.contains(&FieldMatch::NoMatch) {
            Overall::NoMatch
        } else if fields.iter().all(|f| matches!(f, FieldMatch::Exact | FieldMatch::NotProvided)) {
            Overall::ExactMatch
        } else {
            Overall::PartialMatch
        };
        prop_assert_eq!(c.overall(), want);
    }
}
