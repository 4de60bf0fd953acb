-- +goose Up
-- Hash scheme 2 lets PostgreSQL append an entry in one statement: the
-- console hashes the entry's content, and the database chains that hash to
-- its predecessor while it takes the next sequence number from the chain
-- head. Entries written before keep scheme 1 and verify as before.
ALTER TABLE audit_entries ADD COLUMN hash_scheme SMALLINT NOT NULL DEFAULT 1
    CHECK (hash_scheme IN (1, 2));

-- The chain head: the last entry's sequence number and hash, one row. Its
-- row lock serialises appends, across console instances too.
CREATE TABLE audit_head (
    id        SMALLINT PRIMARY KEY CHECK (id = 1),
    seq       BIGINT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, prev_hash, hash)
SELECT 1, COALESCE(last.seq, 0),
       COALESCE(last.prev_hash, repeat('0', 64)), COALESCE(last.hash, repeat('0', 64))
  FROM (SELECT 1) AS one
  LEFT JOIN (SELECT seq, prev_hash, hash FROM audit_entries ORDER BY seq DESC LIMIT 1) AS last ON true;

-- +goose Down
DROP TABLE audit_head;
ALTER TABLE audit_entries DROP COLUMN hash_scheme;
