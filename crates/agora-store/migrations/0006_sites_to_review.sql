-- Places created from a device's site tag on first sight (`[ingest] create_unknown_sites`): their
-- name, commune and position are to be checked by an operator; declaring the place again through
-- the API clears the mark.
ALTER TABLE sites ADD COLUMN to_review INTEGER NOT NULL DEFAULT 0;
