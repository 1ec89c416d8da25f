//! Each mode and each endpoint against the in-process sandbox, with and without injected
//! faults: every job ends final with the result code its manifest row expects.

mod common;

use std::time::Duration;

use common::batch::{self, Batch};
use smile_recon::api::{SubmitEndpoint, TimestampStyle};
use smile_recon::exit::ExitStatus;
use smile_recon::job_spec::RunMode;
use smile_recon::sandbox::{Faults, Outage};

const ROWS: usize = 120;

fn faulty() -> Faults {
    Faults {
        latency: Duration::from_millis(5),
        latency_jitter: Duration::from_millis(5),
        fail_rate: 0.1,
        throttle_rps: Some(400),
        drop_callbacks: 0.3,
        outage: None,
    }
}

async fn submit(endpoint: SubmitEndpoint, faults: Faults, seed: u64) -> Batch {
    let batch = batch::setup(ROWS, seed, faults, None).await;
    let finished = batch
        .run(batch.request(RunMode::Submit, batch.submit_flags(endpoint)))
        .await;
    match endpoint {
        SubmitEndpoint::IdVerification | SubmitEndpoint::AsyncIdVerification => {
            batch::assert_matches_manifest_enhanced_kyc(&batch, finished.run_id)
        }
        _ => batch::assert_matches_manifest(&batch, finished.run_id),
    }
    // Rows refused before sending (ID number format) end invalid: exit 3 says so.
    assert_eq!(finished.outcome, ExitStatus::JobErrors);
    let stats = batch.sandbox.stats();
    let twice: Vec<_> = stats
        .accepted_by_job_id
        .iter()
        .filter(|(_, n)| **n > 1)
        .collect();
    assert!(twice.is_empty(), "accepted more than once: {twice:?}");
    batch
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_async_without_faults() {
    let batch = submit(SubmitEndpoint::VerifyAsync, Faults::default(), 1).await;
    assert!(batch.sandbox.stats().callbacks_delivered > 0);
}

/// Smile ID's Identity Verification page shows its answers (the body a callback carries)
/// signed with `2021-08-12T17:57:00.614879`: microseconds, no offset. The receiver reads
/// that as UTC and takes every callback; job_status's answers in that form confirm too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_async_with_timestamps_in_microseconds_without_an_offset() {
    let batch = batch::setup_with(ROWS, 9, Faults::default(), None, |config| {
        config.timestamps = TimestampStyle::MicrosNoOffset;
    })
    .await;
    let finished = batch
        .run(batch.request(
            RunMode::Submit,
            batch.submit_flags(SubmitEndpoint::VerifyAsync),
        ))
        .await;
    batch::assert_matches_manifest(&batch, finished.run_id);
    let stats = batch.sandbox.stats();
    assert!(stats.accepted_submissions > 0, "{stats:?}");
    assert_eq!(
        (stats.callbacks_delivered, stats.callbacks_failed),
        (stats.accepted_submissions, 0),
        "{stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_async_with_faults_and_dropped_callbacks() {
    let batch = submit(SubmitEndpoint::VerifyAsync, faulty(), 2).await;
    let stats = batch.sandbox.stats();
    assert!(stats.injected_failures > 0, "{stats:?}");
    assert!(stats.callbacks_dropped > 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_sync_without_faults() {
    submit(SubmitEndpoint::Verify, Faults::default(), 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_sync_with_faults() {
    let batch = submit(SubmitEndpoint::Verify, faulty(), 4).await;
    assert!(batch.sandbox.stats().injected_failures > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn id_verification_without_faults() {
    submit(SubmitEndpoint::IdVerification, Faults::default(), 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn id_verification_with_faults() {
    submit(SubmitEndpoint::IdVerification, faulty(), 6).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_id_verification_without_faults() {
    submit(SubmitEndpoint::AsyncIdVerification, Faults::default(), 7).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_id_verification_with_faults() {
    submit(SubmitEndpoint::AsyncIdVerification, faulty(), 8).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_verify_through_an_authority_outage() {
    let faults = Faults {
        outage: Some(Outage {
            start_after: Duration::ZERO,
            duration: Duration::from_millis(1500),
        }),
        ..Faults::default()
    };
    let batch = submit(SubmitEndpoint::Verify, faults, 9).await;
    assert!(
        batch.sandbox.stats().results_by_code.contains_key("1015"),
        "the outage was never seen"
    );
}

async fn poll(faults: Faults, pending: Duration, seed: u64) -> Batch {
    let batch = batch::setup(ROWS, seed, faults, Some(pending)).await;
    let finished = batch.run(batch.request(RunMode::Poll, batch.flags())).await;
    let jobs = batch.jobs(finished.run_id);
    let expected = batch.expected();
    assert_eq!(jobs.len(), expected.len());
    for job in &jobs {
        assert!(job.state.is_final(), "{job:?}");
    }
    let mut wrong = Vec::new();
    for job in &jobs {
        let want = &expected[&job.job_id];
        let got = batch::outcome_code(job);
        if &got != want {
            wrong.push(format!(
                "{}: expected {want}, got {got} ({:?})",
                job.job_id, job.last_code
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    batch
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_without_faults() {
    poll(Faults::default(), Duration::ZERO, 11).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_pending_jobs_with_faults() {
    let faults = Faults {
        fail_rate: 0.1,
        latency_jitter: Duration::from_millis(3),
        ..Faults::default()
    };
    let batch = poll(faults, Duration::from_millis(800), 12).await;
    assert!(batch.sandbox.stats().injected_failures > 0);
}
