//! A run's effective configuration, layered: flag (and its environment variable) > job spec >
//! the configuration stored with the run (on resume) > default. The resolved layer is stored
//! in `runs.config_json`; it holds no secret (the API key is read from the environment or a
//! file at each start, and only the file's path is kept).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::api::id_types::UnknownIdTypes;
use crate::api::{ApiKey, ClientConfig, Credentials, Environment, SubmitEndpoint};
use crate::cli::args::{ApiArgs, LimitArgs};
use crate::cli::settings;
use crate::exit::Failure;
use crate::job_spec::JobSpec;

pub const DEFAULT_RATE: f64 = 10.0;
pub const DEFAULT_BURST: u32 = 5;
pub const DEFAULT_CONCURRENCY: usize = 16;
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
pub const DEFAULT_CALLBACK_GRACE: f64 = 30.0;
pub const DEFAULT_POLL_INTERVAL: f64 = 2.0;

/// The ranges every numeric setting is checked against before a run exists (flags, job
/// spec and a stored configuration alike): a value outside is a usage error (exit 2) that
/// states the range, never a panic or a huge allocation later.
pub const RATE_RANGE: (f64, f64) = (0.001, 100_000.0);
pub const MAX_BURST: u32 = 10_000;
pub const MAX_CONCURRENCY: usize = 4_096;
pub const MAX_ATTEMPTS: u32 = 1_000;
/// The shortest duration any setting takes (1 ms).
pub const MIN_SECONDS: f64 = 0.001;
/// `--timeout` and `--connect-timeout`: at most a day.
pub const MAX_TIMEOUT_SECONDS: f64 = 86_400.0;
/// `--callback-grace`, `--poll-interval`, `--deadline`, `--result-timeout`: at most 30 days.
pub const MAX_WAIT_SECONDS: f64 = 2_592_000.0;

/// One layer of settings; `None` means "this layer does not say".
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Layer {
    pub env: Option<Environment>,
    pub base_url: Option<String>,
    pub partner_id: Option<String>,
    pub api_key_file: Option<PathBuf>,
    pub timeout: Option<f64>,
    pub connect_timeout: Option<f64>,
    /// Requests per second; 0 means no limit.
    pub rate: Option<f64>,
    pub burst: Option<u32>,
    pub concurrency: Option<usize>,
    pub max_attempts: Option<u32>,
    pub endpoint: Option<SubmitEndpoint>,
    pub callback_url: Option<String>,
    pub callback_listen: Option<SocketAddr>,
    pub callback_grace: Option<f64>,
    /// Whether a callback's result needs one job_status call to confirm it.
    pub callback_confirm: Option<crate::engine::callbacks::CallbackConfirm>,
    /// Seconds a callback's timestamp may be from now, past or future.
    pub callback_max_age: Option<f64>,
    /// Seconds from the start of an execution after which pending jobs give up.
    pub deadline: Option<f64>,
    /// Seconds one job may wait for its result after its first request.
    pub result_timeout: Option<f64>,
    /// The first job_status poll interval (doubling to 60 s).
    pub poll_interval: Option<f64>,
    /// Where the job spec's `[report]` section writes (kept so that `resume` writes them too).
    pub report_dir: Option<PathBuf>,
    pub report_formats: Option<Vec<String>>,
    /// A PEM file of extra trusted certificates (`--ca-cert`); only its path is kept.
    pub ca_cert: Option<PathBuf>,
    /// Rows of an id type neither `/v1/services` nor the built-in table knows.
    pub unknown_id_types: Option<UnknownIdTypes>,
    /// Where the Prometheus metrics file is written (`--metrics-file`, `[metrics] file`).
    pub metrics_file: Option<PathBuf>,
}

macro_rules! or_fields {
    ($hi:expr, $lo:expr, $($f:ident),*) => {
        Layer { $($f: $hi.$f.or($lo.$f)),* }
    };
}

impl Layer {
    /// This layer where it says something, `lower` elsewhere.
    pub fn or(self, lower: Layer) -> Layer {
        or_fields!(
            self,
            lower,
            env,
            base_url,
            partner_id,
            api_key_file,
            timeout,
            connect_timeout,
            rate,
            burst,
            concurrency,
            max_attempts,
            endpoint,
            callback_url,
            callback_listen,
            callback_grace,
            callback_confirm,
            callback_max_age,
            deadline,
            result_timeout,
            poll_interval,
            report_dir,
            report_formats,
            ca_cert,
            unknown_id_types,
            metrics_file
        )
    }

    pub fn from_flags(api: &ApiArgs, limits: &LimitArgs) -> Layer {
        Layer {
            env: api.env,
            base_url: api.base_url.clone(),
            partner_id: api.partner_id.clone(),
            api_key_file: api.api_key_file.clone(),
            timeout: api.timeout,
            connect_timeout: api.connect_timeout,
            rate: limits.rate,
            burst: limits.burst,
            concurrency: limits.concurrency,
            max_attempts: limits.max_attempts,
            result_timeout: limits.result_timeout,
            ca_cert: api.ca_cert.clone(),
            ..Layer::default()
        }
    }

    pub fn from_spec(spec: &JobSpec) -> Layer {
        Layer {
            env: spec.api.env,
            base_url: spec.api.base_url.clone(),
            partner_id: spec.api.partner_id.clone(),
            api_key_file: spec.api.api_key_file.clone(),
            timeout: spec.api.timeout,
            connect_timeout: spec.api.connect_timeout,
            rate: spec.limits.rate,
            burst: spec.limits.burst,
            concurrency: spec.limits.concurrency,
            max_attempts: spec.limits.max_attempts,
            endpoint: spec.submit.endpoint,
            callback_url: spec.submit.callback_url.clone(),
            callback_listen: spec.submit.callback_listen,
            callback_grace: spec.submit.callback_grace,
            callback_confirm: spec.submit.callback_confirm,
            callback_max_age: spec.submit.callback_max_age,
            deadline: spec.poll.deadline,
            result_timeout: spec.limits.result_timeout,
            poll_interval: spec.poll.interval,
            report_dir: spec.report.as_ref().map(|r| r.out.clone()),
            report_formats: spec.report.as_ref().map(|r| r.formats.clone()),
            ca_cert: spec.api.ca_cert.clone(),
            unknown_id_types: spec.submit.unknown_id_types,
            metrics_file: spec.metrics.as_ref().map(|m| m.file.clone()),
        }
    }

    /// The configuration stored with a run, as the lowest layer of a resume. A stored
    /// configuration we cannot read (an older version's) just contributes nothing.
    pub fn from_stored(config_json: &str) -> Layer {
        serde_json::from_str(config_json).unwrap_or_default()
    }

    /// The defaults, as a layer, so that what is stored is the whole effective picture.
    pub fn defaults() -> Layer {
        Layer {
            rate: Some(DEFAULT_RATE),
            burst: Some(DEFAULT_BURST),
            concurrency: Some(DEFAULT_CONCURRENCY),
            max_attempts: Some(DEFAULT_MAX_ATTEMPTS),
            timeout: Some(settings::DEFAULT_TIMEOUT.as_secs_f64()),
            connect_timeout: Some(settings::DEFAULT_CONNECT_TIMEOUT.as_secs_f64()),
            callback_grace: Some(DEFAULT_CALLBACK_GRACE),
            callback_confirm: Some(Default::default()),
            callback_max_age: Some(crate::engine::callbacks::DEFAULT_MAX_AGE.as_secs_f64()),
            poll_interval: Some(DEFAULT_POLL_INTERVAL),
            result_timeout: Some(crate::engine::DEFAULT_RESULT_TIMEOUT.as_secs_f64()),
            unknown_id_types: Some(UnknownIdTypes::default()),
            ..Layer::default()
        }
    }

    pub fn unknown_id_types(&self) -> UnknownIdTypes {
        self.unknown_id_types.unwrap_or_default()
    }

    /// The `[report]` section this run's configuration carries, if any.
    pub fn report(&self) -> Option<crate::job_spec::ReportSpec> {
        self.report_dir
            .clone()
            .map(|out| crate::job_spec::ReportSpec {
                formats: self
                    .report_formats
                    .clone()
                    .unwrap_or_else(crate::job_spec::default_formats),
                out,
            })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// Every numeric setting this layer gives, against its range (see [`RATE_RANGE`] and
    /// the constants beside it), and its URLs for user info. Called on the flags before the
    /// database is opened and on the merged configuration before a run is created.
    pub fn check(&self) -> Result<(), Failure> {
        if let Some(rate) = self.rate {
            let (lo, hi) = RATE_RANGE;
            if !(rate == 0.0 || (lo..=hi).contains(&rate)) {
                return Err(Failure::usage(format!(
                    "--rate ([limits] rate) must be 0 (no limit) or between {lo} and {hi} \
                     requests per second, got {rate}"
                )));
            }
        }
        int_range("--burst ([limits] burst)", self.burst, 1, MAX_BURST)?;
        int_range(
            "--concurrency ([limits] concurrency)",
            self.concurrency,
            1,
            MAX_CONCURRENCY,
        )?;
        int_range(
            "--max-attempts ([limits] max_attempts)",
            self.max_attempts,
            1,
            MAX_ATTEMPTS,
        )?;
        for (flag, value, max) in [
            (
                "--timeout ([api] timeout)",
                self.timeout,
                MAX_TIMEOUT_SECONDS,
            ),
            (
                "--connect-timeout ([api] connect_timeout)",
                self.connect_timeout,
                MAX_TIMEOUT_SECONDS,
            ),
            (
                "--callback-grace ([submit] callback_grace)",
                self.callback_grace,
                MAX_WAIT_SECONDS,
            ),
            (
                "--poll-interval ([poll] interval)",
                self.poll_interval,
                MAX_WAIT_SECONDS,
            ),
            (
                "--deadline ([poll] deadline)",
                self.deadline,
                MAX_WAIT_SECONDS,
            ),
            (
                "--result-timeout ([limits] result_timeout)",
                self.result_timeout,
                MAX_WAIT_SECONDS,
            ),
        ] {
            if let Some(v) = value {
                settings::seconds_within(flag, v, MIN_SECONDS, max)?;
            }
        }
        if self.base_url.is_some() {
            self.base_url()?;
        }
        if let Some(url) = &self.callback_url {
            refuse_user_info("--callback-url ([submit] callback_url)", url)?;
        }
        if self.callback_max_age.is_some() {
            self.callback_max_age()?;
        }
        Ok(())
    }

    /// The base URL requests go to. A URL with user info (`https://user:pw@host`) is
    /// refused: Smile ID authenticates by signature, and a password in the URL would be
    /// echoed in errors and stored with the run.
    pub fn base_url(&self) -> Result<String, Failure> {
        match &self.base_url {
            Some(url) => {
                refuse_user_info("--base-url ([api] base_url)", url)?;
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    // A malformed URL may still carry a password: never echoed.
                    let shown = if url.contains('@') {
                        "a URL with '@' in it (not shown)".to_owned()
                    } else {
                        format!("{url:?}")
                    };
                    return Err(Failure::usage(format!(
                        "--base-url must start with http:// or https://, got {shown}"
                    )));
                }
                Ok(url.clone())
            }
            None => Ok(self
                .env
                .unwrap_or(Environment::Sandbox)
                .base_url()
                .to_owned()),
        }
    }

    /// The client's configuration; `key` (held in memory) instead of the environment's.
    pub fn client_config(&self, key: Option<ApiKey>) -> Result<ClientConfig, Failure> {
        let credentials: Credentials = match key {
            Some(key) => {
                let partner = self.partner_id.as_deref().unwrap_or_default();
                Credentials::new(partner, key).map_err(|e| Failure::fatal(e.to_string()))?
            }
            None => {
                settings::credentials(self.partner_id.as_deref(), self.api_key_file.as_deref())?
            }
        };
        Ok(ClientConfig {
            base_url: self.base_url()?,
            connect_timeout: secs(
                "--connect-timeout",
                self.connect_timeout,
                settings::DEFAULT_CONNECT_TIMEOUT,
            )?,
            request_timeout: secs("--timeout", self.timeout, settings::DEFAULT_TIMEOUT)?,
            credentials,
            extra_roots: self.extra_roots()?,
        })
    }

    /// The certificates of `--ca-cert`, read now (once per run), checked one by one.
    pub fn extra_roots(&self) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, Failure> {
        match &self.ca_cert {
            None => Ok(Vec::new()),
            Some(path) => crate::api::load_ca_file(path)
                .map_err(|e| Failure::fatal(format!("CA certificate (--ca-cert) {e}"))),
        }
    }

    /// `None`: no rate limit (`--rate 0`).
    pub fn rate(&self) -> Result<Option<f64>, Failure> {
        match self.rate {
            Some(0.0) => Ok(None),
            Some(r) if r.is_finite() && r > 0.0 => Ok(Some(r)),
            Some(r) => Err(Failure::usage(format!(
                "--rate must be a positive number of requests per second (0: no limit), got {r}"
            ))),
            None => Ok(Some(DEFAULT_RATE)),
        }
    }

    pub fn concurrency(&self) -> Result<usize, Failure> {
        match self.concurrency.unwrap_or(DEFAULT_CONCURRENCY) {
            0 => Err(Failure::usage("--concurrency must be at least 1")),
            n => Ok(n),
        }
    }

    pub fn max_attempts(&self) -> Result<u32, Failure> {
        match self.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS) {
            0 => Err(Failure::usage("--max-attempts must be at least 1")),
            n => Ok(n),
        }
    }

    pub fn callback_grace(&self) -> Result<Duration, Failure> {
        secs(
            "--callback-grace",
            self.callback_grace,
            Duration::from_secs_f64(DEFAULT_CALLBACK_GRACE),
        )
    }

    /// `--callback-max-age`: at least 1 s (a clock a second off must not refuse every
    /// callback), at most a day.
    pub fn callback_max_age(&self) -> Result<Duration, Failure> {
        let default = crate::engine::callbacks::DEFAULT_MAX_AGE.as_secs_f64();
        match self.callback_max_age.unwrap_or(default) {
            s if s.is_finite() && (1.0..=86_400.0).contains(&s) => Ok(Duration::from_secs_f64(s)),
            s => Err(Failure::usage(format!(
                "--callback-max-age ([submit] callback_max_age) must be between 1 and 86400 \
                 seconds, got {s}"
            ))),
        }
    }

    pub fn poll_interval(&self) -> Result<Duration, Failure> {
        secs(
            "--poll-interval",
            self.poll_interval,
            Duration::from_secs_f64(DEFAULT_POLL_INTERVAL),
        )
    }

    pub fn result_timeout(&self) -> Result<Duration, Failure> {
        secs(
            "--result-timeout",
            self.result_timeout,
            crate::engine::DEFAULT_RESULT_TIMEOUT,
        )
    }

    pub fn deadline(&self) -> Result<Option<Duration>, Failure> {
        self.deadline
            .map(|d| settings::seconds("--deadline", d))
            .transpose()
    }
}

fn int_range<T>(flag: &str, value: Option<T>, lo: T, hi: T) -> Result<(), Failure>
where
    T: PartialOrd + std::fmt::Display + Copy,
{
    match value {
        Some(v) if v < lo || v > hi => Err(Failure::usage(format!(
            "{flag} must be between {lo} and {hi}, got {v}"
        ))),
        _ => Ok(()),
    }
}

/// The user info of a URL (`user:password@`), if it has any. Only the authority (between
/// `//` and the first `/`, `?` or `#`) is looked at; an `@` there means user info.
pub fn has_user_info(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority.contains('@')
}

/// `url` with any user info removed, for messages.
pub fn without_user_info(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (format!("{s}://"), r),
        None => (String::new(), url),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}{host}{tail}")
}

fn refuse_user_info(flag: &str, url: &str) -> Result<(), Failure> {
    if has_user_info(url) {
        return Err(Failure::usage(format!(
            "{flag} must not hold a user name or password (user:password@): remove it and \
             use {} (requests are authenticated by the signature; a password in the URL \
             would be shown in errors and stored with the run)",
            without_user_info(url)
        )));
    }
    Ok(())
}

fn secs(flag: &str, value: Option<f64>, default: Duration) -> Result<Duration, Failure> {
    match value {
        Some(v) => settings::seconds(flag, v),
        None => Ok(default),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn higher_layers_win_field_by_field() {
        let flags = Layer {
            rate: Some(50.0),
            ..Layer::default()
        };
        let spec = Layer {
            rate: Some(5.0),
            concurrency: Some(4),
            ..Layer::default()
        };
        let stored = Layer {
            concurrency: Some(99),
            max_attempts: Some(2),
            ..Layer::default()
        };
        let merged = flags.or(spec).or(stored).or(Layer::defaults());
        assert_eq!(merged.rate, Some(50.0));
        assert_eq!(merged.concurrency, Some(4));
        assert_eq!(merged.max_attempts, Some(2));
        assert_eq!(merged.burst, Some(DEFAULT_BURST));
    }

    #[test]
    fn stored_layer_round_trips_and_tolerates_garbage() {
        let layer = Layer {
            partner_id: Some("002".into()),
            endpoint: Some(SubmitEndpoint::Verify),
            ..Layer::defaults()
        };
        assert_eq!(Layer::from_stored(&layer.to_json()), layer);
        assert_eq!(Layer::from_stored("not json"), Layer::default());
    }

    #[test]
    fn rate_zero_means_unlimited_and_negative_is_refused() {
        let mut layer = Layer {
            rate: Some(0.0),
            ..Layer::default()
        };
        assert_eq!(layer.rate().ok().flatten(), None);
        layer.rate = Some(-1.0);
        assert!(layer.rate().is_err());
        layer.rate = None;
        assert_eq!(layer.rate().ok().flatten(), Some(DEFAULT_RATE));
    }
}
