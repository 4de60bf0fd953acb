-- +goose Up
-- An intent and its outcome share a WeChat Pay request number: the audit
-- page finds the other half of each operation it shows by this index.
CREATE INDEX audit_entries_wx_request_no ON audit_entries (wx_request_no);

-- +goose Down
DROP INDEX audit_entries_wx_request_no;
