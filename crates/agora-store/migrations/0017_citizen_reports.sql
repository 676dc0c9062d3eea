-- Citizens' reports (signalements) and what operators do with them. The reporter's email is
-- kept apart, with their consent, and erased once the report is closed plus the retention.
CREATE TABLE reports (
    id             INTEGER PRIMARY KEY,     -- the ticket's number
    follow         TEXT NOT NULL UNIQUE,    -- the reporter's follow-up key (random, 128 bits)
    commune        TEXT NOT NULL,           -- INSEE code of the commune it is in
    site           TEXT,                    -- the place it is at, when one is near
    category       TEXT NOT NULL,
    lat            REAL NOT NULL,
    lon            REAL NOT NULL,
    description    TEXT NOT NULL,
    channel        TEXT NOT NULL,           -- web | kiosk | api
    status         TEXT NOT NULL,           -- new | acknowledged | in_progress | resolved | rejected
    reason         TEXT,                    -- how it was resolved, why it was rejected
    public_note    TEXT,                    -- what operators publish about it
    description_public INTEGER NOT NULL DEFAULT 0,
    supporters     INTEGER NOT NULL DEFAULT 1, -- reports merged into it, itself included
    alert_id       INTEGER,                 -- the open alert it joined
    devices        TEXT NOT NULL DEFAULT '[]', -- nearby devices of its category (JSON)
    created_at     INTEGER NOT NULL,        -- ns since the epoch
    updated_at     INTEGER NOT NULL,
    closed_at      INTEGER
);
CREATE INDEX reports_by_status ON reports (status, category);
CREATE INDEX reports_by_time ON reports (created_at);
CREATE TABLE report_events (
    report_id      INTEGER NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    at             INTEGER NOT NULL,
    event          TEXT NOT NULL,           -- created | supported | acknowledged | in_progress | resolved | rejected | reopened
    actor          TEXT NOT NULL,           -- `citizen`, or the operator as alerts name them
    note           TEXT
);
CREATE INDEX report_events_by_report ON report_events (report_id, at);
CREATE TABLE report_follows (             -- the follow-up keys of people who reported it again
    key            TEXT PRIMARY KEY,
    report_id      INTEGER NOT NULL REFERENCES reports (id) ON DELETE CASCADE
);
CREATE TABLE report_contacts (
    report_id      INTEGER NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    email          TEXT NOT NULL,
    lang           TEXT NOT NULL,           -- fr | en: the language of the message
    consent_at     INTEGER NOT NULL,
    notified_at    INTEGER,
    PRIMARY KEY (report_id, email)
);
