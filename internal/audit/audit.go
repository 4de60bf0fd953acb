// Package audit keeps the console's append-only, tamper-evident audit log.
//
// Every entry is written inside the caller's database transaction, so an
// action and its record commit or roll back together. Each entry carries a
// SHA-256 hash over its canonical content and its predecessor's hash; Verify
// walks the chain and names the first entry that does not fit. The database
// refuses UPDATE and DELETE on the table (triggers in the migrations).
package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
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
			clean[k] = v
		}
	}
	b, err := json.Marshal(clean)
	if err != nil {
		return "", fmt.Errorf("audit detail: %w", err)
	}
	return string(b), nil
}

// timeLayout fixes the textual form of occurred_at inside the hash; times are
// kept to the microsecond, the precision both databases store.
const timeLayout = "2006-01-02T15:04:05.000000Z"

// ComputeHash returns the hash of e's content chained to e.PrevHash.
func ComputeHash(e *Entry) string {
	actorID := ""
	if e.ActorID != nil {
		actorID = fmt.Sprint(*e.ActorID)
	}
	// A JSON array of strings is an unambiguous encoding: no field can run
	// into its neighbour whatever characters it holds.
	content, _ := json.Marshal([]string{
		fmt.Sprint(e.Seq),
		e.OccurredAt.UTC().Format(timeLayout),
		actorID, e.Actor, e.ActorRoles, e.Action, e.TargetType, e.TargetID,
		string(e.Outcome), e.WxRequestNo, e.WxErrorCode, e.WxRequestID,
		e.ClientIP, e.UserAgent, e.RequestID, e.Detail, e.PrevHash,
	})
	sum := sha256.Sum256(content)
	return hex.EncodeToString(sum[:])
}

// chainLockKey is the PostgreSQL advisory lock that serialises appends, so
// concurrent writers on several console instances still form one chain.
const chainLockKey = 74280011

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
		OccurredAt:  now.UTC().Truncate(time.Microsecond),
		ActorID:     rec.ActorID,
		Actor:       rec.Actor,
		ActorRoles:  strings.Join(rec.ActorRoles, ","),
		Action:      rec.Action,
		TargetType:  rec.TargetType,
		TargetID:    rec.TargetID,
		Outcome:     rec.Outcome,
		WxRequestNo: rec.WxRequestNo,
		WxErrorCode: rec.WxErrorCode,
		WxRequestID: rec.WxRequestID,
		ClientIP:    rec.ClientIP,
		UserAgent:   truncate(rec.UserAgent, 512),
		RequestID:   rec.RequestID,
		Detail:      detail,
	}
	write := func(tx *gorm.DB) error {
		if tx.Dialector.Name() == "postgres" {
			if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", chainLockKey).Error; err != nil {
				return err
			}
		}
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
	// Inside the caller's transaction the entry is written directly: a
	// savepoint would cost two more round trips, and a failed append fails
	// the caller's transaction anyway.
	if c, ok := db.Statement.ConnPool.(gorm.TxCommitter); ok && c != nil {
		err = write(db.WithContext(ctx))
	} else {
		err = db.WithContext(ctx).Transaction(write)
	}
	if err != nil {
		return nil, fmt.Errorf("audit append %s: %w", rec.Action, err)
	}
	return e, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary.
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
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
