-- The next generation of each run identity, kept apart from `runs` so that pruning an
-- identity's runs does not let `--again` reuse a generation: a reused generation derives
-- the same job_ids, which Smile ID answers with 2215 and the old results.
CREATE TABLE identity_generations (
    name TEXT NOT NULL,
    run_key TEXT NOT NULL,
    next_generation INTEGER NOT NULL,
    PRIMARY KEY (name, run_key)
) WITHOUT ROWID;
INSERT INTO identity_generations (name, run_key, next_generation)
    SELECT name, run_key, MAX(generation) + 1 FROM runs
    WHERE run_key IS NOT NULL GROUP BY name, run_key;
CREATE TRIGGER identity_generation_after_run AFTER INSERT ON runs
WHEN NEW.run_key IS NOT NULL
BEGIN
    INSERT INTO identity_generations (name, run_key, next_generation)
        VALUES (NEW.name, NEW.run_key, NEW.generation + 1)
        ON CONFLICT (name, run_key)
        DO UPDATE SET next_generation = MAX(next_generation, excluded.next_generation);
END;
-- The highest run id ever given: a run created after its predecessors were pruned gets a
-- new id, not a pruned run's (reports written under `{run}` would be overwritten).
CREATE TABLE run_ids (last INTEGER NOT NULL);
INSERT INTO run_ids (last) SELECT COALESCE(MAX(id), 0) FROM runs;
CREATE TRIGGER run_ids_after_run AFTER INSERT ON runs
BEGIN
    UPDATE run_ids SET last = MAX(last, NEW.id);
END;
