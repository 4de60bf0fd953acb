package app

import (
	"log/slog"
	"time"

	"github.com/riverqueue/river"

	"voucherconsole/internal/alerts"
	"voucherconsole/internal/clock"
	"voucherconsole/internal/config"
	"voucherconsole/internal/database"
	"voucherconsole/internal/i18n"
	"voucherconsole/internal/jobs"
	"voucherconsole/internal/monitor"
	"voucherconsole/internal/stocks"
)

// jobsAddOn is what other parts of the console add to the job engine that
// startUploads builds: workers, their queues, periodic jobs, and a hook
// handed the engine once it exists.
type jobsAddOn struct {
	workers  []func(*river.Workers)
	queues   map[string]river.QueueConfig
	periodic []*river.PeriodicJob
	onEngine []func(*jobs.Engine)
}

func (a jobsAddOn) register(w *river.Workers, queues map[string]river.QueueConfig) {
	for _, add := range a.workers {
		add(w)
	}
	for name, q := range a.queues {
		queues[name] = q
	}
}

func (a jobsAddOn) started(e *jobs.Engine) {
	for _, f := range a.onEngine {
		f(e)
	}
}

// newMonitoring builds the alert service and the stock monitor (fresh state,
// snapshots, alert conditions), and the audit stream when configured: their
// workers and periodic jobs run on the console's job engine.
func newMonitoring(cfg config.Config, db *database.DB, st *stocks.Service, catalog *i18n.Catalog, logger *slog.Logger) (*alerts.Service, *monitor.Monitor, jobsAddOn) {
	now := clock.Func(nil)
	urls := map[string]string{}
	var channels []string
	if cfg.AlertWeComWebhook != "" {
		urls[alerts.ChannelWeCom] = cfg.AlertWeComWebhook
		channels = append(channels, alerts.ChannelWeCom)
	}
	if cfg.AlertWebhook != "" {
		urls[alerts.ChannelWebhook] = cfg.AlertWebhook
		channels = append(channels, alerts.ChannelWebhook)
	}
	svc := &alerts.Service{DB: db.Gorm, Now: now, Channels: channels}
	lang, _ := i18n.Parse(cfg.AlertLanguage)
	if lang == "" {
		lang = i18n.Chinese
	}
	client := alerts.NewHTTPClient()
	m := &monitor.Monitor{DB: db.Gorm, Stocks: st, Alerts: svc, Now: now, Logger: logger.With("component", "monitor"),
		Interval: cfg.StockSyncInterval, Loc: cfg.Location(), DefaultThreshold: int64(cfg.LowStockThreshold), Readers: 4}
	add := jobsAddOn{
		queues:   map[string]river.QueueConfig{monitor.QueueName: {MaxWorkers: 1}, alerts.QueueName: {MaxWorkers: 4}},
		periodic: []*river.PeriodicJob{monitor.PeriodicJob(cfg.StockSyncInterval)},
		workers: []func(*river.Workers){func(w *river.Workers) {
			river.AddWorker(w, &monitor.Worker{M: m})
			river.AddWorker(w, &alerts.Worker{DB: db.Gorm, Client: client, URLs: urls,
				Messages: alerts.Messages{T: catalog.For(lang)}, Now: now})
			river.AddWorker(w, &alerts.StreamWorker{DB: db.Gorm, Client: client, URL: cfg.AlertWebhook, Now: now})
		}},
		onEngine: []func(*jobs.Engine){func(e *jobs.Engine) { svc.Jobs = e }},
	}
	if cfg.AuditStream {
		add.periodic = append(add.periodic, river.NewPeriodicJob(river.PeriodicInterval(5*time.Second),
			func() (river.JobArgs, *river.InsertOpts) { return alerts.StreamArgs{}, nil },
			&river.PeriodicJobOpts{ID: "audit_stream", RunOnStart: true}))
	}
	return svc, m, add
}
