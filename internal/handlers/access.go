package handlers

import (
	"net/http"
	"net/url"
	"slices"

	"github.com/gin-gonic/gin"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/models"
)

// access is who may use a route. The zero value allows nobody.
type access struct {
	public   bool          // anyone, signed in or not
	signedIn bool          // any signed-in user
	roles    []models.Role // a signed-in user holding one of these
}

var (
	public   = access{public: true}
	signedIn = access{signedIn: true}
)

func roles(rs ...models.Role) access { return access{roles: rs} }

// allows reports whether u (nil: anonymous) may use a route under a.
func (a access) allows(u *models.User) bool {
	switch {
	case a.public:
		return true
	case u == nil:
		return false
	case a.signedIn:
		return true
	default:
		return u.HasAnyRole(a.roles...)
	}
}

type routeKey struct{ method, path string }

// group registers routes on the engine together with their access rule, so
// a route cannot exist without one.
type group struct {
	s    *Server
	rule access
}

func (s *Server) group(rule access) group { return group{s: s, rule: rule} }

func (g group) handle(method, path string, h gin.HandlerFunc) {
	g.s.rules[routeKey{method, path}] = g.rule
	g.s.engine.Handle(method, path, h)
}

func (g group) GET(path string, h gin.HandlerFunc)  { g.handle(http.MethodGet, path, h) }
func (g group) POST(path string, h gin.HandlerFunc) { g.handle(http.MethodPost, path, h) }

// allowed reports whether u may use method path (a registered route pattern).
func (s *Server) allowed(u *models.User, method, path string) bool {
	rule, ok := s.rules[routeKey{method, path}]
	return ok && rule.allows(u)
}

// authorize enforces the route table, denying by default: a route without a
// rule, or whose rule does not admit the user, is refused and audited.
// Anonymous GETs of protected pages are sent to sign in instead.
func (s *Server) authorize(c *gin.Context) {
	path := c.FullPath()
	if path == "" { // no route matched: NoRoute answers 404
		c.Next()
		return
	}
	u := currentUser(c)
	rule, ok := s.rules[routeKey{c.Request.Method, path}]
	if ok && rule.allows(u) {
		if u != nil && u.MustChangePassword && !rule.public && !slices.Contains(passwordChangeExempt, path) {
			c.Redirect(http.StatusSeeOther, "/account/password")
			c.Abort()
			return
		}
		if u != nil && !u.MustChangePassword && s.mustEnrol(c, u, path) { // twofactor.go
			return
		}
		c.Next()
		return
	}
	if u == nil && ok && c.Request.Method == http.MethodGet {
		s.auditDenied(c, "sign_in_required")
		c.Redirect(http.StatusSeeOther, "/login?next="+url.QueryEscape(c.Request.URL.RequestURI()))
		c.Abort()
		return
	}
	s.deny(c)
}

// passwordChangeExempt are the routes a user who must change a one-time
// password may still use.
var passwordChangeExempt = []string{"/account/password", "/logout", "/language"}

// deny answers 403 with a page in the user's language and an audit entry.
func (s *Server) deny(c *gin.Context) {
	s.auditDenied(c, "not_allowed")
	p := s.page(c, "error.forbidden_title")
	s.render(c, http.StatusForbidden, errorPage(p, http.StatusForbidden, "error.forbidden_title", "error.forbidden"))
	c.Abort()
}

// auditDenied records a refusal. What a signed-in user was refused is
// always audited; anonymous refusals are counted (a metric) and audited at
// most once per client address per interval, so a flood of anonymous
// requests cannot fill the append-only log.
func (s *Server) auditDenied(c *gin.Context, reason string) {
	if currentUser(c) == nil {
		s.Metrics.AnonymousRefused.WithLabelValues(reason).Inc()
		if !s.anonAudits.allow(c.ClientIP(), s.Now()) {
			return
		}
	}
	rec := s.auditContext(c).Record(audit.ActionAccessDenied, audit.Denied, audit.TargetRoute, c.Request.Method+" "+c.Request.URL.Path)
	rec.Detail = map[string]any{"reason": reason}
	if _, err := audit.Append(c.Request.Context(), s.DB.Gorm, s.Now(), rec); err != nil {
		s.log(c).Error("audit denied request", "err", err)
	}
}
