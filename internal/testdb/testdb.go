// Package testdb gives tests a fresh, migrated database of each dialect:
// SQLite in a temporary directory, and PostgreSQL as a new database cloned
// from a migrated template on the server named by CONSOLE_TEST_DATABASE_URL
// (default postgres://postgres@127.0.0.1:5432/postgres). Without a reachable
// PostgreSQL the PostgreSQL half is skipped, except under CI=true, where it
// fails: CI must run every store test on both databases.
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"voucherconsole/internal/database"
)

// AdminURL is the PostgreSQL server tests create their databases on.
func AdminURL() string {
	if u := os.Getenv("CONSOLE_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// Each runs fn as a subtest on a fresh migrated database of each dialect.
func Each(t *testing.T, fn func(t *testing.T, db *database.DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, Postgres(t)) })
}

// SQLite opens a fresh migrated SQLite database.
func SQLite(t testing.TB) *database.DB {
	t.Helper()
	db := SQLiteUnmigrated(t)
	if _, err := db.Migrate(context.Background(), nil); err != nil {
		t.Fatalf("migrate sqlite: %v", err)
	}
	return db
}

// SQLiteUnmigrated opens a fresh empty SQLite database.
func SQLiteUnmigrated(t testing.TB) *database.DB {
	t.Helper()
	db, err := database.OpenSQLite(t.TempDir() + "/console.db")
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

var (
	templateOnce sync.Once
	templateName string
	templateErr  error
)

// Postgres opens a fresh migrated PostgreSQL database, cloned from a template
// migrated once per test binary.
func Postgres(t testing.TB) *database.DB {
	t.Helper()
	templateOnce.Do(func() {
		templateName, templateErr = createTemplate()
	})
	var migrateErr *migrationError
	switch {
	case errors.As(templateErr, &migrateErr):
		t.Fatalf("migrate postgres: %v", migrateErr.err) // the migrations are broken, not the server away
	case templateErr != nil:
		unavailable(t, templateErr)
	}
	return open(t, templateName)
}

// PostgresUnmigrated opens a fresh empty PostgreSQL database.
func PostgresUnmigrated(t testing.TB) *database.DB {
	t.Helper()
	return open(t, "template0")
}

// PostgresURL creates a fresh empty database and returns its URL, dropped
// when the test ends (for tests that start a console process).
func PostgresURL(t testing.TB) string {
	t.Helper()
	name, err := createDatabase("template0")
	if err != nil {
		unavailable(t, err)
	}
	t.Cleanup(func() { dropDatabase(name) })
	return dbURL(name)
}

func open(t testing.TB, template string) *database.DB {
	t.Helper()
	name, err := createDatabase(template)
	if err != nil {
		unavailable(t, err)
	}
	db, err := database.OpenPostgres(context.Background(), dbURL(name))
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	t.Cleanup(func() {
		db.Close()
		dropDatabase(name)
	})
	return db
}

func unavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("PostgreSQL is required under CI: %v", err)
	}
	t.Skipf("PostgreSQL unavailable: %v", err)
}

func dbURL(name string) string {
	u, err := url.Parse(AdminURL())
	if err != nil {
		panic(err)
	}
	u.Path = "/" + name
	return u.String()
}

func randomName(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

func adminExec(sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

func createDatabase(template string) (string, error) {
	name := randomName("console_test_")
	// Cloning needs the template free of connections; retry briefly in case
	// another test binary is cloning it at the same moment.
	var err error
	for range 20 {
		if err = adminExec(fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, template)); err == nil {
			return name, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", err
}

func dropDatabase(name string) {
	_ = adminExec(fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name))
}

func createTemplate() (string, error) {
	name, err := createDatabase("template0")
	if err != nil {
		return "", err
	}
	db, err := database.OpenPostgres(context.Background(), dbURL(name))
	if err != nil {
		return "", err
	}
	_, err = db.Migrate(context.Background(), nil)
	db.Close()
	if err != nil {
		dropDatabase(name)
		return "", &migrationError{err}
	}
	// Templates outlive single tests; they are dropped by CleanupTemplates
	// from TestMain, or left for the next run's sweep.
	return name, nil
}

// migrationError is a template that the server made but the migrations
// could not migrate: a failure of the code under test, never a reason to
// skip.
type migrationError struct{ err error }

func (e *migrationError) Error() string { return "migrate template: " + e.err.Error() }

// CleanupTemplate drops this binary's template database; call it from
// TestMain after m.Run.
func CleanupTemplate() {
	if templateName != "" {
		dropDatabase(templateName)
	}
}

// DropAuditGuard removes the triggers that keep audit_entries append-only,
// as someone with direct database access could, so a test can tamper with
// the log.
func DropAuditGuard(t testing.TB, db *database.DB) {
	t.Helper()
	stmts := []string{"DROP TRIGGER audit_entries_no_update", "DROP TRIGGER audit_entries_no_delete"}
	if db.Dialect == database.Postgres {
		stmts = []string{"DROP TRIGGER audit_entries_append_only ON audit_entries"}
	}
	for _, s := range stmts {
		if err := db.Gorm.Exec(s).Error; err != nil {
			t.Fatal(err)
		}
	}
}
