-- Dead letters keep the device their token was bound to, so that a replay applies the binding,
-- and their size, so that the log is bounded in bytes as well as in rows (the index makes the
-- running total cheap to compute without reading the bodies).
ALTER TABLE rejects ADD COLUMN token_device TEXT;
ALTER TABLE rejects ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
UPDATE rejects SET size = LENGTH(raw) + LENGTH(reason);
CREATE INDEX rejects_size ON rejects (id, size);
