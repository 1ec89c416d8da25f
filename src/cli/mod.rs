//! The command line: parsing ([`args`]), derived settings ([`settings`]) and dispatch.

pub mod args;
mod batch;
mod demo;
pub mod logging;
mod report;
mod sandbox;
pub mod settings;

use std::io::Write;

use crate::api::signature;
use crate::exit::{Failure, Outcome};

pub use args::{Cli, Command};

/// Runs one command to its outcome. Errors are printed here, once, without secrets.
pub async fn run(cli: Cli) -> Outcome {
    let result = match cli.command {
        Command::Sign(args) => sign(&args),
        Command::Run(args) => batch::run(args).await,
        Command::Submit(args) => batch::submit(args).await,
        Command::Poll(args) => batch::poll(args).await,
        Command::Resume(args) => batch::resume(args).await,
        Command::Runs(args) => batch::runs(args),
        Command::Report(args) => report::run(args),
        Command::Sandbox(args) => sandbox::run(args).await,
        Command::Demo(args) => demo::run(args).await,
    };
    match result {
        Ok(outcome) => outcome,
        Err(failure) => {
            logging::say(true, &failure.to_string());
            failure.outcome
        }
    }
}

/// `sign`: the signature alone on stdout; a generated timestamp on stderr.
fn sign(args: &args::SignArgs) -> Result<Outcome, Failure> {
    let credentials =
        settings::credentials(args.partner_id.as_deref(), args.api_key_file.as_deref())?;
    let timestamp = match &args.timestamp {
        Some(t) => t.clone(),
        None => {
            let t = signature::now_timestamp();
            eprintln!("timestamp: {t}");
            t
        }
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", credentials.sign(&timestamp))
        .map_err(|e| Failure::fatal(format!("cannot write to stdout: {e}")))?;
    Ok(Outcome::Success)
}
