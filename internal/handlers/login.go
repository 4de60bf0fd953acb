package handlers

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"voucherconsole/internal/models"
	"voucherconsole/internal/users"
	"voucherconsole/web/templates"
)

func (s *Server) loginPage(c *gin.Context) {
	if currentUser(c) != nil {
		redirect(c, "/")
		return
	}
	p := s.page(c, "auth.sign_in_title")
	s.render(c, http.StatusOK, templates.LoginPage(templates.LoginProps{Page: p, Next: safeReturn(c.Query("next"))}))
}

type loginForm struct {
	Username string `form:"username"`
	Password string `form:"password"`
	Next     string `form:"next"`
}

// maxPasswordBytes bounds a typed password (the sign-in body is capped at a
// few KB anyway).
const maxPasswordBytes = 1024

// login checks the credentials and starts a fresh server-side session; the
// browser's previous session, if any, is revoked. A username that cannot be
// one is refused before anything is counted, audited or echoed.
func (s *Server) login(c *gin.Context) {
	var f loginForm
	_ = c.ShouldBind(&f)
	p := s.page(c, "auth.sign_in_title")
	refuse := func(status int, username string, errs templates.FieldErrors, msgID string) {
		props := templates.LoginProps{Page: p, Username: username, Next: safeReturn(f.Next), Errors: errs}
		if msgID != "" {
			props.Error = p.T.T(msgID)
		}
		s.render(c, status, templates.LoginPage(props))
	}
	if users.ValidateUsername(f.Username) != nil {
		s.Metrics.InputRefused.WithLabelValues(strconv.Itoa(http.StatusUnprocessableEntity)).Inc()
		refuse(http.StatusUnprocessableEntity, "", templates.FieldErrors{"username": p.T.T("auth.username_invalid")}, "")
		return
	}
	if len(f.Password) > maxPasswordBytes {
		refuse(http.StatusUnprocessableEntity, f.Username, templates.FieldErrors{"password": p.T.T("input.too_long", maxPasswordBytes)}, "")
		return
	}
	u, err := s.Users.Authenticate(c.Request.Context(), s.auditContext(c), f.Username, f.Password)
	if err != nil {
		status, msg := http.StatusUnauthorized, "auth.bad_credentials"
		switch {
		case errors.Is(err, users.ErrThrottled):
			status, msg = http.StatusTooManyRequests, "auth.throttled"
			s.countThrottled("username")
		case errors.Is(err, users.ErrClientThrottled):
			status, msg = http.StatusTooManyRequests, "auth.client_throttled"
			s.countThrottled("client")
		case errors.Is(err, users.ErrBusy):
			status, msg = http.StatusTooManyRequests, "auth.busy"
			c.Header("Retry-After", "5")
		case !errors.Is(err, users.ErrBadCredentials):
			s.serverError(c, err)
			return
		}
		refuse(status, f.Username, nil, msg)
		return
	}
	if s.secondStep(c, u, f.Next) { // twofactor.go: a code is asked for first
		return
	}
	s.beginSession(c, u, f.Next)
}

// beginSession signs u in on a fresh server-side session (startSession:
// the browser's previous session is revoked, so a session fixed before
// sign-in is useless after it) and goes on to next.
func (s *Server) beginSession(c *gin.Context, u *models.User, next string) {
	if err := s.startSession(c, u); err != nil {
		s.serverError(c, err)
		return
	}
	if u.MustChangePassword {
		redirect(c, "/account/password")
		return
	}
	redirect(c, safeReturn(next))
}

func (s *Server) countThrottled(scope string) {
	s.Metrics.SignInThrottled.WithLabelValues(scope).Inc()
}
