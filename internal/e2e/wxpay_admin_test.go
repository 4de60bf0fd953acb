package e2e

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/browsertest"
	"voucherconsole/internal/models"
	"voucherconsole/internal/stocks"
	"voucherconsole/internal/wxconn"
	"voucherconsole/internal/wxpay/sandbox"
)

// An admin opens the WeChat Pay connection page and runs the connection
// test: one signed read per account, every account answering, audited.
func TestBrowserAdminWxPayTest(t *testing.T) {
	c := startConsole(t, nil)
	c.addUser(t, "ada", "a-long-test-password", models.RoleAdmin)
	ctx := browsertest.New(t, 2*time.Minute)
	signInBrowser(t, ctx, c.URL, "ada", "a-long-test-password")
	if err := chromedp.Do(ctx,
		chromedp.Navigate(c.URL+"/admin/wxpay"),
		chromedp.WaitVisible(chromedp.CSS("#account-brand")),
		chromedp.Click(chromedp.CSS("#wxpay-test")),
		chromedp.WaitVisible(chromedp.CSS("#wxpay-test-results")),
	); err != nil {
		t.Fatal(err)
	}
	okRows, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#wxpay-test-results tr.ok").length`))
	if err != nil {
		t.Fatal(err)
	}
	failedRows, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#wxpay-test-results tr.failed").length`))
	if err != nil {
		t.Fatal(err)
	}
	if okRows != 3 || failedRows != 0 {
		t.Fatalf("test results: %d ok, %d failed; want 3 ok", okRows, failedRows)
	}
	endpoints, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#wxpay-endpoints")))
	if err != nil || !strings.Contains(endpoints, "DownloadCertificates") {
		t.Fatalf("endpoint table %q %v", endpoints, err)
	}
	var n int64
	c.DB.Gorm.Model(&audit.Entry{}).Where("action = ? AND outcome = 'success' AND actor = 'ada'", wxconn.ActionTest).Count(&n)
	if n != 1 {
		t.Fatalf("%d audited connection tests, want 1", n)
	}
}

// A console loaded from a certificate-mode sandbox's sandbox.env shows each
// account's certificates with their expiry, warned 30 days ahead, and its
// serials and fingerprints but no key; the test downloads once per account.
func TestAdminWxPayCertificates(t *testing.T) {
	sb, err := sandbox.New(sandbox.Options{Seed: true, VerifyMode: sandbox.VerifyCertificate, CertValidity: 20 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(func() { srv.Close(); sb.Close() })
	dir := t.TempDir()
	if err := sb.WriteFiles(dir, srv.URL); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range sandboxEnv(t, dir) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	c := startConsole(t, env)
	hc := c.userClient(t, "ada", models.RoleAdmin)
	resp, _ := fetch(t, hc, "POST", c.URL+"/admin/wxpay/test", nil, "en")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("test: %d", resp.StatusCode)
	}
	_, body := fetch(t, hc, "GET", c.URL+"/admin/wxpay", nil, "en")
	cr := sb.Credentials()
	for _, want := range []string{"Connection test passed", "WeChat Pay platform certificates", "expires within 30 days", cr.MchSerial, cr.BrandSerial} {
		if !has(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, pc := range sb.PlatformCerts() {
		if !has(body, pc.Serial) {
			t.Errorf("page lacks %s certificate %s", pc.Account, pc.Serial)
		}
	}
	for _, secret := range []string{string(cr.MchAPIv3Key), string(cr.SPAPIv3Key), string(cr.BrandAPIv3Key), "PRIVATE KEY"} {
		if has(body, secret) {
			t.Fatal("the page shows key material")
		}
	}
	if resp, _ := fetch(t, c.userClient(t, "sam", models.RoleSupport), "GET", c.URL+"/admin/wxpay", nil, ""); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("support opened /admin/wxpay: %d", resp.StatusCode)
	}
}

// startExternalSandbox serves a sandbox over HTTP and starts a console
// loaded from the sandbox.env it writes, as a staging console runs.
func startExternalSandbox(t *testing.T, opts sandbox.Options) (*sandbox.Sandbox, *consoleServer) {
	t.Helper()
	opts.Seed = true
	sb, err := sandbox.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(func() { srv.Close(); sb.Close() })
	dir := t.TempDir()
	if err := sb.WriteFiles(dir, srv.URL); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range sandboxEnv(t, dir) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return sb, startConsole(t, env)
}

// WeChat Pay's migration (both): a reply naming neither the account's
// public key nor one of its certificates is refused, and the deactivation
// it answered stays pending (outcome unknown), not failed; once replies
// verify again the same form resends the same request and completes.
func TestBothModeReplyNamingNeitherIsUnknown(t *testing.T) {
	sb, c := startExternalSandbox(t, sandbox.Options{VerifyMode: sandbox.VerifyBoth})
	ctx := t.Context()
	if _, err := c.Stocks.Register(ctx, audit.Context{Actor: "test"}, stocks.RegisterInput{
		Kind: models.KindProductCoupon, ProductCouponID: sandbox.SeedProductCoupon, StockID: sandbox.SeedStockSending,
	}); err != nil {
		t.Fatal(err)
	}
	hc := c.userClient(t, "olivia", models.RoleOperator)
	id := stockRef(t, c, sandbox.SeedStockSending)
	_, page := fetch(t, hc, "GET", c.URL+"/stocks/"+id+"/deactivate", nil, "en")
	form := url.Values{"deactivate_reason": {"迁移期间"}, "stock_id": {sandbox.SeedStockSending}, "form_token": {formToken(t, page)}}

	if err := sb.SetFaults(sandbox.Faults{UnknownSerialRate: 1}); err != nil {
		t.Fatal(err)
	}
	resp, _ := fetch(t, hc, "POST", c.URL+"/stocks/"+id+"/deactivate", form, "en")
	if resp.StatusCode >= 500 && resp.StatusCode != http.StatusBadGateway && resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("refused reply: %d", resp.StatusCode)
	}
	var op models.WxOperation
	if err := c.DB.Gorm.Order("id DESC").Take(&op).Error; err != nil {
		t.Fatal(err)
	}
	if op.Status != models.OpPending {
		t.Fatalf("operation %s after a reply naming neither key: %s, want pending (outcome unknown)", op.Kind, op.Status)
	}
	var failedFinal int64
	c.DB.Gorm.Model(&models.WxOperation{}).Where("status = ?", models.OpFailed).Count(&failedFinal)
	if failedFinal != 0 {
		t.Fatal("a refused reply was recorded as a failure")
	}

	if err := sb.SetFaults(sandbox.Faults{}); err != nil {
		t.Fatal(err)
	}
	resp, _ = fetch(t, hc, "POST", c.URL+"/stocks/"+id+"/deactivate", form, "en")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("repost once replies verify: %d", resp.StatusCode)
	}
	if err := c.DB.Gorm.Take(&op, op.ID).Error; err != nil || op.Status != models.OpSucceeded {
		t.Fatalf("operation after the repost: %+v %v", op.Status, err)
	}
}
