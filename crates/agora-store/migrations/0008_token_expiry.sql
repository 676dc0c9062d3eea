-- A token may expire: past this time (ns) it authenticates nothing.
ALTER TABLE tokens ADD COLUMN expires_at INTEGER;
