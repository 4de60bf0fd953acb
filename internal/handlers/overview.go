package handlers

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"voucherconsole/internal/i18n"
	"voucherconsole/internal/models"
	"voucherconsole/internal/monitor"
	"voucherconsole/web/templates"
)

// overviewProps turns the figures into what the user's roles care about:
// readers of stocks see stocks, uploads and charts; those who act on
// WeChat Pay (operators, managers, admins) also the calls whose outcome is
// unknown and the last failures.
func (s *Server) overviewProps(c *gin.Context, t i18n.Localizer, u *models.User) (*templates.OverviewProps, error) {
	if s.Monitor == nil {
		return nil, nil
	}
	readsStocks := s.allowed(u, http.MethodGet, "/stocks")
	actsOnWx := u.HasRole(models.RoleOperator) || u.HasRole(models.RoleManager) || u.HasRole(models.RoleAdmin)
	if !readsStocks && !actsOnWx {
		return nil, nil
	}
	o, err := s.Monitor.Overview(c.Request.Context())
	if err != nil {
		return nil, err
	}
	out := &templates.OverviewProps{AsOf: t.T("overview.as_of", s.zonedTime(o.At))}
	stockLink := func(id int64) string {
		if !readsStocks {
			return ""
		}
		return "/stocks/" + strconv.FormatInt(id, 10)
	}
	if readsStocks {
		out.States = append(out.States, templates.Stat{ID: "stat-total", Label: t.T("overview.all_stocks"), Value: num(o.Total), Link: "/stocks"})
		for _, st := range models.StockStates {
			out.States = append(out.States, templates.Stat{ID: "stat-" + string(st), Label: t.T("stocks.state." + string(st)),
				Value: num(o.StateCounts[st]), Link: "/stocks?state=" + string(st)})
		}
		out.Uploads = []templates.Stat{
			{ID: "stat-uploads-running", Label: t.T("overview.uploads_running"), Value: num(o.Uploads.Running)},
			{ID: "stat-uploads-waiting", Label: t.T("overview.uploads_waiting"), Value: num(o.Uploads.Waiting)},
			{ID: "stat-uploads-failed", Label: t.T("overview.uploads_failed"), Value: num(o.Uploads.Failed), Alert: o.Uploads.Failed > 0},
		}
		low := templates.OverviewList{ID: "overview-low", Title: t.T("overview.low"), Empty: t.T("overview.low_none"),
			Headers: []string{t.T("stocks.name"), t.T("stocks.codes_available"), t.T("overview.threshold"), t.T("overview.rate"), t.T("overview.runs_out")}}
		for _, l := range o.Low {
			rate, eta := t.T("overview.rate_unknown"), t.T("overview.runs_out_unknown")
			if l.Estimate.Known {
				rate = t.T("overview.per_hour", num(int64(math.Round(l.Estimate.PerHour))))
				eta = t.T("overview.runs_out_in", duration(t, l.Estimate.Left), s.zonedTime(o.At.Add(l.Estimate.Left)))
			}
			low.Rows = append(low.Rows, templates.OverviewRow{Link: stockLink(l.Stock.ID), Cells: []string{
				monitor.DisplayName(&l.Stock), num(*l.Stock.AvailableCount), num(l.Threshold), rate, eta}})
		}
		ending := templates.OverviewList{ID: "overview-ending", Title: t.T("overview.ending"), Empty: t.T("overview.ending_none"),
			Headers: []string{t.T("stocks.name"), t.T("stocks.state"), t.T("stocks.available_end_time")}}
		for _, e := range o.Ending {
			ending.Rows = append(ending.Rows, templates.OverviewRow{Link: stockLink(e.Stock.ID), Cells: []string{
				monitor.DisplayName(&e.Stock), t.T("stocks.state." + string(e.Stock.State)), s.zonedTime(e.End)}})
		}
		failedUps := templates.OverviewList{ID: "overview-failed-uploads", Title: t.T("overview.failed_uploads"), Empty: t.T("overview.failed_uploads_none"),
			Headers: []string{t.T("overview.file"), t.T("overview.wx_code")}}
		for _, f := range o.FailedUps {
			failedUps.Rows = append(failedUps.Rows, templates.OverviewRow{Link: "/uploads/" + strconv.FormatInt(f.ID, 10),
				Cells: []string{f.FileName, dashIfEmpty(f.ErrorCode)}})
		}
		out.Lists = append(out.Lists, low, ending, failedUps)
	}
	if actsOnWx {
		unknown := templates.OverviewList{ID: "overview-unknown", Title: t.T("overview.unknown"), Empty: t.T("overview.unknown_none"),
			Headers: []string{t.T("overview.operation"), t.T("overview.request_no"), t.T("overview.since")}}
		for _, op := range o.Unknown {
			link := ""
			if op.StockRef != nil {
				link = stockLink(*op.StockRef)
			}
			label := op.Kind
			if t.Has("overview.op." + op.Kind) {
				label = t.T("overview.op." + op.Kind)
			}
			unknown.Rows = append(unknown.Rows, templates.OverviewRow{Link: link, Cells: []string{label, op.RequestNo, s.zonedTime(op.CreatedAt)}})
		}
		failures := templates.OverviewList{ID: "overview-failures", Title: t.T("overview.failures"), Empty: t.T("overview.failures_none"),
			Headers: []string{t.T("audit.field.action"), t.T("overview.wx_code"), t.T("overview.when")}}
		mayAudit := s.allowed(u, http.MethodGet, "/audit")
		for _, e := range o.Failures {
			link := ""
			if mayAudit {
				link = "/audit?at=" + strconv.FormatInt(e.Seq, 10) + "&open=" + strconv.FormatInt(e.Seq, 10) + "#entry-" + strconv.FormatInt(e.Seq, 10)
			}
			failures.Rows = append(failures.Rows, templates.OverviewRow{Link: link, Cells: []string{actionLabel(t, e.Action), e.WxErrorCode, s.zonedTime(e.OccurredAt)}})
		}
		out.Lists = append(out.Lists, unknown, failures)
	}
	if readsStocks {
		for i, ch := range o.Charts {
			times := make([]string, len(ch.Times))
			for j, at := range ch.Times {
				times[j] = at.In(s.loc).Format("01-02 15:04")
			}
			title := t.T("overview.chart_total")
			if ch.StockRef != 0 {
				title = t.T("overview.chart_stock", ch.Name)
			}
			out.Charts = append(out.Charts, templates.NewChart("chart-"+strconv.Itoa(i), title, times, ch.Available, ch.Sent, num,
				t.T("overview.legend_available"), t.T("overview.legend_sent"), t.T("overview.when"), t.T("overview.chart_table")))
		}
	}
	return out, nil
}

// zonedTime is a stored time in the configured zone, with the zone named.
func (s *Server) zonedTime(at time.Time) string {
	return at.In(s.loc).Format("2006-01-02 15:04 MST")
}

// duration renders a time left in days and hours, or hours and minutes.
func duration(t i18n.Localizer, d time.Duration) string {
	if d >= 48*time.Hour {
		return t.T("overview.days_hours", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
	}
	return t.T("overview.hours_minutes", int(d/time.Hour), int(d%time.Hour/time.Minute))
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
