//! The command line: parsing ([`args`]), the flags as a settings layer ([`flags`]) and
//! dispatch.

pub mod args;
mod batch;
mod demo;
mod export;
pub mod flags;
pub mod logging;
mod prune;
mod report;
mod retry;
mod runs;
mod sandbox;
pub mod settings;
mod validate;

use std::io::Write;

use crate::api::signature;
use crate::exit::{Error, ExitStatus};

pub use args::{Cli, Command};

/// The command line parsed. `SMILE_RECON_DB=` (set but empty) is said as such: clap would
/// say only that `--db` needs a value, naming neither the variable nor the fix. Help,
/// `--version` and every other parse error end the process as clap does.
pub fn parse() -> Result<Cli, Error> {
    match <Cli as clap::Parser>::try_parse() {
        Ok(cli) => Ok(cli),
        Err(e)
            if e.kind() == clap::error::ErrorKind::InvalidValue
                && is_db_arg(&e)
                && std::env::var_os("SMILE_RECON_DB").is_some_and(|v| v.is_empty()) =>
        {
            Err(Error::usage(
                "SMILE_RECON_DB is set but empty: unset it (`unset SMILE_RECON_DB`) or set it \
                 to the database's path",
            ))
        }
        Err(e) => e.exit(),
    }
}

/// Whether a clap error is about `--db`.
fn is_db_arg(e: &clap::Error) -> bool {
    use clap::error::{ContextKind, ContextValue};
    matches!(e.get(ContextKind::InvalidArg), Some(ContextValue::String(a)) if a.starts_with("--db"))
}

/// Runs one command to its outcome. Errors are printed here, once, without secrets.
pub async fn run(cli: Cli) -> ExitStatus {
    let result = match cli.command {
        Command::Sign(args) => sign(&args),
        Command::Run(args) => batch::run(args).await,
        Command::Submit(args) => batch::submit(args).await,
        Command::Poll(args) => batch::poll(args).await,
        Command::Resume(args) => batch::resume(args).await,
        Command::Runs(args) => runs::run(args),
        Command::Report(args) => report::run(args),
        Command::Sandbox(args) => sandbox::run(args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Completions(args) => completions(args.shell),
        Command::Man => man(),
        Command::Validate(args) => validate::run(args),
        Command::Retry(args) => retry::run(args).await,
        Command::Export(args) => export::run(args),
    };
    match result {
        Ok(outcome) => outcome,
        Err(error) => {
            logging::say(true, &error.to_string());
            error.outcome()
        }
    }
}

/// `completions SHELL`: the completion script on stdout.
fn completions(shell: clap_complete::Shell) -> Result<ExitStatus, Error> {
    let mut command = <Cli as clap::CommandFactory>::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "smile-recon", &mut out);
    if shell == clap_complete::Shell::Bash {
        // clap_complete names the bash script's subcommand states two ways for a name
        // with a hyphen (`cmd="smile__recon__subcmd__runs"` but a branch
        // `smile__subcmd__recon__subcmd__runs)`), so nothing after the subcommand
        // completed. One spelling for both.
        let text = String::from_utf8_lossy(&out).replace("smile__subcmd__recon", "smile__recon");
        return write_stdout(text.as_bytes());
    }
    write_stdout(&out)
}

/// `man`: the man page (roff) on stdout, the subcommands included.
fn man() -> Result<ExitStatus, Error> {
    let command = <Cli as clap::CommandFactory>::command();
    let mut out = Vec::new();
    let page = clap_mangen::Man::new(command.clone());
    page.render_title(&mut out)
        .and_then(|()| page.render_name_section(&mut out))
        .and_then(|()| page.render_synopsis_section(&mut out))
        .and_then(|()| page.render_description_section(&mut out))
        .and_then(|()| page.render_options_section(&mut out))
        .and_then(|()| page.render_subcommands_section(&mut out))
        .map_err(|e| Error::fatal(format!("cannot render the man page: {e}")))?;
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("smile-recon {}", sub.get_name());
        out.extend_from_slice(format!(".SH \"{}\"\n", name.to_uppercase()).as_bytes());
        let page = clap_mangen::Man::new(sub.clone().bin_name(name));
        page.render_synopsis_section(&mut out)
            .and_then(|()| page.render_description_section(&mut out))
            .and_then(|()| page.render_options_section(&mut out))
            .map_err(|e| Error::fatal(format!("cannot render the man page: {e}")))?;
    }
    page.render_version_section(&mut out)
        .map_err(|e| Error::fatal(format!("cannot render the man page: {e}")))?;
    write_stdout(&out)
}

fn write_stdout(bytes: &[u8]) -> Result<ExitStatus, Error> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(|e| Error::fatal(format!("cannot write to stdout: {e}")))?;
    Ok(ExitStatus::Success)
}

/// `sign`: the signature alone on stdout; a generated timestamp on stderr.
fn sign(args: &args::SignArgs) -> Result<ExitStatus, Error> {
    let credentials = crate::config::credentials::credentials(
        args.partner_id.as_deref(),
        args.api_key_file.as_deref(),
    )?;
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
        .map_err(|e| Error::fatal(format!("cannot write to stdout: {e}")))?;
    Ok(ExitStatus::Success)
}
