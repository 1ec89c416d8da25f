//! The real binary on `run`, `resume` and `runs`: a job spec that stops (wrong key) is
//! resumed by running it again; logs carry no escape codes off a terminal and never the
//! key; usage errors exit 2.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::batch;
use smile_recon::sandbox::Faults;

fn smile_recon(args: &[&str], key: &str, cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smile-recon"))
        .args(args)
        .current_dir(cwd)
        .env("SMILE_API_KEY", key)
        .env("SMILE_PARTNER_ID", common::PARTNER)
        .env_remove("SMILE_RECON_LOG")
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfinished_spec_resumes_when_run_again() {
    let b = batch::setup(60, 41, Faults::default(), None).await;
    let spec = b.dir.path().join("nightly.toml");
    std::fs::write(
        &spec,
        format!(
            "mode = \"submit\"\n\
             [manifest]\npath = \"manifest.csv\"\n\
             [api]\nbase_url = \"{}\"\n\
             [limits]\nrate = 0\nconcurrency = 8\n\
             [submit]\nendpoint = \"verify-async\"\ncallback_listen = \"127.0.0.1:0\"\n\
             callback_grace = 1\n",
            b.sandbox.base_url()
        ),
    )
    .unwrap();
    let dir = b.dir.path();

    let wrong = smile_recon(
        &[
            "run",
            "nightly.toml",
            "--db",
            "runs.db",
            "--log-format",
            "json",
        ],
        "wrong-key-1234",
        dir,
    );
    assert_eq!(wrong.status.code(), Some(1), "{}", text(&wrong));
    assert!(text(&wrong).contains("2205"), "{}", text(&wrong));

    let right = smile_recon(
        &["run", "nightly.toml", "--db", "runs.db"],
        common::KEY,
        dir,
    );
    // Rows refused before sending (ID number format) are errors: exit 3.
    assert_eq!(right.status.code(), Some(3), "{}", text(&right));
    let out = text(&right);
    assert!(out.contains("resuming run"), "{out}");
    assert!(
        !out.contains('\x1b'),
        "escape codes off a terminal: {out:?}"
    );
    assert!(!out.contains(common::KEY), "the key was printed");
    assert!(
        !text(&wrong).contains("wrong-key-1234"),
        "the key was printed"
    );

    let runs = smile_recon(&["runs", "--db", "runs.db"], common::KEY, dir);
    assert_eq!(runs.status.code(), Some(0));
    let listing = String::from_utf8_lossy(&runs.stdout).into_owned();
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 2, "one run, resumed, not two: {listing}");
    assert!(
        lines[1].contains("finished") && lines[1].contains("nightly"),
        "{listing}"
    );
    batch::assert_matches_manifest(&b, 1);

    // Finished: running the spec again starts a new run.
    let again = smile_recon(
        &["run", "nightly.toml", "--db", "runs.db", "--quiet"],
        common::KEY,
        dir,
    );
    assert_eq!(again.status.code(), Some(3), "{}", text(&again));
    let runs = smile_recon(&["runs", "--db", "runs.db"], common::KEY, dir);
    assert_eq!(String::from_utf8_lossy(&runs.stdout).lines().count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_submit_without_a_callback_is_a_usage_error() {
    let b = batch::setup(5, 42, Faults::default(), None).await;
    let out = smile_recon(
        &[
            "submit",
            "--manifest",
            b.manifest.to_str().unwrap(),
            "--base-url",
            &b.sandbox.base_url(),
        ],
        common::KEY,
        b.dir.path(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--callback-listen"), "{}", text(&out));
    assert_eq!(b.sandbox.stats().total_requests, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_manifest_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = smile_recon(
        &[
            "poll",
            "--manifest",
            "nope.csv",
            "--base-url",
            "http://127.0.0.1:9",
        ],
        common::KEY,
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("nope.csv"), "{}", text(&out));
}
