//! Delivers async results: POSTs the signed result to the job's callback_url, and tries
//! again with doubling waits while the receiver does not answer 2xx. The API documents no
//! retry schedule, so this one is only "a few times with backoff"; job_status remains the
//! safety net for a callback that never arrives.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::api::Credentials;

use super::respond;
use super::stats::StatsRecorder;

#[derive(Debug)]
pub struct CallbackSender {
    http: reqwest::Client,
    credentials: Credentials,
    attempts: u32,
    backoff: Duration,
    stats: Arc<StatsRecorder>,
}

impl CallbackSender {
    pub fn new(
        credentials: Credentials,
        attempts: u32,
        backoff: Duration,
        timeout: Duration,
        stats: Arc<StatsRecorder>,
    ) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            // Callbacks go to the URL given and nowhere else: no proxy from the
            // environment, no redirects.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            // A fresh connection per attempt, as webhook senders commonly do: a pooled
            // connection the receiver has just closed fails the attempt with an
            // incomplete message (seen as 1 of 30 callbacks failing all its attempts).
            .pool_max_idle_per_host(0)
            .user_agent("smile-recon-sandbox")
            .build()
            .map_err(|e| format!("cannot build the callback client: {e}"))?;
        Ok(Self {
            http,
            credentials,
            attempts: attempts.max(1),
            backoff,
            stats,
        })
    }

    /// Sends `result_json` (the unsigned result object) to `url`, signing each attempt
    /// afresh. Returns whether a 2xx came back. Stops early when the server shuts down.
    pub async fn deliver(
        &self,
        url: &str,
        result_json: &str,
        mut shutdown: watch::Receiver<bool>,
    ) -> bool {
        for attempt in 0..self.attempts {
            if attempt > 0 {
                let wait = self.backoff.saturating_mul(1 << (attempt - 1).min(16));
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.wait_for(|stop| *stop) => return false,
                }
            }
            StatsRecorder::bump(&self.stats.callback_attempts);
            let body = respond::signed(result_json, &self.credentials.stamp_now());
            let sent = self
                .http
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body)
                .send();
            let ok = tokio::select! {
                r = sent => r.is_ok_and(|r| r.status().is_success()),
                _ = shutdown.wait_for(|stop| *stop) => return false,
            };
            if ok {
                StatsRecorder::bump(&self.stats.callbacks_delivered);
                return true;
            }
        }
        StatsRecorder::bump(&self.stats.callbacks_failed);
        false
    }
}
