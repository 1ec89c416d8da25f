//! Who we are to Smile ID: the partner id and the API key. The key is read from the
//! environment or a file at each start, never from a flag, a job spec or the database.

use std::path::Path;

use crate::api::{ApiKey, Credentials};

/// The environment variable that holds the API key. Read directly (not through clap) so
/// that `--help` can never show its value.
pub const API_KEY_ENV: &str = "SMILE_API_KEY";

/// Why there are no usable credentials (exit 1). The message never holds the key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    #[error("no API key: set {API_KEY_ENV} or pass --api-key-file FILE")]
    NoKey,
    #[error("{API_KEY_ENV} is set but empty")]
    EmptyKey,
    #[error("no partner id: pass --partner-id or set SMILE_PARTNER_ID")]
    NoPartner,
    /// The key file could not be read, or the key or partner id is malformed.
    #[error("{0}")]
    Unusable(String),
}

/// The API key: from `--api-key-file` when given, else from `SMILE_API_KEY`.
pub fn api_key(file: Option<&Path>) -> Result<ApiKey, CredentialsError> {
    if let Some(path) = file {
        if let Some(warning) = key_file_warning(path) {
            eprintln!("smile-recon: warning: {warning}");
        }
        return ApiKey::from_file(path).map_err(|e| CredentialsError::Unusable(e.to_string()));
    }
    match std::env::var(API_KEY_ENV) {
        Ok(v) => ApiKey::new(v).map_err(|_| CredentialsError::EmptyKey),
        Err(_) => Err(CredentialsError::NoKey),
    }
}

/// Whether the environment holds a key (which beats a key file named by a job spec or a
/// stored run, though not `--api-key-file`).
pub fn key_in_environment() -> bool {
    std::env::var_os(API_KEY_ENV).is_some()
}

/// A key file that group or others may read or write: a warning (the key is read anyway),
/// saying how to fix it. `None` when the file is private (or cannot be examined: reading it
/// then says why).
pub fn key_file_warning(path: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then(|| {
            format!(
                "the API key file {} is open to group or others (mode {mode:04o}); make it \
                 private: chmod 600 {}",
                path.display(),
                path.display()
            )
        })
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// The partner id with the key from `key_file` or the environment.
pub fn credentials(
    partner_id: Option<&str>,
    key_file: Option<&Path>,
) -> Result<Credentials, CredentialsError> {
    let partner_id = partner_id
        .filter(|p| !p.trim().is_empty())
        .ok_or(CredentialsError::NoPartner)?;
    let key = api_key(key_file)?;
    with_key(partner_id, key)
}

/// The partner id with a key already in memory.
pub fn with_key(partner_id: &str, key: ApiKey) -> Result<Credentials, CredentialsError> {
    Credentials::new(partner_id, key).map_err(|e| CredentialsError::Unusable(e.to_string()))
}
