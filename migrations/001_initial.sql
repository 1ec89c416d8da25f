-- The checkpoint schema. Times are Unix milliseconds (UTC). No secrets are stored: the
-- API key never reaches this database.

CREATE TABLE runs (
    id              INTEGER PRIMARY KEY,
    name            TEXT    NOT NULL,           -- the job spec's name, or "submit:<manifest>"
    mode            TEXT    NOT NULL,           -- submit | poll
    endpoint        TEXT,                       -- the submit endpoint (verify-async, ...)
    manifest_path   TEXT    NOT NULL,
    manifest_query  TEXT,
    manifest_sha256 TEXT    NOT NULL,
    config_json     TEXT    NOT NULL,           -- the effective configuration, without secrets
    status          TEXT    NOT NULL,           -- staging | ready | running | interrupted | finished | failed
    staged_rows     INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    finished_at     INTEGER
);
CREATE INDEX runs_by_name ON runs(name, id);

CREATE TABLE executions (
    id          INTEGER PRIMARY KEY,
    run_id      INTEGER NOT NULL REFERENCES runs(id),
    pid         INTEGER NOT NULL,
    command     TEXT    NOT NULL,
    started_at  INTEGER NOT NULL,
    ended_at    INTEGER,
    outcome     TEXT                            -- finished | interrupted | failed: <why>
);

CREATE TABLE jobs (
    id                    INTEGER PRIMARY KEY,
    run_id                INTEGER NOT NULL REFERENCES runs(id),
    line                  INTEGER NOT NULL,     -- the manifest line (1 = header)
    user_id               TEXT    NOT NULL,
    job_id                TEXT    NOT NULL,
    job_id_derived        INTEGER NOT NULL DEFAULT 0,
    country               TEXT,
    id_type               TEXT,
    input_json            TEXT    NOT NULL,     -- the validated row, or the reason it is invalid
    state                 TEXT    NOT NULL,     -- queued | in_flight | awaiting | done | failed | gave_up | invalid
    attempts              INTEGER NOT NULL DEFAULT 0,  -- submissions / checks that failed and were retried
    polls                 INTEGER NOT NULL DEFAULT 0,  -- job_status calls answered "not complete"
    next_attempt_at       INTEGER NOT NULL DEFAULT 0,
    last_http_status      INTEGER,
    last_code             TEXT,
    last_error            TEXT,
    result_code           TEXT,
    result_text           TEXT,
    job_success           INTEGER,
    category              TEXT,
    smile_job_id          TEXT,
    result_source         TEXT,                 -- sync | callback | job_status
    result_json           TEXT,
    signature_confirmed   INTEGER,
    expected_result_code  TEXT,
    expected_status       TEXT,
    first_request_at      INTEGER,
    completed_at          INTEGER,
    updated_at            INTEGER NOT NULL,
    UNIQUE (run_id, line)
);
-- One valid job per job_id in a run; a later row with the same job_id is staged invalid.
CREATE UNIQUE INDEX jobs_by_job_id ON jobs(run_id, job_id) WHERE state <> 'invalid';
-- What the dispatcher pages through: the jobs that still need work.
CREATE INDEX jobs_active ON jobs(run_id, id) WHERE state IN ('queued', 'in_flight', 'awaiting');

CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    run_id      INTEGER NOT NULL,
    job_row     INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    kind        TEXT    NOT NULL,               -- submit | job_status | callback
    http_status INTEGER,
    code        TEXT,
    outcome     TEXT    NOT NULL,               -- what the engine made of it
    error       TEXT,
    latency_ms  INTEGER
);
CREATE INDEX events_by_job ON events(job_row);
CREATE INDEX events_by_run ON events(run_id, kind);
