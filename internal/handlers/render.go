package handlers

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/a-h/templ"
	"github.com/gin-gonic/gin"

	"voucherconsole/internal/models"
	"voucherconsole/internal/users"
	"voucherconsole/web/templates"
)

// navEntries are the navigation bar's possible entries; each shows only when
// the route table lets the user open it.
var navEntries = []struct{ path, label string }{
	{"/", "nav.home"},
	{"/stocks", "nav.stocks"},
	{"/presend", "nav.presend"},
	{"/approvals", "approvals.title"},
	{"/audit", "nav.audit"},
	{"/alerts", "alerts.nav"},
	{"/admin/users", "nav.users"},
	{"/admin/wxpay", "nav.wxpay"},
	{"/admin/approvals", "approvals.policy_title"},
	{"/admin/two-factor", "twofactor.admin_title"},
}

// page builds the data every page needs, in one place.
func (s *Server) page(c *gin.Context, titleID string) templates.Page {
	t := s.localizer(c)
	p := templates.Page{
		T:         t,
		Title:     t.T(titleID),
		RequestID: requestID(c),
		Path:      c.Request.URL.Path,
	}
	if u := currentUser(c); u != nil {
		p.Username = u.Username
		for _, r := range u.RoleList() {
			p.Roles = append(p.Roles, t.T("role."+string(r)))
		}
		if !u.MustChangePassword {
			for _, e := range navEntries {
				if s.allowed(u, http.MethodGet, e.path) {
					active := c.Request.URL.Path == e.path || (e.path != "/" && strings.HasPrefix(c.Request.URL.Path, e.path+"/"))
					item := templates.NavItem{Path: e.path, Label: t.T(e.label), Active: active}
					if e.path == "/alerts" {
						item.Badge = s.unreadAlerts(c, u)
					}
					p.Nav = append(p.Nav, item)
				}
			}
		}
		p.Flash = s.takeFlash(c)
	}
	return p
}

// render writes a templ component with a status. The page is rendered into
// a buffer first: a component that fails midway leaves nothing sent, and
// the answer is the 500 page, never half a page under the status meant for
// a whole one.
func (s *Server) render(c *gin.Context, status int, comp templ.Component) {
	var buf bytes.Buffer
	contentType := "text/html; charset=utf-8"
	if err := comp.Render(c.Request.Context(), &buf); err != nil {
		s.log(c).Error("render", "status", status, "err", err)
		buf.Reset()
		status = http.StatusInternalServerError
		p := s.page(c, "error.server_title")
		if err := errorPage(p, status, "error.server_title", "error.server").Render(c.Request.Context(), &buf); err != nil {
			s.log(c).Error("render the error page", "err", err)
			buf.Reset()
			buf.WriteString("500 internal server error / 服务器内部错误 (" + requestID(c) + ")")
			contentType = "text/plain; charset=utf-8"
		}
	}
	c.Header("Content-Type", contentType)
	c.Header("Cache-Control", "no-store")
	c.Status(status)
	if _, err := c.Writer.Write(buf.Bytes()); err != nil {
		s.log(c).Debug("write page", "err", err) // the client went away
	}
}

func errorPage(p templates.Page, status int, headingID, messageID string) templ.Component {
	return templates.ErrorPage(templates.ErrorProps{
		Page: p, Status: status, Heading: p.T.T(headingID), Message: p.T.T(messageID),
	})
}

func (s *Server) notFound(c *gin.Context) {
	p := s.page(c, "error.not_found_title")
	s.render(c, http.StatusNotFound, errorPage(p, http.StatusNotFound, "error.not_found_title", "error.not_found"))
}

// serverError logs err with the request ID and shows a generic page that
// names only the request ID: internal error text never reaches the user.
func (s *Server) serverError(c *gin.Context, err error) {
	if s.unavailable(c, err) { // unavailable.go: 503 while the database is unreachable
		return
	}
	s.log(c).Error("request failed", "err", err)
	p := s.page(c, "error.server_title")
	s.render(c, http.StatusInternalServerError, errorPage(p, http.StatusInternalServerError, "error.server_title", "error.server"))
	c.Abort()
}

// setFlash stores a one-time message for the next page.
func (s *Server) setFlash(c *gin.Context, kind, message string) {
	sess, _ := s.Sessions.Get(c.Request, sessionName)
	sess.Values[sessFlashKind] = kind
	sess.Values[sessFlashMessage] = message
	if err := sess.Save(c.Request, c.Writer); err != nil {
		s.log(c).Error("save flash", "err", err)
	}
}

func (s *Server) takeFlash(c *gin.Context) *templates.Flash {
	sess, _ := s.Sessions.Get(c.Request, sessionName)
	msg, ok := sess.Values[sessFlashMessage].(string)
	if !ok || msg == "" {
		return nil
	}
	kind, _ := sess.Values[sessFlashKind].(string)
	delete(sess.Values, sessFlashKind)
	delete(sess.Values, sessFlashMessage)
	if err := sess.Save(c.Request, c.Writer); err != nil {
		s.log(c).Error("clear flash", "err", err)
	}
	return &templates.Flash{Kind: kind, Message: msg}
}

// redirect answers 303 See Other, the right answer to a form POST.
func redirect(c *gin.Context, to string) {
	c.Redirect(http.StatusSeeOther, to)
}

func isNotFound(err error) bool { return errors.Is(err, users.ErrNotFound) }

func roleLabels(s *Server, c *gin.Context, u *models.User) []string {
	t := s.localizer(c)
	var out []string
	for _, r := range u.RoleList() {
		out = append(out, t.T("role."+string(r)))
	}
	return out
}

// fromPath loads the record named by the route's :id parameter with load,
// answering 404 when the parameter is not an ID or load reports notFound,
// and 500 on any other error. ok is false when a page was already written.
func fromPath[T any](s *Server, c *gin.Context, load func(ctx context.Context, id int64) (T, error), notFound error) (v T, ok bool) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		s.notFound(c)
		return v, false
	}
	v, err = load(c.Request.Context(), id)
	if errors.Is(err, notFound) {
		s.notFound(c)
		return v, false
	}
	if err != nil {
		s.serverError(c, err)
		return v, false
	}
	return v, true
}
