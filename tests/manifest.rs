//! The manifest reader against a corpus of good and bad manifests
//! (`tests/fixtures/manifests/`): every bad row names its line and field, every bad file
//! names the file, nothing panics, and valid rows go on unaffected.

use std::path::{Path, PathBuf};

use smile_recon::manifest::{
    self, ExpectedStatus, ManifestError, ManifestSource, ReadError, Row, RowBody, RowKind,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/manifests")
        .join(name)
}

fn read_source(source: &ManifestSource, kind: RowKind) -> Result<Vec<Row>, ManifestError> {
    let mut rows = Vec::new();
    let result = manifest::read(source, kind, "salt", 0, |row| {
        rows.push(row);
        Ok::<(), std::convert::Infallible>(())
    });
    match result {
        Ok(summary) => {
            assert_eq!(summary.rows as usize, rows.len());
            assert_eq!((summary.valid + summary.invalid) as usize, rows.len());
            Ok(rows)
        }
        Err(ReadError::Manifest(e)) => Err(e),
        Err(ReadError::Sink(never)) => match never {},
    }
}

fn read(name: &str, kind: RowKind) -> Result<Vec<Row>, ManifestError> {
    read_source(&ManifestSource::Csv(fixture(name)), kind)
}

fn rows(name: &str) -> Vec<Row> {
    read(name, RowKind::Verify).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// (line, field) of every invalid row; the valid rows' lines.
fn split(rows: &[Row]) -> (Vec<(i64, String, String)>, Vec<i64>) {
    let mut bad = Vec::new();
    let mut good = Vec::new();
    for r in rows {
        match &r.body {
            RowBody::Invalid(e) => {
                assert_eq!(e.line, r.line);
                bad.push((e.line, e.field.clone(), e.reason.clone()));
            }
            _ => good.push(r.line),
        }
    }
    (bad, good)
}

fn file_error(name: &str, kind: RowKind) -> String {
    let e = read(name, kind).expect_err(name).to_string();
    assert!(e.contains(name), "the message names the file: {e}");
    e
}

#[test]
fn a_good_manifest_reads_every_field() {
    let rows = rows("good_verify.csv");
    assert_eq!(rows.len(), 3);
    assert_eq!(split(&rows).1, vec![2, 3, 4]);
    let RowBody::Verify(v) = &rows[2].body else {
        panic!("{:?}", rows[2])
    };
    assert_eq!(v.id_info.country, "KE");
    assert_eq!(
        v.id_info.gender.as_deref(),
        Some("F"),
        "gender is normalised"
    );
    assert_eq!(v.id_info.phone_number.as_deref(), Some("+254700000000"));
    assert_eq!(v.id_info.middle_name, None, "an empty cell is absent");
    assert_eq!(rows[2].job_id, "j3");
    assert!(!rows[2].job_id_derived);
}

#[test]
fn bom_crlf_blank_lines_and_header_spelling_are_accepted() {
    for name in ["bom.csv", "crlf.csv"] {
        let rows = rows(name);
        assert_eq!(split(&rows), (vec![], vec![2, 3]), "{name}");
    }
    assert_eq!(split(&rows("blank_lines.csv")).1.len(), 2);
    let quoted = rows("crlf_quoted.csv");
    assert_eq!(split(&quoted), (vec![], vec![2, 3]));
    assert_eq!(quoted[1].job_id, "j2", "a quoted last cell before CRLF");
    let RowBody::Verify(v) = &quoted[0].body else {
        panic!()
    };
    assert_eq!(v.id_info.first_name.as_deref(), Some("Kojo, Jr"));
    let rows = rows("header_case_spaces.csv");
    assert_eq!(split(&rows).0, vec![]);
    assert!(rows[0].job_id_derived, "no job_id column: derived");
}

#[test]
fn quoted_newlines_keep_line_numbers_right() {
    let rows = rows("quoted_newline.csv");
    assert_eq!(
        rows.iter().map(|r| r.line).collect::<Vec<_>>(),
        vec![2, 4, 5]
    );
    let (bad, _) = split(&rows);
    assert_eq!(bad.len(), 1);
    assert_eq!((bad[0].0, bad[0].1.as_str()), (5, "id_number"));
}

#[test]
fn whole_file_problems_name_the_file() {
    assert!(file_error("empty.csv", RowKind::Verify).contains("empty"));
    assert!(file_error("no_header.csv", RowKind::Verify).contains("line 1"));
    let e = file_error("duplicate_header.csv", RowKind::Verify);
    assert!(e.contains("\"country\"") && e.contains("twice"), "{e}");
    let e = file_error("missing_column.csv", RowKind::Verify);
    assert!(e.contains("id_number"), "{e}");
    let e = file_error("poll_missing_job_id_column.csv", RowKind::Poll);
    assert!(e.contains("job_id"), "{e}");
    let e = file_error("invalid_utf8_header.csv", RowKind::Verify);
    assert!(e.contains("UTF-8"), "{e}");

    let missing = fixture("no-such-file.csv");
    let e = read_source(&ManifestSource::Csv(missing), RowKind::Verify)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no-such-file.csv"), "{e}");
    let dir = read_source(&ManifestSource::Csv(fixture("")), RowKind::Verify)
        .unwrap_err()
        .to_string();
    assert!(dir.contains("directory"), "{dir}");
}

#[test]
fn a_header_alone_is_zero_rows() {
    assert!(rows("header_only.csv").is_empty());
}

#[test]
fn unknown_columns_become_partner_params() {
    let rows = rows("extra_columns.csv");
    let RowBody::Verify(v) = &rows[0].body else {
        panic!()
    };
    assert_eq!(v.extra["branch"], "Accra");
    assert_eq!(v.extra["Account Ref"], "AC-77");
    assert_eq!(v.extra.len(), 2);
}

#[test]
fn invalid_utf8_is_that_row_and_field_only() {
    let (bad, good) = split(&rows("invalid_utf8.csv"));
    assert_eq!(good, vec![2, 4]);
    assert_eq!(bad.len(), 1);
    assert_eq!((bad[0].0, bad[0].1.as_str()), (3, "first_name"));
    let rows = rows("invalid_utf8.csv");
    assert_eq!(
        (rows[1].user_id.as_str(), rows[1].job_id.as_str()),
        ("u2", "j2"),
        "the bad row keeps its identity for staging"
    );
    assert!(!rows[1].job_id_derived);
}

#[test]
fn dates_must_be_iso_and_real() {
    let (bad, good) = split(&rows("bad_dates.csv"));
    assert!(good.is_empty());
    assert_eq!(bad.len(), 6);
    assert!(bad.iter().all(|(_, field, _)| field == "dob"), "{bad:?}");
    assert_eq!(
        bad.iter().map(|b| b.0).collect::<Vec<_>>(),
        vec![2, 3, 4, 5, 6, 7]
    );
}

#[test]
fn gender_country_id_type_and_phone_are_checked() {
    for (name, field, count) in [
        ("bad_gender.csv", "gender", 2),
        ("unknown_country.csv", "country", 2),
        ("unknown_id_type.csv", "id_type", 1),
        ("bad_phone.csv", "phone_number", 1),
    ] {
        let (bad, good) = split(&rows(name));
        assert!(good.is_empty(), "{name}");
        assert_eq!(bad.len(), count, "{name}");
        assert!(bad.iter().all(|b| b.1 == field), "{name}: {bad:?}");
    }
}

#[test]
fn id_numbers_failing_their_format_are_refused_without_echoing_them() {
    let (bad, _) = split(&rows("bad_id_number.csv"));
    assert_eq!(bad.len(), 2);
    for (line, field, reason) in &bad {
        assert_eq!(field, "id_number", "line {line}");
        assert!(
            !reason.contains("1234567890") && !reason.contains("G45-83959"),
            "{reason}"
        );
    }
    assert!(bad[0].2.contains("NG BVN"), "{}", bad[0].2);
}

#[test]
fn short_rows_empty_required_cells_and_unterminated_quotes_are_row_errors() {
    let (bad, good) = split(&rows("wrong_field_count.csv"));
    assert_eq!(good, vec![2, 4]);
    assert_eq!((bad[0].0, bad[0].1.as_str()), (3, "(row)"));
    assert!(bad[0].2.contains("4 fields"), "{}", bad[0].2);
    let short = &rows("wrong_field_count.csv")[1];
    assert_eq!(
        short.user_id, "",
        "cells under the wrong columns are not trusted"
    );
    assert!(short.job_id_derived && short.job_id.starts_with("sr-"));

    let (bad, _) = split(&rows("missing_value.csv"));
    assert_eq!(
        bad.iter().map(|b| (b.0, b.1.as_str())).collect::<Vec<_>>(),
        vec![(2, "first_name"), (3, "user_id")]
    );

    let (bad, good) = split(&rows("unterminated_quote.csv"));
    assert_eq!(good, vec![2]);
    assert_eq!(bad.len(), 1, "the rest of the file is one bad row: {bad:?}");
}

#[test]
fn a_megabyte_field_is_a_row_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.csv");
    let big = "A".repeat(1 << 20);
    std::fs::write(
        &path,
        format!(
            "country,id_type,id_number,first_name,last_name,user_id\n\
             GH,PASSPORT,G4583959,{big},Tetteh,u1\n\
             GH,PASSPORT,G4583958,Kojo,Tetteh,u2\n"
        ),
    )
    .unwrap();
    let rows = read_source(&ManifestSource::Csv(path), RowKind::Verify).unwrap();
    let (bad, good) = split(&rows);
    assert_eq!(good, vec![3]);
    assert_eq!((bad[0].0, bad[0].1.as_str()), (2, "first_name"));
    assert!(bad[0].2.contains("longer than 65536 bytes"), "{}", bad[0].2);
    assert!(bad[0].2.len() < 200, "the cell is not quoted");
    let Row { user_id, .. } = &rows[0];
    assert_eq!(user_id, "u1", "the row keeps its identity");
}

#[test]
fn derived_job_ids_are_stable_per_salt_and_distinct_per_row() {
    let read_with = |salt: &str| {
        let mut ids = Vec::new();
        manifest::read(
            &ManifestSource::Csv(fixture("header_case_spaces.csv")),
            RowKind::Verify,
            salt,
            0,
            |r| {
                ids.push(r.job_id);
                Ok::<(), std::convert::Infallible>(())
            },
        )
        .unwrap();
        ids
    };
    assert_eq!(read_with("run:1"), read_with("run:1"));
    assert_ne!(read_with("run:1"), read_with("run:2"));
    assert!(read_with("run:1")[0].starts_with("sr-"));

    // Two identical rows without a job_id still get two job_ids (the line is in the hash).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("twins.csv");
    let twin = "GH,PASSPORT,G4583959,Kojo,Tetteh,u1,";
    std::fs::write(
        &path,
        format!("country,id_type,id_number,first_name,last_name,user_id,job_id\n{twin}\n{twin}\n"),
    )
    .unwrap();
    let source = ManifestSource::Csv(path);
    let first = read_source(&source, RowKind::Verify).unwrap();
    let again = read_source(&source, RowKind::Verify).unwrap();
    assert!(
        first.iter().all(|r| r.job_id_derived),
        "an empty cell is derived"
    );
    assert_ne!(first[0].job_id, first[1].job_id);
    assert_eq!(
        first.iter().map(|r| &r.job_id).collect::<Vec<_>>(),
        again.iter().map(|r| &r.job_id).collect::<Vec<_>>()
    );
    assert_eq!(first[0].job_id.len(), "sr-".len() + 24);
}

#[test]
fn skip_through_hands_on_only_later_rows() {
    let mut lines = Vec::new();
    let summary = manifest::read(
        &ManifestSource::Csv(fixture("good_verify.csv")),
        RowKind::Verify,
        "s",
        3,
        |r| {
            lines.push(r.line);
            Ok::<(), std::convert::Infallible>(())
        },
    )
    .unwrap();
    assert_eq!(lines, vec![4]);
    assert_eq!(summary.rows, 3);
    assert_eq!((summary.valid, summary.invalid), (1, 0));
}

#[test]
fn the_consumers_error_stops_the_read() {
    let mut seen = 0;
    let result = manifest::read(
        &ManifestSource::Csv(fixture("good_verify.csv")),
        RowKind::Verify,
        "s",
        0,
        |_| {
            seen += 1;
            if seen == 2 { Err("disk full") } else { Ok(()) }
        },
    );
    assert!(matches!(result, Err(ReadError::Sink("disk full"))));
    assert_eq!(seen, 2);
    let shown = ReadError::<&str>::Sink("disk full").to_string();
    assert_eq!(shown, "disk full");
}

#[test]
fn poll_rows_carry_expectations() {
    let rows = read("poll_good.csv", RowKind::Poll).unwrap();
    let RowBody::Poll(p) = &rows[1].body else {
        panic!()
    };
    assert_eq!(p.expected_status, Some(ExpectedStatus::Pending));
    assert_eq!(p.expected_result_code, None);
    let (bad, _) = split(&read("poll_bad.csv", RowKind::Poll).unwrap());
    assert_eq!(
        bad.iter().map(|b| (b.0, b.1.as_str())).collect::<Vec<_>>(),
        vec![
            (2, "expected_status"),
            (3, "expected_result_code"),
            (4, "job_id"),
            (5, "user_id")
        ]
    );
    let rows = read("poll_bad.csv", RowKind::Poll).unwrap();
    assert!(
        rows[2].job_id_derived,
        "an invalid poll row still gets a job_id to stage"
    );
    let RowBody::Poll(p) = &read("poll_good.csv", RowKind::Poll).unwrap()[0].body else {
        panic!()
    };
    assert_eq!(
        (p.expected_status, p.expected_result_code.as_deref()),
        (Some(ExpectedStatus::Approved), Some("1020"))
    );
}

fn sqlite_manifest(dir: &Path) -> PathBuf {
    let path = dir.join("app.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE customers (uid TEXT, country TEXT, kind TEXT, number INTEGER, \
         first TEXT, last TEXT, born TEXT);
         INSERT INTO customers VALUES ('u1', 'NG', 'BVN', 12345678901, 'Ada', 'Obi', '1990-01-31');
         INSERT INTO customers VALUES ('u2', 'NG', 'BVN', 123, 'Ben', 'Eze', NULL);",
    )
    .unwrap();
    path
}

#[test]
fn a_sqlite_query_is_a_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let path = sqlite_manifest(dir.path());
    let source = ManifestSource::Sqlite {
        path: path.clone(),
        query: "SELECT uid AS user_id, country, kind AS id_type, number AS id_number, \
                first AS first_name, last AS last_name, born AS dob FROM customers ORDER BY uid"
            .into(),
    };
    let rows = read_source(&source, RowKind::Verify).unwrap();
    let (bad, good) = split(&rows);
    assert_eq!(good, vec![1]);
    assert_eq!((bad[0].0, bad[0].1.as_str()), (2, "id_number"));
    let RowBody::Verify(v) = &rows[0].body else {
        panic!()
    };
    assert_eq!(v.id_info.id_number, "12345678901", "integers read as text");

    // The fingerprint follows the rows, not the file.
    let before = manifest::fingerprint(&source).unwrap();
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE unrelated (x); INSERT INTO unrelated VALUES (1);")
        .unwrap();
    assert_eq!(manifest::fingerprint(&source).unwrap(), before);
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute("UPDATE customers SET first = 'Adaeze' WHERE uid = 'u1'", [])
        .unwrap();
    assert_ne!(manifest::fingerprint(&source).unwrap(), before);
}

#[test]
fn bad_sqlite_queries_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = sqlite_manifest(dir.path());
    for (query, says) in [
        ("SELECT * FROM no_such_table", "no_such_table"),
        ("SELECT uid AS user_id FROM customers", "country"),
        ("DELETE FROM customers", "only read"),
        ("this is not sql", "syntax"),
    ] {
        let source = ManifestSource::Sqlite {
            path: path.clone(),
            query: query.into(),
        };
        let e = read_source(&source, RowKind::Verify)
            .expect_err(query)
            .to_string();
        assert!(e.contains("app.db"), "{e}");
        assert!(e.contains(says), "{query}: {e}");
    }
    // Nothing was deleted.
    let n: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM customers", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 2);
    let missing = ManifestSource::Sqlite {
        path: dir.path().join("nope.db"),
        query: "SELECT 1".into(),
    };
    assert!(
        read_source(&missing, RowKind::Verify)
            .unwrap_err()
            .to_string()
            .contains("nope.db")
    );
}

#[test]
fn crlf_blank_lines_and_a_bom_before_a_quoted_header_are_accepted() {
    assert_eq!(split(&rows("crlf_blank_lines.csv")), (vec![], vec![2, 5]));
    assert_eq!(split(&rows("bom_quoted_header.csv")), (vec![], vec![2]));
}

#[test]
fn an_overlong_job_id_is_refused_not_replaced() {
    let rows = rows("long_job_id.csv");
    let (bad, good) = split(&rows);
    assert_eq!(good, vec![3]);
    assert_eq!((bad[0].0, bad[0].1.as_str()), (2, "job_id"));
    assert!(bad[0].2.contains("256"), "{}", bad[0].2);
    assert!(rows[0].job_id_derived, "staged under a derived id");
}

#[test]
fn the_csv_fingerprint_is_the_sha256_of_the_bytes() {
    use sha2::{Digest, Sha256};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.csv");
    std::fs::copy(fixture("good_verify.csv"), &path).unwrap();
    let source = ManifestSource::Csv(path.clone());
    let bytes = std::fs::read(&path).unwrap();
    let want = hex::encode(Sha256::digest(&bytes));
    assert_eq!(manifest::fingerprint(&source).unwrap(), want);
    let mut changed = bytes.clone();
    changed.push(b'\n');
    std::fs::write(&path, changed).unwrap();
    assert_ne!(manifest::fingerprint(&source).unwrap(), want);

    let e = manifest::fingerprint(&ManifestSource::Csv(dir.path().join("gone.csv")))
        .unwrap_err()
        .to_string();
    assert!(e.contains("gone.csv"), "{e}");
    let e = manifest::fingerprint(&ManifestSource::Csv(dir.path().to_path_buf()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("directory"), "{e}");
}

#[test]
fn sqlite_values_of_every_type_become_text() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("poll.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE jobs (uid TEXT, jid INTEGER, code REAL, status TEXT, branch BLOB, note TEXT);
         INSERT INTO jobs VALUES ('u1', 7, 1020, 'APPROVED', X'4163637261', NULL);
         INSERT INTO jobs VALUES ('u2', 8, NULL, 'maybe', X'FF', 'x');",
    )
    .unwrap();
    drop(conn);
    let source = ManifestSource::from_args(
        path.clone(),
        Some(
            "SELECT uid AS user_id, jid AS job_id, CAST(code AS INTEGER) AS expected_result_code, \
             status AS expected_status, branch, note FROM jobs ORDER BY uid"
                .into(),
        ),
    );
    let rows = read_source(&source, RowKind::Poll).unwrap();
    assert_eq!(rows[0].job_id, "7");
    let RowBody::Poll(p) = &rows[0].body else {
        panic!("{:?}", rows[0])
    };
    assert_eq!(p.expected_status, Some(ExpectedStatus::Approved));
    assert_eq!(p.expected_result_code.as_deref(), Some("1020"));
    assert_eq!(p.extra["branch"], "Accra");
    assert!(!p.extra.contains_key("note"), "NULL is an empty cell");
    let (bad, _) = split(&rows);
    assert_eq!(
        (bad[0].0, bad[0].1.as_str()),
        (2, "branch"),
        "a blob that is not UTF-8"
    );
    assert_eq!(
        (rows[1].user_id.as_str(), rows[1].job_id.as_str()),
        ("u2", "8")
    );

    // A query matching nothing is zero rows, not an error.
    let empty = ManifestSource::from_args(
        path,
        Some("SELECT uid AS user_id, jid AS job_id FROM jobs WHERE 0".into()),
    );
    assert!(read_source(&empty, RowKind::Poll).unwrap().is_empty());
}

#[test]
fn sqlite_column_problems_and_smuggled_writes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = sqlite_manifest(dir.path());
    for (query, says) in [
        (
            "SELECT uid AS user_id, uid AS user_id, 'j' AS job_id FROM customers",
            "twice",
        ),
        ("SELECT uid, 'j' AS job_id FROM customers", "user_id"),
        (
            "SELECT uid AS user_id, 'j' AS job_id FROM customers; DELETE FROM customers",
            "app.db",
        ),
        ("UPDATE customers SET first = 'x'", "only read"),
        (
            "INSERT INTO customers (uid) SELECT uid FROM customers",
            "only read",
        ),
        (
            "SELECT uid AS user_id, ? AS job_id FROM customers",
            "app.db",
        ),
    ] {
        let source = ManifestSource::from_args(path.clone(), Some(query.into()));
        let e = read_source(&source, RowKind::Poll)
            .expect_err(query)
            .to_string();
        assert!(e.contains("app.db") && e.contains(says), "{query}: {e}");
    }
    let delete = ManifestSource::from_args(path.clone(), Some("DELETE FROM customers".into()));
    assert!(
        manifest::fingerprint(&delete).is_err(),
        "not even to fingerprint it"
    );
    let n: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM customers WHERE first <> 'x'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 2, "nothing was written");
    let dir_source = ManifestSource::from_args(dir.path().to_path_buf(), Some("SELECT 1".into()));
    let e = read_source(&dir_source, RowKind::Poll)
        .unwrap_err()
        .to_string();
    assert!(e.contains("directory"), "{e}");
}

#[test]
fn sources_from_arguments() {
    let csv = ManifestSource::from_args("m.csv".into(), None);
    assert_eq!(csv, ManifestSource::Csv("m.csv".into()));
    assert_eq!(csv.display(), "m.csv");
    let db = ManifestSource::from_args("app.db".into(), Some("SELECT 1".into()));
    assert_eq!(db.path(), Path::new("app.db"));
    assert_eq!(db.display(), "app.db (SELECT 1)");
}
