-- The unique job_id index used to be partial on `state <> 'invalid'`: every state change
-- of every job then deleted and reinserted the job's entry in it (SQLite maintains a
-- partial index whenever a column of its predicate changes). Whether a row is invalid is
-- decided at staging and never changes after, so the predicate now reads a column that
-- is written once.
ALTER TABLE jobs ADD COLUMN staged_invalid INTEGER NOT NULL DEFAULT 0;
UPDATE jobs SET staged_invalid = 1 WHERE state = 'invalid';
DROP INDEX jobs_by_job_id;
CREATE UNIQUE INDEX jobs_by_job_id ON jobs(run_id, job_id) WHERE staged_invalid = 0;
