//! Delivers async results: POSTs the signed result to the job's callback_url, and tries
//! again with doubling, jittered waits while the receiver does not answer 2xx. The API
//! documents no retry schedule, so this one is only "a few times with backoff"; job_status
//! remains the safety net for a callback that never arrives.
//!
//! The jitter matters: the signature covers only the timestamp (milliseconds), so two
//! callbacks signed in the same millisecond carry the same (timestamp, signature) pair and
//! a receiver that refuses replayed pairs takes only the first. Each attempt is signed
//! afresh; with fixed waits the two would retry in step and collide again every time (seen
//! as 1 or 2 of 30 callbacks failing all four attempts on a loaded machine).

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::sync::watch;

use crate::api::{Credentials, TimestampStyle};

use super::respond;
use super::stats::StatsRecorder;

#[derive(Debug)]
pub struct CallbackSender {
    http: reqwest::Client,
    credentials: Credentials,
    timestamps: TimestampStyle,
    attempts: u32,
    backoff: Duration,
    stats: Arc<StatsRecorder>,
}

impl CallbackSender {
    pub fn new(
        credentials: Credentials,
        timestamps: TimestampStyle,
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
            timestamps,
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
        // backoff, 2 x backoff, ... each plus a random part of itself.
        let mut waits = ExponentialBuilder::new()
            .with_min_delay(self.backoff)
            .with_max_delay(self.backoff.saturating_mul(1 << 16))
            .with_jitter()
            .without_max_times()
            .build();
        for attempt in 0..self.attempts {
            if attempt > 0 {
                let wait = waits.next().unwrap_or(self.backoff);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.wait_for(|stop| *stop) => return false,
                }
            }
            StatsRecorder::bump(&self.stats.callback_attempts);
            let body =
                respond::signed(result_json, &self.credentials.stamp_now_as(self.timestamps));
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

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Mutex;

    use axum::Router;
    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::routing::post;

    use super::*;
    use crate::api::ApiKey;

    type Seen = Arc<Mutex<HashSet<String>>>;

    /// A receiver that refuses a timestamp it has taken before, whatever the job, as a
    /// receiver keeping (timestamp, signature) pairs does.
    async fn refuses_repeated_timestamps(State(seen): State<Seen>, body: String) -> StatusCode {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(&body) else {
            return StatusCode::BAD_REQUEST;
        };
        let timestamp = value["timestamp"].as_str().unwrap_or_default().to_owned();
        if seen.lock().unwrap().insert(timestamp) {
            StatusCode::OK
        } else {
            StatusCode::CONFLICT
        }
    }

    /// Twenty callbacks sent at one instant mostly share a millisecond, so most first
    /// attempts collide. With waits in step they would collide again on every retry; with
    /// jitter each gets its own timestamp within the four attempts.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn callbacks_signed_in_the_same_millisecond_all_arrive() {
        let seen: Seen = Arc::default();
        let app = Router::new()
            .route("/cb", post(refuses_repeated_timestamps))
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/cb", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });

        let stats = Arc::new(StatsRecorder::new());
        let credentials = Credentials::new("002", ApiKey::new("k".repeat(32)).unwrap()).unwrap();
        let sender = Arc::new(
            CallbackSender::new(
                credentials,
                TimestampStyle::MillisZ,
                4,
                Duration::from_millis(20),
                Duration::from_secs(5),
                stats.clone(),
            )
            .unwrap(),
        );
        let (_stop, shutdown) = watch::channel(false);
        let barrier = Arc::new(tokio::sync::Barrier::new(20));
        let mut sends = tokio::task::JoinSet::new();
        for i in 0..20 {
            let (sender, url, shutdown, barrier) = (
                sender.clone(),
                url.clone(),
                shutdown.clone(),
                barrier.clone(),
            );
            sends.spawn(async move {
                barrier.wait().await;
                sender
                    .deliver(&url, &format!("{{\"job\":{i}}}"), shutdown)
                    .await
            });
        }
        let delivered = sends.join_all().await;
        let stats = stats.snapshot();
        assert!(delivered.iter().all(|ok| *ok), "{stats:?}");
        assert_eq!(stats.callbacks_delivered, 20, "{stats:?}");
        assert_eq!(seen.lock().unwrap().len(), 20);
    }
}
