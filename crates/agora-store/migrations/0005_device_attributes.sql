-- Device attributes (ThingsBoard's device API): client attributes reported by a device, shared
-- attributes set by operators and pushed to it. Values are JSON text.
CREATE TABLE device_attributes (
    device TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    scope TEXT NOT NULL CHECK (scope IN ('client', 'shared')),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (device, scope, key)
) WITHOUT ROWID;
