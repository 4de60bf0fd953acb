-- +goose Up
-- SQLite, the embedded database, scans names; it holds a single team's stocks.
SELECT 1;

-- +goose Down
SELECT 1;
