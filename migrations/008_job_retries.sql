-- `retry` puts failed and gave_up jobs back for a new execution of their run. A job that
-- Smile ID accepted (it has a SmileJobID or a result) is sent again under a new job_id,
-- derived from the job_id it was first staged with and its retry count, so that a retry
-- killed midway and run again derives the same id.
ALTER TABLE jobs ADD COLUMN retries INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN first_job_id TEXT; -- the staged job_id, once a retry replaced it
