package app

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"
	"time"

	"voucherconsole/internal/config"
	"voucherconsole/internal/database"
	"voucherconsole/internal/deactivate"
	"voucherconsole/internal/presend"
	"voucherconsole/internal/wxpay"
)

// Deactivation (document 001) and pre-send tokens (document 004): the two
// actions that change something on WeChat Pay from a single form post. Each
// records its intent before the call and its outcome after; a pending
// operation (a crash in between, or a retryable failure) is resent with the
// same request number by the resumer below.

// crashExitCode is the exit status of the fault hook, so a test can tell the
// injected crash from any other exit.
const crashExitCode = 3

// newActions builds the deactivation and pre-send services, with the fault
// hook when the settings ask for one.
func newActions(cfg config.Config, db *database.DB, wx *wxpay.Client, keys *presend.Keys, logger *slog.Logger) (*deactivate.Service, *presend.Service) {
	d := &deactivate.Service{DB: db.Gorm, WX: wx, AfterIntent: crashHook(cfg, logger, "deactivate")}
	p := &presend.Service{DB: db.Gorm, WX: wx, Keys: keys, AfterIntent: crashHook(cfg, logger, "presend")}
	return d, p
}

// crashHook is nil unless the settings arm the fault for action; armed, it
// exits the process at once, as a crash right after the intent was
// committed would: no outcome is recorded, nothing is sent.
func crashHook(cfg config.Config, logger *slog.Logger, action string) func() {
	if cfg.FaultCrashAfterIntent != action {
		return nil
	}
	logger.Warn("fault injection armed: the process exits right after recording an intent", "action", action)
	return func() {
		logger.Error("fault injection: exiting right after recording the intent", "action", action)
		os.Exit(crashExitCode)
	}
}

// ResumeActions resends the stock creations, deactivations and pre-sends
// left pending whose operation was last touched more than olderThan ago.
func (c *Console) ResumeActions(ctx context.Context, olderThan time.Duration) {
	s, serr := c.Stocks.ResumeCreate(ctx, olderThan)
	d, derr := c.Deactivate.Resume(ctx, olderThan)
	p, perr := c.Presend.Resume(ctx, olderThan)
	a, aerr := c.Approvals.Resume(ctx, olderThan) // approved, call not yet made
	if err := errors.Join(serr, derr, perr, aerr); err != nil && ctx.Err() == nil {
		c.Logger.Error("resume pending WeChat Pay operations", "err", err)
	}
	if s > 0 || d > 0 || p > 0 || a > 0 {
		c.Logger.Info("resumed pending WeChat Pay operations", "stock_creations", s, "deactivations", d, "presends", p, "approvals", a)
	}
}

// resumeEvery and resumeAfter: how often the resumer looks for pending
// operations, and how long one must have been left alone to be resent (so a
// call in flight in another request or instance is not sent twice at once).
const (
	resumeEvery = time.Minute
	resumeAfter = 2 * time.Minute
)

// startResumer resends, in the background, every pending operation at once
// (a restart after a crash: nothing of this process is in flight yet) and
// then, every minute, those left pending for a while. The returned function
// stops it and waits.
func (c *Console) startResumer(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		c.ResumeActions(ctx, 0)
		t := time.NewTicker(resumeEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				c.ResumeActions(ctx, resumeAfter)
			}
		}
	})
	return func() {
		cancel()
		wg.Wait()
	}
}
