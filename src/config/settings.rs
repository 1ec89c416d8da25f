//! The settings of a run, resolved once from the merged [`Layer`] before the run exists:
//! durations as `Duration`s, the rate as `None` for no limit, the endpoint chosen. They
//! build the client's and the engine's configuration; neither knows of layers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::credentials::{self, CredentialsError};
use super::declare::{self as d, Layer};
use super::error::ConfigError;
use super::report::ReportSpec;
use crate::api::id_types::UnknownIdTypes;
use crate::api::{ApiKey, ClientConfig, Credentials, Environment, SubmitEndpoint};
use crate::engine::{Mode, callbacks};
use crate::store::RunMode;

/// A run's settings, every one checked and typed.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The merged layer as resolved (the endpoint chosen): what is stored with the run.
    pub layer: Layer,
    /// Submit (with its endpoint and callback wait) or poll.
    pub mode: Mode,
    pub base_url: String,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Requests per second; `None`: no limit.
    pub rate: Option<f64>,
    pub burst: u32,
    pub concurrency: usize,
    pub max_attempts: u32,
    pub deadline: Option<Duration>,
    pub result_timeout: Duration,
    pub poll_interval: Duration,
    pub callback_listen: Option<SocketAddr>,
    pub callback_confirm: callbacks::CallbackConfirm,
    pub callback_max_age: Duration,
    pub unknown_id_types: UnknownIdTypes,
    pub metrics_file: Option<PathBuf>,
    /// The `[report]` section the run carries (from its job spec, kept for `resume`).
    pub report: Option<ReportSpec>,
    /// Final jobs keep their personal data.
    pub keep_pii: bool,
}

impl Layer {
    /// `flags` over `lower` (job spec over stored configuration) over the defaults. The API
    /// key's order is `--api-key-file` > `SMILE_API_KEY` (`key_in_env`) > a key file named
    /// by a lower layer, so a key in the environment drops the lower layers' file.
    pub fn merge(flags: Layer, mut lower: Layer, key_in_env: bool) -> Layer {
        if flags.api_key_file.is_none() && key_in_env {
            lower.api_key_file = None;
        }
        flags.or(lower).or(Layer::defaults())
    }
}

impl Settings {
    /// Checks every setting of `layer` (the merged layers) and resolves them for a run of
    /// `mode`: a submit run's endpoint defaults to verify-async, and an async endpoint
    /// needs somewhere for its callbacks to arrive; a poll run has no endpoint.
    pub fn resolve(layer: &Layer, mode: RunMode) -> Result<Settings, ConfigError> {
        layer.check()?;
        let mut layer = layer.clone();
        layer.endpoint = match mode {
            RunMode::Poll => None,
            RunMode::Submit => Some(layer.endpoint.unwrap_or(SubmitEndpoint::VerifyAsync)),
        };
        let secs = |v: Option<f64>, default: f64| Duration::from_secs_f64(v.unwrap_or(default));
        let engine_mode = engine_mode(
            &layer,
            secs(layer.callback_grace, d::DEFAULT_CALLBACK_GRACE),
        )?;
        Ok(Settings {
            mode: engine_mode,
            base_url: match &layer.base_url {
                Some(url) => url.clone(),
                None => layer
                    .env
                    .unwrap_or(Environment::Sandbox)
                    .base_url()
                    .to_owned(),
            },
            timeout: secs(layer.timeout, d::DEFAULT_TIMEOUT),
            connect_timeout: secs(layer.connect_timeout, d::DEFAULT_CONNECT_TIMEOUT),
            rate: match layer.rate.unwrap_or(d::DEFAULT_RATE) {
                0.0 => None,
                r => Some(r),
            },
            burst: layer.burst.unwrap_or(d::DEFAULT_BURST),
            concurrency: layer.concurrency.unwrap_or(d::DEFAULT_CONCURRENCY),
            max_attempts: layer.max_attempts.unwrap_or(d::DEFAULT_MAX_ATTEMPTS),
            deadline: layer.deadline.map(Duration::from_secs_f64),
            result_timeout: layer.result_timeout.map_or(
                crate::engine::DEFAULT_RESULT_TIMEOUT,
                Duration::from_secs_f64,
            ),
            poll_interval: secs(layer.poll_interval, d::DEFAULT_POLL_INTERVAL),
            callback_listen: layer.callback_listen,
            callback_confirm: layer.callback_confirm.unwrap_or_default(),
            callback_max_age: layer
                .callback_max_age
                .map_or(callbacks::DEFAULT_MAX_AGE, Duration::from_secs_f64),
            unknown_id_types: layer.unknown_id_types.unwrap_or_default(),
            metrics_file: layer.metrics_file.clone(),
            report: layer.report(),
            keep_pii: layer.keep_pii.unwrap_or(false),
            layer,
        })
    }

    /// The partner id and key: `key` (held in memory) when given, else the key file or the
    /// environment's key.
    pub fn credentials(&self, key: Option<ApiKey>) -> Result<Credentials, CredentialsError> {
        match key {
            Some(key) => {
                credentials::with_key(self.layer.partner_id.as_deref().unwrap_or_default(), key)
            }
            None => credentials::credentials(
                self.layer.partner_id.as_deref(),
                self.layer.api_key_file.as_deref(),
            ),
        }
    }

    /// The client's configuration; the certificates of `--ca-cert` are read now (once per
    /// run), checked one by one.
    pub fn client_config(&self, credentials: Credentials) -> Result<ClientConfig, ConfigError> {
        let extra_roots = match &self.layer.ca_cert {
            None => Vec::new(),
            Some(path) => {
                crate::api::load_ca_file(path).map_err(|e| ConfigError::CaCert(e.to_string()))?
            }
        };
        Ok(ClientConfig {
            base_url: self.base_url.clone(),
            connect_timeout: self.connect_timeout,
            request_timeout: self.timeout,
            credentials,
            extra_roots,
        })
    }

    /// What the callback receiver accepts.
    pub fn callback_policy(&self) -> callbacks::Policy {
        callbacks::Policy {
            confirm: self.callback_confirm,
            max_age: self.callback_max_age,
            limits: callbacks::Limits::default(),
        }
    }
}

/// The engine's mode: a submit run's endpoint (and where its callbacks go), or poll.
fn engine_mode(layer: &Layer, callback_grace: Duration) -> Result<Mode, ConfigError> {
    let Some(endpoint) = layer.endpoint else {
        return Ok(Mode::Poll);
    };
    if endpoint.endpoint().is_async()
        && layer.callback_url.is_none()
        && layer.callback_listen.is_none()
    {
        return Err(ConfigError::NeedsCallback(endpoint.as_str()));
    }
    Ok(Mode::Submit {
        endpoint,
        callback_url: layer.callback_url.clone(),
        callback_grace,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(l: Layer) -> Layer {
        Layer::merge(l, Layer::default(), false)
    }

    #[test]
    fn rate_zero_means_unlimited_and_defaults_apply() {
        let s = Settings::resolve(
            &layer(Layer {
                rate: Some(0.0),
                ..Layer::default()
            }),
            RunMode::Poll,
        )
        .unwrap();
        assert_eq!(s.rate, None);
        let s = Settings::resolve(&layer(Layer::default()), RunMode::Poll).unwrap();
        assert_eq!(s.rate, Some(d::DEFAULT_RATE));
        assert_eq!(s.burst, d::DEFAULT_BURST);
        assert_eq!(s.timeout, Duration::from_secs(30));
        assert_eq!(s.result_timeout, crate::engine::DEFAULT_RESULT_TIMEOUT);
        assert_eq!(s.callback_max_age, callbacks::DEFAULT_MAX_AGE);
        let bad = layer(Layer {
            rate: Some(-1.0),
            ..Layer::default()
        });
        assert!(matches!(
            Settings::resolve(&bad, RunMode::Poll),
            Err(ConfigError::Invalid {
                setting: "--rate",
                ..
            })
        ));
    }

    /// The burst is range-checked wherever it comes from (a stored run's as well).
    #[test]
    fn burst_out_of_range_is_refused() {
        let bad = layer(Layer {
            burst: Some(0),
            ..Layer::default()
        });
        assert!(matches!(
            Settings::resolve(&bad, RunMode::Poll),
            Err(ConfigError::Invalid {
                setting: "--burst",
                ..
            })
        ));
    }

    #[test]
    fn endpoint_defaults_to_verify_async_and_needs_a_callback() {
        let plain = layer(Layer::default());
        assert_eq!(
            Settings::resolve(&plain, RunMode::Submit).unwrap_err(),
            ConfigError::NeedsCallback("verify-async")
        );
        let listen = layer(Layer {
            callback_listen: Some("127.0.0.1:0".parse().unwrap()),
            ..Layer::default()
        });
        let s = Settings::resolve(&listen, RunMode::Submit).unwrap();
        assert_eq!(s.layer.endpoint, Some(SubmitEndpoint::VerifyAsync));
        let poll = Settings::resolve(
            &layer(Layer {
                endpoint: Some(SubmitEndpoint::Verify),
                ..Layer::default()
            }),
            RunMode::Poll,
        )
        .unwrap();
        assert_eq!((poll.layer.endpoint, &poll.mode), (None, &Mode::Poll));
    }

    #[test]
    fn a_key_in_the_environment_beats_a_lower_layers_key_file() {
        let lower = Layer {
            api_key_file: Some("spec.key".into()),
            ..Layer::default()
        };
        assert_eq!(
            Layer::merge(Layer::default(), lower.clone(), true).api_key_file,
            None
        );
        assert_eq!(
            Layer::merge(Layer::default(), lower.clone(), false).api_key_file,
            Some("spec.key".into())
        );
        let flag = Layer {
            api_key_file: Some("flag.key".into()),
            ..Layer::default()
        };
        assert_eq!(
            Layer::merge(flag, lower, true).api_key_file,
            Some("flag.key".into())
        );
    }
}
