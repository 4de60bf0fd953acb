package app

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"voucherconsole/internal/database"
)

// stateCollector reports, at each scrape, what the shared database says
// about the work in hand, for alerting: whether it is reachable, uploads by
// status, and WeChat Pay operations left pending (a crash or an outage
// between intent and outcome) with the age of the oldest. Every instance
// reports the same figures; alert on one series (max by …).
type stateCollector struct {
	db      *database.DB
	up      *prometheus.Desc
	uploads *prometheus.Desc
	pending *prometheus.Desc
	oldest  *prometheus.Desc
}

func newStateCollector(db *database.DB) *stateCollector {
	return &stateCollector{
		db:      db,
		up:      prometheus.NewDesc("console_database_up", "1 if the database answered this scrape, 0 if not.", nil, nil),
		uploads: prometheus.NewDesc("console_uploads", "Code uploads by status (shared database).", []string{"status"}, nil),
		pending: prometheus.NewDesc("console_wxpay_operations_pending", "WeChat Pay operations recorded but without an outcome yet.", nil, nil),
		oldest: prometheus.NewDesc("console_wxpay_operation_oldest_pending_seconds",
			"Age of the oldest pending WeChat Pay operation (0 when none).", nil, nil),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.up
	ch <- c.uploads
	ch <- c.pending
	ch <- c.oldest
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	g := c.db.Gorm.WithContext(ctx)
	var rows []struct {
		Status string
		N      int64
	}
	if err := g.Raw("SELECT status, COUNT(*) AS n FROM uploads GROUP BY status").Scan(&rows).Error; err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	for _, r := range rows {
		ch <- prometheus.MustNewConstMetric(c.uploads, prometheus.GaugeValue, float64(r.N), r.Status)
	}
	var n int64
	if err := g.Table("wx_operations").Where("status = 'pending'").Count(&n).Error; err != nil {
		return
	}
	// The oldest by its column, not MIN(): SQLite returns an aggregate's
	// time as text.
	var oldest []time.Time
	if err := g.Table("wx_operations").Where("status = 'pending'").Order("id").Limit(1).Pluck("created_at", &oldest).Error; err != nil {
		return
	}
	age := 0.0
	if len(oldest) > 0 {
		age = max(0, time.Since(oldest[0]).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age)
}
