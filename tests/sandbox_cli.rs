//! `smile-recon sandbox` as a process: it prints where it listens, makes a demo key when
//! none is given, serves, and stops cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn spawn(args: &[&str], key: Option<&str>) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_smile-recon"));
    cmd.arg("sandbox")
        .args(["--listen", "127.0.0.1:0", "--people", "30"])
        .args(args)
        .env_remove("SMILE_PARTNER_ID")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match key {
        Some(k) => cmd.env("SMILE_API_KEY", k),
        None => cmd.env_remove("SMILE_API_KEY"),
    };
    cmd.spawn().unwrap()
}

/// The first stdout line: `listening on http://127.0.0.1:PORT`.
fn base_url(child: &mut Child) -> String {
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    line.trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned()
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    for _ in 0..100 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    panic!("the sandbox did not stop on SIGTERM");
}

#[tokio::test]
async fn serves_on_a_free_port_signs_with_the_env_key_and_stops_on_sigterm() {
    let mut child = spawn(&["--partner-id", "077"], Some("cli-test-key"));
    let url = base_url(&mut child);
    let creds = smile_recon::api::Credentials::new(
        "077",
        smile_recon::api::ApiKey::new("cli-test-key").unwrap(),
    )
    .unwrap();
    let stamp = creds.stamp_now();
    let body = serde_json::json!({
        "partner_id": "077", "timestamp": stamp.timestamp, "signature": stamp.signature,
        "user_id": "u", "job_id": "j"
    });
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = http
        .post(format!("{url}/v1/job_status"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        404,
        "signed with the env key and partner: 2304, not 2305"
    );
    let status = terminate(&mut child);
    assert!(status.success(), "{status:?}");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(
        !err.contains("cli-test-key"),
        "the key is never echoed: {err}"
    );
    assert!(err.contains("stopping"), "{err}");
}

#[test]
fn without_a_key_it_prints_a_demo_key() {
    let mut child = spawn(&[], None);
    let _url = base_url(&mut child);
    let status = terminate(&mut child);
    assert!(status.success());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("export SMILE_API_KEY=sandbox-demo-"), "{err}");
}

#[test]
fn a_bad_registry_file_is_reported_with_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("people.csv");
    std::fs::write(
        &path,
        "country,id_type,id_number,first_name,middle_name,last_name,dob,gender,phone_number\n\
         NG,BVN,12345678901,Ada,,Obi,1990-01-01,F,\n\
         NG,BVN,123,Ada,,Obi,1990-01-01,F,\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_smile-recon"))
        .args(["sandbox", "--listen", "127.0.0.1:0", "--registry"])
        .arg(&path)
        .env("SMILE_API_KEY", "k")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("people.csv") && err.contains("line 3") && err.contains("field id_number"),
        "{err}"
    );
}

#[tokio::test]
async fn with_tls_it_serves_https_with_the_certificate_it_wrote_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("sandbox.pem");
    let cert_arg = cert.to_str().unwrap();
    let mut child = spawn(&["--tls", "--tls-cert", cert_arg], Some("cli-tls-key"));
    let url = base_url(&mut child);
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    // Written before the address was printed: a script may read it at once.
    let pem = std::fs::read(&cert).unwrap();
    let trusted = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let r = trusted
        .get(format!("{url}/v1/services"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Valid for localhost by name too.
    let port = url.rsplit(':').next().unwrap();
    let r = trusted
        .get(format!("https://localhost:{port}/v1/services"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Without the certificate, the handshake fails: it is not a publicly trusted one.
    let untrusting = reqwest::Client::builder().no_proxy().build().unwrap();
    let e = untrusting
        .get(format!("{url}/v1/services"))
        .send()
        .await
        .unwrap_err();
    assert!(e.is_connect(), "{e:?}");
    // Plain HTTP to the TLS port gets no answer it could mistake for the API's.
    let plain = untrusting
        .get(format!("http://127.0.0.1:{port}/v1/services"))
        .send()
        .await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);
    let status = terminate(&mut child);
    assert!(status.success(), "{status:?}");
}

#[test]
fn tls_cert_without_tls_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_smile-recon"))
        .args(["sandbox", "--listen", "127.0.0.1:0", "--tls-cert", "x.pem"])
        .env("SMILE_API_KEY", "k")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls"));
}
