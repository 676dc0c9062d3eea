-- Schedules the departments apply to their equipment (a lighting scenario, an irrigation plan)
-- and the commands agora sent for them, with what came of each.
CREATE TABLE service_schedules (
    id          INTEGER PRIMARY KEY,
    service     TEXT NOT NULL,          -- lighting | irrigation
    commune     TEXT,                   -- INSEE code of what it drives (NULL: several)
    name        TEXT NOT NULL,
    body        TEXT NOT NULL,          -- the service's own settings (JSON)
    active      INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL        -- ns since the epoch
);
CREATE TABLE service_commands (
    id          INTEGER PRIMARY KEY,
    schedule_id INTEGER NOT NULL,
    device      TEXT NOT NULL,
    topic       TEXT NOT NULL,
    payload     TEXT NOT NULL,          -- JSON
    at          INTEGER NOT NULL,       -- ns since the epoch
    outcome     TEXT NOT NULL           -- the publisher's answer, or why it failed
);
CREATE INDEX service_commands_by_schedule ON service_commands (schedule_id, at);
