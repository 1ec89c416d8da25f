//! Where requests go: the two Smile ID hosts and the endpoint paths.

use std::fmt;
use std::str::FromStr;

/// The Smile ID environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    #[default]
    Sandbox,
    Production,
}

impl Environment {
    pub fn base_url(self) -> &'static str {
        match self {
            Environment::Sandbox => "https://testapi.smileidentity.com",
            Environment::Production => "https://api.smileidentity.com",
        }
    }
}

/// An API endpoint, by what it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    JobStatus,
    Verify,
    VerifyAsync,
    IdVerification,
    AsyncIdVerification,
    Services,
    IdNumberRateLimitReset,
}

impl Endpoint {
    pub const ALL: [Endpoint; 7] = [
        Endpoint::JobStatus,
        Endpoint::Verify,
        Endpoint::VerifyAsync,
        Endpoint::IdVerification,
        Endpoint::AsyncIdVerification,
        Endpoint::Services,
        Endpoint::IdNumberRateLimitReset,
    ];

    pub fn path(self) -> &'static str {
        match self {
            Endpoint::JobStatus => "/v1/job_status",
            Endpoint::Verify => "/v2/verify",
            Endpoint::VerifyAsync => "/v2/verify_async",
            Endpoint::IdVerification => "/v1/id_verification",
            Endpoint::AsyncIdVerification => "/v1/async_id_verification",
            Endpoint::Services => "/v1/services",
            Endpoint::IdNumberRateLimitReset => "/v1/id_number_rate_limit_reset",
        }
    }

    /// Whether the result arrives later at a callback URL.
    pub fn is_async(self) -> bool {
        matches!(self, Endpoint::VerifyAsync | Endpoint::AsyncIdVerification)
    }
}

/// The submission endpoint a `submit` run uses, as named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SubmitEndpoint {
    #[default]
    VerifyAsync,
    Verify,
    IdVerification,
    AsyncIdVerification,
}

impl SubmitEndpoint {
    pub fn endpoint(self) -> Endpoint {
        match self {
            SubmitEndpoint::VerifyAsync => Endpoint::VerifyAsync,
            SubmitEndpoint::Verify => Endpoint::Verify,
            SubmitEndpoint::IdVerification => Endpoint::IdVerification,
            SubmitEndpoint::AsyncIdVerification => Endpoint::AsyncIdVerification,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SubmitEndpoint::VerifyAsync => "verify-async",
            SubmitEndpoint::Verify => "verify",
            SubmitEndpoint::IdVerification => "id-verification",
            SubmitEndpoint::AsyncIdVerification => "async-id-verification",
        }
    }
}

impl fmt::Display for SubmitEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl SubmitEndpoint {
    pub const ALL: [SubmitEndpoint; 4] = [
        SubmitEndpoint::VerifyAsync,
        SubmitEndpoint::Verify,
        SubmitEndpoint::IdVerification,
        SubmitEndpoint::AsyncIdVerification,
    ];
}

impl FromStr for SubmitEndpoint {
    type Err = String;
    /// The endpoint's name as `as_str` gives it, in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SubmitEndpoint::ALL
            .into_iter()
            .find(|e| e.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown endpoint {s:?}"))
    }
}
