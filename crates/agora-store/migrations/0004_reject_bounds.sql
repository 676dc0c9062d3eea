-- Dead letters keep the device their token was bound to, so that a replay applies the binding,
-- and their size, so that the log is bounded in bytes as well as in rows (the index makes the
-- running total cheap to compute without reading the bodies).
ALTER TABLE rejects ADD COLUMN token_device TEXT;
ALTER TABLE rejects ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
UPDATE rejects SET size = LENGTH(raw) + LENGTH(reason);
CREATE INDEX rejects_size ON rejects (id, size);
-- Dead letters recorded before this migration, refused because their token was bound to another
-- device, get that binding back from their reason, so that a replay keeps refusing them.
UPDATE rejects
SET token_device = substr(reason, length('this token may only write for device ') + 1,
                          instr(reason, ', not ') - length('this token may only write for device ') - 1)
WHERE reason LIKE 'this token may only write for device %, not %';
