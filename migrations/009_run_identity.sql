-- A run's identity: its name plus an identifying key (by default the manifest's SHA-256).
-- The same identity unfinished resumes; finished, it is refused unless `--again`, which
-- makes a new run of the identity with the next generation. Derived job_ids come from the
-- identity, the generation and the row, so the same row of the same identity has the same
-- job_id in any database. A run from before identities has no key (NULL) and keeps
-- deriving its job_ids from its run id.
ALTER TABLE runs ADD COLUMN run_key TEXT;
ALTER TABLE runs ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
CREATE INDEX runs_by_identity ON runs(name, run_key, id);
