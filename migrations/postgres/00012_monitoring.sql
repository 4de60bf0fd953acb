-- +goose Up
-- Fresh state, snapshots and alerts (issue 15).
--
-- Who last read a stock back from WeChat Pay (a username, or "system" for the
-- background sync), the stock's own low-stock threshold (NULL: the
-- configured default), and the time before which no background sync reads
-- it again (Unix microseconds): a sync claims a stock by moving it forward,
-- so each stock is read once per interval however many instances run.
ALTER TABLE stocks ADD COLUMN refreshed_by TEXT NOT NULL DEFAULT '';
ALTER TABLE stocks ADD COLUMN low_stock_threshold BIGINT;
ALTER TABLE stocks ADD COLUMN sync_next_at BIGINT NOT NULL DEFAULT 0;

-- Code counts as each sync read them, for the overview's charts and the
-- estimated time until a stock runs out.
CREATE TABLE stock_snapshots (
    id              BIGSERIAL PRIMARY KEY,
    stock_ref       BIGINT NOT NULL REFERENCES stocks (id) ON DELETE CASCADE,
    taken_at        TIMESTAMPTZ NOT NULL,
    total_count     BIGINT,
    available_count BIGINT,
    sent_count      BIGINT
);
CREATE INDEX stock_snapshots_stock ON stock_snapshots (stock_ref, taken_at);
CREATE INDEX stock_snapshots_time ON stock_snapshots (taken_at);

-- Alerts: one row per condition while it holds (cleared_at NULL); the
-- partial unique index is what makes a condition alert once until it clears.
-- audience is the roles told (comma-separated); user_id a single user told.
CREATE TABLE alerts (
    id         BIGSERIAL PRIMARY KEY,
    kind       TEXT NOT NULL,
    cond_key   TEXT NOT NULL,
    audience   TEXT NOT NULL DEFAULT '',
    user_id    BIGINT REFERENCES users (id),
    stock_ref  BIGINT REFERENCES stocks (id) ON DELETE SET NULL,
    link       TEXT NOT NULL DEFAULT '',
    params     TEXT NOT NULL DEFAULT '',
    raised_at  TIMESTAMPTZ NOT NULL,
    cleared_at TIMESTAMPTZ
);
CREATE UNIQUE INDEX alerts_open ON alerts (kind, cond_key) WHERE cleared_at IS NULL;
CREATE INDEX alerts_raised ON alerts (raised_at, id);

-- Which user has read which alert (the unread count is what is missing).
CREATE TABLE alert_reads (
    alert_id BIGINT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    user_id  BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    read_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (alert_id, user_id)
);

-- Each delivery of an alert to an outside channel (a River job, retried
-- with backoff): its attempts and outcome, shown to admins.
CREATE TABLE alert_deliveries (
    id           BIGSERIAL PRIMARY KEY,
    alert_id     BIGINT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    channel      TEXT NOT NULL CHECK (channel IN ('wecom', 'webhook')),
    status       TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_status  INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT NOT NULL DEFAULT '',
    created_at   TIMESTAMPTZ NOT NULL,
    delivered_at TIMESTAMPTZ,
    updated_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX alert_deliveries_alert ON alert_deliveries (alert_id, id);

-- How far an outbound stream has delivered (the audit stream to a SIEM
-- resumes after last_seq).
CREATE TABLE outbound_cursors (
    name       TEXT PRIMARY KEY,
    last_seq   BIGINT NOT NULL DEFAULT 0,
    updated_at TIMESTAMPTZ NOT NULL
);

-- +goose Down
DROP TABLE outbound_cursors;
DROP TABLE alert_deliveries;
DROP TABLE alert_reads;
DROP TABLE alerts;
DROP TABLE stock_snapshots;
ALTER TABLE stocks DROP COLUMN sync_next_at;
ALTER TABLE stocks DROP COLUMN low_stock_threshold;
ALTER TABLE stocks DROP COLUMN refreshed_by;
