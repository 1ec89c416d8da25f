//! The jobs the server holds, by job_id, and each user's jobs in submission order (for
//! job_status `history`).
//!
//! Sharded maps behind short-lived std mutexes: job_status is the benchmarks' hot path, and
//! a lock is never held across an await, so contention stays at the shard level.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::time::Instant;

const SHARDS: usize = 32;

/// A finished job's result, serialised once (without timestamp and signature, which every
/// answer adds fresh).
#[derive(Debug)]
pub struct Finished {
    pub success: bool,
    /// The result object as JSON text: `{"SmileJobID": ...}`.
    pub json: Arc<str>,
}

#[derive(Debug)]
struct Job {
    user_id: String,
    finished: Option<Arc<Finished>>,
    /// A preloaded job is pending until then, although its result is known.
    visible_at: Option<Instant>,
}

/// What job_status sees of one job.
#[derive(Debug, Clone)]
pub enum JobView {
    Pending,
    Complete(Arc<Finished>),
}

#[derive(Debug)]
pub struct JobStore {
    jobs: Vec<Mutex<HashMap<String, Job>>>,
    users: Vec<Mutex<HashMap<String, Vec<String>>>>,
    hasher: RandomState,
}

impl Default for JobStore {
    fn default() -> Self {
        Self::new()
    }
}

/// A poisoned shard only means another request panicked mid-update of a plain map; the
/// map itself is still consistent enough to serve, so the poison is ignored.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl JobStore {
    pub fn new() -> Self {
        Self {
            jobs: (0..SHARDS).map(|_| Mutex::default()).collect(),
            users: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, key: &str) -> usize {
        (self.hasher.hash_one(key) as usize) % SHARDS
    }

    /// Registers a new job; false (and nothing changed) if the job_id is taken.
    pub fn insert(
        &self,
        job_id: &str,
        user_id: &str,
        finished: Option<Arc<Finished>>,
        visible_at: Option<Instant>,
    ) -> bool {
        {
            let mut jobs = lock(&self.jobs[self.shard(job_id)]);
            if jobs.contains_key(job_id) {
                return false;
            }
            jobs.insert(
                job_id.to_owned(),
                Job {
                    user_id: user_id.to_owned(),
                    finished,
                    visible_at,
                },
            );
        }
        lock(&self.users[self.shard(user_id)])
            .entry(user_id.to_owned())
            .or_default()
            .push(job_id.to_owned());
        true
    }

    pub fn contains(&self, job_id: &str) -> bool {
        lock(&self.jobs[self.shard(job_id)]).contains_key(job_id)
    }

    /// Gives a pending job its result.
    pub fn complete(&self, job_id: &str, finished: Arc<Finished>) {
        if let Some(job) = lock(&self.jobs[self.shard(job_id)]).get_mut(job_id) {
            job.finished = Some(finished);
        }
    }

    /// The job, if it exists under this user_id (another user's job is not found).
    pub fn view(&self, user_id: &str, job_id: &str, now: Instant) -> Option<JobView> {
        let jobs = lock(&self.jobs[self.shard(job_id)]);
        let job = jobs.get(job_id)?;
        if job.user_id != user_id {
            return None;
        }
        Some(visible(job, now))
    }

    /// The finished results of all of this user's jobs, oldest first.
    pub fn history(&self, user_id: &str, now: Instant) -> Vec<Arc<Finished>> {
        let ids = lock(&self.users[self.shard(user_id)])
            .get(user_id)
            .cloned()
            .unwrap_or_default();
        ids.iter()
            .filter_map(|id| {
                let jobs = lock(&self.jobs[self.shard(id)]);
                match visible(jobs.get(id)?, now) {
                    JobView::Complete(f) => Some(f),
                    JobView::Pending => None,
                }
            })
            .collect()
    }
}

fn visible(job: &Job, now: Instant) -> JobView {
    match (&job.finished, job.visible_at) {
        (Some(f), None) => JobView::Complete(f.clone()),
        (Some(f), Some(at)) if now >= at => JobView::Complete(f.clone()),
        _ => JobView::Pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn finished(code: &'static str) -> Arc<Finished> {
        Arc::new(Finished {
            success: true,
            json: Arc::from(format!("{{\"ResultCode\":\"{code}\"}}")),
        })
    }

    #[test]
    fn job_ids_are_unique_and_scoped_to_their_user() {
        let s = JobStore::new();
        let now = Instant::now();
        assert!(s.insert("j1", "u1", None, None));
        assert!(!s.insert("j1", "u2", Some(finished("1020")), None));
        assert!(matches!(s.view("u1", "j1", now), Some(JobView::Pending)));
        assert!(s.view("u2", "j1", now).is_none());
        s.complete("j1", finished("1021"));
        match s.view("u1", "j1", now) {
            Some(JobView::Complete(f)) => assert!(f.json.contains("1021")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn preloaded_jobs_stay_pending_until_visible_and_history_lists_finished_jobs() {
        let s = JobStore::new();
        let now = Instant::now();
        let later = now + Duration::from_secs(60);
        s.insert("a", "u", Some(finished("1020")), None);
        s.insert("b", "u", Some(finished("1022")), Some(later));
        s.insert("c", "u", None, None);
        s.insert("d", "other", Some(finished("1013")), None);
        assert!(matches!(s.view("u", "b", now), Some(JobView::Pending)));
        assert!(matches!(
            s.view("u", "b", later),
            Some(JobView::Complete(_))
        ));
        let codes = |at| -> Vec<_> {
            s.history("u", at)
                .iter()
                .map(|f| f.json[15..19].to_owned())
                .collect()
        };
        assert_eq!(codes(now), vec!["1020"]);
        assert_eq!(codes(later), vec!["1020", "1022"]);
    }
}
