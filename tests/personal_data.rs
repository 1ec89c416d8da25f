//! Personal data minimised: after a finished run the database file (and its WAL, if any)
//! holds none of the manifest's ID numbers, names or dates of birth, nor the answers'
//! record of the person, unless the run kept them (`--keep-pii`); reports and drift still
//! work on what is left.

mod common;

use std::path::Path;
use std::time::Duration;

use common::batch::{self, Batch};
use smile_recon::api::SubmitEndpoint;
use smile_recon::job_spec::RunMode;
use smile_recon::report::{self, Format, ReportOptions};
use smile_recon::runner::Layer;
use smile_recon::sandbox::Faults;
use smile_recon::store::{Answer, JobState, Store};

/// The database's bytes, its WAL's appended when there is one.
fn database_bytes(db: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(db).unwrap();
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    if let Ok(more) = std::fs::read(&wal) {
        bytes.extend(more);
    }
    // Answers are stored compressed: their text is searched too.
    let conn = rusqlite::Connection::open(db).unwrap();
    let answers = conn
        .prepare("SELECT result_json FROM jobs WHERE result_json IS NOT NULL")
        .unwrap()
        .query_map([], |r| r.get::<_, Answer>(0))
        .unwrap()
        .map(|a| a.unwrap().0)
        .collect::<Vec<_>>();
    assert!(!answers.is_empty(), "no answer stored in {}", db.display());
    for answer in answers {
        bytes.extend(answer.into_bytes());
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Every ID number, name (five characters or more: a shorter one may occur by chance) and
/// date of birth of the manifest that the database still holds.
/// The published sample numbers (`/v1/services`' `test_data`, kept in the services
/// cache) are not the manifest's data, even where the sandbox's rows use them.
fn personal_data_found(b: &Batch) -> Vec<String> {
    let bytes = database_bytes(&b.db);
    let conn = rusqlite::Connection::open(&b.db).unwrap();
    let samples: Vec<String> = conn
        .prepare("SELECT body FROM services_cache")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    let mut found = Vec::new();
    for row in &b.generated.rows {
        if samples
            .iter()
            .any(|s| s.contains(&format!("\"{}\"", row.id_number)))
        {
            continue;
        }
        let names = [&row.first_name, &row.middle_name, &row.last_name];
        let values = [&row.id_number, &row.dob]
            .into_iter()
            .chain(names.into_iter().filter(|n| n.chars().count() >= 5));
        for value in values {
            if !value.is_empty() && contains(&bytes, value) {
                found.push(value.clone());
            }
        }
    }
    found
}

fn write_reports(b: &Batch, run_id: i64, out: &Path, show_pii: bool) -> serde_json::Value {
    let store = Store::open_read_only(&b.db).unwrap();
    report::write(
        &store,
        run_id,
        &ReportOptions {
            formats: vec![Format::Json, Format::Csv],
            out: out.to_owned(),
            show_pii,
            compare: None,
        },
    )
    .unwrap();
    serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_run_keeps_no_personal_data_unless_asked() {
    // Enhanced KYC: the answers carry the authority's record (FullName, DOB, IDNumber).
    let b = batch::setup(120, 61, Faults::default(), None).await;
    let finished = b
        .run(b.request(
            RunMode::Submit,
            b.submit_flags(SubmitEndpoint::IdVerification),
        ))
        .await;
    batch::assert_matches_manifest_enhanced_kyc(&b, finished.run_id);
    let found = personal_data_found(&b);
    assert!(found.is_empty(), "still in the database: {found:?}");

    // Reports work on what is left: the masked number, placed by country and id_type.
    let out = b.dir.path().join("reports");
    let summary = write_reports(&b, finished.run_id, &out, true);
    assert_eq!(summary["totals"]["jobs"], 120, "{}", summary["totals"]);
    let results = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let first = &b.generated.rows[0];
    let tail: String = first
        .id_number
        .chars()
        .skip(first.id_number.chars().count() - 4)
        .collect();
    assert!(results.contains(&format!("*{tail},")), "{results}");
    assert!(!results.contains(first.id_number.as_str()));

    // The same run kept: everything is there (the check above can fail).
    let kept = batch::setup(120, 61, Faults::default(), None).await;
    let flags = Layer {
        keep_pii: Some(true),
        ..kept.submit_flags(SubmitEndpoint::IdVerification)
    };
    kept.run(kept.request(RunMode::Submit, flags)).await;
    let found = personal_data_found(&kept);
    assert!(
        found.len() > 120,
        "a run with --keep-pii kept only {}",
        found.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_still_matches_minimised_runs() {
    let b = batch::setup(80, 62, Faults::default(), Some(Duration::ZERO)).await;
    let first = b.run(b.request(RunMode::Poll, b.flags())).await;
    // The same manifest again is a deliberate new run of its identity.
    let mut again = b.request(RunMode::Poll, b.flags());
    again.again = true;
    let second = b.run(again).await;
    assert_ne!(first.run_id, second.run_id);
    let summary = write_reports(&b, second.run_id, &b.dir.path().join("drift"), false);
    assert_eq!(
        summary["drift"]["compared_with_run"].as_i64(),
        Some(first.run_id)
    );
    assert_eq!(summary["drift"]["matched"], 80, "{}", summary["drift"]);
    assert_eq!(summary["drift"]["changed"], 0, "{}", summary["drift"]);
}

/// A submit run's failed jobs lose their input too: `retry` refuses them (exit 2), saying
/// why and what to do, and puts nothing back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_refuses_submit_jobs_whose_data_was_removed() {
    let faults = Faults {
        fail_rate: 0.6,
        ..Faults::default()
    };
    let b = batch::setup(40, 63, faults, None).await;
    let url = b.sandbox.base_url();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_smile-recon"))
            .args(args)
            .current_dir(b.dir.path())
            .env("SMILE_PARTNER_ID", common::PARTNER)
            .env("SMILE_API_KEY", common::KEY)
            .output()
            .unwrap()
    };
    let first = run(&[
        "submit",
        "--manifest",
        "manifest.csv",
        "--endpoint",
        "verify",
        "--base-url",
        &url,
        "--rate",
        "0",
        "--max-attempts",
        "1",
        "--db",
        "runs.db",
        "--quiet",
    ]);
    assert_eq!(first.status.code(), Some(3));
    let failed_before = b
        .jobs(1)
        .iter()
        .filter(|j| matches!(j.state, JobState::Failed | JobState::GaveUp))
        .count();
    assert!(failed_before > 0);
    let retry = run(&[
        "retry",
        "--run",
        "1",
        "--base-url",
        &url,
        "--db",
        "runs.db",
        "--quiet",
    ]);
    let stderr = String::from_utf8_lossy(&retry.stderr);
    assert_eq!(retry.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--keep-pii"), "{stderr}");
    let failed_after = b
        .jobs(1)
        .iter()
        .filter(|j| matches!(j.state, JobState::Failed | JobState::GaveUp))
        .count();
    assert_eq!(failed_after, failed_before, "a refused retry put jobs back");
}
