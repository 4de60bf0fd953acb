package handlers

import (
	"fmt"

	"github.com/gin-gonic/gin"

	"voucherconsole/internal/audit"
)

// logout ends the session and audits it.
func (s *Server) logout(c *gin.Context) {
	u := currentUser(c)
	rec := s.auditContext(c).Record(audit.ActionSignOut, audit.Success, audit.TargetUser, fmt.Sprint(u.ID))
	if _, err := audit.Append(c.Request.Context(), s.DB.Gorm, s.Now(), rec); err != nil {
		s.serverError(c, err)
		return
	}
	sess, _ := s.Sessions.Get(c.Request, sessionName)
	sess.Values = map[any]any{}
	sess.Options.MaxAge = -1
	if err := sess.Save(c.Request, c.Writer); err != nil {
		s.serverError(c, err)
		return
	}
	redirect(c, "/login")
}
