-- The dispatcher's index of jobs that still need work, with its predicate written as ORed
-- equalities: SQLite evaluates `state IN ('queued', 'in_flight', 'awaiting')` through a
-- temporary b-tree built and dropped for every row it checks, and a partial index's
-- predicate is checked on every insert and update of a job. Queries that page through
-- this index must use the very same expression (`store::state::ACTIVE_SQL`).
DROP INDEX jobs_active;
CREATE INDEX jobs_active ON jobs(run_id, id) WHERE (state = 'queued' OR state = 'in_flight' OR state = 'awaiting');
