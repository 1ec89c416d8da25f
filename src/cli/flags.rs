//! The flags of `run`, `submit`, `poll` and `resume` as the highest settings layer (see
//! [`crate::config`], where each setting is declared), and the value enums clap parses for
//! settings whose types live below the command line.

use clap::ValueEnum;

use super::args::{
    ApiArgs, FailOn, IdentityArgs, LimitArgs, OutputArgs, PollArgs, RunReportArgs, SubmitArgs,
};
use crate::api::id_types::UnknownIdTypes;
use crate::api::{Environment, SubmitEndpoint};
use crate::config::Layer;
use crate::engine::callbacks::CallbackConfirm;
use crate::job_spec::OnChangedManifest;

/// The flags every run command takes.
pub fn common(api: &ApiArgs, limits: &LimitArgs, output: &OutputArgs) -> Layer {
    Layer {
        env: api.env.map(Into::into),
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
        keep_pii: limits.keep_pii.then_some(true),
        ca_cert: api.ca_cert.clone(),
        metrics_file: output.metrics_file.clone(),
        ..Layer::default()
    }
}

/// The identity and report flags of `run`, `submit` and `poll` (kept with the run).
pub fn identity(identity: &IdentityArgs, report: &RunReportArgs, lower: Layer) -> Layer {
    Layer {
        run_key: identity.run_key.clone(),
        on_changed_manifest: identity.on_changed_manifest.map(Into::into),
        allow_empty: identity.allow_empty.then_some(true),
        report_dir: report.report_dir.clone(),
        report_formats: report.report_format.clone(),
        fail_on: report.fail_on.map(Into::into),
        ..lower
    }
}

/// `submit`'s flags.
pub fn submit(args: &SubmitArgs) -> Layer {
    let layer = Layer {
        endpoint: args.endpoint.map(Into::into),
        callback_url: args.callback_url.clone(),
        callback_listen: args.callback_listen,
        callback_grace: args.callback_grace,
        callback_confirm: args.callback_confirm.map(Into::into),
        callback_max_age: args.callback_max_age,
        unknown_id_types: args.unknown_id_types.map(Into::into),
        ..common(&args.api, &args.limits, &args.output)
    };
    identity(&args.identity, &args.report, layer)
}

/// `poll`'s flags.
pub fn poll(args: &PollArgs) -> Layer {
    let layer = Layer {
        deadline: args.deadline,
        poll_interval: args.poll_interval,
        ..common(&args.api, &args.limits, &args.output)
    };
    identity(&args.identity, &args.report, layer)
}

/// `--on-changed-manifest`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OnChangedManifestArg {
    /// Exit 1, naming the run; a person decides.
    Refuse,
    /// Abandon the unfinished run (kept in history) and start a new one.
    Abandon,
}

impl From<OnChangedManifestArg> for OnChangedManifest {
    fn from(a: OnChangedManifestArg) -> Self {
        match a {
            OnChangedManifestArg::Refuse => Self::Refuse,
            OnChangedManifestArg::Abandon => Self::Abandon,
        }
    }
}

impl From<FailOn> for crate::exit::FailOn {
    fn from(a: FailOn) -> Self {
        match a {
            FailOn::None => Self::None,
            FailOn::Discrepancies => Self::Discrepancies,
            FailOn::Errors => Self::Errors,
        }
    }
}

/// `--rate`: a number, where only a written zero means "no limit": a tiny rate that
/// reads as 0.0 (`1e-400`) is refused rather than taken as unlimited. The range itself is
/// the declared setting's check.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of requests per second"))?;
    let mantissa = text.trim().split(['e', 'E']).next().unwrap_or_default();
    let written_zero = !mantissa.chars().any(|c| c.is_ascii_digit() && c != '0');
    if rate == 0.0 && !written_zero {
        return Err(format!(
            "{text} is too small to be a rate (it would read as 0, which means no limit)"
        ));
    }
    Ok(rate)
}

/// `--callback-confirm`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CallbackConfirmArg {
    /// One job_status call confirms a callback's result; job_status's answer is recorded.
    JobStatus,
    /// A callback whose signature, timestamp and job check out is recorded as final.
    None,
}

impl From<CallbackConfirmArg> for CallbackConfirm {
    fn from(a: CallbackConfirmArg) -> Self {
        match a {
            CallbackConfirmArg::JobStatus => Self::JobStatus,
            CallbackConfirmArg::None => Self::None,
        }
    }
}

/// `--env`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EnvironmentArg {
    /// testapi.smileidentity.com.
    Sandbox,
    /// api.smileidentity.com.
    Production,
}

impl From<EnvironmentArg> for Environment {
    fn from(a: EnvironmentArg) -> Self {
        match a {
            EnvironmentArg::Sandbox => Self::Sandbox,
            EnvironmentArg::Production => Self::Production,
        }
    }
}

/// `--endpoint`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SubmitEndpointArg {
    /// /v2/verify_async: the result arrives at the callback URL.
    VerifyAsync,
    /// /v2/verify: the result comes in the answer.
    Verify,
    /// /v1/id_verification: the result comes in the answer.
    IdVerification,
    /// /v1/async_id_verification: the result arrives at the callback URL.
    AsyncIdVerification,
}

impl From<SubmitEndpointArg> for SubmitEndpoint {
    fn from(a: SubmitEndpointArg) -> Self {
        match a {
            SubmitEndpointArg::VerifyAsync => Self::VerifyAsync,
            SubmitEndpointArg::Verify => Self::Verify,
            SubmitEndpointArg::IdVerification => Self::IdVerification,
            SubmitEndpointArg::AsyncIdVerification => Self::AsyncIdVerification,
        }
    }
}

/// `--unknown-id-types`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum UnknownIdTypesArg {
    /// The row is `invalid`, naming its line and the field (country or id_type).
    Refuse,
    /// The row is sent; the API judges it (no regex, no required-field check).
    Allow,
}

impl From<UnknownIdTypesArg> for UnknownIdTypes {
    fn from(a: UnknownIdTypesArg) -> Self {
        match a {
            UnknownIdTypesArg::Refuse => Self::Refuse,
            UnknownIdTypesArg::Allow => Self::Allow,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_written_zero_is_no_limit() {
        assert_eq!(parse_rate("0"), Ok(0.0));
        assert_eq!(parse_rate("0.0e5"), Ok(0.0));
        assert_eq!(parse_rate(" 2.5 "), Ok(2.5));
        assert!(parse_rate("1e-400").is_err());
        assert!(parse_rate("0.000e-0001").is_ok());
        assert!(parse_rate("ten").is_err());
    }

    /// The value names clap accepts are the ones a job spec and a stored run use.
    #[test]
    fn value_enums_speak_the_settings_names() {
        for arg in CallbackConfirmArg::value_variants() {
            let name = arg.to_possible_value().unwrap().get_name().to_owned();
            assert_eq!(CallbackConfirm::from(*arg).as_str(), name);
        }
        for arg in OnChangedManifestArg::value_variants() {
            let name = arg.to_possible_value().unwrap().get_name().to_owned();
            assert_eq!(OnChangedManifest::from(*arg).as_str(), name);
        }
        for arg in FailOn::value_variants() {
            let name = arg.to_possible_value().unwrap().get_name().to_owned();
            assert_eq!(crate::exit::FailOn::from(*arg).as_str(), name);
        }
        for arg in UnknownIdTypesArg::value_variants() {
            let name = arg.to_possible_value().unwrap().get_name().to_owned();
            assert_eq!(UnknownIdTypes::from(*arg).as_str(), name);
        }
        for arg in SubmitEndpointArg::value_variants() {
            let name = arg.to_possible_value().unwrap().get_name().to_owned();
            assert_eq!(SubmitEndpoint::from(*arg).as_str(), name);
            assert_eq!(
                name.parse::<SubmitEndpoint>(),
                Ok(SubmitEndpoint::from(*arg))
            );
        }
        for arg in EnvironmentArg::value_variants() {
            let name = arg.to_possible_value().unwrap().get_name().to_owned();
            let stored = serde_json::to_value(Environment::from(*arg)).unwrap();
            assert_eq!(stored, serde_json::Value::String(name));
        }
    }
}
