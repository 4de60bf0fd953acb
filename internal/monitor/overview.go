package monitor

import (
	"context"
	"fmt"
	"slices"
	"time"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/models"
	"voucherconsole/internal/stocks"
)

// Overview is what the home page shows: the figures, read in one place.
type Overview struct {
	At          time.Time
	StateCounts map[models.StockState]int64
	Total       int64
	Low         []LowStock
	Ending      []EndingStock
	Uploads     UploadCounts
	FailedUps   []FailedUpload
	Unknown     []models.WxOperation // pending calls, oldest first
	Failures    []audit.Entry        // the last failures with a WeChat Pay code
	Charts      []Chart              // the total first, then per stock
}

// LowStock is a sending stock below its threshold.
type LowStock struct {
	Stock     models.Stock
	Threshold int64
	Estimate  Estimate
}

// EndingStock is a stock that still sends and ends within EndingSoon.
type EndingStock struct {
	Stock models.Stock
	End   time.Time
}

// UploadCounts are the uploads by what they wait for.
type UploadCounts struct {
	Running int64 // sending
	Waiting int64 // checked (waiting to be started) or queued
	Failed  int64
}

// FailedUpload is a failed upload as the overview lists it.
type FailedUpload struct {
	ID        int64
	StockRef  int64
	FileName  string
	ErrorCode string
}

// Chart is codes available and sent over time, from the snapshots: one
// point per bucket (the last snapshot in it; the total sums the stocks').
type Chart struct {
	StockRef  int64 // 0: the total
	Name      string
	Times     []time.Time
	Available []int64
	Sent      []int64
}

// Limits of the overview's lists and charts.
const (
	overviewList   = 10
	chartStocks    = 5
	chartWindow    = 7 * 24 * time.Hour
	chartBuckets   = 28 // 6-hour buckets over the window
	failuresListed = 5
)

// Overview reads the figures.
func (m *Monitor) Overview(ctx context.Context) (*Overview, error) {
	now := m.Now.UTC()
	db := m.DB.WithContext(ctx)
	o := &Overview{At: now, StateCounts: map[models.StockState]int64{}}
	var counts []struct {
		State models.StockState
		N     int64
	}
	if err := db.Model(&models.Stock{}).Select("state, COUNT(*) AS n").Group("state").Scan(&counts).Error; err != nil {
		return nil, fmt.Errorf("overview states: %w", err)
	}
	for _, c := range counts {
		o.StateCounts[c.State] = c.N
		o.Total += c.N
	}
	var live []models.Stock
	if err := db.Where("state IN ?", []models.StockState{models.StateSending, models.StatePaused}).Order("id").Limit(5000).Find(&live).Error; err != nil {
		return nil, fmt.Errorf("overview stocks: %w", err)
	}
	for i := range live {
		st := live[i]
		th := stocks.Threshold(&st, m.DefaultThreshold)
		if st.State == models.StateSending && stocks.LowInventory(&st, th) {
			est, err := EstimateRunOut(ctx, m.DB, &st, now)
			if err != nil {
				return nil, err
			}
			o.Low = append(o.Low, LowStock{Stock: st, Threshold: th, Estimate: est})
		}
		if end, ok := EndTime(&st); ok && end.After(now) && end.Sub(now) < EndingSoon {
			o.Ending = append(o.Ending, EndingStock{Stock: st, End: end})
		}
	}
	slices.SortFunc(o.Low, func(a, b LowStock) int { return int(*a.Stock.AvailableCount - *b.Stock.AvailableCount) })
	slices.SortFunc(o.Ending, func(a, b EndingStock) int { return a.End.Compare(b.End) })
	o.Low, o.Ending = o.Low[:min(len(o.Low), overviewList)], o.Ending[:min(len(o.Ending), overviewList)]

	var ups []struct {
		Status string
		N      int64
	}
	if err := db.Table("uploads").Select("status, COUNT(*) AS n").
		Where("status IN ?", []string{"checked", "queued", "sending", "failed"}).Group("status").Scan(&ups).Error; err != nil {
		return nil, fmt.Errorf("overview uploads: %w", err)
	}
	for _, u := range ups {
		switch u.Status {
		case "sending":
			o.Uploads.Running += u.N
		case "checked", "queued":
			o.Uploads.Waiting += u.N
		case "failed":
			o.Uploads.Failed += u.N
		}
	}
	if err := db.Table("uploads").Select("id, stock_ref, file_name, error_code").Where("status = ?", "failed").
		Order("id DESC").Limit(overviewList).Scan(&o.FailedUps).Error; err != nil {
		return nil, fmt.Errorf("overview failed uploads: %w", err)
	}
	if err := db.Where("status = ?", models.OpPending).Order("id").Limit(overviewList).Find(&o.Unknown).Error; err != nil {
		return nil, fmt.Errorf("overview pending operations: %w", err)
	}
	if err := db.Where("outcome = ? AND wx_error_code <> ''", audit.Failure).Order("occurred_at DESC, seq DESC").
		Limit(failuresListed).Find(&o.Failures).Error; err != nil {
		return nil, fmt.Errorf("overview failures: %w", err)
	}
	charts, err := m.charts(ctx, now, live)
	if err != nil {
		return nil, err
	}
	o.Charts = charts
	return o, nil
}

// charts builds the total and the charts of the stocks that send the most.
func (m *Monitor) charts(ctx context.Context, now time.Time, live []models.Stock) ([]Chart, error) {
	from := now.Add(-chartWindow)
	var snaps []Snapshot
	if err := m.DB.WithContext(ctx).Where("taken_at >= ?", from).Order("taken_at").Limit(200000).Find(&snaps).Error; err != nil {
		return nil, fmt.Errorf("overview snapshots: %w", err)
	}
	if len(snaps) == 0 {
		return nil, nil
	}
	step := chartWindow / chartBuckets
	bucket := func(t time.Time) int { return min(int(t.Sub(from)/step), chartBuckets-1) }
	// last[stock][bucket] is the stock's last snapshot in the bucket.
	last := map[int64][]*Snapshot{}
	for i := range snaps {
		s := &snaps[i]
		if last[s.StockRef] == nil {
			last[s.StockRef] = make([]*Snapshot, chartBuckets)
		}
		last[s.StockRef][bucket(s.TakenAt)] = s
	}
	first := chartBuckets
	for _, bs := range last {
		for i, s := range bs {
			if s != nil {
				first = min(first, i)
				break
			}
		}
	}
	times := make([]time.Time, 0, chartBuckets-first)
	for i := first; i < chartBuckets; i++ {
		times = append(times, from.Add(time.Duration(i+1)*step))
	}
	series := func(bs []*Snapshot) (avail, sent []int64) {
		var a, s int64
		for i := first; i < chartBuckets; i++ {
			if b := bs[i]; b != nil { // carry the last known value forward
				if b.AvailableCount != nil {
					a = *b.AvailableCount
				}
				if b.SentCount != nil {
					s = *b.SentCount
				}
			}
			avail, sent = append(avail, a), append(sent, s)
		}
		return avail, sent
	}
	total := Chart{Times: times, Available: make([]int64, len(times)), Sent: make([]int64, len(times))}
	names := map[int64]string{}
	for i := range live {
		names[live[i].ID] = DisplayName(&live[i])
	}
	var per []Chart
	for ref, bs := range last {
		a, s := series(bs)
		for i := range times {
			total.Available[i] += a[i]
			total.Sent[i] += s[i]
		}
		if name, ok := names[ref]; ok {
			per = append(per, Chart{StockRef: ref, Name: name, Times: times, Available: a, Sent: s})
		}
	}
	slices.SortFunc(per, func(x, y Chart) int {
		dx, dy := x.Sent[len(x.Sent)-1]-x.Sent[0], y.Sent[len(y.Sent)-1]-y.Sent[0]
		if dx != dy {
			return int(dy - dx)
		}
		return int(x.StockRef - y.StockRef)
	})
	return append([]Chart{total}, per[:min(len(per), chartStocks)]...), nil
}
