package handlers

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/a-h/templ"
	"github.com/gin-gonic/gin"

	"voucherconsole/internal/codefile"
	"voucherconsole/internal/i18n"
	"voucherconsole/internal/models"
	"voucherconsole/internal/stocks"
	"voucherconsole/internal/uploads"
	"voucherconsole/web/templates"
)

// defaultUploadMaxBytes applies when the configuration has no limit.
const defaultUploadMaxBytes = 100 << 20

// problemsShown is how many problems the upload page lists.
const problemsShown = 20

func (s *Server) uploadMaxBytes() int64 {
	if s.Config.UploadMaxBytes > 0 {
		return s.Config.UploadMaxBytes
	}
	return defaultUploadMaxBytes
}

// humanBytes renders a size as B, KB, MB or GB.
func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return trimZero(float64(n)/(1<<30)) + " GB"
	case n >= 1<<20:
		return trimZero(float64(n)/(1<<20)) + " MB"
	case n >= 1<<10:
		return trimZero(float64(n)/(1<<10)) + " KB"
	}
	return strconv.FormatInt(n, 10) + " B"
}

func trimZero(f float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.1f", f), "0"), ".")
}

// num renders a count with thousands separators.
func num(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// uploadFromPath loads the upload named by :id, answering 404 when there is
// none.
func (s *Server) uploadFromPath(c *gin.Context) (*uploads.Upload, bool) {
	return fromPath(s, c, s.Uploads.Get, uploads.ErrNotFound)
}

func encodingLabel(t i18n.Localizer, enc string) string {
	if enc == "" {
		return "—"
	}
	return labelOr(t, "uploads.encoding."+enc, enc)
}

func durationText(t i18n.Localizer, secs int64) string {
	switch {
	case secs < 0:
		return "—"
	case secs < 60:
		return t.T("uploads.eta_seconds", secs)
	case secs < 3600:
		return t.T("uploads.eta_minutes", secs/60, secs%60)
	}
	return t.T("uploads.eta_hours", secs/3600, (secs%3600)/60)
}

// problemReason words why a row is not sent.
func problemReason(t i18n.Localizer, l uploads.ReportLine, maxLen int) (reason, detail string) {
	switch l.Reason {
	case string(codefile.ReasonTooLong):
		return t.T("uploads.reason.too_long", maxLen), ""
	case string(codefile.ReasonBadChar):
		pos, char, _ := strings.Cut(l.Detail, ":")
		return t.T("uploads.reason.bad_char", pos, char), ""
	case string(codefile.ReasonDuplicate):
		return t.T("uploads.reason.duplicate", l.Detail), ""
	case uploads.ReasonWxFailed:
		return t.T("uploads.reason.wx_failed"), strings.TrimSpace(l.WxCode + " " + l.WxMessage)
	}
	return labelOr(t, "uploads.reason."+l.Reason, l.Reason), ""
}

func (s *Server) maxLenOf(st *models.Stock) int {
	if k, ok := uploads.KindOf(st); ok {
		return k.MaxLen()
	}
	return 0
}

// stockUploads is the uploads section of a stock's page; nil when uploads
// are not wired (tests of other handlers) or the stock takes no codes and
// has none.
func (s *Server) stockUploads(c *gin.Context, st *models.Stock) templ.Component {
	list, err := s.Uploads.ListForStock(c.Request.Context(), st.ID, 50)
	if err != nil {
		s.log(c).Error("list stock uploads", "stock", st.ID, "err", err)
		return nil
	}
	if len(list) == 0 && !stocks.UploadsCodes(st) {
		return nil
	}
	t := s.localizer(c)
	props := templates.StockUploadsProps{Page: templates.Page{T: t}, StockID: st.ID, CanUpload: stocks.CanUpload(st)}
	for i := range list {
		u := &list[i]
		var summary string
		switch {
		case u.Status == uploads.StatusChecked || u.Status == uploads.StatusAbandoned:
			summary = t.T("uploads.summary_checked", num(u.RowsRead), num(u.CodesTotal))
		default:
			summary = t.T("uploads.summary_sent", num(u.CodesUploaded), num(u.CodesTotal))
		}
		props.Rows = append(props.Rows, templates.StockUploadRow{
			ID: u.ID, When: s.localTime(u.CreatedAt), File: u.FileName, Status: string(u.Status),
			StatusLabel: t.T("uploads.status." + string(u.Status)), Summary: summary,
		})
	}
	return templates.StockUploads(props)
}
