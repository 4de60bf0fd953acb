-- +goose Up
-- Approvals (maker–checker). A request holds the exact WeChat Pay call that
-- approval will make: method, path and body, with its request number fixed
-- when the request is made. Approving sends it through wx_operations (form
-- token "approval-<id>"), so a retry or a second approver makes no second
-- call; operation_id links the request to that call.
CREATE TABLE approval_requests (
    id            BIGSERIAL PRIMARY KEY,
    kind          TEXT NOT NULL CHECK (kind IN ('deactivate', 'create', 'upload')),
    status        TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'expired', 'withdrawn', 'failed')),
    requested_by  BIGINT NOT NULL REFERENCES users (id),
    stock_ref     BIGINT REFERENCES stocks (id),
    request_no    TEXT NOT NULL UNIQUE,
    method        TEXT NOT NULL,
    path          TEXT NOT NULL,
    body          TEXT NOT NULL,
    form_token    TEXT UNIQUE,
    decided_by    BIGINT REFERENCES users (id),
    decided_at    TIMESTAMPTZ,
    reject_reason TEXT NOT NULL DEFAULT '',
    operation_id  BIGINT REFERENCES wx_operations (id),
    expires_at    TIMESTAMPTZ NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX approval_requests_status ON approval_requests (status, id);
CREATE INDEX approval_requests_requester ON approval_requests (requested_by, id);

-- The policy admins set on the page; without a row CONSOLE_APPROVALS holds.
CREATE TABLE approval_policy (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    policy     TEXT NOT NULL,
    updated_by BIGINT REFERENCES users (id),
    updated_at TIMESTAMPTZ NOT NULL
);

-- Who is told what about a request: the requester (user_id) or the
-- approvers (role).
CREATE TABLE approval_notices (
    id         BIGSERIAL PRIMARY KEY,
    request_id BIGINT NOT NULL REFERENCES approval_requests (id),
    user_id    BIGINT REFERENCES users (id),
    role       TEXT NOT NULL DEFAULT '',
    event      TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX approval_notices_request ON approval_notices (request_id, id);

-- +goose Down
DROP TABLE approval_notices;
DROP TABLE approval_policy;
DROP TABLE approval_requests;
