package users

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"gorm.io/gorm"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/models"
)

// ErrLastAdmin refuses a change that would leave no enabled admin: nobody
// could manage users any more.
var ErrLastAdmin = errors.New("the last enabled admin cannot be disabled or lose the admin role")

// adminLockKey is the PostgreSQL advisory lock that serialises user
// administration, so two admins disabling each other at the same moment
// cannot both pass the last-admin check. (SQLite has one writer anyway.)
const adminLockKey = 74280012

// ValidateUsername checks a typed username (after NormalizeUsername).
func ValidateUsername(username string) error {
	if !usernamePattern.MatchString(NormalizeUsername(username)) {
		return ErrInvalidUsername
	}
	return nil
}

// List returns every user with their roles, by username.
func (s *Service) List(ctx context.Context) ([]models.User, error) {
	var us []models.User
	if err := s.DB.WithContext(ctx).Preload("Roles").Order("username").Find(&us).Error; err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return us, nil
}

// AddWithOneTimePassword adds a user with a generated one-time password, which
// it returns (to be shown once) and which the user must change at first
// sign-in.
func (s *Service) AddWithOneTimePassword(ctx context.Context, ac audit.Context, username string, roles []models.Role) (*models.User, string, error) {
	pw := NewOneTimePassword()
	u, err := s.Add(ctx, ac, username, pw, roles, true)
	if err != nil {
		return nil, "", err
	}
	return u, pw, nil
}

// SetDisabled disables or enables a user. Disabling ends the user's sessions
// on their next request and is refused for the last enabled admin. It reports
// whether anything changed; an unchanged state is not audited.
func (s *Service) SetDisabled(ctx context.Context, ac audit.Context, id int64, disabled bool) (*models.User, bool, error) {
	action := audit.ActionUserEnable
	if disabled {
		action = audit.ActionUserDisable
	}
	return s.change(ctx, ac, id, action, func(tx *gorm.DB, u *models.User, detail map[string]any) (bool, error) {
		if u.Disabled == disabled {
			return false, nil
		}
		detail["disabled_before"], detail["disabled_after"] = u.Disabled, disabled
		u.Disabled = disabled
		cols := []string{"disabled", "updated_at"}
		if disabled {
			u.SessionVersion++
			cols = append(cols, "session_version")
		}
		return true, tx.Model(u).Select(cols).Updates(u).Error
	})
}

// ResetPassword gives a user a new one-time password, which it returns (to be
// shown once); the user must change it at next sign-in, and their existing
// sessions end on their next request.
func (s *Service) ResetPassword(ctx context.Context, ac audit.Context, id int64) (*models.User, string, error) {
	pw := NewOneTimePassword()
	hash, err := HashPassword(pw)
	if err != nil {
		return nil, "", err
	}
	u, _, err := s.change(ctx, ac, id, audit.ActionUserResetPassword, func(tx *gorm.DB, u *models.User, detail map[string]any) (bool, error) {
		u.PasswordHash, u.MustChangePassword = hash, true
		u.SessionVersion++
		detail["must_change"] = true // (a key naming a password would be dropped as a secret)
		return true, tx.Model(u).Select("password_hash", "must_change_password", "session_version", "updated_at").Updates(u).Error
	})
	if err != nil {
		return nil, "", err
	}
	// A reset also lifts a sign-in lock on the username: the admin has just
	// handed the user a password.
	if err := s.DB.WithContext(ctx).Where("scope = ? AND subject = ?", models.ThrottleUsername, u.Username).Delete(&models.SignInThrottle{}).Error; err != nil {
		return nil, "", err
	}
	return u, pw, nil
}

// SetRoles replaces a user's roles. At least one role is required, and the
// last enabled admin keeps the admin role. A change ends the user's sessions
// on their next request (they sign in again under the new roles). It reports
// whether anything changed; unchanged roles are not audited.
func (s *Service) SetRoles(ctx context.Context, ac audit.Context, id int64, roles []models.Role) (*models.User, bool, error) {
	if len(roles) == 0 {
		return nil, false, ErrNoRoles
	}
	roles = dedupRoles(roles)
	return s.change(ctx, ac, id, audit.ActionUserRoles, func(tx *gorm.DB, u *models.User, detail map[string]any) (bool, error) {
		before := dedupRoles(u.RoleList())
		if slices.Equal(before, roles) {
			return false, nil
		}
		if err := tx.Where("user_id = ?", u.ID).Delete(&models.UserRole{}).Error; err != nil {
			return false, err
		}
		u.Roles = u.Roles[:0]
		for _, r := range roles {
			u.Roles = append(u.Roles, models.UserRole{UserID: u.ID, Role: r})
		}
		if err := tx.Create(&u.Roles).Error; err != nil {
			return false, err
		}
		u.SessionVersion++
		return true, tx.Model(u).Select("session_version", "updated_at").Updates(u).Error
	})
}

// isEnabledAdmin reports whether u may manage users.
func isEnabledAdmin(u *models.User) bool { return !u.Disabled && u.HasRole(models.RoleAdmin) }

// change runs one administrative change of user id in a transaction: it
// loads the user, lets mutate change it (filling detail), refuses the change
// if it leaves no enabled admin, and audits it with the roles before and
// after — all or nothing. A change refused as the last admin's is audited as
// a failure.
func (s *Service) change(ctx context.Context, ac audit.Context, id int64, action string,
	mutate func(tx *gorm.DB, u *models.User, detail map[string]any) (bool, error),
) (*models.User, bool, error) {
	var (
		u       models.User
		changed bool
		detail  = map[string]any{}
	)
	err := s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if tx.Dialector.Name() == "postgres" {
			if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", adminLockKey).Error; err != nil {
				return err
			}
		}
		err := tx.Preload("Roles").Take(&u, id).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		wasAdmin := isEnabledAdmin(&u)
		detail["username"] = u.Username
		detail["roles_before"] = roleNames(u.RoleList())
		if changed, err = mutate(tx, &u, detail); err != nil || !changed {
			return err
		}
		detail["roles_after"] = roleNames(u.RoleList())
		if wasAdmin && !isEnabledAdmin(&u) {
			var others int64
			err := tx.Model(&models.User{}).
				Where("disabled = ? AND id <> ? AND id IN (?)", false, u.ID,
					tx.Model(&models.UserRole{}).Select("user_id").Where("role = ?", models.RoleAdmin)).
				Count(&others).Error
			if err != nil {
				return err
			}
			if others == 0 {
				return ErrLastAdmin
			}
		}
		rec := ac.Record(action, audit.Success, audit.TargetUser, fmt.Sprint(u.ID))
		rec.Detail = detail
		_, err = audit.Append(ctx, tx, s.Now.UTC(), rec)
		return err
	})
	if errors.Is(err, ErrLastAdmin) {
		rec := ac.Record(action, audit.Failure, audit.TargetUser, fmt.Sprint(id))
		detail["reason"] = "last_admin"
		detail["roles_requested"] = detail["roles_after"]
		detail["roles_after"] = detail["roles_before"] // nothing changed
		if v, ok := detail["disabled_after"]; ok {
			detail["disabled_requested"], detail["disabled_after"] = v, detail["disabled_before"]
		}
		rec.Detail = detail
		if _, aerr := audit.Append(ctx, s.DB, s.Now.UTC(), rec); aerr != nil {
			return nil, false, errors.Join(err, aerr)
		}
		return nil, false, err
	}
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, false, err
		}
		return nil, false, fmt.Errorf("%s user %d: %w", action, id, err)
	}
	return &u, changed, nil
}
