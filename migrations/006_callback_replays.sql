-- Every (timestamp, signature) pair a callback was accepted with: Smile ID's signature
-- covers only timestamp + partner_id, so a pair seen once is refused afterwards, in this
-- run, a resumed one, or another run of the same database.
CREATE TABLE callback_replays (
    timestamp TEXT NOT NULL,
    signature TEXT NOT NULL,
    run_id INTEGER NOT NULL,
    job_row INTEGER NOT NULL,
    at INTEGER NOT NULL, -- Unix milliseconds
    PRIMARY KEY (timestamp, signature)
) WITHOUT ROWID;
-- The ResultCode a callback claimed for a job, until one job_status call confirms it
-- (--callback-confirm job-status).
ALTER TABLE jobs ADD COLUMN callback_claim TEXT;
