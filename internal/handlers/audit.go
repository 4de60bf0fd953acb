package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/a-h/templ"
	"github.com/gin-gonic/gin"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/i18n"
	"voucherconsole/internal/models"
	"voucherconsole/web/templates"
)

// auditPageSize is how many entries one page of /audit shows.
const auditPageSize = 50

// auditActionPrefix starts the catalogue IDs of action labels; every action
// with a label is offered in the action filter.
const auditActionPrefix = "audit.action."

// Query parameters of /audit and /audit/export.csv.
const (
	qUser       = "user"
	qAction     = "action"
	qTargetType = "target_type"
	qTargetID   = "target_id"
	qOutcome    = "outcome"
	qFrom       = "from"
	qTo         = "to"
	qSearch     = "q"
	qBefore     = "before"
	qAt         = "at"
	qAfter      = "after"
	qOpen       = "open"
)

// Layouts accepted for a time in the filter, in the console's time zone:
// what <input type="datetime-local"> sends, and what people type.
var auditTimeLayouts = []string{
	"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02 15:04:05",
}

const auditDateLayout = "2006-01-02"

// parseAuditTime reads a time typed in loc. A bare date means the start of
// that day, or for the end of a range (end = true) the start of the next
// one, so "to 2026-03-07" includes that whole day.
func parseAuditTime(v string, loc *time.Location, end bool) (time.Time, bool) {
	v = strings.TrimSpace(v)
	for _, l := range auditTimeLayouts {
		if t, err := time.ParseInLocation(l, v, loc); err == nil {
			return t, true
		}
	}
	if t, err := time.ParseInLocation(auditDateLayout, v, loc); err == nil {
		if end {
			t = t.AddDate(0, 0, 1)
		}
		return t, true
	}
	return time.Time{}, false
}

// inputTime formats a time for <input type="datetime-local">.
func inputTime(t time.Time) string {
	if t.Second() != 0 {
		return t.Format("2006-01-02T15:04:05")
	}
	return t.Format("2006-01-02T15:04")
}

// auditRequest is a parsed /audit query: the filter, the page cursor and the
// form values as typed, with field errors.
type auditRequest struct {
	filter audit.Filter
	cursor audit.Cursor
	open   int64
	values templates.AuditFilterValues
	errs   templates.FieldErrors
}

func (s *Server) parseAuditRequest(c *gin.Context, t i18n.Localizer) auditRequest {
	v := templates.AuditFilterValues{
		User:       strings.TrimSpace(c.Query(qUser)),
		Action:     strings.TrimSpace(c.Query(qAction)),
		TargetType: strings.TrimSpace(c.Query(qTargetType)),
		TargetID:   strings.TrimSpace(c.Query(qTargetID)),
		Outcome:    strings.TrimSpace(c.Query(qOutcome)),
		From:       strings.TrimSpace(c.Query(qFrom)),
		To:         strings.TrimSpace(c.Query(qTo)),
		Search:     strings.TrimSpace(c.Query(qSearch)),
	}
	r := auditRequest{values: v, errs: templates.FieldErrors{}}
	r.filter = audit.Filter{
		Actor: v.User, Action: v.Action, TargetType: v.TargetType, TargetID: v.TargetID,
		Outcome: audit.Outcome(v.Outcome), Search: v.Search,
	}
	if v.TargetType != "" && !slices.Contains(audit.TargetTypes, v.TargetType) {
		r.errs[qTargetType] = t.T("audit.filter.bad_choice")
	}
	if v.Outcome != "" && !slices.Contains(audit.Outcomes, audit.Outcome(v.Outcome)) {
		r.errs[qOutcome] = t.T("audit.filter.bad_choice")
	}
	if v.From != "" {
		if from, ok := parseAuditTime(v.From, s.loc, false); ok {
			r.filter.From, r.values.From = from, inputTime(from)
		} else {
			r.errs[qFrom] = t.T("audit.filter.bad_time")
		}
	}
	if v.To != "" {
		if to, ok := parseAuditTime(v.To, s.loc, true); ok {
			r.filter.To, r.values.To = to, inputTime(to)
		} else {
			r.errs[qTo] = t.T("audit.filter.bad_time")
		}
	}
	// Last: a value that is not text has no other problem worth naming.
	checkLines(t, r.errs, map[string]*string{qUser: &r.values.User, qAction: &r.values.Action, qTargetType: &r.values.TargetType,
		qTargetID: &r.values.TargetID, qOutcome: &r.values.Outcome, qFrom: &r.values.From, qTo: &r.values.To, qSearch: &r.values.Search})
	if len(r.errs) == 0 && r.filter.Validate() != nil {
		r.errs[qTo] = t.T("audit.filter.bad_range")
	}
	r.cursor.Before, _ = strconv.ParseInt(c.Query(qBefore), 10, 64)
	r.cursor.At, _ = strconv.ParseInt(c.Query(qAt), 10, 64)
	r.cursor.After, _ = strconv.ParseInt(c.Query(qAfter), 10, 64)
	r.open, _ = strconv.ParseInt(c.Query(qOpen), 10, 64)
	return r
}

// query renders the filter as URL parameters (only the fields set).
func (r auditRequest) query() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{
		qUser: r.values.User, qAction: r.values.Action, qTargetType: r.values.TargetType,
		qTargetID: r.values.TargetID, qOutcome: r.values.Outcome, qFrom: r.values.From,
		qTo: r.values.To, qSearch: r.values.Search,
	} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

func withParam(path string, q url.Values, key string, val int64) string {
	q2 := url.Values{}
	for k, v := range q {
		q2[k] = v
	}
	if key != "" {
		q2.Set(key, strconv.FormatInt(val, 10))
	}
	if len(q2) == 0 {
		return path
	}
	return path + "?" + q2.Encode()
}

// auditPage is the audit log: filters, one keyset page of entries newest
// first, each expandable to its full detail.
func (s *Server) auditPage(c *gin.Context) {
	p := s.page(c, "audit.title")
	r := s.parseAuditRequest(c, p.T)
	props := s.auditProps(c, p, r)
	if len(r.errs) > 0 {
		s.render(c, http.StatusUnprocessableEntity, templates.AuditPage(props))
		return
	}
	if err := s.resolveAuditFilter(c, &r); err != nil {
		s.serverError(c, err)
		return
	}
	page, err := audit.List(c.Request.Context(), s.DB.Search, r.filter, r.cursor, auditPageSize)
	if err != nil {
		s.serverError(c, err)
		return
	}
	u := currentUser(c)
	ctxv, err := s.entryContext(c, page.Entries)
	if err != nil {
		s.serverError(c, err)
		return
	}
	for i := range page.Entries {
		v := s.entryView(p.T, u, &page.Entries[i], r.open)
		ctxv.apply(p.T, &v, &page.Entries[i], s.loc)
		props.Entries = append(props.Entries, v)
	}
	q := r.query()
	if page.Newer > 0 {
		props.NewerURL = withParam("/audit", q, qAfter, page.Newer)
	}
	if page.Older > 0 {
		props.OlderURL = withParam("/audit", q, qBefore, page.Older)
	}
	if r.cursor != (audit.Cursor{}) {
		props.NewestURL = withParam("/audit", q, "", 0)
	}
	s.renderBuffered(c, http.StatusOK, templates.AuditPage(props))
}

// pageBuffers holds buffers for renderBuffered.
var pageBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// renderBuffered renders a large page into memory first and sends it in one
// write with its length: a page of audit entries is about 100 kB, which
// rendered straight to the connection costs a system call per 4 kB.
func (s *Server) renderBuffered(c *gin.Context, status int, comp templ.Component) {
	buf := pageBuffers.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 1<<20 {
			buf.Reset()
			pageBuffers.Put(buf)
		}
	}()
	if err := comp.Render(c.Request.Context(), buf); err != nil {
		s.serverError(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
}

// auditProps fills what the page shows besides the entries.
func (s *Server) auditProps(c *gin.Context, p templates.Page, r auditRequest) templates.AuditProps {
	t := p.T
	props := templates.AuditProps{
		Page: p, Filter: r.values, Errors: r.errs, Filtered: !r.filter.IsZero(), Labels: templates.NewAuditLabels(t),
		Zone:      zoneLabel(s.loc, s.Now()),
		ExportURL: withParam("/audit/export.csv", r.query(), "", 0),
	}
	var names []string
	if err := s.DB.Gorm.WithContext(c.Request.Context()).Model(&models.User{}).Order("username").Pluck("username", &names).Error; err != nil {
		s.log(c).Error("audit page: list usernames", "err", err)
	}
	props.Users = names
	// Offer every action with a label and every action in the log.
	actions, err := audit.Actions(c.Request.Context(), s.DB.Search)
	if err != nil {
		s.log(c).Error("audit page: list actions", "err", err)
	}
	for _, id := range s.Catalog.IDs(t.Locale) {
		if a, ok := strings.CutPrefix(id, auditActionPrefix); ok {
			actions = append(actions, a)
		}
	}
	slices.Sort(actions)
	actions = slices.Compact(actions)
	for _, a := range actions {
		props.Actions = append(props.Actions, templates.AuditOption{Value: a, Label: actionLabel(t, a)})
	}
	for _, tt := range audit.TargetTypes {
		props.TargetTypes = append(props.TargetTypes, templates.AuditOption{Value: tt, Label: t.T("audit.target." + tt)})
	}
	for _, o := range audit.Outcomes {
		props.Outcomes = append(props.Outcomes, templates.AuditOption{Value: string(o), Label: t.T("audit.outcome." + string(o))})
	}
	return props
}

// zoneLabel names a time zone with its offset, e.g. "Asia/Shanghai (UTC+08:00)".
func zoneLabel(loc *time.Location, now time.Time) string {
	return loc.String() + " (UTC" + now.In(loc).Format("-07:00") + ")"
}

// actionLabel is an action's name in the user's language, or the action
// itself when the catalogue has no label for it.
func actionLabel(t i18n.Localizer, action string) string {
	if t.Has(auditActionPrefix + action) {
		return t.T(auditActionPrefix + action)
	}
	return action
}

// entryView is an entry as the page shows it, with links to what it
// concerns where the viewer may open them.
func (s *Server) entryView(t i18n.Localizer, viewer *models.User, e *audit.Entry, open int64) templates.AuditEntryView {
	v := templates.AuditEntryView{
		Seq:         e.Seq,
		Open:        e.Seq == open,
		Local:       e.OccurredAt.In(s.loc).Format("2006-01-02 15:04:05"),
		UTC:         e.OccurredAt.UTC().Format("2006-01-02T15:04:05.000000Z"),
		Actor:       e.Actor,
		Action:      e.Action,
		ActionLabel: actionLabel(t, e.Action),
		TargetType:  e.TargetType,
		TargetID:    e.TargetID,
		Outcome:     string(e.Outcome),
		WxRequestNo: e.WxRequestNo,
		WxErrorCode: e.WxErrorCode,
		WxRequestID: e.WxRequestID,
		ClientIP:    e.ClientIP,
		UserAgent:   e.UserAgent,
		RequestID:   e.RequestID,
		Detail:      prettyDetail(e.Detail),
		PrevHash:    e.PrevHash,
		Hash:        e.Hash,
	}
	mayOpenUsers := viewer != nil && s.allowed(viewer, http.MethodGet, "/admin/users/:id")
	if e.ActorID != nil {
		v.ActorID = strconv.FormatInt(*e.ActorID, 10)
		if mayOpenUsers {
			v.ActorLink = "/admin/users/" + v.ActorID
		}
	}
	if e.Actor != "" {
		v.ActorEntries = "/audit?" + url.Values{qUser: {e.Actor}}.Encode()
	}
	for _, r := range strings.Split(e.ActorRoles, ",") {
		if r == "" {
			continue
		}
		if _, ok := models.ParseRole(r); ok {
			r = t.T("role." + r)
		}
		v.Roles = append(v.Roles, r)
	}
	if e.TargetType != "" {
		v.TargetTypeLabel = e.TargetType
		if slices.Contains(audit.TargetTypes, e.TargetType) {
			v.TargetTypeLabel = t.T("audit.target." + e.TargetType)
		}
	}
	if e.TargetID != "" {
		v.TargetHistory = "/audit?" + url.Values{qTargetType: {e.TargetType}, qTargetID: {e.TargetID}}.Encode()
		numeric := isDigits(e.TargetID)
		switch e.TargetType {
		case audit.TargetStock:
			// Linked by entryContext.apply, once it knows the stock exists.
		case audit.TargetUpload:
			if numeric {
				v.TargetLink = "/uploads/" + e.TargetID
			}
		case audit.TargetUser:
			if numeric && mayOpenUsers {
				v.TargetLink = "/admin/users/" + e.TargetID
			}
		}
	}
	v.OutcomeLabel = string(e.Outcome)
	if slices.Contains(audit.Outcomes, e.Outcome) {
		v.OutcomeLabel = t.T("audit.outcome." + string(e.Outcome))
	}
	return v
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// prettyDetail indents an entry's JSON detail for reading.
func prettyDetail(d string) string {
	if d == "" {
		return ""
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, []byte(d), "", "  "); err != nil {
		return d
	}
	return buf.String()
}

// auditExport streams the filtered entries as CSV. The export is audited
// first, with its filter; it covers the entries before its own.
func (s *Server) auditExport(c *gin.Context) {
	r := s.parseAuditRequest(c, s.localizer(c))
	if len(r.errs) > 0 {
		p := s.page(c, "audit.title")
		s.render(c, http.StatusUnprocessableEntity, templates.AuditPage(s.auditProps(c, p, r)))
		return
	}
	if err := s.resolveAuditFilter(c, &r); err != nil {
		s.serverError(c, err)
		return
	}
	ctx := c.Request.Context()
	rec := s.auditContext(c).Record(audit.ActionAuditExport, audit.Success, "", "")
	rec.Detail = map[string]any{"filter": r.filter.Detail(), "format": "csv"}
	entry, err := audit.Append(ctx, s.DB.Gorm, s.Now(), rec)
	if err != nil {
		s.serverError(c, err)
		return
	}
	name := "audit-" + s.Now().In(s.loc).Format("20060102-150405") + ".csv"
	h := c.Writer.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	c.Status(http.StatusOK)
	t := s.localizer(c)
	header := make([]string, len(audit.ExportHeader))
	for i, col := range audit.ExportHeader {
		header[i] = t.T("audit.csv." + col)
	}
	n, err := audit.ExportWithHeader(ctx, s.DB.Search, c.Writer, r.filter, entry.Seq-1, s.loc, c.Writer.Flush, header)
	if err != nil {
		if errors.Is(err, context.Canceled) || ctx.Err() != nil {
			s.log(c).Info("audit export stopped: the client went away", "entries", n)
			return
		}
		s.log(c).Error("audit export failed part-way", "entries", n, "err", err)
		// The status is sent: break the connection so the client sees an
		// incomplete download rather than a silently short file.
		panic(http.ErrAbortHandler)
	}
	s.log(c).Info("audit exported", "entries", n, "export_seq", entry.Seq)
}

// auditVerify is the integrity page: the newest verification, which runs
// in the background (started by auditVerifyStart) and records its progress
// in the database, so the page reads one row on any instance, however long
// the log.
func (s *Server) auditVerify(c *gin.Context) {
	p := s.page(c, "audit.verify.title")
	run, err := s.AuditVerifier.Latest(c.Request.Context())
	if err != nil {
		s.serverError(c, err)
		return
	}
	t := p.T
	props := templates.AuditVerifyProps{Page: p, CanStart: true}
	when := func(at time.Time) string {
		return at.In(s.loc).Format("2006-01-02 15:04:05") + " " + zoneLabel(s.loc, at) + " / " + at.UTC().Format(time.RFC3339)
	}
	entryURL := func(seq int64) string { return fmt.Sprintf("/audit?at=%d&open=%d#entry-%d", seq, seq, seq) }
	if run == nil {
		props.Never = true
		s.render(c, http.StatusOK, templates.AuditVerifyPage(props))
		return
	}
	now := s.Now()
	switch run.Status {
	case audit.RunRunning:
		props.Running, props.CanStart = true, false
		if run.Total > 0 {
			props.Percent = int(min(100, run.Checked*100/run.Total))
		}
		props.Progress = t.T("audit.verify.running", num(run.Checked), num(run.Total), props.Percent, num(int64(run.Rate(now))))
		if run.LastSeq > 0 && run.LastAt != nil {
			props.Last = t.T("audit.verify.last_verified", run.LastSeq, when(*run.LastAt))
			props.EntryURL = entryURL(run.LastSeq)
		}
	case audit.RunInterrupted:
		props.Stopped = t.T("audit.verify.interrupted", when(run.StartedAt))
	case audit.RunFailed:
		props.Stopped = t.T("audit.verify.failed", when(run.StartedAt))
	default:
		props.Done, props.Intact, props.Checked = true, run.Status == audit.RunIntact, run.Checked
		var lastAt time.Time
		if run.LastAt != nil {
			lastAt = *run.LastAt
		}
		if run.FinishedAt != nil {
			props.Finished = t.T("audit.verify.finished", when(*run.FinishedAt), run.StartedBy, num(run.Checked),
				run.FinishedAt.Sub(run.StartedAt).Round(time.Millisecond).String())
		}
		switch {
		case props.Intact && run.Checked == 0:
			props.Message = t.T("audit.verify.empty")
		case props.Intact:
			props.Message = t.T("audit.verify.intact", run.LastSeq, when(lastAt), run.Checked)
			props.EntryURL = entryURL(run.LastSeq)
			// The newest hash, to note down elsewhere: a chain cannot tell by
			// itself whether entries were cut off its end.
			props.LastHash = run.LastHash
		default:
			props.Message = t.T("audit.verify.broken", run.BrokenSeq, t.T("audit.verify.problem."+string(run.Problem)))
			if run.LastSeq > 0 {
				props.Since = t.T("audit.verify.intact_until", run.LastSeq, when(lastAt))
			} else {
				props.Since = t.T("audit.verify.intact_none")
			}
			if run.Problem != audit.ProblemSequence && run.Problem != audit.ProblemTail {
				props.EntryURL = entryURL(run.BrokenSeq)
			} else if run.LastSeq > 0 {
				// The missing entry's place: the page from the last intact one.
				props.EntryURL = entryURL(run.LastSeq)
			}
		}
	}
	s.render(c, http.StatusOK, templates.AuditVerifyPage(props))
}

// verifyWait is how long starting a verification waits for it to finish
// before showing the page: a short log shows its result at once, a long
// one its progress.
const verifyWait = time.Second

// auditVerifyStart starts a verification in the background (unless one is
// running on any instance) and shows the integrity page.
func (s *Server) auditVerifyStart(c *gin.Context) {
	ctx := c.Request.Context()
	run, err := s.AuditVerifier.Start(ctx, currentUser(c).Username)
	if err != nil {
		s.serverError(c, err)
		return
	}
	for deadline := time.Now().Add(verifyWait); time.Now().Before(deadline); {
		r, err := s.AuditVerifier.Latest(ctx)
		if err != nil || r == nil || r.ID != run.ID || r.Status != audit.RunRunning {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
	redirect(c, "/audit/verify")
}
