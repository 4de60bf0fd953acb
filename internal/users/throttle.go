package users

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/models"
)

// More sentinel errors of sign-in.
var (
	// ErrClientThrottled: the client address had too many failed sign-ins.
	ErrClientThrottled = errors.New("too many failed sign-ins from this client")
	// ErrBusy: every password-hash slot stayed taken for too long.
	ErrBusy = errors.New("too many sign-ins at once")
)

// Defaults for settings left zero.
const (
	defaultMaxClientFailures = 20
	defaultMaxHashes         = 4
	// hashWait is how long a sign-in waits for a hash slot before giving up
	// with ErrBusy.
	hashWait = 10 * time.Second
)

// hashSlots caps the argon2id hashes computed at once (19 MiB each).
type hashSlots struct {
	once  sync.Once
	slots chan struct{}
}

func (s *Service) withHashSlot(ctx context.Context, fn func()) error {
	s.hashes.once.Do(func() {
		n := s.MaxHashes
		if n <= 0 {
			n = defaultMaxHashes
		}
		s.hashes.slots = make(chan struct{}, n)
	})
	wait, cancel := context.WithTimeout(ctx, hashWait)
	defer cancel()
	select {
	case s.hashes.slots <- struct{}{}:
	case <-wait.Done():
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return ErrBusy
	}
	defer func() { <-s.hashes.slots }()
	fn()
	return nil
}

// checkPassword is CheckPassword within a hash slot.
func (s *Service) checkPassword(ctx context.Context, hash, password string) (ok bool, err error) {
	if serr := s.withHashSlot(ctx, func() { ok, err = CheckPassword(hash, password) }); serr != nil {
		return false, serr
	}
	return ok, err
}

// hashPassword is HashPassword within a hash slot.
func (s *Service) hashPassword(ctx context.Context, password string) (hash string, err error) {
	if serr := s.withHashSlot(ctx, func() { hash, err = HashPassword(password) }); serr != nil {
		return "", serr
	}
	return hash, err
}

// throttleKey is one subject whose attempts a sign-in counts.
type throttleKey struct{ scope, subject string }

func (s *Service) limit(scope string) int {
	if scope == models.ThrottleClient {
		if s.MaxClientFailures > 0 {
			return s.MaxClientFailures
		}
		return defaultMaxClientFailures
	}
	return s.MaxFailures
}

func (s *Service) keys(username, clientIP string) []throttleKey {
	// Always in this order, so two sign-ins lock rows in the same order.
	var ks []throttleKey
	if clientIP != "" {
		ks = append(ks, throttleKey{models.ThrottleClient, clientIP})
	}
	return append(ks, throttleKey{models.ThrottleUsername, username})
}

// lockRow reads (creating it if need be) a throttle row, locked for the
// rest of tx on PostgreSQL; SQLite runs one transaction at a time.
func lockRow(tx *gorm.DB, k throttleKey, now time.Time) (*models.SignInThrottle, error) {
	if err := tx.Clauses(clause.OnConflict{DoNothing: true}).
		Create(&models.SignInThrottle{Scope: k.scope, Subject: k.subject, UpdatedAt: now}).Error; err != nil {
		return nil, err
	}
	q := tx.Where("scope = ? AND subject = ?", k.scope, k.subject)
	if tx.Dialector.Name() == "postgres" {
		q = q.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	var row models.SignInThrottle
	if err := q.Take(&row).Error; err != nil {
		return nil, err
	}
	return &row, nil
}

// refusal is a sign-in the throttle refused: which subject, until when, and
// whether this refusal is the one of its lock to audit.
type refusal struct {
	key         throttleKey
	lockedUntil *time.Time
	audit       bool
}

func (r *refusal) err() error {
	if r.key.scope == models.ThrottleClient {
		return ErrClientThrottled
	}
	return ErrThrottled
}

// reserve counts a sign-in attempt against every subject before its
// password is hashed, in one transaction: of parallel guesses only as many
// as the limit allows get as far as the hash. A subject that is locked, or
// whose attempts (failed or still running) reached its limit, refuses it.
// Attempts older than the lockout are forgotten.
func (s *Service) reserve(ctx context.Context, ks []throttleKey, now time.Time) (*refusal, error) {
	var ref *refusal
	err := s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		rows := make([]*models.SignInThrottle, len(ks))
		for i, k := range ks {
			row, err := lockRow(tx, k, now)
			if err != nil {
				return err
			}
			if row.LockedUntil != nil && !row.LockedUntil.After(now) || row.LockedUntil == nil && now.Sub(row.UpdatedAt) > s.Lockout {
				row.Attempts, row.LockedUntil, row.RefusalAudited = 0, nil, false // expired
			}
			if row.LockedUntil != nil || row.Attempts >= s.limit(k.scope) {
				ref = &refusal{key: k, lockedUntil: row.LockedUntil, audit: !row.RefusalAudited}
				if ref.audit {
					return tx.Model(row).Where("scope = ? AND subject = ?", k.scope, k.subject).
						Updates(map[string]any{"refusal_audited": true}).Error
				}
				return nil
			}
			rows[i] = row
		}
		for i, k := range ks {
			if err := tx.Model(&models.SignInThrottle{}).Where("scope = ? AND subject = ?", k.scope, k.subject).
				Updates(map[string]any{"attempts": rows[i].Attempts + 1, "locked_until": rows[i].LockedUntil,
					"refusal_audited": rows[i].RefusalAudited, "updated_at": now}).Error; err != nil {
				return err
			}
		}
		return nil
	})
	return ref, err
}

// failed settles a failed attempt: a subject whose attempts reached its
// limit is locked for Lockout, and the lock audited.
func (s *Service) failed(ctx context.Context, tx *gorm.DB, ac audit.Context, ks []throttleKey, now time.Time) error {
	for _, k := range ks {
		row, err := lockRow(tx, k, now)
		if err != nil {
			return err
		}
		if row.LockedUntil != nil || row.Attempts < s.limit(k.scope) {
			continue
		}
		until := now.Add(s.Lockout)
		if err := tx.Model(&models.SignInThrottle{}).Where("scope = ? AND subject = ?", k.scope, k.subject).
			Updates(map[string]any{"attempts": 0, "locked_until": until, "updated_at": now}).Error; err != nil {
			return err
		}
		rec := ac.Record(audit.ActionSignInLocked, audit.Denied, k.scope, k.subject)
		rec.Detail = map[string]any{"locked_until": until.UTC().Format(time.RFC3339), "attempts": row.Attempts}
		if _, err := audit.Append(ctx, tx, now, rec); err != nil {
			return err
		}
	}
	return nil
}

// succeeded settles a successful attempt: the username's count starts
// again, and the client's reservation is returned (a shared office address
// is not locked by its users signing in).
func (s *Service) succeeded(tx *gorm.DB, ks []throttleKey, now time.Time) error {
	for _, k := range ks {
		q := tx.Model(&models.SignInThrottle{}).Where("scope = ? AND subject = ?", k.scope, k.subject)
		var err error
		if k.scope == models.ThrottleUsername {
			err = tx.Where("scope = ? AND subject = ?", k.scope, k.subject).Delete(&models.SignInThrottle{}).Error
		} else {
			err = q.Where("attempts > 0").Updates(map[string]any{"attempts": gorm.Expr("attempts - 1"), "updated_at": now}).Error
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Locks lists the usernames and client addresses locked now, soonest
// unlocked last.
func (s *Service) Locks(ctx context.Context) ([]models.SignInThrottle, error) {
	var out []models.SignInThrottle
	err := s.DB.WithContext(ctx).Where("locked_until > ?", s.Now.UTC()).
		Order("locked_until DESC, scope, subject").Limit(500).Find(&out).Error
	return out, err
}

// Unlock lifts the lock on a username or client address (and forgets its
// attempts), audited as ac's action. It reports whether there was a lock.
func (s *Service) Unlock(ctx context.Context, ac audit.Context, scope, subject string) (bool, error) {
	if scope != models.ThrottleUsername && scope != models.ThrottleClient {
		return false, nil
	}
	var lifted bool
	err := s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Where("scope = ? AND subject = ? AND locked_until IS NOT NULL", scope, subject).Delete(&models.SignInThrottle{})
		if res.Error != nil || res.RowsAffected == 0 {
			return res.Error
		}
		lifted = true
		_, err := audit.Append(ctx, tx, s.Now.UTC(), ac.Record(audit.ActionSignInUnlock, audit.Success, scope, subject))
		return err
	})
	if err != nil {
		return false, fmt.Errorf("lift sign-in lock: %w", err)
	}
	return lifted, nil
}
