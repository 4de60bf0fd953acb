package handlers

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"voucherconsole/internal/i18n"
	"voucherconsole/internal/models"
	"voucherconsole/internal/stocks"
	"voucherconsole/web/templates"
)

const stocksPerPage = 50

func kindOptions(t i18n.Localizer) []templates.Option {
	var out []templates.Option
	for _, k := range models.StockKinds {
		out = append(out, templates.Option{Value: string(k), Label: t.T("stocks.kind." + string(k))})
	}
	return out
}

func stateOptions(t i18n.Localizer) []templates.Option {
	var out []templates.Option
	for _, s := range models.StockStates {
		out = append(out, templates.Option{Value: string(s), Label: t.T("stocks.state." + string(s))})
	}
	return out
}

func count(v *int64) string {
	if v == nil {
		return "—"
	}
	return num(*v)
}

// stockList is /stocks: search, filters and keyset pages, newest first.
func (s *Server) stockList(c *gin.Context) {
	p := s.page(c, "stocks.list_title")
	q := stocks.ListQuery{
		Q: c.Query("q"), Kind: models.StockKind(c.Query("kind")), State: models.StockState(c.Query("state")), Limit: stocksPerPage,
	}
	q.After, _ = strconv.ParseInt(c.Query("after"), 10, 64)
	errs := templates.FieldErrors{}
	checkLines(p.T, errs, map[string]*string{"q": &q.Q})
	if len(errs) > 0 {
		s.render(c, http.StatusBadRequest, templates.StockListPage(templates.StockListProps{ // the box says why; no search ran
			Page: p, Q: q.Q, Kind: string(q.Kind), State: string(q.State), Kinds: kindOptions(p.T), States: stateOptions(p.T),
			CanCreate: s.allowed(currentUser(c), http.MethodGet, "/stocks/new"), QError: errs["q"],
		}))
		return
	}
	rows, next, err := s.Stocks.List(c.Request.Context(), q)
	if err != nil {
		s.serverError(c, err)
		return
	}
	props := templates.StockListProps{
		Page: p, Q: q.Q, Kind: string(q.Kind), State: string(q.State),
		Kinds: kindOptions(p.T), States: stateOptions(p.T),
		CanCreate: s.allowed(currentUser(c), http.MethodGet, "/stocks/new"),
	}
	for i := range rows {
		st := &rows[i]
		props.Rows = append(props.Rows, templates.StockRow{
			ID: st.ID, Kind: p.T.T("stocks.kind." + string(st.Kind)), StockID: st.StockID, ProductCouponID: st.ProductCouponID,
			Name: displayName(p.T, st), State: string(st.State), StateLabel: p.T.T("stocks.state." + string(st.State)),
			CodeMode: st.CouponCodeMode, Total: count(st.TotalCount), Available: count(st.AvailableCount),
			Low: stocks.LowInventory(st, int64(s.Config.LowStockThreshold)), Demo: st.Demo,
		})
	}
	filter := url.Values{}
	for k, v := range map[string]string{"q": q.Q, "kind": string(q.Kind), "state": string(q.State)} {
		if v != "" {
			filter.Set(k, v)
		}
	}
	if next > 0 {
		nv := url.Values{}
		for k, v := range filter {
			nv[k] = v
		}
		nv.Set("after", strconv.FormatInt(next, 10))
		props.NextURL = "/stocks?" + nv.Encode()
	}
	if q.After > 0 {
		props.FirstURL = "/stocks?" + filter.Encode()
	}
	s.render(c, http.StatusOK, templates.StockListPage(props))
}

func displayName(t i18n.Localizer, st *models.Stock) string {
	if st.Name != "" {
		return st.Name
	}
	return t.T("stocks.unnamed", st.StockID)
}

// stockFromPath loads the stock named by :id, answering 404 when there is none.
func (s *Server) stockFromPath(c *gin.Context) (*models.Stock, bool) {
	return fromPath(s, c, s.Stocks.Get, stocks.ErrNotFound)
}

// localTime renders a stored UTC time in the configured zone.
func (s *Server) localTime(t time.Time) string {
	return t.In(s.loc).Format("2006-01-02 15:04:05")
}

// wxTime renders an RFC 3339 time from WeChat Pay in the configured zone,
// or as given when it does not parse.
func (s *Server) wxTime(v string) string {
	if v == "" {
		return "—"
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return s.localTime(t)
	}
	return v
}

// stockPage is /stocks/{id}: everything known about one stock.
func (s *Server) stockPage(c *gin.Context) {
	st, ok := s.stockFromPath(c)
	if !ok {
		return
	}
	p := s.page(c, "stocks.stock_title")
	p.Title = displayName(p.T, st)
	u := currentUser(c)
	props := templates.StockProps{
		Page: p, ID: st.ID, Name: displayName(p.T, st), Kind: p.T.T("stocks.kind." + string(st.Kind)),
		State: string(st.State), StateLabel: p.T.T("stocks.state." + string(st.State)),
		StateExplanation: p.T.T("stocks.state_help." + string(st.State)), Demo: st.Demo, Raw: st.Raw,
		CanRefresh:    s.allowed(u, http.MethodPost, "/stocks/:id/refresh"),
		CanUpload:     stocks.CanUpload(st) && s.allowed(u, http.MethodGet, "/stocks/:id/uploads/new"),
		CanDeactivate: stocks.CanDeactivate(st) && s.allowed(u, http.MethodGet, "/stocks/:id/deactivate"),
	}
	props.Facts = []templates.Fact{
		{Label: p.T.T("stocks.kind"), Value: props.Kind},
		{Label: p.T.T("stocks.stock_id"), Value: st.StockID},
	}
	if st.ProductCouponID != "" {
		props.Facts = append(props.Facts, templates.Fact{Label: p.T.T("stocks.product_coupon_id"), Value: st.ProductCouponID})
	}
	props.Facts = append(props.Facts,
		templates.Fact{Label: p.T.T("stocks.wx_state"), Value: st.WxState},
		templates.Fact{Label: p.T.T("stocks.code_mode"), Value: codeModeLabel(p.T, st.CouponCodeMode)},
		templates.Fact{Label: p.T.T("stocks.available_begin_time"), Value: s.wxTime(st.AvailableBeginTime)},
		templates.Fact{Label: p.T.T("stocks.available_end_time"), Value: s.wxTime(st.AvailableEndTime)},
	)
	if st.WxCreateTime != "" {
		props.Facts = append(props.Facts, templates.Fact{Label: p.T.T("stocks.create_time"), Value: s.wxTime(st.WxCreateTime)})
	}
	if w, ok := stocks.AvailabilityWindows(st); ok {
		props.Facts = append(props.Facts, s.windowFacts(p.T, w)...)
	}
	if stocks.UploadsCodes(st) {
		props.Codes = []templates.Fact{
			{Label: p.T.T("stocks.codes_total"), Value: count(st.TotalCount)},
			{Label: p.T.T("stocks.codes_available"), Value: count(st.AvailableCount)},
		}
		props.DefaultThreshold = strconv.Itoa(s.Config.LowStockThreshold)
		if st.LowStockThreshold != nil {
			props.Threshold = strconv.FormatInt(*st.LowStockThreshold, 10)
		}
		props.CanSetThreshold = s.allowed(u, http.MethodPost, "/stocks/:id/threshold")
		if threshold := stocks.Threshold(st, int64(s.Config.LowStockThreshold)); stocks.LowInventory(st, threshold) {
			props.LowWarning = p.T.T("stocks.low_inventory", *st.AvailableCount, threshold)
		}
	} else {
		props.Codes = []templates.Fact{{Label: p.T.T("stocks.codes"), Value: p.T.T("stocks.codes_not_uploaded")}}
	}
	props.SendRules = []templates.Fact{
		{Label: p.T.T("stocks.max_coupons"), Value: count(st.MaxCoupons)},
		{Label: p.T.T("stocks.max_coupons_per_user"), Value: count(st.MaxCouponsPerUser)},
		{Label: p.T.T("stocks.sent_count"), Value: count(st.SentCount)},
	}
	if st.DeactivateRequestNo != "" || st.DeactivateTime != "" {
		props.Deactivation = []templates.Fact{
			{Label: p.T.T("stocks.deactivate_time"), Value: s.wxTime(st.DeactivateTime)},
			{Label: p.T.T("stocks.deactivate_reason"), Value: st.DeactivateReason},
			{Label: p.T.T("stocks.deactivate_request_no"), Value: st.DeactivateRequestNo},
		}
	}
	for _, b := range st.Bundles {
		props.Bundles = append(props.Bundles, b.StockBundleID)
	}
	props.RefreshedAt = "—"
	if st.RefreshedAt != nil {
		props.RefreshedAt = s.localTime(*st.RefreshedAt)
		switch st.RefreshedBy {
		case "":
		case stocks.SystemActor:
			props.RefreshedAt = p.T.T("stocks.refreshed_by", props.RefreshedAt, p.T.T("stocks.refreshed_by_system"))
		default:
			props.RefreshedAt = p.T.T("stocks.refreshed_by", props.RefreshedAt, st.RefreshedBy)
		}
	}
	history, err := s.stockHistory(c, st.ID, p.T)
	if err != nil {
		s.serverError(c, err)
		return
	}
	props.History = history
	if s.allowed(u, http.MethodGet, "/audit") {
		props.HistoryURL = "/audit?target_type=stock&target_id=" + strconv.FormatInt(st.ID, 10)
	}
	props.Uploads = s.stockUploads(c, st)
	props.Activity = templates.StockActivityPanel(props.Page, s.stockActivity(c, st, props.Page.T)) // presend.go
	s.render(c, http.StatusOK, templates.StockPage(props))
}

func codeModeLabel(t i18n.Localizer, mode string) string {
	if mode == "" {
		return "—"
	}
	id := "stocks.code_mode." + mode
	if t.Has(id) {
		return t.T(id) + " (" + mode + ")"
	}
	return mode
}

// stockHistory is the stock's own audit trail, newest first.
func (s *Server) stockHistory(c *gin.Context, id int64, t i18n.Localizer) ([]templates.AuditLine, error) {
	entries, err := s.Stocks.History(c.Request.Context(), id, 100)
	if err != nil {
		return nil, err
	}
	out := make([]templates.AuditLine, 0, len(entries))
	for _, e := range entries {
		out = append(out, templates.AuditLine{
			When: s.localTime(e.OccurredAt), Actor: e.Actor,
			Action: labelOr(t, "audit.action."+e.Action, e.Action), Outcome: labelOr(t, "audit.outcome."+string(e.Outcome), string(e.Outcome)),
			RequestNo: e.WxRequestNo, ErrorCode: e.WxErrorCode, RequestID: e.WxRequestID,
		})
	}
	return out, nil
}

// stockRefresh reads the stock back from WeChat Pay.
func (s *Server) stockRefresh(c *gin.Context) {
	st, ok := s.stockFromPath(c)
	if !ok {
		return
	}
	t := s.localizer(c)
	back := "/stocks/" + strconv.FormatInt(st.ID, 10)
	if _, err := s.Stocks.Refresh(c.Request.Context(), s.auditContext(c), st.ID); err != nil {
		if prob := wxProblem(t, err); prob != nil {
			msg := prob.Message
			if msg == "" {
				msg = prob.Explanation
			}
			s.setFlash(c, "error", t.T("stocks.refresh_failed", prob.Code, msg, prob.RequestID))
			redirect(c, back)
			return
		}
		s.serverError(c, err)
		return
	}
	s.setFlash(c, "success", t.T("stocks.refreshed"))
	redirect(c, back)
}

// problemStatus is the status a page answers with after a WeChat Pay error:
// WeChat Pay's own 4xx, and 502 for its 5xx or no reply.
func problemStatus(p *templates.WxProblem) int {
	if p.Status >= 400 && p.Status < 500 {
		return p.Status
	}
	return http.StatusBadGateway
}

// labelOr translates id, or shows fallback when the catalogue has no such
// message.
func labelOr(t i18n.Localizer, id, fallback string) string {
	if t.Has(id) {
		return t.T(id)
	}
	return fallback
}

// windowFacts shows a merchant stock's weekly and irregular availability
// windows.
func (s *Server) windowFacts(t i18n.Localizer, w stocks.Windows) []templates.Fact {
	var out []templates.Fact
	if len(w.WeekDays) > 0 || len(w.DayTimes) > 0 {
		var days []string
		for _, d := range w.WeekDays {
			days = append(days, labelOr(t, "favor.weekday."+strconv.FormatInt(d, 10), strconv.FormatInt(d, 10)))
		}
		if len(days) == 0 {
			days = []string{t.T("stocks.every_day")}
		}
		var times []string
		for _, r := range w.DayTimes {
			times = append(times, clockTime(r.BeginTime)+"–"+clockTime(r.EndTime))
		}
		if len(times) == 0 {
			times = []string{t.T("stocks.all_day")}
		}
		out = append(out, templates.Fact{Label: t.T("stocks.available_week"), Value: strings.Join(days, "、") + " " + strings.Join(times, ", ")})
	}
	if len(w.Irregular) > 0 {
		var spans []string
		for _, r := range w.Irregular {
			spans = append(spans, s.wxTime(r.BeginTime)+" – "+s.wxTime(r.EndTime))
		}
		out = append(out, templates.Fact{Label: t.T("stocks.irregular_time"), Value: strings.Join(spans, "; ")})
	}
	return out
}

// clockTime renders seconds since midnight as HH:MM (24:00 for the end of
// the day).
func clockTime(sec int64) string {
	return fmt.Sprintf("%02d:%02d", sec/3600, sec%3600/60)
}
