package main

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"voucherconsole/internal/testdb"
	"voucherconsole/internal/wxpay/sandbox"
)

var verifiedEntries = regexp.MustCompile(`audit chain intact up to entry \d+ at \S+ \((\d+) entries\)`)

// console runs a subcommand of the console binary with env and returns its
// exit status and output.
func consoleCmd(t *testing.T, env []string, stdin string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(buildConsole(t), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

// auditEntries verifies the chain of the database env names and returns
// how many entries it holds.
func auditEntries(t *testing.T, env []string) int {
	t.Helper()
	code, out := consoleCmd(t, env, "", "audit", "verify")
	m := verifiedEntries.FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("console audit verify: exit %d\n%s", code, out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// Acceptance 4, the restore drill: while a console serves and writes, its
// database is backed up online (SQLite: console backup; PostgreSQL:
// pg_dump), restored into a fresh database (a file put in a new data
// directory; pg_restore into a new database), and `console audit verify`
// passes on the copy, which holds every entry written before the backup.
func TestRestoreDrill(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			dataDir := t.TempDir()
			env := []string{"CONSOLE_DATA_DIR=" + dataDir}
			var pgBin string
			if dialect == "postgres" {
				if pgBin = testdb.PGBin(); pgBin == "" {
					if os.Getenv("CI") == "true" {
						t.Fatal("no pg_dump in /usr/lib/postgresql/*/bin")
					}
					t.Skip("no pg_dump in /usr/lib/postgresql/*/bin")
				}
				env = append(env, "CONSOLE_DATABASE_URL="+testdb.PostgresURL(t))
			}
			addOperator(t, env)
			console, base := startServe(t, env)
			w := signIn(t, base)
			_, body := w.get("/stocks?q=" + sandbox.SeedStockSending)
			m := regexp.MustCompile(`href="(/stocks/\d+)"`).FindStringSubmatch(body)
			if m == nil {
				t.Fatalf("demo stock not listed:\n%s", body)
			}
			up := w.upload(m[1], "DRILL", 1000)
			w.waitEnded(up, 60*time.Second)
			if resp := w.post("/login", url.Values{"username": {"olivia"}, "password": {"wrong-password"}}); resp.StatusCode == http.StatusSeeOther {
				t.Fatal("a wrong password signed in")
			}
			before := auditEntries(t, env)

			// Online backup, the console still serving; then more writes.
			backup := filepath.Join(t.TempDir(), "backup")
			switch dialect {
			case "sqlite":
				if code, out := consoleCmd(t, env, "", "backup", "--to", backup); code != 0 || !strings.Contains(out, "backed up the database") {
					t.Fatalf("console backup: exit %d\n%s", code, out)
				}
				if st, err := os.Stat(backup); err != nil || st.Mode().Perm() != 0o600 {
					t.Fatalf("backup file: %v %v", st, err)
				}
				if code, _ := consoleCmd(t, env, "", "backup", "--to", backup); code == 0 {
					t.Fatal("a second backup overwrote the first")
				}
			case "postgres":
				dump := exec.Command(filepath.Join(pgBin, "pg_dump"), "--format=custom", "--file="+backup, dbURLOf(env))
				if out, err := dump.CombinedOutput(); err != nil {
					t.Fatalf("pg_dump: %v\n%s", err, out)
				}
				// The console points operators to pg_dump.
				if code, out := consoleCmd(t, env, "", "backup", "--to", backup+".x"); code == 0 || !strings.Contains(out, "pg_dump") {
					t.Fatalf("console backup on PostgreSQL: exit %d\n%s", code, out)
				}
			}
			signIn(t, base)
			if after := auditEntries(t, env); after <= before {
				t.Fatalf("no entries written after the backup: %d, %d", before, after)
			}
			console.kill()

			// Restore into a fresh database and verify the copy.
			restored := []string{"CONSOLE_DATA_DIR=" + t.TempDir()}
			switch dialect {
			case "sqlite":
				dir := strings.TrimPrefix(restored[0], "CONSOLE_DATA_DIR=")
				copyFile(t, backup, filepath.Join(dir, "console.db"))
			case "postgres":
				dst := testdb.PostgresURL(t)
				restore := exec.Command(filepath.Join(pgBin, "pg_restore"), "--no-owner", "--exit-on-error", "--dbname="+dst, backup)
				if out, err := restore.CombinedOutput(); err != nil {
					t.Fatalf("pg_restore: %v\n%s", err, out)
				}
				restored = append(restored, "CONSOLE_DATABASE_URL="+dst)
			}
			got := auditEntries(t, restored)
			t.Logf("%d entries before the backup; the restored copy verifies intact with %d", before, got)
			if got < before {
				t.Fatalf("the copy holds %d entries, %d were written before the backup", got, before)
			}
			// The copy is a working console database: a user signs in on it.
			_, base = startServe(t, restored)
			signIn(t, base)
		})
	}
}

func dbURLOf(env []string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "CONSOLE_DATABASE_URL="); ok {
			return v
		}
	}
	return ""
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}
