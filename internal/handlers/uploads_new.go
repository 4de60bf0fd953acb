package handlers

import (
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"voucherconsole/internal/codefile"
	"voucherconsole/internal/i18n"
	"voucherconsole/internal/models"
	"voucherconsole/internal/stocks"
	"voucherconsole/internal/uploads"
	"voucherconsole/web/templates"
)

func (s *Server) uploadNewProps(c *gin.Context, st *models.Stock) templates.UploadNewProps {
	p := s.page(c, "uploads.new_title")
	props := templates.UploadNewProps{
		Page: p, StockID: st.ID, StockName: displayName(p.T, st), StockKind: p.T.T("stocks.kind." + string(st.Kind)),
		StockWxID: st.StockID, MaxSize: humanBytes(s.uploadMaxBytes()), CanUpload: stocks.CanUpload(st),
	}
	if kind, ok := uploads.KindOf(st); ok {
		props.Rules = p.T.T("uploads.rules."+string(st.Kind), kind.MaxLen())
	}
	return props
}

// uploadNewPage is /stocks/{id}/uploads/new: pick a code file.
func (s *Server) uploadNewPage(c *gin.Context) {
	st, ok := s.stockFromPath(c)
	if !ok {
		return
	}
	props := s.uploadNewProps(c, st)
	status := http.StatusOK
	if !props.CanUpload {
		status = http.StatusConflict
	}
	s.render(c, status, templates.UploadNewPage(props))
}

// uploadCreate receives a code file, keeps it and checks it (nothing is
// sent), then shows the check.
func (s *Server) uploadCreate(c *gin.Context) {
	st, ok := s.stockFromPath(c)
	if !ok {
		return
	}
	props := s.uploadNewProps(c, st)
	t := props.Page.T
	refuse := func(status int, msg string) {
		props.Error = msg
		s.render(c, status, templates.UploadNewPage(props))
	}
	if !props.CanUpload {
		refuse(http.StatusConflict, t.T("uploads.cannot_upload"))
		return
	}
	limit := s.uploadMaxBytes()
	// The file part may be as large as the limit; the rest of the form is
	// small.
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, limit+1<<20)
	mr, err := c.Request.MultipartReader()
	if err != nil {
		refuse(http.StatusBadRequest, t.T("uploads.err.no_file"))
		return
	}
	var u *uploads.Upload
	found := false
	for {
		part, err := mr.NextPart()
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				refuse(http.StatusRequestEntityTooLarge, t.T("uploads.err.too_large", humanBytes(limit)))
				return
			}
			break
		}
		if part.FormName() != "file" {
			part.Close()
			continue
		}
		if part.FileName() == "" {
			break
		}
		found = true
		uid := currentUser(c).ID
		ctx, ac := c.Request.Context(), s.auditContext(c)
		u, err = s.Uploads.Receive(ctx, ac, uploads.CheckInput{
			Stock: st, FileName: part.FileName(), Body: part, MaxBytes: limit, UserID: &uid,
		})
		part.Close()
		if err == nil {
			// Read the request to its end: only then does the server watch
			// the connection, and end the request's context (and so the
			// check) when the browser goes away.
			drainForm(mr, c.Request.Body)
			err = s.Uploads.CheckReceived(ctx, ac, u, st)
		}
		if err != nil {
			status, msg := s.checkError(t, err, limit)
			if status == 0 {
				if ctx.Err() != nil {
					return // nobody is waiting for the answer
				}
				s.serverError(c, err)
				return
			}
			refuse(status, msg)
			return
		}
		break
	}
	if !found {
		refuse(http.StatusUnprocessableEntity, t.T("uploads.err.no_file"))
		return
	}
	s.setFlash(c, "success", t.T("uploads.checked", u.FileName))
	redirect(c, "/uploads/"+strconv.FormatInt(u.ID, 10))
}

// drainForm reads what follows the file part: the rest of the form (small,
// and bounded by the request's MaxBytesReader) and the body's end.
func drainForm(mr *multipart.Reader, body io.Reader) {
	for {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		_, _ = io.Copy(io.Discard, p)
		p.Close()
	}
	_, _ = io.Copy(io.Discard, body)
}

// checkError words a refused file; status 0 means an internal error.
func (s *Server) checkError(t i18n.Localizer, err error, limit int64) (int, string) {
	var tl *uploads.TooLargeError
	var mbe *http.MaxBytesError
	var fe *uploads.FileError
	switch {
	case errors.As(err, &tl), errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, t.T("uploads.err.too_large", humanBytes(limit))
	case errors.Is(err, uploads.ErrEmptyFile):
		return http.StatusUnprocessableEntity, t.T("uploads.err.empty")
	case errors.Is(err, uploads.ErrNoRows):
		return http.StatusUnprocessableEntity, t.T("uploads.err.no_rows")
	case errors.Is(err, uploads.ErrCannotUpload):
		return http.StatusConflict, t.T("uploads.cannot_upload")
	case errors.As(err, &fe):
		switch {
		case errors.Is(fe.Err, codefile.ErrNotText):
			return http.StatusUnprocessableEntity, t.T("uploads.err.not_text", fe.Line)
		case errors.Is(fe.Err, codefile.ErrNoCodeColumn):
			return http.StatusUnprocessableEntity, t.T("uploads.err.no_code_column", fe.Line)
		case errors.Is(fe.Err, codefile.ErrAmbiguousCodeColumn):
			return http.StatusUnprocessableEntity, t.T("uploads.err.ambiguous_column", fe.Line)
		}
		return http.StatusUnprocessableEntity, t.T("uploads.err.unreadable", fe.Line)
	}
	return 0, ""
}
