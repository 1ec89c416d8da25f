//! The documented exit codes (PRODUCT.md, "Exit codes").

/// How a command ended. `main` turns it into the process exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
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

impl Outcome {
    pub fn code(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::Fatal => 1,
            Outcome::Usage => 2,
            Outcome::JobErrors => 3,
            Outcome::Discrepancies => 4,
            Outcome::Interrupted => 130,
        }
    }
}

/// A failure that ends the command, with the outcome it maps to and a message for the
/// operator (never containing the API key).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub outcome: Outcome,
    pub message: String,
}

impl Failure {
    pub fn fatal(message: impl Into<String>) -> Self {
        Self {
            outcome: Outcome::Fatal,
            message: message.into(),
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            outcome: Outcome::Usage,
            message: message.into(),
        }
    }
}
