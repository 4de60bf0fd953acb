// Package models holds the console's database records as gorm models. The
// schema itself is defined by the SQL migrations; these structs mirror it.
package models

import (
	"slices"
	"time"
)

// Role is what a user may do; a user may hold several.
type Role string

const (
	RoleOperator Role = "operator" // marketing operators: stocks, uploads, deactivation, tokens
	RoleManager  Role = "manager"  // all an operator may, plus the audit log
	RoleSupport  Role = "support"  // read only: stocks, counts, uploads, history
	RoleAdmin    Role = "admin"    // users and roles, settings, connection health
)

// AllRoles lists every role in display order.
var AllRoles = []Role{RoleOperator, RoleManager, RoleSupport, RoleAdmin}

// ParseRole returns the role named s, or false.
func ParseRole(s string) (Role, bool) {
	r := Role(s)
	return r, slices.Contains(AllRoles, r)
}

// User is a person who signs in to the console.
type User struct {
	ID                 int64 `gorm:"primaryKey"`
	Username           string
	PasswordHash       string
	MustChangePassword bool
	Disabled           bool
	Locale             string // "" follows the browser
	// SessionVersion is copied into each session cookie; bumping it (password
	// reset, disable, role change) ends every existing session of the user.
	SessionVersion int64
	CreatedAt      time.Time
	UpdatedAt      time.Time
	Roles          []UserRole `gorm:"foreignKey:UserID"`
}

// UserRole is one role held by a user.
type UserRole struct {
	UserID int64 `gorm:"primaryKey"`
	Role   Role  `gorm:"primaryKey"`
}

// RoleList returns the user's roles in display order.
func (u *User) RoleList() []Role {
	var out []Role
	for _, r := range AllRoles {
		if u.HasRole(r) {
			out = append(out, r)
		}
	}
	return out
}

// HasRole reports whether the user holds r.
func (u *User) HasRole(r Role) bool {
	for _, ur := range u.Roles {
		if ur.Role == r {
			return true
		}
	}
	return false
}

// HasAnyRole reports whether the user holds at least one of rs.
func (u *User) HasAnyRole(rs ...Role) bool {
	return slices.ContainsFunc(rs, u.HasRole)
}

// Throttle scopes: what a sign-in throttle row counts attempts of.
const (
	ThrottleUsername = "username"
	ThrottleClient   = "client"
)

// SignInThrottle counts sign-in attempts of one username or one client
// address; when there were too many it is locked until LockedUntil.
type SignInThrottle struct {
	Scope          string `gorm:"primaryKey"`
	Subject        string `gorm:"primaryKey"`
	Attempts       int
	LockedUntil    *time.Time
	RefusalAudited bool // a refused attempt during this lock was audited already
	UpdatedAt      time.Time
}
