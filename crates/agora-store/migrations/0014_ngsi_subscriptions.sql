-- NGSI-LD subscriptions (ETSI GS CIM 009 §5.8): what to watch and where to notify, who made
-- them (notifications show what that token or person may see) and their counters.
CREATE TABLE ngsi_subscriptions (
    id          TEXT PRIMARY KEY,
    body        TEXT NOT NULL,          -- the subscription as made, with its context (JSON)
    owner       TEXT NOT NULL,          -- token:ID | person:ID
    status      TEXT NOT NULL,          -- timesSent, lastSuccess… (JSON)
    updated_at  INTEGER NOT NULL        -- ns since the epoch
);
