//! The raw command line, as clap parses it. Derived settings (credentials, client
//! configuration) are built from these in [`super::settings`], so flags are read once.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Batch runner for Smile ID Identity Verification and job_status reconciliation.
///
/// The API key is read from the SMILE_API_KEY environment variable or from
/// --api-key-file; it is never printed, logged or stored.
#[derive(Debug, Parser)]
#[command(name = "smile-recon", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a job spec from jobs/ (mode, manifest, target, limits, reports); re-running an
    /// unfinished spec resumes it.
    Run(RunArgs),
    /// Identity Verification for every row of a manifest.
    Submit(SubmitArgs),
    /// job_status for every (user_id, job_id) row until complete, a deadline, or a
    /// permanent error.
    Poll(PollArgs),
    /// Continue an interrupted run.
    Resume(ResumeArgs),
    /// List runs with their counts and states; `runs abandon ID` retires a run.
    Runs(RunsArgs),
    /// Write the reports of a run.
    Report(ReportArgs),
    /// The local Smile ID simulator.
    Sandbox(SandboxArgs),
    /// Print the request signature for the configured partner and key (debugging 2205).
    Sign(SignArgs),
    /// The whole pipeline end to end against an embedded sandbox, no credentials needed.
    Demo(DemoArgs),
    /// Print a shell completion script (bash, zsh, fish, ...) on stdout.
    Completions(CompletionsArgs),
    /// Print the man page (roff) on stdout.
    Man,
    /// A dry run: read and validate a manifest, count its rows by country and id_type,
    /// list invalid rows and duplicate job_ids, and say how long the run will take at the
    /// rate. Opens no database, sends nothing; exit 0 when every row can be sent, 3 when
    /// some cannot.
    Validate(ValidateArgs),
    /// Put a run's failed and gave_up jobs back and continue the run as `resume --run ID`
    /// does. Jobs Smile ID accepted go out under a new job_id (derived from the old one
    /// and the retry count); invalid rows are never retried.
    Retry(RetryArgs),
    /// Every job of a run with its full result, or (--events) the trail of every request
    /// and callback, on stdout.
    Export(ExportArgs),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell, e.g. `smile-recon completions bash > /etc/bash_completion.d/smile-recon`.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Who we are to Smile ID and where requests go.
#[derive(Debug, Clone, Args)]
pub struct ApiArgs {
    /// Smile ID partner id (e.g. 002).
    #[arg(long, env = "SMILE_PARTNER_ID")]
    pub partner_id: Option<String>,
    /// Read the API key from this file instead of the SMILE_API_KEY variable.
    #[arg(long, value_name = "FILE")]
    pub api_key_file: Option<PathBuf>,
    /// Which Smile ID host to use [default: sandbox].
    #[arg(long, value_enum)]
    pub env: Option<super::flags::EnvironmentArg>,
    /// Send requests here instead (scheme and host, no /v1), e.g. a local sandbox.
    #[arg(long, value_name = "URL", conflicts_with = "env")]
    pub base_url: Option<String>,
    /// Seconds to wait for a whole request, body included [default: 30].
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
    /// Seconds to wait for a connection [default: 10].
    #[arg(long, value_name = "SECS")]
    pub connect_timeout: Option<f64>,
    /// Also trust the certificates in this PEM file (a private CA, a TLS-inspecting
    /// proxy's, or `sandbox --tls-cert`'s); the built-in roots stay trusted.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
}

/// How hard to push the API.
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Requests per second, across all workers; 0 for no limit [default: 10].
    #[arg(long, value_name = "N", value_parser = super::flags::parse_rate)]
    pub rate: Option<f64>,
    /// Requests allowed at once above the steady rate [default: 5].
    #[arg(long, value_name = "N")]
    pub burst: Option<u32>,
    /// Requests in flight at once [default: 16].
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Attempts per job for retryable failures before it gives up [default: 5].
    #[arg(long, value_name = "N")]
    pub max_attempts: Option<u32>,
    /// Seconds a job may wait for its result after its first request (a callback or
    /// job_status still pending); it is asked once more at that moment, then gives up,
    /// "still pending at the deadline", and the run ends with exit 3 (4 in a poll run when
    /// the row expected a result) [default: 3600].
    #[arg(long, value_name = "SECS")]
    pub result_timeout: Option<f64>,
    /// Keep every final job's ID number, names, date of birth and phone number (and the
    /// answer's record of the person) in the database. Without it they are replaced, as
    /// each job turns final, by the masked ID number and a keyed hash of it; `retry` of a
    /// submit run then cannot send those jobs again.
    #[arg(long)]
    pub keep_pii: bool,
}

/// The checkpoint database and what is shown while running.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// The checkpoint database.
    #[arg(
        long,
        value_name = "PATH",
        env = "SMILE_RECON_DB",
        default_value = "smile-recon.db"
    )]
    pub db: PathBuf,
}

/// `run`'s database: the flag, `SMILE_RECON_DB`, else the spec's `db`, else the default.
#[derive(Debug, Clone, Args)]
pub struct SpecStoreArgs {
    /// The checkpoint database [default: the spec's `db`, else smile-recon.db].
    #[arg(long, value_name = "PATH", env = "SMILE_RECON_DB")]
    pub db: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// No progress output, only the final summary and errors.
    #[arg(long, short)]
    pub quiet: bool,
    /// Log line format: text, or one JSON object per line (each with the run id).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Write Prometheus metrics (text exposition, for node_exporter's textfile collector)
    /// to this file, atomically, every 5 s and when the run ends.
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The job spec (TOML).
    pub spec: PathBuf,
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub store: SpecStoreArgs,
    #[command(flatten)]
    pub identity: IdentityArgs,
    #[command(flatten)]
    pub report: RunReportArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Where the rows come from.
#[derive(Debug, Clone, Args)]
pub struct ManifestArgs {
    /// A CSV file with a header, or a SQLite database (with --query).
    #[arg(long, value_name = "FILE")]
    pub manifest: PathBuf,
    /// For a SQLite manifest: the SELECT that returns the rows.
    #[arg(long, value_name = "SQL")]
    pub query: Option<String>,
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    pub manifest: ManifestArgs,
    #[command(flatten)]
    pub identity: IdentityArgs,
    /// Which endpoint to submit to [default: verify-async; a resumed run keeps its own].
    #[arg(long, value_enum)]
    pub endpoint: Option<super::flags::SubmitEndpointArg>,
    /// The public URL Smile ID posts results to (async endpoints).
    #[arg(long, value_name = "URL")]
    pub callback_url: Option<String>,
    /// Run the built-in callback receiver on this address (async endpoints).
    #[arg(long, value_name = "ADDR")]
    pub callback_listen: Option<SocketAddr>,
    /// Seconds to wait for a callback before polling job_status instead [default: 30].
    #[arg(long, value_name = "SECS")]
    pub callback_grace: Option<f64>,
    /// Whether a callback's result is final only once one job_status call confirms it
    /// [default: job-status].
    #[arg(long, value_enum, value_name = "HOW")]
    pub callback_confirm: Option<super::flags::CallbackConfirmArg>,
    /// Seconds a callback's timestamp may be from now, past or future [default: 300].
    #[arg(long, value_name = "SECS")]
    pub callback_max_age: Option<f64>,
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub report: RunReportArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// A row whose id type neither /v1/services nor the built-in table knows: refuse it
    /// (invalid, naming its line and field) or allow it (sent; the API judges) [default:
    /// refuse].
    #[arg(long, value_enum, value_name = "WHAT")]
    pub unknown_id_types: Option<super::flags::UnknownIdTypesArg>,
}

#[derive(Debug, Args)]
pub struct PollArgs {
    #[command(flatten)]
    pub manifest: ManifestArgs,
    #[command(flatten)]
    pub identity: IdentityArgs,
    /// Give up polling jobs still pending after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub deadline: Option<f64>,
    /// Seconds before the first re-poll of a pending job, doubling up to 60 s [default: 2].
    #[arg(long, value_name = "SECS")]
    pub poll_interval: Option<f64>,
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub report: RunReportArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The run to resume; the latest unfinished one by default.
    #[arg(long)]
    pub run: Option<i64>,
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct RunsArgs {
    #[command(subcommand)]
    pub action: Option<RunsAction>,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Only runs whose name contains this (case-sensitive).
    #[arg(long, value_name = "TEXT")]
    pub name: Option<String>,
    /// Only runs with this status.
    #[arg(long, value_name = "STATUS", value_parser = ["staging", "ready", "running", "interrupted", "finished", "abandoned"])]
    pub status: Option<String>,
    /// Only runs started since a date (2026-11-20, UTC) or for a duration (7d, 12h, 30m).
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// At most this many runs, the newest.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// One JSON array on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The run to report on; the latest by default.
    #[arg(long)]
    pub run: Option<i64>,
    /// Comma-separated formats: json, csv, md, html.
    #[arg(long, value_delimiter = ',', default_value = crate::report::DEFAULT_FORMATS)]
    pub format: Vec<String>,
    /// Where to write the reports.
    #[arg(long, value_name = "DIR", default_value = "reports")]
    pub out: PathBuf,
    /// Show ID numbers unmasked.
    #[arg(long)]
    pub show_pii: bool,
    /// Drift against this run (default: the previous run of the same name).
    #[arg(long, value_name = "RUN")]
    pub compare: Option<i64>,
    /// Which findings make the exit code non-zero.
    #[arg(long, value_enum, default_value_t = FailOn::Discrepancies)]
    pub fail_on: FailOn,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Reports written when a run stops (a job spec's `[report]` section sets the same).
#[derive(Debug, Clone, Args)]
pub struct RunReportArgs {
    /// Write the reports into this folder when the run's jobs are all final (kept with
    /// the run, so `resume` writes them too). `{run}`, `{name}` and `{date}` in it are
    /// filled in; it is created and checked writable before the first request.
    #[arg(long = "report", value_name = "DIR")]
    pub report_dir: Option<PathBuf>,
    /// Comma-separated report formats: json, csv, md, html.
    #[arg(long = "report-format", value_delimiter = ',', value_name = "FORMATS")]
    pub report_format: Option<Vec<String>>,
    /// Show ID numbers unmasked in the reports.
    #[arg(long)]
    pub show_pii: bool,
    /// Which findings make the exit code non-zero: discrepancies (4, then job errors 3),
    /// errors (3 for jobs that ended in error), or none (0 once the run finished); kept
    /// with the run [default: discrepancies].
    #[arg(long, value_enum)]
    pub fail_on: Option<FailOn>,
}

/// Which run a command is: its identity, and what to do when that identity ran before.
#[derive(Debug, Clone, Args)]
pub struct IdentityArgs {
    /// With the run's name, its identity (`{date}` becomes today's date) [default: the
    /// manifest's SHA-256]. The same identity unfinished resumes; finished, it is refused.
    #[arg(long, value_name = "KEY")]
    pub run_key: Option<String>,
    /// Run an identity that finished before once more, as a new run: new job_ids, every
    /// row sent (and paid for) again.
    #[arg(long)]
    pub again: bool,
    /// An unfinished run whose manifest changed: refuse (exit 1) or abandon it and start
    /// a new run [default: refuse].
    #[arg(long, value_enum, value_name = "WHAT")]
    pub on_changed_manifest: Option<super::flags::OnChangedManifestArg>,
    /// Accept a manifest without rows (otherwise exit 1: a failed export goes unnoticed).
    #[arg(long)]
    pub allow_empty: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    None,
    Discrepancies,
    Errors,
}

/// `sandbox`: serve the simulator, or (`sandbox generate`) write test data for it.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SandboxArgs {
    #[command(subcommand)]
    pub command: Option<SandboxCommand>,
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The partner id the sandbox accepts.
    #[arg(long, env = "SMILE_PARTNER_ID", default_value = "002")]
    pub partner_id: String,
    /// Read the API key from this file instead of SMILE_API_KEY. With neither, the sandbox
    /// makes a demo key and prints it.
    #[arg(long, value_name = "FILE")]
    pub api_key_file: Option<PathBuf>,
    /// Seed for the generated registry and for every injected fault.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// How many synthetic people the generated registry holds.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1000,
        conflicts_with = "registry"
    )]
    pub people: usize,
    /// Load the registry from this CSV (as written by `sandbox generate --registry`).
    #[arg(long, value_name = "FILE")]
    pub registry: Option<PathBuf>,
    /// Jobs that exist before start, from a verify manifest (for poll runs).
    #[arg(long, value_name = "FILE")]
    pub preload_jobs: Option<PathBuf>,
    /// Seconds each preloaded job stays pending after start.
    #[arg(long, value_name = "SECS", default_value_t = 0.0)]
    pub preload_pending: f64,
    /// Added to every API answer, in milliseconds, counted from the request's arrival and
    /// kept to about 0.1 ms (a timer thread of its own, not tokio's millisecond wheel).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub latency_ms: u64,
    /// Each answer's latency varies by up to this many milliseconds either way.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub latency_jitter_ms: u64,
    /// Fraction of requests answered HTTP 500 (HTML body) without being processed.
    #[arg(long, value_name = "FRACTION", default_value_t = 0.0)]
    pub fail_rate: f64,
    /// Requests beyond this many in one second get 429 with Retry-After, unprocessed.
    #[arg(long, value_name = "N")]
    pub throttle_rps: Option<u32>,
    /// Fraction of callbacks never sent (job_status still has the result).
    #[arg(long, value_name = "FRACTION", default_value_t = 0.0)]
    pub drop_callbacks: f64,
    /// The ID authority is down (1015) from START to START+DURATION seconds after start,
    /// e.g. `5:30`.
    #[arg(long, value_name = "START:DURATION")]
    pub outage: Option<String>,
    /// Milliseconds an async job takes before its result and callback.
    #[arg(long, value_name = "MS", default_value_t = 50)]
    pub callback_delay_ms: u64,
    /// Attempts per callback while the receiver does not answer 2xx.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub callback_attempts: u32,
    /// Requests allowed per ID number in the window (2222 beyond).
    #[arg(long, value_name = "N", default_value_t = 30)]
    pub id_limit: u32,
    /// The per-ID-number window, in seconds (3 days by default).
    #[arg(long, value_name = "SECS", default_value_t = 259_200.0)]
    pub id_limit_window: f64,
    /// How job_status answers its errors (2303, 2304 job not found, 2305, 2313): `http`,
    /// an unsigned {"code", "error"} body with a 4xx; `signed`, a signed HTTP 200 body
    /// with job_complete false and the code; `mixed`, either, drawn per answer from --seed.
    #[arg(long, value_enum, value_name = "SHAPE", default_value_t = StatusErrorsArg::Http)]
    pub status_errors: StatusErrorsArg,
    /// How the timestamps of signed answers and callbacks are written: `millis-z`,
    /// 2026-11-22T15:37:19.123Z; `micros`, 2026-11-22T15:37:19.123456 (UTC, no offset),
    /// as Smile ID's Identity Verification page shows its answers.
    #[arg(long, value_enum, value_name = "FORM", default_value_t = TimestampsArg::MillisZ)]
    pub timestamps: TimestampsArg,
    /// Serve HTTPS with a self-signed certificate made at start (for 127.0.0.1, ::1 and
    /// localhost); clients trust it with `--ca-cert` (see --tls-cert).
    #[arg(long)]
    pub tls: bool,
    /// Write the --tls certificate here (PEM) before listening; without it, the
    /// certificate is printed on stderr.
    #[arg(long, value_name = "FILE", requires = "tls")]
    pub tls_cert: Option<PathBuf>,
}

/// `--status-errors`: the two readings of seed 000 for job_status errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StatusErrorsArg {
    Http,
    Signed,
    Mixed,
}

/// `--timestamps`: the two forms Smile ID's pages show for what its servers sign.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TimestampsArg {
    MillisZ,
    Micros,
}

impl From<TimestampsArg> for crate::api::TimestampStyle {
    fn from(a: TimestampsArg) -> Self {
        match a {
            TimestampsArg::MillisZ => Self::MillisZ,
            TimestampsArg::Micros => Self::MicrosNoOffset,
        }
    }
}

impl From<StatusErrorsArg> for crate::sandbox::StatusErrors {
    fn from(a: StatusErrorsArg) -> Self {
        match a {
            StatusErrorsArg::Http => Self::Http,
            StatusErrorsArg::Signed => Self::Signed,
            StatusErrorsArg::Mixed => Self::Mixed,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Write a registry of synthetic people and a manifest whose rows say which
    /// ResultCode each must get.
    Generate(GenerateArgs),
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Synthetic people in the registry.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub people: usize,
    /// Manifest rows (default: one per person).
    #[arg(long, value_name = "N")]
    pub rows: Option<usize>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where to write the registry CSV (for `sandbox --registry`).
    #[arg(long, value_name = "FILE")]
    pub registry: PathBuf,
    /// Where to write the manifest CSV.
    #[arg(long, value_name = "FILE")]
    pub manifest: PathBuf,
    /// Relative weights of each kind of row: exact, partial, transposed, nomatch,
    /// invalid (unknown ID, 1013), badformat (ID failing its regex, 1014).
    #[arg(
        long,
        default_value = "exact=60,partial=15,transposed=5,nomatch=15,invalid=5"
    )]
    pub mix: String,
    /// Write a job_status manifest (user_id,job_id,expected_result_code,expected_status)
    /// instead, and the jobs behind it to --jobs for `sandbox --preload-jobs`.
    #[arg(long)]
    pub poll: bool,
    /// With --poll: where the jobs go (default: the manifest's name with .jobs.csv).
    #[arg(long, value_name = "FILE", requires = "poll")]
    pub jobs: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The timestamp to sign, verbatim; now (ISO-8601 UTC) by default.
    #[arg(long)]
    pub timestamp: Option<String>,
    /// Smile ID partner id (e.g. 002).
    #[arg(long, env = "SMILE_PARTNER_ID")]
    pub partner_id: Option<String>,
    /// Read the API key from this file instead of the SMILE_API_KEY variable.
    #[arg(long, value_name = "FILE")]
    pub api_key_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the demo writes its database, manifests and reports.
    #[arg(long, value_name = "DIR", default_value = "smile-recon-demo")]
    pub dir: PathBuf,
    /// Rows to re-verify.
    #[arg(long, value_name = "N", default_value_t = 3000)]
    pub rows: usize,
    /// People in the sandbox's generated registry.
    #[arg(long, value_name = "N", default_value_t = 3000)]
    pub people: usize,
    /// Requests per second (0: no limit).
    #[arg(long, value_name = "N", default_value_t = 400.0)]
    pub rate: f64,
}

/// `runs abandon ID`, `runs prune --older-than D`.
#[derive(Debug, Subcommand)]
pub enum RunsAction {
    /// Retire a run that must not be resumed (its manifest is gone or changed): it is
    /// kept in history with its jobs and events, `resume` refuses it, and a job spec or
    /// manifest of the same name starts a new run.
    Abandon(AbandonArgs),
    /// Delete runs created before a cutoff that are finished or abandoned, with their
    /// jobs, events and executions, and give the space back (the database is rebuilt).
    /// Unfinished runs are kept. Refused while a run holds the database.
    Prune(PruneArgs),
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Runs started before this: a duration back from now (90d, 12h, 30m) or a date
    /// (2026-11-20, UTC).
    #[arg(long, value_name = "WHEN")]
    pub older_than: String,
    /// List what would be deleted; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct AbandonArgs {
    /// The run to abandon.
    #[arg(value_name = "ID")]
    pub run: i64,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `validate`'s mode when it reads a manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    Submit,
    Poll,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// A job spec (TOML): its manifest, mode and rate.
    #[arg(value_name = "SPEC", conflicts_with_all = ["manifest", "query", "mode"],
          required_unless_present = "manifest")]
    pub spec: Option<PathBuf>,
    /// A CSV file with a header, or a SQLite database (with --query).
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// For a SQLite manifest: the SELECT that returns the rows.
    #[arg(long, value_name = "SQL", requires = "manifest")]
    pub query: Option<String>,
    /// Verify rows (submit) or job_status rows (poll) [default: submit].
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// Requests per second the run will use, for the time it takes (0: no limit)
    /// [default: the spec's, else 10].
    #[arg(long, value_name = "N", value_parser = super::flags::parse_rate)]
    pub rate: Option<f64>,
    /// A row whose id type the built-in table does not know: refuse it (invalid) or
    /// allow it [default: the spec's, else refuse].
    #[arg(long, value_enum, value_name = "WHAT")]
    pub unknown_id_types: Option<super::flags::UnknownIdTypesArg>,
    /// One JSON object on stdout instead of the text (every invalid row and duplicate).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RetryArgs {
    /// The run whose jobs to put back.
    #[arg(long, value_name = "ID")]
    pub run: i64,
    /// Which final states go back (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "STATES", default_value = "failed,gave_up",
          value_parser = ["failed", "gave_up"])]
    pub state: Vec<String>,
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[cfg(test)]
mod help_tests {
    use clap::CommandFactory;

    use super::Cli;
    use crate::config::{Layer, SETTINGS};

    /// Every declared setting has its flag on some run command, with the environment
    /// variable the declaration names, and the default the help text states is the one the
    /// declaration applies (the flags are options, so that a job spec or a stored run can
    /// fill them; clap cannot show them).
    #[test]
    fn flags_and_stated_defaults_match_the_declaration() {
        let cli = Cli::command();
        let defaults: serde_json::Value =
            serde_json::from_str(&Layer::defaults().to_json()).unwrap();
        for setting in SETTINGS {
            let long = setting.flag.trim_start_matches("--");
            let args: Vec<_> = ["run", "submit", "poll", "resume"]
                .iter()
                .filter_map(|c| cli.find_subcommand(c))
                .flat_map(|c| c.get_arguments())
                .filter(|a| a.get_long() == Some(long))
                .collect();
            assert!(!args.is_empty(), "{} has no flag", setting.flag);
            let stated = match &defaults[setting.name] {
                serde_json::Value::Number(n) => n.as_f64().map(|f| format!("[default: {f}]")),
                serde_json::Value::String(t) => Some(format!("[default: {t}]")),
                _ => None,
            };
            for arg in args {
                let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
                assert_eq!(env.as_deref(), setting.env, "{}", setting.flag);
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                if let Some(stated) = &stated {
                    assert!(
                        help.contains(stated),
                        "{}: {help:?} lacks {stated}",
                        setting.flag
                    );
                }
            }
        }
    }
}

/// `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The run to export.
    #[arg(long)]
    pub run: i64,
    /// csv or jsonl (one JSON object a line).
    #[arg(long, value_enum, default_value_t = ExportFormatArg::Csv)]
    pub format: ExportFormatArg,
    /// Only jobs in these states (comma-separated: done, failed, gave_up, invalid, ...).
    #[arg(long, value_delimiter = ',', conflicts_with = "events")]
    pub state: Vec<String>,
    /// The trail of every request sent and callback taken instead of the jobs.
    #[arg(long)]
    pub events: bool,
    /// Show ID numbers and the answers' personal fields unmasked, as far as the database
    /// still holds them: a run without --keep-pii kept only the masked ID number of each
    /// final job, and none of the answers' personal fields.
    #[arg(long, conflicts_with = "events")]
    pub show_pii: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormatArg {
    Csv,
    Jsonl,
}
