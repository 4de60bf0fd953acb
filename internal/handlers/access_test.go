package handlers_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/database"
	"voucherconsole/internal/models"
	"voucherconsole/internal/testdb"
)

// Who may use each route. Every route registered on the engine must appear
// here: a new route without an entry fails TestRouteAccess.
const (
	anon     = "anonymous"
	operator = "operator"
	manager  = "manager"
	support  = "support"
	admin    = "admin"
)

var everyone = []string{anon, operator, manager, support, admin}
var signedInUsers = []string{operator, manager, support, admin}

var routeAccess = map[string][]string{
	"GET /healthz":      everyone,
	"GET /readyz":       everyone,
	"GET /metrics":      everyone,
	"GET /static/*file": everyone,
	"GET /login":        everyone,
	"POST /login":       everyone,
	"POST /language":    everyone,
	"GET /":             everyone, // anonymous visitors are sent to sign in by the page itself

	// The sign-in's second step: open to all, the handlers check the
	// password step (without one they send to /login).
	"GET /login/two-factor":          everyone,
	"POST /login/two-factor":         everyone,
	"POST /login/two-factor/cancel":  everyone,
	"GET /account/two-factor":        signedInUsers,
	"POST /account/two-factor":       signedInUsers,
	"GET /account/two-factor/qr.png": signedInUsers,
	"GET /admin/two-factor":          {admin},
	// Approvals: request 1 does not exist, so allowed users get 404.
	"GET /approvals":                 {operator, manager},
	"GET /approvals/:id":             {operator, manager},
	"POST /approvals/:id/withdraw":   {operator, manager},
	"POST /approvals/:id/approve":    {manager},
	"POST /approvals/:id/reject":     {manager},
	"GET /admin/approvals":           {admin},
	"POST /admin/approvals":          {admin}, // without its form's marker it changes nothing
	"POST /admin/two-factor":         {admin}, // without its form's marker it changes nothing
	"POST /admin/two-factor/reset":   {admin}, // without a user and a confirmation it changes nothing
	"POST /logout":                   signedInUsers,
	"GET /account":                   signedInUsers,
	"GET /account/password":          signedInUsers,
	"POST /account/password":         signedInUsers,
	"POST /account/sessions/:id/end": signedInUsers,
	"GET /stocks":                    {operator, manager, support},
	"GET /stocks/:id":                {operator, manager, support},
	"GET /stocks/new":                {operator, manager},
	"POST /stocks/new":               {operator, manager},
	"GET /stocks/register":           {operator, manager},
	"POST /stocks/register":          {operator, manager},
	"POST /stocks/:id/refresh":       {operator, manager},

	// Alerts: everyone signed in sees those meant for them.
	"GET /alerts":                signedInUsers,
	"POST /alerts/read":          signedInUsers,
	"POST /stocks/:id/threshold": {operator, manager},

	// Deactivation and pre-send tokens: operators (and managers).
	"GET /stocks/:id/deactivate":  {operator, manager},
	"POST /stocks/:id/deactivate": {operator, manager},
	"GET /presend":                {operator, manager},
	"POST /presend":               {operator, manager},
	"GET /presend/:id":            {operator, manager},

	// Code uploads: operators upload and act on them, readers follow them.
	"GET /stocks/:id/uploads/new": {operator, manager},
	"POST /stocks/:id/uploads":    {operator, manager},
	"GET /uploads/:id":            {operator, manager, support},
	"GET /uploads/:id/progress":   {operator, manager, support},
	"GET /uploads/:id/report.csv": {operator, manager}, // codes: not support
	"GET /uploads/:id/file":       {operator, manager},
	"POST /uploads/:id/start":     {operator, manager},
	"POST /uploads/:id/abandon":   {operator, manager},
	"POST /uploads/:id/cancel":    {operator, manager},
	"POST /uploads/:id/resume":    {operator, manager},

	// The audit log: managers only (an operator or support user gets 403,
	// audited as denied).
	"GET /audit":            {manager},
	"GET /audit/export.csv": {manager},
	"GET /audit/verify":     {manager},
	"POST /audit/verify":    {manager},
	// User administration: admins only. The POSTs below reach user 1 with
	// an empty form: each then changes nothing (a confirmation or a role is
	// required, and enabling an enabled user is no change).
	"GET /admin/wxpay":                     {admin},
	"POST /admin/wxpay/test":               {admin},
	"GET /admin/users":                     {admin},
	"GET /admin/users/new":                 {admin},
	"GET /admin/users/locks":               {admin},
	"POST /admin/users/locks/lift":         {admin},
	"POST /admin/users":                    {admin},
	"GET /admin/users/:id":                 {admin},
	"POST /admin/users/:id/roles":          {admin},
	"POST /admin/users/:id/disable":        {admin},
	"POST /admin/users/:id/enable":         {admin},
	"POST /admin/users/:id/reset-password": {admin},
}

// concretePath fills a route pattern's parameters.
func concretePath(pattern string) string {
	var parts []string
	for _, seg := range strings.Split(pattern, "/") {
		switch {
		case strings.HasPrefix(seg, ":"):
			seg = "1"
		case strings.HasPrefix(seg, "*"):
			seg = "app.css"
		}
		parts = append(parts, seg)
	}
	return strings.Join(parts, "/")
}

// TestRouteAccess walks every route the engine has, as every kind of user,
// on a fully wired console: each answers as its rule says, and none with a
// server error.
func TestRouteAccess(t *testing.T) {
	h := newHarness(t, testdb.SQLite(t))
	for _, r := range []string{operator, manager, support, admin} {
		role, _ := models.ParseRole(r)
		h.addUser(r+"-user", role)
	}
	routes := h.srv.Engine().Routes()
	if len(routes) == 0 {
		t.Fatal("no routes enumerated")
	}
	signedIn := &sessionsByRole{h: h, clients: map[string]*http.Client{}}
	for _, rt := range routes {
		key := rt.Method + " " + rt.Path
		allowed, ok := routeAccess[key]
		if !ok {
			t.Errorf("route %s has no expected access in this test: add it to routeAccess", key)
			continue
		}
		for _, who := range everyone {
			t.Run(key+"/"+who, func(t *testing.T) {
				c := signedIn.client(t, who)
				if rt.Method != http.MethodGet {
					defer signedIn.check(who) // a POST may have ended the session (sign-out)
				}
				var form url.Values
				if rt.Method == http.MethodPost {
					form = url.Values{}
				}
				before := h.countAudit(audit.ActionAccessDenied)
				anonBefore := anonymousRefusals(h)
				resp, _ := h.do(c, rt.Method, concretePath(rt.Path), form, nil)
				if resp.StatusCode >= 500 {
					t.Fatalf("%s as %s: status %d: a server error is never an acceptable answer", key, who, resp.StatusCode)
				}
				refused := resp.StatusCode == http.StatusForbidden ||
					(resp.StatusCode == http.StatusSeeOther && strings.HasPrefix(resp.Header.Get("Location"), "/login?next="))
				want := contains(allowed, who)
				if refused == want {
					t.Fatalf("%s as %s: status %d (Location %q); allowed = %v", key, who, resp.StatusCode, resp.Header.Get("Location"), want)
				}
				// A signed-in user's refusal is audited; anonymous ones are
				// counted, and audited at most once per client and interval.
				if refused && who != anon && h.countAudit(audit.ActionAccessDenied) != before+1 {
					t.Fatalf("refusal of %s to %s was not audited as denied", key, who)
				}
				if refused && who == anon && (anonymousRefusals(h) != anonBefore+1 || h.countAudit(audit.ActionAccessDenied) > before+1) {
					t.Fatalf("anonymous refusal of %s: counted %v (was %v), %d audit entries", key, anonymousRefusals(h), anonBefore, h.countAudit(audit.ActionAccessDenied))
				}
			})
		}
	}
}

// sessionsByRole keeps one signed-in client per kind of user, so that the
// route walk does not hash a password for each of its few hundred requests.
type sessionsByRole struct {
	h       *harness
	clients map[string]*http.Client
}

func (s *sessionsByRole) client(t *testing.T, who string) *http.Client {
	t.Helper()
	if who == anon {
		return s.h.client()
	}
	if c, ok := s.clients[who]; ok {
		return c
	}
	c := s.h.client()
	if resp := s.h.signIn(c, who+"-user", testPassword); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in as %s: %d", who, resp.StatusCode)
	}
	s.clients[who] = c
	return c
}

// check forgets who's client unless its session still works.
func (s *sessionsByRole) check(who string) {
	c, ok := s.clients[who]
	if !ok {
		return
	}
	if resp, _ := s.h.do(c, http.MethodGet, "/account", nil, nil); resp.StatusCode != http.StatusOK {
		delete(s.clients, who)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// A browser POST from another site is refused on every state-changing route,
// signed in or not.
func TestCrossOriginPostRefused(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		h := newHarness(t, db)
		h.addUser("mia", models.RoleManager, models.RoleAdmin)
		c := h.client()
		h.signIn(c, "mia", testPassword)
		for _, rt := range h.srv.Engine().Routes() {
			if rt.Method == http.MethodGet {
				continue
			}
			for _, hdr := range []http.Header{
				{"Sec-Fetch-Site": {"cross-site"}},
				{"Origin": {"https://evil.example"}},
			} {
				resp, _ := h.do(c, rt.Method, concretePath(rt.Path), url.Values{}, hdr)
				if resp.StatusCode != http.StatusForbidden {
					t.Errorf("cross-origin %s %s with %v: %d, want 403", rt.Method, rt.Path, hdr, resp.StatusCode)
				}
			}
		}
		// The session still works: the refused sign-out did nothing.
		if resp, body := h.do(c, "GET", "/", nil, nil); resp.StatusCode != 200 || !strings.Contains(body, "mia") {
			t.Fatalf("session after refused cross-origin requests: %d", resp.StatusCode)
		}
	})
}

// anonymousRefusals is the console_anonymous_refused_total counter, all
// reasons together.
func anonymousRefusals(h *harness) float64 {
	var n float64
	for _, reason := range []string{"sign_in_required", "not_allowed"} {
		var m dto.Metric
		_ = h.srv.Metrics.AnonymousRefused.WithLabelValues(reason).Write(&m)
		n += m.GetCounter().GetValue()
	}
	return n
}
