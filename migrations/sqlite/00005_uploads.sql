-- +goose Up
-- Code-file uploads (SPEC §5). A file is checked first (status checked: its
-- problems and its batches are stored, nothing is sent), then started
-- (queued → sending, a background job on River) and ends finished, failed
-- (resumable), cancelled (resumable) or abandoned (never started).
CREATE TABLE uploads (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    stock_ref        BIGINT NOT NULL REFERENCES stocks (id),
    user_id          BIGINT REFERENCES users (id),
    file_name        TEXT NOT NULL,
    file_path        TEXT NOT NULL DEFAULT '', -- relative to the data directory
    file_size        BIGINT NOT NULL DEFAULT 0,
    file_sha256      TEXT NOT NULL DEFAULT '',
    encoding         TEXT NOT NULL DEFAULT '',
    has_header       BOOLEAN NOT NULL DEFAULT FALSE,
    status           TEXT NOT NULL CHECK (status IN ('checking', 'checked', 'queued', 'sending', 'finished', 'failed', 'cancelled', 'abandoned')),
    -- The check: rows_read = valid_count + invalid_count + duplicate_count;
    -- valid_count = known_count (already uploaded to the stock by the console)
    -- + codes_total (to send, in batches_total batches).
    rows_read        BIGINT NOT NULL DEFAULT 0,
    blank_rows       BIGINT NOT NULL DEFAULT 0,
    valid_count      BIGINT NOT NULL DEFAULT 0,
    invalid_count    BIGINT NOT NULL DEFAULT 0,
    duplicate_count  BIGINT NOT NULL DEFAULT 0,
    known_count      BIGINT NOT NULL DEFAULT 0,
    codes_total      BIGINT NOT NULL DEFAULT 0,
    batches_total    BIGINT NOT NULL DEFAULT 0,
    -- Sending, updated with each batch outcome in its transaction.
    codes_uploaded   BIGINT NOT NULL DEFAULT 0,
    codes_exist      BIGINT NOT NULL DEFAULT 0, -- WeChat Pay: already on the stock
    codes_failed     BIGINT NOT NULL DEFAULT 0,
    batches_sent     BIGINT NOT NULL DEFAULT 0,
    batches_failed   BIGINT NOT NULL DEFAULT 0,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    error_code       TEXT NOT NULL DEFAULT '',
    error_message    TEXT NOT NULL DEFAULT '',
    -- The River job that sends it, and the lease of the job execution doing
    -- so (lease_until in Unix microseconds on the database clock).
    job_id           BIGINT,
    lease_owner      TEXT,
    lease_until      BIGINT NOT NULL DEFAULT 0,
    created_at       DATETIME NOT NULL,
    checked_at       DATETIME,
    started_at       DATETIME,
    finished_at      DATETIME,
    updated_at       DATETIME NOT NULL
);
CREATE INDEX uploads_stock ON uploads (stock_ref, id);
CREATE INDEX uploads_active ON uploads (status);

-- The batches of an upload, fixed by the check: each with its request number
-- and its codes (and their file rows) before it is first sent, so every retry
-- and every resume resends exactly the same request.
CREATE TABLE upload_batches (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    upload_id      BIGINT NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
    batch_no       INTEGER NOT NULL,
    request_no     TEXT NOT NULL UNIQUE,
    code_count     INTEGER NOT NULL,
    codes          TEXT NOT NULL, -- JSON array of codes
    row_nos        TEXT NOT NULL, -- JSON array of their row numbers
    status         TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts       INTEGER NOT NULL DEFAULT 0,
    uploaded_count INTEGER NOT NULL DEFAULT 0,
    exist_codes    TEXT NOT NULL DEFAULT '', -- JSON array: WeChat Pay had them already
    failed_codes   TEXT NOT NULL DEFAULT '', -- JSON array of {code, err, msg}
    http_status    INTEGER NOT NULL DEFAULT 0,
    error_code     TEXT NOT NULL DEFAULT '',
    error_message  TEXT NOT NULL DEFAULT '',
    wx_request_id  TEXT NOT NULL DEFAULT '',
    sent_by        TEXT NOT NULL DEFAULT '',
    done_at        DATETIME,
    created_at     DATETIME NOT NULL,
    updated_at     DATETIME NOT NULL,
    UNIQUE (upload_id, batch_no)
);
CREATE INDEX upload_batches_pending ON upload_batches (upload_id, status, batch_no);
CREATE INDEX upload_batches_done ON upload_batches (upload_id, done_at);

-- Rows of a file that are not sent: invalid, duplicate in the file, or
-- already uploaded to the stock by the console.
CREATE TABLE upload_problems (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    upload_id BIGINT NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
    row_no    BIGINT NOT NULL,
    code      TEXT NOT NULL DEFAULT '',
    reason    TEXT NOT NULL,
    detail    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX upload_problems_row ON upload_problems (upload_id, row_no);

-- Codes the console has seen confirmed on WeChat Pay for a stock (uploaded,
-- or reported as already there), for the "already uploaded" check.
CREATE TABLE stock_codes (
    stock_ref  BIGINT NOT NULL REFERENCES stocks (id),
    code       TEXT NOT NULL,
    upload_id  BIGINT,
    created_at DATETIME NOT NULL,
    PRIMARY KEY (stock_ref, code)
);

-- Send rates shared by every console instance on the database: each request
-- reserves the next slot (next_at, Unix microseconds on the database clock).
CREATE TABLE rate_limits (
    name    TEXT PRIMARY KEY,
    next_at BIGINT NOT NULL DEFAULT 0
);

-- +goose Down
DROP TABLE rate_limits;
DROP TABLE stock_codes;
DROP TABLE upload_problems;
DROP TABLE upload_batches;
DROP TABLE uploads;
