-- +goose Up
-- Server-side sessions: the cookie carries only a random token, kept here
-- as its SHA-256, so a session is valid on every instance sharing the
-- database and ends when revoked (sign-out), idle or too old.
CREATE TABLE sessions (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash      TEXT NOT NULL UNIQUE,
    user_id         INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_version INTEGER NOT NULL,
    created_at      DATETIME NOT NULL,
    last_seen_at    DATETIME NOT NULL,
    expires_at      DATETIME NOT NULL,
    revoked_at      DATETIME,
    client_ip       TEXT NOT NULL DEFAULT '',
    user_agent      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions (user_id, revoked_at);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- Sign-in attempts per username and per client address. An attempt is
-- counted before its password is hashed, so parallel guesses cannot all be
-- checked; a subject with too many is locked until locked_until.
CREATE TABLE sign_in_throttles (
    scope           TEXT NOT NULL CHECK (scope IN ('username', 'client')),
    subject         TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    locked_until    DATETIME,
    refusal_audited BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at      DATETIME NOT NULL,
    PRIMARY KEY (scope, subject)
);
CREATE INDEX sign_in_throttles_locked ON sign_in_throttles (locked_until);

DROP TABLE login_throttles;

-- +goose Down
CREATE TABLE login_throttles (
    username     TEXT PRIMARY KEY,
    failures     INTEGER NOT NULL DEFAULT 0,
    locked_until DATETIME,
    updated_at   DATETIME NOT NULL
);
DROP TABLE sign_in_throttles;
DROP TABLE sessions;
