package handlers_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"voucherconsole/internal/app"
	"voucherconsole/internal/audit"
	"voucherconsole/internal/config"
	"voucherconsole/internal/database"
	"voucherconsole/internal/handlers"
	"voucherconsole/internal/models"
	"voucherconsole/internal/testdb"
	"voucherconsole/internal/twofactor"
	"voucherconsole/internal/users"
	"voucherconsole/internal/wxpay/sandbox"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testdb.CleanupTemplate()
	os.Exit(code)
}

const testPassword = "a-long-test-password"

// harness is a console built by the composition root, as `console serve`
// builds it (every service wired, the in-process WeChat Pay sandbox with its
// demo stocks), on the fresh database a test hands it, served over HTTP.
type harness struct {
	t       *testing.T
	db      *database.DB
	console *app.Console
	srv     *handlers.Server
	http    *httptest.Server
	users   *users.Service
	tf      *twofactor.Service
}

// sandboxKeys are generated once per test binary: four RSA keys take a
// second or so.
var sandboxKeys = sync.OnceValues(sandbox.GenerateKeys)

func newHarness(t *testing.T, db *database.DB) *harness {
	t.Helper()
	return newHarnessWith(t, db, nil)
}

// newHarnessWith is newHarness with the settings and the console's options
// changed by edit before the console is built.
func newHarnessWith(t *testing.T, db *database.DB, edit func(*config.Config, *app.Options)) *harness {
	t.Helper()
	dataDir := t.TempDir()
	cfg, _, err := config.Load("console", nil, func(k string) string {
		if k == "CONSOLE_DATA_DIR" {
			return dataDir
		}
		return ""
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := sandboxKeys()
	if err != nil {
		t.Fatal(err)
	}
	opts := app.Options{DB: db, SandboxKeys: keys}
	if edit != nil {
		edit(&cfg, &opts)
	}
	c, err := app.BuildWith(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(c.Server.Handler())
	t.Cleanup(func() {
		ts.Close()
		c.Close()
	})
	return &harness{t: t, db: db, console: c, srv: c.Server, http: ts, users: c.Users, tf: c.TwoFactor}
}

func (h *harness) addUser(name string, rs ...models.Role) {
	h.t.Helper()
	if _, err := h.users.Add(context.Background(), audit.Context{Actor: "test"}, name, testPassword, rs, false); err != nil {
		h.t.Fatal(err)
	}
}

// client is a browser-like client with its own cookie jar that does not
// follow redirects, so tests see them.
func (h *harness) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (h *harness) do(c *http.Client, method, path string, form url.Values, header http.Header) (*http.Response, string) {
	h.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, h.http.URL+path, body)
	if err != nil {
		h.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := c.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (h *harness) signIn(c *http.Client, name, password string) *http.Response {
	h.t.Helper()
	resp, _ := h.do(c, "POST", "/login", url.Values{"username": {name}, "password": {password}}, nil)
	return resp
}

func (h *harness) countAudit(action string) int64 {
	var n int64
	h.db.Gorm.Model(&audit.Entry{}).Where("action = ?", action).Count(&n)
	return n
}

func TestSignInHomeSignOut(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		h := newHarness(t, db)
		h.addUser("olivia", models.RoleOperator)
		c := h.client()

		resp, body := h.do(c, "GET", "/login", nil, nil)
		if resp.StatusCode != 200 || !strings.Contains(body, `lang="zh-CN"`) || !strings.Contains(body, "登录") {
			t.Fatalf("sign-in page: %d", resp.StatusCode)
		}
		if !strings.Contains(body, `name="username"`) || !strings.Contains(body, `name="password"`) {
			t.Fatal("sign-in form fields are not named username and password")
		}

		resp, body = h.do(c, "POST", "/login", url.Values{"username": {"olivia"}, "password": {"wrong-password"}}, nil)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "用户名或密码错误") || !strings.Contains(body, `value="olivia"`) {
			t.Fatalf("wrong password: status %d", resp.StatusCode)
		}

		if resp := h.signIn(c, "olivia", testPassword); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
			t.Fatalf("sign-in: %d %s", resp.StatusCode, resp.Header.Get("Location"))
		}
		resp, body = h.do(c, "GET", "/", nil, nil)
		if resp.StatusCode != 200 || !strings.Contains(body, `id="current-user">olivia<`) {
			t.Fatalf("home page after sign-in: %d", resp.StatusCode)
		}
		// Operators see operator navigation but not the audit log or users.
		if strings.Contains(body, `href="/admin/users"`) || strings.Contains(body, `href="/audit"`) {
			t.Fatal("navigation shows pages the operator may not open")
		}

		resp, _ = h.do(c, "POST", "/logout", url.Values{}, nil)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
			t.Fatalf("sign-out: %d", resp.StatusCode)
		}
		resp, _ = h.do(c, "GET", "/account", nil, nil)
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
			t.Fatalf("after sign-out /account: %d %s", resp.StatusCode, resp.Header.Get("Location"))
		}
		for action, want := range map[string]int64{audit.ActionSignIn: 1, audit.ActionSignInFailed: 1, audit.ActionSignOut: 1} {
			if got := h.countAudit(action); got != want {
				t.Errorf("%s audited %d times, want %d", action, got, want)
			}
		}
	})
}

func TestSessionCookieFlags(t *testing.T) {
	h := newHarness(t, testdb.SQLite(t))
	h.addUser("olivia", models.RoleOperator)
	resp := h.signIn(h.client(), "olivia", testPassword)
	var found bool
	for _, ck := range resp.Cookies() {
		if ck.Name == "console_session" {
			found = true
			if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode {
				t.Fatalf("session cookie flags: %+v", ck)
			}
		}
	}
	if !found {
		t.Fatal("no session cookie set at sign-in")
	}
}

func TestEnglishByAcceptLanguage(t *testing.T) {
	h := newHarness(t, testdb.SQLite(t))
	resp, body := h.do(h.client(), "GET", "/login", nil, http.Header{"Accept-Language": {"en-US,en;q=0.9"}})
	if resp.StatusCode != 200 || !strings.Contains(body, `lang="en"`) || !strings.Contains(body, "Sign in") {
		t.Fatalf("English sign-in page: %d", resp.StatusCode)
	}
}

func TestThrottleAfterFiveFailures(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		h := newHarness(t, db)
		h.addUser("olivia", models.RoleOperator)
		c := h.client()
		for i := range 5 {
			if resp := h.signIn(c, "olivia", "wrong-password"); resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("attempt %d: %d", i+1, resp.StatusCode)
			}
		}
		resp, body := h.do(c, "POST", "/login", url.Values{"username": {"olivia"}, "password": {testPassword}},
			http.Header{"Accept-Language": {"en"}})
		if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "Too many failed sign-ins") {
			t.Fatalf("6th attempt with the right password: %d", resp.StatusCode)
		}
		if h.countAudit(audit.ActionSignInThrottled) != 1 {
			t.Fatal("throttled sign-in not audited")
		}
	})
}

func TestMustChangeOneTimePassword(t *testing.T) {
	h := newHarness(t, testdb.SQLite(t))
	pw, err := h.users.EnsureInitialAdmin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c := h.client()
	if resp := h.signIn(c, "admin", pw); resp.Header.Get("Location") != "/account/password" {
		t.Fatalf("one-time password sign-in went to %q", resp.Header.Get("Location"))
	}
	if resp, _ := h.do(c, "GET", "/", nil, nil); resp.Header.Get("Location") != "/account/password" {
		t.Fatalf("home before changing the password: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body := h.do(c, "POST", "/account/password", url.Values{"current_password": {pw}, "new_password": {"short"}, "confirm_password": {"other"}}, nil)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "至少需要 10 个字符") || !strings.Contains(body, "不一致") {
		t.Fatalf("weak new password: %d", resp.StatusCode)
	}
	resp, _ = h.do(c, "POST", "/account/password", url.Values{"current_password": {pw}, "new_password": {"a-brand-new-password"}, "confirm_password": {"a-brand-new-password"}}, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("password change: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := h.do(c, "GET", "/", nil, nil); resp.StatusCode != 200 {
		t.Fatalf("home after the change: %d", resp.StatusCode)
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	db := testdb.SQLite(t)
	h := newHarness(t, db)
	c := h.client()
	for _, path := range []string{"/healthz", "/readyz"} {
		if resp, _ := h.do(c, "GET", path, nil, nil); resp.StatusCode != 200 {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
	resp, body := h.do(c, "GET", "/metrics", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `console_http_requests_total{method="GET",route="/healthz",status="200"} 1`) ||
		!strings.Contains(body, "console_http_request_duration_seconds_bucket") {
		t.Fatalf("metrics: %d\n%s", resp.StatusCode, body)
	}
	db.SQL.Close()
	if resp, _ := h.do(c, "GET", "/readyz", nil, nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz with the database closed: %d", resp.StatusCode)
	}
	if resp, _ := h.do(c, "GET", "/healthz", nil, nil); resp.StatusCode != 200 {
		t.Errorf("/healthz with the database closed: %d", resp.StatusCode)
	}
}
