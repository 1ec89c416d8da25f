//! `validate` on the real binary: a dry run that reads the manifest, counts rows by
//! country and id_type, names invalid rows (line, field) and duplicate job_ids, and says
//! how long the run takes at the rate; no database, nothing sent; exit 0 or 3.

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn smile_recon(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smile-recon"))
        .args(args)
        .current_dir(cwd)
        .env_remove("SMILE_API_KEY")
        .env_remove("SMILE_RECON_LOG")
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const HEADER: &str = "country,id_type,id_number,first_name,middle_name,last_name,dob,gender,\
                      phone_number,user_id,job_id\n";

/// 200 rows: 120 NG BVN and 80 KE NATIONAL_ID, then `extra` lines.
fn manifest(dir: &Path, extra: &str) -> std::path::PathBuf {
    let mut text = HEADER.to_owned();
    for i in 0..200 {
        if i % 5 < 3 {
            text.push_str(&format!(
                "NG,BVN,{:011},Ada,,Obi,1990-01-31,F,,u{i},j{i}\n",
                10_000_000_000u64 + i
            ));
        } else {
            text.push_str(&format!(
                "KE,NATIONAL_ID,{:08},Wanjiru,,Kamau,1985-12-01,F,,u{i},j{i}\n",
                10_000_000 + i
            ));
        }
    }
    text.push_str(extra);
    let path = dir.join("rows.csv");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_clean_manifest_is_counted_and_timed_without_a_database() {
    let dir = tempfile::tempdir().unwrap();
    manifest(dir.path(), "");
    // 200 rows sent by verify-async with confirmed callbacks: 400 requests; at 0.02/s
    // 20,000 s, the 200,000-rows-at-20/s case of a night
    let out = smile_recon(
        &["validate", "--manifest", "rows.csv", "--rate", "0.02"],
        dir.path(),
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("rows: 200  valid: 200  invalid: 0"), "{text}");
    assert!(text.contains("built-in table"), "{text}");
    let ng = text.lines().find(|l| l.contains("BVN")).unwrap();
    assert!(
        ng.trim().starts_with("NG") && ng.trim().ends_with("120"),
        "{text}"
    );
    let ke = text.lines().find(|l| l.contains("NATIONAL_ID")).unwrap();
    assert!(ke.trim().ends_with("80"), "{text}");
    assert!(text.contains("5h 33m (5.6 hours)"), "{text}");
    assert!(
        text.contains("for 400 requests (at least: two per row sent"),
        "{text}"
    );
    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(files.len(), 1, "nothing but the manifest: no database");
}

/// A manifest with a header and no rows (a failed export) does not pass: a run refuses it.
#[test]
fn a_manifest_without_rows_is_not_clean() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rows.csv"), HEADER).unwrap();
    let out = smile_recon(&["validate", "--manifest", "rows.csv"], dir.path());
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.contains("no rows: a run of this manifest is refused"),
        "{text}"
    );
}

#[test]
fn invalid_rows_and_duplicate_job_ids_exit_3_with_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    manifest(
        dir.path(),
        "NG,BVN,10000000999,Ada,,Obi,1990-02-30,F,,u900,j900\n\
         KE,NATIONAL_ID,10000005,Wanjiru,,Kamau,1985-12-01,F,,u901,j5\n",
    );
    let out = smile_recon(&["validate", "--manifest", "rows.csv"], dir.path());
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains("line 202, field dob"), "{text}");
    assert!(
        text.contains("line 203, field job_id: \"j5\" is already used on line 7"),
        "{text}"
    );
    assert!(
        text.contains("rows: 202  valid: 200  invalid: 1  duplicate job_ids: 1"),
        "{text}"
    );
    // at the default rate, 10/s: 200 rows, a submission and a confirmation each, in 40 s
    assert!(text.contains("time at 10 requests/s: 40s"), "{text}");

    let json = smile_recon(
        &[
            "validate",
            "--manifest",
            "rows.csv",
            "--json",
            "--rate",
            "4",
        ],
        dir.path(),
    );
    assert_eq!(json.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["invalid_rows"][0]["line"], 202);
    assert_eq!(v["invalid_rows"][0]["field"], "dob");
    assert_eq!(v["duplicates"][0]["first_line"], 7);
    assert_eq!(v["valid"], 200);
    assert_eq!(v["seconds"], 100.0);
    assert_eq!(v["requests_per_row"], 2);
    assert_eq!(v["by_country_and_id_type"][0]["country"], "KE");
    assert_eq!(v["by_country_and_id_type"][0]["rows"], 80);
}

#[test]
fn a_job_spec_gives_mode_manifest_and_rate_and_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("jobs.csv"),
        "user_id,job_id,expected_status\nu1,j1,approved\nu2,j2,maybe\nu3,j3,\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("nightly.toml"),
        "mode = \"poll\"\n[manifest]\npath = \"jobs.csv\"\n[limits]\nrate = 0.5\n",
    )
    .unwrap();
    let out = smile_recon(&["validate", "nightly.toml", "--json"], dir.path());
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["mode"], "poll");
    assert_eq!(v["rows"], 3);
    assert_eq!(v["invalid_rows"][0]["line"], 3);
    assert_eq!(v["invalid_rows"][0]["field"], "expected_status");
    assert_eq!(v["seconds"], 4.0, "2 rows at the spec's 0.5/s");
    assert_eq!(
        v["requests_per_row"], 1,
        "a poll row is one job_status call at least"
    );
    let faster = smile_recon(
        &["validate", "nightly.toml", "--json", "--rate", "2"],
        dir.path(),
    );
    let v: serde_json::Value = serde_json::from_slice(&faster.stdout).unwrap();
    assert_eq!(v["seconds"], 1.0);
    // a spec and --manifest together is a usage error; so is a negative rate
    let both = smile_recon(
        &["validate", "nightly.toml", "--manifest", "jobs.csv"],
        dir.path(),
    );
    assert_eq!(both.status.code(), Some(2));
    let negative = smile_recon(&["validate", "nightly.toml", "--rate", "-1"], dir.path());
    assert_eq!(negative.status.code(), Some(2));
}

/// Every manifest of the bad-manifest corpus: `validate` names the same invalid rows, with
/// the same words, as a `submit` run of the file stores, and the same whole-file error
/// when the file cannot be read at all; it sends nothing and always states a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bad_manifest_corpus_reads_as_a_run_reads_it() {
    let b = common::batch::setup(5, 44, smile_recon::sandbox::Faults::default(), None).await;
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/manifests");
    let mut files: Vec<_> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            !name.starts_with("poll_") && name.ends_with(".csv")
        })
        .collect();
    files.sort();
    assert!(files.len() > 20, "{files:?}");
    let mut compared_rows = 0;
    for (i, file) in files.iter().enumerate() {
        let before = b.sandbox.stats().total_requests;
        let checked = smile_recon(
            &["validate", "--manifest", file.to_str().unwrap(), "--json"],
            b.dir.path(),
        );
        assert_eq!(
            b.sandbox.stats().total_requests,
            before,
            "validate sent something"
        );
        let db = b.dir.path().join(format!("corpus-{i}.db"));
        let run = Command::new(env!("CARGO_BIN_EXE_smile-recon"))
            .args(["submit", "--manifest", file.to_str().unwrap()])
            .args([
                "--endpoint",
                "verify",
                "--rate",
                "0",
                "--quiet",
                "--allow-empty",
            ])
            .args(["--db", db.to_str().unwrap()])
            .args(["--base-url", &b.sandbox.base_url()])
            .env("SMILE_API_KEY", common::KEY)
            .env("SMILE_PARTNER_ID", common::PARTNER)
            .output()
            .unwrap();
        let run_said = String::from_utf8_lossy(&run.stderr).into_owned();
        if checked.status.code() != Some(0) && checked.status.code() != Some(3) {
            // A file that cannot be read: the run refuses it with the same message.
            let said = String::from_utf8_lossy(&checked.stderr).into_owned();
            let message = said.trim().trim_start_matches("smile-recon: ").to_owned();
            assert!(!message.is_empty(), "{file:?}");
            assert!(
                run_said.contains(&message),
                "{file:?}: {said} vs {run_said}"
            );
            assert_eq!(checked.status.code(), run.status.code(), "{file:?}");
            continue;
        }
        let report: serde_json::Value = serde_json::from_slice(&checked.stdout).unwrap();
        assert!(report["seconds"].is_number(), "{file:?}: no time stated");
        let mut said: Vec<String> = report["invalid_rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let (field, reason) = (r["field"].as_str(), r["reason"].as_str());
                format!(
                    "line {}, field {}: {}",
                    r["line"],
                    field.unwrap(),
                    reason.unwrap()
                )
            })
            .collect();
        said.extend(report["duplicates"].as_array().unwrap().iter().map(|d| {
            let job_id = d["job_id"].as_str().unwrap();
            format!(
                "line {}, field job_id: {job_id:?} is already used on line {}",
                d["line"], d["first_line"]
            )
        }));
        let store = smile_recon::store::Store::open_read_only(&db).unwrap();
        let run_id = store.latest_run(false).unwrap().map(|r| r.id);
        let mut stored = Vec::new();
        if let Some(run_id) = run_id {
            store
                .for_each_job(run_id, |job| {
                    if job.state == smile_recon::store::JobState::Invalid {
                        stored.push(job.last_error.clone().unwrap_or_default());
                    }
                    Ok(())
                })
                .unwrap();
        }
        let (mut said, mut stored) = (said, stored);
        said.sort();
        stored.sort();
        assert_eq!(said, stored, "{file:?}: {run_said}");
        compared_rows += said.len();
    }
    assert!(
        compared_rows > 10,
        "only {compared_rows} invalid rows compared"
    );
}
