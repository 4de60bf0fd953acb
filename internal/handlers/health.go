package handlers

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// healthz says the process is up.
func (s *Server) healthz(c *gin.Context) {
	c.String(http.StatusOK, "ok\n")
}

// readyz says whether the database answers.
func (s *Server) readyz(c *gin.Context) {
	if err := s.DB.Ping(c.Request.Context()); err != nil {
		s.log(c).Warn("readiness: database unreachable", "err", err)
		c.String(http.StatusServiceUnavailable, "database unreachable\n")
		return
	}
	c.String(http.StatusOK, "ready\n")
}
