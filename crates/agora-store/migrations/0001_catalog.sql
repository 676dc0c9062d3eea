-- The catalog: communes, sites, devices, series, tokens, dead letters.
-- Portable SQL: the same statements run on SQLite and PostgreSQL.

CREATE TABLE communes (
    insee      TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    boundary   TEXT
);

CREATE TABLE sites (
    id         TEXT PRIMARY KEY,
    commune    TEXT NOT NULL REFERENCES communes (insee),
    name       TEXT NOT NULL,
    lat        DOUBLE PRECISION,
    lon        DOUBLE PRECISION,
    geometry   TEXT
);

CREATE TABLE devices (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    name       TEXT,
    site       TEXT REFERENCES sites (id),
    commune    TEXT REFERENCES communes (insee),
    lat        DOUBLE PRECISION,
    lon        DOUBLE PRECISION,
    metadata   TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    last_seen  BIGINT
);
CREATE INDEX devices_site ON devices (site);
CREATE INDEX devices_commune ON devices (commune);

CREATE TABLE series (
    id          INTEGER PRIMARY KEY,
    device      TEXT NOT NULL REFERENCES devices (id),
    property    TEXT NOT NULL,
    value_kind  TEXT NOT NULL,
    unit        TEXT NOT NULL,
    source_unit TEXT,
    created_at  BIGINT NOT NULL,
    UNIQUE (device, property)
);

CREATE TABLE tokens (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    hash       TEXT NOT NULL UNIQUE,
    scope      TEXT NOT NULL,
    device     TEXT,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE rejects (
    id          INTEGER PRIMARY KEY,
    received_at BIGINT NOT NULL,
    source      TEXT NOT NULL,
    line        INTEGER,
    reason      TEXT NOT NULL,
    raw         TEXT NOT NULL
);
