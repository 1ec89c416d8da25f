//! Settings derived from the raw flags: credentials and the client configuration.
//! Precedence is flag > environment > job spec > default; the job spec layer is added by
//! the runner.

use std::path::Path;
use std::time::Duration;

use crate::api::{ApiKey, ClientConfig, Credentials, Environment};
use crate::exit::Failure;

use super::args::ApiArgs;

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

/// The client configuration from the API flags alone (no job spec).
pub fn client_config(api: &ApiArgs) -> Result<ClientConfig, Failure> {
    let credentials = credentials(api.partner_id.as_deref(), api.api_key_file.as_deref())?;
    let base_url = match &api.base_url {
        Some(url) => {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(Failure::usage(format!(
                    "--base-url must start with http:// or https://, got {url:?}"
                )));
            }
            url.clone()
        }
        None => api
            .env
            .unwrap_or(Environment::Sandbox)
            .base_url()
            .to_owned(),
    };
    Ok(ClientConfig {
        base_url,
        connect_timeout: match api.connect_timeout {
            Some(v) => seconds("--connect-timeout", v)?,
            None => DEFAULT_CONNECT_TIMEOUT,
        },
        request_timeout: match api.timeout {
            Some(v) => seconds("--timeout", v)?,
            None => DEFAULT_TIMEOUT,
        },
        credentials,
    })
}
