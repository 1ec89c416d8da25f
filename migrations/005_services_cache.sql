-- The last answers of GET /v1/services, per host: the id types and regexes a submit run
-- validates its rows against. A run that cannot reach the host uses the newest answer
-- stored for it (and says how old it is) before falling back to the built-in table.
CREATE TABLE services_cache (
    id INTEGER PRIMARY KEY,
    base_url TEXT NOT NULL,
    fetched_at INTEGER NOT NULL, -- Unix milliseconds
    body TEXT NOT NULL
);
CREATE INDEX services_cache_by_host ON services_cache (base_url, fetched_at);
