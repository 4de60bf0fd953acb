-- +goose Up
-- Pre-send tokens (document 004) the console obtained or is obtaining. The
-- call itself is a wx_operations row (kind presend_coupon_bundle); this row
-- holds what the operation's body cannot: the user. OpenIDs are personal
-- data, so only a keyed hash (HMAC-SHA256) and a masked form are kept; while
-- the call is pending the OpenID is also kept sealed (AES-GCM, key derived
-- from the session secret) so that a restart can resend the request, and the
-- sealed value is wiped when the outcome is recorded.
CREATE TABLE presend_tokens (
    id                BIGSERIAL PRIMARY KEY,
    operation_id      BIGINT NOT NULL UNIQUE REFERENCES wx_operations (id),
    send_request_no   TEXT NOT NULL UNIQUE,
    stock_ref         BIGINT REFERENCES stocks (id),
    product_coupon_id TEXT NOT NULL,
    stock_bundle_id   TEXT NOT NULL,
    appid             TEXT NOT NULL,
    openid_hash       TEXT NOT NULL,
    openid_masked     TEXT NOT NULL,
    openid_sealed     TEXT NOT NULL DEFAULT '',
    attach            TEXT NOT NULL DEFAULT '',
    status            TEXT NOT NULL CHECK (status IN ('pending', 'issued', 'failed')),
    token             TEXT NOT NULL DEFAULT '',
    expires_at        TIMESTAMPTZ,
    wx_status         INTEGER NOT NULL DEFAULT 0,
    wx_error_code     TEXT NOT NULL DEFAULT '',
    wx_error_message  TEXT NOT NULL DEFAULT '',
    wx_request_id     TEXT NOT NULL DEFAULT '',
    created_by        BIGINT REFERENCES users (id),
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    -- A sealed OpenID is kept only while the outcome is unknown.
    CHECK (status = 'pending' OR openid_sealed = '')
);
CREATE INDEX presend_tokens_bundle ON presend_tokens (product_coupon_id, stock_bundle_id, id);
CREATE INDEX presend_tokens_openid ON presend_tokens (openid_hash, id);
CREATE INDEX presend_tokens_status ON presend_tokens (status, id);

-- +goose Down
DROP TABLE presend_tokens;
