// Package handlers is the console's HTTP layer: one route table grouped by
// role, thin handlers that bind a form, call the domain and render a templ
// page, and the middleware every request passes through.
package handlers

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gorilla/sessions"

	"voucherconsole/internal/alerts"
	"voucherconsole/internal/config"
	"voucherconsole/internal/database"
	"voucherconsole/internal/deactivate"
	"voucherconsole/internal/i18n"
	"voucherconsole/internal/metrics"
	"voucherconsole/internal/presend"
	"voucherconsole/internal/stocks"
	"voucherconsole/internal/twofactor"
	"voucherconsole/internal/uploads"
	"voucherconsole/internal/users"
	"voucherconsole/internal/wxops"
	"voucherconsole/internal/wxpay"
)

// Deps is what the handlers need from the rest of the console.
type Deps struct {
	Config   config.Config
	DB       *database.DB
	Users    *users.Service
	Catalog  *i18n.Catalog
	Sessions sessions.Store
	Logger   *slog.Logger
	Metrics  *metrics.Metrics
	Stocks   *stocks.Service
	WX       *wxpay.Client
	Ops      *wxops.Store
	Now      func() time.Time

	Deactivate *deactivate.Service // /stocks/{id}/deactivate
	Presend    *presend.Service    // /presend
	Uploads    *uploads.Service    // /stocks/{id}/uploads/new, /uploads/{id}
	Alerts     *alerts.Service     // /alerts, the unread count in the navigation
	TwoFactor  *twofactor.Service  // /login/two-factor, /account/two-factor, /admin/two-factor
}

// Server is the console's HTTP application.
type Server struct {
	Deps
	engine *gin.Engine
	rules  map[routeKey]access
	loc    *time.Location
}

// New builds the gin engine with every route and its access rule.
func New(d Deps) *Server {
	if d.Now == nil {
		d.Now = time.Now
	}
	gin.SetMode(gin.ReleaseMode)
	s := &Server{Deps: d, engine: gin.New(), rules: map[routeKey]access{}, loc: d.Config.Location()}
	s.engine.HandleMethodNotAllowed = false
	s.engine.Use(s.requestContext, s.recoverPanics, s.loadSession, s.authorize)
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
	return cop.Handler(s.engine)
}
