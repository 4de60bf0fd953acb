package handlers

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"voucherconsole/internal/alerts"
	"voucherconsole/internal/models"
	"voucherconsole/internal/stocks"
	"voucherconsole/web/templates"
)

func alertViewer(u *models.User) alerts.Viewer {
	return alerts.Viewer{UserID: u.ID, Roles: u.RoleList()}
}

// unreadAlerts is the count shown in the navigation bar; a failure to count
// is logged and shows no count rather than failing the page.
func (s *Server) unreadAlerts(c *gin.Context, u *models.User) int64 {
	n, err := s.Alerts.Unread(c.Request.Context(), alertViewer(u))
	if err != nil {
		s.log(c).Warn("count unread alerts", "err", err)
		return 0
	}
	return n
}

// alertsPage is /alerts: the alerts the user may see, newest first; admins
// see every alert and how each outside delivery went.
func (s *Server) alertsPage(c *gin.Context) {
	u := currentUser(c)
	p := s.page(c, "alerts.title")
	v := alertViewer(u)
	items, err := s.Alerts.List(c.Request.Context(), v, 200)
	if err != nil {
		s.serverError(c, err)
		return
	}
	unread, err := s.Alerts.Unread(c.Request.Context(), v)
	if err != nil {
		s.serverError(c, err)
		return
	}
	admin := u.HasRole(models.RoleAdmin)
	var deliveries map[int64][]alerts.Delivery
	if admin {
		ids := make([]int64, len(items))
		for i, it := range items {
			ids[i] = it.ID
		}
		if deliveries, err = s.Alerts.Deliveries(c.Request.Context(), ids); err != nil {
			s.serverError(c, err)
			return
		}
	}
	msgs := alerts.Messages{T: p.T}
	props := templates.AlertsProps{Page: p, Unread: unread, ShowDeliveries: admin}
	if unread > 0 {
		props.UnreadText = p.T.T("alerts.unread", unread)
	}
	for _, it := range items {
		row := templates.AlertRow{
			ID: it.ID, Time: s.localTime(it.RaisedAt), Title: msgs.Title(&it.Row), Text: msgs.Text(&it.Row),
			Link: it.Link, Read: it.Read, Kind: it.Kind, Status: p.T.T("alerts.open"),
		}
		if it.ClearedAt != nil {
			row.Cleared = true
			row.Status = p.T.T("alerts.cleared", s.localTime(*it.ClearedAt))
		}
		for _, d := range deliveries[it.ID] {
			line := p.T.T("alerts.delivery."+d.Channel) + ": "
			switch d.Status {
			case alerts.DeliveryDelivered:
				line += p.T.T("alerts.delivery.delivered")
			case alerts.DeliveryFailed:
				line += p.T.T("alerts.delivery.failed", d.Attempts)
			default:
				line += p.T.T("alerts.delivery.pending", d.Attempts)
			}
			if d.LastError != "" && d.Status != alerts.DeliveryDelivered {
				line += " · " + p.T.T("alerts.delivery.last_error", d.LastError)
			}
			row.Deliveries = append(row.Deliveries, line)
		}
		props.Rows = append(props.Rows, row)
	}
	s.render(c, http.StatusOK, templates.AlertsPage(props))
}

// alertsMarkRead marks every alert the user sees as read.
func (s *Server) alertsMarkRead(c *gin.Context) {
	if err := s.Alerts.MarkAllRead(c.Request.Context(), alertViewer(currentUser(c))); err != nil {
		s.serverError(c, err)
		return
	}
	s.setFlash(c, "success", s.localizer(c).T("alerts.marked_read"))
	redirect(c, "/alerts")
}

// stockThreshold sets a stock's own low-stock threshold (empty: back to
// the default).
func (s *Server) stockThreshold(c *gin.Context) {
	st, ok := s.stockFromPath(c)
	if !ok {
		return
	}
	t := s.localizer(c)
	back := "/stocks/" + strconv.FormatInt(st.ID, 10)
	raw := strings.TrimSpace(c.PostForm("low_stock_threshold"))
	var threshold *int64
	if raw != "" {
		n, err := strconv.ParseInt(normalizeDigits(raw), 10, 64)
		if err != nil || n < 0 || n > stocks.MaxThreshold {
			s.setFlash(c, "error", t.T("stocks.threshold_invalid", stocks.MaxThreshold))
			c.Redirect(http.StatusSeeOther, back)
			return
		}
		threshold = &n
	}
	err := s.Stocks.SetThreshold(c.Request.Context(), s.auditContext(c), st.ID, threshold)
	switch {
	case errors.Is(err, stocks.ErrNotFound):
		s.notFound(c)
		return
	case err != nil:
		s.serverError(c, err)
		return
	}
	s.setFlash(c, "success", t.T("stocks.threshold_saved"))
	redirect(c, back)
}

// normalizeDigits turns full-width digits (what a Chinese input method
// types) into ASCII ones and drops thousands separators.
func normalizeDigits(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= '０' && r <= '９':
			b.WriteRune('0' + (r - '０'))
		case r == ',' || r == '，' || r == ' ' || r == '\u3000':
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
