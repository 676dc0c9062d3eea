-- What the running server keeps in memory and must not forget at a restart: the quality checks'
-- state of each series, the fleet page's flag tallies, ChirpStack's recent deduplication ids.
-- One row per kind of state, its value as JSON, saved periodically and at shutdown.
CREATE TABLE runtime_state (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    saved_at INTEGER NOT NULL           -- nanoseconds since the epoch
);
