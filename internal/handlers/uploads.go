package handlers

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
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
		u, err = s.Uploads.Check(c.Request.Context(), s.auditContext(c), uploads.CheckInput{
			Stock: st, FileName: part.FileName(), Body: part, MaxBytes: limit, UserID: &uid,
		})
		part.Close()
		if err != nil {
			status, msg := s.checkError(t, err, limit)
			if status == 0 {
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

// uploadPage is /uploads/{id}: the check, the progress and the report.
func (s *Server) uploadPage(c *gin.Context) {
	u, ok := s.uploadFromPath(c)
	if !ok {
		return
	}
	s.renderUpload(c, u, http.StatusOK, "")
}

func (s *Server) renderUpload(c *gin.Context, u *uploads.Upload, status int, notice string) {
	ctx := c.Request.Context()
	st, err := s.Stocks.Get(ctx, u.StockRef)
	if err != nil {
		s.serverError(c, err)
		return
	}
	p := s.page(c, "uploads.title")
	t := p.T
	p.Title = t.T("uploads.title", u.ID)
	usr := currentUser(c)
	id := strconv.FormatInt(u.ID, 10)
	props := templates.UploadProps{
		Page: p, ID: u.ID, Status: string(u.Status), StatusLabel: t.T("uploads.status." + string(u.Status)),
		StatusHelp: t.T("uploads.status_help." + string(u.Status)),
		StockURL:   "/stocks/" + strconv.FormatInt(st.ID, 10), StockName: displayName(t, st),
		FileName: u.FileName, FileSize: humanBytes(u.FileSize), FileSHA256: u.FileSHA256,
		Encoding: encodingLabel(t, u.Encoding), Header: t.T("uploads.header_no"),
		Notice: notice, CancelRequested: u.CancelRequested,
	}
	if u.HasHeader {
		props.Header = t.T("uploads.header_yes")
	}
	if f, err := s.Uploads.OpenFile(ctx, u); err == nil {
		f.Close()
		props.FileURL = "/uploads/" + id + "/file"
	} else if u.FilePath != "" {
		props.FileElsewhere = true
	}
	props.Times = append(props.Times, templates.Fact{Label: t.T("uploads.created_at"), Value: s.localTime(u.CreatedAt)})
	if u.StartedAt != nil {
		props.Times = append(props.Times, templates.Fact{Label: t.T("uploads.started_at"), Value: s.localTime(*u.StartedAt)})
	}
	if u.FinishedAt != nil {
		props.Times = append(props.Times, templates.Fact{Label: t.T("uploads.finished_at"), Value: s.localTime(*u.FinishedAt)})
	}
	props.Check = []templates.UploadCount{
		{ID: "check-rows", Label: t.T("uploads.count.rows"), Value: num(u.RowsRead), Strong: true, Help: t.T("uploads.count.rows_help", num(u.BlankRows))},
		{ID: "check-valid", Label: t.T("uploads.count.valid"), Value: num(u.ValidCount)},
		{ID: "check-invalid", Label: t.T("uploads.count.invalid"), Value: num(u.InvalidCount)},
		{ID: "check-duplicate", Label: t.T("uploads.count.duplicate"), Value: num(u.DuplicateCount)},
		{ID: "check-known", Label: t.T("uploads.count.known"), Value: num(u.KnownCount)},
		{ID: "check-to-send", Label: t.T("uploads.count.to_send"), Value: num(u.CodesTotal), Strong: true,
			Help: t.T("uploads.count.to_send_help", num(u.BatchesTotal))},
	}
	switch u.Status {
	case uploads.StatusChecked, uploads.StatusQueued, uploads.StatusSending, uploads.StatusFinished, uploads.StatusFailed, uploads.StatusCancelled:
		probs, err := s.Uploads.FirstProblems(ctx, u.ID, problemsShown+1)
		if err != nil {
			s.serverError(c, err)
			return
		}
		props.MoreProblems = len(probs) > problemsShown
		for i, pr := range probs {
			if i == problemsShown {
				break
			}
			reason, _ := problemReason(t, uploads.ReportLine{Reason: pr.Reason, Detail: pr.Detail}, s.maxLenOf(st))
			props.Problems = append(props.Problems, templates.UploadProblemRow{Row: strconv.FormatInt(pr.RowNo, 10), Code: pr.Code, Reason: reason})
		}
	}
	if u.Status != uploads.StatusChecking && u.Status != uploads.StatusAbandoned {
		props.ReportURL = "/uploads/" + id + "/report.csv"
	}
	if u.Status.Active() || u.Status.Ended() {
		prog, err := s.Uploads.Progress(ctx, u)
		if err != nil {
			s.serverError(c, err)
			return
		}
		pv := progressView(t, prog)
		props.ShowProgress, props.Active = true, u.Status.Active()
		props.Percent, props.PercentText = pv.PercentInt, pv.PercentText
		props.CodesProgress, props.BatchesProgress, props.Rate, props.ETA = pv.Codes, pv.Batches, pv.Rate, pv.ETA
		props.ProgressURL = "/uploads/" + id + "/progress"
	}
	if u.Status.Ended() {
		props.ShowReport, props.Reconciles = true, u.Reconciles()
		props.ErrorCode, props.ErrorMessage = u.ErrorCode, u.ErrorMessage
		props.Report = []templates.UploadCount{
			{ID: "report-rows", Label: t.T("uploads.count.rows"), Value: num(u.RowsRead), Strong: true},
			{ID: "report-uploaded", Label: t.T("uploads.count.uploaded"), Value: num(u.CodesUploaded), Strong: true},
			{ID: "report-invalid", Label: t.T("uploads.count.invalid"), Value: num(u.InvalidCount)},
			{ID: "report-duplicate", Label: t.T("uploads.count.duplicate"), Value: num(u.DuplicateCount)},
			{ID: "report-already", Label: t.T("uploads.count.already"), Value: num(u.AlreadyOnWeChat()),
				Help: t.T("uploads.count.already_help", num(u.KnownCount), num(u.CodesExist))},
			{ID: "report-failed", Label: t.T("uploads.count.failed"), Value: num(u.CodesFailed)},
		}
		if u.NotSent() != 0 {
			props.Report = append(props.Report, templates.UploadCount{ID: "report-not-sent", Label: t.T("uploads.count.not_sent"), Value: num(u.NotSent())})
		}
		failures, err := s.Uploads.WxFailures(ctx, u.ID)
		if err != nil {
			s.serverError(c, err)
			return
		}
		for _, f := range failures {
			props.Failures = append(props.Failures, templates.UploadFailureRow{Code: f.Code, Message: f.Message, Codes: num(f.Codes)})
		}
	}
	props.CanStart = u.Status == uploads.StatusChecked && s.allowed(usr, http.MethodPost, "/uploads/:id/start")
	props.CanAbandon = u.Status == uploads.StatusChecked && s.allowed(usr, http.MethodPost, "/uploads/:id/abandon")
	props.CanCancel = u.Status.Active() && !u.CancelRequested && s.allowed(usr, http.MethodPost, "/uploads/:id/cancel")
	props.CanResume = uploads.CanResume(u) && s.allowed(usr, http.MethodPost, "/uploads/:id/resume")
	s.render(c, status, templates.UploadPage(props))
}

// progressJSON is what /uploads/{id}/progress returns: the numbers, and the
// same texts the page shows, in the user's language.
type progressJSON struct {
	uploads.Progress
	StatusLabel string `json:"status_label"`
	StatusHelp  string `json:"status_help"`
	PercentText string `json:"percent_text"`
	CodesText   string `json:"codes_text"`
	BatchesText string `json:"batches_text"`
	RateText    string `json:"rate_text"`
	ETAText     string `json:"eta_text"`
}

type progressTexts struct {
	PercentInt                             int
	PercentText, Codes, Batches, Rate, ETA string
}

func progressView(t i18n.Localizer, p uploads.Progress) progressTexts {
	pct := int(p.Percent)
	if p.CodesTotal > 0 && p.CodesDone >= p.CodesTotal {
		pct = 100
	}
	v := progressTexts{
		PercentInt: pct, PercentText: strconv.Itoa(pct) + "%",
		Codes:   t.T("uploads.of", num(p.CodesDone), num(p.CodesTotal)),
		Batches: t.T("uploads.of", num(p.BatchesDone), num(p.BatchesTotal)),
		Rate:    "—", ETA: "—",
	}
	if p.Rate > 0 {
		v.Rate = t.T("uploads.rate_value", num(int64(p.Rate+0.5)))
	}
	if p.Active {
		v.ETA = durationText(t, p.ETASeconds)
	} else if p.Ended {
		v.ETA = t.T("uploads.eta_done")
	}
	return v
}

// uploadProgress is /uploads/{id}/progress, polled by the upload page.
func (s *Server) uploadProgress(c *gin.Context) {
	u, ok := s.uploadFromPath(c)
	if !ok {
		return
	}
	prog, err := s.Uploads.Progress(c.Request.Context(), u)
	if err != nil {
		s.serverError(c, err)
		return
	}
	t := s.localizer(c)
	v := progressView(t, prog)
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, progressJSON{
		Progress: prog, StatusLabel: t.T("uploads.status." + string(u.Status)),
		StatusHelp: t.T("uploads.status_help." + string(u.Status)), PercentText: v.PercentText,
		CodesText: v.Codes, BatchesText: v.Batches, RateText: v.Rate, ETAText: v.ETA,
	})
}

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

// stockUploads is the uploads section of a stock's page; nil when the stock
// takes no codes and has none.
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
