//! The workers: `--concurrency` long-lived tasks, each taking jobs from the dispatcher's
//! queue one at a time. One turn of work on one job: sign and send the request its state
//! calls for, decide the next step ([`super::outcome`]), hand it to the writer, and go on
//! to the next job while the writer commits (the dispatcher hears of the commit).
//!
//! A worker per request slot, not a task per job: a job costs no spawn, and a worker
//! that finds the queue non-empty takes its next job without being woken.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Jitter};

use crate::api::models::PartnerParams;
use crate::api::{ApiError, SmileClient, SubmitReply};
use crate::store::{
    DueJob, EventKind, EventOutcome, EventRecord, JobState, JobUpdate, ResultSource, WriteOp,
    now_ms,
};

use super::breaker::{Breaker, Health};
use super::outcome::{self, Next, Wait};
use super::tally::{Status, Tally};
use super::writer::{Turn, WriteError, Writer};
use super::{EngineConfig, Mode, SubmitInput};

/// What every worker shares.
pub struct Ctx {
    pub config: EngineConfig,
    pub client: SmileClient,
    pub writer: Writer,
    pub limiter: Option<DefaultDirectRateLimiter>,
    pub breaker: Breaker,
    pub tally: Arc<Tally>,
    /// Jobs not final by then give up (Unix ms).
    pub deadline_at: Option<i64>,
    /// Set by the dispatcher when the run stops: queued jobs are handed back unworked.
    pub stopping: AtomicBool,
}

/// One worker: works the queue's jobs until the queue closes. A job it does not work (the
/// run is stopping, or the turn panicked) is handed back on `unworked`, so the dispatcher
/// never waits for it; every other job's turn reaches the dispatcher through the writer.
pub async fn serve(
    ctx: Arc<Ctx>,
    jobs: async_channel::Receiver<DueJob>,
    unworked: tokio::sync::mpsc::UnboundedSender<i64>,
) -> Result<(), WriteError> {
    while let Ok(job) = jobs.recv().await {
        if ctx.stopping.load(Ordering::Relaxed) {
            let _ = unworked.send(job.row);
            continue;
        }
        let held = Held {
            row: job.row,
            unworked: &unworked,
        };
        work(&ctx, job).await?;
        // The turn is with the writer, which reports it: nothing to hand back.
        std::mem::forget(held);
    }
    Ok(())
}

/// A job being worked; dropped before its turn reached the writer (a panic, a writer
/// that stopped), it is handed back.
struct Held<'a> {
    row: i64,
    unworked: &'a tokio::sync::mpsc::UnboundedSender<i64>,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let _ = self.unworked.send(self.row);
    }
}

/// Works one job for one turn. A tripped breaker, or a run that stops while the request
/// waits for the limiter, leaves the job untouched.
async fn work(ctx: &Ctx, mut job: DueJob) -> Result<(), WriteError> {
    // If this turn sends the job's first request, its result's time limit counts from here.
    let turn_started = now_ms();
    let mut events = Vec::new();
    let mut next = match (&ctx.config.mode, job.state) {
        (Mode::Submit { .. }, JobState::Queued) => {
            let next = submit(ctx, &job, &mut events).await;
            if next.is_some() {
                // The intent was committed before the request left (in `request`).
                job.state = JobState::InFlight;
            }
            next
        }
        (Mode::Submit { .. }, JobState::InFlight) => status(ctx, &job, &mut events).await,
        _ => status(ctx, &job, &mut events).await,
    };
    // An unsure submission that job_status cannot find is sent again (same job_id); a
    // submission refused with 2215 is read through job_status. Each at most once a turn.
    let resent = next == Some(Next::Resubmit);
    if resent {
        next = submit(ctx, &job, &mut events).await;
    }
    if next == Some(Next::ReadStatus) {
        next = status(ctx, &job, &mut events).await;
    }
    let unchanged = Turn {
        row: job.row,
        from: job.state,
        to: job.state,
        category: None,
        retry: false,
    };
    let next = match next {
        None => return ctx.writer.finish(events, unchanged).await,
        Some(Next::ReadStatus | Next::Resubmit) => Next::Again {
            state: job.state,
            wait: Wait::Retry(None),
            code: None,
            error: Some("job_status and the submission disagree; trying again".into()),
        },
        Some(n) => n,
    };
    job.first_request_at.get_or_insert(turn_started);
    let retry = matches!(
        next,
        Next::Again {
            wait: Wait::Retry(_),
            ..
        }
    );
    let sent = WorkedTurn::count(&events);
    let mut update = to_update(ctx, &job, next, sent);
    if resent && !update.state.is_final() {
        // A job sent again because job_status could not find it has spent an attempt
        // (every submission counts), so a server that accepts it and then keeps losing it
        // cannot hold it for ever.
        let attempts = update.attempts.unwrap_or(job.attempts);
        if attempts >= i64::from(ctx.config.max_attempts) {
            update.state = JobState::GaveUp;
            update.last_error = Some(format!(
                "gave up after {attempts} attempts: job_status keeps answering 2304 (job not found)"
            ));
        }
    }
    let turn = Turn {
        to: update.state,
        category: update.result.as_ref().and_then(|r| r.category),
        retry: retry && !update.state.is_final(),
        ..unchanged
    };
    let mut ops = events;
    ops.push(WriteOp::Update(update));
    ctx.writer.finish(ops, turn).await
}

/// Sends the submission. `None`: the breaker tripped, the run is stopping, or the job was
/// no longer queued when its intent was committed, and nothing was sent. For a queued job
/// the intent is committed first (queued -> in_flight), once the request may leave.
async fn submit(ctx: &Ctx, job: &DueJob, events: &mut Vec<WriteOp>) -> Option<Next> {
    let Mode::Submit {
        endpoint,
        callback_url,
        callback_grace,
    } = &ctx.config.mode
    else {
        return Some(Next::ReadStatus);
    };
    let input: SubmitInput = match serde_json::from_str(&job.input_json) {
        Ok(i) => i,
        Err(e) => {
            return Some(Next::Final {
                state: JobState::Failed,
                result: None,
                code: None,
                error: Some(format!("the staged row cannot be read back: {e}")),
            });
        }
    };
    let partner_params = PartnerParams {
        job_id: job.job_id.clone(),
        user_id: job.user_id.clone(),
        job_type: None,
        extra: input.extra,
    };
    let intent = job.state == JobState::Queued;
    let (answer, event) = request(ctx, job, EventKind::Submit, intent, || {
        ctx.client.submit(
            *endpoint,
            &input.id_info,
            &partner_params,
            callback_url.as_deref(),
        )
    })
    .await?;
    let next = match answer {
        Ok(SubmitReply::Accepted(ack)) if ack.success => Next::Again {
            state: JobState::Awaiting,
            wait: Wait::Fixed(*callback_grace),
            code: None,
            error: None,
        },
        Ok(SubmitReply::Accepted(ack)) => Next::Again {
            state: JobState::InFlight,
            wait: Wait::Retry(None),
            code: None,
            error: Some(format!(
                "the async endpoint answered without success: {}",
                serde_json::to_string(&ack).unwrap_or_default()
            )),
        },
        Ok(SubmitReply::Result(result)) => {
            outcome::after_result(&result, ResultSource::Sync, JobState::Queued)
        }
        Err(e) => outcome::after_error(&e, JobState::InFlight, JobState::Queued),
    };
    events.push(WriteOp::Event(EventRecord {
        outcome: next_name(&next),
        ..event
    }));
    Some(next)
}

/// Asks job_status. In submit mode a job that was in flight and is not found is resent.
async fn status(ctx: &Ctx, job: &DueJob, events: &mut Vec<WriteOp>) -> Option<Next> {
    let (answer, event) = request(ctx, job, EventKind::JobStatus, false, || {
        ctx.client
            .job_status(&job.user_id, &job.job_id, false, false)
    })
    .await?;
    let keep = job.state;
    let next = match answer {
        Ok(status) => outcome::after_status(&status, keep),
        // Not found after we sent it (unsure, or accepted and then lost): sent again with
        // the same job_id, which Smile ID refuses with 2215 if it has the job after all.
        Err(e)
            if e.code() == Some("2304")
                && matches!(ctx.config.mode, Mode::Submit { .. })
                && matches!(job.state, JobState::InFlight | JobState::Awaiting) =>
        {
            Next::Resubmit
        }
        Err(e) => outcome::after_error(&e, keep, keep),
    };
    let outcome = match (&job.callback_claim, &next) {
        // A callback claimed a result: job_status's final answer confirms or overrules
        // it, and job_status's is what is recorded.
        (
            Some(claim),
            Next::Final {
                code: Some(code), ..
            },
        ) => {
            if claim == code {
                ctx.tally
                    .callbacks
                    .confirmed
                    .fetch_add(1, Ordering::Relaxed);
                EventOutcome::Confirmed
            } else {
                ctx.tally
                    .callbacks
                    .mismatched
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    job_id = %job.job_id,
                    callback = %claim,
                    job_status = %code,
                    "a callback's ResultCode differs from job_status's; job_status's is recorded"
                );
                EventOutcome::Mismatch
            }
        }
        _ => next_name(&next),
    };
    events.push(WriteOp::Event(EventRecord { outcome, ..event }));
    Some(next)
}

/// Waits for the breaker and the rate limiter, sends, times the request and tells the
/// breaker what the answer says about the run.
async fn request<T, F, Fut>(
    ctx: &Ctx,
    job: &DueJob,
    kind: EventKind,
    intent: bool,
    send: F,
) -> Option<(Result<T, ApiError>, EventRecord)>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<T, ApiError>>,
{
    let _admission = ctx.breaker.admit().await?;
    if let Some(limiter) = &ctx.limiter {
        limiter
            .until_ready_with_jitter(Jitter::up_to(ctx.config.rate_jitter))
            .await;
    }
    if ctx.stopping.load(Ordering::Relaxed) {
        // The run stopped while this request waited for its turn: nothing is sent.
        return None;
    }
    // Committed only now, after the slot, the breaker and the limiter: a job killed
    // while waiting for them is still plainly queued, not an ambiguous in-flight one.
    if intent && !commit_intent(ctx, job).await {
        return None;
    }
    ctx.tally.in_flight.fetch_add(1, Ordering::Relaxed);
    ctx.tally.requests.fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    let answer = send().await;
    let latency = started.elapsed();
    ctx.tally.in_flight.fetch_sub(1, Ordering::Relaxed);
    count_answer(ctx, kind, &answer);
    ctx.breaker.record(match &answer {
        Ok(_) => Health::Healthy,
        Err(e) => outcome::health_of_error(e),
    });
    let event = answer_event(ctx, job, kind, &answer, latency);
    Some((answer, event))
}

/// Commits the intent to submit (queued -> in_flight). False when nothing may be sent.
async fn commit_intent(ctx: &Ctx, job: &DueJob) -> bool {
    match ctx
        .writer
        .commit(vec![WriteOp::Intent {
            row: job.row,
            at: now_ms(),
        }])
        .await
    {
        Ok(applied) if applied.first() == Some(&true) => {
            ctx.tally.transition(JobState::Queued, JobState::InFlight);
            true
        }
        Ok(_) => {
            // The job was no longer queued (a result recorded meanwhile, or another
            // turn sent it): sending now would submit it twice. Nothing is sent and the
            // turn ends with the job as the database has it.
            tracing::debug!(
                row = job.row,
                "the intent to submit did not apply; not sending"
            );
            false
        }
        Err(e) => {
            tracing::error!("cannot record the intent to submit; not sending: {e}");
            false
        }
    }
}

/// The event of one request: how it was answered and how long it took; its outcome is
/// set once the answer is judged.
fn answer_event<T>(
    ctx: &Ctx,
    job: &DueJob,
    kind: EventKind,
    answer: &Result<T, ApiError>,
    latency: Duration,
) -> EventRecord {
    EventRecord {
        run_id: ctx.config.run_id,
        row: job.row,
        at: now_ms(),
        kind,
        http_status: match answer {
            Ok(_) => Some(200),
            Err(e) => e.http_status(),
        },
        code: answer
            .as_ref()
            .err()
            .and_then(|e| e.code().map(str::to_owned)),
        outcome: EventOutcome::Unset,
        error: answer.as_ref().err().map(|e| format!("{}: {e}", e.kind())),
        latency_ms: Some(latency.as_millis().min(i64::MAX as u128) as i64),
    }
}

/// Counts a request by its endpoint and how it was answered (job_status calls apart).
fn count_answer<T>(ctx: &Ctx, kind: EventKind, answer: &Result<T, ApiError>) {
    let endpoint = match (&ctx.config.mode, kind) {
        (Mode::Submit { endpoint, .. }, EventKind::Submit) => endpoint.endpoint(),
        _ => {
            ctx.tally.polls.fetch_add(1, Ordering::Relaxed);
            crate::api::Endpoint::JobStatus
        }
    };
    let status = match answer {
        // A signed answer that does not confirm, or names another job, was still a 200.
        Ok(_) | Err(ApiError::Unconfirmed { .. } | ApiError::WrongJob { .. }) => Status::Http(200),
        Err(e) => e.http_status().map_or(Status::NoAnswer, Status::Http),
    };
    ctx.tally.answered(endpoint.path(), status);
}

fn next_name(next: &Next) -> EventOutcome {
    match next {
        Next::Final {
            state: JobState::Done,
            ..
        } => EventOutcome::Done,
        Next::Final { .. } => EventOutcome::Failed,
        Next::Again {
            wait: Wait::Retry(_),
            ..
        } => EventOutcome::Retry,
        Next::Again {
            wait: Wait::Poll, ..
        } => EventOutcome::Pending,
        Next::Again { .. } => EventOutcome::Wait,
        Next::ReadStatus => EventOutcome::Exists,
        Next::Resubmit => EventOutcome::NotFound,
    }
}

/// Turns a decision into the stored update: counts the attempt or poll, applies the
/// attempt budget and the deadline.
fn to_update(ctx: &Ctx, job: &DueJob, next: Next, sent: WorkedTurn) -> JobUpdate {
    let now = now_ms();
    let base = JobUpdate {
        row: job.row,
        state: job.state,
        attempts: Some(job.attempts + sent.submissions),
        polls: Some(job.polls + sent.status_calls),
        next_attempt_at: now,
        last_http_status: None,
        last_code: None,
        last_error: None,
        result: None,
        staged_input: None,
        at: now,
    };
    let mut update = match next {
        Next::Final {
            state,
            result,
            code,
            error,
        } => JobUpdate {
            state,
            last_code: code,
            last_error: error,
            result,
            ..base
        },
        Next::Again {
            state,
            wait,
            code,
            error,
        } => {
            let update = JobUpdate {
                state,
                last_code: code,
                last_error: error,
                ..base
            };
            scheduled(ctx, job, update, wait, sent, now)
        }
        Next::ReadStatus | Next::Resubmit => base,
    };
    if update.state.is_final() {
        // The writer minimises a final job from its staged row without reading it back.
        update.staged_input = Some(job.input_json.clone());
    }
    update
}

/// Schedules a job's next turn after `wait`, or gives it up: its attempts spent, its
/// result's time limit passed, or its next turn after the run's deadline.
fn scheduled(
    ctx: &Ctx,
    job: &DueJob,
    mut update: JobUpdate,
    wait: Wait,
    sent: WorkedTurn,
    now: i64,
) -> JobUpdate {
    let delay = match wait {
        Wait::Retry(server) => {
            // A failed submission was counted when sent; a failed job_status call
            // (a poll run, or checking an unsure submission) counts here.
            let attempts = if sent.submissions > 0 {
                job.attempts + sent.submissions
            } else {
                job.attempts + 1
            };
            update.attempts = Some(attempts);
            ctx.tally.retries.fetch_add(1, Ordering::Relaxed);
            if attempts >= i64::from(ctx.config.max_attempts) {
                update.state = JobState::GaveUp;
                update.last_error = Some(format!(
                    "gave up after {attempts} attempts: {}",
                    update.last_error.as_deref().unwrap_or("no answer")
                ));
                return update;
            }
            ctx.config.backoff.retry_delay(attempts as u32, server)
        }
        Wait::Poll => {
            let polls = job.polls + sent.status_calls.max(1);
            update.polls = Some(polls);
            let cadence = ctx.config.backoff.poll_delay(polls as u32);
            match (&job.callback_claim, &ctx.config.mode) {
                // A callback claimed a result job_status does not have yet (Smile ID's
                // lag, or a forged callback): the job asks again after the grace, not at
                // the job_status cadence, so a copied pair cannot set every job polling.
                // (The receiver takes no other callback for a claimed job.)
                (Some(_), Mode::Submit { callback_grace, .. }) => cadence.max(*callback_grace),
                _ => cadence,
            }
        }
        Wait::Fixed(d) => d,
    };
    update.next_attempt_at = now.saturating_add(millis(delay));
    within_limits(ctx, job, update, delay, now)
}

/// Gives up a job whose next turn (`delay` from now) would come after its result's time
/// limit or the run's deadline; a turn past the limit is moved to the limit itself when
/// that is still ahead.
fn within_limits(
    ctx: &Ctx,
    job: &DueJob,
    mut update: JobUpdate,
    delay: Duration,
    now: i64,
) -> JobUpdate {
    if let Some(limit) = result_limit(ctx, job, update.state)
        && update.next_attempt_at > limit
    {
        if now < limit {
            // The next turn would come after the limit: one last ask at the limit
            // itself, so a result that came in between is not missed.
            update.next_attempt_at = limit;
            return update;
        }
        update.state = JobState::GaveUp;
        update.last_error = Some(format!(
            "still pending at the deadline ({} s after the first request): {}",
            ctx.config.result_timeout.as_secs(),
            update.last_error.as_deref().unwrap_or("no result")
        ));
        return update;
    }
    if ctx.deadline_at.is_some_and(|d| update.next_attempt_at > d) {
        update.state = JobState::GaveUp;
        update.last_error = Some(format!(
            "not final at the deadline: its next turn ({} s from now) would come \
             after the run's --deadline: {}",
            delay.as_secs(),
            update.last_error.as_deref().unwrap_or("still pending")
        ));
    }
    update
}

/// When a job that was sent (or, in a poll run, asked about) stops waiting for its
/// result: `--result-timeout` after its first request. A submission never sent (queued)
/// has no such limit: its attempts are bounded by `--max-attempts`.
fn result_limit(ctx: &Ctx, job: &DueJob, next: JobState) -> Option<i64> {
    let waiting = match ctx.config.mode {
        Mode::Poll => true,
        Mode::Submit { .. } => matches!(next, JobState::InFlight | JobState::Awaiting),
    };
    let first = job.first_request_at?;
    waiting.then(|| first.saturating_add(millis(ctx.config.result_timeout)))
}

/// The requests one turn sent, as its events record them: `attempts` counts every
/// submission, `polls` every job_status call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct WorkedTurn {
    submissions: i64,
    status_calls: i64,
}

impl WorkedTurn {
    fn count(events: &[WriteOp]) -> Self {
        let mut turn = WorkedTurn::default();
        for op in events {
            if let WriteOp::Event(e) = op {
                match e.kind {
                    EventKind::Submit => turn.submissions += 1,
                    EventKind::JobStatus => turn.status_calls += 1,
                    EventKind::Callback => {}
                }
            }
        }
        turn
    }
}

fn millis(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ApiKey, ClientConfig, Credentials};
    use crate::engine::{Backoff, EngineConfig, Mode};
    use crate::store::Store;

    /// A worker's context over a fresh database, with a client for a port nothing
    /// listens on (a request would fail, and be recorded as an event).
    fn ctx(dir: &tempfile::TempDir) -> (Arc<Ctx>, super::super::writer::Turns) {
        let store = Store::open(&dir.path().join("w.db")).unwrap();
        let (writer, turns, _thread) = Writer::spawn(store);
        let client = SmileClient::new(ClientConfig {
            base_url: "http://127.0.0.1:9".into(),
            connect_timeout: Duration::from_millis(200),
            request_timeout: Duration::from_millis(200),
            credentials: Credentials::new("002", ApiKey::new("test-key").unwrap()).unwrap(),
            extra_roots: Vec::new(),
        })
        .unwrap();
        let ctx = Ctx {
            config: EngineConfig {
                run_id: 1,
                mode: Mode::Poll,
                concurrency: 1,
                rate: None,
                burst: 1,
                rate_jitter: Duration::ZERO,
                max_attempts: 3,
                deadline: None,
                result_timeout: super::super::DEFAULT_RESULT_TIMEOUT,
                backoff: Backoff::default(),
                breaker_threshold: 5,
                shutdown_grace: Duration::from_secs(1),
                callback_listen: None,
                callback: Default::default(),
                keep_pii: false,
            },
            client,
            writer,
            limiter: None,
            breaker: Breaker::new(5),
            tally: Arc::new(Tally::default()),
            deadline_at: None,
            stopping: AtomicBool::new(false),
        };
        (Arc::new(ctx), turns)
    }

    fn job(row: i64) -> DueJob {
        DueJob {
            row,
            line: row + 1,
            user_id: "u".into(),
            job_id: format!("j{row}"),
            state: JobState::Awaiting,
            attempts: 0,
            polls: 0,
            input_json: "{}".into(),
            first_request_at: None,
            callback_claim: None,
        }
    }

    /// A job a callback claimed, which job_status says is still pending, asks again after
    /// the grace, not at the job_status cadence: a copied pair posted for every job cannot
    /// set them all polling. Without a claim, the cadence.
    #[tokio::test]
    async fn a_claimed_job_still_pending_waits_a_grace_before_asking_again() {
        let dir = tempfile::tempdir().unwrap();
        let (ctx, _turns) = ctx(&dir);
        let mut ctx = Arc::into_inner(ctx).unwrap();
        let grace = Duration::from_secs(120);
        ctx.config.mode = Mode::Submit {
            endpoint: crate::api::SubmitEndpoint::VerifyAsync,
            callback_url: None,
            callback_grace: grace,
        };
        let pending = || Next::Again {
            state: JobState::Awaiting,
            wait: Wait::Poll,
            code: Some("2302".into()),
            error: None,
        };
        let one_call = WorkedTurn {
            submissions: 0,
            status_calls: 1,
        };
        let claimed = DueJob {
            callback_claim: Some("1020".into()),
            ..job(1)
        };
        let before = now_ms();
        let update = to_update(&ctx, &claimed, pending(), one_call);
        assert!(
            update.next_attempt_at >= before + 120_000,
            "{} ms",
            update.next_attempt_at - before
        );
        let update = to_update(&ctx, &job(2), pending(), one_call);
        assert!(
            update.next_attempt_at < before + 60_000,
            "{} ms",
            update.next_attempt_at - before
        );
    }

    #[tokio::test]
    async fn a_stopping_run_hands_queued_jobs_back_unworked() {
        let dir = tempfile::tempdir().unwrap();
        let (ctx, mut turns) = ctx(&dir);
        ctx.stopping.store(true, Ordering::Relaxed);
        let (queue, jobs) = async_channel::bounded(4);
        for row in [3, 1, 2] {
            queue.send(job(row)).await.unwrap();
        }
        queue.close();
        let (hand_back, mut unworked) = tokio::sync::mpsc::unbounded_channel();
        serve(ctx.clone(), jobs, hand_back).await.unwrap();
        let mut back = Vec::new();
        while let Ok(row) = unworked.try_recv() {
            back.push(row);
        }
        assert_eq!(back, vec![3, 1, 2]);
        assert_eq!(
            ctx.tally.requests.load(Ordering::Relaxed),
            0,
            "nothing sent"
        );
        assert!(turns.try_recv().is_err(), "no turn reported");
    }

    #[tokio::test]
    async fn a_worked_job_reaches_the_dispatcher_through_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let (ctx, mut turns) = ctx(&dir);
        crate::store::seed_for_tests(&dir.path().join("w.db"), &[(1, 1, "awaiting", None)]);
        let (queue, jobs) = async_channel::bounded(1);
        queue.send(job(1)).await.unwrap();
        queue.close();
        let (hand_back, mut unworked) = tokio::sync::mpsc::unbounded_channel();
        serve(ctx.clone(), jobs, hand_back).await.unwrap();
        // Nothing listens on the port: the request fails and the job waits for a retry,
        // with its attempt counted and the failure recorded.
        let committed = turns.recv().await.unwrap().unwrap();
        assert_eq!(committed.len(), 1);
        let (turn, changed) = &committed[0];
        assert_eq!(
            (turn.row, turn.from, turn.to),
            (1, JobState::Awaiting, JobState::Awaiting)
        );
        assert!(changed);
        assert!(unworked.try_recv().is_err(), "not handed back");
        assert_eq!(ctx.tally.requests.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn a_submission_whose_intent_did_not_apply_is_not_sent() {
        let dir = tempfile::tempdir().unwrap();
        let (ctx, mut turns) = ctx(&dir);
        let mut ctx = Arc::into_inner(ctx).unwrap();
        ctx.config.mode = Mode::Submit {
            endpoint: crate::api::SubmitEndpoint::Verify,
            callback_url: None,
            callback_grace: Duration::from_secs(1),
        };
        let ctx = Arc::new(ctx);
        // Dispatched as queued, but final by the time its intent is committed (a result
        // recorded meanwhile): the intent changes nothing, so nothing may be sent.
        crate::store::seed_for_tests(&dir.path().join("w.db"), &[(1, 1, "done", None)]);
        let mut queued = job(1);
        queued.state = JobState::Queued;
        queued.input_json =
            r#"{"id_info":{"country":"GH","id_type":"PASSPORT","id_number":"G4583959"}}"#.into();
        let (queue, jobs) = async_channel::bounded(1);
        queue.send(queued).await.unwrap();
        queue.close();
        let (hand_back, mut unworked) = tokio::sync::mpsc::unbounded_channel();
        serve(ctx.clone(), jobs, hand_back).await.unwrap();
        assert_eq!(
            ctx.tally.requests.load(Ordering::Relaxed),
            0,
            "a request was sent for a job whose intent did not apply"
        );
        // The turn still ends cleanly: reported, not handed back, the job left as it was.
        let committed = turns.recv().await.unwrap().unwrap();
        assert_eq!(committed.len(), 1);
        let (turn, _) = &committed[0];
        assert_eq!(
            (turn.row, turn.from, turn.to),
            (1, JobState::Queued, JobState::Queued)
        );
        assert!(unworked.try_recv().is_err(), "not handed back");
        let conn = rusqlite::Connection::open(dir.path().join("w.db")).unwrap();
        let (state, events): (String, i64) = conn
            .query_row(
                "SELECT state, (SELECT count(*) FROM events) FROM jobs WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((state.as_str(), events), ("done", 0));
    }

    #[test]
    fn a_job_whose_turn_panics_is_handed_back() {
        let (hand_back, mut unworked) = tokio::sync::mpsc::unbounded_channel();
        let result = std::panic::catch_unwind(|| {
            let _held = Held {
                row: 7,
                unworked: &hand_back,
            };
            panic!("a bug in a turn");
        });
        assert!(result.is_err());
        assert_eq!(unworked.try_recv().ok(), Some(7));
        // A turn that reached the writer is not handed back.
        let held = Held {
            row: 8,
            unworked: &hand_back,
        };
        std::mem::forget(held);
        assert!(unworked.try_recv().is_err());
    }
}
