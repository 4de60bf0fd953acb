// Package sessions keeps the console's sign-in sessions on the server, in
// the database: the browser's cookie carries only a random token, stored
// here as its SHA-256. A session is therefore valid on every instance
// sharing the database, ends for good when revoked (sign-out, the user
// ending it from their account page, a password change), and ends when
// idle for IdleTimeout or older than Lifetime, however active.
package sessions

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"time"

	"gorm.io/gorm"

	"voucherconsole/internal/clock"
	"voucherconsole/internal/textcheck"
)

// ErrNotFound is a token that names no live session: unknown, revoked,
// idle too long or past its lifetime.
var ErrNotFound = errors.New("no such session")

// Defaults when the settings leave them zero.
const (
	DefaultIdleTimeout = time.Hour
	DefaultLifetime    = 12 * time.Hour
)

// touchEvery is how stale last_seen_at may get before a request writes it:
// a write per request would be a write per page view.
const touchEvery = time.Minute

// Session is one row of the sessions table.
type Session struct {
	ID             int64 `gorm:"primaryKey"`
	TokenHash      string
	UserID         int64
	SessionVersion int64
	CreatedAt      time.Time
	LastSeenAt     time.Time
	ExpiresAt      time.Time // absolute end: created_at + Lifetime
	RevokedAt      *time.Time
	ClientIP       string
	UserAgent      string
}

// TableName is the sessions table.
func (Session) TableName() string { return "sessions" }

// Store reads and writes sessions.
type Store struct {
	DB          *gorm.DB
	Now         clock.Func
	IdleTimeout time.Duration
	Lifetime    time.Duration
}

func (s *Store) idle() time.Duration {
	if s.IdleTimeout > 0 {
		return s.IdleTimeout
	}
	return DefaultIdleTimeout
}

func (s *Store) lifetime() time.Duration {
	if s.Lifetime > 0 {
		return s.Lifetime
	}
	return DefaultLifetime
}

// MaxAge is how long a cookie for a new session should live.
func (s *Store) MaxAge() time.Duration { return s.lifetime() }

// HashToken is the stored form of a cookie's token.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func newToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Create starts a session for a user and returns the token for its cookie.
// db may be a transaction (the sign-in's). Sessions long dead are swept
// now and then on the way.
func (s *Store) Create(ctx context.Context, db *gorm.DB, userID, version int64, clientIP, userAgent string) (string, *Session, error) {
	if db == nil {
		db = s.DB
	}
	now := s.Now.UTC().Truncate(time.Microsecond)
	token := newToken()
	sess := &Session{
		TokenHash: HashToken(token), UserID: userID, SessionVersion: version,
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(s.lifetime()),
		ClientIP:  textcheck.Clip(textcheck.Clean(clientIP), 64),
		UserAgent: textcheck.Clip(textcheck.Clean(userAgent), 512),
	}
	if err := db.WithContext(ctx).Create(sess).Error; err != nil {
		return "", nil, err
	}
	// Rows a week past their end are of no use to anyone; one indexed
	// delete per sign-in keeps the table small.
	if err := db.WithContext(ctx).Where("expires_at < ?", now.Add(-7*24*time.Hour)).Delete(&Session{}).Error; err != nil {
		return "", nil, err
	}
	return token, sess, nil
}

// Lookup returns the live session a cookie's token names, noting that it
// was used.
func (s *Store) Lookup(ctx context.Context, token string) (*Session, error) {
	if token == "" || len(token) > 128 {
		return nil, ErrNotFound
	}
	now := s.Now.UTC()
	var sess Session
	err := s.DB.WithContext(ctx).Where("token_hash = ?", HashToken(token)).Take(&sess).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if !s.live(&sess, now) {
		return nil, ErrNotFound
	}
	if now.Sub(sess.LastSeenAt) >= touchEvery {
		sess.LastSeenAt = now.Truncate(time.Microsecond)
		if err := s.DB.WithContext(ctx).Model(&Session{}).Where("id = ? AND revoked_at IS NULL", sess.ID).
			Update("last_seen_at", sess.LastSeenAt).Error; err != nil {
			return nil, err
		}
	}
	return &sess, nil
}

func (s *Store) live(sess *Session, now time.Time) bool {
	return sess.RevokedAt == nil && now.Before(sess.ExpiresAt) && now.Sub(sess.LastSeenAt) < s.idle()
}

// Revoke ends a session for good.
func (s *Store) Revoke(ctx context.Context, id int64) error {
	return s.DB.WithContext(ctx).Model(&Session{}).Where("id = ? AND revoked_at IS NULL", id).
		Update("revoked_at", s.Now.UTC().Truncate(time.Microsecond)).Error
}

// RevokeOwn ends one of a user's sessions; it reports whether there was a
// live one with that ID belonging to the user.
func (s *Store) RevokeOwn(ctx context.Context, userID, id int64) (bool, error) {
	res := s.DB.WithContext(ctx).Model(&Session{}).Where("id = ? AND user_id = ? AND revoked_at IS NULL", id, userID).
		Update("revoked_at", s.Now.UTC().Truncate(time.Microsecond))
	return res.RowsAffected > 0, res.Error
}

// RevokeOthers ends every session of a user but keep (0: all of them) and
// returns how many it ended.
func (s *Store) RevokeOthers(ctx context.Context, db *gorm.DB, userID, keep int64) (int64, error) {
	if db == nil {
		db = s.DB
	}
	res := db.WithContext(ctx).Model(&Session{}).Where("user_id = ? AND id <> ? AND revoked_at IS NULL", userID, keep).
		Update("revoked_at", s.Now.UTC().Truncate(time.Microsecond))
	return res.RowsAffected, res.Error
}

// SetVersion moves a session to a user's new session version: the user
// changed their own password or roles and goes on in this session.
func (s *Store) SetVersion(ctx context.Context, id, version int64) error {
	return s.DB.WithContext(ctx).Model(&Session{}).Where("id = ?", id).Update("session_version", version).Error
}

// Active lists a user's live sessions, most recently used first.
func (s *Store) Active(ctx context.Context, userID int64) ([]Session, error) {
	now := s.Now.UTC()
	var rows []Session
	err := s.DB.WithContext(ctx).Where("user_id = ? AND revoked_at IS NULL AND expires_at > ? AND last_seen_at > ?",
		userID, now, now.Add(-s.idle())).Order("last_seen_at DESC, id DESC").Limit(100).Find(&rows).Error
	return rows, err
}
