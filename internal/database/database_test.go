package database_test

import (
	"context"
	"os"
	"testing"

	"voucherconsole/internal/database"
	"voucherconsole/internal/testdb"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testdb.CleanupTemplate()
	os.Exit(code)
}

// unmigrated opens an empty database of each kind, for tests of the
// migrations themselves.
var unmigrated = []struct {
	name string
	open func(testing.TB) *database.DB
}{
	{"sqlite", testdb.SQLiteUnmigrated},
	{"postgres", testdb.PostgresUnmigrated},
}

func tableCount(t *testing.T, db *database.DB) int {
	t.Helper()
	var n int64
	q := "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('users', 'user_roles', 'sign_in_throttles', 'audit_entries')"
	if db.Dialect == database.Postgres {
		q = "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name IN ('users', 'user_roles', 'sign_in_throttles', 'audit_entries')"
	}
	if err := db.Gorm.Raw(q).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return int(n)
}

// Up, down and up again leaves the same schema, and a second up is a no-op.
func TestMigrationsUpDownUp(t *testing.T) {
	ctx := context.Background()
	for _, tc := range unmigrated {
		t.Run(tc.name, func(t *testing.T) {
			db := tc.open(t)
			n, err := db.Migrate(ctx, nil)
			if err != nil || n == 0 {
				t.Fatalf("first up: ran %d, err %v", n, err)
			}
			if got := tableCount(t, db); got != 4 {
				t.Fatalf("after up: %d foundation tables, want 4", got)
			}
			if n, err := db.Migrate(ctx, nil); err != nil || n != 0 {
				t.Fatalf("second up: ran %d, err %v; want a no-op", n, err)
			}
			if err := db.MigrateDownAll(ctx); err != nil {
				t.Fatal(err)
			}
			if got := tableCount(t, db); got != 0 {
				t.Fatalf("after down: %d tables remain", got)
			}
			if _, err := db.Migrate(ctx, nil); err != nil {
				t.Fatalf("up again: %v", err)
			}
			if got := tableCount(t, db); got != 4 {
				t.Fatalf("after up again: %d tables, want 4", got)
			}
		})
	}
}

// Two instances migrating one PostgreSQL database at once: the session lock
// lets one migrate while the other waits, and both succeed.
func TestConcurrentMigrationPostgres(t *testing.T) {
	url := testdb.PostgresURL(t)
	ctx := context.Background()
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			db, err := database.OpenPostgres(ctx, url)
			if err != nil {
				errs <- err
				return
			}
			defer db.Close()
			_, err = db.Migrate(ctx, nil)
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
