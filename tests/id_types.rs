//! Every id type of seed 000's list, and `/v1/services` as the runner's source of id types
//! (issue 13): a manifest with one row of each is accepted and a real format error is
//! refused; the runner takes the types the host lists, keeps the answer, uses the kept one
//! when the host is down and the built-in table when nothing was kept; the sandbox lists
//! every type and a whole run through it stages and verifies every type.

mod common;

use std::io::Write;
use std::path::Path;

use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};
use smile_recon::api::id_types::{IdTypes, UnknownIdTypes};
use smile_recon::api::{ApiKey, ClientConfig, Credentials, SmileClient, SubmitEndpoint};
use smile_recon::job_spec::RunMode;
use smile_recon::manifest::{self, ManifestSource, Row, RowBody, RowKind};
use smile_recon::runner::services::{self, Source};
use smile_recon::sandbox::{self, Faults, Mix};
use smile_recon::store::{JobState, Store};

use common::batch::{Batch, outcome_code, start_sandbox};

/// Seed 000's list beyond API-FACTS.md's table, with a well-formed number and the bank
/// code a bank account needs.
const SEED_000: &[(&str, &str, &str, &str)] = &[
    ("CI", "NATIONAL_ID_NO_PHOTO", "C0123456789", ""),
    ("CI", "RESIDENT_ID_NO_PHOTO", "01234567890", ""),
    ("GH", "GHANA_CARD", "GHA-000000000-0", ""),
    ("NG", "BANK_ACCOUNT", "0000000000", "044"),
    ("NG", "V_NIN", "0000000000000000", ""),
    ("ZM", "BANK_ACCOUNT", "0000000000000", "zanaco"),
    ("ZW", "NATIONAL_ID_NO_PHOTO", "000000000A00", ""),
];

const HEADER: &str = "country,id_type,id_number,first_name,last_name,user_id,bank_code\n";

fn write_manifest(path: &Path, rows: &[(&str, &str, &str, &str)]) {
    let mut f = std::fs::File::create(path).unwrap();
    f.write_all(HEADER.as_bytes()).unwrap();
    for (i, (country, id_type, number, bank)) in rows.iter().enumerate() {
        writeln!(f, "{country},{id_type},{number},Ada,Obi,u{i},{bank}").unwrap();
    }
}

fn read(path: &Path, rules: &IdTypes) -> Vec<Row> {
    let mut rows = Vec::new();
    manifest::read_with(
        &ManifestSource::Csv(path.to_owned()),
        RowKind::Verify,
        "salt",
        0,
        rules,
        |row| {
            rows.push(row);
            Ok::<(), ()>(())
        },
    )
    .unwrap();
    rows
}

/// `(line, field)` of an invalid row, `None` for a valid one.
fn invalid(row: &Row) -> Option<(i64, String)> {
    match &row.body {
        RowBody::Invalid(e) => Some((e.line, e.field.clone())),
        _ => None,
    }
}

#[test]
fn one_row_of_every_seed_000_type_is_accepted_with_its_bank_code() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.csv");
    write_manifest(&path, SEED_000);
    let rows = read(&path, IdTypes::builtin_shared());
    assert_eq!(rows.len(), SEED_000.len());
    for (row, (country, id_type, _, bank)) in rows.iter().zip(SEED_000) {
        let RowBody::Verify(v) = &row.body else {
            panic!("{country} {id_type} refused: {row:?}");
        };
        // bank_code travels in id_info (the request body), not in partner_params.
        assert_eq!(
            v.id_info.bank_code.as_deref(),
            (!bank.is_empty()).then_some(*bank)
        );
        assert!(!v.extra.contains_key("bank_code"));
    }
    // What goes on the wire: bank_code beside id_number.
    let RowBody::Verify(v) = &rows[3].body else {
        unreachable!()
    };
    let wire = serde_json::to_value(&v.id_info).unwrap();
    assert_eq!(wire["bank_code"], "044");
    assert_eq!(wire["id_type"], "BANK_ACCOUNT");
}

#[test]
fn real_format_errors_and_missing_bank_codes_are_refused_by_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.csv");
    write_manifest(
        &path,
        &[
            ("GH", "GHANA_CARD", "GHA-00000000-0", ""), // 8 digits, not 9
            ("NG", "V_NIN", "000000000000000", ""),     // 15 characters
            ("ZW", "NATIONAL_ID_NO_PHOTO", "000000000", ""), // no letter
            ("NG", "BANK_ACCOUNT", "0000000000", ""),   // no bank_code
            ("ZM", "BANK_ACCOUNT", "0000000000000", ""), // no bank_code
            ("CI", "NATIONAL_ID_NO_PHOTO", "anything", ""), // no published regex: sent
            ("NG", "DRIVERS_LICENSE", "ABC000000000", ""), // known to neither
        ],
    );
    let rows = read(&path, IdTypes::builtin_shared());
    let got: Vec<Option<(i64, String)>> = rows.iter().map(invalid).collect();
    let want = [
        Some((2, "id_number")),
        Some((3, "id_number")),
        Some((4, "id_number")),
        Some((5, "bank_code")),
        Some((6, "bank_code")),
        None,
        Some((8, "id_type")),
    ];
    let want: Vec<Option<(i64, String)>> = want
        .iter()
        .map(|w| w.map(|(l, f)| (l, f.to_owned())))
        .collect();
    assert_eq!(got, want);
    // With --unknown-id-types allow the unknown type is sent; the known ones still checked.
    let allow = IdTypes::builtin().with_unknown(UnknownIdTypes::Allow);
    let rows = read(&path, &allow);
    assert_eq!(invalid(&rows[6]), None);
    assert_eq!(invalid(&rows[0]), Some((2, "id_number".into())));
}

/// A host whose `/v1/services` answers `body` (the array shape the SDKs read).
async fn services_host(body: Value) -> (String, tokio::task::JoinHandle<()>) {
    let app = Router::new().route(
        "/v1/services",
        get(move || {
            let body = body.clone();
            async move { axum::Json(body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}"), task)
}

fn client(base_url: &str) -> SmileClient {
    SmileClient::new(ClientConfig {
        base_url: base_url.to_owned(),
        connect_timeout: std::time::Duration::from_secs(2),
        request_timeout: std::time::Duration::from_secs(2),
        credentials: Credentials::new("002", ApiKey::new("k").unwrap()).unwrap(),
        extra_roots: Vec::new(),
    })
    .unwrap()
}

#[tokio::test]
async fn the_runner_takes_the_hosts_types_keeps_them_and_falls_back() {
    let dir = tempfile::tempdir().unwrap();
    let manifest_path = dir.path().join("m.csv");
    // A type only the server knows (with the dob it says it needs), and a BVN.
    std::fs::write(
        &manifest_path,
        "country,id_type,id_number,first_name,last_name,dob,user_id\n\
         NG,DRIVERS_LICENSE,ABC000000000,Ada,Obi,1990-01-01,u1\n\
         NG,DRIVERS_LICENSE,ABC000000001,Ada,Obi,,u2\n\
         NG,BVN,12345678901,Ada,Obi,,u3\n",
    )
    .unwrap();
    let body = json!({"id_types": {"NG": {
        "BVN": ["country", "id_type", "id_number", "user_id", "job_id"],
        "DRIVERS_LICENSE": ["country", "id_type", "id_number", "user_id", "job_id",
                            "first_name", "last_name", "dob"],
    }}});
    let (base, host) = services_host(body).await;
    let store = Store::open(&dir.path().join("runs.db")).unwrap();

    // 1. The host answers: its types are used (refuse still accepts DRIVERS_LICENSE),
    //    its required fields checked (the row without dob), and the answer is kept.
    let (rules, source) = services::id_types(&store, &client(&base), UnknownIdTypes::Refuse).await;
    assert_eq!(source, Source::Fresh);
    let rows = read(&manifest_path, &rules);
    assert_eq!(invalid(&rows[0]), None);
    assert_eq!(invalid(&rows[1]), Some((3, "dob".into())));
    assert_eq!(invalid(&rows[2]), None);
    assert!(store.latest_services(&base).unwrap().is_some());

    // 2. The host is down: the kept answer is used, with its age.
    host.abort();
    let _ = host.await;
    let (rules, source) = services::id_types(&store, &client(&base), UnknownIdTypes::Refuse).await;
    assert!(
        matches!(source, Source::Stored { age_ms } if age_ms >= 0),
        "{source:?}"
    );
    assert_eq!(invalid(&read(&manifest_path, &rules)[0]), None);

    // 3. Down and nothing kept for this host: the built-in table, which does not know
    //    DRIVERS_LICENSE (refused by id_type; allowed with --unknown-id-types allow).
    let other = Store::open(&dir.path().join("other.db")).unwrap();
    let (rules, source) = services::id_types(&other, &client(&base), UnknownIdTypes::Refuse).await;
    assert_eq!(source, Source::BuiltIn);
    let rows = read(&manifest_path, &rules);
    assert_eq!(invalid(&rows[0]), Some((2, "id_type".into())));
    assert_eq!(invalid(&rows[2]), None);
    let (rules, _) = services::id_types(&other, &client(&base), UnknownIdTypes::Allow).await;
    assert_eq!(invalid(&read(&manifest_path, &rules)[0]), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_lists_every_type_and_a_run_verifies_one_of_each() {
    let formats = smile_recon::api::id_formats::FORMATS;
    let mix: Mix = "exact=100".parse().unwrap();
    // One person, and one row, per (country, id_type).
    let generated = sandbox::generate(formats.len(), formats.len(), 13, &mix);
    let sb = start_sandbox(&generated, Faults::default(), 13, Vec::new()).await;

    // /v1/services lists every seed-000 type, with bank_code where it is needed.
    let v: Value = common::http()
        .get(format!("{}/v1/services", sb.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for (country, id_type, _, bank) in SEED_000 {
        let t = &v["id_types"][country][id_type];
        assert!(t["test_data"].is_string(), "{country} {id_type}: {t}");
        let fields = t["required_fields"].as_array().unwrap();
        assert_eq!(fields.iter().any(|f| f == "bank_code"), !bank.is_empty());
    }
    assert!(IdTypes::from_services(&v).unwrap().len() >= formats.len());

    // A whole submit run: every row staged (none invalid) and verified 1020.
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("manifest.csv");
    generated.write_manifest_csv(&manifest).unwrap();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, common::KEY).unwrap();
    let batch = Batch {
        db: dir.path().join("runs.db"),
        dir,
        sandbox: sb,
        generated,
        manifest,
        key_file,
    };
    let flags = batch.submit_flags(SubmitEndpoint::Verify);
    let finished = batch.run(batch.request(RunMode::Submit, flags)).await;
    let jobs = batch.jobs(finished.run_id);
    assert_eq!(jobs.len(), formats.len());
    for job in &jobs {
        assert_eq!(job.state, JobState::Done, "{job:?}");
        assert_eq!(outcome_code(job), "1020", "{job:?}");
    }
    for (country, id_type, _, _) in SEED_000 {
        assert!(
            jobs.iter().any(|j| j.country.as_deref() == Some(*country)
                && j.id_type.as_deref() == Some(*id_type)),
            "{country} {id_type} not in the run"
        );
    }
    // The run kept the sandbox's answer.
    let store = Store::open_read_only(&batch.db).unwrap();
    assert!(
        store
            .latest_services(&batch.sandbox.base_url())
            .unwrap()
            .is_some()
    );
}
