-- +goose Up
-- Searching stocks by part of their name: a trigram index lets
-- name LIKE '%…%' use an index instead of reading every stock.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX stocks_name_trgm ON stocks USING gin (name gin_trgm_ops);

-- +goose Down
DROP INDEX stocks_name_trgm;
