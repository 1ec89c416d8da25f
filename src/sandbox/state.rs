//! The server's shared state and what each endpoint does with it, apart from HTTP
//! plumbing (which is in `server.rs`).

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::Response;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::api::models::{NumberOrString, PartnerParams};
use crate::api::{Credentials, SignedStamp, TimestampStyle};

use super::SandboxError;
use super::authority::{Authority, Verdict};
use super::callbacks::CallbackSender;
use super::config::{SandboxConfig, StatusErrors};
use super::delay::Delays;
use super::faults::FaultInjector;
use super::id_limit::IdLimiter;
use super::jobs::{Finished, JobStore, JobView};
use super::request::{self, Family, Rejection, SubmitBody, SubmitKind};
use super::respond;
use super::stats::StatsRecorder;

#[derive(Debug)]
pub struct AppState {
    pub credentials: Credentials,
    pub authority: Authority,
    pub jobs: JobStore,
    pub limiter: IdLimiter,
    pub faults: FaultInjector,
    /// Holds answers for the injected latency.
    pub delays: Delays,
    pub stats: Arc<StatsRecorder>,
    pub callbacks: CallbackSender,
    pub callback_delay: Duration,
    pub started: Instant,
    pub shutdown: watch::Receiver<bool>,
    pub services: String,
    pub status_errors: StatusErrors,
    pub timestamps: TimestampStyle,
}

fn finished(outcome: &Verdict) -> Arc<Finished> {
    // VerifyResult serialises from plain maps and strings: it cannot fail.
    let json = serde_json::to_string(&outcome.result).unwrap_or_else(|_| "{}".to_owned());
    Arc::new(Finished {
        success: outcome.success,
        json: Arc::from(json),
    })
}

impl AppState {
    /// A fresh timestamp in the configured style, signed.
    fn stamp(&self) -> SignedStamp {
        self.credentials.stamp_now_as(self.timestamps)
    }

    pub fn new(
        config: SandboxConfig,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Self, SandboxError> {
        let credentials = Credentials::new(config.partner_id.clone(), config.api_key.clone())
            .map_err(|e| SandboxError::Config(e.to_string()))?;
        for (name, p) in [
            ("fail_rate", config.faults.fail_rate),
            ("drop_callbacks", config.faults.drop_callbacks),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(SandboxError::Config(format!(
                    "{name} must be between 0 and 1, got {p}"
                )));
            }
        }
        let stats = Arc::new(StatsRecorder::new());
        let callbacks = CallbackSender::new(
            credentials.clone(),
            config.timestamps,
            config.callback_attempts,
            config.callback_backoff,
            config.callback_timeout,
            stats.clone(),
        )
        .map_err(SandboxError::Config)?;
        let started = Instant::now();
        let state = Self {
            services: super::services::body(&config.registry),
            status_errors: config.status_errors,
            timestamps: config.timestamps,
            authority: Authority::new(config.registry),
            jobs: JobStore::new(),
            limiter: IdLimiter::new(config.id_limit, config.id_limit_window),
            faults: FaultInjector::new(config.faults, config.seed),
            delays: Delays::default(),
            stats,
            callbacks,
            callback_delay: config.callback_delay,
            started,
            shutdown,
            credentials,
        };
        for job in config.preload {
            let params = PartnerParams {
                job_id: job.job_id.clone(),
                user_id: job.user_id.clone(),
                job_type: Some(NumberOrString::Number(
                    crate::api::models::JOB_TYPE_ID_VERIFICATION,
                )),
                extra: Default::default(),
            };
            let outcome = state
                .authority
                .verify(&job.id_info, &params, job.enhanced, true);
            let visible_at = (!job.pending_for.is_zero()).then(|| started + job.pending_for);
            if !state.jobs.insert(
                &job.job_id,
                &job.user_id,
                Some(finished(&outcome)),
                visible_at,
            ) {
                return Err(SandboxError::Config(format!(
                    "preloaded job_id {} appears twice",
                    job.job_id
                )));
            }
        }
        Ok(state)
    }

    fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// `/v1/job_status`, its errors in the configured shape.
    pub fn job_status(&self, body: &[u8]) -> Response {
        match self.job_status_answer(body) {
            Ok(r) => r,
            Err(rej) => {
                let signed = match self.status_errors {
                    StatusErrors::Http => false,
                    StatusErrors::Signed => true,
                    StatusErrors::Mixed => self.faults.coin(),
                };
                if signed {
                    let stamp = self.stamp();
                    let body = respond::job_status_error(&stamp, rej.code, &rej.message);
                    respond::json(StatusCode::OK, body)
                } else {
                    respond::rejection(&rej)
                }
            }
        }
    }

    fn job_status_answer(&self, body: &[u8]) -> Result<Response, Rejection> {
        let obj = request::object(body, Family::JobStatus)?;
        request::authenticate(&obj, &self.credentials, Family::JobStatus)?;
        let q = request::job_status(&obj)?;
        let now = Instant::now();
        let Some(view) = self.jobs.view(&q.user_id, &q.job_id, now) else {
            return Err(Rejection::new(
                StatusCode::NOT_FOUND,
                "2304",
                "Job not found",
            ));
        };
        let history = q.history.then(|| self.jobs.history(&q.user_id, now));
        let finished = match &view {
            JobView::Complete(f) => Some(f.as_ref()),
            JobView::Pending => None,
        };
        let stamp = self.stamp();
        let body = respond::job_status(&stamp, finished, history.as_deref(), q.image_links);
        Ok(respond::json(StatusCode::OK, body))
    }

    /// The four submission endpoints.
    pub fn submit(self: &Arc<Self>, body: &[u8], kind: SubmitKind) -> Result<Response, Rejection> {
        let obj = request::object(body, Family::Request)?;
        request::authenticate(&obj, &self.credentials, Family::Request)?;
        let sub = request::submit(&obj, kind)?;
        let job_id = sub.partner_params.job_id.clone();
        if self.jobs.contains(&job_id) {
            return Err(self.duplicate(&job_id));
        }
        let info = &sub.id_info;
        if let Err(wait) = self.limiter.admit(
            &info.country,
            &info.id_type,
            &info.id_number,
            Instant::now(),
        ) {
            StatsRecorder::bump(&self.stats.id_limit_rejections);
            let mut r = Rejection::new(
                StatusCode::TOO_MANY_REQUESTS,
                "2222",
                "Too many requests for this ID number: try again later, or reset it",
            );
            r.retry_after = Some(wait.as_secs_f64().ceil() as u64);
            return Err(r);
        }
        if kind.asynchronous {
            if !self
                .jobs
                .insert(&job_id, &sub.partner_params.user_id, None, None)
            {
                return Err(self.duplicate(&job_id));
            }
            self.stats.accepted(&job_id);
            let state = self.clone();
            tokio::spawn(async move { state.run_async(sub, kind.enhanced).await });
            return Ok(respond::json(StatusCode::OK, r#"{"success":true}"#));
        }
        let available = !self.faults.outage_at(self.elapsed());
        let outcome =
            self.authority
                .verify(&sub.id_info, &sub.partner_params, kind.enhanced, available);
        let done = finished(&outcome);
        if !outcome.is_error {
            if !self.jobs.insert(
                &job_id,
                &sub.partner_params.user_id,
                Some(done.clone()),
                None,
            ) {
                return Err(self.duplicate(&job_id));
            }
            self.stats.accepted(&job_id);
        }
        self.stats.result(outcome.result_code);
        let body = respond::signed(&done.json, &self.stamp());
        Ok(respond::json(StatusCode::OK, body))
    }

    fn duplicate(&self, job_id: &str) -> Rejection {
        StatsRecorder::bump(&self.stats.duplicate_rejections);
        Rejection::new(
            StatusCode::BAD_REQUEST,
            "2215",
            format!("Job already exists for job_id {job_id}"),
        )
    }

    /// An accepted async job: wait the processing delay (and any outage), finish it, then
    /// post the callback. job_status says pending until the result is ready.
    async fn run_async(self: Arc<Self>, sub: SubmitBody, enhanced: bool) {
        let mut shutdown = self.shutdown.clone();
        tokio::select! {
            _ = tokio::time::sleep(self.callback_delay) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        // Async jobs "guarantee an eventual response": an outage delays them, it does not
        // fail them.
        while self.faults.outage_at(self.elapsed()) {
            let Some(end) = self.faults.outage_ends(self.elapsed()) else {
                break;
            };
            tokio::select! {
                _ = tokio::time::sleep_until(self.started + end) => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
        }
        let outcome = self
            .authority
            .verify(&sub.id_info, &sub.partner_params, enhanced, true);
        let done = finished(&outcome);
        self.stats.result(outcome.result_code);
        self.jobs.complete(&sub.partner_params.job_id, done.clone());
        let Some(url) = sub.callback_url.as_deref() else {
            return;
        };
        if self.faults.drops_callback() {
            StatsRecorder::bump(&self.stats.callbacks_dropped);
            return;
        }
        self.callbacks
            .deliver(url, &done.json, self.shutdown.clone())
            .await;
    }

    /// `/v1/id_number_rate_limit_reset`.
    pub fn reset_id_limit(&self, body: &[u8]) -> Result<Response, Rejection> {
        let obj = request::object(body, Family::Request)?;
        request::authenticate(&obj, &self.credentials, Family::Request)?;
        let field = |name: &str| match obj.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(Rejection::new(
                StatusCode::BAD_REQUEST,
                "2204",
                format!("A parameter is of the wrong data type: {name} must be a string"),
            )),
        };
        let (country, id_type, id_number) =
            (field("country")?, field("id_type")?, field("id_number")?);
        let missing = |name: &str| {
            Rejection::new(
                StatusCode::BAD_REQUEST,
                "2213",
                format!("A required parameter is missing: {name}"),
            )
        };
        let id_type = id_type.ok_or_else(|| missing("id_type"))?;
        let id_number = id_number.ok_or_else(|| missing("id_number"))?;
        let cleared = self.limiter.reset(country, id_type, id_number);
        let body = serde_json::json!({"success": true, "cleared": cleared}).to_string();
        let body = respond::signed(&body, &self.stamp());
        Ok(respond::json(StatusCode::OK, body))
    }
}
