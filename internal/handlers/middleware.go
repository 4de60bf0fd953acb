package handlers

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	gsessions "github.com/gorilla/sessions"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/i18n"
	"voucherconsole/internal/models"
	"voucherconsole/internal/sessions"
	"voucherconsole/internal/textcheck"
	"voucherconsole/web/templates"
)

// Context keys set by the middleware.
const (
	ctxRequestID = "request_id"
	ctxLogger    = "logger"
	ctxUser      = "user"
	ctxLocale    = "locale"
	ctxSessionID = "session_id"
)

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// requestContext gives each request an ID (echoed in X-Request-ID and shown
// on every page), a logger carrying it, an access log line and metrics.
func (s *Server) requestContext(c *gin.Context) {
	start := time.Now()
	id := newRequestID()
	c.Set(ctxRequestID, id)
	c.Header("X-Request-ID", id)
	logger := s.Logger.With("request_id", id)
	c.Set(ctxLogger, logger)

	c.Next()

	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	status := c.Writer.Status()
	elapsed := time.Since(start)
	method := methodLabel(c.Request.Method)
	s.Metrics.HTTPRequests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	s.Metrics.HTTPDuration.WithLabelValues(route, method).Observe(elapsed.Seconds())
	logger.Info("request", "method", methodLabel(c.Request.Method), "path", c.Request.URL.Path, "route", route,
		"status", status, "duration_ms", elapsed.Milliseconds(), "client_ip", c.ClientIP())
}

// log returns the request's logger.
func (s *Server) log(c *gin.Context) *slog.Logger {
	if l, ok := c.Get(ctxLogger); ok {
		return l.(*slog.Logger)
	}
	return s.Logger
}

func requestID(c *gin.Context) string { return c.GetString(ctxRequestID) }

// recoverPanics turns a panic into a logged 500 page; the panic text never
// reaches the user.
func (s *Server) recoverPanics(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				panic(r)
			}
			s.serverError(c, fmt.Errorf("panic: %v", r))
		}
	}()
	c.Next()
}

// Cookies. The session cookie carries only the random token of a session
// kept on the server (internal/sessions); the flash cookie, encrypted and
// signed by gorilla/sessions, carries one-time messages between a POST and
// the page it redirects to, and nothing that grants access.
const (
	sessionCookie    = "console_session"
	sessionName      = "console_flash" // the gorilla/sessions cookie of flash messages
	sessFlashKind    = "flash_kind"
	sessFlashMessage = "flash_msg"
	localeCookie     = "console_lang"
)

// loadSession resolves the signed-in user (if any) and the request's locale.
// A session that is revoked, idle too long or past its lifetime, or whose
// user is gone, disabled or has a new session version (password reset,
// disable, role change), is ended here, on its next request.
func (s *Server) loadSession(c *gin.Context) {
	if token, err := c.Cookie(sessionCookie); err == nil && token != "" {
		ctx := c.Request.Context()
		sess, err := s.sessions.Lookup(ctx, token)
		switch {
		case errors.Is(err, sessions.ErrNotFound):
			s.clearSessionCookie(c)
		case err != nil:
			s.serverError(c, err)
			c.Abort()
			return
		default:
			u, err := s.Users.ByID(ctx, sess.UserID)
			switch {
			case err == nil && !u.Disabled && u.SessionVersion == sess.SessionVersion:
				c.Set(ctxUser, u)
				c.Set(ctxSessionID, sess.ID)
			case err != nil && !isNotFound(err):
				s.serverError(c, err)
				c.Abort()
				return
			default:
				if err := s.sessions.Revoke(ctx, sess.ID); err != nil {
					s.serverError(c, err)
					c.Abort()
					return
				}
				s.clearSessionCookie(c)
			}
		}
	}
	c.Set(ctxLocale, s.resolveLocale(c, currentUser(c)))
	c.Next()
}

// currentSessionID is the signed-in request's session, 0 when anonymous.
func currentSessionID(c *gin.Context) int64 {
	id, _ := c.Get(ctxSessionID)
	n, _ := id.(int64)
	return n
}

// startSession signs the user in on this browser: a new server-side
// session and its cookie. Whatever session the browser had is revoked, so a
// session fixed before sign-in is useless after it, and the flash cookie
// of whoever used the browser before is dropped.
func (s *Server) startSession(c *gin.Context, u *models.User) error {
	ctx := c.Request.Context()
	if old := currentSessionID(c); old != 0 {
		if err := s.sessions.Revoke(ctx, old); err != nil {
			return err
		}
	}
	token, _, err := s.sessions.Create(ctx, nil, u.ID, u.SessionVersion, c.ClientIP(), c.Request.UserAgent())
	if err != nil {
		return err
	}
	http.SetCookie(c.Writer, gsessions.NewCookie(sessionCookie, token, s.cookieOptions(int(s.sessions.MaxAge().Seconds()))))
	s.clearFlashCookie(c)
	return nil
}

// endSession revokes the request's session and clears its cookie.
func (s *Server) endSession(c *gin.Context) error {
	if id := currentSessionID(c); id != 0 {
		if err := s.sessions.Revoke(c.Request.Context(), id); err != nil {
			return err
		}
	}
	s.clearSessionCookie(c)
	s.clearFlashCookie(c)
	return nil
}

// keepSessionVersion moves the request's session to the user's new session
// version (they changed their own password or roles and stay signed in).
func (s *Server) keepSessionVersion(c *gin.Context, version int64) error {
	return s.sessions.SetVersion(c.Request.Context(), currentSessionID(c), version)
}

func (s *Server) cookieOptions(maxAge int) *gsessions.Options {
	return &gsessions.Options{Path: "/", MaxAge: maxAge, HttpOnly: true, Secure: s.Config.BehindTLS, SameSite: http.SameSiteLaxMode}
}

func (s *Server) clearSessionCookie(c *gin.Context) {
	http.SetCookie(c.Writer, gsessions.NewCookie(sessionCookie, "", s.cookieOptions(-1)))
}

func (s *Server) clearFlashCookie(c *gin.Context) {
	if _, err := c.Request.Cookie(sessionName); err == nil {
		http.SetCookie(c.Writer, gsessions.NewCookie(sessionName, "", s.cookieOptions(-1)))
	}
}

// resolveLocale: the user's setting, then the language cookie, then the
// browser's Accept-Language, then Simplified Chinese.
func (s *Server) resolveLocale(c *gin.Context, u *models.User) i18n.Locale {
	if u != nil {
		if l, ok := i18n.Parse(u.Locale); ok {
			return l
		}
	}
	if v, err := c.Cookie(localeCookie); err == nil {
		if l, ok := i18n.Parse(v); ok {
			return l
		}
	}
	return i18n.FromAcceptLanguage(c.GetHeader("Accept-Language"))
}

func currentUser(c *gin.Context) *models.User {
	if v, ok := c.Get(ctxUser); ok {
		return v.(*models.User)
	}
	return nil
}

func (s *Server) localizer(c *gin.Context) i18n.Localizer {
	l, _ := c.Get(ctxLocale)
	loc, _ := l.(i18n.Locale)
	if loc == "" {
		loc = i18n.Chinese
	}
	return s.Catalog.For(loc)
}

// auditContext is who is acting and from where, for audit entries.
func (s *Server) auditContext(c *gin.Context) audit.Context {
	ac := audit.Context{
		ClientIP:  c.ClientIP(),
		UserAgent: c.Request.UserAgent(),
		RequestID: requestID(c),
	}
	if u := currentUser(c); u != nil {
		id := u.ID
		ac.ActorID, ac.Actor = &id, u.Username
		for _, r := range u.RoleList() {
			ac.Roles = append(ac.Roles, string(r))
		}
	}
	return ac
}

// securityHeaders sets the headers every response carries, whatever answers
// it (a page, a download, a static file, the cross-origin refusal, a 404):
// a Content-Security-Policy allowing only the console's own scripts and
// styles (no inline script, no framing), nosniff, a Referrer-Policy that
// keeps paths and query strings on the console, and HSTS when served over
// TLS. Everything but the static assets is also kept out of caches: pages
// show codes, tokens and users.
func (s *Server) securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if s.Config.BehindTLS {
			h.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
		}
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// ContentSecurityPolicy is the policy of every response. Scripts and styles
// come only from the console's static files; the templates hold no inline
// script, event handler or style attribute.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// headAsGet answers HEAD like GET (same status and headers, no body): the
// route table has GET routes only, and a HEAD must not fall through to 404.
func headAsGet(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		r2 := r.Clone(r.Context())
		r2.Method = http.MethodGet
		next.ServeHTTP(headWriter{w}, r2)
	})
}

// headWriter drops the body of a GET answering a HEAD.
type headWriter struct{ http.ResponseWriter }

func (w headWriter) Write(p []byte) (int, error)       { return len(p), nil }
func (w headWriter) WriteString(s string) (int, error) { return len(s), nil }
func (w headWriter) Unwrap() http.ResponseWriter       { return w.ResponseWriter }

// knownMethods are the request methods metrics name; any other becomes
// "other", so a client inventing methods cannot create unbounded series.
var knownMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace}

func methodLabel(m string) string {
	if slices.Contains(knownMethods, m) {
		return m
	}
	return "other"
}

// Request body limits. A route not named in bodyLimits accepts formBodyLimit;
// the code upload accepts the configured file size plus room for the form.
const (
	formBodyLimit   = 64 << 10
	signInBodyLimit = 4 << 10
	// maxFieldBytes bounds any one form or query value before a handler
	// sees it; each form bounds its fields more tightly.
	maxFieldBytes = 16 << 10
)

var bodyLimits = map[string]int64{
	"/login":            signInBodyLimit,
	"/login/two-factor": signInBodyLimit,
	"/language":         signInBodyLimit,
	"/logout":           signInBodyLimit,
	"/account/password": signInBodyLimit,
}

// uploadRoute takes a multipart file; its handler bounds and reads it.
const uploadRoute = "/stocks/:id/uploads"

func (s *Server) bodyLimit(route string) int64 {
	if route == uploadRoute {
		return s.uploadMaxBytes() + 1<<20
	}
	if n, ok := bodyLimits[route]; ok {
		return n
	}
	return formBodyLimit
}

// checkInput bounds the request body per route and refuses, before any
// handler, a form or query value that is not text: invalid UTF-8, NUL or
// another control character (line breaks and tabs aside), or longer than
// any field of any form. The refusal is a 400 page naming the field, in the
// user's language. The fields a form knows (formTextFields) are left to its
// validation, which shows the error next to the field.
func (s *Server) checkInput(c *gin.Context) {
	r := c.Request
	limit := s.bodyLimit(c.FullPath())
	if r.ContentLength > limit {
		s.refuseInput(c, http.StatusRequestEntityTooLarge, "", "input.too_large")
		return
	}
	r.Body = http.MaxBytesReader(c.Writer, r.Body, limit)
	if r.Method == http.MethodPost && !strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/") {
		if err := r.ParseForm(); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				s.refuseInput(c, http.StatusRequestEntityTooLarge, "", "input.too_large")
				return
			}
			s.refuseInput(c, http.StatusBadRequest, "", "input.malformed")
			return
		}
	}
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		s.refuseInput(c, http.StatusBadRequest, "", "input.malformed")
		return
	}
	for _, vals := range []url.Values{query, r.PostForm} {
		for name, vs := range vals {
			if textcheck.Line(name, 128) != nil {
				s.refuseInput(c, http.StatusBadRequest, "", "input.malformed")
				return
			}
			for _, v := range vs {
				if len(v) > maxFieldBytes {
					s.refuseInput(c, http.StatusRequestEntityTooLarge, name, "input.field_too_long")
					return
				}
				if textcheck.Text(v, 0) != nil && !formChecksText(r.Method, c.FullPath(), name) {
					s.refuseInput(c, http.StatusBadRequest, name, "input.field_bad_text")
					return
				}
			}
		}
	}
	c.Next()
}

// refuseInput answers a request whose input cannot be accepted.
func (s *Server) refuseInput(c *gin.Context, status int, field, msgID string) {
	s.Metrics.InputRefused.WithLabelValues(strconv.Itoa(status)).Inc()
	p := s.page(c, "input.refused_title")
	msg := p.T.T(msgID)
	if field != "" {
		msg = p.T.T(msgID, field)
	}
	c.Header("Connection", "close") // an unread body is not worth keeping the connection for
	s.render(c, status, templates.ErrorPage(templates.ErrorProps{
		Page: p, Status: status, Heading: p.T.T("input.refused_title"), Message: msg,
	}))
	c.Abort()
}

// Anonymous refusals are audited at most once per client address per
// anonymousAuditInterval; at most anonymousAuditClients addresses are
// remembered (beyond, refusals are only counted).
const (
	anonymousAuditInterval = 10 * time.Minute
	anonymousAuditClients  = 10000
)

// oncePer lets one event per key through per interval. It is per process:
// with several instances a client gets at most one entry per instance and
// interval, still a bounded number.
type oncePer struct {
	mu       sync.Mutex
	interval time.Duration
	max      int
	last     map[string]time.Time
}

func newOncePer(interval time.Duration, max int) *oncePer {
	return &oncePer{interval: interval, max: max, last: map[string]time.Time{}}
}

func (o *oncePer) allow(key string, now time.Time) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if t, ok := o.last[key]; ok && now.Sub(t) < o.interval {
		return false
	}
	if len(o.last) >= o.max {
		for k, t := range o.last {
			if now.Sub(t) >= o.interval {
				delete(o.last, k)
			}
		}
		if len(o.last) >= o.max {
			return false
		}
	}
	o.last[key] = now
	return true
}
