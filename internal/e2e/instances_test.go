package e2e

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"voucherconsole/internal/models"
	"voucherconsole/internal/testdb"
	"voucherconsole/internal/wxpay/sandbox"
)

// startInstances starts two consoles on one fresh PostgreSQL database with
// one session key, both in live mode against one sandbox served over HTTP,
// as two instances behind a load balancer run.
func startInstances(t *testing.T, extra map[string]string) (a, b *consoleServer, sb *sandbox.Sandbox, sbURL string) {
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
	env := map[string]string{
		"CONSOLE_DATABASE_URL": testdb.PostgresURL(t),
		"CONSOLE_SESSION_KEY":  "two-instances-test-session-secret-32-bytes",
	}
	for _, kv := range sandboxEnv(t, sbDir) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	for k, v := range extra {
		env[k] = v
	}
	a = startConsole(t, env) // each gets a data directory of its own
	b = startConsole(t, env)
	return a, b, sb, ts.URL
}

// Acceptance 2: an upload checked on one instance is started, followed and
// its report and file downloaded on the other, which never saw the file
// arrive; an upload started on one is cancelled on the other. One sign-in is
// valid on both.
func TestUploadAcrossInstances(t *testing.T) {
	// A slow shared pace (5 requests/s across both instances) keeps the
	// second upload sending long enough to be cancelled.
	a, b, sb, _ := startInstances(t, map[string]string{"CONSOLE_UPLOAD_RATE": "5"})
	// One client, one cookie jar: the session cookie set by A is sent to B
	// (cookies are not scoped by port), as a load balancer would mix them.
	op := a.userClient(t, "olivia", models.RoleOperator)
	if resp, body := fetch(t, op, "GET", b.URL+"/stocks", nil, "en"); resp.StatusCode != http.StatusOK || !has(body, `id="current-user"`) {
		t.Fatalf("signed in on A, not on B: %d", resp.StatusCode)
	}
	resp, _ := fetch(t, op, "POST", a.URL+"/stocks/register", url.Values{"kind": {"product_coupon"},
		"product_coupon_id": {sandbox.SeedProductCoupon}, "stock_id": {sandbox.SeedStockSending}}, "en")
	stock := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(stock, "/stocks/") {
		t.Fatalf("register: %d %q", resp.StatusCode, stock)
	}

	// Checked on A.
	data := codesFile("TWIN", 1000, "bad code!")
	resp, _ = postFile(t, op, a.URL+stock+"/uploads", "twin.csv", data, "en")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("upload on A: %d", resp.StatusCode)
	}
	path := resp.Header.Get("Location")
	// B shows the check and links to the file it never received.
	resp, body := fetch(t, op, "GET", b.URL+path, nil, "en")
	for _, want := range []string{`id="check-rows">1,001<`, `id="check-to-send">1,000<`, `id="start-upload"`, `id="upload-file"`} {
		if resp.StatusCode != http.StatusOK || !has(body, want) {
			t.Fatalf("check page on B lacks %s (%d)", want, resp.StatusCode)
		}
	}
	if has(body, `id="upload-file-elsewhere"`) {
		t.Fatal("B says the file is kept elsewhere")
	}
	// Started and followed on B.
	if resp, _ := fetch(t, op, "POST", b.URL+path+"/start", url.Values{}, "en"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("start on B: %d", resp.StatusCode)
	}
	p := waitUploadEnded(t, op, b.URL+path)
	if p.Status != "finished" || p.CodesDone != 1000 {
		t.Fatalf("ended: %+v", p)
	}
	resp, body = fetch(t, op, "GET", b.URL+path+"/report.csv", nil, "en")
	if resp.StatusCode != http.StatusOK || !has(body, "1001,bad code!,bad_char") {
		t.Fatalf("report on B: %d %q", resp.StatusCode, body)
	}
	resp, body = fetch(t, op, "GET", b.URL+path+"/file", nil, "en")
	if resp.StatusCode != http.StatusOK || body != string(data) {
		t.Fatalf("file on B: %d, %d bytes of %d", resp.StatusCode, len(body), len(data))
	}

	// Either instance's metrics tell the shared state.
	resp, body = fetch(t, op, "GET", a.URL+"/metrics", nil, "")
	if resp.StatusCode != http.StatusOK || !has(body, "console_database_up 1") || !has(body, `console_uploads{status="finished"} 1`) ||
		!has(body, "console_wxpay_operations_pending 0") {
		t.Fatalf("metrics on A: %d\n%s", resp.StatusCode, body)
	}

	// Started on A, cancelled on B: it stops after the batches in flight.
	resp, _ = postFile(t, op, a.URL+stock+"/uploads", "long.csv", codesFile("LONG", 10_000), "en")
	long := resp.Header.Get("Location")
	if resp, _ := fetch(t, op, "POST", a.URL+long+"/start", url.Values{}, "en"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("start on A: %d", resp.StatusCode)
	}
	waitFor(t, "the long upload to send a batch", func() bool {
		var n int64
		a.DB.Gorm.Table("upload_batches").Where("upload_id = ? AND status = 'sent'", strings.TrimPrefix(long, "/uploads/")).Count(&n)
		return n > 0
	})
	if resp, _ := fetch(t, op, "POST", b.URL+long+"/cancel", url.Values{}, "en"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("cancel on B: %d", resp.StatusCode)
	}
	p = waitUploadEnded(t, op, a.URL+long)
	if p.Status != "cancelled" || p.CodesDone == 0 || p.CodesDone >= 10_000 {
		t.Fatalf("cancelled upload: %+v", p)
	}
	// The sandbox holds each code once: 1,000 + what was sent before the cancel.
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
		}
		twin, longSent := 0, 0
		for c := range seen {
			switch {
			case strings.HasPrefix(c, "TWIN-"):
				twin++
			case strings.HasPrefix(c, "LONG-"):
				longSent++
			}
		}
		if twin != 1000 || int64(longSent) != p.CodesDone {
			t.Fatalf("sandbox holds %d TWIN and %d LONG codes; want 1000 and %d", twin, longSent, p.CodesDone)
		}
	}
}
