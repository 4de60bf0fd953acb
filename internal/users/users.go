// Package users keeps the console's user accounts: adding them, checking
// sign-ins (with throttling that holds across instances), passwords and
// roles. Every change is audited in the same transaction.
package users

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/clock"
	"voucherconsole/internal/models"
)

// Sentinel errors; handlers map them to messages in the user's language.
var (
	ErrBadCredentials  = errors.New("wrong username or password")
	ErrThrottled       = errors.New("too many failed sign-ins")
	ErrUsernameTaken   = errors.New("username taken")
	ErrInvalidUsername = errors.New("invalid username")
	ErrWeakPassword    = errors.New("password too short")
	ErrNoRoles         = errors.New("at least one role is required")
	ErrNotFound        = errors.New("user not found")
	ErrSamePassword    = errors.New("new password equals the old one")
)

// MinPasswordLength is the shortest password accepted, in characters.
const MinPasswordLength = 10

var usernamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{1,31}$`)

// NormalizeUsername folds a typed username to its stored form.
func NormalizeUsername(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// Service manages users.
type Service struct {
	DB          *gorm.DB
	Now         clock.Func
	MaxFailures int // failed sign-ins of a username before it is locked
	// MaxClientFailures is failed sign-ins from one client address before
	// it is locked (0: 20).
	MaxClientFailures int
	Lockout           time.Duration
	// MaxHashes caps password hashes computed at once (0: 4).
	MaxHashes int

	hashes hashSlots
}

// ValidatePassword checks a new password's strength.
func ValidatePassword(p string) error {
	if utf8.RuneCountInString(p) < MinPasswordLength {
		return ErrWeakPassword
	}
	return nil
}

// Add creates a user with the given roles, audited as ac's action.
func (s *Service) Add(ctx context.Context, ac audit.Context, username, password string, roles []models.Role, mustChange bool) (*models.User, error) {
	username = NormalizeUsername(username)
	if !usernamePattern.MatchString(username) {
		return nil, ErrInvalidUsername
	}
	if err := ValidatePassword(password); err != nil {
		return nil, err
	}
	if len(roles) == 0 {
		return nil, ErrNoRoles
	}
	hash, err := s.hashPassword(ctx, password)
	if err != nil {
		return nil, err
	}
	u := &models.User{
		Username: username, PasswordHash: hash, MustChangePassword: mustChange, SessionVersion: 1,
	}
	for _, r := range dedupRoles(roles) {
		u.Roles = append(u.Roles, models.UserRole{Role: r})
	}
	err = s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(u).Error; err != nil {
			if errors.Is(err, gorm.ErrDuplicatedKey) {
				return ErrUsernameTaken
			}
			return err
		}
		rec := ac.Record(audit.ActionUserAdd, audit.Success, audit.TargetUser, fmt.Sprint(u.ID))
		rec.Detail = map[string]any{"username": username, "roles_after": roleNames(u.RoleList())}
		_, err := audit.Append(ctx, tx, s.Now.UTC(), rec)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("add user %s: %w", username, err)
	}
	return u, nil
}

func dedupRoles(roles []models.Role) []models.Role {
	out := slices.Clone(roles)
	slices.Sort(out)
	return slices.Compact(out)
}

func roleNames(rs []models.Role) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r)
	}
	return out
}

// Count returns how many users exist.
func (s *Service) Count(ctx context.Context) (int64, error) {
	var n int64
	err := s.DB.WithContext(ctx).Model(&models.User{}).Count(&n).Error
	return n, err
}

// ByID loads a user with roles.
//
// It is one query, user and roles together: every request of a signed-in
// user runs it.
func (s *Service) ByID(ctx context.Context, id int64) (*models.User, error) {
	agg := "group_concat(role, ',')"
	if s.DB.Dialector.Name() == "postgres" {
		agg = "string_agg(role, ',')"
	}
	var row struct {
		models.User
		RoleNames *string
	}
	res := s.DB.WithContext(ctx).Model(&models.User{}).
		Select("users.*, (SELECT "+agg+" FROM user_roles WHERE user_roles.user_id = users.id) AS role_names").
		Where("users.id = ?", id).Limit(1).Scan(&row)
	if res.Error != nil {
		return nil, res.Error
	}
	if res.RowsAffected == 0 {
		return nil, ErrNotFound
	}
	u := row.User
	u.Roles = nil
	if row.RoleNames != nil {
		for _, r := range strings.Split(*row.RoleNames, ",") {
			u.Roles = append(u.Roles, models.UserRole{UserID: u.ID, Role: models.Role(r)})
		}
	}
	return &u, nil
}

// dummyHash is checked against when the username is unknown, so a sign-in
// for an unknown user takes as long as one for a known user.
var dummyHash, _ = HashPassword("not-a-real-password")

// Authenticate checks a sign-in. The attempt is first counted against the
// username and the client address (ac.ClientIP) in the database — so the
// limits hold across instances and parallel guesses cannot all be checked —
// and refused if either is locked or at its limit; only then is the
// password hashed, in one of MaxHashes slots. After MaxFailures failed
// attempts for a username, or MaxClientFailures from an address, it is
// locked for Lockout (an admin can lift the lock). Every outcome is
// audited, except that a locked subject's refusals are audited once per
// lock.
func (s *Service) Authenticate(ctx context.Context, ac audit.Context, username, password string) (*models.User, error) {
	username = NormalizeUsername(username)
	if ValidateUsername(username) != nil {
		return nil, ErrBadCredentials // not a username: nothing to count or record
	}
	now := s.Now.UTC()
	db := s.DB.WithContext(ctx)
	ac.Actor = username
	ks := s.keys(username, ac.ClientIP)

	ref, err := s.reserve(ctx, ks, now)
	if err != nil {
		return nil, err
	}
	if ref != nil {
		if ref.audit {
			rec := ac.Record(audit.ActionSignInThrottled, audit.Denied, audit.TargetUser, username)
			rec.Detail = map[string]any{"locked": ref.key.scope}
			if ref.lockedUntil != nil {
				rec.Detail["locked_until"] = ref.lockedUntil.UTC().Format(time.RFC3339)
			}
			if _, err := audit.Append(ctx, db, now, rec); err != nil {
				return nil, err
			}
		}
		return nil, ref.err()
	}

	var u models.User
	err = db.Preload("Roles").Where("username = ?", username).Take(&u).Error
	found := err == nil
	if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, err
	}
	hash := dummyHash
	if found {
		hash = u.PasswordHash
	}
	ok, err := s.checkPassword(ctx, hash, password)
	if err != nil {
		// The reservation stays counted: a sign-in that could not be
		// checked is not a success.
		return nil, err
	}
	if !found || !ok || u.Disabled {
		reason := "bad_password"
		switch {
		case !found:
			reason = "unknown_user"
		case u.Disabled && ok:
			reason = "disabled"
		}
		err := db.Transaction(func(tx *gorm.DB) error {
			rec := ac.Record(audit.ActionSignInFailed, audit.Failure, audit.TargetUser, username)
			rec.Detail = map[string]any{"reason": reason}
			if found {
				rec.ActorID = &u.ID
			}
			if _, err := audit.Append(ctx, tx, now, rec); err != nil {
				return err
			}
			return s.failed(ctx, tx, ac, ks, now)
		})
		if err != nil {
			return nil, err
		}
		return nil, ErrBadCredentials
	}

	err = db.Transaction(func(tx *gorm.DB) error {
		if err := s.succeeded(tx, ks, now); err != nil {
			return err
		}
		ac.ActorID, ac.Roles = &u.ID, roleNames(u.RoleList())
		_, err := audit.Append(ctx, tx, now, ac.Record(audit.ActionSignIn, audit.Success, audit.TargetUser, fmt.Sprint(u.ID)))
		return err
	})
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// ChangePassword sets a user's own new password after checking the current
// one, clears the must-change flag and ends the user's other sessions.
func (s *Service) ChangePassword(ctx context.Context, ac audit.Context, id int64, current, next string) (*models.User, error) {
	u, err := s.ByID(ctx, id)
	if err != nil {
		return nil, err
	}
	ok, err := s.checkPassword(ctx, u.PasswordHash, current)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrBadCredentials
	}
	if err := ValidatePassword(next); err != nil {
		return nil, err
	}
	if next == current {
		return nil, ErrSamePassword
	}
	hash, err := s.hashPassword(ctx, next)
	if err != nil {
		return nil, err
	}
	err = s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		u.PasswordHash, u.MustChangePassword = hash, false
		u.SessionVersion++
		if err := tx.Model(u).Select("password_hash", "must_change_password", "session_version", "updated_at").Updates(u).Error; err != nil {
			return err
		}
		_, err := audit.Append(ctx, tx, s.Now.UTC(), ac.Record(audit.ActionPasswordChange, audit.Success, audit.TargetUser, fmt.Sprint(u.ID)))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("change password: %w", err)
	}
	return u, nil
}

// SetLocale stores a user's language choice ("" follows the browser).
func (s *Service) SetLocale(ctx context.Context, id int64, locale string) error {
	return s.DB.WithContext(ctx).Model(&models.User{}).Where("id = ?", id).Update("locale", locale).Error
}

// EnsureInitialAdmin creates the first admin with a one-time password when
// there are no users. It returns the password, or "" when users exist (or
// another instance created the admin at the same moment).
func (s *Service) EnsureInitialAdmin(ctx context.Context) (string, error) {
	n, err := s.Count(ctx)
	if err != nil || n > 0 {
		return "", err
	}
	pw := NewOneTimePassword()
	_, err = s.Add(ctx, audit.Context{Actor: "console"}, "admin", pw, []models.Role{models.RoleAdmin}, true)
	if errors.Is(err, ErrUsernameTaken) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return pw, nil
}
