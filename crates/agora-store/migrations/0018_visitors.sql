-- What visitors are shown: points of interest (in several languages) and discovery tours
-- through them, each replaced whole when edited.
CREATE TABLE pois (
    id             TEXT PRIMARY KEY,        -- e.g. fontaine-rotonde
    commune        TEXT NOT NULL,           -- INSEE code
    kind           TEXT NOT NULL,           -- heritage | museum | fountain | viewpoint | shade | toilets | drinking_water | other
    lat            REAL NOT NULL,
    lon            REAL NOT NULL,
    body           TEXT NOT NULL,           -- names, descriptions, hours, accessibility by language (JSON)
    updated_by     TEXT NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX pois_by_commune ON pois (commune, kind);
CREATE TABLE tours (
    id             TEXT PRIMARY KEY,
    commune        TEXT NOT NULL,
    body           TEXT NOT NULL,           -- titles, descriptions by language, stops in order (JSON)
    updated_by     TEXT NOT NULL,
    updated_at     INTEGER NOT NULL
);
