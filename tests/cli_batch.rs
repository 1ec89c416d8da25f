//! The real binary on `run`, `resume` and `runs`: a job spec that stops (wrong key) is
//! resumed by running it again; logs carry no escape codes off a terminal and never the
//! key; usage errors exit 2.

mod common;

use common::cli::{smile_recon, text};

use std::path::Path;
use std::process::Command;

use common::batch;
use smile_recon::sandbox::Faults;

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
             callback_grace = 1\n\
             [report]\nout = \"reports\"\nformats = [\"json\", \"md\"]\n",
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

    // The spec's [report] section: written next to the spec, only the formats it names.
    assert!(dir.join("reports/summary.json").is_file(), "{out}");
    assert!(dir.join("reports/summary.md").is_file());
    assert!(!dir.join("reports/report.html").exists());
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

    // Finished: running the spec again is refused (it would send every row again)...
    let refused = smile_recon(
        &["run", "nightly.toml", "--db", "runs.db", "--quiet"],
        common::KEY,
        dir,
    );
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(text(&refused).contains("--again"), "{}", text(&refused));
    // ... and --again starts a new run.
    let again = smile_recon(
        &[
            "run",
            "nightly.toml",
            "--db",
            "runs.db",
            "--quiet",
            "--again",
        ],
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

/// Every file of the bad-manifest corpus through the real binary: the documented exit
/// code, a message naming the file (and line and field for bad rows), never a panic, and
/// the valid rows of a partly bad file sent and finished.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bad_manifest_corpus_exits_as_documented() {
    let b = batch::setup(10, 43, Faults::default(), None).await;
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/manifests");
    // exit 1: the file itself is unusable; 3: some rows invalid; 0: every row fine.
    let whole_file = [
        "empty.csv",
        "no_header.csv",
        "duplicate_header.csv",
        // No rows: a failed export, exit 1 unless --allow-empty.
        "header_only.csv",
        "missing_column.csv",
        "invalid_utf8_header.csv",
        "poll_missing_job_id_column.csv",
    ];
    let all_good = [
        "good_verify.csv",
        "bom.csv",
        "crlf.csv",
        "crlf_quoted.csv",
        "extra_columns.csv",
        "blank_lines.csv",
        "crlf_blank_lines.csv",
        "bom_quoted_header.csv",
        "header_case_spaces.csv",
    ];
    let mut names: Vec<String> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("poll_"))
        .collect();
    names.sort();
    assert!(names.len() >= 20, "{names:?}");
    for name in &names {
        let db = b.dir.path().join(format!("{name}.db"));
        let out = smile_recon(
            &[
                "submit",
                "--manifest",
                corpus.join(name).to_str().unwrap(),
                "--endpoint",
                "verify",
                "--base-url",
                &b.sandbox.base_url(),
                "--rate",
                "0",
                "--db",
                db.to_str().unwrap(),
                "--report",
                b.dir
                    .path()
                    .join(format!("{name}.reports"))
                    .to_str()
                    .unwrap(),
            ],
            common::KEY,
            b.dir.path(),
        );
        let all = text(&out);
        assert!(!all.contains("panicked"), "{name}: {all}");
        let want = if whole_file.contains(&name.as_str()) {
            1
        } else if all_good.contains(&name.as_str()) {
            0
        } else {
            3
        };
        assert_eq!(out.status.code(), Some(want), "{name}: {all}");
        if want == 1 {
            assert!(
                all.contains(name.as_str()),
                "{name}: the message names the file: {all}"
            );
            continue;
        }
        if want == 3 {
            // The invalid rows' reasons name line and field in results.csv.
            let results = std::fs::read_to_string(
                b.dir
                    .path()
                    .join(format!("{name}.reports"))
                    .join("results.csv"),
            )
            .unwrap();
            assert!(
                results.lines().any(|l| l.contains(",invalid,")
                    && l.contains("line ")
                    && l.contains("field ")),
                "{name}: {results}"
            );
        }
    }
    // duplicate_job_id.csv: the second use of j1 is refused, naming the first line; the
    // other rows were sent and finished.
    let store =
        smile_recon::store::Store::open_read_only(&b.dir.path().join("duplicate_job_id.csv.db"))
            .unwrap();
    let mut states = Vec::new();
    store
        .for_each_job(1, |j| {
            states.push((j.line, j.state.as_str().to_owned(), j.last_error.clone()));
            Ok(())
        })
        .unwrap();
    assert_eq!(states[0].1, "done");
    assert_eq!(states[1].1, "invalid");
    assert!(
        states[1].2.as_deref().unwrap_or("").contains("line 2"),
        "{states:?}"
    );
    assert_eq!(states[2].1, "done");
}

/// SIGTERM: dispatching stops, in-flight requests finish within the grace, the state is
/// flushed, exit 130; `resume` then finishes the run with nothing sent twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_cleanly_with_130_and_the_run_resumes() {
    let faults = Faults {
        latency: std::time::Duration::from_millis(100),
        ..Faults::default()
    };
    let b = batch::setup(200, 44, faults, None).await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_smile-recon"))
        .args(["submit", "--manifest", b.manifest.to_str().unwrap()])
        .args(["--endpoint", "verify", "--db", b.db.to_str().unwrap()])
        .args(["--base-url", &b.sandbox.base_url(), "--rate", "20"])
        .env("SMILE_API_KEY", common::KEY)
        .env("SMILE_PARTNER_ID", common::PARTNER)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let before_signal = b.sandbox.stats().total_requests;
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let started = std::time::Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        let status = child.wait().unwrap();
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        (status, err)
    })
    .await
    .unwrap();
    assert_eq!(out.0.code(), Some(130), "{}", out.1);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(12),
        "bounded wait"
    );
    assert!(out.1.contains("resume"), "says how to continue: {}", out.1);
    // Only the requests already on their way finish: the 64 jobs queued for the workers
    // (4 x the default concurrency of 16) are handed back unsent, not sent at 20/s
    // through the grace.
    let after_signal = b.sandbox.stats().total_requests - before_signal;
    assert!(
        after_signal <= 16,
        "{after_signal} requests after the signal"
    );
    let store = smile_recon::store::Store::open_read_only(&b.db).unwrap();
    let run = store.latest_run(false).unwrap().unwrap();
    assert_eq!(run.status, smile_recon::store::RunStatus::Interrupted);
    let executions = store.executions(run.id).unwrap();
    assert_eq!(executions[0].outcome.as_deref(), Some("interrupted"));
    drop(store);
    let resumed = smile_recon(
        &["resume", "--db", b.db.to_str().unwrap(), "--rate", "0"],
        common::KEY,
        b.dir.path(),
    );
    assert_eq!(resumed.status.code(), Some(3), "{}", text(&resumed));
    batch::assert_matches_manifest(&b, run.id);
    assert!(
        b.sandbox
            .stats()
            .accepted_by_job_id
            .values()
            .all(|n| *n <= 1)
    );
}
