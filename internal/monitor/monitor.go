// Package monitor keeps the console's picture of WeChat Pay fresh and tells
// people what needs them. A River periodic job (inserted by the elected
// leader instance, unique per interval) reads back every stock that can
// still change, records a snapshot of its code counts, and evaluates the
// alert conditions: stocks low on codes or running out within a day, stocks
// ending soon, failed uploads, WeChat Pay calls whose outcome has been
// unknown for more than ten minutes.
package monitor

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"gorm.io/gorm"

	"voucherconsole/internal/alerts"
	"voucherconsole/internal/clock"
	"voucherconsole/internal/models"
	"voucherconsole/internal/stocks"
)

// QueueName is the sync job's queue.
const QueueName = "monitor"

// Rules of the conditions (one place).
const (
	// EndingSoon is how far ahead a stock's end counts as soon.
	EndingSoon = 7 * 24 * time.Hour
	// RunOutWithin is the horizon of the running-out alert.
	RunOutWithin = 24 * time.Hour
	// OpUnknownAfter is how long a WeChat Pay call may stay pending before
	// its unknown outcome is an alert.
	OpUnknownAfter = 10 * time.Minute
	// RateWindow is how far back the sending rate is measured.
	RateWindow = 24 * time.Hour
)

// SyncArgs is the periodic job.
type SyncArgs struct{}

// Kind is the River job kind.
func (SyncArgs) Kind() string { return "stock_sync" }

// PeriodicJob is the sync job every interval: River inserts periodic jobs
// only on the leader instance, and the job is unique per interval, so one
// runs per interval however many instances share the database.
func PeriodicJob(interval time.Duration) *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(interval), func() (river.JobArgs, *river.InsertOpts) {
		return SyncArgs{}, &river.InsertOpts{Queue: QueueName, MaxAttempts: 1,
			UniqueOpts: river.UniqueOpts{ByPeriod: interval}}
	}, &river.PeriodicJobOpts{ID: "stock_sync", RunOnStart: true})
}

// Snapshot is a stock's code counts at a moment.
type Snapshot struct {
	ID             int64 `gorm:"primaryKey"`
	StockRef       int64
	TakenAt        time.Time
	TotalCount     *int64
	AvailableCount *int64
	SentCount      *int64
}

// TableName is the snapshots table.
func (Snapshot) TableName() string { return "stock_snapshots" }

// Monitor runs the sync and the evaluation.
type Monitor struct {
	DB       *gorm.DB
	Stocks   *stocks.Service
	Alerts   *alerts.Service
	Now      clock.Func
	Logger   *slog.Logger
	Interval time.Duration
	// Loc is the zone times in alert texts are given in.
	Loc *time.Location
	// DefaultThreshold is CONSOLE_LOW_STOCK_THRESHOLD.
	DefaultThreshold int64
	// Budget bounds one run's reading (the job's timeout is above it); the
	// stocks left are read at once by the same job, snoozed.
	Budget time.Duration
	// Readers is how many stocks are read at once; the WeChat Pay client
	// holds each read endpoint to its rate limit.
	Readers int
}

// Worker is the River worker of SyncArgs.
type Worker struct {
	river.WorkerDefaults[SyncArgs]
	M *Monitor
}

// Work syncs what is due and evaluates the alerts.
func (w *Worker) Work(ctx context.Context, job *river.Job[SyncArgs]) error {
	more, err := w.M.SyncDue(ctx)
	if err != nil {
		return err
	}
	if err := w.M.Evaluate(ctx); err != nil {
		return err
	}
	if more {
		return river.JobSnooze(time.Second)
	}
	return nil
}

// SyncDue reads back the stocks due, within the budget; it reports whether
// some are left.
func (m *Monitor) SyncDue(ctx context.Context) (bool, error) {
	budget := m.Budget
	if budget <= 0 {
		budget = 15 * time.Second
	}
	readers := max(m.Readers, 1)
	deadline := time.Now().Add(budget)
	for time.Now().Before(deadline) {
		ids, err := m.Stocks.SyncDue(ctx, m.Now.UTC(), 200)
		if err != nil {
			return false, err
		}
		if len(ids) == 0 {
			return false, nil
		}
		work := make(chan int64)
		var wg sync.WaitGroup
		for range readers {
			wg.Go(func() {
				for id := range work {
					m.syncOne(ctx, id)
				}
			})
		}
		for _, id := range ids {
			if time.Now().After(deadline) || ctx.Err() != nil {
				break
			}
			work <- id
		}
		close(work)
		wg.Wait()
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
	}
	return true, nil
}

func (m *Monitor) syncOne(ctx context.Context, id int64) {
	res, err := m.Stocks.Sync(ctx, id, m.Interval)
	if err != nil {
		m.Logger.Warn("stock sync", "stock", id, "err", err)
		return
	}
	if !res.Claimed {
		return
	}
	if res.Changed {
		m.Logger.Info("stock state changed at WeChat Pay", "stock", id, "from", res.From, "to", res.Stock.State)
	}
	st := res.Stock
	snap := Snapshot{StockRef: st.ID, TakenAt: m.Now.UTC(), TotalCount: st.TotalCount, AvailableCount: st.AvailableCount, SentCount: st.SentCount}
	if err := m.DB.WithContext(ctx).Create(&snap).Error; err != nil {
		m.Logger.Warn("stock snapshot", "stock", id, "err", err)
	}
}

// stockAudience is told about stocks and uploads.
var stockAudience = alerts.Audience{Roles: []models.Role{models.RoleOperator, models.RoleManager}}

func (m *Monitor) loc() *time.Location {
	if m.Loc == nil {
		return time.UTC
	}
	return m.Loc
}

// DisplayName is a stock's name, or its stock ID when it has none.
func DisplayName(st *models.Stock) string {
	if st.Name != "" {
		return st.Name
	}
	return st.StockID
}

// Evaluate raises the alerts whose conditions hold and clears the others.
func (m *Monitor) Evaluate(ctx context.Context) error {
	now := m.Now.UTC()
	var live []models.Stock
	if err := m.DB.WithContext(ctx).Where("state IN ?", []models.StockState{models.StateSending, models.StatePaused}).
		Order("id").Find(&live).Error; err != nil {
		return fmt.Errorf("evaluate alerts: %w", err)
	}
	var low, runOut, ending []string
	for i := range live {
		st := &live[i]
		key := "stock:" + strconv.FormatInt(st.ID, 10)
		link := "/stocks/" + strconv.FormatInt(st.ID, 10)
		ref := st.ID
		if st.State == models.StateSending && stocks.LowInventory(st, stocks.Threshold(st, m.DefaultThreshold)) {
			low = append(low, key)
			if _, err := m.Alerts.Raise(ctx, alerts.Alert{Kind: alerts.KindLowStock, Key: key, Audience: stockAudience,
				StockRef: &ref, Link: link, Args: []string{DisplayName(st), strconv.FormatInt(*st.AvailableCount, 10),
					strconv.FormatInt(stocks.Threshold(st, m.DefaultThreshold), 10)}}); err != nil {
				return err
			}
		}
		if st.State == models.StateSending && stocks.UploadsCodes(st) && st.AvailableCount != nil {
			est, err := m.Estimate(ctx, st)
			if err != nil {
				return err
			}
			if est.Known && est.Left < RunOutWithin {
				runOut = append(runOut, key)
				if _, err := m.Alerts.Raise(ctx, alerts.Alert{Kind: alerts.KindRunOut, Key: key, Audience: stockAudience,
					StockRef: &ref, Link: link, Args: []string{DisplayName(st), strconv.FormatInt(*st.AvailableCount, 10),
						strconv.FormatFloat(est.Left.Hours(), 'f', 1, 64)}}); err != nil {
					return err
				}
			}
		}
		if end, ok := EndTime(st); ok && end.After(now) && end.Sub(now) < EndingSoon {
			ending = append(ending, key)
			if _, err := m.Alerts.Raise(ctx, alerts.Alert{Kind: alerts.KindEndingSoon, Key: key, Audience: stockAudience,
				StockRef: &ref, Link: link, Args: []string{DisplayName(st), end.In(m.loc()).Format("2006-01-02 15:04 MST")}}); err != nil {
				return err
			}
		}
	}
	for kind, keys := range map[string][]string{alerts.KindLowStock: low, alerts.KindRunOut: runOut, alerts.KindEndingSoon: ending} {
		if err := m.Alerts.ClearOthers(ctx, kind, keys); err != nil {
			return err
		}
	}
	if err := m.evaluateUploads(ctx); err != nil {
		return err
	}
	return m.evaluateOperations(ctx, now)
}

// failedUpload is what the alert needs of an upload (the uploads package's
// table, read only).
type failedUpload struct {
	ID        int64
	StockRef  int64
	FileName  string
	ErrorCode string
}

func (m *Monitor) evaluateUploads(ctx context.Context) error {
	var ups []failedUpload
	if err := m.DB.WithContext(ctx).Table("uploads").Select("id, stock_ref, file_name, error_code").
		Where("status = ?", "failed").Order("id").Limit(1000).Scan(&ups).Error; err != nil {
		return fmt.Errorf("failed uploads: %w", err)
	}
	var keys []string
	for _, u := range ups {
		key := "upload:" + strconv.FormatInt(u.ID, 10)
		keys = append(keys, key)
		ref := u.StockRef
		code := u.ErrorCode
		if code == "" {
			code = "—"
		}
		if _, err := m.Alerts.Raise(ctx, alerts.Alert{Kind: alerts.KindUploadFailed, Key: key, Audience: stockAudience,
			StockRef: &ref, Link: "/uploads/" + strconv.FormatInt(u.ID, 10), Args: []string{u.FileName, code}}); err != nil {
			return err
		}
	}
	return m.Alerts.ClearOthers(ctx, alerts.KindUploadFailed, keys)
}

func (m *Monitor) evaluateOperations(ctx context.Context, now time.Time) error {
	var ops []models.WxOperation
	if err := m.DB.WithContext(ctx).Where("status = ? AND created_at < ?", models.OpPending, now.Add(-OpUnknownAfter)).
		Order("id").Limit(1000).Find(&ops).Error; err != nil {
		return fmt.Errorf("pending operations: %w", err)
	}
	var keys []string
	for _, op := range ops {
		key := "op:" + strconv.FormatInt(op.ID, 10)
		keys = append(keys, key)
		link := ""
		if op.StockRef != nil {
			link = "/stocks/" + strconv.FormatInt(*op.StockRef, 10)
		}
		if _, err := m.Alerts.Raise(ctx, alerts.Alert{Kind: alerts.KindOpUnknown, Key: key,
			Audience: alerts.Audience{Roles: []models.Role{models.RoleOperator, models.RoleManager, models.RoleAdmin}},
			StockRef: op.StockRef, Link: link, Args: []string{op.Kind, op.RequestNo}}); err != nil {
			return err
		}
	}
	return m.Alerts.ClearOthers(ctx, alerts.KindOpUnknown, keys)
}

// EndTime is when a stock's available period ends, if it says.
func EndTime(st *models.Stock) (time.Time, bool) {
	if st.AvailableEndTime == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, st.AvailableEndTime)
	return t, err == nil
}

// Estimate is how long a stock's available codes last at its current rate.
type Estimate struct {
	Known       bool          // a rate could be measured (two snapshots, codes sent between them)
	PerHour     float64       // codes sent per hour over the rate window
	Left        time.Duration // until available reaches 0 at that rate
	MeasuredFor time.Duration
}

// Estimate measures a stock's sending rate from its snapshots over the last
// RateWindow (and its current sent count).
func (m *Monitor) Estimate(ctx context.Context, st *models.Stock) (Estimate, error) {
	return EstimateRunOut(ctx, m.DB, st, m.Now.UTC())
}

// EstimateRunOut is Estimate without a Monitor (the overview uses it).
func EstimateRunOut(ctx context.Context, db *gorm.DB, st *models.Stock, now time.Time) (Estimate, error) {
	if st.SentCount == nil || st.AvailableCount == nil {
		return Estimate{}, nil
	}
	var first Snapshot
	err := db.WithContext(ctx).Where("stock_ref = ? AND taken_at >= ? AND sent_count IS NOT NULL", st.ID, now.Add(-RateWindow)).
		Order("taken_at").Limit(1).Find(&first).Error
	if err != nil {
		return Estimate{}, fmt.Errorf("rate of stock %d: %w", st.ID, err)
	}
	if first.ID == 0 || first.SentCount == nil {
		return Estimate{}, nil
	}
	span := now.Sub(first.TakenAt)
	sent := *st.SentCount - *first.SentCount
	if span < time.Minute || sent <= 0 {
		return Estimate{}, nil
	}
	perHour := float64(sent) / span.Hours()
	left := time.Duration(float64(*st.AvailableCount) / perHour * float64(time.Hour))
	return Estimate{Known: true, PerHour: perHour, Left: left, MeasuredFor: span}, nil
}
