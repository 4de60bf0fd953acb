package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"voucherconsole/internal/database"
	"voucherconsole/internal/testdb"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testdb.CleanupTemplate()
	os.Exit(code)
}

// console runs the command in-process with settings from env.
func console(t *testing.T, env map[string]string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func databases(t *testing.T) map[string]map[string]string {
	return map[string]map[string]string{
		"sqlite":   {"CONSOLE_DATA_DIR": t.TempDir(), "CONSOLE_DATABASE_URL": ""},
		"postgres": {"CONSOLE_DATA_DIR": t.TempDir(), "CONSOLE_DATABASE_URL": testdb.PostgresURL(t)},
	}
}

func TestMigrateTwiceIsNoOp(t *testing.T) {
	for name, env := range databases(t) {
		t.Run(name, func(t *testing.T) {
			code, out, stderr := console(t, env, "", "migrate")
			if code != 0 || !strings.Contains(out, "applied") {
				t.Fatalf("first migrate: %d %q %q", code, out, stderr)
			}
			code, out, _ = console(t, env, "", "migrate")
			if code != 0 || !strings.Contains(out, "no migrations applied") {
				t.Fatalf("second migrate: %d %q", code, out)
			}
		})
	}
}

func TestUserAddAndAuditVerify(t *testing.T) {
	for name, env := range databases(t) {
		t.Run(name, func(t *testing.T) {
			code, out, stderr := console(t, env, "a-long-password\n", "user", "add", "--username", "olivia", "--role", "operator", "--role", "support")
			if code != 0 || !strings.Contains(out, "added user olivia") {
				t.Fatalf("user add: %d %q %q", code, out, stderr)
			}
			if code, _, _ := console(t, env, "", "user", "add", "--username", "bad", "--role", "boss"); code == 0 {
				t.Fatal("an unknown role was accepted")
			}
			if code, _, _ := console(t, env, "", "user", "add", "--username", "nopw", "--role", "support"); code == 0 {
				t.Fatal("a user was added without a password")
			}
			console(t, env, "another-password\n", "user", "add", "--username", "sam", "--role", "support")

			code, out, _ = console(t, env, "", "audit", "verify")
			if code != 0 || !strings.Contains(out, "intact up to entry 2") {
				t.Fatalf("verify clean log: %d %q", code, out)
			}

			// Tamper behind the application's back: drop the guard, alter entry 1.
			db, err := database.Open(context.Background(), env["CONSOLE_DATABASE_URL"], env["CONSOLE_DATA_DIR"])
			if err != nil {
				t.Fatal(err)
			}
			testdb.DropAuditGuard(t, db)
			if err := db.Gorm.Exec("UPDATE audit_entries SET actor = 'mallory' WHERE seq = 1").Error; err != nil {
				t.Fatal(err)
			}
			db.Close()
			code, out, _ = console(t, env, "", "audit", "verify")
			if code == 0 || !strings.Contains(out, "broken at entry 1") {
				t.Fatalf("verify tampered log: %d %q", code, out)
			}
		})
	}
}

func TestHelpListsEverySetting(t *testing.T) {
	code, _, stderr := console(t, nil, "", "--help")
	if code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	for _, v := range []string{"CONSOLE_ADDR", "CONSOLE_DATABASE_URL", "CONSOLE_SESSION_KEY", "CONSOLE_TIMEZONE",
		"CONSOLE_WXPAY_MODE", "CONSOLE_WXPAY_BASE_URL", "CONSOLE_WXPAY_FALLBACK_URL", "CONSOLE_WXPAY_MCHID",
		"CONSOLE_WXPAY_MCH_SERIAL", "CONSOLE_WXPAY_MCH_KEY", "CONSOLE_WXPAY_SP_MCHID", "CONSOLE_WXPAY_SP_SERIAL",
		"CONSOLE_WXPAY_SP_KEY", "CONSOLE_WXPAY_BRAND_ID", "CONSOLE_WXPAY_BRAND_SERIAL", "CONSOLE_WXPAY_BRAND_KEY",
		"CONSOLE_WXPAY_PUBKEY_ID", "CONSOLE_WXPAY_PUBKEY"} {
		if !strings.Contains(stderr, v) {
			t.Errorf("--help does not list %s", v)
		}
	}
}
