//! PRODUCT.md's guarantees for a run: bound to its manifest, stopped by the circuit
//! breaker on systemic failure, one process per database, the rate limit held, and the
//! API key nowhere on disk.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::batch;
use smile_recon::api::SubmitEndpoint;
use smile_recon::exit::{Error, ExitStatus};
use smile_recon::job_spec::RunMode;
use smile_recon::runner::{self, Layer, Target};
use smile_recon::sandbox::Faults;
use smile_recon::store::{DbLock, JobState, RunStatus, Store, StoreError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_manifest_is_refused_on_resume() {
    let b = batch::setup(40, 21, Faults::default(), None).await;
    // A wrong key stops the run early, leaving it resumable.
    std::fs::write(&b.key_file, "not-the-key").unwrap();
    let stopped =
        runner::execute(b.request(RunMode::Submit, b.submit_flags(SubmitEndpoint::Verify)))
            .await
            .unwrap_err();
    assert!(matches!(stopped, Error::Breaker { .. }), "{stopped:?}");
    assert_eq!(stopped.outcome(), ExitStatus::Fatal);

    // One byte more in the manifest: resume refuses, naming the file.
    let mut text = std::fs::read_to_string(&b.manifest).unwrap();
    text.push('\n');
    std::fs::write(&b.manifest, &text).unwrap();
    std::fs::write(&b.key_file, common::KEY).unwrap();
    let mut request = b.request(RunMode::Submit, b.submit_flags(SubmitEndpoint::Verify));
    request.target = Target::Resume(None);
    let refused = runner::execute(request).await.unwrap_err();
    assert_eq!(refused.outcome(), ExitStatus::Fatal);
    match &refused {
        Error::ManifestChanged {
            manifest,
            then,
            now,
            ..
        } => {
            assert_eq!(manifest, &b.manifest.display().to_string());
            assert_ne!(then, now);
        }
        other => panic!("expected ManifestChanged, got {other:?}"),
    }
    assert!(refused.to_string().contains("has changed"), "{refused}");

    // Restored, it resumes and finishes.
    text.pop();
    std::fs::write(&b.manifest, &text).unwrap();
    let mut request = b.request(RunMode::Submit, b.submit_flags(SubmitEndpoint::Verify));
    request.target = Target::Resume(None);
    let finished = runner::execute(request).await.unwrap();
    batch::assert_matches_manifest(&b, finished.run_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_trips_the_breaker_after_a_handful_of_requests() {
    let b = batch::setup(200, 22, Faults::default(), None).await;
    std::fs::write(&b.key_file, "a-wrong-key").unwrap();
    let failure =
        runner::execute(b.request(RunMode::Submit, b.submit_flags(SubmitEndpoint::Verify)))
            .await
            .unwrap_err();
    assert_eq!(failure.outcome(), ExitStatus::Fatal);
    match &failure {
        Error::Breaker { why, .. } => assert!(why.contains("2205"), "{why}"),
        other => panic!("expected the breaker, got {other:?}"),
    }
    let requests = b.sandbox.stats().total_requests;
    assert!(
        requests <= 10,
        "{requests} requests before the breaker tripped"
    );

    let store = Store::open_read_only(&b.db).unwrap();
    let run = store.latest_run(false).unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Interrupted);
    let counts = store.counts_by_state(run.id).unwrap();
    let failed = counts.get(&JobState::Failed).copied().unwrap_or(0)
        + counts.get(&JobState::GaveUp).copied().unwrap_or(0);
    assert_eq!(
        failed, 0,
        "no job is failed by a systemic error: {counts:?}"
    );
    let pending = counts.get(&JobState::Queued).copied().unwrap_or(0);
    assert!(pending >= 190, "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_on_the_same_database_is_refused() {
    let b = batch::setup(10, 23, Faults::default(), None).await;
    let _held = DbLock::acquire(&b.db).unwrap();
    let refused =
        runner::execute(b.request(RunMode::Submit, b.submit_flags(SubmitEndpoint::Verify)))
            .await
            .unwrap_err();
    assert_eq!(refused.outcome(), ExitStatus::Fatal);
    match &refused {
        Error::Store(StoreError::Locked { pid, .. }) => {
            assert_eq!(pid, &std::process::id().to_string())
        }
        other => panic!("expected the lock to be refused, got {other:?}"),
    }
    assert!(
        refused
            .to_string()
            .contains(&std::process::id().to_string()),
        "names the holder's pid: {}",
        refused
    );
    assert_eq!(b.sandbox.stats().total_requests, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_holds_in_every_one_second_window() {
    let b = batch::setup(300, 24, Faults::default(), None).await;
    let flags = Layer {
        rate: Some(50.0),
        burst: Some(5),
        concurrency: Some(32),
        ..b.submit_flags(SubmitEndpoint::Verify)
    };
    let finished = b.run(b.request(RunMode::Submit, flags)).await;
    batch::assert_matches_manifest(&b, finished.run_id);
    let stats = b.sandbox.stats();
    assert!(stats.total_requests >= 250, "{}", stats.total_requests);
    assert!(
        stats.max_requests_in_one_second <= 55,
        "{} requests in one second with --rate 50 --burst 5",
        stats.max_requests_in_one_second
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_is_private_and_holds_no_key() {
    let b = batch::setup(30, 25, Faults::default(), None).await;
    let finished = b
        .run(b.request(RunMode::Submit, b.submit_flags(SubmitEndpoint::VerifyAsync)))
        .await;
    batch::assert_matches_manifest(&b, finished.run_id);
    let mode = std::fs::metadata(&b.db).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    for entry in std::fs::read_dir(b.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path == b.key_file {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes
                .windows(common::KEY.len())
                .any(|w| w == common::KEY.as_bytes()),
            "{} holds the key",
            path.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfinished_run_keeps_its_endpoint() {
    let b = batch::setup(20, 26, Faults::default(), None).await;
    std::fs::write(&b.key_file, "wrong").unwrap();
    let stopped =
        runner::execute(b.request(RunMode::Submit, b.submit_flags(SubmitEndpoint::Verify)))
            .await
            .unwrap_err();
    assert_eq!(stopped.outcome(), ExitStatus::Fatal);
    std::fs::write(&b.key_file, common::KEY).unwrap();
    // The same manifest again with another endpoint: refused, nothing sent.
    let before = b.sandbox.stats().total_requests;
    let refused =
        runner::execute(b.request(RunMode::Submit, b.submit_flags(SubmitEndpoint::VerifyAsync)))
            .await
            .unwrap_err();
    assert_eq!(refused.outcome(), ExitStatus::Usage);
    match &refused {
        Error::EndpointChanged { started, now, .. } => {
            assert_eq!((started.as_str(), *now), ("verify", "verify-async"))
        }
        other => panic!("expected EndpointChanged, got {other:?}"),
    }
    assert!(
        refused.to_string().contains("--endpoint verify"),
        "{}",
        refused
    );
    assert_eq!(b.sandbox.stats().total_requests, before);
    // Without an endpoint it continues with its own.
    let flags = Layer {
        endpoint: None,
        ..b.flags()
    };
    let finished = b.run(b.request(RunMode::Submit, flags)).await;
    batch::assert_matches_manifest(&b, finished.run_id);
}
