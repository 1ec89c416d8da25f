//! `validate` on the real binary: a dry run that reads the manifest, counts rows by
//! country and id_type, names invalid rows (line, field) and duplicate job_ids, and says
//! how long the run takes at the rate; no database, nothing sent; exit 0 or 3.

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
    // 200 rows at 0.01/s: 20,000 s, the 200,000-rows-at-10/s case of a night
    let out = smile_recon(
        &["validate", "--manifest", "rows.csv", "--rate", "0.01"],
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
    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(files.len(), 1, "nothing but the manifest: no database");
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
        text.contains("line 203, field job_id: j5 is already used by line 7"),
        "{text}"
    );
    assert!(
        text.contains("rows: 202  valid: 200  invalid: 1  duplicate job_ids: 1"),
        "{text}"
    );
    // at the default rate, 10/s: 200 requests in 20 s
    assert!(text.contains("time at 10 requests/s: 20s"), "{text}");

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
    assert_eq!(v["seconds"], 50.0);
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
