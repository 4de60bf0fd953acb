package twofactor_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/database"
	"voucherconsole/internal/models"
	"voucherconsole/internal/testdb"
	"voucherconsole/internal/twofactor"
	"voucherconsole/internal/users"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testdb.CleanupTemplate()
	os.Exit(code)
}

// fakeClock is the injected time source.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type env struct {
	svc   *twofactor.Service
	clock *fakeClock
	user  *models.User
	db    *database.DB
}

func setup(t *testing.T, db *database.DB) *env {
	t.Helper()
	clk := &fakeClock{now: time.Date(2026, 12, 7, 10, 0, 5, 0, time.UTC)}
	keys, err := twofactor.NewKeys([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	us := &users.Service{DB: db.Gorm, Now: clk.Now, MaxFailures: 5, Lockout: 15 * time.Minute}
	u, err := us.Add(context.Background(), audit.Context{Actor: "test"}, "olivia", "a-long-test-password", []models.Role{models.RoleOperator}, false)
	if err != nil {
		t.Fatal(err)
	}
	svc := &twofactor.Service{DB: db.Gorm, Keys: keys, Now: clk.Now, MaxFailures: 3, Lockout: 10 * time.Minute}
	return &env{svc: svc, clock: clk, user: u, db: db}
}

func code(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *env) enrol(t *testing.T) (secret string, recovery []string) {
	t.Helper()
	ctx := context.Background()
	en, err := e.svc.StartEnrolment(ctx, audit.Context{Actor: "olivia"}, e.user)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(en.URL, "otpauth://totp/") || !strings.Contains(en.URL, "secret="+en.Secret) {
		t.Fatalf("enrolment URL %q", en.URL)
	}
	again, err := e.svc.StartEnrolment(ctx, audit.Context{Actor: "olivia"}, e.user)
	if err != nil || again.Secret != en.Secret {
		t.Fatalf("a second visit changed the secret (%v)", err)
	}
	if _, err := e.svc.Confirm(ctx, audit.Context{}, e.user, "000000"); !errors.Is(err, twofactor.ErrBadCode) && code(t, en.Secret, e.clock.Now()) != "000000" {
		t.Fatalf("confirm with a wrong code: %v", err)
	}
	recovery, err = e.svc.Confirm(ctx, audit.Context{}, e.user, code(t, en.Secret, e.clock.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if len(recovery) != twofactor.RecoveryCodes {
		t.Fatalf("%d recovery codes", len(recovery))
	}
	return en.Secret, recovery
}

func TestEnrolAndVerify(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		e := setup(t, db)
		ctx := context.Background()
		secret, recovery := e.enrol(t)

		// The secret is stored sealed, not in clear, and not shown again.
		var sec twofactor.Secret
		db.Gorm.Take(&sec, "user_id = ?", e.user.ID)
		if strings.Contains(sec.SecretSealed, secret) || sec.ConfirmedAt == nil {
			t.Fatalf("stored secret row %+v", sec)
		}
		if _, err := e.svc.StartEnrolment(ctx, audit.Context{}, e.user); !errors.Is(err, twofactor.ErrAlreadyEnrolled) {
			t.Fatalf("enrolment page after confirming: %v", err)
		}
		if _, err := e.svc.QRCode(ctx, e.user); !errors.Is(err, twofactor.ErrAlreadyEnrolled) {
			t.Fatalf("QR code after confirming: %v", err)
		}
		var hashes []twofactor.RecoveryCode
		db.Gorm.Where("user_id = ?", e.user.ID).Find(&hashes)
		for _, h := range hashes {
			for _, c := range recovery {
				if strings.Contains(h.CodeHash, twofactor.NormalizeCode(c)) {
					t.Fatal("a recovery code is stored in clear")
				}
			}
		}

		// The code used to confirm cannot sign in (same time step).
		if _, err := e.svc.Verify(ctx, audit.Context{}, e.user, code(t, secret, e.clock.Now())); !errors.Is(err, twofactor.ErrBadCode) {
			t.Fatalf("the confirming code replayed at sign-in: %v", err)
		}
		e.clock.Advance(30 * time.Second)
		now := code(t, secret, e.clock.Now())
		for _, tc := range []struct {
			name, code string
			want       error
		}{
			{"valid code", now, nil},
			{"the same code again (replay)", now, twofactor.ErrBadCode},
			{"the previous step's code", code(t, secret, e.clock.Now().Add(-30*time.Second)), twofactor.ErrBadCode},
		} {
			if _, err := e.svc.Verify(ctx, audit.Context{}, e.user, tc.code); !errors.Is(err, tc.want) {
				t.Fatalf("%s: %v, want %v", tc.name, err, tc.want)
			}
		}
		// The next step's code is accepted within the allowed drift.
		e.clock.Advance(30 * time.Second)
		if _, err := e.svc.Verify(ctx, audit.Context{}, e.user, code(t, secret, e.clock.Now().Add(30*time.Second))); err != nil {
			t.Fatalf("code one step ahead (clock drift): %v", err)
		}
		// A recovery code works once, typed in capitals with spaces.
		rc := strings.ToUpper(strings.ReplaceAll(recovery[3], "-", " "))
		if used, err := e.svc.Verify(ctx, audit.Context{}, e.user, rc); err != nil || !used {
			t.Fatalf("recovery code: %v %v", used, err)
		}
		if _, err := e.svc.Verify(ctx, audit.Context{}, e.user, recovery[3]); !errors.Is(err, twofactor.ErrBadCode) {
			t.Fatalf("recovery code used twice: %v", err)
		}
		st, err := e.svc.StatusOf(ctx, e.user)
		if err != nil || !st.Enrolled || st.RecoveryLeft != twofactor.RecoveryCodes-1 {
			t.Fatalf("status %+v %v", st, err)
		}
		var failed int64
		db.Gorm.Model(&audit.Entry{}).Where("action = ?", twofactor.ActionVerifyFailed).Count(&failed)
		var replayed int64
		db.Gorm.Model(&audit.Entry{}).Where("action = ? AND detail LIKE ?", twofactor.ActionVerifyFailed, "%replayed%").Count(&replayed)
		if failed != 4 || replayed != 3 {
			t.Fatalf("failed codes audited %d times (%d replays), want 4 (3)", failed, replayed)
		}
	})
}

// Wrong codes lock the second step like wrong passwords lock the sign-in:
// after MaxFailures in a row even the right code is refused until Lockout
// has passed.
func TestVerifyThrottled(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		e := setup(t, db)
		ctx := context.Background()
		secret, _ := e.enrol(t)
		e.clock.Advance(time.Minute)
		for i := range 3 {
			if _, err := e.svc.Verify(ctx, audit.Context{}, e.user, "12345x"); !errors.Is(err, twofactor.ErrBadCode) {
				t.Fatalf("wrong code %d: %v", i, err)
			}
		}
		if _, err := e.svc.Verify(ctx, audit.Context{}, e.user, code(t, secret, e.clock.Now())); !errors.Is(err, twofactor.ErrThrottled) {
			t.Fatalf("right code while locked: %v", err)
		}
		e.clock.Advance(11 * time.Minute)
		if _, err := e.svc.Verify(ctx, audit.Context{}, e.user, code(t, secret, e.clock.Now())); err != nil {
			t.Fatalf("right code after the lockout: %v", err)
		}
	})
}

// Two sign-ins racing with one code: one wins.
func TestReplayRace(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		e := setup(t, db)
		secret, _ := e.enrol(t)
		e.clock.Advance(time.Minute)
		c := code(t, secret, e.clock.Now())
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for range 4 {
			wg.Go(func() {
				_, err := e.svc.Verify(context.Background(), audit.Context{}, e.user, c)
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					wins++
				}
			})
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("%d sign-ins accepted one code", wins)
		}
	})
}

// Required roles: a user of such a role must enrol; an admin's reset
// removes the factor and ends the user's sessions.
func TestRequiredRolesAndReset(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		e := setup(t, db)
		ctx := context.Background()
		if must, err := e.svc.MustEnroll(ctx, e.user); err != nil || must {
			t.Fatalf("must enrol with no required roles: %v %v", must, err)
		}
		if err := e.svc.SetRequiredRoles(ctx, audit.Context{Actor: "admin"}, []models.Role{models.RoleOperator}); err != nil {
			t.Fatal(err)
		}
		if must, err := e.svc.MustEnroll(ctx, e.user); err != nil || !must {
			t.Fatalf("must enrol for a required role: %v %v", must, err)
		}
		e.enrol(t)
		if must, _ := e.svc.MustEnroll(ctx, e.user); must {
			t.Fatal("must enrol after enrolling")
		}
		if err := e.svc.Reset(ctx, audit.Context{Actor: "admin"}, e.user.ID); err != nil {
			t.Fatal(err)
		}
		var u models.User
		db.Gorm.Take(&u, e.user.ID)
		if u.SessionVersion != e.user.SessionVersion+1 {
			t.Fatal("reset did not end the user's sessions")
		}
		if must, _ := e.svc.MustEnroll(ctx, e.user); !must {
			t.Fatal("after a reset the user need not enrol again")
		}
		if err := e.svc.Reset(ctx, audit.Context{}, e.user.ID); !errors.Is(err, twofactor.ErrNotEnrolled) {
			t.Fatalf("second reset: %v", err)
		}
		for _, a := range []string{twofactor.ActionRequiredRoles, twofactor.ActionReset, twofactor.ActionEnrol, twofactor.ActionEnrolStart} {
			var n int64
			db.Gorm.Model(&audit.Entry{}).Where("action = ?", a).Count(&n)
			if n != 1 {
				t.Errorf("%s audited %d times", a, n)
			}
		}
	})
}

// A sealed secret opens only with its key and for its user.
func TestSealedSecretNeedsKey(t *testing.T) {
	db := testdb.SQLite(t)
	e := setup(t, db)
	e.enrol(t)
	other, _ := twofactor.NewKeys([]byte(strings.Repeat("x", 32)))
	svc := *e.svc
	svc.Keys = other
	e.clock.Advance(time.Minute)
	if _, err := svc.Verify(context.Background(), audit.Context{}, e.user, "123456"); err == nil || errors.Is(err, twofactor.ErrBadCode) {
		t.Fatalf("verify with another key: %v", err)
	}
}
