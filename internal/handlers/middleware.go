package handlers

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/i18n"
	"voucherconsole/internal/models"
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
	s.Metrics.HTTPRequests.WithLabelValues(route, c.Request.Method, strconv.Itoa(status)).Inc()
	s.Metrics.HTTPDuration.WithLabelValues(route, c.Request.Method).Observe(elapsed.Seconds())
	logger.Info("request", "method", c.Request.Method, "path", c.Request.URL.Path, "route", route,
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

// Session keys.
const (
	sessionName       = "console_session"
	sessUserID        = "uid"
	sessVersion       = "sv"
	sessID            = "sid"
	sessFlashKind     = "flash_kind"
	sessFlashMessage  = "flash_msg"
	localeCookie      = "console_lang"
	sessionMaxAgeSecs = 12 * 60 * 60
)

// loadSession resolves the signed-in user (if any) and the request's locale.
// A session whose user is gone, disabled or whose session version changed
// (password reset, disable) is ended here, on its next request.
func (s *Server) loadSession(c *gin.Context) {
	sess, _ := s.Sessions.Get(c.Request, sessionName)
	if uid, ok := sess.Values[sessUserID].(int64); ok {
		u, err := s.Users.ByID(c.Request.Context(), uid)
		version, _ := sess.Values[sessVersion].(int64)
		switch {
		case err == nil && !u.Disabled && u.SessionVersion == version:
			c.Set(ctxUser, u)
			if sid, ok := sess.Values[sessID].(string); ok {
				c.Set(ctxSessionID, sid)
			}
		case err != nil && !isNotFound(err):
			s.serverError(c, err)
			c.Abort()
			return
		default:
			sess.Options.MaxAge = -1
			_ = sess.Save(c.Request, c.Writer)
		}
	}
	c.Set(ctxLocale, s.resolveLocale(c, currentUser(c)))
	c.Next()
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
