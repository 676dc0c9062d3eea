-- What operators declare for the commerce observatory: market days and events (the calendar
-- footfall is read against), interventions whose impact is studied, and the school-holiday
-- calendar when an operator loads one other than the zone B calendar agora ships.
CREATE TABLE commerce_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    commune TEXT NOT NULL,
    site TEXT,                          -- NULL: the whole commune
    kind TEXT NOT NULL,                 -- 'market' or 'event'
    name TEXT NOT NULL,
    first_day TEXT NOT NULL,            -- YYYY-MM-DD, Europe/Paris
    last_day TEXT NOT NULL,             -- inclusive
    weekdays TEXT NOT NULL DEFAULT '',  -- 'tue,thu,sat' for a weekly market; '' every day
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX commerce_events_days ON commerce_events (first_day, last_day);

CREATE TABLE commerce_interventions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    commune TEXT NOT NULL,
    site TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    start_day TEXT NOT NULL,
    controls TEXT NOT NULL,             -- JSON array of place identifiers
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE school_holiday_calendar (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    name TEXT NOT NULL,
    csv TEXT NOT NULL,
    loaded_by TEXT NOT NULL,
    loaded_at INTEGER NOT NULL
);
