//! `retry --run ID` on the real binary: failed jobs go back for a new execution of the
//! same run. A job Smile ID never accepted keeps its job_id; one it accepted (a SmileJobID
//! or a result) goes out under a new job_id, so the sandbox sees no duplicate (2215);
//! invalid rows are never retried; the retry is recorded with the run's executions.

mod common;

use common::cli::{run as smile_recon, text};

use std::path::Path;
use std::process::Output;

use common::batch;
use smile_recon::sandbox::{Faults, RunningSandbox};
use smile_recon::store::{JobState, Store};

fn submit(sandbox: &RunningSandbox, cwd: &Path, max_attempts: &str) -> Output {
    smile_recon(
        &[
            "submit",
            "--manifest",
            "manifest.csv",
            "--endpoint",
            "verify",
            "--base-url",
            &sandbox.base_url(),
            "--rate",
            "0",
            "--max-attempts",
            max_attempts,
            "--db",
            "runs.db",
            "--quiet",
            // The failed jobs keep their input, so that retry can send them again.
            "--keep-pii",
        ],
        cwd,
    )
}

fn count(jobs: &[smile_recon::store::JobRecord], state: JobState) -> usize {
    jobs.iter().filter(|j| j.state == state).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_that_never_got_through_are_sent_again_under_their_own_job_id() {
    let faults = Faults {
        fail_rate: 0.6,
        ..Faults::default()
    };
    let b = batch::setup(60, 71, faults, None).await;
    let dir = b.dir.path();
    let first = submit(&b.sandbox, dir, "1");
    assert_eq!(first.status.code(), Some(3), "{}", text(&first));
    let before = b.jobs(1);
    let failed: Vec<_> = before
        .iter()
        .filter(|j| matches!(j.state, JobState::Failed | JobState::GaveUp))
        .map(|j| (j.row, j.job_id.clone()))
        .collect();
    assert!(
        failed.len() >= 10,
        "the 500s failed some jobs: {}",
        failed.len()
    );
    let invalid = count(&before, JobState::Invalid);
    assert!(invalid > 0, "the mix has rows refused before sending");

    // The host is healthy again (a sandbox without faults, same registry): the HTTP 500s
    // were unprocessed, so job_status finds nothing and the same job_id is sent.
    let healthy = batch::start_sandbox(&b.generated, Faults::default(), 71, Vec::new()).await;
    let url = healthy.base_url();
    let retry = smile_recon(
        &[
            "retry",
            "--run",
            "1",
            "--base-url",
            &url,
            "--db",
            "runs.db",
            "--quiet",
        ],
        dir,
    );
    let out = text(&retry);
    // invalid rows stay invalid: the run still ends with exit 3
    assert_eq!(retry.status.code(), Some(3), "{out}");
    assert!(
        out.contains(&format!("put back {} jobs", failed.len())),
        "{out}"
    );
    let after = b.jobs(1);
    assert_eq!(
        count(&after, JobState::Failed) + count(&after, JobState::GaveUp),
        0
    );
    assert_eq!(
        count(&after, JobState::Invalid),
        invalid,
        "invalid rows are not retried"
    );
    for (row, job_id) in &failed {
        let job = after.iter().find(|j| j.row == *row).unwrap();
        assert_eq!(&job.job_id, job_id, "never accepted: the same job_id");
        assert_eq!(job.state, JobState::Done, "{job:?}");
    }
    let stats = healthy.stats();
    assert_eq!(stats.duplicate_rejections, 0);
    assert_eq!(stats.accepted_submissions, failed.len() as u64);
    batch::assert_matches_manifest(&b, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_job_gets_a_new_job_id_once_however_often_the_retry_starts() {
    let b = batch::setup(40, 72, Faults::default(), None).await;
    let dir = b.dir.path();
    let first = submit(&b.sandbox, dir, "5");
    // 3 when the mix drew rows refused before sending, which a retry never changes
    let ended = first.status.code();
    assert!(matches!(ended, Some(0 | 3)), "{}", text(&first));
    // Three jobs that Smile ID accepted end failed (as a job that failed on its result
    // code does); the run is finished.
    let picked: Vec<(i64, String)> = {
        let conn = rusqlite::Connection::open(&b.db).unwrap();
        let mut stmt = conn
            .prepare(
                "SELECT id, job_id FROM jobs WHERE run_id = 1 AND state = 'done' \
                 AND smile_job_id IS NOT NULL ORDER BY id LIMIT 3",
            )
            .unwrap();
        let picked: Vec<(i64, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        conn.execute(
            "UPDATE jobs SET state = 'failed' WHERE id IN (SELECT id FROM jobs WHERE run_id = 1 \
             AND state = 'done' AND smile_job_id IS NOT NULL ORDER BY id LIMIT 3)",
            [],
        )
        .unwrap();
        picked
    };
    assert_eq!(picked.len(), 3);
    let accepted_before = b.sandbox.stats().accepted_submissions;

    let retry = smile_recon(&["retry", "--run", "1", "--db", "runs.db", "--quiet"], dir);
    assert_eq!(retry.status.code(), ended, "{}", text(&retry));
    let after = b.jobs(1);
    let mut new_ids = Vec::new();
    for (row, old) in &picked {
        let job = after.iter().find(|j| j.row == *row).unwrap();
        assert_ne!(&job.job_id, old, "accepted once: a new job_id");
        assert_eq!(job.job_id, smile_recon::store::retry_job_id(old, 1));
        assert_eq!(job.state, JobState::Done, "{job:?}");
        new_ids.push(job.job_id.clone());
    }
    let stats = b.sandbox.stats();
    assert_eq!(stats.duplicate_rejections, 0, "no job_id was sent twice");
    assert_eq!(stats.accepted_submissions, accepted_before + 3);
    for id in &new_ids {
        assert_eq!(stats.accepted_by_job_id.get(id), Some(&1), "{id}");
    }

    // Nothing failed now: a second retry puts nothing back and invents no id; the run
    // stays finished, so the resume behind it has nothing to do (exit 0, as `resume`).
    let again = smile_recon(&["retry", "--run", "1", "--db", "runs.db", "--quiet"], dir);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(text(&again).contains("put back 0 jobs"), "{}", text(&again));
    let ids: Vec<String> = b.jobs(1).into_iter().map(|j| j.job_id).collect();
    for id in &new_ids {
        assert!(ids.contains(id));
    }
    let store = Store::open_read_only(&b.db).unwrap();
    let outcomes: Vec<String> = store
        .executions(1)
        .unwrap()
        .into_iter()
        .filter_map(|e| e.outcome)
        .collect();
    assert!(
        outcomes
            .iter()
            .any(|o| o
                .starts_with("retry: put back 3 jobs (failed 3, gave_up 0; 3 under a new job_id")),
        "{outcomes:?}"
    );
    assert_eq!(
        store.run(1).unwrap().unwrap().status,
        smile_recon::store::RunStatus::Finished
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_refuses_other_states_and_unknown_runs() {
    let b = batch::setup(5, 73, Faults::default(), None).await;
    let dir = b.dir.path();
    let bad = smile_recon(&["retry", "--run", "1", "--state", "invalid"], dir);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    let first = submit(&b.sandbox, dir, "5");
    assert!(
        matches!(first.status.code(), Some(0 | 3)),
        "{}",
        text(&first)
    );
    let none = smile_recon(&["retry", "--run", "9", "--db", "runs.db"], dir);
    assert_eq!(none.status.code(), Some(2), "{}", text(&none));
    assert!(text(&none).contains("no run 9"), "{}", text(&none));
}

/// A manifest that cannot be read any more (moved, or a relative path from another folder)
/// is refused before any job is put back: the finished run stays as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_that_cannot_be_read_is_refused_before_anything_is_put_back() {
    let faults = Faults {
        fail_rate: 0.6,
        ..Faults::default()
    };
    let b = batch::setup(30, 73, faults, None).await;
    let dir = b.dir.path();
    let first = submit(&b.sandbox, dir, "1");
    assert_eq!(first.status.code(), Some(3), "{}", text(&first));
    let before = b.jobs(1);
    let failed = count(&before, JobState::Failed) + count(&before, JobState::GaveUp);
    assert!(failed > 0, "the faults fail some jobs");
    std::fs::rename(dir.join("manifest.csv"), dir.join("moved.csv")).unwrap();
    let retry = smile_recon(&["retry", "--run", "1", "--db", "runs.db", "--quiet"], dir);
    assert_eq!(retry.status.code(), Some(2), "{}", text(&retry));
    assert!(
        text(&retry).contains("nothing was put back"),
        "{}",
        text(&retry)
    );
    let after = b.jobs(1);
    assert_eq!(
        count(&after, JobState::Failed) + count(&after, JobState::GaveUp),
        failed,
        "no job was put back"
    );
    let store = Store::open_read_only(&dir.join("runs.db")).unwrap();
    let run = store.run(1).unwrap().unwrap();
    assert_eq!(
        store.executions(run.id).unwrap().len(),
        1,
        "no retry recorded"
    );
}
