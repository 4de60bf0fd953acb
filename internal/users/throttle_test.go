package users_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/database"
	"voucherconsole/internal/models"
	"voucherconsole/internal/testdb"
	"voucherconsole/internal/users"
)

func throttleService(db *database.DB, now *time.Time) *users.Service {
	return &users.Service{DB: db.Gorm, Now: func() time.Time { return *now }, MaxFailures: 5, MaxClientFailures: 8,
		Lockout: 15 * time.Minute, MaxHashes: 4}
}

func countAction(t *testing.T, db *database.DB, action string) int64 {
	t.Helper()
	var n int64
	if err := db.Gorm.Model(&audit.Entry{}).Where("action = ?", action).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// Parallel guesses for one username: each attempt is counted before its
// password is hashed, so no more than the limit are ever checked; the rest
// are refused as throttled. (Reading the lock before the slow hash let all
// of them through.)
func TestParallelGuessesAreCountedBeforeTheHash(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		svc := throttleService(db, &now)
		if _, err := svc.Add(ctx, audit.Context{}, "alice", "a-good-password", []models.Role{models.RoleOperator}, false); err != nil {
			t.Fatal(err)
		}
		const guesses = 20
		var wg sync.WaitGroup
		errs := make([]error, guesses)
		for i := range guesses {
			wg.Go(func() {
				ac := audit.Context{ClientIP: fmt.Sprintf("10.0.0.%d", i)} // spread out: the username's limit is under test
				_, errs[i] = svc.Authenticate(ctx, ac, "alice", fmt.Sprintf("guess-%d", i))
			})
		}
		wg.Wait()
		var bad, throttled int
		for _, err := range errs {
			switch {
			case errors.Is(err, users.ErrBadCredentials):
				bad++
			case errors.Is(err, users.ErrThrottled):
				throttled++
			default:
				t.Fatalf("unexpected outcome: %v", err)
			}
		}
		if bad != 5 || throttled != guesses-5 {
			t.Fatalf("%d passwords checked and %d throttled, want 5 and %d", bad, throttled, guesses-5)
		}
		if n := countAction(t, db, audit.ActionSignInFailed); n != 5 {
			t.Fatalf("%d failed sign-ins audited, want 5", n)
		}
		// The username is locked now, even with the right password, and a
		// locked username's refusals are audited once, not once each.
		if _, err := svc.Authenticate(ctx, audit.Context{ClientIP: "10.9.9.9"}, "alice", "a-good-password"); !errors.Is(err, users.ErrThrottled) {
			t.Fatalf("right password while locked: %v", err)
		}
		if n := countAction(t, db, audit.ActionSignInThrottled); n != 1 {
			t.Fatalf("throttled sign-ins audited %d times, want once", n)
		}
		if n := countAction(t, db, audit.ActionSignInLocked); n != 1 {
			t.Fatalf("lock audited %d times, want once", n)
		}
	})
}

// One client address guessing many usernames is locked after
// MaxClientFailures, whichever usernames; other addresses are not.
func TestClientAddressIsLimited(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		svc := throttleService(db, &now)
		if _, err := svc.Add(ctx, audit.Context{}, "bob", "a-good-password", []models.Role{models.RoleOperator}, false); err != nil {
			t.Fatal(err)
		}
		attacker := audit.Context{ClientIP: "203.0.113.7"}
		for i := range 8 {
			if _, err := svc.Authenticate(ctx, attacker, fmt.Sprintf("user%d", i), "wrong-password"); !errors.Is(err, users.ErrBadCredentials) {
				t.Fatalf("guess %d: %v", i, err)
			}
		}
		if _, err := svc.Authenticate(ctx, attacker, "bob", "a-good-password"); !errors.Is(err, users.ErrClientThrottled) {
			t.Fatalf("from the locked address: %v, want client throttled", err)
		}
		if _, err := svc.Authenticate(ctx, audit.Context{ClientIP: "198.51.100.1"}, "bob", "a-good-password"); err != nil {
			t.Fatalf("from another address: %v", err)
		}
		// Successful sign-ins from a shared address do not add up to a lock.
		office := audit.Context{ClientIP: "192.0.2.1"}
		for i := range 12 {
			if _, err := svc.Authenticate(ctx, office, "bob", "a-good-password"); err != nil {
				t.Fatalf("sign-in %d from a shared address: %v", i, err)
			}
		}
		now = now.Add(16 * time.Minute)
		if _, err := svc.Authenticate(ctx, attacker, "bob", "a-good-password"); err != nil {
			t.Fatalf("after the lockout: %v", err)
		}
	})
}

// An admin sees a lock and lifts it (audited); the user then signs in.
func TestAdminLiftsALock(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		svc := throttleService(db, &now)
		if _, err := svc.Add(ctx, audit.Context{}, "carol", "a-good-password", []models.Role{models.RoleAdmin}, false); err != nil {
			t.Fatal(err)
		}
		for range 5 {
			_, _ = svc.Authenticate(ctx, audit.Context{ClientIP: "203.0.113.9"}, "carol", "wrong-password")
		}
		locks, err := svc.Locks(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(locks) != 1 || locks[0].Scope != models.ThrottleUsername || locks[0].Subject != "carol" || locks[0].LockedUntil == nil {
			t.Fatalf("locks: %+v", locks)
		}
		lifted, err := svc.Unlock(ctx, audit.Context{Actor: "root"}, models.ThrottleUsername, "carol")
		if err != nil || !lifted {
			t.Fatalf("unlock: %v %v", lifted, err)
		}
		if again, _ := svc.Unlock(ctx, audit.Context{Actor: "root"}, models.ThrottleUsername, "carol"); again {
			t.Fatal("a second unlock lifted something")
		}
		if countAction(t, db, audit.ActionSignInUnlock) != 1 {
			t.Fatal("lifting the lock was not audited once")
		}
		if _, err := svc.Authenticate(ctx, audit.Context{ClientIP: "192.0.2.5"}, "carol", "a-good-password"); err != nil {
			t.Fatalf("after the lock was lifted: %v", err)
		}
	})
}

// Password hashes run in at most MaxHashes slots: with every slot taken, a
// sign-in waits and gives up with its request instead of hashing; once a
// slot frees, it goes through.
func TestHashesAreCapped(t *testing.T) {
	db := testdb.SQLite(t)
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	svc := throttleService(db, &now)
	svc.MaxHashes = 2
	if _, err := svc.Add(ctx, audit.Context{}, "dan", "a-good-password", []models.Role{models.RoleOperator}, false); err != nil {
		t.Fatal(err)
	}
	release := users.HoldHashSlots(svc, 2)
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err := svc.Authenticate(short, audit.Context{ClientIP: "192.0.2.9"}, "dan", "a-good-password")
	cancel()
	if err == nil {
		t.Fatal("a sign-in hashed while every slot was taken")
	}
	release()
	if _, err := svc.Authenticate(ctx, audit.Context{ClientIP: "192.0.2.9"}, "dan", "a-good-password"); err != nil {
		t.Fatalf("with free slots: %v", err)
	}
}
