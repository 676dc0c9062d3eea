-- Open-data datasets an operator defines: what is published, at what resolution, with its
-- metadata (title, licence, publisher…). The definition is kept as JSON (agora-store's
-- `opendata::Dataset`), checked by agora-opendata before it is stored.
CREATE TABLE open_datasets (
    id TEXT PRIMARY KEY,                -- the dataset_id of the Explore API, a slug
    published INTEGER NOT NULL,         -- 0 or 1: only published datasets are public
    definition TEXT NOT NULL,           -- JSON
    created_at INTEGER NOT NULL,        -- ns
    modified_at INTEGER NOT NULL        -- ns
);
