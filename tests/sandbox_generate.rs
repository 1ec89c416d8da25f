//! `sandbox generate`: 1,000 rows of a mixed `--mix`, each submitted to a sandbox that loads
//! the generated registry, must get exactly its `expected_result_code`; a poll manifest
//! must read back its expectations through job_status.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use smile_recon::api::ApiKey;
use smile_recon::sandbox::generate::{GeneratedRow, read_rows_csv};
use smile_recon::sandbox::{Mix, Registry, SandboxConfig};

const MIX: &str = "exact=40,partial=15,transposed=10,nomatch=20,invalid=10,badformat=5";

fn body(r: &GeneratedRow) -> Value {
    let mut v = json!({
        "country": r.country, "id_type": r.id_type, "id_number": r.id_number,
        "first_name": r.first_name, "last_name": r.last_name,
        "partner_params": {"user_id": r.user_id, "job_id": r.job_id, "job_type": 5}
    });
    // Empty optional columns are simply not sent, as a client sends them.
    for (k, val) in [
        ("middle_name", &r.middle_name),
        ("dob", &r.dob),
        ("gender", &r.gender),
        ("phone_number", &r.phone_number),
        ("bank_code", &r.bank_code),
    ] {
        if !val.is_empty() {
            v[k] = json!(val);
        }
    }
    signed(v)
}

fn generate_with_cli(dir: &Path, extra: &[&str]) -> (std::path::PathBuf, std::path::PathBuf) {
    let registry = dir.join("people.csv");
    let manifest = dir.join("rows.csv");
    let out = Command::new(env!("CARGO_BIN_EXE_smile-recon"))
        .args(["sandbox", "generate", "--people", "1000", "--rows", "1000"])
        .args(["--seed", "20261122", "--mix", MIX])
        .arg("--registry")
        .arg(&registry)
        .arg("--manifest")
        .arg(&manifest)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (registry, manifest)
}

#[tokio::test]
async fn a_thousand_generated_rows_each_get_their_expected_result_code() {
    let dir = tempfile::tempdir().unwrap();
    let (registry_csv, manifest_csv) = generate_with_cli(dir.path(), &[]);
    let rows = read_rows_csv(&manifest_csv).unwrap();
    assert_eq!(rows.len(), 1000);
    let mut wanted = BTreeMap::<String, usize>::new();
    for r in &rows {
        *wanted.entry(r.expected_result_code.clone()).or_default() += 1;
    }
    // The mix's weights, row for row: 400 / 150+100 / 200 / 100 / 50.
    let expected: BTreeMap<String, usize> = [
        ("1013", 100),
        ("1014", 50),
        ("1020", 400),
        ("1021", 250),
        ("1022", 200),
    ]
    .into_iter()
    .map(|(c, n)| (c.to_owned(), n))
    .collect();
    assert_eq!(wanted, expected);

    // The sandbox knows only what the CSV says.
    let registry = Registry::from_csv(&registry_csv).unwrap();
    let sb = start(SandboxConfig::new(
        PARTNER.into(),
        ApiKey::new(KEY).unwrap(),
        registry,
    ))
    .await;
    let sb = Arc::new(sb);
    let rows = Arc::new(rows);
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let (sb, rows) = (sb.clone(), rows.clone());
        tasks.push(tokio::spawn(async move {
            let mut wrong = Vec::new();
            for r in rows.iter().skip(worker).step_by(8) {
                let a = post(&sb, "/v2/verify", &body(r)).await;
                let got = a.json()["ResultCode"].as_str().unwrap_or("none").to_owned();
                if got != r.expected_result_code || !a.confirms() {
                    wrong.push(format!(
                        "{} expected {} got {}: {}",
                        r.job_id, r.expected_result_code, got, a.text
                    ));
                }
            }
            wrong
        }));
    }
    let mut wrong = Vec::new();
    for t in tasks {
        wrong.extend(t.await.unwrap());
    }
    assert!(
        wrong.is_empty(),
        "{} rows wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    let stats = sb.stats();
    for (code, n) in &expected {
        assert_eq!(stats.results(code), *n as u64, "{code}");
    }
    assert_eq!(
        stats.accepted_submissions, 950,
        "every row but the 1014s left a job"
    );
}

#[tokio::test]
async fn a_poll_manifest_reads_back_through_job_status() {
    let dir = tempfile::tempdir().unwrap();
    let (registry_csv, manifest_csv) = generate_with_cli(dir.path(), &["--poll"]);
    let text = std::fs::read_to_string(&manifest_csv).unwrap();
    assert!(text.starts_with("user_id,job_id,expected_result_code,expected_status\n"));
    let jobs = read_rows_csv(&dir.path().join("rows.jobs.csv")).unwrap();
    assert_eq!(jobs.len(), 1000);

    let mut config = SandboxConfig::new(
        PARTNER.into(),
        ApiKey::new(KEY).unwrap(),
        Registry::from_csv(&registry_csv).unwrap(),
    );
    config.preload = smile_recon::sandbox::generate::preload(&jobs, Duration::ZERO);
    let sb = start(config).await;
    let mut reader = csv::Reader::from_path(&manifest_csv).unwrap();
    let mut checked = 0;
    for rec in reader.records() {
        let rec = rec.unwrap();
        let (user, job, code, status) = (&rec[0], &rec[1], &rec[2], &rec[3]);
        let a = post(&sb, "/v1/job_status", &status_body(user, job)).await;
        assert!(a.confirms());
        let v = a.json();
        assert_eq!(v["job_complete"], true, "{job}");
        assert_eq!(v["result"]["ResultCode"], code, "{job}");
        let approved = v["job_success"] == true;
        assert_eq!(approved, status == "approved", "{job}: {status} vs {v}");
        checked += 1;
    }
    assert_eq!(checked, 1000);
    sb.shutdown().await;
}

#[test]
fn generate_refuses_a_bad_mix() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_smile-recon"))
        .args(["sandbox", "generate", "--mix", "exact=1,weird=2"])
        .arg("--registry")
        .arg(dir.path().join("r.csv"))
        .arg("--manifest")
        .arg(dir.path().join("m.csv"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("weird"));
    assert!("exact=1,weird=2".parse::<Mix>().is_err());
}
