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
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"voucherconsole/internal/app"
	"voucherconsole/internal/audit"
	"voucherconsole/internal/config"
	"voucherconsole/internal/database"
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
		if err := loadEntries(ctx, con.DB, n-int(have), first, end); err != nil {
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

// loadEntries appends n chained entries spread evenly over [from, to),
// continuing the existing chain: with COPY on PostgreSQL (a large load drops
// the log's secondary indexes first and builds them again after, which is
// several times quicker than maintaining them row by row), in multi-row
// INSERTs on SQLite.
func loadEntries(ctx context.Context, db *database.DB, n int, from, to time.Time) error {
	var tip audit.Entry
	err := db.Gorm.WithContext(ctx).Order("seq DESC").Limit(1).Find(&tip).Error
	if err != nil {
		return err
	}
	prev := tip.Hash
	if tip.Seq == 0 {
		prev = audit.GenesisHash
	}
	rng := rand.New(rand.NewPCG(7, uint64(42+tip.Seq)))
	step := to.Sub(from) / time.Duration(n)
	cols := []string{"seq", "hash_scheme", "occurred_at", "actor_id", "actor", "actor_roles", "action", "target_type", "target_id",
		"outcome", "wx_request_no", "wx_error_code", "wx_request_id", "client_ip", "user_agent", "request_id", "detail", "prev_hash", "hash"}
	i := 0
	var e audit.Entry
	next := func() []any {
		if i == n {
			return nil
		}
		u := rng.IntN(40)
		actorID := int64(1000 + u)
		e = audit.Entry{
			Seq:        tip.Seq + int64(i) + 1,
			HashScheme: audit.SchemeContent,
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
		return []any{e.Seq, e.HashScheme, e.OccurredAt, e.ActorID, e.Actor, e.ActorRoles, e.Action, e.TargetType, e.TargetID,
			string(e.Outcome), e.WxRequestNo, e.WxErrorCode, e.WxRequestID, e.ClientIP, e.UserAgent, e.RequestID, e.Detail, e.PrevHash, e.Hash}
	}
	if db.Dialect == database.SQLite {
		const per = 25 // rows a statement: the driver binds many parameters slowly
		one := "(" + strings.TrimSuffix(strings.Repeat("?,", len(cols)), ",") + ")"
		q := "INSERT INTO audit_entries (" + strings.Join(cols, ", ") + ") VALUES " + strings.TrimSuffix(strings.Repeat(one+",", per), ",")
		for i < n {
			tx, err := db.SQL.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			stmt, err := tx.PrepareContext(ctx, q)
			if err != nil {
				tx.Rollback()
				return err
			}
			for k := 0; k < 400 && i < n; k++ {
				args := make([]any, 0, per*len(cols))
				for r := 0; r < per; r++ {
					row := next()
					if row == nil {
						break
					}
					args = append(args, row...)
				}
				if len(args) == per*len(cols) {
					_, err = stmt.ExecContext(ctx, args...)
				} else {
					rows := len(args) / len(cols)
					_, err = tx.ExecContext(ctx, "INSERT INTO audit_entries ("+strings.Join(cols, ", ")+") VALUES "+strings.TrimSuffix(strings.Repeat(one+",", rows), ","), args...)
				}
				if err != nil {
					tx.Rollback()
					return err
				}
			}
			stmt.Close()
			if err := tx.Commit(); err != nil {
				return err
			}
		}
		_, err := db.SQL.ExecContext(ctx, "ANALYZE")
		return err
	}
	var indexes []string
	if n >= 1_000_000 {
		if err := db.Gorm.Raw("SELECT indexdef FROM pg_indexes WHERE tablename = 'audit_entries' AND indexname <> 'audit_entries_pkey'").Scan(&indexes).Error; err != nil {
			return err
		}
		for _, def := range indexes {
			name := strings.Fields(def)[2] // CREATE INDEX name ON …
			if _, err := db.SQL.ExecContext(ctx, "DROP INDEX "+name); err != nil {
				return err
			}
		}
	}
	src := pgx.CopyFromFunc(func() ([]any, error) { return next(), nil })
	if _, err = db.Pool.CopyFrom(ctx, pgx.Identifier{"audit_entries"}, cols, src); err != nil {
		return err
	}
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SET maintenance_work_mem = '256MB'"); err != nil {
		return err
	}
	for _, def := range indexes {
		if _, err := conn.Exec(ctx, def); err != nil {
			return err
		}
	}
	// The entries went in beside Append: move the chain head past them.
	return audit.SyncHead(ctx, db.Gorm)
}

// BenchmarkAuditVerify is acceptance 3 of issue 12. For each size of log
// (CONSOLE_AUDIT_VERIFY_ENTRIES, comma-separated; default 1,000,000 and
// 10,000,000 on PostgreSQL; CONSOLE_AUDIT_VERIFY_SQLITE_ENTRIES, default
// 1,000,000, on SQLite) it loads the entries (chained, as BenchmarkAuditLoad
// does) and runs the real `console audit verify` command on them, reporting
// its entries per second and its peak RSS, each with its ratio to the
// first size measured in the same run (constant memory: an RSS ratio near
// 1). At the largest size it then starts a verification from the integrity
// page and, while it runs, requests the page from 16 clients: p50/p99,
// with their ratio to the same page requested before the run; and the
// background run's own entries per second.
//
//	go test -run '^$' -bench 'AuditVerify/postgres' -benchtime 1x -timeout 120m ./internal/e2e/
//	CONSOLE_AUDIT_VERIFY_ENTRIES=100000,300000 CONSOLE_AUDIT_VERIFY_SQLITE_ENTRIES=100000 go test -run '^$' -bench AuditVerify -benchtime 1x ./internal/e2e/
//
// CONSOLE_AUDIT_LOAD_DATABASE_URL runs the PostgreSQL part against an
// existing database (entries loaded once, kept), as BenchmarkAuditLoad does.
func BenchmarkAuditVerify(b *testing.B) {
	sizes := func(env string, def []int) []int {
		v := os.Getenv(env)
		if v == "" {
			return def
		}
		var out []int
		for _, f := range strings.Split(v, ",") {
			n, _ := strconv.Atoi(strings.TrimSpace(f))
			out = append(out, n)
		}
		return out
	}
	bin := filepath.Join(b.TempDir(), "console")
	if out, err := exec.Command("go", "build", "-o", bin, "voucherconsole/cmd/console").CombinedOutput(); err != nil {
		b.Fatalf("build console: %v\n%s", err, out)
	}
	for _, dialect := range []string{"postgres", "sqlite"} {
		b.Run(dialect, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				dir := b.TempDir()
				dbURL := ""
				ns := sizes("CONSOLE_AUDIT_VERIFY_SQLITE_ENTRIES", []int{1_000_000})
				if dialect == "postgres" {
					ns = sizes("CONSOLE_AUDIT_VERIFY_ENTRIES", []int{1_000_000, 10_000_000})
					if dbURL = os.Getenv("CONSOLE_AUDIT_LOAD_DATABASE_URL"); dbURL == "" {
						dbURL = testdb.PostgresURL(b)
					}
				}
				env := map[string]string{"CONSOLE_DATABASE_URL": dbURL, "CONSOLE_DATA_DIR": dir}
				cfg, _, err := config.Load("console", nil, func(k string) string { return env[k] }, io.Discard)
				if err != nil {
					b.Fatal(err)
				}
				ctx := context.Background()
				db, err := app.OpenDatabase(ctx, cfg, slog.New(slog.DiscardHandler))
				if err != nil {
					b.Fatal(err)
				}
				var baseRate, baseRSS float64
				for k, n := range ns {
					var have int64
					if err := db.Gorm.Model(&audit.Entry{}).Count(&have).Error; err != nil {
						b.Fatal(err)
					}
					if have < int64(n) {
						t0 := time.Now()
						end := time.Now().Add(-time.Hour).UTC()
						if err := loadEntries(ctx, db, n-int(have), end.Add(-365*24*time.Hour), end); err != nil {
							b.Fatal(err)
						}
						if dialect == "postgres" {
							if _, err := db.SQL.ExecContext(ctx, "VACUUM ANALYZE audit_entries"); err != nil {
								b.Fatal(err)
							}
							_, _ = db.SQL.ExecContext(ctx, "CHECKPOINT")
						}
						b.Logf("%s: loaded %d entries in %s", dialect, n-int(have), time.Since(t0).Round(time.Second))
					}
					cmd := exec.Command(bin, "audit", "verify")
					cmd.Env = append(os.Environ(), "CONSOLE_DATABASE_URL="+dbURL, "CONSOLE_DATA_DIR="+dir)
					t0 := time.Now()
					out, err := cmd.Output()
					wall := time.Since(t0)
					if err != nil {
						b.Fatalf("console audit verify: %v\n%s", err, out)
					}
					var checked int64
					var took string
					var rate float64
					for line := range strings.Lines(string(out)) {
						if _, err := fmt.Sscanf(line, "%d entries in %s %f entries/s", &checked, &took, &rate); err == nil {
							break
						}
					}
					if checked < int64(n) || !strings.Contains(string(out), "intact") {
						b.Fatalf("console audit verify over %d entries:\n%s", n, out)
					}
					rss := float64(cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss) / 1024 // KB → MB
					if k == 0 {
						baseRate, baseRSS = rate, rss
					}
					label := strconv.Itoa(n)
					b.ReportMetric(rate, "verify-"+label+"-entries/s")
					b.ReportMetric(rss, "verify-"+label+"-peak-rss-MB")
					b.ReportMetric(rate/baseRate, "verify-"+label+"-rate-ratio")
					b.ReportMetric(rss/baseRSS, "verify-"+label+"-rss-ratio")
					b.Logf("%s: console audit verify over %d entries: %.0f entries/s (%s, process %s), peak RSS %.1f MB; ratio to %d entries: rate %.2f, RSS %.2f",
						dialect, checked, rate, took, wall.Round(time.Millisecond), rss, ns[0], rate/baseRate, rss/baseRSS)
				}
				db.Close()
				pageDuringVerify(b, dialect, env)
				b.StartTimer()
			}
		})
	}
}

// pageDuringVerify starts a console on the loaded database, starts a
// verification from the integrity page and measures the page while it runs.
func pageDuringVerify(b *testing.B, dialect string, env map[string]string) {
	const clients, perClient = 16, 20
	cfg, _, err := config.Load("console", nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	con, err := app.Build(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(con.Server.Handler())
	defer func() {
		ts.Close()
		con.Close()
	}()
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
	measure := func(running bool) (p50, p99 float64, n int) {
		lat := make([]time.Duration, 0, clients*perClient)
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range clients {
			wg.Go(func() {
				for range perClient {
					s := time.Now()
					body := get(b, client, ts.URL+"/audit/verify")
					d := time.Since(s)
					if running && !strings.Contains(body, `id="verify-running"`) {
						return // the run is over: later requests would not measure it
					}
					mu.Lock()
					lat = append(lat, d)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(lat) == 0 {
			return 0, 0, 0
		}
		slices.Sort(lat)
		pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
		return pct(0.5), pct(0.99), len(lat)
	}
	idle50, idle99, _ := measure(false)
	resp, err = client.PostForm(ts.URL+"/audit/verify", url.Values{})
	if err != nil || resp.StatusCode != http.StatusSeeOther {
		b.Fatalf("start verification: %v %v", resp, err)
	}
	resp.Body.Close()
	run50, run99, n := measure(true)
	if n == 0 {
		b.Logf("%s: the verification ended before the page could be measured during it", dialect)
	} else {
		b.ReportMetric(run50, "page-during-verify-p50-ms")
		b.ReportMetric(run99, "page-during-verify-p99-ms")
		b.ReportMetric(run99/idle99, "page-during-verify-p99-ratio")
		b.Logf("%s: integrity page while verifying (%d requests, %d clients): p50 %.1f ms, p99 %.1f ms; before the run p50 %.1f ms, p99 %.1f ms (ratio p99 %.2f)",
			dialect, n, clients, run50, run99, idle50, idle99, run99/idle99)
	}
	deadline := time.Now().Add(time.Hour)
	for {
		r, err := con.Server.AuditVerifier.Latest(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if r.Status != audit.RunRunning {
			if r.Status != audit.RunIntact {
				b.Fatalf("background verification: %+v", r)
			}
			rate := r.Rate(time.Now())
			b.ReportMetric(rate, "page-verify-entries/s")
			b.Logf("%s: background verification from the page: %d entries, %.0f entries/s", dialect, r.Checked, rate)
			return
		}
		if time.Now().After(deadline) {
			b.Fatal("background verification did not finish")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
