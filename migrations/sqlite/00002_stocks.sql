-- +goose Up
-- Stocks registered in or created by the console. kind: favor (代金券),
-- busifavor (商家券) or product_coupon (商品券). state is the console's
-- normalised state; wx_state the state as the stock's own API spells it.
CREATE TABLE stocks (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    kind                  TEXT NOT NULL CHECK (kind IN ('favor', 'busifavor', 'product_coupon')),
    stock_id              TEXT NOT NULL,
    product_coupon_id     TEXT NOT NULL DEFAULT '',
    name                  TEXT NOT NULL DEFAULT '',
    state                 TEXT NOT NULL DEFAULT '',
    wx_state              TEXT NOT NULL DEFAULT '',
    coupon_code_mode      TEXT NOT NULL DEFAULT '',
    total_count           INTEGER,
    available_count       INTEGER,
    sent_count            INTEGER,
    max_coupons           INTEGER,
    max_coupons_per_user  INTEGER,
    available_begin_time  TEXT NOT NULL DEFAULT '',
    available_end_time    TEXT NOT NULL DEFAULT '',
    wx_create_time        TEXT NOT NULL DEFAULT '',
    deactivate_time       TEXT NOT NULL DEFAULT '',
    deactivate_reason     TEXT NOT NULL DEFAULT '',
    deactivate_request_no TEXT NOT NULL DEFAULT '',
    raw                   TEXT NOT NULL DEFAULT '',
    demo                  BOOLEAN NOT NULL DEFAULT FALSE,
    created_by            INTEGER REFERENCES users (id),
    refreshed_at          DATETIME,
    created_at            DATETIME NOT NULL,
    updated_at            DATETIME NOT NULL,
    UNIQUE (kind, product_coupon_id, stock_id)
);
CREATE INDEX stocks_kind_state ON stocks (kind, state, id);
CREATE INDEX stocks_name ON stocks (name, id);
CREATE INDEX stocks_stock_id ON stocks (stock_id);
CREATE INDEX stocks_product_coupon_id ON stocks (product_coupon_id);

-- Stock bundles (批次组) of product-coupon stocks, for pre-send tokens.
CREATE TABLE stock_bundles (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    stock_ref         INTEGER NOT NULL REFERENCES stocks (id) ON DELETE CASCADE,
    product_coupon_id TEXT NOT NULL,
    stock_bundle_id   TEXT NOT NULL,
    UNIQUE (stock_ref, stock_bundle_id)
);
CREATE INDEX stock_bundles_bundle ON stock_bundles (product_coupon_id, stock_bundle_id);

-- Every WeChat Pay call that changes something: the intent (request number
-- and exact body) is recorded before the call and the outcome after, so a
-- crash in between leaves a pending operation that is resent unchanged.
CREATE TABLE wx_operations (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    kind             TEXT NOT NULL,
    request_no       TEXT NOT NULL,
    form_token       TEXT UNIQUE,
    user_id          INTEGER REFERENCES users (id),
    stock_ref        INTEGER REFERENCES stocks (id),
    target           TEXT NOT NULL DEFAULT '',
    body             TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    wx_status        INTEGER NOT NULL DEFAULT 0,
    wx_error_code    TEXT NOT NULL DEFAULT '',
    wx_error_message TEXT NOT NULL DEFAULT '',
    wx_request_id    TEXT NOT NULL DEFAULT '',
    result           TEXT NOT NULL DEFAULT '',
    created_at       DATETIME NOT NULL,
    updated_at       DATETIME NOT NULL,
    UNIQUE (kind, request_no)
);
CREATE INDEX wx_operations_pending ON wx_operations (status, id);

-- +goose Down
DROP TABLE wx_operations;
DROP TABLE stock_bundles;
DROP TABLE stocks;
