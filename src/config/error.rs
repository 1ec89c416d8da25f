//! What can be wrong with a run's configuration, found before the run exists.

/// A setting refused, or settings that do not go together. Every one is a usage error
/// (exit 2) except an unreadable `--ca-cert` (exit 1: a file, not the command line).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A value outside its range or breaking its rule; `setting` is its flag.
    #[error("{message}")]
    Invalid {
        setting: &'static str,
        message: String,
    },
    /// An async endpoint with nowhere for its callbacks to arrive.
    #[error(
        "--endpoint {0} needs --callback-listen ADDR (the built-in receiver) and/or \
         --callback-url URL (where Smile ID posts results)"
    )]
    NeedsCallback(&'static str),
    /// The certificates of `--ca-cert` could not be read.
    #[error("CA certificate (--ca-cert) {0}")]
    CaCert(String),
}
