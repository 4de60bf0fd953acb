// Package e2e holds end-to-end tests: a whole console built as `console
// serve` builds it, served over HTTP, driven by a browser or an HTTP client.
package e2e

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"voucherconsole/internal/app"
	"voucherconsole/internal/audit"
	"voucherconsole/internal/config"
	"voucherconsole/internal/models"
	"voucherconsole/internal/testdb"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testdb.CleanupTemplate()
	os.Exit(code)
}

// consoleServer is a running console on a fresh embedded database.
type consoleServer struct {
	*app.Console
	URL string
}

func startConsole(t *testing.T, env map[string]string) *consoleServer {
	t.Helper()
	return startConsoleTB(t, env)
}

func startConsoleTB(t testing.TB, env map[string]string) *consoleServer {
	t.Helper()
	getenv := func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		if k == "CONSOLE_DATA_DIR" {
			return t.TempDir()
		}
		return ""
	}
	cfg, _, err := config.Load("console", nil, getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c, err := app.Build(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(c.Server.Handler())
	t.Cleanup(func() {
		ts.Close()
		c.Close()
	})
	return &consoleServer{Console: c, URL: ts.URL}
}

func (c *consoleServer) addUser(t testing.TB, name, password string, roles ...models.Role) {
	t.Helper()
	if _, err := c.Users.Add(context.Background(), audit.Context{Actor: "test"}, name, password, roles, false); err != nil {
		t.Fatal(err)
	}
}

func has(s, sub string) bool { return strings.Contains(s, sub) }
