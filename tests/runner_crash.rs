//! kill -9 at several points of a 2,000-row verify-async run with the sandbox failing
//! requests, throttling and dropping callbacks; resumed until done: every row ends final
//! with its expected code, and the sandbox accepted no job_id twice.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::batch::{self, Batch};
use smile_recon::sandbox::{Faults, StatusErrors};
use smile_recon::store::{RunStatus, Store};

const ROWS: usize = 2_000;

fn spawn(b: &Batch, command: &str) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_smile-recon"));
    cmd.arg(command);
    if command == "submit" {
        cmd.args(["--manifest", b.manifest.to_str().unwrap()])
            .args([
                "--endpoint",
                "verify-async",
                "--callback-listen",
                "127.0.0.1:0",
            ])
            .args(["--callback-grace", "1"]);
    }
    cmd.args(["--db", b.db.to_str().unwrap()])
        .args(["--base-url", &b.sandbox.base_url()])
        .args(["--partner-id", common::PARTNER])
        .args(["--rate", "0", "--concurrency", "32", "--max-attempts", "20"])
        .args(["--timeout", "5", "--quiet"])
        .env("SMILE_API_KEY", common::KEY)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd.spawn().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_runs_resume_with_nothing_lost_and_nothing_sent_twice() {
    let faults = Faults {
        fail_rate: 0.05,
        throttle_rps: Some(600),
        drop_callbacks: 0.2,
        latency: Duration::from_millis(2),
        latency_jitter: Duration::from_millis(2),
        outage: None,
    };
    // job_status errors in either of seed 000's shapes, drawn per answer.
    let b = batch::setup_shaped(ROWS, 31, faults, None, StatusErrors::Mixed).await;
    let mut kills = 0;
    for (i, after) in common::kill_points(31, 6, 150, 900).into_iter().enumerate() {
        let mut child = spawn(&b, if i == 0 { "submit" } else { "resume" });
        tokio::time::sleep(Duration::from_millis(after)).await;
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
    }
    assert!(kills >= 3, "only {kills} runs were still going when killed");

    let started = Instant::now();
    let mut last = None;
    for _ in 0..5 {
        let out = spawn(&b, "resume").wait_with_output().unwrap();
        last = Some(out.status.code());
        let store = Store::open_read_only(&b.db).unwrap();
        if store.latest_run(false).unwrap().unwrap().status == RunStatus::Finished {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "not finishing"
        );
    }
    // Rows whose ID number fails its format end invalid: exit 3.
    assert_eq!(last, Some(Some(3)));

    let store = Store::open_read_only(&b.db).unwrap();
    let run = store.latest_run(false).unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Finished);
    assert!(store.executions(run.id).unwrap().len() > kills);
    batch::assert_matches_manifest(&b, run.id);
    let stats = b.sandbox.stats();
    let twice: Vec<_> = stats
        .accepted_by_job_id
        .iter()
        .filter(|(_, n)| **n > 1)
        .collect();
    assert!(twice.is_empty(), "accepted twice: {twice:?}");
    assert!(
        stats.injected_failures > 0 && stats.callbacks_dropped > 0,
        "{stats:?}"
    );
}
