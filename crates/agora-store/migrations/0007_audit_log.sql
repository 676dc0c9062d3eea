-- The audit trail: one row per change or sensitive read, never updated. Each row's hash covers
-- its content and the previous row's hash, so an edited, removed or inserted row breaks the chain.
CREATE TABLE audit_log (
    seq       INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    actor     TEXT    NOT NULL,
    address   TEXT,
    action    TEXT    NOT NULL,
    target    TEXT    NOT NULL,
    status    INTEGER NOT NULL,
    detail    TEXT    NOT NULL,
    prev_hash TEXT    NOT NULL,
    hash      TEXT    NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
