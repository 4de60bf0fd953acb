package e2e

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"voucherconsole/internal/models"
	"voucherconsole/internal/testdb"
	"voucherconsole/internal/wxpay/sandbox"
)

// liveConsole starts a console in live mode against a sandbox served over
// HTTP (which outlives whatever happens to the console's database).
func liveConsole(t *testing.T, env map[string]string) (*consoleServer, *sandbox.Sandbox, string) {
	t.Helper()
	sb, err := sandbox.New(sandbox.Options{Seed: true})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(sb.Handler())
	t.Cleanup(func() { ts.Close(); sb.Close() })
	sbDir := t.TempDir()
	if err := sb.WriteFiles(sbDir, ts.URL); err != nil {
		t.Fatal(err)
	}
	for _, kv := range sandboxEnv(t, sbDir) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return startConsole(t, env), sb, ts.URL
}

// sandboxHoldsOnce checks that the sandbox's SENDING upload stock holds
// each code with prefix exactly once, n in all, and that no request number
// arrived with two different bodies.
func sandboxHoldsOnce(t *testing.T, sb *sandbox.Sandbox, prefix string, n int) {
	t.Helper()
	got := 0
	for _, s := range sb.Stocks() {
		if s.StockID != sandbox.SeedStockSending {
			continue
		}
		seen := map[string]bool{}
		for _, c := range s.Codes {
			if seen[c] {
				t.Fatalf("code %s held twice", c)
			}
			seen[c] = true
			if strings.HasPrefix(c, prefix+"-") {
				got++
			}
		}
	}
	if got != n {
		t.Fatalf("sandbox holds %d %s codes, want %d", got, prefix, n)
	}
	for _, r := range sb.Requests() {
		if !r.Identical {
			t.Fatalf("request number %s arrived with different bodies", r.RequestNo)
		}
	}
}

// Acceptance 3: PostgreSQL (a private cluster, never the shared server) is
// restarted while an upload is sending. Meanwhile every page answers 503
// with a page saying why, in the user's language, never 500; afterwards the
// console recovers by itself, the upload finishes without anyone touching
// it, and the sandbox holds each code once.
func TestPostgresRestartDuringSend(t *testing.T) {
	pg := testdb.NewCluster(t)
	dbURL := pg.CreateDatabase("console")
	// 10 requests/s: the 40 batches take about 4 s, so the outage falls
	// mid-send.
	c, sb, _ := liveConsole(t, map[string]string{"CONSOLE_DATABASE_URL": dbURL, "CONSOLE_UPLOAD_RATE": "10"})
	op := c.userClient(t, "olivia", models.RoleOperator)
	resp, _ := fetch(t, op, "POST", c.URL+"/stocks/register", url.Values{"kind": {"product_coupon"},
		"product_coupon_id": {sandbox.SeedProductCoupon}, "stock_id": {sandbox.SeedStockSending}}, "en")
	stock := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("register: %d", resp.StatusCode)
	}
	const n = 8000
	resp, _ = postFile(t, op, c.URL+stock+"/uploads", "restart.csv", codesFile("RESTART", n), "en")
	up := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("upload: %d", resp.StatusCode)
	}
	if resp, _ := fetch(t, op, "POST", c.URL+up+"/start", url.Values{}, "en"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("start: %d", resp.StatusCode)
	}
	var sent int64
	waitFor(t, "a few batches sent", func() bool {
		c.DB.Gorm.Table("upload_batches").Where("status = 'sent'").Count(&sent)
		return sent >= 5
	})

	pg.Stop()
	stopped := time.Now()
	if sent >= n/200 {
		t.Fatal("the upload finished before PostgreSQL stopped")
	}
	t.Logf("PostgreSQL stopped with %d of %d batches sent", sent, n/200)
	anon := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	pages := []struct {
		hc     *http.Client
		method string
		path   string
		form   url.Values
	}{
		{op, "GET", "/stocks", nil},
		{op, "GET", stock, nil},
		{op, "GET", up, nil},
		{op, "GET", up + "/progress", nil},
		{op, "GET", "/stocks?q=RESTART", nil},
		{op, "POST", up + "/cancel", url.Values{}},
		{anon, "POST", "/login", url.Values{"username": {"olivia"}, "password": {"a-long-test-password"}}},
		{anon, "GET", "/readyz", nil},
	}
	for time.Since(stopped) < 5*time.Second {
		for _, p := range pages {
			for _, lang := range []string{"en", "zh-CN"} {
				resp, body := fetch(t, p.hc, p.method, c.URL+p.path, p.form, lang)
				if resp.StatusCode != http.StatusServiceUnavailable {
					t.Fatalf("%s %s with the database down: %d, want 503\n%s", p.method, p.path, resp.StatusCode, body)
				}
				if p.path == "/readyz" || strings.HasSuffix(p.path, "/progress") {
					continue
				}
				want := map[string]string{"en": "cannot reach its database", "zh-CN": "暂时无法连接数据库"}[lang]
				if !has(body, want) || !has(body, "<html") || resp.Header.Get("Retry-After") == "" {
					t.Fatalf("%s %s (%s): the 503 page does not say why:\n%s", p.method, p.path, lang, body)
				}
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	if resp, _ := fetch(t, anon, "GET", c.URL+"/healthz", nil, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz with the database down: %d (the process is up)", resp.StatusCode)
	}
	if resp, body := fetch(t, anon, "GET", c.URL+"/metrics", nil, ""); resp.StatusCode != http.StatusOK || !has(body, "console_database_up 0") {
		t.Fatalf("metrics with the database down: %d\n%s", resp.StatusCode, body)
	}

	pg.Start()
	t.Logf("PostgreSQL started again after %s", time.Since(stopped).Round(100*time.Millisecond))
	started := time.Now()
	// Pages recover by themselves; the session survived.
	waitFor(t, "pages to answer again", func() bool {
		resp, _ := fetch(t, op, "GET", c.URL+"/stocks", nil, "en")
		return resp.StatusCode == http.StatusOK
	})
	p := waitUploadEnded(t, op, c.URL+up)
	if p.Status != "finished" || p.CodesDone != n {
		t.Fatalf("after the restart: %+v", p)
	}
	resp, body := fetch(t, op, "GET", c.URL+up, nil, "en")
	if !has(body, `id="upload-reconciles"`) || !has(body, `id="report-uploaded">8,000<`) {
		t.Fatalf("report after the restart: %d\n%s", resp.StatusCode, body)
	}
	sandboxHoldsOnce(t, sb, "RESTART", n)
	resent := 0
	for _, r := range sb.Requests() {
		if r.Count > 1 {
			resent++
		}
	}
	t.Logf("finished %s after the restart; %d request numbers resent with the same body", time.Since(started).Round(100*time.Millisecond), resent)
}

// WeChat Pay unreachable for a few seconds (every connection dropped):
// sending pauses, retrying the same request numbers, and resumes by itself
// when it answers again; no code is lost or held twice.
func TestWeChatPayOutageDuringSend(t *testing.T) {
	c, sb, _ := liveConsole(t, map[string]string{"CONSOLE_UPLOAD_RATE": "10"})
	op := c.userClient(t, "olivia", models.RoleOperator)
	resp, _ := fetch(t, op, "POST", c.URL+"/stocks/register", url.Values{"kind": {"product_coupon"},
		"product_coupon_id": {sandbox.SeedProductCoupon}, "stock_id": {sandbox.SeedStockSending}}, "en")
	stock := resp.Header.Get("Location")
	const n = 6000
	resp, _ = postFile(t, op, c.URL+stock+"/uploads", "outage.csv", codesFile("OUTAGE", n), "en")
	up := resp.Header.Get("Location")
	if resp, _ := fetch(t, op, "POST", c.URL+up+"/start", url.Values{}, "en"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("start: %d", resp.StatusCode)
	}
	var sent int64
	waitFor(t, "a few batches sent", func() bool {
		c.DB.Gorm.Table("upload_batches").Where("status = 'sent'").Count(&sent)
		return sent >= 3
	})
	if err := sb.SetFaults(sandbox.Faults{DropRate: 1}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * time.Second)
	var during int64
	c.DB.Gorm.Table("upload_batches").Where("status = 'sent'").Count(&during)
	var status string
	c.DB.Gorm.Table("uploads").Select("status").Where("id = ?", strings.TrimPrefix(up, "/uploads/")).Scan(&status)
	t.Logf("WeChat Pay unreachable for 4 s: %d batches sent before, %d after; upload %s", sent, during, status)
	if during >= n/200 || status == "failed" {
		t.Fatalf("the upload did not pause: %d batches sent, status %s", during, status)
	}
	if err := sb.SetFaults(sandbox.Faults{}); err != nil {
		t.Fatal(err)
	}
	p := waitUploadEnded(t, op, c.URL+up)
	if p.Status != "finished" || p.CodesDone != n {
		t.Fatalf("after the outage: %+v", p)
	}
	sandboxHoldsOnce(t, sb, "OUTAGE", n)
}
