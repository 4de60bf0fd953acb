package handlers

import (
	"errors"
	"net/http"

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

// login checks the credentials and starts a fresh session. The old session's
// values are discarded and a new session ID issued, so a session fixed before
// sign-in is useless after it.
func (s *Server) login(c *gin.Context) {
	var f loginForm
	_ = c.ShouldBind(&f)
	u, err := s.Users.Authenticate(c.Request.Context(), s.auditContext(c), f.Username, f.Password)
	if err != nil {
		status, msg := http.StatusUnauthorized, "auth.bad_credentials"
		switch {
		case errors.Is(err, users.ErrThrottled):
			status, msg = http.StatusTooManyRequests, "auth.throttled"
		case !errors.Is(err, users.ErrBadCredentials):
			s.serverError(c, err)
			return
		}
		p := s.page(c, "auth.sign_in_title")
		s.render(c, status, templates.LoginPage(templates.LoginProps{
			Page: p, Username: f.Username, Next: safeReturn(f.Next), Error: p.T.T(msg),
		}))
		return
	}
	if s.secondStep(c, u, f.Next) { // twofactor.go: a code is asked for first
		return
	}
	s.beginSession(c, u, f.Next)
}

// beginSession signs u in on a fresh session. The old session's values are
// discarded and a new session ID issued, so a session fixed before sign-in
// is useless after it.
func (s *Server) beginSession(c *gin.Context, u *models.User, next string) {
	sess, _ := s.Sessions.Get(c.Request, sessionName)
	for k := range sess.Values {
		delete(sess.Values, k)
	}
	sess.Values[sessUserID] = u.ID
	sess.Values[sessVersion] = u.SessionVersion
	sess.Values[sessID] = newRequestID() + newRequestID()
	sess.Options.MaxAge = sessionMaxAgeSecs
	if err := sess.Save(c.Request, c.Writer); err != nil {
		s.serverError(c, err)
		return
	}
	if u.MustChangePassword {
		redirect(c, "/account/password")
		return
	}
	redirect(c, safeReturn(next))
}
