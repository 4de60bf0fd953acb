-- +goose Up
-- Reviewing the audit log (/audit). Pages are read newest first by
-- (occurred_at, seq) with keyset pagination, and every equality filter has an
-- index that continues with (occurred_at, seq): a page — the newest, one
-- deep in the log, or one inside a time range far back, filtered or not — is
-- one index range walked from its cursor. These replace the foundation's
-- (actor, seq) and (action, seq); (target_type, target_id, seq) stays for a
-- stock's own history. The free-text search (any part of a target ID or a
-- WeChat Pay request number, in any case) uses trigram indexes; pg_trgm is a
-- trusted extension, so the database owner may create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
DROP INDEX audit_entries_actor;
DROP INDEX audit_entries_action;
CREATE INDEX audit_entries_actor_time ON audit_entries (actor, occurred_at, seq);
CREATE INDEX audit_entries_action_time ON audit_entries (action, occurred_at, seq);
CREATE INDEX audit_entries_actor_action_time ON audit_entries (actor, action, occurred_at, seq);
CREATE INDEX audit_entries_target_time ON audit_entries (target_type, target_id, occurred_at, seq);
CREATE INDEX audit_entries_outcome_time ON audit_entries (outcome, occurred_at, seq);
CREATE INDEX audit_entries_target_id_trgm ON audit_entries USING gin (target_id gin_trgm_ops);
CREATE INDEX audit_entries_wx_request_no_trgm ON audit_entries USING gin (wx_request_no gin_trgm_ops);

-- +goose Down
DROP INDEX audit_entries_wx_request_no_trgm;
DROP INDEX audit_entries_target_id_trgm;
DROP INDEX audit_entries_outcome_time;
DROP INDEX audit_entries_target_time;
DROP INDEX audit_entries_actor_action_time;
DROP INDEX audit_entries_action_time;
DROP INDEX audit_entries_actor_time;
CREATE INDEX audit_entries_action ON audit_entries (action, seq);
CREATE INDEX audit_entries_actor ON audit_entries (actor, seq);
