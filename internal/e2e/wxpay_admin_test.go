package e2e

import (
	"maps"
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
	"voucherconsole/internal/wxpay"
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
	sb, c := startExternalSandbox(t, sandbox.Options{VerifyMode: sandbox.VerifyCertificate, CertValidity: 20 * 24 * time.Hour})
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

// startExternalSandbox starts a console loaded from a standalone sandbox's
// sandbox.env, as a staging console runs.
func startExternalSandbox(t *testing.T, opts sandbox.Options) (*sandbox.Sandbox, *consoleServer) {
	t.Helper()
	sb, dir := externalSandbox(t, opts)
	return sb, startConsole(t, envOf(t, dir))
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

// Acceptance 1: a console loaded from the sandbox.env of a standalone
// sandbox whose three accounts have separate keys performs every endpoint;
// with one account's WeChat Pay public key replaced by another's, that
// account's calls fail naming it and the serial, the others work.
func TestSandboxEnvEveryEndpointAndSwappedKey(t *testing.T) {
	sb, dir := externalSandbox(t, sandbox.Options{})
	ctx := t.Context()
	env := envOf(t, dir)
	c := startConsole(t, env)
	wx := c.WX
	cr := sb.Credentials()
	if cr.MchPubKeyID == cr.SPPubKeyID || cr.SPPubKeyID == cr.BrandPubKeyID || env["CONSOLE_WXPAY_MCH_PUBKEY"] == env["CONSOLE_WXPAY_BRAND_PUBKEY"] {
		t.Fatal("the sandbox's accounts share a public key")
	}

	loc := time.FixedZone("CST", 8*3600)
	begin := time.Now().In(loc).Add(24 * time.Hour).Truncate(time.Hour)
	created, err := wx.CreateFavorStock(ctx, wxpay.CreateFavorStockRequest{
		StockName: "验收满减", BelongMerchant: cr.MchID,
		AvailableBeginTime: begin.Format(time.RFC3339), AvailableEndTime: begin.AddDate(0, 0, 10).Format(time.RFC3339),
		StockUseRule: wxpay.FavorStockUseRule{MaxCoupons: 10, MaxAmount: 1000, MaxCouponsPerUser: 1},
		CouponUseRule: wxpay.FavorCouponUseRule{FixedNormalCoupon: &wxpay.FixedNormalCoupon{CouponAmount: 100, TransactionMinimum: 100},
			AvailableMerchants: []string{cr.MchID}},
		StockType: wxpay.FavorStockTypeNormal, OutRequestNo: "accept1_create_01",
		PatternInfo: &wxpay.FavorPatternInfo{Description: "验收"},
	})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	calls := []struct {
		name string
		call func() error
	}{
		{"GetFavorStock", func() error { _, err := wx.GetFavorStock(ctx, created.StockID); return err }},
		{"UploadBusifavorCodes", func() error {
			_, err := wx.UploadBusifavorCodes(ctx, sandbox.SeedBusifavorUpload, wxpay.UploadBusifavorCodesRequest{CouponCodeList: []string{"ACC1BF1"}, UploadRequestNo: "accept1_bf_01"})
			return err
		}},
		{"GetBusifavorStock", func() error { _, err := wx.GetBusifavorStock(ctx, sandbox.SeedBusifavorUpload); return err }},
		{"UploadProductCouponCodes", func() error {
			_, err := wx.UploadProductCouponCodes(ctx, sandbox.SeedProductCoupon, sandbox.SeedStockSending, wxpay.UploadProductCouponCodesRequest{OutRequestNo: "accept1_pc_01", CodeList: []string{"ACC1-PC-1"}})
			return err
		}},
		{"GetProductCouponStock", func() error {
			_, err := wx.GetProductCouponStock(ctx, sandbox.SeedProductCoupon, sandbox.SeedStockSending)
			return err
		}},
		{"PreSendCouponBundle", func() error {
			_, err := wx.PreSendCouponBundle(ctx, sandbox.DemoOpenID, wxpay.PreSendCouponBundleRequest{ProductCouponID: sandbox.SeedBundleCoupon,
				StockBundleID: sandbox.SeedBundleMemberDay, AppID: sandbox.DemoAppID, SendRequestNo: "accept1_presend_01"})
			return err
		}},
		{"DeactivateProductCouponStock", func() error {
			_, err := wx.DeactivateProductCouponStock(ctx, sandbox.SeedProductCoupon, sandbox.SeedStockPaused, wxpay.DeactivateProductCouponStockRequest{OutRequestNo: "accept1_deact_01", DeactivateReason: "验收"})
			return err
		}},
	}
	for _, k := range calls {
		if err := k.call(); err != nil {
			t.Errorf("%s: %v", k.name, err)
		}
	}

	// The merchant's public key file replaced by the service provider's.
	swapped := maps.Clone(env)
	swapped["CONSOLE_WXPAY_MCH_PUBKEY"] = env["CONSOLE_WXPAY_SP_PUBKEY"]
	wx = startConsole(t, swapped).WX
	_, err = wx.GetBusifavorStock(ctx, sandbox.SeedBusifavorUpload)
	if err == nil || !strings.Contains(err.Error(), "merchant "+cr.MchID) || !strings.Contains(err.Error(), cr.MchPubKeyID) {
		t.Fatalf("merchant with another account's public key: %v", err)
	}
	if _, err := wx.GetProductCouponStock(ctx, sandbox.SeedProductCoupon, sandbox.SeedStockSending); err != nil {
		t.Errorf("brand: %v", err)
	}
	if _, err := wx.UploadProductCouponCodes(ctx, sandbox.SeedProductCoupon, sandbox.SeedStockSending, wxpay.UploadProductCouponCodesRequest{OutRequestNo: "accept1_pc_02", CodeList: []string{"ACC1-PC-2"}}); err != nil {
		t.Errorf("service provider: %v", err)
	}
}

// externalSandbox serves a seeded sandbox over HTTP and writes its files,
// sandbox.env included, into a directory it returns.
func externalSandbox(t *testing.T, opts sandbox.Options) (*sandbox.Sandbox, string) {
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
	return sb, dir
}

func envOf(t *testing.T, dir string) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, kv := range sandboxEnv(t, dir) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return env
}
