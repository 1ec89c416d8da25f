-- The secret of the keyed hash (HMAC-SHA256) that stands in for a final job's ID number
-- once its personal data is removed: random, one per database, made once here and never
-- shown. Two rows of this database with the same ID number get the same hash; another
-- database, or anyone without this file, cannot recompute it.
CREATE TABLE pii_key (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    secret BLOB NOT NULL CHECK (length(secret) = 32)
);
INSERT INTO pii_key (id, secret) VALUES (1, randomblob(32));
