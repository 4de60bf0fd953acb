package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/gin-gonic/gin"

	"voucherconsole/internal/i18n"
	"voucherconsole/internal/models"
	"voucherconsole/internal/users"
	"voucherconsole/web/templates"
)

// Session keys holding a one-time password until the admin's next page shows
// it, once. The session cookie is encrypted.
const (
	sessOTPUser = "otp_uid"
	sessOTP     = "otp_pw"
)

func (s *Server) adminUsersPage(c *gin.Context) {
	p := s.page(c, "users.title")
	list, err := s.Users.List(c.Request.Context())
	if err != nil {
		s.serverError(c, err)
		return
	}
	props := templates.AdminUsersProps{Page: p}
	for i := range list {
		u := &list[i]
		props.Users = append(props.Users, templates.AdminUserRow{
			ID: u.ID, Link: fmt.Sprintf("/admin/users/%d", u.ID), Username: u.Username,
			Roles: roleLabelsOf(p.T, u.RoleList()), Disabled: u.Disabled, MustChange: u.MustChangePassword,
			Created: u.CreatedAt.In(s.loc).Format("2006-01-02 15:04"),
		})
	}
	s.render(c, http.StatusOK, templates.AdminUsersPage(props))
}

func roleLabelsOf(t i18n.Localizer, rs []models.Role) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, t.T("role."+string(r)))
	}
	return out
}

// roleChoices are the role checkboxes, with checked ones ticked.
func roleChoices(t i18n.Localizer, checked []models.Role) []templates.RoleChoice {
	var out []templates.RoleChoice
	for _, r := range models.AllRoles {
		out = append(out, templates.RoleChoice{
			Value: string(r), Label: t.T("role." + string(r)), Help: t.T("users.role_help." + string(r)),
			Checked: containsRole(checked, r),
		})
	}
	return out
}

func containsRole(rs []models.Role, r models.Role) bool {
	for _, x := range rs {
		if x == r {
			return true
		}
	}
	return false
}

// formRoles reads the roles ticked in a form; unknown values are an error.
func formRoles(c *gin.Context) ([]models.Role, bool) {
	var rs []models.Role
	for _, v := range c.PostFormArray("roles") {
		r, ok := models.ParseRole(v)
		if !ok {
			return nil, false
		}
		rs = append(rs, r)
	}
	return rs, true
}

func (s *Server) adminUserNewPage(c *gin.Context) {
	p := s.page(c, "users.add_title")
	s.render(c, http.StatusOK, templates.AdminUserNewPage(templates.AdminUserNewProps{Page: p, Roles: roleChoices(p.T, nil)}))
}

// adminUserAdd adds a user with a one-time password, shown once on the next
// page.
func (s *Server) adminUserAdd(c *gin.Context) {
	t := s.localizer(c)
	username := c.PostForm("username")
	rs, rolesOK := formRoles(c)
	errs := templates.FieldErrors{}
	switch {
	case username == "":
		errs["username"] = t.T("form.required")
	case users.ValidateUsername(username) != nil:
		errs["username"] = t.T("users.err.username_invalid")
	}
	switch {
	case !rolesOK:
		errs["roles"] = t.T("users.err.bad_role")
	case len(rs) == 0:
		errs["roles"] = t.T("users.err.no_roles")
	}
	if len(errs) == 0 {
		u, pw, err := s.Users.AddWithOneTimePassword(c.Request.Context(), s.auditContext(c), username, rs)
		switch {
		case errors.Is(err, users.ErrInvalidUsername):
			errs["username"] = t.T("users.err.username_invalid")
		case errors.Is(err, users.ErrUsernameTaken):
			errs["username"] = t.T("users.err.username_taken")
		case errors.Is(err, users.ErrNoRoles):
			errs["roles"] = t.T("users.err.no_roles")
		case err != nil:
			s.serverError(c, err)
			return
		default:
			s.keepOneTimePassword(c, u.ID, pw)
			s.setFlash(c, "success", t.T("users.added", u.Username))
			redirect(c, fmt.Sprintf("/admin/users/%d", u.ID))
			return
		}
	}
	p := s.page(c, "users.add_title")
	s.render(c, http.StatusUnprocessableEntity, templates.AdminUserNewPage(templates.AdminUserNewProps{
		Page: p, Username: username, Roles: roleChoices(p.T, rs), Errors: errs,
	}))
}

// keepOneTimePassword holds a new one-time password in the (encrypted)
// session until the next page shows it; setFlash or the redirect saves it.
func (s *Server) keepOneTimePassword(c *gin.Context, uid int64, pw string) {
	sess, _ := s.Sessions.Get(c.Request, sessionName)
	sess.Values[sessOTPUser] = uid
	sess.Values[sessOTP] = pw
}

// takeOneTimePassword returns the one-time password kept for user uid and
// forgets it: it is shown once.
func (s *Server) takeOneTimePassword(c *gin.Context, uid int64) string {
	sess, _ := s.Sessions.Get(c.Request, sessionName)
	id, _ := sess.Values[sessOTPUser].(int64)
	pw, _ := sess.Values[sessOTP].(string)
	if pw == "" || id != uid {
		return ""
	}
	delete(sess.Values, sessOTPUser)
	delete(sess.Values, sessOTP)
	if err := sess.Save(c.Request, c.Writer); err != nil {
		s.log(c).Error("forget one-time password", "err", err)
	}
	return pw
}

// adminTarget loads the user named by the :id parameter, answering 404 when
// there is none.
func (s *Server) adminTarget(c *gin.Context) (*models.User, bool) {
	return fromPath(s, c, s.Users.ByID, users.ErrNotFound)
}

func (s *Server) adminUserPage(c *gin.Context) {
	u, ok := s.adminTarget(c)
	if !ok {
		return
	}
	pw := s.takeOneTimePassword(c, u.ID)
	s.renderAdminUser(c, http.StatusOK, u, u.RoleList(), pw, nil)
}

// renderAdminUser shows a user's page: state, roles and the forms that
// change them; checked are the roles ticked in the roles form.
func (s *Server) renderAdminUser(c *gin.Context, status int, u *models.User, checked []models.Role, otp string, errs templates.FieldErrors) {
	p := s.page(c, "users.user_title")
	props := templates.AdminUserProps{
		Page: p, ID: u.ID, Username: u.Username, RoleLabels: roleLabelsOf(p.T, u.RoleList()),
		Roles: roleChoices(p.T, checked), Disabled: u.Disabled, MustChange: u.MustChangePassword,
		Created:         u.CreatedAt.In(s.loc).Format("2006-01-02 15:04:05"),
		Updated:         u.UpdatedAt.In(s.loc).Format("2006-01-02 15:04:05"),
		OneTimePassword: otp, Errors: errs,
	}
	if me := currentUser(c); me != nil {
		props.IsSelf = me.ID == u.ID
		if s.allowed(me, http.MethodGet, "/audit") {
			props.HistoryURL = "/audit?" + url.Values{qTargetType: {"user"}, qTargetID: {strconv.FormatInt(u.ID, 10)}}.Encode()
		}
	}
	s.render(c, status, templates.AdminUserPage(props))
}

// adminRefused re-renders the user's page with a 422 and the message next
// to the form that failed.
func (s *Server) adminRefused(c *gin.Context, u *models.User, field, msgID string, checked []models.Role) {
	t := s.localizer(c)
	s.renderAdminUser(c, http.StatusUnprocessableEntity, u, checked, "", templates.FieldErrors{field: t.T(msgID)})
}

func (s *Server) adminUserDisable(c *gin.Context) { s.adminSetDisabled(c, true) }
func (s *Server) adminUserEnable(c *gin.Context)  { s.adminSetDisabled(c, false) }

// adminSetDisabled disables (after confirmation) or enables a user. A
// disabled user's sessions end on their next request.
func (s *Server) adminSetDisabled(c *gin.Context, disabled bool) {
	u, ok := s.adminTarget(c)
	if !ok {
		return
	}
	t := s.localizer(c)
	if disabled {
		if u.ID == currentUser(c).ID {
			s.adminRefused(c, u, "confirm_disable", "users.err.self_disable", u.RoleList())
			return
		}
		if c.PostForm("confirm_disable") == "" {
			s.adminRefused(c, u, "confirm_disable", "users.err.confirm", u.RoleList())
			return
		}
	}
	_, changed, err := s.Users.SetDisabled(c.Request.Context(), s.auditContext(c), u.ID, disabled)
	switch {
	case errors.Is(err, users.ErrLastAdmin):
		s.adminRefused(c, u, "confirm_disable", "users.err.last_admin", u.RoleList())
		return
	case err != nil:
		s.serverError(c, err)
		return
	}
	msg := "users.enabled"
	if disabled {
		msg = "users.disabled"
	}
	if !changed {
		msg = "users.no_change"
	}
	s.setFlash(c, "success", t.T(msg, u.Username))
	redirect(c, fmt.Sprintf("/admin/users/%d", u.ID))
}

// adminResetPassword gives the user a new one-time password (shown once on
// the next page); they must change it at next sign-in.
func (s *Server) adminResetPassword(c *gin.Context) {
	u, ok := s.adminTarget(c)
	if !ok {
		return
	}
	if u.ID == currentUser(c).ID {
		s.adminRefused(c, u, "confirm_reset", "users.err.self_reset", u.RoleList())
		return
	}
	if c.PostForm("confirm_reset") == "" {
		s.adminRefused(c, u, "confirm_reset", "users.err.confirm", u.RoleList())
		return
	}
	_, pw, err := s.Users.ResetPassword(c.Request.Context(), s.auditContext(c), u.ID)
	if err != nil {
		s.serverError(c, err)
		return
	}
	s.keepOneTimePassword(c, u.ID, pw)
	s.setFlash(c, "success", s.localizer(c).T("users.reset", u.Username))
	redirect(c, fmt.Sprintf("/admin/users/%d", u.ID))
}

// adminSetRoles replaces a user's roles. An admin who changes their own
// roles stays signed in (under the new session version), and leaves for
// the home page if they are no longer an admin.
func (s *Server) adminSetRoles(c *gin.Context) {
	u, ok := s.adminTarget(c)
	if !ok {
		return
	}
	rs, valid := formRoles(c)
	switch {
	case !valid:
		s.adminRefused(c, u, "roles", "users.err.bad_role", u.RoleList())
		return
	case len(rs) == 0:
		s.adminRefused(c, u, "roles", "users.err.no_roles", rs)
		return
	}
	updated, changed, err := s.Users.SetRoles(c.Request.Context(), s.auditContext(c), u.ID, rs)
	switch {
	case errors.Is(err, users.ErrLastAdmin):
		s.adminRefused(c, u, "roles", "users.err.last_admin", rs)
		return
	case errors.Is(err, users.ErrNoRoles):
		s.adminRefused(c, u, "roles", "users.err.no_roles", rs)
		return
	case err != nil:
		s.serverError(c, err)
		return
	}
	t := s.localizer(c)
	next := fmt.Sprintf("/admin/users/%d", u.ID)
	if changed && u.ID == currentUser(c).ID {
		if err := s.keepSessionVersion(c, updated.SessionVersion); err != nil {
			s.serverError(c, err)
			return
		}
		if !updated.HasRole(models.RoleAdmin) {
			next = "/"
		}
	}
	msg := "users.roles_changed"
	if !changed {
		msg = "users.no_change"
	}
	s.setFlash(c, "success", t.T(msg, u.Username))
	redirect(c, next)
}
