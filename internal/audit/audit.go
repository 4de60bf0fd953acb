// Package audit keeps the console's append-only, tamper-evident audit log.
//
// Every entry is written inside the caller's database transaction, so an
// action and its record commit or roll back together. Each entry carries a
// SHA-256 hash over its canonical content, its sequence number and its
// predecessor's hash; Verify walks the chain and names the first entry that
// does not fit. The database refuses UPDATE and DELETE on the table
// (triggers in the migrations).
package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"

	"voucherconsole/internal/textcheck"
)

// Outcome of an audited action.
type Outcome string

const (
	Success Outcome = "success"
	Failure Outcome = "failure"
	Denied  Outcome = "denied"
	Pending Outcome = "pending" // intent recorded before a remote call
)

// Actions audited by the console. The names are stable: they are stored and
// filtered on.
const (
	ActionSignIn          = "auth.sign_in"
	ActionSignInFailed    = "auth.sign_in_failed"
	ActionSignInThrottled = "auth.sign_in_throttled"
	ActionSignOut         = "auth.sign_out"
	ActionSignInLocked    = "auth.sign_in_locked" // too many failed sign-ins: a username or client address locked
	ActionSignInUnlock    = "auth.sign_in_unlock" // an admin lifted a lock
	ActionSessionEnd      = "auth.session_end"    // a user ended one or more of their other sessions
	ActionPasswordChange  = "auth.password_change"
	ActionAccessDenied    = "access.denied"
	ActionUserAdd         = "user.add"
	ActionUserUpdate      = "user.update"
	ActionAuditExport     = "audit.export"

	ActionUserDisable       = "user.disable"
	ActionUserEnable        = "user.enable"
	ActionUserResetPassword = "user.reset_password"
	ActionUserRoles         = "user.roles"
)

// Target types.
const (
	TargetUser   = "user"
	TargetStock  = "stock"
	TargetUpload = "upload"
	TargetRoute  = "route"
)

// GenesisHash is the predecessor hash of the first entry.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// Entry is one row of the audit log.
type Entry struct {
	Seq         int64 `gorm:"primaryKey;autoIncrement:false"`
	HashScheme  int   `gorm:"default:1"` // SchemeContent for entries Append writes
	OccurredAt  time.Time
	ActorID     *int64
	Actor       string
	ActorRoles  string
	Action      string
	TargetType  string
	TargetID    string
	Outcome     Outcome
	WxRequestNo string
	WxErrorCode string
	WxRequestID string
	ClientIP    string
	UserAgent   string
	RequestID   string
	Detail      string // canonical JSON object, or ""
	PrevHash    string
	Hash        string
}

// TableName is the audit table.
func (Entry) TableName() string { return "audit_entries" }

// Record is what a caller says about an action; Append turns it into an Entry.
type Record struct {
	ActorID     *int64
	Actor       string
	ActorRoles  []string
	Action      string
	TargetType  string
	TargetID    string
	Outcome     Outcome
	WxRequestNo string
	WxErrorCode string
	WxRequestID string
	ClientIP    string
	UserAgent   string
	RequestID   string
	Detail      map[string]any
}

// secretKeys are detail keys that must never be stored, whatever a caller
// passes: the log is read by managers and exported.
var secretKeys = []string{"password", "secret", "private_key", "session_key"}

// canonicalDetail renders detail as JSON with sorted keys (encoding/json sorts
// map keys), dropping secrets.
func canonicalDetail(detail map[string]any) (string, error) {
	if len(detail) == 0 {
		return "", nil
	}
	clean := make(map[string]any, len(detail))
	for k, v := range detail {
		lk := strings.ToLower(k)
		secret := false
		for _, s := range secretKeys {
			if strings.Contains(lk, s) {
				secret = true
				break
			}
		}
		if !secret {
			clean[field(k, MaxShort)] = clipDetail(v)
		}
	}
	b, err := json.Marshal(clean)
	if err != nil {
		return "", fmt.Errorf("audit detail: %w", err)
	}
	if len(b) > MaxDetail {
		// Too much even after clipping each value: say so rather than
		// cut the JSON in two.
		b, _ = json.Marshal(map[string]any{"detail_truncated": true, "detail_bytes": len(b)})
	}
	return string(b), nil
}

// timeLayout fixes the textual form of occurred_at inside the hash; times are
// kept to the microsecond, the precision both databases store.
const timeLayout = "2006-01-02T15:04:05.000000Z"

// Hash schemes. An entry records the scheme it was hashed with, so entries
// written before a change of scheme still verify.
const (
	// SchemeWhole hashes every field, the sequence number and the previous
	// hash together.
	SchemeWhole = 1
	// SchemeContent hashes the content fields on their own and then chains
	// that hash: sha256(prev_hash ":" seq ":" content_hash), all in hex. The
	// chaining step is simple enough for PostgreSQL to compute while it
	// takes the next sequence number, so an append is one statement there.
	SchemeContent = 2
)

// ComputeHash returns the hash of e chained to e.PrevHash, by e's scheme.
func ComputeHash(e *Entry) string {
	if e.HashScheme == SchemeContent {
		return chainHash(e.PrevHash, e.Seq, contentHash(e))
	}
	return wholeHash(e)
}

// fields are an entry's content as strings, in a fixed order.
func fields(e *Entry) []string {
	actorID := ""
	if e.ActorID != nil {
		actorID = strconv.FormatInt(*e.ActorID, 10)
	}
	return []string{
		e.OccurredAt.UTC().Format(timeLayout),
		actorID, e.Actor, e.ActorRoles, e.Action, e.TargetType, e.TargetID,
		string(e.Outcome), e.WxRequestNo, e.WxErrorCode, e.WxRequestID,
		e.ClientIP, e.UserAgent, e.RequestID, e.Detail,
	}
}

// A JSON array of strings is an unambiguous encoding: no field can run into
// its neighbour whatever characters it holds. The bytes hashed are exactly
// json.Marshal's; appendJSONStrings produces them without reflection, as a
// verification of millions of entries spends most of its time here.
func hashStrings(s []string) string {
	buf := appendJSONStrings(make([]byte, 0, 512), s)
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:])
}

// appendJSONStrings appends json.Marshal(s) to buf. A string made only of
// characters json.Marshal writes as they are is copied; any other string
// (a quote, a backslash, a control character, <, > or &, U+2028, U+2029,
// invalid UTF-8) is left to json.Marshal itself, so the rules of escaping
// live in one place.
func appendJSONStrings(buf []byte, s []string) []byte {
	buf = append(buf, '[')
	for i, f := range s {
		if i > 0 {
			buf = append(buf, ',')
		}
		if plainJSON(f) {
			buf = append(buf, '"')
			buf = append(buf, f...)
			buf = append(buf, '"')
			continue
		}
		q, _ := json.Marshal(f)
		buf = append(buf, q...)
	}
	return append(buf, ']')
}

// plainJSON reports whether json.Marshal writes s between quotes unchanged.
func plainJSON(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			return false
		}
		i += size
	}
	return true
}

// wholeHash is scheme 1.
func wholeHash(e *Entry) string {
	f := fields(e)
	all := make([]string, 0, len(f)+2)
	all = append(all, fmt.Sprint(e.Seq))
	all = append(all, f...)
	return hashStrings(append(all, e.PrevHash))
}

// contentHash is scheme 2's hash of the content fields.
func contentHash(e *Entry) string { return hashStrings(fields(e)) }

// chainHash is scheme 2's chaining step; appendPostgres computes the same
// in SQL. Every part is ASCII, so the text is the same bytes in both.
func chainHash(prevHash string, seq int64, content string) string {
	sum := sha256.Sum256([]byte(prevHash + ":" + strconv.FormatInt(seq, 10) + ":" + content))
	return hex.EncodeToString(sum[:])
}

// Append writes one entry inside db's transaction (or a transaction of its
// own when db is not in one). now is the entry's time.
func Append(ctx context.Context, db *gorm.DB, now time.Time, rec Record) (*Entry, error) {
	if rec.Action == "" || rec.Outcome == "" {
		return nil, errors.New("audit: action and outcome are required")
	}
	detail, err := canonicalDetail(rec.Detail)
	if err != nil {
		return nil, err
	}
	e := &Entry{
		HashScheme:  SchemeContent,
		OccurredAt:  now.UTC().Truncate(time.Microsecond),
		ActorID:     rec.ActorID,
		Actor:       field(rec.Actor, MaxActor),
		ActorRoles:  field(strings.Join(rec.ActorRoles, ","), MaxShort),
		Action:      field(rec.Action, MaxShort),
		TargetType:  field(rec.TargetType, MaxShort),
		TargetID:    field(rec.TargetID, MaxTargetID),
		Outcome:     Outcome(field(string(rec.Outcome), MaxShort)),
		WxRequestNo: field(rec.WxRequestNo, MaxShort),
		WxErrorCode: field(rec.WxErrorCode, MaxShort),
		WxRequestID: field(rec.WxRequestID, MaxShort),
		ClientIP:    field(rec.ClientIP, MaxShort),
		UserAgent:   field(rec.UserAgent, MaxUserAgent),
		RequestID:   field(rec.RequestID, MaxShort),
		Detail:      detail,
	}
	write := appendSQLite
	if db.Dialector.Name() == "postgres" {
		write = appendPostgres
	}
	// Inside the caller's transaction the entry is written directly: a
	// savepoint would cost two more round trips, and a failed append fails
	// the caller's transaction anyway.
	if c, ok := db.Statement.ConnPool.(gorm.TxCommitter); ok && c != nil {
		err = write(db.WithContext(ctx), e)
	} else {
		err = db.WithContext(ctx).Transaction(func(tx *gorm.DB) error { return write(tx, e) })
	}
	if err != nil {
		return nil, fmt.Errorf("audit append %s: %w", rec.Action, err)
	}
	return e, nil
}

// appendSQLite reads the last entry and writes the next. SQLite has one
// writer at a time, so nothing can come between the two.
func appendSQLite(tx *gorm.DB, e *Entry) error {
	var last Entry
	err := tx.Select("seq", "hash").Order("seq DESC").Limit(1).Take(&last).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		e.Seq, e.PrevHash = 1, GenesisHash
	case err != nil:
		return err
	default:
		e.Seq, e.PrevHash = last.Seq+1, last.Hash
	}
	e.Hash = ComputeHash(e)
	return tx.Create(e).Error
}

// appendSQL takes the next sequence number from the chain head, chains the
// content hash to the head's hash (chainHash, in SQL), moves the head and
// inserts the entry: one statement, one round trip. The head's row lock
// serialises concurrent appends, on every console instance, until the
// transaction ends; a waiting append then sees the head as the other left it.
const appendSQL = `WITH head AS (
    UPDATE audit_head
       SET seq = seq + 1, prev_hash = hash,
           hash = encode(sha256(convert_to(hash || ':' || (seq + 1)::text || ':' || ?::text, 'UTF8')), 'hex')
     WHERE id = 1
 RETURNING seq, prev_hash, hash)
INSERT INTO audit_entries (seq, hash_scheme, occurred_at, actor_id, actor, actor_roles, action, target_type, target_id,
    outcome, wx_request_no, wx_error_code, wx_request_id, client_ip, user_agent, request_id, detail, prev_hash, hash)
SELECT seq, 2, ?::timestamptz, ?::bigint, ?::text, ?::text, ?::text,
    ?::text, ?::text, ?::text, ?::text, ?::text,
    ?::text, ?::text, ?::text, ?::text, ?::text, prev_hash, hash
  FROM head
RETURNING seq, prev_hash, hash`

func appendPostgres(tx *gorm.DB, e *Entry) error {
	content := contentHash(e)
	var row struct {
		Seq      int64
		PrevHash string
		Hash     string
	}
	// The arguments in the order appendSQL names them.
	res := tx.Raw(appendSQL, content, e.OccurredAt, e.ActorID, e.Actor, e.ActorRoles, e.Action, e.TargetType, e.TargetID,
		string(e.Outcome), e.WxRequestNo, e.WxErrorCode, e.WxRequestID, e.ClientIP, e.UserAgent, e.RequestID, e.Detail).
		Scan(&row)
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected != 1 {
		return errors.New("the audit chain head is missing")
	}
	e.Seq, e.PrevHash, e.Hash = row.Seq, row.PrevHash, row.Hash
	// The database chained the entry; the console must agree, or Verify
	// would later call a sound entry altered.
	if want := chainHash(e.PrevHash, e.Seq, content); e.Hash != want {
		return fmt.Errorf("entry %d: the database chained hash %s, expected %s", e.Seq, e.Hash, want)
	}
	return nil
}

// SyncHead points PostgreSQL's chain head at the last entry. Only entries
// written other than by Append (a bulk load, a restore of the table alone)
// need it; Append keeps the head itself.
func SyncHead(ctx context.Context, db *gorm.DB) error {
	if db.Dialector.Name() != "postgres" {
		return nil
	}
	return db.WithContext(ctx).Exec(`UPDATE audit_head SET seq = last.seq, prev_hash = last.prev_hash, hash = last.hash
  FROM (SELECT seq, prev_hash, hash FROM audit_entries ORDER BY seq DESC LIMIT 1) AS last
 WHERE audit_head.id = 1`).Error
}

// Bounds of the free-text fields of an entry, in bytes. The log is
// append-only: whatever a caller passes (an anonymous sign-in's username, a
// header) is clipped here, in one place, so no request can write an
// unbounded row that can never be removed.
const (
	MaxActor     = 128
	MaxTargetID  = 256
	MaxUserAgent = 512
	MaxShort     = 128 // action, target type, outcome, roles, WeChat Pay IDs, client IP, request ID
	MaxDetailStr = 1024
	MaxDetail    = 8192 // the whole detail JSON
)

// field makes a free-text value storable: valid UTF-8 without NUL or other
// control characters (PostgreSQL refuses NUL in text), at most max bytes.
func field(s string, max int) string { return textcheck.Clip(textcheck.Clean(s), max) }

// clipDetail bounds every string inside a detail value.
func clipDetail(v any) any {
	switch v := v.(type) {
	case string:
		return field(v, MaxDetailStr)
	case []string:
		out := make([]string, len(v))
		for i, s := range v {
			out[i] = field(s, MaxDetailStr)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = clipDetail(x)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[field(k, MaxShort)] = clipDetail(x)
		}
		return out
	}
	return v
}

// Context is who acts and from where; handlers build it once per request and
// domain code stamps it on every entry it writes.
type Context struct {
	ActorID   *int64
	Actor     string
	Roles     []string
	ClientIP  string
	UserAgent string
	RequestID string
}

// Record starts a record of an action by this actor.
func (c Context) Record(action string, outcome Outcome, targetType, targetID string) Record {
	return Record{
		ActorID: c.ActorID, Actor: c.Actor, ActorRoles: c.Roles,
		Action: action, Outcome: outcome, TargetType: targetType, TargetID: targetID,
		ClientIP: c.ClientIP, UserAgent: c.UserAgent, RequestID: c.RequestID,
	}
}

// truncate cuts s to at most n bytes on a character boundary.
func truncate(s string, n int) string { return textcheck.Clip(s, n) }
