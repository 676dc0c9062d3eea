-- Dead letters keep how to decode them again, and whether their input was cut to fit.
ALTER TABLE rejects ADD COLUMN format TEXT;
ALTER TABLE rejects ADD COLUMN truncated INTEGER NOT NULL DEFAULT 0;
