package users_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/database"
	"voucherconsole/internal/models"
	"voucherconsole/internal/testdb"
	"voucherconsole/internal/users"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testdb.CleanupTemplate()
	os.Exit(code)
}

func TestPasswordHash(t *testing.T) {
	h, err := users.HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		pw   string
		want bool
	}{{"correct horse", true}, {"correct hors", false}, {"", false}} {
		if ok, err := users.CheckPassword(h, tc.pw); err != nil || ok != tc.want {
			t.Errorf("CheckPassword(%q) = %v, %v; want %v", tc.pw, ok, err, tc.want)
		}
	}
	if _, err := users.CheckPassword("$2a$10$bcrypt", "x"); err == nil {
		t.Error("a foreign hash format was accepted")
	}
}

func TestAuthenticateAndThrottle(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		svc := &users.Service{DB: db.Gorm, Now: func() time.Time { return now }, MaxFailures: 5, Lockout: 15 * time.Minute}
		if _, err := svc.Add(ctx, audit.Context{Actor: "test"}, "Alice", "a-good-password", []models.Role{models.RoleOperator}, false); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Add(ctx, audit.Context{}, "alice", "another-password", []models.Role{models.RoleSupport}, false); !errors.Is(err, users.ErrUsernameTaken) {
			t.Fatalf("duplicate username: %v", err)
		}
		u, err := svc.Authenticate(ctx, audit.Context{}, " alice ", "a-good-password")
		if err != nil || u.Username != "alice" || !u.HasRole(models.RoleOperator) {
			t.Fatalf("sign-in: %+v %v", u, err)
		}
		for i := range 5 {
			if _, err := svc.Authenticate(ctx, audit.Context{}, "alice", "wrong"); !errors.Is(err, users.ErrBadCredentials) {
				t.Fatalf("attempt %d: %v", i+1, err)
			}
		}
		if _, err := svc.Authenticate(ctx, audit.Context{}, "alice", "a-good-password"); !errors.Is(err, users.ErrThrottled) {
			t.Fatalf("6th attempt with the right password: %v, want throttled", err)
		}
		now = now.Add(16 * time.Minute)
		if _, err := svc.Authenticate(ctx, audit.Context{}, "alice", "a-good-password"); err != nil {
			t.Fatalf("after the lockout: %v", err)
		}
		var actions []string
		db.Gorm.Model(&audit.Entry{}).Order("seq").Pluck("action", &actions)
		want := []string{audit.ActionUserAdd, audit.ActionSignIn}
		for range 5 {
			want = append(want, audit.ActionSignInFailed)
		}
		want = append(want, audit.ActionSignInLocked, audit.ActionSignInThrottled, audit.ActionSignIn)
		if len(actions) != len(want) {
			t.Fatalf("audit actions %v, want %v", actions, want)
		}
		for i := range want {
			if actions[i] != want[i] {
				t.Fatalf("audit actions %v, want %v", actions, want)
			}
		}
	})
}

func TestInitialAdmin(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		svc := &users.Service{DB: db.Gorm, MaxFailures: 5, Lockout: time.Minute}
		pw, err := svc.EnsureInitialAdmin(ctx)
		if err != nil || len(pw) != 16 {
			t.Fatalf("first start: %q %v", pw, err)
		}
		if again, err := svc.EnsureInitialAdmin(ctx); err != nil || again != "" {
			t.Fatalf("second start printed a password again: %q %v", again, err)
		}
		u, err := svc.Authenticate(ctx, audit.Context{}, "admin", pw)
		if err != nil || !u.MustChangePassword || !u.HasRole(models.RoleAdmin) {
			t.Fatalf("admin: %+v %v", u, err)
		}
	})
}

// ByID, which every signed-in request runs, loads the user with all roles
// in one query, and tells an unknown user apart.
func TestByID(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		svc := &users.Service{DB: db.Gorm, MaxFailures: 5, Lockout: time.Minute}
		added, err := svc.Add(ctx, audit.Context{}, "mia", "a-long-password-1", []models.Role{models.RoleManager, models.RoleOperator}, false)
		if err != nil {
			t.Fatal(err)
		}
		u, err := svc.ByID(ctx, added.ID)
		if err != nil {
			t.Fatal(err)
		}
		if u.Username != "mia" || !u.HasRole(models.RoleManager) || !u.HasRole(models.RoleOperator) || u.HasRole(models.RoleAdmin) || len(u.Roles) != 2 {
			t.Fatalf("loaded %+v", u)
		}
		if _, err := svc.ByID(ctx, added.ID+100); !errors.Is(err, users.ErrNotFound) {
			t.Fatalf("unknown user: %v", err)
		}
	})
}
