//! HTTPS end to end: the real binary submits (verify, and verify-async with its built-in
//! callback receiver) and polls against a sandbox serving a self-signed certificate,
//! trusting it with `--ca-cert` (or `[api] ca_cert` in a job spec); without it the run
//! stops with a message about the certificate; a bad CA file is refused by name.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use smile_recon::api::ApiKey;
use smile_recon::sandbox::{self, Generated, Mix, RunningSandbox, SandboxConfig, TlsConfig};
use tempfile::TempDir;

/// Every kind of row that ends final without an error (no badformat rows: those are
/// refused before sending and would make the exit code 3).
const MIX: &str = "exact=60,partial=15,transposed=10,nomatch=10,invalid=5";

struct Tls {
    dir: TempDir,
    sandbox: RunningSandbox,
    manifest: PathBuf,
    cert: PathBuf,
}

/// A TLS sandbox over a generated registry; `rows` verify rows in `manifest.csv` (or, with
/// `poll`, a job_status manifest over jobs the sandbox holds), its certificate in
/// `sandbox.pem`.
async fn setup(rows: usize, seed: u64, poll: bool) -> Tls {
    let dir = tempfile::tempdir().unwrap();
    let mix: Mix = MIX.parse().unwrap();
    let generated: Generated = sandbox::generate(rows.max(50), rows, seed, &mix);
    let manifest = dir.path().join("manifest.csv");
    let mut config = SandboxConfig::new(
        common::PARTNER.into(),
        ApiKey::new(common::KEY).unwrap(),
        generated.registry.clone(),
    );
    config.callback_delay = Duration::from_millis(20);
    config.seed = seed;
    if poll {
        generated.write_poll_manifest_csv(&manifest).unwrap();
        config.preload = generated.preloaded_jobs(Duration::from_millis(300));
    } else {
        generated.write_manifest_csv(&manifest).unwrap();
    }
    config.tls = Some(TlsConfig::self_signed().unwrap());
    let sandbox = sandbox::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let cert = dir.path().join("sandbox.pem");
    std::fs::write(&cert, sandbox.certificate_pem().unwrap()).unwrap();
    Tls {
        dir,
        sandbox,
        manifest,
        cert,
    }
}

fn smile_recon(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smile-recon"))
        .args(args)
        .current_dir(cwd)
        .env("SMILE_API_KEY", common::KEY)
        .env("SMILE_PARTNER_ID", common::PARTNER)
        .env_remove("SMILE_RECON_LOG")
        // Nothing on this machine may stand between the client and loopback.
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("SSL_CERT_FILE")
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

impl Tls {
    fn path(&self, p: &Path) -> String {
        p.to_str().unwrap().to_owned()
    }

    /// `submit`/`poll` against the sandbox over HTTPS, with `extra` flags.
    fn run(&self, command: &str, extra: &[&str]) -> Output {
        let url = self.sandbox.base_url();
        let manifest = self.path(&self.manifest);
        let mut args = vec![
            command,
            "--manifest",
            &manifest,
            "--base-url",
            &url,
            "--db",
            "runs.db",
            "--rate",
            "0",
            "--quiet",
        ];
        args.extend_from_slice(extra);
        smile_recon(&args, self.dir.path())
    }

    fn accepted(&self) -> u64 {
        self.sandbox.stats().accepted_submissions
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_submit_over_https_with_ca_cert_finishes_every_job() {
    let t = setup(40, 61, false).await;
    assert!(t.sandbox.base_url().starts_with("https://127.0.0.1:"));
    let cert = t.path(&t.cert);
    let out = t.run("submit", &["--endpoint", "verify", "--ca-cert", &cert]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("40"), "{}", text(&out));
    // Each row reached the server once (invalid ID numbers included: 1013 is a result).
    assert_eq!(t.accepted(), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_submit_over_https_gets_its_callbacks_and_finishes() {
    let t = setup(30, 62, false).await;
    let cert = t.path(&t.cert);
    let out = t.run(
        "submit",
        &[
            "--endpoint",
            "verify-async",
            "--callback-listen",
            "127.0.0.1:0",
            // Long enough that no job is polled before its callback comes, even on a
            // loaded machine (with 5 s, one CI run finished a job by job_status first
            // and its callback then met a stopped receiver: 29 of 30 delivered).
            "--callback-grace",
            "30",
            "--ca-cert",
            &cert,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(t.accepted(), 30);
    let stats = t.sandbox.stats();
    assert_eq!(stats.callbacks_delivered, 30, "{stats:?}\n{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_over_https_from_a_job_spec_with_a_relative_ca_cert() {
    let t = setup(30, 63, true).await;
    // The spec sits in a folder of its own; its ca_cert is relative to that folder.
    let jobs = t.dir.path().join("jobs");
    std::fs::create_dir(&jobs).unwrap();
    std::fs::write(
        jobs.join("nightly.toml"),
        format!(
            "mode = \"poll\"\n\
             [manifest]\npath = \"../manifest.csv\"\n\
             [api]\nbase_url = \"{}\"\nca_cert = \"../sandbox.pem\"\n\
             [limits]\nrate = 0\n\
             [poll]\ninterval = 0.2\ndeadline = 30\n",
            t.sandbox.base_url()
        ),
    )
    .unwrap();
    let out = smile_recon(
        &["run", "jobs/nightly.toml", "--db", "runs.db", "--quiet"],
        t.dir.path(),
    );
    // Exit 0: every job final and each agrees with the manifest's expectations.
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let polls = t.sandbox.stats().requests("/v1/job_status", 200);
    assert!(polls >= 30, "{polls} job_status answers for 30 jobs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_ca_cert_the_run_stops_and_says_the_certificate_is_not_trusted() {
    let t = setup(20, 64, false).await;
    let out = t.run("submit", &["--endpoint", "verify", "--max-attempts", "2"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("certificate"), "{said}");
    assert!(said.contains("--ca-cert"), "{said}");
    assert_eq!(t.accepted(), 0, "nothing got through");
    assert!(!said.contains(common::KEY), "the key was printed");

    // The jobs were left pending: resuming with the certificate finishes them.
    let cert = t.path(&t.cert);
    let out = smile_recon(
        &[
            "resume",
            "--db",
            "runs.db",
            "--ca-cert",
            &cert,
            "--rate",
            "0",
            "--quiet",
        ],
        t.dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(t.accepted(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_ca_cert_file_is_refused_with_its_path() {
    let t = setup(5, 65, false).await;
    let missing = t.dir.path().join("no-such.pem");
    let out = t.run(
        "submit",
        &["--endpoint", "verify", "--ca-cert", &t.path(&missing)],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains(&format!("{}: no such file", missing.display())),
        "{said}"
    );

    let key_only = t.dir.path().join("key-only.pem");
    std::fs::write(
        &key_only,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let out = t.run(
        "submit",
        &["--endpoint", "verify", "--ca-cert", &t.path(&key_only)],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains(&format!("{}: no certificate in it", key_only.display())),
        "{said}"
    );
    assert_eq!(t.accepted(), 0, "nothing is sent with a bad CA file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_sandbox_shuts_down_promptly_with_a_kept_alive_connection() {
    let t = setup(5, 66, false).await;
    let pem = std::fs::read(&t.cert).unwrap();
    let client = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let url = format!("{}/v1/services", t.sandbox.base_url());
    assert_eq!(client.get(&url).send().await.unwrap().status(), 200);
    let started = std::time::Instant::now();
    t.sandbox.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "shutdown took {:?}",
        started.elapsed()
    );
    assert!(client.get(&url).send().await.is_err(), "still serving");
}
