package handlers

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"voucherconsole/internal/database"
)

// unavailable answers a request that failed because the database is
// unreachable for now (PostgreSQL restarting, the network cut): 503 with a
// page saying so and when to retry, never a 500. It reports whether err was
// such a failure.
func (s *Server) unavailable(c *gin.Context, err error) bool {
	if !database.Unavailable(err) {
		return false
	}
	s.log(c).Warn("database unavailable", "err", err)
	if _, ok := c.Get(ctxLocale); !ok {
		// The session's user could not be loaded: the browser's language.
		c.Set(ctxLocale, s.resolveLocale(c, nil))
	}
	c.Header("Retry-After", "5")
	c.Header("Cache-Control", "no-store")
	p := s.page(c, "error.unavailable_title")
	s.render(c, http.StatusServiceUnavailable, errorPage(p, http.StatusServiceUnavailable, "error.unavailable_title", "error.unavailable"))
	c.Abort()
	return true
}
