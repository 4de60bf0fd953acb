-- +goose Up
-- WeChat Pay platform certificates (平台证书) of the accounts verified by
-- certificates, shared by every console instance: one instance downloads
-- them, all use them. Certificates are public; private keys and APIv3 keys
-- are never stored. account is "merchant:ID", "service_provider:ID" or
-- "brand:ID"; times are Unix seconds.
CREATE TABLE wxpay_platform_certs (
    account      TEXT NOT NULL,
    serial_no    TEXT NOT NULL,
    certificate  TEXT NOT NULL, -- PEM
    fingerprint  TEXT NOT NULL, -- SHA-256 of the DER certificate
    not_before   BIGINT NOT NULL,
    not_after    BIGINT NOT NULL,
    fetched_at   BIGINT NOT NULL,
    PRIMARY KEY (account, serial_no)
);

-- The refresh schedule: the instance whose UPDATE moves next_at past now
-- downloads; the others read what it stored.
CREATE TABLE wxpay_cert_refresh (
    account    TEXT PRIMARY KEY,
    next_at    BIGINT NOT NULL,
    claimed_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE wxpay_cert_refresh;
DROP TABLE wxpay_platform_certs;
