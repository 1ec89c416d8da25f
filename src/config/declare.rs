//! Every setting of a run, declared once: its type, flag, job spec key, environment
//! variable, default and check. The [`settings!`] table generates the [`Layer`] (one layer
//! of settings, all optional), its merge, its defaults, its check and [`SETTINGS`] (what
//! `--help` and the job spec must agree with). The resolved layer is stored in
//! `runs.config_json` under these field names, so a stored run resumes with them.
//!
//! A new setting is one entry here, plus its flag in `cli::args` and its key in the job
//! spec (tests hold all three in step with this table).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::check::{self, Setting};
use super::error::ConfigError;
use crate::api::id_types::UnknownIdTypes;
use crate::api::{Environment, SubmitEndpoint};
use crate::engine::callbacks::{self, CallbackConfirm};

pub const DEFAULT_RATE: f64 = 10.0;
pub const DEFAULT_BURST: u32 = 5;
pub const DEFAULT_CONCURRENCY: usize = 16;
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
pub const DEFAULT_TIMEOUT: f64 = 30.0;
pub const DEFAULT_CONNECT_TIMEOUT: f64 = 10.0;
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

/// What the table says of one setting, for help text, documentation and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SettingInfo {
    /// The field's name in [`Layer`] and in the stored `config_json`.
    pub name: &'static str,
    /// The command-line flag (on the commands that take it).
    pub flag: &'static str,
    /// Where a job spec sets it: `[section] key`.
    pub spec: &'static str,
    /// The environment variable clap reads for the flag, if any.
    pub env: Option<&'static str>,
}

macro_rules! settings {
    ($(
        $(#[$doc:meta])*
        $name:ident : $ty:ty {
            flag: $flag:literal,
            spec: $spec:literal,
            env: $env:expr,
            default: $default:expr,
            check: $check:expr $(,)?
        }
    ),* $(,)?) => {
        /// One layer of settings; `None` means "this layer does not say".
        #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct Layer {
            $( $(#[$doc])* pub $name: Option<$ty>, )*
        }

        impl Layer {
            /// This layer where it says something, `lower` elsewhere.
            pub fn or(self, lower: Layer) -> Layer {
                Layer { $( $name: self.$name.or(lower.$name), )* }
            }

            /// The defaults, as a layer, so that what is stored is the whole effective
            /// picture.
            pub fn defaults() -> Layer {
                Layer { $( $name: $default, )* }
            }

            /// Every setting this layer gives, against its check (range, URL rules): the
            /// first one refused, named by its flag and spec key.
            pub fn check(&self) -> Result<(), ConfigError> {
                $(
                    if let Some(value) = &self.$name {
                        let setting = Setting { flag: $flag, spec: $spec };
                        ($check)(&setting, value)?;
                    }
                )*
                Ok(())
            }
        }

        /// Every setting, in declaration order.
        pub const SETTINGS: &[SettingInfo] = &[
            $( SettingInfo { name: stringify!($name), flag: $flag, spec: $spec, env: $env }, )*
        ];
    };
}

settings! {
    env: Environment {
        flag: "--env", spec: "[api] env", env: None, default: None, check: check::any,
    },
    base_url: String {
        flag: "--base-url", spec: "[api] base_url", env: None, default: None,
        check: check::base_url,
    },
    partner_id: String {
        flag: "--partner-id", spec: "[api] partner_id", env: Some("SMILE_PARTNER_ID"),
        default: None, check: check::any,
    },
    api_key_file: PathBuf {
        flag: "--api-key-file", spec: "[api] api_key_file", env: None, default: None,
        check: check::any,
    },
    timeout: f64 {
        flag: "--timeout", spec: "[api] timeout", env: None, default: Some(DEFAULT_TIMEOUT),
        check: check::seconds(MIN_SECONDS, MAX_TIMEOUT_SECONDS),
    },
    connect_timeout: f64 {
        flag: "--connect-timeout", spec: "[api] connect_timeout", env: None,
        default: Some(DEFAULT_CONNECT_TIMEOUT),
        check: check::seconds(MIN_SECONDS, MAX_TIMEOUT_SECONDS),
    },
    /// Requests per second; 0 means no limit.
    rate: f64 {
        flag: "--rate", spec: "[limits] rate", env: None, default: Some(DEFAULT_RATE),
        check: check::rate(RATE_RANGE),
    },
    burst: u32 {
        flag: "--burst", spec: "[limits] burst", env: None, default: Some(DEFAULT_BURST),
        check: check::within(1, MAX_BURST),
    },
    concurrency: usize {
        flag: "--concurrency", spec: "[limits] concurrency", env: None,
        default: Some(DEFAULT_CONCURRENCY), check: check::within(1, MAX_CONCURRENCY),
    },
    max_attempts: u32 {
        flag: "--max-attempts", spec: "[limits] max_attempts", env: None,
        default: Some(DEFAULT_MAX_ATTEMPTS), check: check::within(1, MAX_ATTEMPTS),
    },
    endpoint: SubmitEndpoint {
        flag: "--endpoint", spec: "[submit] endpoint", env: None, default: None,
        check: check::any,
    },
    callback_url: String {
        flag: "--callback-url", spec: "[submit] callback_url", env: None, default: None,
        check: check::no_user_info,
    },
    callback_listen: SocketAddr {
        flag: "--callback-listen", spec: "[submit] callback_listen", env: None, default: None,
        check: check::any,
    },
    callback_grace: f64 {
        flag: "--callback-grace", spec: "[submit] callback_grace", env: None,
        default: Some(DEFAULT_CALLBACK_GRACE),
        check: check::seconds(MIN_SECONDS, MAX_WAIT_SECONDS),
    },
    /// Whether a callback's result needs one job_status call to confirm it.
    callback_confirm: CallbackConfirm {
        flag: "--callback-confirm", spec: "[submit] callback_confirm", env: None,
        default: Some(CallbackConfirm::default()), check: check::any,
    },
    /// Seconds a callback's timestamp may be from now, past or future: at least 1 s (a
    /// clock a second off must not refuse every callback), at most a day.
    callback_max_age: f64 {
        flag: "--callback-max-age", spec: "[submit] callback_max_age", env: None,
        default: Some(callbacks::DEFAULT_MAX_AGE.as_secs_f64()), check: check::seconds(1.0, 86_400.0),
    },
    /// Seconds from the start of an execution after which pending jobs give up.
    deadline: f64 {
        flag: "--deadline", spec: "[poll] deadline", env: None, default: None,
        check: check::seconds(MIN_SECONDS, MAX_WAIT_SECONDS),
    },
    /// Seconds one job may wait for its result after its first request.
    result_timeout: f64 {
        flag: "--result-timeout", spec: "[limits] result_timeout", env: None,
        default: Some(crate::engine::DEFAULT_RESULT_TIMEOUT.as_secs_f64()),
        check: check::seconds(MIN_SECONDS, MAX_WAIT_SECONDS),
    },
    /// The first job_status poll interval (doubling to 60 s).
    poll_interval: f64 {
        flag: "--poll-interval", spec: "[poll] interval", env: None,
        default: Some(DEFAULT_POLL_INTERVAL),
        check: check::seconds(MIN_SECONDS, MAX_WAIT_SECONDS),
    },
    /// Where the job spec's `[report]` section writes (kept so that `resume` writes them too).
    report_dir: PathBuf {
        flag: "--report", spec: "[report] out", env: None, default: None, check: check::any,
    },
    report_formats: Vec<String> {
        flag: "--report-format", spec: "[report] formats", env: None, default: None,
        check: check::any,
    },
    /// A PEM file of extra trusted certificates (`--ca-cert`); only its path is kept.
    ca_cert: PathBuf {
        flag: "--ca-cert", spec: "[api] ca_cert", env: None, default: None, check: check::any,
    },
    /// Rows of an id type neither `/v1/services` nor the built-in table knows.
    unknown_id_types: UnknownIdTypes {
        flag: "--unknown-id-types", spec: "[submit] unknown_id_types", env: None,
        default: Some(UnknownIdTypes::default()), check: check::any,
    },
    /// With the run's name, its identity: the same identity unfinished resumes, finished
    /// is refused (unless `--again`). `{date}` becomes today's date; by default the
    /// manifest's SHA-256.
    run_key: String {
        flag: "--run-key", spec: "key", env: None, default: None, check: check::run_key,
    },
    /// What an unfinished run whose manifest changed gets: refused, or abandoned for a
    /// new run.
    on_changed_manifest: super::policy::OnChangedManifest {
        flag: "--on-changed-manifest", spec: "on_changed_manifest", env: None,
        default: Some(super::policy::OnChangedManifest::default()), check: check::any,
    },
    /// Whether a manifest with no rows is a run (otherwise exit 1).
    allow_empty: bool {
        flag: "--allow-empty", spec: "[manifest] allow_empty", env: None, default: None,
        check: check::any,
    },
    /// Which findings make the exit code non-zero (kept so that `resume` judges alike).
    fail_on: crate::exit::FailOn {
        flag: "--fail-on", spec: "[report] fail_on", env: None,
        default: Some(crate::exit::FailOn::default()), check: check::any,
    },
    /// Where the Prometheus metrics file is written.
    metrics_file: PathBuf {
        flag: "--metrics-file", spec: "[metrics] file", env: None, default: None,
        check: check::any,
    },
    /// Whether a final job keeps its ID number, names, date of birth and phone number (and
    /// the answer's record of the person); by default they are removed when it turns final.
    keep_pii: bool {
        flag: "--keep-pii", spec: "[privacy] keep_pii", env: None, default: Some(false),
        check: check::any,
    },
}

impl Layer {
    /// The configuration stored with a run, as the lowest layer of a resume. A stored
    /// configuration we cannot read (an older version's) just contributes nothing.
    pub fn from_stored(config_json: &str) -> Layer {
        serde_json::from_str(config_json).unwrap_or_default()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// The `[report]` section this run's configuration carries, if any.
    pub fn report(&self) -> Option<super::report::ReportSpec> {
        self.report_dir
            .clone()
            .map(|out| super::report::ReportSpec {
                formats: self
                    .report_formats
                    .clone()
                    .unwrap_or_else(super::report::default_formats),
                out,
                fail_on: self.fail_on,
            })
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

    /// The table and the stored JSON name the same fields: a run stored by this version
    /// (or an older one, whose names these are) reads back whole.
    #[test]
    fn every_declared_setting_is_a_stored_field() {
        let json: serde_json::Value = serde_json::from_str(&Layer::default().to_json()).unwrap();
        let fields = json.as_object().unwrap();
        assert_eq!(fields.len(), SETTINGS.len());
        for s in SETTINGS {
            assert!(fields.contains_key(s.name), "{} not stored", s.name);
            // A spec key is `[section] key`, or a top-level key (`key`).
            let top_level = !s.spec.contains(' ');
            assert!(
                s.flag.starts_with("--") && (top_level || s.spec.starts_with('[')),
                "{s:?}"
            );
        }
    }

    #[test]
    fn every_bound_is_checked_and_named() {
        let bad = [
            Layer {
                rate: Some(-1.0),
                ..Layer::default()
            },
            Layer {
                rate: Some(1e9),
                ..Layer::default()
            },
            Layer {
                burst: Some(0),
                ..Layer::default()
            },
            Layer {
                burst: Some(MAX_BURST + 1),
                ..Layer::default()
            },
            Layer {
                concurrency: Some(0),
                ..Layer::default()
            },
            Layer {
                max_attempts: Some(0),
                ..Layer::default()
            },
            Layer {
                timeout: Some(0.0),
                ..Layer::default()
            },
            Layer {
                deadline: Some(f64::NAN),
                ..Layer::default()
            },
            Layer {
                callback_max_age: Some(0.5),
                ..Layer::default()
            },
            Layer {
                base_url: Some("ftp://x".into()),
                ..Layer::default()
            },
            Layer {
                callback_url: Some("https://u:p@h/cb".into()),
                ..Layer::default()
            },
            Layer {
                run_key: Some(String::new()),
                ..Layer::default()
            },
            Layer {
                run_key: Some("night\nly".into()),
                ..Layer::default()
            },
            Layer {
                run_key: Some("k".repeat(201)),
                ..Layer::default()
            },
        ];
        for layer in bad {
            assert!(
                matches!(layer.check(), Err(ConfigError::Invalid { .. })),
                "{layer:?} passed"
            );
        }
        assert_eq!(Layer::defaults().check(), Ok(()));
        let zero = Layer {
            rate: Some(0.0),
            ..Layer::default()
        };
        assert_eq!(zero.check(), Ok(()));
    }
}
