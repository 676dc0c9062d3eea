-- Tenancy and roles (issue 14). A token belongs to a commune (NULL: the Métropole) and has a
-- role; tokens made before carry none and keep what their scope gave them (admin: the
-- Métropole's administrator, read: a viewer of the Métropole, ingest: a device).
ALTER TABLE tokens ADD COLUMN role TEXT;
ALTER TABLE tokens ADD COLUMN commune TEXT;
ALTER TABLE tokens ADD COLUMN domain TEXT;

-- People with an account: a role in a commune (NULL: the Métropole), a password hashed with
-- Argon2id (NULL: single sign-on only), the count of failed logins and the lock they lead to.
CREATE TABLE people (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL,
    commune       TEXT,
    domain        TEXT,
    password_hash TEXT,
    subject       TEXT UNIQUE,
    failed_logins BIGINT NOT NULL DEFAULT 0,
    locked_until  BIGINT,
    disabled      BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    last_login    BIGINT
);
