package e2e

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"voucherconsole/internal/app"
	"voucherconsole/internal/audit"
	"voucherconsole/internal/config"
)

// Helpers for the deactivation and pre-send tests.

// testClock is the console's clock in these tests: the wall clock plus an
// offset that Advance moves together with the in-process sandbox's clock.
type testClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// lockedBuffer collects a console's log lines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// clockConsole is a console whose handlers and pre-send service run on a
// test clock, with its log collected.
type clockConsole struct {
	*consoleServer
	clock *testClock
	log   *lockedBuffer
	dir   string
}

// startClockConsole builds a console as startConsole does (sandbox mode,
// fresh SQLite data directory), but on a test clock and logging to a buffer.
func startClockConsole(t testing.TB) *clockConsole { return startClockConsoleOn(t, "") }

// startClockConsoleOn is startClockConsole on the PostgreSQL database at
// databaseURL ("" for SQLite).
func startClockConsoleOn(t testing.TB, databaseURL string) *clockConsole {
	t.Helper()
	dir := t.TempDir()
	cfg, _, err := config.Load("console", nil, func(k string) string {
		switch k {
		case "CONSOLE_DATA_DIR":
			return dir
		case "CONSOLE_DATABASE_URL":
			return databaseURL
		}
		return ""
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	c, err := app.Build(context.Background(), cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	clk := &testClock{}
	c.Server.Now = clk.Now
	c.Presend.Now = clk.Now
	ts := httptest.NewServer(c.Server.Handler())
	t.Cleanup(func() {
		ts.Close()
		c.Close()
	})
	return &clockConsole{consoleServer: &consoleServer{Console: c, URL: ts.URL}, clock: clk, log: logs, dir: dir}
}

// advance moves the console's and the sandbox's clocks forward together.
func (c *clockConsole) advance(t testing.TB, d time.Duration) {
	t.Helper()
	c.clock.mu.Lock()
	c.clock.offset += d
	c.clock.mu.Unlock()
	if err := c.Sandbox.Advance(d); err != nil {
		t.Fatal(err)
	}
}

var formTokenRE = regexp.MustCompile(`name="form_token" value="([^"]+)"`)

// formToken reads the hidden form token of a page.
func formToken(t testing.TB, page string) string {
	t.Helper()
	m := formTokenRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no form token on the page:\n%s", page)
	}
	return m[1]
}

// follow fetches a redirect's target.
func follow(t *testing.T, hc *http.Client, base string, resp *http.Response, lang string) (*http.Response, string) {
	t.Helper()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("status %d, want 303", resp.StatusCode)
	}
	return fetch(t, hc, "GET", base+resp.Header.Get("Location"), nil, lang)
}

// auditEntries are the audit entries of an action, oldest first.
func auditEntries(t testing.TB, c *consoleServer, action string) []audit.Entry {
	t.Helper()
	var out []audit.Entry
	if err := c.DB.Gorm.Where("action = ?", action).Order("seq").Find(&out).Error; err != nil {
		t.Fatal(err)
	}
	return out
}

// sandboxRequests are the request numbers the sandbox saw at an endpoint.
func sandboxRequests(c *consoleServer, endpoint string) map[string]int {
	out := map[string]int{}
	for _, r := range c.Sandbox.Requests() {
		if r.Endpoint == endpoint {
			out[r.RequestNo] = r.Count
		}
	}
	return out
}

func sandboxState(t testing.TB, c *consoleServer, stockID string) string {
	t.Helper()
	for _, s := range c.Sandbox.Stocks() {
		if s.StockID == stockID {
			return s.State
		}
	}
	t.Fatalf("no sandbox stock %s", stockID)
	return ""
}

// between returns what lies between the first a and the next b in s.
func between(s, a, b string) string {
	i := strings.Index(s, a)
	if i < 0 {
		return ""
	}
	s = s[i+len(a):]
	if j := strings.Index(s, b); j >= 0 {
		return s[:j]
	}
	return s
}
