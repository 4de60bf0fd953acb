package handlers

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"voucherconsole/internal/i18n"
	"voucherconsole/internal/users"
	"voucherconsole/web/templates"
)

func (s *Server) accountPage(c *gin.Context) {
	s.render(c, http.StatusOK, templates.AccountPage(templates.AccountProps{Page: s.page(c, "account.title")}))
}

func (s *Server) passwordPage(c *gin.Context) {
	p := s.page(c, "account.password_title")
	s.render(c, http.StatusOK, templates.PasswordPage(templates.PasswordProps{Page: p, Required: currentUser(c).MustChangePassword}))
}

type passwordForm struct {
	Current string `form:"current_password"`
	New     string `form:"new_password"`
	Confirm string `form:"confirm_password"`
}

// changePassword sets the user's own password. The session continues under
// the new session version; other sessions of the user end.
func (s *Server) changePassword(c *gin.Context) {
	u := currentUser(c)
	var f passwordForm
	_ = c.ShouldBind(&f)
	p := s.page(c, "account.password_title")
	errs := templates.FieldErrors{}
	if f.Current == "" {
		errs["current_password"] = p.T.T("form.required")
	}
	if err := users.ValidatePassword(f.New); err != nil {
		errs["new_password"] = p.T.T("account.password_too_short", users.MinPasswordLength)
	}
	if f.Confirm != f.New {
		errs["confirm_password"] = p.T.T("account.password_mismatch")
	}
	if len(errs) == 0 {
		updated, err := s.Users.ChangePassword(c.Request.Context(), s.auditContext(c), u.ID, f.Current, f.New)
		switch {
		case errors.Is(err, users.ErrBadCredentials):
			errs["current_password"] = p.T.T("account.current_password_wrong")
		case errors.Is(err, users.ErrSamePassword):
			errs["new_password"] = p.T.T("account.password_same")
		case err != nil:
			s.serverError(c, err)
			return
		default:
			sess, _ := s.Sessions.Get(c.Request, sessionName)
			sess.Values[sessVersion] = updated.SessionVersion
			if err := sess.Save(c.Request, c.Writer); err != nil {
				s.serverError(c, err)
				return
			}
			s.setFlash(c, "success", p.T.T("account.password_changed"))
			redirect(c, "/")
			return
		}
	}
	s.render(c, http.StatusUnprocessableEntity, templates.PasswordPage(templates.PasswordProps{
		Page: p, Required: u.MustChangePassword, Errors: errs,
	}))
}

// setLanguage stores the chosen language: on the user when signed in, and in
// a cookie for the sign-in page.
func (s *Server) setLanguage(c *gin.Context) {
	back := safeReturn(c.PostForm("return"))
	l, ok := i18n.Parse(c.PostForm("locale"))
	if !ok {
		redirect(c, back)
		return
	}
	c.SetSameSite(http.SameSiteLaxMode)
	c.SetCookie(localeCookie, string(l), 365*24*60*60, "/", "", s.Config.BehindTLS, true)
	if u := currentUser(c); u != nil {
		if err := s.Users.SetLocale(c.Request.Context(), u.ID, string(l)); err != nil {
			s.serverError(c, err)
			return
		}
	}
	redirect(c, back)
}
