package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"voucherconsole/internal/app"
	"voucherconsole/internal/audit"
	"voucherconsole/internal/config"
	"voucherconsole/internal/models"
	"voucherconsole/internal/testdb"
	"voucherconsole/internal/users"
)

// BenchmarkAuditLoad is acceptance 1 and 2 of the audit log: with 1,000,000
// entries in PostgreSQL (CONSOLE_AUDIT_LOAD_ENTRIES overrides the count;
// -short loads 100,000), 16 concurrent clients request over loopback the
// first page of /audit, a page 10,000 entries deep, a filtered page (one
// user, one action, one week) and a few more, and it reports p50 and p99
// latencies per page as custom metrics (…-p99-ms). It then exports every
// entry as CSV and reports the process's peak RSS above its level before the
// export (export-peak-rss-MB).
//
// The entries are loaded with COPY, chained with valid hashes (the chain
// verifies), spread over the past 365 days among 40 users and 12 actions.
//
//	go test -run '^$' -bench AuditLoad -benchtime 1x -timeout 30m ./internal/e2e/
func BenchmarkAuditLoad(b *testing.B) {
	n := 1_000_000
	if testing.Short() {
		n = 100_000
	}
	if v := os.Getenv("CONSOLE_AUDIT_LOAD_ENTRIES"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	const clients = 16
	perClient := 100
	ctx := context.Background()

	// CONSOLE_AUDIT_LOAD_DATABASE_URL runs against an existing database
	// (kept between runs; entries are loaded once); by default a fresh one.
	dbURL := os.Getenv("CONSOLE_AUDIT_LOAD_DATABASE_URL")
	if dbURL == "" {
		dbURL = testdb.PostgresURL(b)
	}
	dir := b.TempDir()
	cfg, _, err := config.Load("console", nil, func(k string) string {
		switch k {
		case "CONSOLE_DATABASE_URL":
			return dbURL
		case "CONSOLE_DATA_DIR":
			return dir
		}
		return ""
	}, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	con, err := app.Build(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(con.Server.Handler())
	b.Cleanup(func() {
		ts.Close()
		con.Close()
	})

	var have int64
	if err := con.DB.Gorm.Model(&audit.Entry{}).Count(&have).Error; err != nil {
		b.Fatal(err)
	}
	var first time.Time
	if have < int64(n) {
		start := time.Now()
		end := time.Now().Add(-time.Hour).UTC()
		first = end.Add(-365 * 24 * time.Hour)
		if err := loadEntries(ctx, con, n, first, end); err != nil {
			b.Fatal(err)
		}
		if _, err := con.DB.SQL.ExecContext(ctx, "VACUUM ANALYZE audit_entries"); err != nil {
			b.Fatal(err)
		}
		// Write the loaded pages out now rather than during the measurements
		// (needs superuser or pg_checkpoint; skipped without).
		_, _ = con.DB.SQL.ExecContext(ctx, "CHECKPOINT")
		b.Logf("loaded %d entries in %s", n, time.Since(start).Round(time.Second))
	} else {
		if err := con.DB.Gorm.Raw("SELECT MIN(occurred_at) FROM audit_entries").Scan(&first).Error; err != nil {
			b.Fatal(err)
		}
		b.Logf("using the %d entries already in the database", have)
	}

	if _, err := con.Users.Add(ctx, audit.Context{Actor: "bench"}, "boss", "a-long-test-password", []models.Role{models.RoleManager}, false); err != nil && !errors.Is(err, users.ErrUsernameTaken) {
		b.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Transport: &http.Transport{MaxIdleConnsPerHost: clients * 2}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.PostForm(ts.URL+"/login", url.Values{"username": {"boss"}, "password": {"a-long-test-password"}})
	if err != nil || resp.StatusCode != http.StatusSeeOther {
		b.Fatalf("sign-in: %v %v", resp, err)
	}
	resp.Body.Close()

	last, err := audit.LastSeq(ctx, con.DB.Gorm)
	if err != nil {
		b.Fatal(err)
	}
	// One week in the middle of the log, entered in Shanghai time.
	loc := cfg.Location()
	weekStart := first.Add(180 * 24 * time.Hour).In(loc).Truncate(24 * time.Hour)
	week := url.Values{
		"user": {"user07"}, "action": {"stock.create"},
		"from": {weekStart.Format("2006-01-02T15:04")}, "to": {weekStart.AddDate(0, 0, 7).Format("2006-01-02T15:04")},
	}
	// A piece of one request number, for the free-text search.
	var reqNo string
	if err := con.DB.Gorm.Raw("SELECT wx_request_no FROM audit_entries WHERE seq > ? AND wx_request_no <> '' ORDER BY seq LIMIT 1", last/3).Scan(&reqNo).Error; err != nil || len(reqNo) < 14 {
		b.Fatalf("request number %q: %v", reqNo, err)
	}
	scenarios := []struct{ name, path string }{
		{"first", "/audit"},
		{"deep", fmt.Sprintf("/audit?before=%d", last-10_000)},
		{"filtered", "/audit?" + week.Encode()},
		{"week", "/audit?" + url.Values{"from": week["from"], "to": week["to"]}.Encode()},
		{"stock", "/audit?target_type=stock&target_id=1234"},
		{"search", "/audit?q=" + url.QueryEscape(strings.ToLower(reqNo[4:14]))},
	}
	b.ResetTimer()
	for _, sc := range scenarios {
		// Warm up, and check the page shows entries.
		body := get(b, client, ts.URL+sc.path)
		shown := strings.Count(body, "data-seq=")
		if shown == 0 {
			b.Fatalf("%s: no entries on %s", sc.name, sc.path)
		}
		for range 20 {
			get(b, client, ts.URL+sc.path)
		}
		lat := make([]time.Duration, 0, clients*perClient)
		var mu sync.Mutex
		var wg sync.WaitGroup
		t0 := time.Now()
		for range clients {
			wg.Go(func() {
				mine := make([]time.Duration, 0, perClient)
				for range perClient {
					s := time.Now()
					get(b, client, ts.URL+sc.path)
					mine = append(mine, time.Since(s))
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			})
		}
		wg.Wait()
		wall := time.Since(t0)
		slices.Sort(lat)
		pct := func(p float64) float64 {
			return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000
		}
		b.ReportMetric(pct(0.50), sc.name+"-p50-ms")
		b.ReportMetric(pct(0.99), sc.name+"-p99-ms")
		b.Logf("%-8s %4d entries shown  p50 %6.1f ms  p90 %6.1f ms  p99 %6.1f ms  max %6.1f ms  %5.0f req/s  (%s)",
			sc.name, shown, pct(0.50), pct(0.90), pct(0.99), float64(lat[len(lat)-1].Microseconds())/1000,
			float64(len(lat))/wall.Seconds(), sc.path)
	}

	// Export everything: the memory stays flat.
	runtimeRSS := func(field string) float64 {
		data, _ := os.ReadFile("/proc/self/status")
		for line := range strings.Lines(string(data)) {
			if rest, ok := strings.CutPrefix(line, field+":"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
				return kb / 1024
			}
		}
		return 0
	}
	before := runtimeRSS("VmRSS")
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // reset the peak (VmHWM)
	t0 := time.Now()
	resp, err = client.Get(ts.URL + "/audit/export.csv")
	if err != nil || resp.StatusCode != 200 {
		b.Fatalf("export: %v %v", resp, err)
	}
	var rows, size int64
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		size += int64(len(line))
		if bytes.HasSuffix(line, []byte("\n")) {
			rows++
		}
		if err == io.EOF {
			break
		}
		if err != nil && err != bufio.ErrBufferFull {
			b.Fatal(err)
		}
	}
	resp.Body.Close()
	peak := runtimeRSS("VmHWM")
	b.ReportMetric(peak-before, "export-peak-rss-MB")
	b.Logf("export: %d lines, %.0f MB in %s; RSS before %.0f MB, peak during %.0f MB (+%.0f MB)",
		rows, float64(size)/1e6, time.Since(t0).Round(time.Millisecond), before, peak, peak-before)
	if rows < int64(n) {
		b.Fatalf("export has %d lines for %d entries", rows, n)
	}
}

func get(b *testing.B, c *http.Client, u string) string {
	resp, err := c.Get(u)
	if err != nil {
		b.Error(err)
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		b.Errorf("%s: %d", u, resp.StatusCode)
	}
	return string(body)
}

var loadActions = []string{
	"stock.create", "stock.register", "stock.refresh", "stock.deactivate", "upload.start", "upload.batch",
	"upload.finish", "presend.token", audit.ActionSignIn, audit.ActionSignOut, audit.ActionAccessDenied, audit.ActionSignInFailed,
}

// loadEntries appends n chained entries spread evenly over [from, to) with
// COPY, continuing the existing chain.
func loadEntries(ctx context.Context, con *app.Console, n int, from, to time.Time) error {
	var tip audit.Entry
	err := con.DB.Gorm.WithContext(ctx).Order("seq DESC").Limit(1).Find(&tip).Error
	if err != nil {
		return err
	}
	prev := tip.Hash
	if tip.Seq == 0 {
		prev = audit.GenesisHash
	}
	rng := rand.New(rand.NewPCG(7, 42))
	step := to.Sub(from) / time.Duration(n)
	cols := []string{"seq", "occurred_at", "actor_id", "actor", "actor_roles", "action", "target_type", "target_id",
		"outcome", "wx_request_no", "wx_error_code", "wx_request_id", "client_ip", "user_agent", "request_id", "detail", "prev_hash", "hash"}
	i := 0
	var e audit.Entry
	src := pgx.CopyFromFunc(func() ([]any, error) {
		if i == n {
			return nil, nil
		}
		u := rng.IntN(40)
		actorID := int64(1000 + u)
		e = audit.Entry{
			Seq:        tip.Seq + int64(i) + 1,
			OccurredAt: from.Add(time.Duration(i) * step).Truncate(time.Microsecond),
			ActorID:    &actorID,
			Actor:      fmt.Sprintf("user%02d", u),
			ActorRoles: []string{"operator", "manager", "operator,manager", "support"}[u%4],
			Action:     loadActions[rng.IntN(len(loadActions))],
			Outcome:    audit.Outcomes[min(rng.IntN(8), 3)],
			ClientIP:   fmt.Sprintf("10.0.%d.%d", u, rng.IntN(250)),
			UserAgent:  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
			RequestID:  fmt.Sprintf("%016x", rng.Uint64()),
			PrevHash:   prev,
		}
		switch {
		case strings.HasPrefix(e.Action, "stock.") || e.Action == "presend.token":
			e.TargetType, e.TargetID = audit.TargetStock, strconv.Itoa(rng.IntN(5000))
			e.WxRequestNo = fmt.Sprintf("REQ-%016x", rng.Uint64())
			e.WxRequestID = fmt.Sprintf("08%014X", rng.Uint64()>>8)
			if e.Outcome == audit.Failure {
				e.WxErrorCode = "PARAM_ERROR"
			}
			e.Detail = `{"stock_name":"春节满100减10"}`
		case strings.HasPrefix(e.Action, "upload."):
			e.TargetType, e.TargetID = audit.TargetUpload, strconv.Itoa(rng.IntN(20000))
			e.Detail = `{"codes":200}`
		case e.Action == audit.ActionAccessDenied:
			e.TargetType, e.TargetID = audit.TargetRoute, "GET /audit"
			e.Detail = `{"reason":"not_allowed"}`
		default:
			e.TargetType, e.TargetID = audit.TargetUser, strconv.FormatInt(actorID, 10)
		}
		e.Hash = audit.ComputeHash(&e)
		prev = e.Hash
		i++
		return []any{e.Seq, e.OccurredAt, e.ActorID, e.Actor, e.ActorRoles, e.Action, e.TargetType, e.TargetID,
			string(e.Outcome), e.WxRequestNo, e.WxErrorCode, e.WxRequestID, e.ClientIP, e.UserAgent, e.RequestID, e.Detail, e.PrevHash, e.Hash}, nil
	})
	if _, err = con.DB.Pool.CopyFrom(ctx, pgx.Identifier{"audit_entries"}, cols, src); err != nil {
		return err
	}
	// The entries went in beside Append: move the chain head past them.
	return audit.SyncHead(ctx, con.DB.Gorm)
}
