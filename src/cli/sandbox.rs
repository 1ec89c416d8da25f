//! `sandbox` and `sandbox generate`: the command-line face of [`crate::sandbox`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::RngExt;

use crate::api::ApiKey;
use crate::exit::{Error, ExitStatus, fatal};
use crate::sandbox::{self, Faults, Mix, Outage, Registry, SandboxConfig};

use super::args::{GenerateArgs, SandboxArgs, SandboxCommand};
use crate::config::check::seconds_within;
use crate::config::credentials::{self, API_KEY_ENV};

pub async fn run(args: SandboxArgs) -> Result<ExitStatus, Error> {
    match &args.command {
        Some(SandboxCommand::Generate(g)) => generate(g),
        None => serve(&args).await,
    }
}

fn fraction(flag: &str, v: f64) -> Result<f64, Error> {
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(Error::usage(format!(
            "{flag} must be between 0 and 1, got {v}"
        )))
    }
}

/// The sandbox's own ranges: a value outside is a usage error (exit 2) naming the range.
pub const MAX_PEOPLE: usize = 1_000_000;
pub const MAX_ROWS: usize = 10_000_000;
/// `--latency-ms`, `--latency-jitter-ms`: at most 10 minutes.
pub const MAX_LATENCY_MS: u64 = 600_000;
/// `--callback-delay-ms`: at most an hour.
pub const MAX_CALLBACK_DELAY_MS: u64 = 3_600_000;
pub const MAX_CALLBACK_ATTEMPTS: u32 = 100;
/// `--id-limit-window`, `--preload-pending`, `--outage`: at most 30 days.
pub const MAX_SANDBOX_SECONDS: f64 = 2_592_000.0;

pub(super) fn at_most<T: PartialOrd + std::fmt::Display>(
    flag: &str,
    v: T,
    lo: T,
    hi: T,
) -> Result<T, Error> {
    if v < lo || v > hi {
        return Err(Error::usage(format!(
            "{flag} must be between {lo} and {hi}, got {v}"
        )));
    }
    Ok(v)
}

fn secs_or_zero(flag: &str, v: f64) -> Result<Duration, Error> {
    if v == 0.0 {
        Ok(Duration::ZERO)
    } else {
        Ok(seconds_within(flag, v, 0.0, MAX_SANDBOX_SECONDS)?)
    }
}

/// `START:DURATION` in seconds.
fn outage(text: &str) -> Result<Outage, Error> {
    let bad = || {
        Error::usage(format!(
            "--outage takes START:DURATION in seconds, got {text:?}"
        ))
    };
    let (a, b) = text.split_once(':').ok_or_else(bad)?;
    let a: f64 = a.trim().parse().map_err(|_| bad())?;
    let b: f64 = b.trim().parse().map_err(|_| bad())?;
    Ok(Outage {
        start_after: secs_or_zero("--outage START", a)?,
        duration: secs_or_zero("--outage DURATION", b)?,
    })
}

/// The key clients must sign with: from the file or SMILE_API_KEY, else a fresh demo key
/// (printed, since a client cannot talk to the sandbox without it).
fn api_key(file: Option<&Path>) -> Result<(ApiKey, bool), Error> {
    if file.is_some() || std::env::var_os(API_KEY_ENV).is_some() {
        return Ok((credentials::api_key(file)?, false));
    }
    let mut rng = rand::rng();
    let key: String = (0..32)
        .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.random_range(0..36)]))
        .collect();
    let key = ApiKey::new(format!("sandbox-demo-{key}")).map_err(fatal)?;
    Ok((key, true))
}

fn config(args: &SandboxArgs) -> Result<(SandboxConfig, bool), Error> {
    at_most("--people", args.people, 1, MAX_PEOPLE)?;
    at_most("--latency-ms", args.latency_ms, 0, MAX_LATENCY_MS)?;
    at_most(
        "--latency-jitter-ms",
        args.latency_jitter_ms,
        0,
        MAX_LATENCY_MS,
    )?;
    at_most(
        "--callback-delay-ms",
        args.callback_delay_ms,
        0,
        MAX_CALLBACK_DELAY_MS,
    )?;
    at_most(
        "--callback-attempts",
        args.callback_attempts,
        1,
        MAX_CALLBACK_ATTEMPTS,
    )?;
    let (key, demo) = api_key(args.api_key_file.as_deref())?;
    let registry = match &args.registry {
        Some(path) => Registry::from_csv(path).map_err(fatal)?,
        None => Registry::generate(args.people, args.seed),
    };
    let mut config = SandboxConfig::new(args.partner_id.clone(), key, registry);
    config.faults = Faults {
        latency: Duration::from_millis(args.latency_ms),
        latency_jitter: Duration::from_millis(args.latency_jitter_ms),
        fail_rate: fraction("--fail-rate", args.fail_rate)?,
        throttle_rps: args.throttle_rps,
        drop_callbacks: fraction("--drop-callbacks", args.drop_callbacks)?,
        outage: args.outage.as_deref().map(outage).transpose()?,
    };
    config.seed = args.seed;
    config.status_errors = args.status_errors.into();
    config.timestamps = args.timestamps.into();
    config.callback_delay = Duration::from_millis(args.callback_delay_ms);
    config.callback_attempts = args.callback_attempts;
    config.id_limit = args.id_limit;
    config.id_limit_window = seconds_within(
        "--id-limit-window",
        args.id_limit_window,
        crate::config::declare::MIN_SECONDS,
        MAX_SANDBOX_SECONDS,
    )?;
    if let Some(path) = &args.preload_jobs {
        let rows = sandbox::generate::read_rows_csv(path).map_err(fatal)?;
        let pending = secs_or_zero("--preload-pending", args.preload_pending)?;
        config.preload = sandbox::generate::preload(&rows, pending);
    }
    if args.tls {
        config.tls = Some(tls_config(args.tls_cert.as_deref())?);
    }
    Ok((config, demo))
}

/// A fresh self-signed certificate, written (PEM) to `cert_file` before the sandbox
/// listens, so that a script which reads the address can trust the file at once; without a
/// file, the certificate goes to stderr.
fn tls_config(cert_file: Option<&Path>) -> Result<sandbox::TlsConfig, Error> {
    let tls = sandbox::TlsConfig::self_signed().map_err(fatal)?;
    match cert_file {
        Some(path) => write_atomically(path, tls.cert_pem()).map_err(|e| {
            Error::fatal(format!(
                "--tls-cert {}: cannot write the certificate: {e}",
                path.display()
            ))
        })?,
        None => eprint!(
            "smile-recon sandbox: TLS certificate (for 127.0.0.1, ::1, localhost; \
             --tls-cert FILE writes it to a file):\n{}",
            tls.cert_pem()
        ),
    }
    Ok(tls)
}

/// Writes beside the target and renames, so a reader never sees half a certificate.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map_or_else(|| "cert".into(), |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

async fn serve(args: &SandboxArgs) -> Result<ExitStatus, Error> {
    let (config, demo) = config(args)?;
    let people = config.registry.len();
    let preloaded = config.preload.len();
    let demo_key = demo.then(|| config.api_key.expose().to_owned());
    let running = sandbox::start(config, args.listen).await.map_err(fatal)?;
    let stop = StopSignals::install();
    {
        // The address first and alone on stdout, so a script started with port 0 can
        // read where to connect.
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {}", running.base_url())
            .and_then(|()| out.flush())
            .map_err(|e| Error::fatal(format!("cannot write to stdout: {e}")))?;
    }
    eprintln!(
        "smile-recon sandbox: partner {}, {people} people in the registry, {preloaded} \
         preloaded jobs; stats at {}/__sandbox/stats; Ctrl-C stops",
        args.partner_id,
        running.base_url()
    );
    if let Some(key) = demo_key {
        eprintln!("no {API_KEY_ENV} set: clients must sign with this demo key:");
        eprintln!("  export {API_KEY_ENV}={key}");
    }
    stop.wait().await;
    eprintln!("smile-recon sandbox: stopping");
    let stats = running.stats();
    running.shutdown().await;
    eprintln!(
        "smile-recon sandbox: {} requests, busiest second {}, {} jobs accepted, {} duplicates",
        stats.total_requests,
        stats.max_requests_in_one_second,
        stats.accepted_submissions,
        stats.duplicate_rejections
    );
    Ok(ExitStatus::Success)
}

/// Ctrl-C, or SIGTERM (what `kill` and CI send). Installed before the address is
/// printed: a script that reads the address and at once sends SIGTERM must find the
/// handler in place (without it, the default action kills the process uncleanly).
struct StopSignals {
    term: Option<tokio::signal::unix::Signal>,
    interrupt: Option<tokio::signal::unix::Signal>,
}

impl StopSignals {
    fn install() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        Self {
            term: signal(SignalKind::terminate()).ok(),
            interrupt: signal(SignalKind::interrupt()).ok(),
        }
    }

    async fn wait(mut self) {
        use crate::runner::signals::recv_or_never;
        tokio::select! {
            _ = recv_or_never(&mut self.term) => {}
            _ = recv_or_never(&mut self.interrupt) => {}
        }
    }
}

fn jobs_path(manifest: &Path) -> PathBuf {
    let stem = manifest
        .file_stem()
        .map_or_else(|| "manifest".into(), |s| s.to_string_lossy().into_owned());
    manifest.with_file_name(format!("{stem}.jobs.csv"))
}

fn generate(args: &GenerateArgs) -> Result<ExitStatus, Error> {
    let mix: Mix = args
        .mix
        .parse()
        .map_err(|e| Error::usage(format!("--mix: {e}")))?;
    at_most("--people", args.people, 1, MAX_PEOPLE)?;
    let rows = at_most("--rows", args.rows.unwrap_or(args.people), 0, MAX_ROWS)?;
    let per_id = rows.div_ceil(args.people);
    if per_id > 30 {
        eprintln!(
            "warning: {rows} rows over {} people is up to {per_id} requests per ID number; \
             the sandbox answers 2222 beyond its per-ID limit (30 by default)",
            args.people
        );
    }
    let g = sandbox::generate(args.people, rows, args.seed, &mix);
    g.write_registry_csv(&args.registry).map_err(fatal)?;
    if args.poll {
        let jobs = args
            .jobs
            .clone()
            .unwrap_or_else(|| jobs_path(&args.manifest));
        g.write_poll_manifest_csv(&args.manifest).map_err(fatal)?;
        g.write_manifest_csv(&jobs).map_err(fatal)?;
        eprintln!(
            "wrote {} people to {}, {} job_status rows to {} and their jobs to {} \
             (start the sandbox with --registry {} --preload-jobs {})",
            g.registry.len(),
            args.registry.display(),
            g.rows.len(),
            args.manifest.display(),
            jobs.display(),
            args.registry.display(),
            jobs.display()
        );
    } else {
        g.write_manifest_csv(&args.manifest).map_err(fatal)?;
        eprintln!(
            "wrote {} people to {} and {} rows to {}",
            g.registry.len(),
            args.registry.display(),
            g.rows.len(),
            args.manifest.display()
        );
    }
    let mut by_code = std::collections::BTreeMap::<&str, usize>::new();
    for r in &g.rows {
        *by_code.entry(r.expected_result_code.as_str()).or_default() += 1;
    }
    let summary: Vec<String> = by_code.iter().map(|(c, n)| format!("{c}: {n}")).collect();
    eprintln!("expected result codes: {}", summary.join(", "));
    Ok(ExitStatus::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outage_flag_reads_start_and_duration() {
        let o = outage("5:30").unwrap();
        assert_eq!(o.start_after, Duration::from_secs(5));
        assert_eq!(o.duration, Duration::from_secs(30));
        assert!(outage("5").is_err());
        assert!(outage("a:1").is_err());
        assert!(outage("-1:1").is_err());
    }

    #[test]
    fn jobs_file_sits_beside_the_manifest() {
        assert_eq!(
            jobs_path(Path::new("/tmp/poll.csv")),
            PathBuf::from("/tmp/poll.jobs.csv")
        );
    }
}
