package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/riverqueue/river"

	"voucherconsole/internal/config"
	"voucherconsole/internal/database"
	"voucherconsole/internal/filestore"
	"voucherconsole/internal/jobs"
	"voucherconsole/internal/stocks"
	"voucherconsole/internal/uploads"
	"voucherconsole/internal/wxpay"
)

// uploadsRuntime is the code-upload pipeline of a running console: the
// service, the job engine working its jobs, and the sweep.
type uploadsRuntime struct {
	Service *uploads.Service
	Engine  *jobs.Engine
	stop    func()
}

// startUploads migrates River's tables, builds the upload service with its
// own WeChat Pay client (the console's identities and hosts, its upload
// endpoints held to their configured rate across every instance sharing the
// database) and starts working upload jobs.
func startUploads(ctx context.Context, cfg config.Config, db *database.DB, wx *wxpay.Client, transport http.RoundTripper, st *stocks.Service, logger *slog.Logger, more jobsAddOn) (*uploadsRuntime, error) {
	if err := jobs.Migrate(ctx, db); err != nil {
		return nil, err
	}
	var rate wxpay.Rate // zero: the client's configured or default rate
	if cfg.UploadRate > 0 {
		rate = wxpay.Rate{N: 1, Per: time.Duration(float64(time.Second) / cfg.UploadRate)}
	}
	client, err := uploads.NewUploadClientVia(wx.Config(), &uploads.RateLimiter{DB: db}, rate, transport)
	if err != nil {
		return nil, fmt.Errorf("upload client: %w", err)
	}
	// Files are kept in the database, so that every instance sharing it
	// reads them; those kept in the data directory before still open here.
	files := &filestore.DB{DB: db.Gorm, Legacy: filestore.Dir{Root: cfg.DataDir}}
	svc := &uploads.Service{DB: db, WX: client, Stocks: st, Files: files, DataDir: cfg.DataDir, Logger: logger.With("component", "uploads")}
	workers := river.NewWorkers()
	river.AddWorker(workers, &uploads.Worker{Service: svc})
	queues := map[string]river.QueueConfig{uploads.QueueName: {MaxWorkers: 4}}
	more.register(workers, queues)
	engine, err := jobs.New(db, jobs.Config{
		Workers: workers, Logger: logger.With("component", "jobs"),
		Queues: queues, PeriodicJobs: more.periodic,
	})
	if err != nil {
		return nil, err
	}
	svc.Jobs = engine
	more.started(engine)
	runCtx, cancel := context.WithCancel(context.Background())
	if err := engine.Start(runCtx); err != nil {
		cancel()
		return nil, fmt.Errorf("start job engine: %w", err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { svc.RunSweeper(runCtx) })
	wg.Go(func() { sweepFiles(runCtx, files, logger) })
	logger.Info("job engine running", "instance", engine.ID(), "dialect", db.Dialect)
	return &uploadsRuntime{Service: svc, Engine: engine, stop: func() {
		// Running slices end at once (their jobs snooze, to be picked up
		// again by this or another instance); give them a few seconds.
		svc.Drain()
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		if err := engine.Stop(sctx); err != nil {
			logger.Warn("stop job engine", "err", err)
		}
		cancel()
		wg.Wait()
	}}, nil
}

// sweepFiles removes, every hour, the files whose transfer began more than
// an hour before and never completed (an instance stopped mid-upload).
func sweepFiles(ctx context.Context, files *filestore.DB, logger *slog.Logger) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := files.SweepIncomplete(ctx, time.Now().Add(-time.Hour)); err != nil {
			logger.Warn("sweep incomplete files", "err", err)
		} else if n > 0 {
			logger.Info("swept incomplete files", "files", n)
		}
	}
}
