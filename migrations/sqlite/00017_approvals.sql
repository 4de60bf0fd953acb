-- +goose Up
-- Approvals (maker–checker). A request holds the exact WeChat Pay call that
-- approval will make: method, path and body, with its request number fixed
-- when the request is made. Approving sends it through wx_operations (form
-- token "approval-<id>"), so a retry or a second approver makes no second
-- call; operation_id links the request to that call.
CREATE TABLE approval_requests (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT NOT NULL CHECK (kind IN ('deactivate', 'create', 'upload')),
    status        TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'expired', 'withdrawn', 'failed')),
    requested_by  INTEGER NOT NULL REFERENCES users (id),
    stock_ref     INTEGER REFERENCES stocks (id),
    request_no    TEXT NOT NULL UNIQUE,
    method        TEXT NOT NULL,
    path          TEXT NOT NULL,
    body          TEXT NOT NULL,
    form_token    TEXT UNIQUE,
    decided_by    INTEGER REFERENCES users (id),
    decided_at    DATETIME,
    reject_reason TEXT NOT NULL DEFAULT '',
    operation_id  INTEGER REFERENCES wx_operations (id),
    expires_at    DATETIME NOT NULL,
    created_at    DATETIME NOT NULL,
    updated_at    DATETIME NOT NULL
);
CREATE INDEX approval_requests_status ON approval_requests (status, id);
CREATE INDEX approval_requests_requester ON approval_requests (requested_by, id);

-- The policy admins set on the page; without a row CONSOLE_APPROVALS holds.
CREATE TABLE approval_policy (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    policy     TEXT NOT NULL,
    updated_by INTEGER REFERENCES users (id),
    updated_at DATETIME NOT NULL
);

-- Who is told what about a request: the requester (user_id) or the
-- approvers (role).
CREATE TABLE approval_notices (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id INTEGER NOT NULL REFERENCES approval_requests (id),
    user_id    INTEGER REFERENCES users (id),
    role       TEXT NOT NULL DEFAULT '',
    event      TEXT NOT NULL,
    created_at DATETIME NOT NULL
);
CREATE INDEX approval_notices_request ON approval_notices (request_id, id);

-- +goose Down
DROP TABLE approval_notices;
DROP TABLE approval_policy;
DROP TABLE approval_requests;
