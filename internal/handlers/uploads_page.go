package handlers

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"voucherconsole/internal/i18n"
	"voucherconsole/internal/uploads"
	"voucherconsole/web/templates"
)

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
	// Codes are money: only those who may download them (operators and
	// managers) see them; support sees the counts.
	if !s.allowed(currentUser(c), http.MethodGet, "/uploads/:id/report.csv") {
		props.FileURL, props.ReportURL, props.Problems, props.MoreProblems = "", "", nil, false
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
		props.ErrorCode, props.ErrorMessage = u.ErrorCode, problemMessage(t, 0, u.ErrorCode, u.ErrorMessage)
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
