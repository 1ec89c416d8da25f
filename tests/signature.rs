//! Our signatures equal the official Python SDK's (fixture made by
//! scripts/make_signature_vectors.py with smile-id-core 3.0.1).

use smile_recon::api::{ApiKey, Credentials};

#[derive(serde::Deserialize)]
struct Fixture {
    vectors: Vec<Vector>,
}

#[derive(serde::Deserialize)]
struct Vector {
    partner_id: String,
    api_key: String,
    timestamp: String,
    signature: String,
}

fn vectors() -> Vec<Vector> {
    let text = include_str!("fixtures/signature_vectors.json");
    let fixture: Fixture = serde_json::from_str(text).expect("fixture parses");
    assert!(fixture.vectors.len() >= 8, "the fixture lost vectors");
    fixture.vectors
}

#[test]
fn signatures_match_the_python_sdk() {
    for v in vectors() {
        let creds = Credentials::new(&v.partner_id, ApiKey::new(&v.api_key).unwrap()).unwrap();
        assert_eq!(
            creds.sign(&v.timestamp),
            v.signature,
            "partner {} timestamp {}",
            v.partner_id,
            v.timestamp
        );
        assert!(creds.confirm(&v.timestamp, &v.signature));
    }
}

#[test]
fn a_signature_does_not_confirm_for_another_timestamp_or_key() {
    let all = vectors();
    for v in &all {
        let creds = Credentials::new(&v.partner_id, ApiKey::new(&v.api_key).unwrap()).unwrap();
        for other in &all {
            if other.signature != v.signature {
                assert!(!creds.confirm(&v.timestamp, &other.signature));
            }
        }
        let wrong = Credentials::new(&v.partner_id, ApiKey::new("not-the-key").unwrap()).unwrap();
        assert!(!wrong.confirm(&v.timestamp, &v.signature));
    }
}

#[test]
fn the_sign_command_prints_the_sdk_signature() {
    let v = &vectors()[0];
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_smile-recon"))
        .args([
            "sign",
            "--partner-id",
            &v.partner_id,
            "--timestamp",
            &v.timestamp,
        ])
        .env("SMILE_API_KEY", &v.api_key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{}\n", v.signature)
    );
}

#[test]
fn the_sign_command_reads_a_key_file_and_stamps_now() {
    let v = &vectors()[0];
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, format!("{}\n", v.api_key)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_smile-recon"))
        .args(["sign", "--partner-id", &v.partner_id, "--api-key-file"])
        .arg(&key)
        .env_remove("SMILE_API_KEY")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let timestamp = stderr
        .lines()
        .find_map(|l| l.strip_prefix("timestamp: "))
        .expect("timestamp on stderr");
    let creds = Credentials::new(&v.partner_id, ApiKey::new(&v.api_key).unwrap()).unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.trim_end(), creds.sign(timestamp));
    assert!(!stderr.contains(&v.api_key) && !stdout.contains(&v.api_key));
}

#[test]
fn the_sign_command_without_a_key_fails_with_exit_1() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_smile-recon"))
        .args(["sign", "--partner-id", "002", "--timestamp", "t"])
        .env_remove("SMILE_API_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SMILE_API_KEY"));
}
