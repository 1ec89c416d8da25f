//! A run's life on the real binary: `runs` shows a run whose process died as
//! interrupted; `runs abandon ID` retires a run whose manifest was overwritten, so the
//! next night starts a new run instead of exiting 1 until a person steps in.

mod common;

use common::cli::{smile_recon, text};

use std::process::Output;

use common::batch;
use smile_recon::sandbox::Faults;
use smile_recon::store::{DbLock, RunStatus, Store};

fn status_of(listing: &Output, run: i64) -> String {
    let v: serde_json::Value = serde_json::from_slice(&listing.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == run)
        .map(|r| r["status"].as_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overwritten_manifest_no_longer_blocks_every_night_once_abandoned() {
    let b = batch::setup(30, 81, Faults::default(), None).await;
    let dir = b.dir.path();
    let url = b.sandbox.base_url();
    let submit = |key: &str| {
        smile_recon(
            &[
                "submit",
                "--manifest",
                "manifest.csv",
                "--endpoint",
                "verify",
                "--base-url",
                &url,
                "--rate",
                "0",
                "--db",
                "runs.db",
                "--quiet",
            ],
            key,
            dir,
        )
    };
    // Night 1 stops (here: a wrong key trips the breaker); the run is unfinished.
    let stopped = submit("wrong-key-5678");
    assert_eq!(stopped.status.code(), Some(1), "{}", text(&stopped));
    // Tonight's export overwrites the manifest: the unfinished run refuses it.
    let mut rows = std::fs::read_to_string(&b.manifest).unwrap();
    rows.push_str(&rows.lines().nth(1).unwrap().replace(",", ", ").to_string());
    std::fs::write(&b.manifest, rows).unwrap();
    let refused = submit(common::KEY);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(text(&refused).contains("has changed since run 1 started"));

    let abandon = smile_recon(
        &["runs", "abandon", "1", "--db", "runs.db"],
        common::KEY,
        dir,
    );
    assert_eq!(abandon.status.code(), Some(0), "{}", text(&abandon));
    assert!(text(&abandon).contains("run 1"), "{}", text(&abandon));
    // Its jobs never need their rows again: their personal data is gone with the run.
    let store = Store::open_read_only(&b.db).unwrap();
    let mut clear = 0;
    store
        .for_each_job(1, |job| {
            if job.state != smile_recon::store::JobState::Invalid
                && !job.input_json.contains("pii_removed")
            {
                clear += 1;
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(clear, 0, "an abandoned run kept rows in clear");
    drop(store);
    let resume = smile_recon(
        &["resume", "--run", "1", "--db", "runs.db"],
        common::KEY,
        dir,
    );
    assert_eq!(resume.status.code(), Some(2), "{}", text(&resume));
    assert!(text(&resume).contains("abandoned"), "{}", text(&resume));
    let retry = smile_recon(
        &["retry", "--run", "1", "--db", "runs.db"],
        common::KEY,
        dir,
    );
    assert_eq!(retry.status.code(), Some(2), "{}", text(&retry));

    // The next night: a new run, not the abandoned one.
    let next = submit(common::KEY);
    assert!(matches!(next.status.code(), Some(0 | 3)), "{}", text(&next));
    let listing = smile_recon(&["runs", "--db", "runs.db", "--json"], common::KEY, dir);
    assert_eq!(status_of(&listing, 1), "abandoned");
    assert_eq!(status_of(&listing, 2), "finished");
    let store = Store::open_read_only(&b.db).unwrap();
    let executions = store.executions(1).unwrap();
    assert_eq!(
        executions.last().and_then(|e| e.outcome.clone()).as_deref(),
        Some("abandoned")
    );
    // abandoned twice: still abandoned, said so, exit 0
    let again = smile_recon(
        &["runs", "abandon", "1", "--db", "runs.db"],
        common::KEY,
        dir,
    );
    assert_eq!(again.status.code(), Some(0));
    assert!(text(&again).contains("already abandoned"));
    let finished = smile_recon(
        &["runs", "abandon", "2", "--db", "runs.db"],
        common::KEY,
        dir,
    );
    assert_eq!(finished.status.code(), Some(2), "{}", text(&finished));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_run_whose_process_died_is_shown_and_then_stored_interrupted() {
    let b = batch::setup(10, 82, Faults::default(), None).await;
    let dir = b.dir.path();
    let url = b.sandbox.base_url();
    let stopped = smile_recon(
        &[
            "submit",
            "--manifest",
            "manifest.csv",
            "--endpoint",
            "verify",
            "--base-url",
            &url,
            "--rate",
            "0",
            "--db",
            "runs.db",
            "--quiet",
        ],
        "wrong-key-5678",
        dir,
    );
    assert_eq!(stopped.status.code(), Some(1), "{}", text(&stopped));
    // What a host that died mid-run leaves: the run marked running, its execution open.
    let dead_pid = 999_999_999i64;
    {
        let conn = rusqlite::Connection::open(&b.db).unwrap();
        conn.execute_batch(&format!(
            "UPDATE runs SET status = 'running' WHERE id = 1;
             INSERT INTO executions (run_id, pid, command, started_at) \
             VALUES (1, {dead_pid}, 'submit', 1);"
        ))
        .unwrap();
    }
    let list = || smile_recon(&["runs", "--db", "runs.db", "--json"], common::KEY, dir);
    assert_eq!(
        status_of(&list(), 1),
        "interrupted",
        "nobody holds the database"
    );
    let only_running = smile_recon(
        &["runs", "--db", "runs.db", "--status", "running"],
        common::KEY,
        dir,
    );
    assert!(String::from_utf8_lossy(&only_running.stdout).contains("no runs"));

    {
        // A process holds the database: the run is running if that process is the run's
        // own, interrupted if another one holds it now.
        let lock = DbLock::acquire(&b.db).unwrap();
        assert_eq!(
            status_of(&list(), 1),
            "interrupted",
            "the holder is not pid {dead_pid}"
        );
        let conn = rusqlite::Connection::open(&b.db).unwrap();
        conn.execute(
            "UPDATE executions SET pid = ?1 WHERE pid = ?2",
            rusqlite::params![std::process::id(), dead_pid],
        )
        .unwrap();
        assert_eq!(status_of(&list(), 1), "running");
        drop(lock);
    }
    // The listing wrote nothing; the next command holding the lock stores it.
    let store = Store::open_read_only(&b.db).unwrap();
    assert_eq!(store.run(1).unwrap().unwrap().status, RunStatus::Running);
    drop(store);
    let none = smile_recon(
        &["retry", "--run", "7", "--db", "runs.db"],
        common::KEY,
        dir,
    );
    assert_eq!(none.status.code(), Some(2), "{}", text(&none));
    let store = Store::open_read_only(&b.db).unwrap();
    assert_eq!(
        store.run(1).unwrap().unwrap().status,
        RunStatus::Interrupted
    );
    assert_eq!(store.open_execution_pid(1).unwrap(), None);
}
