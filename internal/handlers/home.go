package handlers

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"voucherconsole/web/templates"
)

// homeLinks are the home page's shortcuts; each shows only when the route
// table lets the user open it.
var homeLinks = []struct{ path, label, desc string }{
	{"/stocks", "nav.stocks", "home.stocks_desc"},
	{"/stocks/new", "home.create_stock", "home.create_stock_desc"},
	{"/presend", "nav.presend", "home.presend_desc"},
	{"/audit", "nav.audit", "home.audit_desc"},
	{"/admin/users", "nav.users", "home.users_desc"},
}

func (s *Server) home(c *gin.Context) {
	u := currentUser(c)
	if u == nil {
		redirect(c, "/login")
		return
	}
	if u.MustChangePassword {
		redirect(c, "/account/password")
		return
	}
	p := s.page(c, "nav.home")
	props := templates.HomeProps{Page: p, Roles: roleLabels(s, c, u)}
	for _, l := range homeLinks {
		if s.allowed(u, http.MethodGet, l.path) {
			props.Links = append(props.Links, templates.HomeLink{Path: l.path, Label: p.T.T(l.label), Description: p.T.T(l.desc)})
		}
	}
	ov, err := s.overviewProps(c, p.T, u)
	if err != nil {
		s.serverError(c, err)
		return
	}
	props.Overview = ov
	s.render(c, http.StatusOK, templates.HomePage(props))
}
