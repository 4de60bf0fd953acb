package handlers

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"voucherconsole/internal/models"
	"voucherconsole/web/templates"
)

// adminLocksPage is /admin/users/locks: the usernames and client addresses
// locked after too many failed sign-ins.
func (s *Server) adminLocksPage(c *gin.Context) {
	locks, err := s.Users.Locks(c.Request.Context())
	if err != nil {
		s.serverError(c, err)
		return
	}
	p := s.page(c, "locks.title")
	props := templates.SignInLocksProps{Page: p}
	for _, l := range locks {
		row := templates.SignInLock{Scope: l.Scope, ScopeLabel: p.T.T("locks.scope." + l.Scope), Subject: l.Subject, Attempts: l.Attempts}
		if l.LockedUntil != nil {
			row.LockedUntil = l.LockedUntil.In(s.loc).Format("2006-01-02 15:04:05")
		}
		props.Locks = append(props.Locks, row)
	}
	s.render(c, http.StatusOK, templates.SignInLocksPage(props))
}

// adminLiftLock lifts one lock (audited) and returns to the list.
func (s *Server) adminLiftLock(c *gin.Context) {
	scope, subject := c.PostForm("scope"), c.PostForm("subject")
	if (scope != models.ThrottleUsername && scope != models.ThrottleClient) || subject == "" || len(subject) > 128 {
		s.notFound(c)
		return
	}
	lifted, err := s.Users.Unlock(c.Request.Context(), s.auditContext(c), scope, subject)
	if err != nil {
		s.serverError(c, err)
		return
	}
	if lifted {
		s.setFlash(c, "success", s.localizer(c).T("locks.lifted", subject))
	}
	redirect(c, "/admin/users/locks")
}
