package uploads_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/database"
	"voucherconsole/internal/testdb"
	"voucherconsole/internal/uploads"
	"voucherconsole/internal/wxpay"
	"voucherconsole/internal/wxpay/sandbox"
)

// benchRate is R of acceptance 7: the sandbox answers 429 above R requests
// per second, and the console is configured to send at R.
const benchRate = 100

// BenchmarkSend1M sends 1,000,000 codes (5,000 batches) to the in-process
// sandbox limited to R = 100 requests/s, through the whole pipeline (check,
// River job slices, shared rate limiter, batch commits), and reports the
// achieved rate. About 50 s per database:
//
//	go test -run '^$' -bench 'Send1M/sqlite' -benchtime 1x ./internal/uploads/
//
// Metrics: batches/s, ratio-of-R (goal ≥ 0.9), throttled (requests the
// sandbox refused with 429; goal 0), check-s (the dry run of the file).
func BenchmarkSend1M(b *testing.B) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		b.Run(dialect, func(b *testing.B) {
			for b.Loop() {
				var db *database.DB
				if dialect == "sqlite" {
					db = testdb.SQLite(b)
				} else {
					db = testdb.Postgres(b)
				}
				sendMillion(b, db)
			}
		})
	}
}

func sendMillion(b *testing.B, db *database.DB) {
	sb := newSandbox(b, sandbox.Options{RateLimit: benchRate})
	st := productStock(b, db, sb)
	in := startInstance(b, db, sb, envOptions{
		rate: wxpay.PerSecond(benchRate),
		// The production defaults.
		options: uploads.Options{Slice: 15 * time.Second, LeaseTTL: 10 * time.Second, Heartbeat: time.Second, SweepEvery: 5 * time.Second},
	})
	var file bytes.Buffer
	for i := 1; i <= 1_000_000; i++ {
		fmt.Fprintf(&file, "BENCH-%07d\r\n", i)
	}
	b.StopTimer()
	checkStart := time.Now()
	u := check(b, in.svc, st, "million.csv", file.Bytes())
	checkTime := time.Since(checkStart)
	if u.BatchesTotal != 5000 {
		b.Fatalf("%d batches", u.BatchesTotal)
	}
	b.StartTimer()
	start := time.Now()
	if err := in.svc.Start(context.Background(), audit.Context{Actor: "bench"}, u.ID); err != nil {
		b.Fatal(err)
	}
	u = waitEnded(b, in.svc, u.ID, 10*time.Minute)
	elapsed := time.Since(start)
	b.StopTimer()
	if u.Status != uploads.StatusFinished || u.CodesUploaded != 1_000_000 {
		b.Fatalf("upload: %+v", u)
	}
	throttled := 0
	for _, r := range sb.Requests() {
		throttled += r.Count - 1
	}
	rate := float64(u.BatchesTotal) / elapsed.Seconds()
	b.ReportMetric(rate, "batches/s")
	b.ReportMetric(rate/benchRate, "ratio-of-R")
	b.ReportMetric(float64(throttled), "throttled")
	b.ReportMetric(checkTime.Seconds(), "check-s")
	b.Logf("%s: 1,000,000 codes in %d batches in %s: %.1f batches/s = %.3f R (R = %d/s); %d requests throttled; check %s",
		db.Dialect, u.BatchesTotal, elapsed.Round(time.Millisecond), rate, rate/benchRate, benchRate, throttled, checkTime.Round(time.Millisecond))
	in.stop()
	b.StartTimer()
}
