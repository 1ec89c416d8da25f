//! `demo`: the whole product against an embedded sandbox on loopback, no credentials. A
//! re-verification of generated rows through verify-async with callbacks (some dropped, so
//! polling picks them up) and a few faults, then a reconciliation poll over the same jobs
//! with some deliberately wrong expectations, then every report.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::RngExt;

use crate::api::{ApiKey, Category, SubmitEndpoint};
use crate::exit::{Error, ExitStatus, fatal};
use crate::job_spec::RunMode;
use crate::manifest::{ExpectedStatus, ManifestSource};
use crate::report::{Format, ReportOptions};
use crate::runner::{self, Invocation, Layer, ProgressMode, Target};
use crate::sandbox::{self, Faults, Mix, SandboxConfig, StatusErrors};
use crate::store::{JobState, Store};

use super::args::DemoArgs;
use super::logging;
use crate::exit::FailOn;

const PARTNER: &str = "002";
const SEED: u64 = 2026;

/// Rows of the reconciliation manifest: every job of the re-verification with what it
/// got as the expectation, one in `wrong_every` deliberately wrong, and a few job_ids
/// Smile ID never saw.
fn write_poll_manifest(
    db: &Path,
    run_id: i64,
    path: &Path,
    wrong_every: u64,
) -> Result<(u64, u64), Error> {
    let store = Store::open_read_only(db).map_err(fatal)?;
    let mut out =
        csv::Writer::from_path(path).map_err(|e| fatal(format!("{}: {e}", path.display())))?;
    let err = |e: csv::Error| fatal(format!("{}: {e}", path.display()));
    out.write_record([
        "user_id",
        "job_id",
        "expected_result_code",
        "expected_status",
    ])
    .map_err(err)?;
    let (mut rows, mut planted) = (0u64, 0u64);
    let mut failure = None;
    store
        .for_each_job(run_id, |job| {
            if job.state != JobState::Done || job.result_code.is_none() {
                return Ok(());
            }
            rows += 1;
            let code = job.result_code.clone().unwrap_or_default();
            let approved = job.category.is_some_and(Category::is_approved);
            let (mut code, mut status) = (
                code,
                if approved {
                    ExpectedStatus::Approved
                } else {
                    ExpectedStatus::Rejected
                },
            );
            if rows % wrong_every == 0 {
                planted += 1;
                match planted % 3 {
                    0 => {
                        status = if approved {
                            ExpectedStatus::Rejected
                        } else {
                            ExpectedStatus::Approved
                        }
                    }
                    1 => {
                        code = if code == "1020" {
                            "1021".into()
                        } else {
                            "1020".into()
                        }
                    }
                    _ => status = ExpectedStatus::Pending,
                }
            }
            if let Err(e) = out.write_record([&job.user_id, &job.job_id, &code, status.as_str()]) {
                failure = Some(e);
            }
            Ok(())
        })
        .map_err(fatal)?;
    if let Some(e) = failure {
        return Err(err(e));
    }
    for i in 0..3 {
        out.write_record([
            format!("demo-user-{i}"),
            format!("never-submitted-{i}"),
            "1020".into(),
            "approved".into(),
        ])
        .map_err(err)?;
        planted += 1;
        rows += 1;
    }
    out.flush()
        .map_err(|e| fatal(format!("{}: {e}", path.display())))?;
    Ok((rows, planted))
}

pub async fn run(args: DemoArgs) -> Result<ExitStatus, Error> {
    let started = Instant::now();
    let (db, progress) = prepare(&args)?;
    let dir = &args.dir;
    let (sandbox, key, manifest) = start_sandbox(&args).await?;
    let flags = Layer {
        base_url: Some(sandbox.base_url()),
        partner_id: Some(PARTNER.into()),
        rate: Some(args.rate),
        burst: Some(20),
        concurrency: Some(64),
        max_attempts: Some(8),
        timeout: Some(10.0),
        callback_grace: Some(2.0),
        poll_interval: Some(0.5),
        ..Layer::default()
    };
    let request = |command: &str, mode, source, flags: Layer| Invocation {
        command: command.into(),
        target: Target::Manifest { mode, source },
        flags,
        db: db.clone(),
        progress,
        report: None,
        api_key: Some(key.clone()),
        again: false,
    };

    println!("\n1/2 re-verification: submit --endpoint verify-async --callback-listen 127.0.0.1:0");
    let submit = runner::execute(request(
        "demo: submit",
        RunMode::Submit,
        ManifestSource::Csv(manifest.clone()),
        Layer {
            endpoint: Some(SubmitEndpoint::VerifyAsync),
            callback_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            ..flags.clone()
        },
    ))
    .await?;
    if submit.outcome == ExitStatus::Interrupted {
        return Ok(ExitStatus::Interrupted);
    }
    write_reports(&db, submit.run_id, &dir.join("reverify"))?;

    let poll_manifest = dir.join("reconcile.csv");
    let (rows, planted) = write_poll_manifest(&db, submit.run_id, &poll_manifest, 40)?;
    println!(
        "\n2/2 reconciliation: poll over {rows} jobs in {} ({planted} expectations planted \
         wrong)",
        poll_manifest.display()
    );
    let poll = runner::execute(request(
        "demo: poll",
        RunMode::Poll,
        ManifestSource::Csv(poll_manifest),
        Layer {
            deadline: Some(120.0),
            ..flags
        },
    ))
    .await?;
    if poll.outcome == ExitStatus::Interrupted {
        return Ok(ExitStatus::Interrupted);
    }
    let summary = write_reports(&db, poll.run_id, &dir.join("reconcile"))?;
    let cron = super::report::apply_fail_on(poll.outcome, &summary, FailOn::Discrepancies);
    print_end(&sandbox.stats(), started, dir, cron);
    Ok(ExitStatus::Success)
}

/// The flags checked, logging set up, the demo's folder made and its old database removed.
fn prepare(args: &DemoArgs) -> Result<(PathBuf, ProgressMode), Error> {
    super::sandbox::at_most("--people", args.people, 1, super::sandbox::MAX_PEOPLE)?;
    super::sandbox::at_most("--rows", args.rows, 1, super::sandbox::MAX_PEOPLE)?;
    Layer {
        rate: Some(args.rate),
        ..Layer::default()
    }
    .check()?;
    let progress = ProgressMode::choose(false, std::io::stderr().is_terminal());
    logging::init(
        super::args::LogFormat::Text,
        progress == ProgressMode::Bar,
        false,
    );
    let dir = &args.dir;
    std::fs::create_dir_all(dir).map_err(|e| fatal(format!("{}: {e}", dir.display())))?;
    let db = dir.join("demo.db");
    for suffix in ["", "-wal", "-shm", ".lock"] {
        let mut p = db.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
    Ok((db, progress))
}

/// The sandbox: a generated registry, a few faults, a key made up for this demo only.
/// Returns it with the key and the manifest of rows to re-verify.
async fn start_sandbox(
    args: &DemoArgs,
) -> Result<(sandbox::RunningSandbox, ApiKey, PathBuf), Error> {
    let dir = &args.dir;
    let mix: Mix = "exact=60,partial=15,transposed=5,nomatch=12,invalid=5,badformat=3"
        .parse()
        .map_err(Error::usage)?;
    let generated = sandbox::generate(args.people, args.rows, SEED, &mix);
    let manifest = dir.join("reverify.csv");
    generated.write_manifest_csv(&manifest).map_err(fatal)?;
    generated
        .write_registry_csv(&dir.join("people.csv"))
        .map_err(fatal)?;
    let mut rng = rand::rng();
    let key: String = (0..32)
        .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.random_range(0..36)]))
        .collect();
    let key = ApiKey::new(format!("demo-{key}")).map_err(fatal)?;
    let mut config = SandboxConfig::new(PARTNER.into(), key.clone(), generated.registry.clone());
    config.seed = SEED;
    // job_status errors in both of seed 000's shapes (signed 200 bodies and 4xx bodies),
    // drawn per answer, so the demo meets both readings a real server may give.
    config.status_errors = StatusErrors::Mixed;
    config.callback_delay = Duration::from_millis(300);
    config.faults = Faults {
        latency: Duration::from_millis(20),
        latency_jitter: Duration::from_millis(15),
        fail_rate: 0.02,
        throttle_rps: None,
        drop_callbacks: 0.1,
        outage: None,
    };
    let sandbox = sandbox::start(config, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(fatal)?;
    println!(
        "smile-recon demo: sandbox on {} (2% HTTP 500s, 10% of callbacks dropped); {} rows \
         to re-verify in {}",
        sandbox.base_url(),
        args.rows,
        manifest.display()
    );
    Ok((sandbox, key, manifest))
}

/// Every report format of a run, into `out`.
fn write_reports(db: &Path, run_id: i64, out: &Path) -> Result<crate::report::Summary, Error> {
    let options = ReportOptions {
        formats: Format::ALL.to_vec(),
        out: out.to_owned(),
        show_pii: false,
        compare: None,
    };
    super::report::write(db, run_id, &options)
}

/// What the sandbox saw, and where the reconciliation report is.
fn print_end(stats: &sandbox::Stats, started: Instant, dir: &Path, cron: ExitStatus) {
    println!(
        "\nsandbox saw {} requests ({} HTTP 500s injected), delivered {} callbacks and dropped \
         {}; no job_id accepted twice: {}",
        stats.total_requests,
        stats.injected_failures,
        stats.callbacks_delivered,
        stats.callbacks_dropped,
        stats.accepted_by_job_id.values().all(|n| *n <= 1)
    );
    println!(
        "demo finished in {:.1} s. Open {} in a browser. (A cron job running this \
         reconciliation would exit {}: discrepancies found.)",
        started.elapsed().as_secs_f64(),
        dir.join("reconcile").join("report.html").display(),
        cron.code()
    );
}
