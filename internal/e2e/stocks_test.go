package e2e

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"voucherconsole/internal/models"
	"voucherconsole/internal/wxpay"
	"voucherconsole/internal/wxpay/sandbox"
)

// userClient signs a user in and returns an HTTP client carrying the session
// that does not follow redirects.
func (c *consoleServer) userClient(t *testing.T, name string, roles ...models.Role) *http.Client {
	t.Helper()
	return c.userClientTB(t, name, roles...)
}

func (c *consoleServer) userClientTB(t testing.TB, name string, roles ...models.Role) *http.Client {
	t.Helper()
	c.addUser(t, name, "a-long-test-password", roles...)
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.PostForm(c.URL+"/login", url.Values{"username": {name}, "password": {"a-long-test-password"}})
	if err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in %s: %v %v", name, resp, err)
	}
	resp.Body.Close()
	return hc
}

func fetch(t *testing.T, hc *http.Client, method, u string, form url.Values, lang string) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, u, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if lang != "" {
		req.Header.Set("Accept-Language", lang)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// The sandbox's demo stocks are registered at start and listed with their
// state and code counts; a stock page shows them.
func TestDemoStocksListed(t *testing.T) {
	c := startConsole(t, nil)
	hc := c.userClient(t, "sue", models.RoleSupport)
	resp, body := fetch(t, hc, "GET", c.URL+"/stocks?q="+sandbox.SeedStockSending, nil, "en")
	if resp.StatusCode != 200 || !has(body, sandbox.SeedStockSending) || !has(body, "Sending") || !has(body, "Demo data") {
		t.Fatalf("stock list: %d\n%s", resp.StatusCode, body)
	}
	resp, body = fetch(t, hc, "GET", c.URL+"/stocks?state=DEACTIVATED", nil, "en")
	if resp.StatusCode != 200 || !has(body, sandbox.SeedStockDeactivated) || has(body, sandbox.SeedStockSending) {
		t.Fatalf("state filter: %d", resp.StatusCode)
	}
}

// Registering an unknown product-coupon stock shows WeChat Pay's 404 in the
// user's language; a known one appears in the list with state and counts.
func TestRegisterStock(t *testing.T) {
	c := startConsole(t, nil)
	hc := c.userClient(t, "olivia", models.RoleOperator)
	form := url.Values{"kind": {"product_coupon"}, "product_coupon_id": {sandbox.SeedProductCoupon}, "stock_id": {"999999"}}
	resp, body := fetch(t, hc, "POST", c.URL+"/stocks/register", form, "")
	if resp.StatusCode != http.StatusNotFound || !has(body, "微信支付找不到该批次") || !has(body, "NOT_FOUND") || !has(body, `id="wx-request-id"`) || !has(body, `value="999999"`) {
		t.Fatalf("unknown stock: %d\n%s", resp.StatusCode, body)
	}
	resp, body = fetch(t, hc, "POST", c.URL+"/stocks/register", form, "en")
	if !has(body, "WeChat Pay does not know this stock") {
		t.Fatalf("unknown stock in English: %d", resp.StatusCode)
	}
	// The demo stock is registered already: the form says so.
	form.Set("stock_id", sandbox.SeedStockSending)
	resp, body = fetch(t, hc, "POST", c.URL+"/stocks/register", form, "en")
	if resp.StatusCode != http.StatusUnprocessableEntity || !has(body, "already registered") {
		t.Fatalf("re-register: %d", resp.StatusCode)
	}
	// A stock created outside the console (straight through the API) is
	// registered and listed with its state from WeChat Pay.
	loc, _ := time.LoadLocation("Asia/Shanghai")
	begin := time.Now().In(loc).AddDate(0, 0, 2).Truncate(time.Hour)
	created, err := c.WX.CreateFavorStock(context.Background(), wxpay.CreateFavorStockRequest{
		StockName: "外部创建批次", AvailableBeginTime: begin.Format(time.RFC3339), AvailableEndTime: begin.AddDate(0, 0, 5).Format(time.RFC3339),
		StockUseRule:  wxpay.FavorStockUseRule{MaxCoupons: 10, MaxAmount: 1000, MaxCouponsPerUser: 1},
		CouponUseRule: wxpay.FavorCouponUseRule{FixedNormalCoupon: &wxpay.FixedNormalCoupon{CouponAmount: 100, TransactionMinimum: 200}, AvailableMerchants: []string{"1230000109"}},
		StockType:     wxpay.FavorStockTypeNormal, OutRequestNo: "external1230000109001",
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, _ = fetch(t, hc, "POST", c.URL+"/stocks/register", url.Values{"kind": {"favor"}, "stock_id": {created.StockID}}, "en")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("register a known stock: %d", resp.StatusCode)
	}
	_, body = fetch(t, hc, "GET", c.URL+"/stocks?q="+created.StockID, nil, "en")
	if !has(body, "外部创建批次") || !has(body, "Not activated") {
		t.Fatalf("registered stock not listed with its state:\n%s", body)
	}

	form = url.Values{"kind": {"product_coupon"}, "product_coupon_id": {""}, "stock_id": {""}}
	resp, body = fetch(t, hc, "POST", c.URL+"/stocks/register", form, "en")
	if resp.StatusCode != http.StatusUnprocessableEntity || !has(body, "needs its product coupon ID") || !has(body, "This field is required") {
		t.Fatalf("empty form: %d", resp.StatusCode)
	}
}

// Support can open lists and stock pages; action buttons are absent and the
// action routes refuse them.
func TestSupportReadOnly(t *testing.T) {
	c := startConsole(t, nil)
	support := c.userClient(t, "sue", models.RoleSupport)
	operator := c.userClient(t, "olivia", models.RoleOperator)
	id := stockRef(t, c, sandbox.SeedStockSending)
	for _, tc := range []struct {
		hc      *http.Client
		buttons bool
	}{{support, false}, {operator, true}} {
		resp, body := fetch(t, tc.hc, "GET", c.URL+"/stocks/"+id, nil, "en")
		if resp.StatusCode != 200 {
			t.Fatalf("stock page: %d", resp.StatusCode)
		}
		for _, b := range []string{`id="refresh-stock"`} {
			if has(body, b) != tc.buttons {
				t.Errorf("button %s shown = %v, want %v", b, has(body, b), tc.buttons)
			}
		}
		_, list := fetch(t, tc.hc, "GET", c.URL+"/stocks", nil, "en")
		if has(list, `id="create-stock"`) != tc.buttons || has(list, `id="register-stock"`) != tc.buttons {
			t.Errorf("list actions shown for buttons=%v", tc.buttons)
		}
	}
	for _, r := range []struct{ method, path string }{
		{"POST", "/stocks/" + id + "/refresh"}, {"GET", "/stocks/register"}, {"POST", "/stocks/register"},
	} {
		resp, _ := fetch(t, support, r.method, c.URL+r.path, url.Values{}, "en")
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("support %s %s: %d, want 403", r.method, r.path, resp.StatusCode)
		}
	}
}

// stockRef finds the console's ID of a registered stock.
func stockRef(t *testing.T, c *consoleServer, stockID string) string {
	t.Helper()
	var st models.Stock
	if err := c.DB.Gorm.Where("stock_id = ?", stockID).Take(&st).Error; err != nil {
		t.Fatal(err)
	}
	return strconv.FormatInt(st.ID, 10)
}
