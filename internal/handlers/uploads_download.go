package handlers

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"voucherconsole/internal/uploads"
)

// attachment sets Content-Disposition for a download named name (RFC 6266,
// with an ASCII fallback).
func attachment(c *gin.Context, name string) {
	ascii := strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return '_'
		}
		return r
	}, name)
	c.Header("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	if ascii != name {
		c.Header("Content-Disposition", fmt.Sprintf(`attachment; filename="%s"; filename*=UTF-8''%s`, ascii, pathEscape(name)))
	}
}

func pathEscape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// uploadReport is /uploads/{id}/report.csv: every code that did not upload,
// with its row and reason, streamed as UTF-8 with a byte order mark.
func (s *Server) uploadReport(c *gin.Context) {
	u, ok := s.uploadFromPath(c)
	if !ok {
		return
	}
	if u.Status == uploads.StatusChecking || u.Status == uploads.StatusAbandoned {
		s.notFound(c)
		return
	}
	st, err := s.Stocks.Get(c.Request.Context(), u.StockRef)
	if err != nil {
		s.serverError(c, err)
		return
	}
	t := s.localizer(c)
	maxLen := s.maxLenOf(st)
	c.Header("Content-Type", "text/csv; charset=utf-8")
	c.Header("Cache-Control", "no-store")
	attachment(c, fmt.Sprintf("upload-%d-report.csv", u.ID))
	c.Status(http.StatusOK)
	text := uploads.ReportText{
		Header: []string{t.T("uploads.csv.row"), t.T("uploads.csv.code"), t.T("uploads.csv.reason_code"), t.T("uploads.csv.reason"), t.T("uploads.csv.detail")},
		Reason: func(l uploads.ReportLine) (string, string) { return problemReason(t, l, maxLen) },
	}
	if err := s.Uploads.WriteReport(c.Request.Context(), u, c.Writer, text); err != nil {
		// The status is sent; all that can be done is to log and cut the
		// response short, which the client sees as an incomplete download.
		s.log(c).Error("write upload report", "upload", u.ID, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// uploadFile is /uploads/{id}/file: the file as it was uploaded.
func (s *Server) uploadFile(c *gin.Context) {
	u, ok := s.uploadFromPath(c)
	if !ok {
		return
	}
	f, err := s.Uploads.OpenFile(c.Request.Context(), u)
	if errors.Is(err, uploads.ErrFileGone) {
		// Kept on the disk of the instance that received it, before files
		// were kept in the database.
		s.notFound(c)
		return
	}
	if err != nil {
		s.serverError(c, err)
		return
	}
	defer f.Close()
	c.Header("Content-Type", "text/csv")
	c.Header("X-Content-Type-Options", "nosniff")
	attachment(c, u.FileName)
	http.ServeContent(c.Writer, c.Request, "", u.CreatedAt, f)
}
