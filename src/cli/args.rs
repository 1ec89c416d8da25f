//! The raw command line, as clap parses it. Derived settings (credentials, client
//! configuration) are built from these in [`super::settings`], so flags are read once.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::api::{Environment, SubmitEndpoint};

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
    /// List runs with their counts and states.
    Runs(RunsArgs),
    /// Write the reports of a run.
    Report(ReportArgs),
    /// The local Smile ID simulator.
    Sandbox(SandboxArgs),
    /// Print the request signature for the configured partner and key (debugging 2205).
    Sign(SignArgs),
    /// The whole pipeline end to end against an embedded sandbox, no credentials needed.
    Demo(DemoArgs),
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
    /// Which Smile ID host to use.
    #[arg(long, value_enum)]
    pub env: Option<Environment>,
    /// Send requests here instead (scheme and host, no /v1), e.g. a local sandbox.
    #[arg(long, value_name = "URL", conflicts_with = "env")]
    pub base_url: Option<String>,
    /// Seconds to wait for a whole request, body included.
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
    /// Seconds to wait for a connection.
    #[arg(long, value_name = "SECS")]
    pub connect_timeout: Option<f64>,
}

/// How hard to push the API.
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Requests per second, across all workers.
    #[arg(long, value_name = "N")]
    pub rate: Option<f64>,
    /// Requests allowed at once above the steady rate.
    #[arg(long, value_name = "N")]
    pub burst: Option<u32>,
    /// Requests in flight at once.
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Attempts per job for retryable failures before it gives up.
    #[arg(long, value_name = "N")]
    pub max_attempts: Option<u32>,
}

/// The checkpoint database and what is shown while running.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// The checkpoint database.
    #[arg(long, value_name = "PATH", default_value = "smile-recon.db")]
    pub db: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// No progress output, only the final summary and errors.
    #[arg(long, short)]
    pub quiet: bool,
    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
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
    pub store: StoreArgs,
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
    /// Which endpoint to submit to.
    #[arg(long, value_enum, default_value_t = SubmitEndpoint::VerifyAsync)]
    pub endpoint: SubmitEndpoint,
    /// The public URL Smile ID posts results to (async endpoints).
    #[arg(long, value_name = "URL")]
    pub callback_url: Option<String>,
    /// Run the built-in callback receiver on this address (async endpoints).
    #[arg(long, value_name = "ADDR")]
    pub callback_listen: Option<SocketAddr>,
    /// Seconds to wait for a callback before polling job_status instead.
    #[arg(long, value_name = "SECS")]
    pub callback_grace: Option<f64>,
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
pub struct PollArgs {
    #[command(flatten)]
    pub manifest: ManifestArgs,
    /// Give up polling jobs still pending after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub deadline: Option<f64>,
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
pub struct RunsArgs {
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The run to report on; the latest by default.
    #[arg(long)]
    pub run: Option<i64>,
    /// Comma-separated formats: json, csv, md, html.
    #[arg(long, value_delimiter = ',', default_value = "json,csv,md,html")]
    pub format: Vec<String>,
    /// Where to write the reports.
    #[arg(long, value_name = "DIR", default_value = "reports")]
    pub out: PathBuf,
    /// Show ID numbers unmasked.
    #[arg(long)]
    pub show_pii: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The partner id the sandbox accepts.
    #[arg(long, env = "SMILE_PARTNER_ID", default_value = "002")]
    pub partner_id: String,
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
    /// Where the demo writes its database and reports.
    #[arg(long, value_name = "DIR", default_value = "smile-recon-demo")]
    pub dir: PathBuf,
}
