package users_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/database"
	"voucherconsole/internal/models"
	"voucherconsole/internal/testdb"
	"voucherconsole/internal/users"
)

// lastEntry returns the newest audit entry and its decoded detail.
func lastEntry(t *testing.T, db *database.DB) (audit.Entry, map[string]any) {
	t.Helper()
	var e audit.Entry
	if err := db.Gorm.Order("seq DESC").Take(&e).Error; err != nil {
		t.Fatal(err)
	}
	d := map[string]any{}
	if e.Detail != "" {
		if err := json.Unmarshal([]byte(e.Detail), &d); err != nil {
			t.Fatal(err)
		}
	}
	return e, d
}

func names(v any) string { return fmt.Sprint(v) }

func countEntries(t *testing.T, db *database.DB) int64 {
	t.Helper()
	var n int64
	db.Gorm.Model(&audit.Entry{}).Count(&n)
	return n
}

func TestAdminOperations(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		svc := &users.Service{DB: db.Gorm, MaxFailures: 5, Lockout: time.Minute}
		adminID := int64(0)
		ac := audit.Context{ActorID: &adminID, Actor: "root", Roles: []string{"admin"}}
		root, err := svc.Add(ctx, audit.Context{Actor: "test"}, "root", "a-good-password", []models.Role{models.RoleAdmin}, false)
		if err != nil {
			t.Fatal(err)
		}
		adminID = root.ID

		// Add: a one-time password the user must change.
		u, pw, err := svc.AddWithOneTimePassword(ctx, ac, "olivia", []models.Role{models.RoleOperator})
		if err != nil || len(pw) != 16 || !u.MustChangePassword {
			t.Fatalf("add: %+v %q %v", u, pw, err)
		}
		if _, err := svc.Authenticate(ctx, audit.Context{}, "olivia", pw); err != nil {
			t.Fatalf("sign-in with the one-time password: %v", err)
		}

		steps := []struct {
			name           string
			run            func() (*models.User, bool, error)
			action         string
			before, after  string
			check          func(u *models.User) error
			sessionBumped  bool
			wantUnchanged  bool
			extraDetailKey string
		}{
			{
				name: "change roles",
				run: func() (*models.User, bool, error) {
					return svc.SetRoles(ctx, ac, u.ID, []models.Role{models.RoleManager, models.RoleOperator})
				},
				action: audit.ActionUserRoles, before: "[operator]", after: "[operator manager]", sessionBumped: true,
				check: func(got *models.User) error {
					if !got.HasRole(models.RoleManager) || !got.HasRole(models.RoleOperator) || len(got.Roles) != 2 {
						return fmt.Errorf("roles %v", got.RoleList())
					}
					return nil
				},
			},
			{
				name: "same roles again is no change",
				run: func() (*models.User, bool, error) {
					return svc.SetRoles(ctx, ac, u.ID, []models.Role{models.RoleOperator, models.RoleManager})
				},
				wantUnchanged: true,
			},
			{
				name:   "disable",
				run:    func() (*models.User, bool, error) { return svc.SetDisabled(ctx, ac, u.ID, true) },
				action: audit.ActionUserDisable, before: "[operator manager]", after: "[operator manager]", sessionBumped: true,
				extraDetailKey: "disabled_after",
				check: func(got *models.User) error {
					if !got.Disabled {
						return errors.New("not disabled")
					}
					if _, err := svc.Authenticate(ctx, audit.Context{}, "olivia", pw); !errors.Is(err, users.ErrBadCredentials) {
						return fmt.Errorf("a disabled user signed in: %v", err)
					}
					return nil
				},
			},
			{
				name:          "disable again is no change",
				run:           func() (*models.User, bool, error) { return svc.SetDisabled(ctx, ac, u.ID, true) },
				wantUnchanged: true,
			},
			{
				name:   "enable",
				run:    func() (*models.User, bool, error) { return svc.SetDisabled(ctx, ac, u.ID, false) },
				action: audit.ActionUserEnable, before: "[operator manager]", after: "[operator manager]",
				check: func(got *models.User) error {
					if got.Disabled {
						return errors.New("still disabled")
					}
					return nil
				},
			},
			{
				name: "reset password",
				run: func() (*models.User, bool, error) {
					got, newPW, err := svc.ResetPassword(ctx, ac, u.ID)
					if err == nil {
						if newPW == pw || len(newPW) != 16 {
							return nil, false, fmt.Errorf("new one-time password %q", newPW)
						}
						if _, err := svc.Authenticate(ctx, audit.Context{}, "olivia", pw); !errors.Is(err, users.ErrBadCredentials) {
							return nil, false, fmt.Errorf("old password still works: %v", err)
						}
						signed, err := svc.Authenticate(ctx, audit.Context{}, "olivia", newPW)
						if err != nil || !signed.MustChangePassword {
							return nil, false, fmt.Errorf("sign-in with the reset password: %+v %v", signed, err)
						}
					}
					return got, true, err
				},
				action: audit.ActionUserResetPassword, before: "[operator manager]", after: "[operator manager]", sessionBumped: true,
				check: func(got *models.User) error {
					if !got.MustChangePassword {
						return errors.New("must-change flag not set")
					}
					return nil
				},
			},
		}
		for _, st := range steps {
			prev, err := svc.ByID(ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			entriesBefore := countEntries(t, db)
			got, changed, err := st.run()
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			if st.wantUnchanged {
				if changed || countEntries(t, db) != entriesBefore {
					t.Fatalf("%s: changed %v, audit entries %d → %d", st.name, changed, entriesBefore, countEntries(t, db))
				}
				continue
			}
			if !changed {
				t.Fatalf("%s: reported no change", st.name)
			}
			stored, err := svc.ByID(ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.check(stored); err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			if bumped := stored.SessionVersion > prev.SessionVersion; bumped != st.sessionBumped {
				t.Fatalf("%s: session version %d → %d", st.name, prev.SessionVersion, stored.SessionVersion)
			}
			if got.ID != u.ID {
				t.Fatalf("%s: returned user %d", st.name, got.ID)
			}
			// The change's own entry (sign-ins inside a step come after it).
			var e audit.Entry
			if err := db.Gorm.Where("action = ? AND seq > ?", st.action, entriesBefore).Take(&e).Error; err != nil {
				t.Fatalf("%s: no %s entry: %v", st.name, st.action, err)
			}
			d := map[string]any{}
			_ = json.Unmarshal([]byte(e.Detail), &d)
			if e.Outcome != audit.Success || e.Actor != "root" || e.TargetType != audit.TargetUser || e.TargetID != fmt.Sprint(u.ID) ||
				names(d["roles_before"]) != st.before || names(d["roles_after"]) != st.after || d["username"] != "olivia" {
				t.Fatalf("%s: audit entry %+v detail %v", st.name, e, d)
			}
			if st.extraDetailKey != "" && d[st.extraDetailKey] == nil {
				t.Fatalf("%s: detail lacks %s: %v", st.name, st.extraDetailKey, d)
			}
		}

		if _, _, err := svc.SetRoles(ctx, ac, u.ID, nil); !errors.Is(err, users.ErrNoRoles) {
			t.Fatalf("no roles: %v", err)
		}
		if _, _, err := svc.SetDisabled(ctx, ac, 99999, true); !errors.Is(err, users.ErrNotFound) {
			t.Fatalf("unknown user: %v", err)
		}
		list, err := svc.List(ctx)
		if err != nil || len(list) != 2 || list[0].Username != "olivia" || list[1].Username != "root" || len(list[0].Roles) != 2 {
			t.Fatalf("list: %+v %v", list, err)
		}
	})
}

func TestLastAdminGuard(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		svc := &users.Service{DB: db.Gorm, MaxFailures: 5, Lockout: time.Minute}
		ac := audit.Context{Actor: "test"}
		add := func(name string, rs ...models.Role) *models.User {
			u, err := svc.Add(ctx, ac, name, "a-good-password", rs, false)
			if err != nil {
				t.Fatal(err)
			}
			return u
		}
		a1 := add("ada", models.RoleAdmin)
		a2 := add("bob", models.RoleAdmin, models.RoleManager)
		add("cy", models.RoleOperator)

		// With two admins, one may go.
		if _, _, err := svc.SetDisabled(ctx, ac, a2.ID, true); err != nil {
			t.Fatal(err)
		}
		refusals := []struct {
			name string
			run  func() error
		}{
			{"disable the last admin", func() error { _, _, err := svc.SetDisabled(ctx, ac, a1.ID, true); return err }},
			{"remove the last admin's role", func() error {
				_, _, err := svc.SetRoles(ctx, ac, a1.ID, []models.Role{models.RoleManager})
				return err
			}},
		}
		for _, r := range refusals {
			if err := r.run(); !errors.Is(err, users.ErrLastAdmin) {
				t.Fatalf("%s: %v, want ErrLastAdmin", r.name, err)
			}
			e, d := lastEntry(t, db)
			if e.Outcome != audit.Failure || d["reason"] != "last_admin" || names(d["roles_after"]) != "[admin]" {
				t.Fatalf("%s: refusal audited as %+v %v", r.name, e, d)
			}
			u, _ := svc.ByID(ctx, a1.ID)
			if u.Disabled || !u.HasRole(models.RoleAdmin) {
				t.Fatalf("%s: the change happened anyway: %+v", r.name, u)
			}
		}
		// A disabled admin does not count; enabling bob again lets ada go.
		if _, _, err := svc.SetDisabled(ctx, ac, a2.ID, false); err != nil {
			t.Fatal(err)
		}
		if _, _, err := svc.SetRoles(ctx, ac, a1.ID, []models.Role{models.RoleManager}); err != nil {
			t.Fatalf("remove admin with another admin left: %v", err)
		}
		if _, _, err := svc.SetDisabled(ctx, ac, a2.ID, true); !errors.Is(err, users.ErrLastAdmin) {
			t.Fatalf("bob is now the last admin: %v", err)
		}
	})
}

// Two admins disabling each other at the same moment: one succeeds, the
// other is refused; an enabled admin always remains.
func TestLastAdminGuardConcurrent(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		svc := &users.Service{DB: db.Gorm, MaxFailures: 5, Lockout: time.Minute}
		var ids []int64
		for _, n := range []string{"ada", "bob"} {
			u, err := svc.Add(ctx, audit.Context{}, n, "a-good-password", []models.Role{models.RoleAdmin}, false)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, u.ID)
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, id := range ids {
			wg.Go(func() { _, _, errs[i] = svc.SetDisabled(ctx, audit.Context{}, id, true) })
		}
		wg.Wait()
		refused := slices.IndexFunc(errs, func(err error) bool { return errors.Is(err, users.ErrLastAdmin) })
		if refused < 0 || errs[1-refused] != nil {
			t.Fatalf("results %v: want one success and one refusal", errs)
		}
		list, _ := svc.List(ctx)
		enabled := 0
		for _, u := range list {
			if !u.Disabled {
				enabled++
			}
		}
		if enabled != 1 {
			t.Fatalf("%d enabled admins remain", enabled)
		}
	})
}
