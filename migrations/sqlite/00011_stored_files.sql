-- +goose Up
-- Files kept in the database (an upload's original file), the same tables
-- as on PostgreSQL: a file row, then its content in numbered chunks of
-- chunk_size bytes (the last may be shorter). A file is complete once every
-- chunk is written; incomplete ones are left by a transfer that did not
-- finish and are swept.
CREATE TABLE stored_files (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    chunk_size INTEGER NOT NULL CHECK (chunk_size > 0),
    size       BIGINT NOT NULL DEFAULT 0,
    chunks     INTEGER NOT NULL DEFAULT 0,
    complete   BOOLEAN NOT NULL DEFAULT FALSE,
    created_at DATETIME NOT NULL
);
CREATE INDEX stored_files_incomplete ON stored_files (created_at) WHERE NOT complete;

CREATE TABLE stored_file_chunks (
    file_id BIGINT NOT NULL REFERENCES stored_files (id) ON DELETE CASCADE,
    seq     INTEGER NOT NULL,
    data    BLOB NOT NULL,
    PRIMARY KEY (file_id, seq)
);

-- +goose Down
DROP TABLE stored_file_chunks;
DROP TABLE stored_files;
