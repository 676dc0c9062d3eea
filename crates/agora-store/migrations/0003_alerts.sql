-- Alert rules, alerts with their lifecycle, action deliveries and the evaluation state.

CREATE TABLE alert_rules (
    id          TEXT PRIMARY KEY,
    body        TEXT NOT NULL,          -- the rule as JSON
    origin      TEXT NOT NULL,          -- api | config
    updated_at  INTEGER NOT NULL        -- ns since the epoch
);

CREATE TABLE alerts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    rule             TEXT NOT NULL,
    scope_key        TEXT NOT NULL,     -- what the alert is about: a device id, or the rule's scope
    device           TEXT,
    site             TEXT,
    commune          TEXT,
    property         TEXT,
    severity         TEXT NOT NULL,
    state            TEXT NOT NULL,     -- open | acknowledged | resolved
    message          TEXT NOT NULL,
    value            REAL,
    opened_at        INTEGER NOT NULL,
    acknowledged_at  INTEGER,
    acknowledged_by  TEXT,
    ack_comment      TEXT,
    resolved_at      INTEGER,
    resolved_by      TEXT               -- auto | the token's name
);
-- One alert not yet resolved per rule and scope: no duplicates, even across restarts.
CREATE UNIQUE INDEX alerts_one_open ON alerts (rule, scope_key) WHERE state <> 'resolved';
CREATE INDEX alerts_opened ON alerts (opened_at);

CREATE TABLE alert_deliveries (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id   INTEGER NOT NULL,
    event      TEXT NOT NULL,           -- opened | acknowledged | resolved
    action     TEXT NOT NULL,           -- webhook | mqtt | email
    target     TEXT NOT NULL,
    attempt    INTEGER NOT NULL,
    ok         INTEGER NOT NULL,
    detail     TEXT NOT NULL,
    at         INTEGER NOT NULL
);
CREATE INDEX alert_deliveries_alert ON alert_deliveries (alert_id);

CREATE TABLE alert_eval_state (
    rule       TEXT NOT NULL,
    scope_key  TEXT NOT NULL,
    state      TEXT NOT NULL,           -- JSON
    PRIMARY KEY (rule, scope_key)
);
