//! A batch against an in-process sandbox: generated registry and manifest, a key file, a
//! database in a temp dir, and checks of the stored results against the manifest.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use smile_recon::api::SubmitEndpoint;
use smile_recon::job_spec::RunMode;
use smile_recon::manifest::ManifestSource;
use smile_recon::runner::{self, Finished, Invocation, Layer, ProgressMode, Target};
use smile_recon::sandbox::{
    self, Faults, Generated, Mix, PreloadedJob, RunningSandbox, SandboxConfig, StatusErrors,
};
use smile_recon::store::{JobRecord, Store};
use tempfile::TempDir;

use super::{KEY, PARTNER};

pub struct Batch {
    pub dir: TempDir,
    pub sandbox: RunningSandbox,
    pub generated: Generated,
    pub manifest: PathBuf,
    pub key_file: PathBuf,
    pub db: PathBuf,
}

pub const MIX: &str = "exact=50,partial=15,transposed=10,nomatch=15,invalid=5,badformat=5";

/// A sandbox with `faults` and a verify manifest of `rows` rows (or, with `poll`, a
/// job_status manifest over jobs the sandbox already holds, pending for `pending`).
pub async fn setup(rows: usize, seed: u64, faults: Faults, poll: Option<Duration>) -> Batch {
    setup_shaped(rows, seed, faults, poll, StatusErrors::Http).await
}

/// [`setup`] with job_status errors answered in `shape` (signed 200 bodies, 4xx bodies,
/// or either).
pub async fn setup_shaped(
    rows: usize,
    seed: u64,
    faults: Faults,
    poll: Option<Duration>,
    shape: StatusErrors,
) -> Batch {
    setup_with(rows, seed, faults, poll, |config| {
        config.status_errors = shape
    })
    .await
}

/// [`setup`] with the sandbox's configuration changed by `configure` before it starts.
pub async fn setup_with(
    rows: usize,
    seed: u64,
    faults: Faults,
    poll: Option<Duration>,
    configure: impl FnOnce(&mut SandboxConfig),
) -> Batch {
    let dir = tempfile::tempdir().unwrap();
    let mix: Mix = MIX.parse().unwrap();
    let generated = sandbox::generate(rows.max(50), rows, seed, &mix);
    let manifest = dir.path().join("manifest.csv");
    let preload = match poll {
        Some(pending) => {
            generated.write_poll_manifest_csv(&manifest).unwrap();
            generated.preloaded_jobs(pending)
        }
        None => {
            generated.write_manifest_csv(&manifest).unwrap();
            Vec::new()
        }
    };
    let sandbox = start_configured(&generated, faults, seed, preload, configure).await;
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, KEY).unwrap();
    let db = dir.path().join("runs.db");
    Batch {
        dir,
        sandbox,
        generated,
        manifest,
        key_file,
        db,
    }
}

/// A sandbox over `generated`'s registry, holding `preload` jobs.
pub async fn start_sandbox(
    generated: &Generated,
    faults: Faults,
    seed: u64,
    preload: Vec<PreloadedJob>,
) -> RunningSandbox {
    start_configured(generated, faults, seed, preload, |_| {}).await
}

async fn start_configured(
    generated: &Generated,
    faults: Faults,
    seed: u64,
    preload: Vec<PreloadedJob>,
    configure: impl FnOnce(&mut SandboxConfig),
) -> RunningSandbox {
    let mut config = SandboxConfig::new(
        PARTNER.into(),
        smile_recon::api::ApiKey::new(KEY).unwrap(),
        generated.registry.clone(),
    );
    config.faults = faults;
    config.seed = seed;
    config.callback_delay = Duration::from_millis(20);
    config.preload = preload;
    configure(&mut config);
    sandbox::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

impl Batch {
    /// Flags a test run uses: this sandbox, quick retries, no rate limit.
    pub fn flags(&self) -> Layer {
        Layer {
            base_url: Some(self.sandbox.base_url()),
            partner_id: Some(PARTNER.into()),
            api_key_file: Some(self.key_file.clone()),
            rate: Some(0.0),
            concurrency: Some(16),
            max_attempts: Some(12),
            timeout: Some(5.0),
            callback_grace: Some(1.0),
            poll_interval: Some(0.2),
            ..Layer::default()
        }
    }

    pub fn submit_flags(&self, endpoint: SubmitEndpoint) -> Layer {
        Layer {
            endpoint: Some(endpoint),
            callback_listen: endpoint
                .endpoint()
                .is_async()
                .then(|| "127.0.0.1:0".parse().unwrap()),
            ..self.flags()
        }
    }

    pub fn request(&self, mode: RunMode, flags: Layer) -> Invocation {
        Invocation {
            command: mode.as_str().into(),
            target: Target::Manifest {
                mode,
                source: ManifestSource::Csv(self.manifest.clone()),
            },
            flags,
            db: self.db.clone(),
            progress: ProgressMode::Quiet,
            report: None,
            api_key: None,
            again: false,
        }
    }

    pub async fn run(&self, request: Invocation) -> Finished {
        runner::execute(request)
            .await
            .unwrap_or_else(|e| panic!("run failed: {e}"))
    }

    pub fn jobs(&self, run_id: i64) -> Vec<JobRecord> {
        let store = Store::open_read_only(&self.db).unwrap();
        let mut jobs = Vec::new();
        store
            .for_each_job(run_id, |j| {
                jobs.push(j);
                Ok(())
            })
            .unwrap();
        jobs
    }

    /// The manifest's expected codes by job_id.
    pub fn expected(&self) -> BTreeMap<String, String> {
        self.generated
            .rows
            .iter()
            .map(|r| (r.job_id.clone(), r.expected_result_code.clone()))
            .collect()
    }
}

/// What a job ended with, as the manifest's `expected_result_code` says it: its result
/// code, or 1014 for a row refused before sending because its ID number fails the format.
pub fn outcome_code(job: &JobRecord) -> String {
    match (&job.result_code, job.state.as_str()) {
        (Some(code), _) => code.clone(),
        (None, "invalid")
            if job
                .last_error
                .as_deref()
                .unwrap_or("")
                .contains("id_number") =>
        {
            "1014".into()
        }
        (None, state) => format!("no result ({state}: {:?})", job.last_error),
    }
}

/// Every row of the manifest ended final with exactly its expected code.
pub fn assert_matches_manifest(batch: &Batch, run_id: i64) {
    assert_matches(batch, run_id, false)
}

/// Enhanced KYC (`/v1/id_verification`) validates the ID number and returns the
/// authority's data without matching fields: 1012 for every ID the authority knows.
pub fn assert_matches_manifest_enhanced_kyc(batch: &Batch, run_id: i64) {
    assert_matches(batch, run_id, true)
}

fn assert_matches(batch: &Batch, run_id: i64, enhanced_kyc: bool) {
    let mut expected = batch.expected();
    if enhanced_kyc {
        for code in expected.values_mut() {
            if matches!(code.as_str(), "1020" | "1021" | "1022") {
                *code = "1012".into();
            }
        }
    }
    let jobs = batch.jobs(run_id);
    assert_eq!(jobs.len(), expected.len(), "one job per manifest row");
    let mut wrong = Vec::new();
    for job in &jobs {
        assert!(
            job.state.is_final(),
            "job {} is {:?}",
            job.job_id,
            job.state
        );
        let want = expected.get(&job.job_id).cloned().unwrap_or_default();
        let got = outcome_code(job);
        if got != want {
            wrong.push(format!(
                "line {} {}: expected {want}, got {got}",
                job.line, job.job_id
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} rows differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
