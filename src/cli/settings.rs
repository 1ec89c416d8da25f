//! Settings derived from the raw flags: the API key, credentials, durations. The client's
//! whole configuration is layered (flag > environment > job spec > stored > default) in
//! [`crate::runner::config::Layer`].

use std::path::Path;
use std::time::Duration;

use crate::api::{ApiKey, Credentials};
use crate::exit::Failure;

/// The environment variable that holds the API key. Read directly (not through clap) so
/// that `--help` can never show its value.
pub const API_KEY_ENV: &str = "SMILE_API_KEY";

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The API key: from `--api-key-file` when given, else from `SMILE_API_KEY`.
pub fn api_key(file: Option<&Path>) -> Result<ApiKey, Failure> {
    if let Some(path) = file {
        return ApiKey::from_file(path).map_err(|e| Failure::fatal(e.to_string()));
    }
    match std::env::var(API_KEY_ENV) {
        Ok(v) => {
            ApiKey::new(v).map_err(|_| Failure::fatal(format!("{API_KEY_ENV} is set but empty")))
        }
        Err(_) => Err(Failure::fatal(format!(
            "no API key: set {API_KEY_ENV} or pass --api-key-file FILE"
        ))),
    }
}

pub fn credentials(
    partner_id: Option<&str>,
    key_file: Option<&Path>,
) -> Result<Credentials, Failure> {
    let partner_id = partner_id.filter(|p| !p.trim().is_empty()).ok_or_else(|| {
        Failure::fatal("no partner id: pass --partner-id or set SMILE_PARTNER_ID")
    })?;
    let key = api_key(key_file)?;
    Credentials::new(partner_id, key).map_err(|e| Failure::fatal(e.to_string()))
}

pub fn seconds(flag: &str, value: f64) -> Result<Duration, Failure> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            Failure::usage(format!(
                "{flag} must be a positive number of seconds, got {value}"
            ))
        })
}
