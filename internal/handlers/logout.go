package handlers

import (
	"fmt"

	"github.com/gin-gonic/gin"

	"voucherconsole/internal/audit"
)

// logout ends the session on the server, so a copy of the cookie saved
// before is worthless, clears the cookie and audits it.
func (s *Server) logout(c *gin.Context) {
	u := currentUser(c)
	rec := s.auditContext(c).Record(audit.ActionSignOut, audit.Success, audit.TargetUser, fmt.Sprint(u.ID))
	if _, err := audit.Append(c.Request.Context(), s.DB.Gorm, s.Now(), rec); err != nil {
		s.serverError(c, err)
		return
	}
	if err := s.endSession(c); err != nil {
		s.serverError(c, err)
		return
	}
	redirect(c, "/login")
}
