// Package handlers is the console's HTTP layer: one route table grouped by
// role, thin handlers that bind a form, call the domain and render a templ
// page, and the middleware every request passes through.
package handlers

import (
	"crypto/subtle"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	gsessions "github.com/gorilla/sessions"
	"github.com/klauspost/compress/gzhttp"

	"voucherconsole/internal/alerts"
	"voucherconsole/internal/approvals"
	"voucherconsole/internal/audit"
	"voucherconsole/internal/config"
	"voucherconsole/internal/database"
	"voucherconsole/internal/deactivate"
	"voucherconsole/internal/i18n"
	"voucherconsole/internal/metrics"
	"voucherconsole/internal/monitor"
	"voucherconsole/internal/presend"
	"voucherconsole/internal/sessions"
	"voucherconsole/internal/stocks"
	"voucherconsole/internal/twofactor"
	"voucherconsole/internal/uploads"
	"voucherconsole/internal/users"
	"voucherconsole/internal/wxconn"
)

// Deps is what the handlers need from the rest of the console.
type Deps struct {
	Config   config.Config
	DB       *database.DB
	Users    *users.Service
	Catalog  *i18n.Catalog
	Sessions gsessions.Store // the flash-message cookie
	// SessionStore keeps the sign-in sessions; nil: one on DB with the
	// configured idle timeout and lifetime.
	SessionStore *sessions.Store
	Logger       *slog.Logger
	Metrics      *metrics.Metrics
	Stocks       *stocks.Service
	Now          func() time.Time

	Deactivate *deactivate.Service // /stocks/{id}/deactivate
	Presend    *presend.Service    // /presend
	Uploads    *uploads.Service    // /stocks/{id}/uploads/new, /uploads/{id}
	Alerts     *alerts.Service     // /alerts, the unread count in the navigation
	Monitor    *monitor.Monitor    // the overview on the home page
	TwoFactor  *twofactor.Service  // /login/two-factor, /account/two-factor, /admin/two-factor
	Approvals  *approvals.Service  // /approvals, /admin/approvals
	WxConn     *wxconn.Service     // /admin/wxpay
	// AuditVerifier runs the integrity page's verifications; nil gets one
	// on DB (whoever builds the server closes it).
	AuditVerifier *audit.Verifier // /audit/verify
}

// Server is the console's HTTP application.
type Server struct {
	Deps
	engine *gin.Engine
	rules  map[routeKey]access
	// sessions are the sign-in sessions (Deps.SessionStore, or one built
	// on DB from the settings).
	sessions *sessions.Store
	// anonAudits limits audit entries of anonymous refusals per client.
	anonAudits *oncePer
	loc        *time.Location
}

// New builds the gin engine with every route and its access rule.
func New(d Deps) *Server {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.AuditVerifier == nil && d.DB != nil {
		d.AuditVerifier = &audit.Verifier{DB: d.DB.Gorm}
	}
	gin.SetMode(gin.ReleaseMode)
	s := &Server{Deps: d, engine: gin.New(), rules: map[routeKey]access{}, loc: d.Config.Location(), sessions: d.SessionStore}
	s.anonAudits = newOncePer(anonymousAuditInterval, anonymousAuditClients)
	if s.sessions == nil {
		s.sessions = &sessions.Store{DB: d.DB.Gorm, Now: d.Now, IdleTimeout: d.Config.SessionIdleTimeout, Lifetime: d.Config.SessionLifetime}
	}
	s.engine.HandleMethodNotAllowed = false
	// The client address (audited, throttled on) is the connection's unless
	// it comes from a proxy the settings name: gin would otherwise believe
	// any X-Forwarded-For. The setting was validated at start-up.
	proxies, _ := config.ParseProxies(d.Config.TrustedProxies)
	if err := s.engine.SetTrustedProxies(proxies); err != nil {
		_ = s.engine.SetTrustedProxies(nil)
	}
	s.engine.Use(s.requestContext, s.recoverPanics, s.checkInput, s.loadSession, s.authorize)
	s.engine.NoRoute(s.notFound)
	s.routes()
	return s
}

// Engine exposes the gin engine (tests enumerate its routes).
func (s *Server) Engine() *gin.Engine { return s.engine }

// Handler is the engine behind cross-origin protection: a browser request
// from another site that would change state is refused before routing.
func (s *Server) Handler() http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Logger.Warn("cross-origin request refused", "method", r.Method, "path", r.URL.Path, "origin", r.Header.Get("Origin"))
		http.Error(w, "403 cross-origin request refused / 跨站请求已拒绝", http.StatusForbidden)
	}))
	return s.securityHeaders(headAsGet(cop.Handler(compress(s.engine))))
}

// compress gzips pages and assets for clients that accept it (klauspost's
// gzhttp: it skips small and already-compressed replies, sets Vary, and
// keeps Flush working for the streamed CSV export).
func compress(h http.Handler) http.Handler {
	wrap, err := gzhttp.NewWrapper(gzhttp.MinSize(1024))
	if err != nil {
		return gzhttp.GzipHandler(h)
	}
	return wrap(h)
}

// metrics serves /metrics on the console's address: not at all when the
// metrics have a listener of their own (CONSOLE_METRICS_ADDR), and only with
// the bearer token when one is set (CONSOLE_METRICS_TOKEN).
func (s *Server) metrics(c *gin.Context) {
	if s.Config.MetricsAddr != "" {
		s.notFound(c)
		return
	}
	s.MetricsHandler().ServeHTTP(c.Writer, c.Request)
}

// MetricsHandler is the Prometheus handler behind the bearer token, if one
// is set; Serve also mounts it on CONSOLE_METRICS_ADDR.
func (s *Server) MetricsHandler() http.Handler {
	h := s.Metrics.Handler()
	token := s.Config.MetricsToken
	if token == "" {
		return h
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			http.Error(w, "401 unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}
