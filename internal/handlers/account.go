package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/i18n"
	"voucherconsole/internal/users"
	"voucherconsole/web/templates"
)

// accountPage is the user's own account: their password, and the sessions
// they are signed in with, each of which they can end.
func (s *Server) accountPage(c *gin.Context) {
	p := s.page(c, "account.title")
	list, err := s.sessions.Active(c.Request.Context(), currentUser(c).ID)
	if err != nil {
		s.serverError(c, err)
		return
	}
	props := templates.AccountProps{Page: p}
	current := currentSessionID(c)
	for _, se := range list {
		props.Sessions = append(props.Sessions, templates.AccountSession{
			ID: se.ID, Current: se.ID == current, ClientIP: se.ClientIP, UserAgent: se.UserAgent,
			SignedIn: se.CreatedAt.In(s.loc).Format("2006-01-02 15:04"),
			LastSeen: se.LastSeenAt.In(s.loc).Format("2006-01-02 15:04"),
			Expires:  se.ExpiresAt.In(s.loc).Format("2006-01-02 15:04"),
		})
	}
	s.render(c, http.StatusOK, templates.AccountPage(props))
}

// endSession ends one of the user's other sessions (POST
// /account/sessions/:id/end), or all of them (:id "others").
func (s *Server) endOwnSession(c *gin.Context) {
	u := currentUser(c)
	ctx := c.Request.Context()
	t := s.localizer(c)
	current := currentSessionID(c)
	var ended int64
	if c.Param("id") == "others" {
		n, err := s.sessions.RevokeOthers(ctx, nil, u.ID, current)
		if err != nil {
			s.serverError(c, err)
			return
		}
		ended = n
	} else {
		id, err := strconv.ParseInt(c.Param("id"), 10, 64)
		if err != nil || id <= 0 || id == current {
			s.notFound(c)
			return
		}
		ok, err := s.sessions.RevokeOwn(ctx, u.ID, id)
		if err != nil {
			s.serverError(c, err)
			return
		}
		if !ok {
			s.notFound(c)
			return
		}
		ended = 1
	}
	if ended > 0 {
		rec := s.auditContext(c).Record(audit.ActionSessionEnd, audit.Success, audit.TargetUser, fmt.Sprint(u.ID))
		rec.Detail = map[string]any{"sessions_ended": ended, "which": c.Param("id")}
		if _, err := audit.Append(ctx, s.DB.Gorm, s.Now(), rec); err != nil {
			s.serverError(c, err)
			return
		}
	}
	s.setFlash(c, "success", t.T("account.sessions_ended", ended))
	redirect(c, "/account")
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
			// This session goes on under the new version; every other one
			// ends now, not merely on its next request.
			if err := s.keepSessionVersion(c, updated.SessionVersion); err != nil {
				s.serverError(c, err)
				return
			}
			if _, err := s.sessions.RevokeOthers(c.Request.Context(), nil, u.ID, currentSessionID(c)); err != nil {
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
