-- The decision makers' data: the 15-minute city's imports (a commune's walking network,
-- facilities, population, neighbourhoods), and the well-being index's definitions (every
-- version kept, with who made it) and survey results.
CREATE TABLE proximity_layers (
    commune      TEXT NOT NULL,          -- INSEE code
    layer        TEXT NOT NULL,          -- network | facilities | population | areas
    name         TEXT NOT NULL,          -- the dataset (facilities: bpe, parks…; else the layer)
    content      BLOB NOT NULL,          -- the parsed layer (network: binary; others: JSON)
    items        INTEGER NOT NULL,       -- segments, facilities, squares or areas
    summary      TEXT NOT NULL,          -- what the import read (JSON)
    imported_by  TEXT NOT NULL,
    imported_at  INTEGER NOT NULL,       -- ns since the epoch
    PRIMARY KEY (commune, layer, name)
);
CREATE TABLE wellbeing_definitions (
    version      INTEGER PRIMARY KEY,
    body         TEXT NOT NULL,          -- indicators, ranges, directions, weights (JSON)
    reason       TEXT NOT NULL,
    changed_by   TEXT NOT NULL,
    changed_at   INTEGER NOT NULL        -- ns since the epoch
);
CREATE TABLE wellbeing_surveys (
    place        TEXT NOT NULL,          -- the place's id
    date         TEXT NOT NULL,          -- YYYY-MM-DD of the survey
    question     TEXT NOT NULL,          -- the indicator it feeds (survey_satisfaction…)
    score        REAL NOT NULL,
    respondents  INTEGER,
    imported_by  TEXT NOT NULL,
    imported_at  INTEGER NOT NULL,
    PRIMARY KEY (place, date, question)
);
