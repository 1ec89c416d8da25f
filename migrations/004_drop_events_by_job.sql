-- No query of ours reads events by job: reports read a run's events through
-- `events_by_run`, and the one place that pairs an event with its job goes through the
-- job's primary key. The index cost every request's commit a b-tree insert and one more
-- page in the WAL (~10% of the writer's work in a poll run). An auditor's "what happened
-- to this job" scans the events of one run instead: `WHERE run_id = ? AND job_row = ?`.
DROP INDEX events_by_job;
