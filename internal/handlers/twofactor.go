package handlers

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"voucherconsole/internal/models"
	"voucherconsole/internal/twofactor"
	"voucherconsole/web/templates"
)

// The sign-in's second step. After the password a user with a second
// factor is not signed in: the session holds only who passed the password
// (and when, and the session version), and /login/two-factor asks for the
// code. Only a right code starts the signed-in session.
const (
	sessPendingUID     = "tfa_uid"
	sessPendingVersion = "tfa_sv"
	sessPendingAt      = "tfa_at"
	sessPendingNext    = "tfa_next"
	// secondStepTimeout is how long the password step stays valid.
	secondStepTimeout = 5 * time.Minute
)

// maxCodeInput bounds the code field: longer input is no code.
const maxCodeInput = 32

// secondStep is called by login once the password is right: a user with a
// second factor is sent to the code step instead of being signed in. It
// reports whether it answered the request.
func (s *Server) secondStep(c *gin.Context, u *models.User, next string) bool {
	enrolled, err := s.TwoFactor.Enrolled(c.Request.Context(), u.ID)
	if err != nil {
		s.serverError(c, err)
		return true
	}
	if !enrolled {
		return false
	}
	sess, _ := s.Sessions.Get(c.Request, sessionName)
	for k := range sess.Values {
		delete(sess.Values, k)
	}
	sess.Values[sessPendingUID] = u.ID
	sess.Values[sessPendingVersion] = u.SessionVersion
	sess.Values[sessPendingAt] = s.Now().Unix()
	sess.Values[sessPendingNext] = safeReturn(next)
	if err := sess.Save(c.Request, c.Writer); err != nil {
		s.serverError(c, err)
		return true
	}
	redirect(c, "/login/two-factor")
	return true
}

// pendingUser is the user who passed the password step of this session, or
// nil (none, expired, or the user changed since).
func (s *Server) pendingUser(c *gin.Context) (*models.User, string) {
	sess, _ := s.Sessions.Get(c.Request, sessionName)
	id, ok := sess.Values[sessPendingUID].(int64)
	if !ok {
		return nil, ""
	}
	at, _ := sess.Values[sessPendingAt].(int64)
	if s.Now().Sub(time.Unix(at, 0)) > secondStepTimeout {
		return nil, ""
	}
	u, err := s.Users.ByID(c.Request.Context(), id)
	version, _ := sess.Values[sessPendingVersion].(int64)
	if err != nil || u.Disabled || u.SessionVersion != version {
		return nil, ""
	}
	next, _ := sess.Values[sessPendingNext].(string)
	return u, next
}

// secondStepPage is GET /login/two-factor.
func (s *Server) secondStepPage(c *gin.Context) {
	if currentUser(c) != nil {
		redirect(c, "/")
		return
	}
	u, _ := s.pendingUser(c)
	if u == nil {
		redirect(c, "/login")
		return
	}
	p := s.page(c, "twofactor.step_title")
	s.render(c, http.StatusOK, templates.SecondStepPage(templates.SecondStepProps{Page: p, Username: u.Username}))
}

// secondStepVerify is POST /login/two-factor: a right code (or an unused
// recovery code) signs the user in; a wrong one is counted and refused.
func (s *Server) secondStepVerify(c *gin.Context) {
	u, next := s.pendingUser(c)
	if u == nil {
		redirect(c, "/login")
		return
	}
	code := c.PostForm("code")
	p := s.page(c, "twofactor.step_title")
	props := templates.SecondStepProps{Page: p, Username: u.Username}
	if code == "" || len(code) > maxCodeInput {
		props.Error = p.T.T("twofactor.err.code_required")
		s.render(c, http.StatusUnprocessableEntity, templates.SecondStepPage(props))
		return
	}
	ac := s.auditContext(c)
	id := u.ID
	ac.ActorID, ac.Actor = &id, u.Username
	_, err := s.TwoFactor.Verify(c.Request.Context(), ac, u, code)
	switch {
	case errors.Is(err, twofactor.ErrThrottled):
		props.Error = p.T.T("twofactor.err.throttled")
		s.render(c, http.StatusTooManyRequests, templates.SecondStepPage(props))
		return
	case errors.Is(err, twofactor.ErrBadCode):
		props.Error = p.T.T("twofactor.err.bad_code")
		s.render(c, http.StatusUnauthorized, templates.SecondStepPage(props))
		return
	case err != nil:
		s.serverError(c, err)
		return
	}
	s.beginSession(c, u, next)
}

// secondStepCancel is POST /login/two-factor/cancel: back to the password.
func (s *Server) secondStepCancel(c *gin.Context) {
	sess, _ := s.Sessions.Get(c.Request, sessionName)
	for _, k := range []string{sessPendingUID, sessPendingVersion, sessPendingAt, sessPendingNext} {
		delete(sess.Values, k)
	}
	_ = sess.Save(c.Request, c.Writer)
	redirect(c, "/login")
}

// twoFactorExempt are the routes a user who must enrol may still use: the
// enrolment itself, signing out, the language, and what is no page.
var twoFactorExempt = []string{
	"/account/two-factor", "/account/two-factor/qr.png", "/account/password", "/logout", "/language",
	"/login", "/login/two-factor", "/login/two-factor/cancel", "/static/*file", "/healthz", "/readyz", "/metrics",
}

// mustEnrol sends a signed-in user of a role that requires a second factor,
// not yet enrolled, to the enrolment page from every other page. It
// reports whether it answered the request.
func (s *Server) mustEnrol(c *gin.Context, u *models.User, path string) bool {
	if s.TwoFactor == nil || slices.Contains(twoFactorExempt, path) {
		return false
	}
	must, err := s.TwoFactor.MustEnroll(c.Request.Context(), u)
	if err != nil {
		s.serverError(c, err)
		return true
	}
	if must {
		c.Redirect(http.StatusSeeOther, "/account/two-factor")
		c.Abort()
	}
	return must
}

// twoFactorPage is GET /account/two-factor: the enrolment (QR code, secret
// as text) or, once enrolled, the status.
func (s *Server) twoFactorPage(c *gin.Context) {
	props, ok := s.twoFactorProps(c)
	if !ok {
		return
	}
	s.render(c, http.StatusOK, templates.TwoFactorPage(props))
}

func (s *Server) twoFactorProps(c *gin.Context) (templates.TwoFactorProps, bool) {
	u := currentUser(c)
	ctx := c.Request.Context()
	props := templates.TwoFactorProps{Page: s.page(c, "twofactor.title"), Errors: templates.FieldErrors{}}
	st, err := s.TwoFactor.StatusOf(ctx, u)
	if err != nil {
		s.serverError(c, err)
		return props, false
	}
	props.Required, props.Enrolled = st.Required, st.Enrolled
	props.MustEnrol = st.Required && !st.Enrolled
	if st.Enrolled {
		props.EnrolledAt, props.RecoveryLeft = s.localTime(st.ConfirmedAt), st.RecoveryLeft
		return props, true
	}
	en, err := s.TwoFactor.StartEnrolment(ctx, s.auditContext(c), u)
	if err != nil {
		s.serverError(c, err)
		return props, false
	}
	props.Secret = en.Secret
	return props, true
}

// twoFactorQR is GET /account/two-factor/qr.png: the enrolment's QR code,
// served as an image of this site (no inline data).
func (s *Server) twoFactorQR(c *gin.Context) {
	img, err := s.TwoFactor.QRCode(c.Request.Context(), currentUser(c))
	if errors.Is(err, twofactor.ErrNotEnrolled) || errors.Is(err, twofactor.ErrAlreadyEnrolled) {
		s.notFound(c)
		return
	}
	if err != nil {
		s.serverError(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Data(http.StatusOK, "image/png", img)
}

// twoFactorConfirm is POST /account/two-factor: the first code confirms the
// enrolment, and the recovery codes are shown, this once.
func (s *Server) twoFactorConfirm(c *gin.Context) {
	props, ok := s.twoFactorProps(c)
	if !ok {
		return
	}
	if props.Enrolled {
		redirect(c, "/account/two-factor")
		return
	}
	t := props.Page.T
	code := c.PostForm("code")
	if code == "" || len(code) > maxCodeInput {
		props.Errors["code"] = t.T("twofactor.err.code_required")
		s.render(c, http.StatusUnprocessableEntity, templates.TwoFactorPage(props))
		return
	}
	codes, err := s.TwoFactor.Confirm(c.Request.Context(), s.auditContext(c), currentUser(c), code)
	switch {
	case errors.Is(err, twofactor.ErrBadCode):
		props.Errors["code"] = t.T("twofactor.err.bad_code")
		s.render(c, http.StatusUnprocessableEntity, templates.TwoFactorPage(props))
		return
	case errors.Is(err, twofactor.ErrAlreadyEnrolled):
		redirect(c, "/account/two-factor")
		return
	case err != nil:
		s.serverError(c, err)
		return
	}
	props.Enrolled, props.MustEnrol, props.Secret, props.RecoveryCodes = true, false, "", codes
	props.Page.Flash = &templates.Flash{Kind: "success", Message: t.T("twofactor.enrolled")}
	s.render(c, http.StatusOK, templates.TwoFactorPage(props))
}

// adminTwoFactorPage is GET /admin/two-factor.
func (s *Server) adminTwoFactorPage(c *gin.Context) {
	ctx := c.Request.Context()
	p := s.page(c, "twofactor.admin_title")
	required, err := s.TwoFactor.RequiredRoles(ctx)
	if err != nil {
		s.serverError(c, err)
		return
	}
	enrolled, err := s.TwoFactor.EnrolledUsers(ctx)
	if err != nil {
		s.serverError(c, err)
		return
	}
	props := templates.AdminTwoFactorProps{Page: p}
	for _, r := range models.AllRoles {
		props.Roles = append(props.Roles, templates.TwoFactorRoleOption{
			Role: string(r), Label: p.T.T("role." + string(r)), Required: slices.Contains(required, r),
		})
	}
	for _, e := range enrolled {
		props.Users = append(props.Users, templates.TwoFactorUserRow{
			UserID: e.UserID, Username: e.Username, EnrolledAt: s.localTime(e.ConfirmedAt), RecoveryLeft: e.RecoveryLeft,
		})
	}
	s.render(c, http.StatusOK, templates.AdminTwoFactorPage(props))
}

// adminSetTwoFactorRoles is POST /admin/two-factor: the roles that require
// a second factor. A post without the form's marker changes nothing.
func (s *Server) adminSetTwoFactorRoles(c *gin.Context) {
	t := s.localizer(c)
	if c.PostForm("submitted") != "1" {
		redirect(c, "/admin/two-factor")
		return
	}
	var rs []models.Role
	for _, v := range c.PostFormArray("role") {
		r, ok := models.ParseRole(v)
		if !ok {
			s.setFlash(c, "error", t.T("twofactor.err.unknown_role"))
			redirect(c, "/admin/two-factor")
			return
		}
		rs = append(rs, r)
	}
	if err := s.TwoFactor.SetRequiredRoles(c.Request.Context(), s.auditContext(c), rs); err != nil {
		s.serverError(c, err)
		return
	}
	s.setFlash(c, "success", t.T("twofactor.admin_roles_saved"))
	redirect(c, "/admin/two-factor")
}

// adminResetTwoFactor is POST /admin/two-factor/reset: removes a user's
// second factor (confirm=reset required).
func (s *Server) adminResetTwoFactor(c *gin.Context) {
	t := s.localizer(c)
	id, err := strconv.ParseInt(c.PostForm("user_id"), 10, 64)
	if err != nil || id <= 0 || c.PostForm("confirm") != "reset" {
		s.setFlash(c, "error", t.T("twofactor.err.reset_unconfirmed"))
		redirect(c, "/admin/two-factor")
		return
	}
	err = s.TwoFactor.Reset(c.Request.Context(), s.auditContext(c), id)
	switch {
	case errors.Is(err, twofactor.ErrNotEnrolled):
		s.setFlash(c, "error", t.T("twofactor.err.not_enrolled"))
	case err != nil:
		s.serverError(c, err)
		return
	default:
		s.setFlash(c, "success", t.T("twofactor.admin_reset_done"))
	}
	redirect(c, "/admin/two-factor")
}
