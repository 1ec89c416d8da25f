//! How a command ends: the documented exit codes ([`ExitStatus`]) and the one error a command
//! can end with ([`Error`]), each variant mapped to its exit status by [`Error::outcome`].

use crate::config::ConfigError;
use crate::config::credentials::CredentialsError;
use crate::manifest::ManifestError;
use crate::store::StoreError;

/// How a command ended. `main` turns it into the process exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// Every job final.
    Success,
    /// Configuration, database, credentials or circuit breaker: nothing more can be done.
    Fatal,
    /// The command line was wrong.
    Usage,
    /// Finished, but some jobs ended in error or gave up.
    JobErrors,
    /// Finished with reconciliation discrepancies.
    Discrepancies,
    /// Stopped by Ctrl-C / SIGTERM; the run can be resumed.
    Interrupted,
}

impl ExitStatus {
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Fatal => 1,
            ExitStatus::Usage => 2,
            ExitStatus::JobErrors => 3,
            ExitStatus::Discrepancies => 4,
            ExitStatus::Interrupted => 130,
        }
    }
}

/// Which findings make a finished run's exit code non-zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailOn {
    /// Nothing: 0 once the run finished.
    None,
    /// Discrepancies (4), then jobs in error (3).
    #[default]
    Discrepancies,
    /// Jobs in error (3).
    Errors,
}

impl FailOn {
    pub fn as_str(self) -> &'static str {
        match self {
            FailOn::None => "none",
            FailOn::Discrepancies => "discrepancies",
            FailOn::Errors => "errors",
        }
    }
}

/// Why a command stopped, with a message for the operator (never containing the API key).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line was wrong (a flag's value, a combination of flags).
    #[error("{0}")]
    Usage(String),
    /// A setting refused before the run exists.
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// The checkpoint database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The manifest could not be read.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A job spec that cannot be read or parsed (the message names the file and line).
    #[error("{0}")]
    Spec(String),
    /// The manifest is not the one the run was started with.
    #[error(
        "{manifest} has changed since run {run} started (SHA-256 {then} then, {now} now); a \
         run is bound to its manifest: restore the file to resume it, or retire it with \
         `{abandon}` (a job spec's `on_changed_manifest = \"abandon\"` does this \
         unattended)"
    )]
    ManifestChanged {
        manifest: String,
        run: i64,
        then: String,
        now: String,
        /// `runs abandon` for this run and database, ready to paste.
        abandon: String,
    },
    /// The run's identity already ran to its end: running it again would pay for every
    /// row again.
    #[error(
        "run {run} ({name}, key {key}) finished on {date}: this manifest was already \
         processed. Running it again is refused so that no row is paid for twice; add \
         --again to make a deliberate new run of it (new job_ids, every row sent again)"
    )]
    AlreadyFinished {
        run: i64,
        name: String,
        key: String,
        date: String,
    },
    /// The identity ran before and its runs were pruned: as for a finished run, running
    /// it again would pay for every row again.
    #[error(
        "{name} (key {key}) ran before in this database (its runs were pruned): running it \
         again is refused so that no row is paid for twice; add --again to make a \
         deliberate new run of it (new job_ids, every row sent again)"
    )]
    RanBeforePruned { name: String, key: String },
    /// A manifest without a single row (a failed export, most often).
    #[error(
        "{manifest} has no rows (only a header?); run {run} is abandoned. Pass --allow-empty \
         (or `allow_empty = true` under [manifest]) if an empty manifest is expected"
    )]
    EmptyManifest { manifest: String, run: i64 },
    /// A resumed run asked to continue on another endpoint.
    #[error(
        "run {run} was started with --endpoint {started}; it cannot continue with --endpoint \
         {now} (resume it without --endpoint)"
    )]
    EndpointChanged {
        run: i64,
        started: String,
        now: &'static str,
    },
    #[error("no run {0} in this database")]
    NoSuchRun(i64),
    /// `resume` found nothing to do: the run is finished, or there is no unfinished run.
    #[error("nothing to resume: {0}")]
    NothingToResume(String),
    /// The circuit breaker stopped the run; its jobs stay pending.
    #[error(
        "stopped after repeated systemic failures: {why}; the remaining jobs are left \
         pending, fix the cause and run `{resume}`"
    )]
    Breaker {
        run: i64,
        why: String,
        /// The command that continues the run, ready to paste.
        resume: String,
    },
    /// The engine failed (its database writer, its dispatcher).
    #[error("{0}")]
    Engine(String),
    /// Anything else that ends a command (a file that cannot be written, a server that
    /// cannot start): the message says what and where.
    #[error("{0}")]
    Fatal(String),
}

impl Error {
    /// The exit status this error ends the process with.
    pub fn outcome(&self) -> ExitStatus {
        match self {
            Error::Usage(_) | Error::EndpointChanged { .. } => ExitStatus::Usage,
            // Nothing was left to do: not a failure (a finished run and no run alike).
            Error::NothingToResume(_) => ExitStatus::Success,
            Error::Config(ConfigError::CaCert(_)) => ExitStatus::Fatal,
            Error::Config(_) => ExitStatus::Usage,
            Error::Credentials(_)
            | Error::Store(_)
            | Error::Manifest(_)
            | Error::Spec(_)
            | Error::ManifestChanged { .. }
            | Error::AlreadyFinished { .. }
            | Error::RanBeforePruned { .. }
            | Error::EmptyManifest { .. }
            | Error::NoSuchRun(_)
            | Error::Breaker { .. }
            | Error::Engine(_)
            | Error::Fatal(_) => ExitStatus::Fatal,
        }
    }

    /// The process exit code.
    pub fn code(&self) -> u8 {
        self.outcome().code()
    }

    pub fn fatal(message: impl Into<String>) -> Self {
        Error::Fatal(message.into())
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Error::Usage(message.into())
    }
}

/// Any error as [`Error::Fatal`], by its message: for errors of a kind no variant names
/// (a report that cannot be written, a generated file).
pub fn fatal(e: impl std::fmt::Display) -> Error {
    Error::Fatal(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_error_has_its_documented_exit_code() {
        let cases = [
            (Error::usage("x"), 2),
            (ConfigError::NeedsCallback("verify-async").into(), 2),
            (ConfigError::CaCert("x".into()).into(), 1),
            (CredentialsError::NoKey.into(), 1),
            (Error::NothingToResume("x".into()), 0),
            (
                Error::AlreadyFinished {
                    run: 1,
                    name: "n".into(),
                    key: "k".into(),
                    date: "d".into(),
                },
                1,
            ),
            (
                Error::RanBeforePruned {
                    name: "n".into(),
                    key: "k".into(),
                },
                1,
            ),
            (
                Error::EndpointChanged {
                    run: 1,
                    started: "verify".into(),
                    now: "verify-async",
                },
                2,
            ),
            (
                Error::Breaker {
                    run: 1,
                    why: "x".into(),
                    resume: "smile-recon resume --run 1".into(),
                },
                1,
            ),
            (Error::fatal("x"), 1),
        ];
        for (error, code) in cases {
            assert_eq!(error.code(), code, "{error:?}");
        }
    }
}
