//! What a sandbox is started with: who it accepts, whom it knows, and how it misbehaves.

use std::time::Duration;

use crate::api::models::IdInfo;
use crate::api::{ApiKey, TimestampStyle};

use super::registry::Registry;
use super::tls::TlsConfig;

/// A window during which the ID authority is down: sync calls get 1015, async jobs wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outage {
    /// Measured from the moment the server starts.
    pub start_after: Duration,
    pub duration: Duration,
}

impl Outage {
    /// Whether `elapsed` (time since start) falls inside the window.
    pub fn contains(&self, elapsed: Duration) -> bool {
        elapsed >= self.start_after && elapsed < self.start_after + self.duration
    }

    /// When the window closes, measured from the start.
    pub fn end(&self) -> Duration {
        self.start_after + self.duration
    }
}

/// Injected misbehaviour. Everything off by default: a default sandbox is well-behaved.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Faults {
    /// Added to every API request before it is answered.
    pub latency: Duration,
    /// Each request's latency varies uniformly within `latency ± latency_jitter`.
    pub latency_jitter: Duration,
    /// Fraction of requests (0..=1) answered HTTP 500 with an HTML body, unprocessed.
    pub fail_rate: f64,
    /// More requests than this in one second are answered 429 with Retry-After, unprocessed.
    pub throttle_rps: Option<u32>,
    /// Fraction of callbacks (0..=1) never sent; the job still completes for job_status.
    pub drop_callbacks: f64,
    /// The ID authority is down for this window.
    pub outage: Option<Outage>,
}

/// How job_status answers an error (2303, 2304, 2305, 2313). Seed 000 allows two readings
/// and clients must handle both: the code inside a signed HTTP 200 answer with
/// `job_complete: false` (the Java SDK's fixture), or an unsigned `{"code", "error"}` body
/// with a 4xx status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StatusErrors {
    /// Unsigned `{"code", "error"}` with a 4xx (404 for 2304).
    #[default]
    Http,
    /// Signed HTTP 200 `{"job_complete": false, "code": "2304", "result": "Job not found"}`.
    Signed,
    /// Each error answer one shape or the other, drawn from the seed.
    Mixed,
}

/// A job that exists before the server starts (for poll runs): it is answered as pending
/// until `pending_for` has passed since start, then with the result the authority gives
/// for `id_info`.
#[derive(Clone, Debug, PartialEq)]
pub struct PreloadedJob {
    pub user_id: String,
    pub job_id: String,
    pub id_info: IdInfo,
    /// Enhanced KYC (1012 with personal info) instead of Basic KYC (1020/1021/1022).
    pub enhanced: bool,
    pub pending_for: Duration,
}

/// Everything a sandbox needs. Build it with [`SandboxConfig::new`], then change the
/// public fields; the defaults are those of a well-behaved server.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    pub partner_id: String,
    pub api_key: ApiKey,
    pub registry: Registry,
    pub faults: Faults,
    /// How long an async job takes before its result is ready and its callback is sent.
    pub callback_delay: Duration,
    /// Attempts per callback (the first one included) while the receiver does not answer 2xx.
    pub callback_attempts: u32,
    /// Wait before the second attempt; doubled for each attempt after it, and each wait
    /// lengthened by a random part of itself (up to double).
    pub callback_backoff: Duration,
    /// Bound on one callback attempt.
    pub callback_timeout: Duration,
    /// Requests allowed per ID number (within country and id_type) in `id_limit_window`.
    pub id_limit: u32,
    pub id_limit_window: Duration,
    /// Seeds every random choice the server makes (faults), so a run can be replayed.
    pub seed: u64,
    pub preload: Vec<PreloadedJob>,
    /// The shape of job_status's error answers.
    pub status_errors: StatusErrors,
    /// How the timestamps of its signed answers and callbacks are written.
    pub timestamps: TimestampStyle,
    /// Serve HTTPS with this certificate instead of plain HTTP.
    pub tls: Option<TlsConfig>,
}

impl SandboxConfig {
    pub fn new(partner_id: String, api_key: ApiKey, registry: Registry) -> Self {
        Self {
            partner_id,
            api_key,
            registry,
            faults: Faults::default(),
            callback_delay: Duration::from_millis(50),
            callback_attempts: 4,
            callback_backoff: Duration::from_millis(100),
            callback_timeout: Duration::from_secs(5),
            // The documented production limit: 30 requests per ID number in 3 days.
            id_limit: 30,
            id_limit_window: Duration::from_secs(3 * 24 * 3600),
            seed: 0,
            preload: Vec::new(),
            status_errors: StatusErrors::default(),
            timestamps: TimestampStyle::default(),
            tls: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outage_window_is_half_open() {
        let o = Outage {
            start_after: Duration::from_secs(2),
            duration: Duration::from_secs(3),
        };
        assert!(!o.contains(Duration::from_millis(1999)));
        assert!(o.contains(Duration::from_secs(2)));
        assert!(o.contains(Duration::from_millis(4999)));
        assert!(!o.contains(Duration::from_secs(5)));
        assert_eq!(o.end(), Duration::from_secs(5));
    }
}
