package handlers

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"voucherconsole/internal/uploads"
)

// uploadAction runs a state change on an upload and returns to its page; a
// refusal is shown on the page with 409.
func (s *Server) uploadAction(c *gin.Context, do func(u *uploads.Upload) (string, error)) {
	u, ok := s.uploadFromPath(c)
	if !ok {
		return
	}
	t := s.localizer(c)
	msg, err := do(u)
	if err != nil {
		var notice string
		switch {
		case errors.Is(err, uploads.ErrWrongState):
			notice = t.T("uploads.err.wrong_state")
		case errors.Is(err, uploads.ErrNothingToSend):
			notice = t.T("uploads.err.nothing_to_send")
		default:
			s.serverError(c, err)
			return
		}
		if fresh, gerr := s.Uploads.Get(c.Request.Context(), u.ID); gerr == nil {
			u = fresh
		}
		s.renderUpload(c, u, http.StatusConflict, notice)
		return
	}
	s.setFlash(c, "success", msg)
	redirect(c, "/uploads/"+strconv.FormatInt(u.ID, 10))
}

func (s *Server) uploadStart(c *gin.Context) {
	s.uploadAction(c, func(u *uploads.Upload) (string, error) {
		return s.localizer(c).T("uploads.started"), s.Uploads.Start(c.Request.Context(), s.auditContext(c), u.ID)
	})
}

func (s *Server) uploadAbandon(c *gin.Context) {
	s.uploadAction(c, func(u *uploads.Upload) (string, error) {
		return s.localizer(c).T("uploads.abandoned"), s.Uploads.Abandon(c.Request.Context(), s.auditContext(c), u.ID)
	})
}

func (s *Server) uploadCancel(c *gin.Context) {
	s.uploadAction(c, func(u *uploads.Upload) (string, error) {
		stopped, err := s.Uploads.Cancel(c.Request.Context(), s.auditContext(c), u.ID)
		if stopped {
			return s.localizer(c).T("uploads.cancelled"), err
		}
		return s.localizer(c).T("uploads.cancelling"), err
	})
}

func (s *Server) uploadResume(c *gin.Context) {
	s.uploadAction(c, func(u *uploads.Upload) (string, error) {
		return s.localizer(c).T("uploads.resumed"), s.Uploads.Resume(c.Request.Context(), s.auditContext(c), u.ID)
	})
}
