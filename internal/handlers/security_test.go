package handlers_test

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"voucherconsole/internal/app"
	"voucherconsole/internal/audit"
	"voucherconsole/internal/config"
	"voucherconsole/internal/database"
	"voucherconsole/internal/models"
	consolesessions "voucherconsole/internal/sessions"
	"voucherconsole/internal/testdb"
)

// fakeClock is a settable time source shared by the sessions and users.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeClock) Now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.t }
func (f *fakeClock) Add(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

func sessionCookieOf(t *testing.T, resp *http.Response) *http.Cookie {
	t.Helper()
	for _, ck := range resp.Cookies() {
		if ck.Name == "console_session" && ck.Value != "" {
			return ck
		}
	}
	t.Fatal("no session cookie set")
	return nil
}

// withCookie is a fresh client that sends only ck, as a copy of a saved
// cookie would be replayed.
func (h *harness) withCookie(ck *http.Cookie) *http.Client {
	c := h.client()
	u, _ := url.Parse(h.http.URL)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: ck.Name, Value: ck.Value, Path: "/"}})
	return c
}

func signedIn(resp *http.Response) bool { return resp.StatusCode == http.StatusOK }

// A cookie saved before sign-out is worthless after it: the session ended
// on the server. The cookie carries only a random token, stored hashed.
func TestSignOutEndsTheSessionOnTheServer(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		h := newHarness(t, db)
		h.addUser("olivia", models.RoleOperator)
		c := h.client()
		ck := sessionCookieOf(t, h.signIn(c, "olivia", testPassword))
		if len(ck.Value) != 43 || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode {
			t.Fatalf("session cookie %q: want a 43-character random token, HttpOnly, SameSite=Lax", ck.Value)
		}
		var stored []string
		db.Gorm.Model(&consolesessions.Session{}).Pluck("token_hash", &stored)
		if len(stored) != 1 || stored[0] == ck.Value || stored[0] != consolesessions.HashToken(ck.Value) {
			t.Fatalf("sessions table holds %v; want only the token's hash", stored)
		}
		saved := h.withCookie(ck)
		if resp, _ := h.do(saved, "GET", "/account", nil, nil); !signedIn(resp) {
			t.Fatalf("saved cookie before sign-out: %d", resp.StatusCode)
		}
		if resp, _ := h.do(c, "POST", "/logout", url.Values{}, nil); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-out: %d", resp.StatusCode)
		}
		resp, _ := h.do(saved, "GET", "/account", nil, nil)
		if signedIn(resp) || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
			t.Fatalf("saved cookie after sign-out: %d %s, want sent to sign in", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
}

// A session ends after the idle timeout, and after its lifetime however
// active it is.
func TestSessionIdleTimeoutAndLifetime(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		clk := &fakeClock{t: time.Now().UTC()}
		h := newHarnessWith(t, db, func(cfg *config.Config, o *app.Options) {
			cfg.SessionIdleTimeout, cfg.SessionLifetime = 30*time.Minute, 2*time.Hour
			o.Now = clk.Now
		})
		h.addUser("olivia", models.RoleOperator)
		c := h.client()
		h.signIn(c, "olivia", testPassword)
		clk.Add(29 * time.Minute)
		if resp, _ := h.do(c, "GET", "/account", nil, nil); !signedIn(resp) {
			t.Fatalf("after 29 idle minutes: %d", resp.StatusCode)
		}
		clk.Add(31 * time.Minute)
		if resp, _ := h.do(c, "GET", "/account", nil, nil); signedIn(resp) {
			t.Fatal("still signed in after 31 idle minutes")
		}

		c = h.client()
		h.signIn(c, "olivia", testPassword)
		for i := range 6 { // active every 20 minutes: 2 hours
			clk.Add(20 * time.Minute)
			resp, _ := h.do(c, "GET", "/account", nil, nil)
			if want := i < 5; signedIn(resp) != want {
				t.Fatalf("after %d minutes of activity: status %d, signed in should be %v", (i+1)*20, resp.StatusCode, want)
			}
		}
	})
}

// A user sees their sessions on the account page and ends another one;
// that browser is signed out at once. A password change ends every other
// session too.
func TestUserEndsTheirOtherSessions(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		h := newHarness(t, db)
		h.addUser("olivia", models.RoleOperator)
		laptop, phone, tablet := h.client(), h.client(), h.client()
		for _, c := range []*http.Client{laptop, phone, tablet} {
			h.signIn(c, "olivia", testPassword)
		}
		resp, body := h.do(laptop, "GET", "/account", nil, nil)
		if resp.StatusCode != 200 || strings.Count(body, `<tr id="session-`) != 3 || !strings.Contains(body, `id="end-other-sessions"`) {
			t.Fatalf("account page: %d, sessions listed %d", resp.StatusCode, strings.Count(body, `<tr id="session-`))
		}
		var phoneID int64
		db.Gorm.Model(&consolesessions.Session{}).Select("id").Order("id").Offset(1).Limit(1).Scan(&phoneID)
		if resp, _ := h.do(laptop, "POST", "/account/sessions/"+itoa(phoneID)+"/end", url.Values{}, nil); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("end the phone's session: %d", resp.StatusCode)
		}
		if resp, _ := h.do(phone, "GET", "/account", nil, nil); signedIn(resp) {
			t.Fatal("the ended session still works")
		}
		if resp, _ := h.do(tablet, "GET", "/account", nil, nil); !signedIn(resp) {
			t.Fatal("ending one session ended another")
		}
		if resp, _ := h.do(laptop, "POST", "/account/sessions/others/end", url.Values{}, nil); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("end the others: %d", resp.StatusCode)
		}
		if resp, _ := h.do(tablet, "GET", "/account", nil, nil); signedIn(resp) {
			t.Fatal("end all others left one")
		}
		if resp, _ := h.do(laptop, "GET", "/account", nil, nil); !signedIn(resp) {
			t.Fatal("ending the others ended this session")
		}
		if n := h.countAudit(audit.ActionSessionEnd); n != 2 {
			t.Fatalf("session ends audited %d times, want 2", n)
		}
		// Another user's session cannot be ended from here.
		h.addUser("mia", models.RoleOperator)
		mia := h.client()
		h.signIn(mia, "mia", testPassword)
		var miaID int64
		db.Gorm.Model(&consolesessions.Session{}).Select("id").Order("id DESC").Limit(1).Scan(&miaID)
		if resp, _ := h.do(laptop, "POST", "/account/sessions/"+itoa(miaID)+"/end", url.Values{}, nil); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("ending another user's session: %d, want 404", resp.StatusCode)
		}
		if resp, _ := h.do(mia, "GET", "/account", nil, nil); !signedIn(resp) {
			t.Fatal("another user's session was ended")
		}
	})
}

func itoa(n int64) string { return strconvFormat(n) }

// Two console instances sharing a database accept each other's sessions,
// whatever their cookie keys: the session lives in the database.
func TestSessionValidOnEveryInstance(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		a := newHarness(t, db)
		b := newHarnessWith(t, db, func(cfg *config.Config, _ *app.Options) {
			cfg.SessionKey = strings.Repeat("x", 32) // other cookie keys than a's
		})
		a.addUser("olivia", models.RoleOperator)
		ck := sessionCookieOf(t, a.signIn(a.client(), "olivia", testPassword))
		if resp, _ := b.do(b.withCookie(ck), "GET", "/account", nil, nil); !signedIn(resp) {
			t.Fatalf("instance B with instance A's session: %d", resp.StatusCode)
		}
	})
}

// The audit log records the connection's address unless a proxy the
// settings trust forwarded the request.
func TestClientAddressTrustsOnlyNamedProxies(t *testing.T) {
	for _, tc := range []struct {
		name, proxies, want string
	}{
		{"no proxies trusted", "", "127.0.0.1"},
		{"another proxy trusted", "10.0.0.0/8", "127.0.0.1"},
		{"the loopback proxy trusted", "127.0.0.1/32", "198.51.100.23"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := testdb.SQLite(t)
			h := newHarnessWith(t, db, func(cfg *config.Config, _ *app.Options) { cfg.TrustedProxies = tc.proxies })
			h.addUser("olivia", models.RoleOperator)
			h.do(h.client(), "POST", "/login", url.Values{"username": {"olivia"}, "password": {"wrong-password"}},
				http.Header{"X-Forwarded-For": {"198.51.100.23"}, "X-Real-Ip": {"198.51.100.23"}})
			var ip string
			db.Gorm.Model(&audit.Entry{}).Where("action = ?", audit.ActionSignInFailed).Pluck("client_ip", &ip)
			if ip != tc.want {
				t.Fatalf("audited client address %q, want %q", ip, tc.want)
			}
		})
	}
}

// An anonymous sign-in cannot write unbounded data: the body is capped at a
// few KB, and a username that cannot be one is refused with a field error,
// not echoed, not counted and not audited.
func TestSignInRefusesHugeAndImpossibleUsernames(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		h := newHarness(t, db)
		c := h.client()
		before := h.countAll()
		huge := strings.Repeat("a", 5<<20)
		resp, body := h.do(c, "POST", "/login", url.Values{"username": {huge}, "password": {"x"}}, nil)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || strings.Contains(body, strings.Repeat("a", 5000)) {
			t.Fatalf("5 MB username: %d (%d bytes of page)", resp.StatusCode, len(body))
		}
		for _, name := range []string{strings.Repeat("b", 200), "<script>alert(1)</script>", "ad min", "a\x00b", "Ω-user"} {
			resp, body := h.do(c, "POST", "/login", url.Values{"username": {name}, "password": {"wrong-password"}}, http.Header{"Accept-Language": {"en"}})
			if resp.StatusCode/100 != 4 || strings.Contains(body, "<script>alert(1)") || strings.Contains(body, strings.Repeat("b", 200)) {
				t.Fatalf("username %q: %d", name, resp.StatusCode)
			}
			if resp.StatusCode == http.StatusUnprocessableEntity && !strings.Contains(body, `id="username-error"`) {
				t.Fatalf("username %q: 422 without a field error", name)
			}
		}
		if after := h.countAll(); after != before {
			t.Fatalf("refused sign-ins wrote %d audit entries", after-before)
		}
		var throttles int64
		db.Gorm.Model(&models.SignInThrottle{}).Count(&throttles)
		if throttles != 0 {
			t.Fatalf("refused sign-ins wrote %d throttle rows", throttles)
		}
	})
}

func (h *harness) countAll() int64 {
	var n int64
	h.db.Gorm.Model(&audit.Entry{}).Count(&n)
	return n
}

// next and the language form's return lead only to a path on the console.
func TestNoOpenRedirect(t *testing.T) {
	h := newHarness(t, testdb.SQLite(t))
	h.addUser("olivia", models.RoleOperator)
	for _, next := range []string{"/\t/evil.example", "/\\evil.example", "//evil.example", "https://evil.example", "/%5Cevil.example", "/\n/evil.example"} {
		resp, _ := h.do(h.client(), "POST", "/login", url.Values{"username": {"olivia"}, "password": {testPassword}, "next": {next}}, nil)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
			t.Errorf("next %q: %d Location %q, want /", next, resp.StatusCode, resp.Header.Get("Location"))
		}
		resp, _ = h.do(h.client(), "POST", "/language", url.Values{"locale": {"en"}, "return": {next}}, nil)
		if loc := resp.Header.Get("Location"); loc != "/" {
			t.Errorf("language return %q: Location %q, want /", next, loc)
		}
	}
	resp, _ := h.do(h.client(), "POST", "/login", url.Values{"username": {"olivia"}, "password": {testPassword}, "next": {"/stocks?q=a"}}, nil)
	if resp.Header.Get("Location") != "/stocks?q=a" {
		t.Errorf("a path on the console: Location %q", resp.Header.Get("Location"))
	}
}

// Invented request methods share one metrics label value; /metrics can
// require a bearer token or move to its own listener.
func TestMetricsLabelsAndAccess(t *testing.T) {
	db := testdb.SQLite(t)
	h := newHarness(t, db)
	c := h.client()
	for _, m := range []string{"FOO", "BAR1", "PROPFIND"} {
		h.do(c, m, "/healthz", nil, nil)
	}
	_, body := h.do(c, "GET", "/metrics", nil, nil)
	for _, m := range []string{"FOO", "BAR1", "PROPFIND"} {
		if strings.Contains(body, `method="`+m+`"`) {
			t.Errorf("method %s became a label value", m)
		}
	}
	if !strings.Contains(body, `method="other"`) {
		t.Error("unknown methods not counted as other")
	}

	tok := newHarnessWith(t, db, func(cfg *config.Config, _ *app.Options) { cfg.MetricsToken = "s3cret-token" })
	if resp, _ := tok.do(c, "GET", "/metrics", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/metrics without the token: %d", resp.StatusCode)
	}
	if resp, _ := tok.do(c, "GET", "/metrics", nil, http.Header{"Authorization": {"Bearer wrong"}}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/metrics with a wrong token: %d", resp.StatusCode)
	}
	if resp, body := tok.do(c, "GET", "/metrics", nil, http.Header{"Authorization": {"Bearer s3cret-token"}}); resp.StatusCode != 200 || !strings.Contains(body, "console_http_requests_total") {
		t.Errorf("/metrics with the token: %d", resp.StatusCode)
	}
	own := newHarnessWith(t, db, func(cfg *config.Config, _ *app.Options) { cfg.MetricsAddr = "127.0.0.1:0" })
	if resp, _ := own.do(c, "GET", "/metrics", nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/metrics on the console's address with a metrics listener: %d", resp.StatusCode)
	}
}

// HEAD answers like GET, without a body.
func TestHeadAnswersLikeGet(t *testing.T) {
	h := newHarness(t, testdb.SQLite(t))
	c := h.client()
	for _, path := range []string{"/login", "/healthz", "/static/app.css", "/stocks"} {
		get, _ := h.do(c, "GET", path, nil, nil)
		head, body := h.do(c, "HEAD", path, nil, nil)
		if head.StatusCode != get.StatusCode || body != "" || head.Header.Get("Content-Type") != get.Header.Get("Content-Type") {
			t.Errorf("HEAD %s: %d %q (GET %d %q), body %d bytes", path, head.StatusCode, head.Header.Get("Content-Type"),
				get.StatusCode, get.Header.Get("Content-Type"), len(body))
		}
	}
}

func strconvFormat(n int64) string { return strconv.FormatInt(n, 10) }

// A flood of anonymous requests for protected pages writes one audit entry
// per client and interval, and is counted; a signed-in user's refusals are
// each audited.
func TestAnonymousRefusalsDoNotFillTheLog(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		h := newHarness(t, db)
		h.addUser("olivia", models.RoleOperator)
		anon := h.client()
		for range 30 {
			h.do(anon, "GET", "/audit", nil, nil)
			h.do(anon, "POST", "/presend", url.Values{}, nil)
		}
		if n := h.countAudit(audit.ActionAccessDenied); n != 1 {
			t.Fatalf("60 anonymous refusals wrote %d audit entries, want 1", n)
		}
		if n := anonymousRefusals(h); n != 60 {
			t.Fatalf("anonymous refusals counted %v, want 60", n)
		}
		op := h.client()
		h.signIn(op, "olivia", testPassword)
		for range 3 {
			h.do(op, "GET", "/audit", nil, nil)
		}
		if n := h.countAudit(audit.ActionAccessDenied); n != 4 {
			t.Fatalf("a signed-in user's 3 refusals: %d entries in all, want 4", n)
		}
	})
}

// An admin sees a locked username on /admin/users/locks and lifts the
// lock (audited); the user can sign in again at once.
func TestAdminSeesAndLiftsALock(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		h := newHarness(t, db)
		h.addUser("olivia", models.RoleOperator)
		h.addUser("root", models.RoleAdmin)
		for range 5 {
			h.signIn(h.client(), "olivia", "wrong-password")
		}
		if resp := h.signIn(h.client(), "olivia", testPassword); resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("locked sign-in: %d", resp.StatusCode)
		}
		admin := h.client()
		h.signIn(admin, "root", testPassword)
		resp, body := h.do(admin, "GET", "/admin/users/locks", nil, nil)
		if resp.StatusCode != 200 || !strings.Contains(body, "<code>olivia</code>") {
			t.Fatalf("locks page: %d", resp.StatusCode)
		}
		resp, _ = h.do(admin, "POST", "/admin/users/locks/lift", url.Values{"scope": {"username"}, "subject": {"olivia"}}, nil)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("lift: %d", resp.StatusCode)
		}
		if h.countAudit(audit.ActionSignInUnlock) != 1 {
			t.Fatal("lifting the lock was not audited")
		}
		if resp := h.signIn(h.client(), "olivia", testPassword); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-in after the lock was lifted: %d", resp.StatusCode)
		}
	})
}
