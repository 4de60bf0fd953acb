-- +goose Up
-- Runs of the audit chain's verification started from the integrity page:
-- one instance walks the chain in the background and records its progress
-- here (every half second, with a heartbeat), so that the page answers at
-- once on every instance, during the run and after it.
CREATE TABLE audit_verifications (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    status       TEXT NOT NULL CHECK (status IN ('running', 'intact', 'broken', 'failed')),
    owner        TEXT NOT NULL DEFAULT '',     -- the instance walking the chain
    started_by   TEXT NOT NULL DEFAULT '',
    started_at   DATETIME NOT NULL,
    heartbeat_at DATETIME NOT NULL,
    finished_at  DATETIME,
    total        BIGINT NOT NULL DEFAULT 0,    -- the last entry when the run started
    checked      BIGINT NOT NULL DEFAULT 0,
    last_seq     BIGINT NOT NULL DEFAULT 0,    -- the last entry verified intact
    last_at      DATETIME,
    last_hash    TEXT NOT NULL DEFAULT '',
    broken_seq   BIGINT NOT NULL DEFAULT 0,
    problem      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_verifications_running ON audit_verifications (status, heartbeat_at);

-- +goose Down
DROP TABLE audit_verifications;
