package handlers_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"voucherconsole/internal/database"
	"voucherconsole/internal/models"
	"voucherconsole/internal/testdb"
	"voucherconsole/internal/twofactor"
)

type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// withClock injects a clock into the second factor and the handlers.
func (h *harness) withClock() *testClock {
	clk := &testClock{now: time.Date(2026, 12, 7, 9, 30, 1, 0, time.UTC)}
	h.tf.Now = clk.Now
	h.srv.Now = clk.Now
	return clk
}

var secretPattern = regexp.MustCompile(`id="two-factor-secret">([A-Z2-7]+)<`)
var recoveryPattern = regexp.MustCompile(`<li><code>([a-z0-9]{5}-[a-z0-9]{5})</code></li>`)

func totpCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// enrolByPage enrols the signed-in client's user through the account page
// and returns the secret and the recovery codes shown.
func (h *harness) enrolByPage(c *http.Client, clk *testClock) (string, []string) {
	t := h.t
	t.Helper()
	resp, page := h.do(c, "GET", "/account/two-factor", nil, http.Header{"Accept-Language": {"en"}})
	m := secretPattern.FindStringSubmatch(page)
	if resp.StatusCode != 200 || m == nil || !strings.Contains(page, `src="/account/two-factor/qr.png"`) {
		t.Fatalf("enrolment page: %d\n%s", resp.StatusCode, page)
	}
	secret := m[1]
	resp, png := h.do(c, "GET", "/account/two-factor/qr.png", nil, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" || !strings.HasPrefix(png, "\x89PNG") {
		t.Fatalf("QR code: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	resp, page = h.do(c, "POST", "/account/two-factor", url.Values{"code": {"000000"}}, http.Header{"Accept-Language": {"en"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page, "Wrong code") || !strings.Contains(page, secret) {
		t.Fatalf("wrong first code: %d", resp.StatusCode)
	}
	resp, page = h.do(c, "POST", "/account/two-factor", url.Values{"code": {totpCode(t, secret, clk.Now())}}, nil)
	codes := recoveryPattern.FindAllStringSubmatch(page, -1)
	if resp.StatusCode != 200 || len(codes) != 10 || strings.Contains(page, secret) {
		t.Fatalf("confirmation: %d, %d recovery codes\n%s", resp.StatusCode, len(codes), page)
	}
	var out []string
	for _, c := range codes {
		out = append(out, c[1])
	}
	// The secret and the codes are never shown again.
	_, page = h.do(c, "GET", "/account/two-factor", nil, nil)
	if strings.Contains(page, secret) || strings.Contains(page, out[0]) || !strings.Contains(page, `id="two-factor-status"`) {
		t.Fatalf("the account page after enrolling shows the secret or codes:\n%s", page)
	}
	if resp, _ := h.do(c, "GET", "/account/two-factor/qr.png", nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("QR code after enrolling: %d", resp.StatusCode)
	}
	return secret, out
}

// signInWithCode signs in through both steps; it returns the second step's
// answer.
func (h *harness) signInWithCode(c *http.Client, name, code string) (*http.Response, string) {
	h.t.Helper()
	resp := h.signIn(c, name, testPassword)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login/two-factor" {
		h.t.Fatalf("password step: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	return h.do(c, "POST", "/login/two-factor", url.Values{"code": {code}}, http.Header{"Accept-Language": {"en"}})
}

// Acceptance 1: with a second factor, the password alone signs nobody in;
// a valid code does, a wrong or replayed one is refused, a recovery code
// works once.
func TestTwoFactorSignIn(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		h := newHarness(t, db)
		clk := h.withClock()
		h.addUser("olivia", models.RoleOperator)
		c := h.client()
		h.signIn(c, "olivia", testPassword)
		secret, recovery := h.enrolByPage(c, clk)
		h.do(c, "POST", "/logout", url.Values{}, nil)

		// Password right: not signed in until the code passes.
		c = h.client()
		if resp := h.signIn(c, "olivia", testPassword); resp.Header.Get("Location") != "/login/two-factor" {
			t.Fatalf("password step went to %q", resp.Header.Get("Location"))
		}
		if resp, _ := h.do(c, "GET", "/stocks", nil, nil); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login?next=") {
			t.Fatalf("a page between the steps: %d %s", resp.StatusCode, resp.Header.Get("Location"))
		}
		resp, page := h.do(c, "GET", "/login/two-factor", nil, nil)
		if resp.StatusCode != 200 || !strings.Contains(page, `name="code"`) {
			t.Fatalf("code page: %d", resp.StatusCode)
		}
		// The enrolment's own code (same time step) is refused.
		if resp, page := h.do(c, "POST", "/login/two-factor", url.Values{"code": {totpCode(t, secret, clk.Now())}}, http.Header{"Accept-Language": {"en"}}); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "Wrong code") {
			t.Fatalf("code of the enrolment's step: %d", resp.StatusCode)
		}
		clk.Advance(30 * time.Second)
		good := totpCode(t, secret, clk.Now())
		if resp, _ := h.do(c, "POST", "/login/two-factor", url.Values{"code": {good}}, nil); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
			t.Fatalf("valid code: %d %s", resp.StatusCode, resp.Header.Get("Location"))
		}
		if resp, body := h.do(c, "GET", "/", nil, nil); resp.StatusCode != 200 || !strings.Contains(body, `id="current-user">olivia<`) {
			t.Fatalf("home after the code: %d", resp.StatusCode)
		}

		// The same code again, from another browser: replayed, refused.
		if resp, _ := h.signInWithCode(h.client(), "olivia", good); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("replayed code: %d", resp.StatusCode)
		}
		// A recovery code works once.
		c2 := h.client()
		if resp, _ := h.signInWithCode(c2, "olivia", recovery[0]); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("recovery code: %d", resp.StatusCode)
		}
		if resp, _ := h.signInWithCode(h.client(), "olivia", recovery[0]); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("recovery code again: %d", resp.StatusCode)
		}
		// The password step expires.
		c3 := h.client()
		h.signIn(c3, "olivia", testPassword)
		clk.Advance(6 * time.Minute)
		if resp, _ := h.do(c3, "POST", "/login/two-factor", url.Values{"code": {totpCode(t, secret, clk.Now())}}, nil); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
			t.Fatalf("code after the password step expired: %d %s", resp.StatusCode, resp.Header.Get("Location"))
		}
		if n := h.countAudit(twofactor.ActionVerify); n != 2 {
			t.Fatalf("%d successful second steps audited, want 2", n)
		}
		if n := h.countAudit(twofactor.ActionVerifyFailed); n != 3 {
			t.Fatalf("%d failed second steps audited, want 3", n)
		}
	})
}

// Wrong codes are throttled like passwords: after five the right code is
// refused with 429.
func TestTwoFactorThrottled(t *testing.T) {
	h := newHarness(t, testdb.SQLite(t))
	clk := h.withClock()
	h.addUser("olivia", models.RoleOperator)
	c := h.client()
	h.signIn(c, "olivia", testPassword)
	secret, _ := h.enrolByPage(c, clk)
	clk.Advance(time.Minute)
	c = h.client()
	h.signIn(c, "olivia", testPassword)
	for i := range 5 {
		if resp, _ := h.do(c, "POST", "/login/two-factor", url.Values{"code": {"99999x"}}, nil); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong code %d: %d", i, resp.StatusCode)
		}
	}
	resp, page := h.do(c, "POST", "/login/two-factor", url.Values{"code": {totpCode(t, secret, clk.Now())}}, http.Header{"Accept-Language": {"en"}})
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(page, "Too many wrong codes") {
		t.Fatalf("right code after five wrong ones: %d", resp.StatusCode)
	}
	if h.countAudit(twofactor.ActionVerifyThrottled) != 1 {
		t.Fatal("throttled second step not audited")
	}
}

// Acceptance 1: a role that requires a second factor reaches no page
// before enrolling; the admin's reset makes the user enrol again.
func TestTwoFactorRequiredForRole(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		h := newHarness(t, db)
		clk := h.withClock()
		h.addUser("olivia", models.RoleOperator)
		h.addUser("sam", models.RoleSupport)
		h.addUser("ada", models.RoleAdmin)
		a := h.client()
		h.signIn(a, "ada", testPassword)
		// A post without the form's marker changes nothing.
		h.do(a, "POST", "/admin/two-factor", url.Values{"role": {"operator"}}, nil)
		if rs, _ := h.tf.RequiredRoles(t.Context()); len(rs) != 0 {
			t.Fatalf("required roles changed by a bare post: %v", rs)
		}
		resp, _ := h.do(a, "POST", "/admin/two-factor", url.Values{"submitted": {"1"}, "role": {"operator"}}, nil)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("set required roles: %d", resp.StatusCode)
		}
		if h.countAudit(twofactor.ActionRequiredRoles) != 1 {
			t.Fatal("required roles change not audited")
		}

		c := h.client()
		if resp := h.signIn(c, "olivia", testPassword); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-in: %d", resp.StatusCode)
		}
		for _, r := range []struct{ method, path string }{
			{"GET", "/"}, {"GET", "/stocks"}, {"GET", "/presend"}, {"GET", "/account"}, {"POST", "/stocks/register"},
		} {
			var form url.Values
			if r.method == "POST" {
				form = url.Values{}
			}
			if resp, _ := h.do(c, r.method, r.path, form, nil); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/account/two-factor" {
				t.Fatalf("%s %s before enrolling: %d %s", r.method, r.path, resp.StatusCode, resp.Header.Get("Location"))
			}
		}
		// Support is not a required role.
		s := h.client()
		h.signIn(s, "sam", testPassword)
		if resp, _ := h.do(s, "GET", "/account", nil, nil); resp.StatusCode != 200 {
			t.Fatalf("support user's account page: %d", resp.StatusCode)
		}

		_, page := h.do(c, "GET", "/account/two-factor", nil, nil)
		if !strings.Contains(page, `id="two-factor-required"`) {
			t.Fatal("the enrolment page does not say it is required")
		}
		h.enrolByPage(c, clk)
		if resp, _ := h.do(c, "GET", "/account", nil, nil); resp.StatusCode != 200 {
			t.Fatalf("account page after enrolling: %d", resp.StatusCode)
		}

		// The admin resets olivia's factor: her session ends and she must
		// enrol again.
		var u models.User
		db.Gorm.Where("username = ?", "olivia").Take(&u)
		h.do(a, "POST", "/admin/two-factor/reset", url.Values{"user_id": {"1"}}, nil) // unconfirmed: nothing
		if ok, _ := h.tf.Enrolled(t.Context(), u.ID); !ok {
			t.Fatal("an unconfirmed reset removed the factor")
		}
		_, adminPage := h.do(a, "GET", "/admin/two-factor", nil, nil)
		if !strings.Contains(adminPage, "two-factor-user-") || !strings.Contains(adminPage, "olivia") {
			t.Fatalf("admin page does not list olivia:\n%s", adminPage)
		}
		resp, _ = h.do(a, "POST", "/admin/two-factor/reset", url.Values{"user_id": {strconv.FormatInt(u.ID, 10)}, "confirm": {"reset"}}, nil)
		if resp.StatusCode != http.StatusSeeOther || h.countAudit(twofactor.ActionReset) != 1 {
			t.Fatalf("reset: %d", resp.StatusCode)
		}
		if resp, _ := h.do(c, "GET", "/stocks", nil, nil); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
			t.Fatalf("olivia's session after the reset: %d %s", resp.StatusCode, resp.Header.Get("Location"))
		}
		c = h.client()
		h.signIn(c, "olivia", testPassword) // no factor: signed in, but only to enrol
		if resp, _ := h.do(c, "GET", "/stocks", nil, nil); resp.Header.Get("Location") != "/account/two-factor" {
			t.Fatalf("after the reset: %d %s", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
}
