-- +goose Up
-- Two-factor sign-in (TOTP, RFC 6238). The shared secret is kept sealed
-- (AES-GCM, key from CONSOLE_TOTP_KEY or derived from the session secret,
-- the user ID as associated data), never in clear. A row without
-- confirmed_at is an enrolment not yet confirmed by a first code.
-- last_step is the last time step accepted, so a code is accepted once.
CREATE TABLE two_factor_secrets (
    user_id       BIGINT PRIMARY KEY REFERENCES users (id),
    secret_sealed TEXT NOT NULL,
    confirmed_at  TIMESTAMPTZ,
    last_step     BIGINT NOT NULL DEFAULT 0,
    failures      INTEGER NOT NULL DEFAULT 0,
    locked_until  TIMESTAMPTZ,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);

-- One-time recovery codes, kept only as keyed hashes (HMAC-SHA256).
CREATE TABLE two_factor_recovery_codes (
    id         BIGSERIAL PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id),
    code_hash  TEXT NOT NULL,
    used_at    TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX two_factor_recovery_codes_user ON two_factor_recovery_codes (user_id, code_hash);

-- Roles whose users must sign in with a second factor.
CREATE TABLE two_factor_roles (
    role       TEXT PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL
);

-- +goose Down
DROP TABLE two_factor_roles;
DROP TABLE two_factor_recovery_codes;
DROP TABLE two_factor_secrets;
