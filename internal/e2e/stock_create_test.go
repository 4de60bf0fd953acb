package e2e

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/models"
	"voucherconsole/internal/wxpay/sandbox"
)

// voucherForm is a create-voucher-stock form that passes the console's
// checks: valid from tomorrow for 30 days.
func voucherForm(name, token string) url.Values {
	loc, _ := time.LoadLocation("Asia/Shanghai")
	begin := time.Now().In(loc).AddDate(0, 0, 1)
	return url.Values{
		"form_token":           {token},
		"stock_name":           {name},
		"comment":              {"e2e"},
		"available_begin_time": {begin.Format("2006-01-02") + "T00:00"},
		"available_end_time":   {begin.AddDate(0, 0, 30).Format("2006-01-02") + "T23:59"},
		"max_coupons":          {"100"},
		"max_amount":           {"1000.00"},
		"max_coupons_per_user": {"1"},
		"prevent_api_abuse":    {"true"},
		"coupon_amount":        {"10"},
		"transaction_minimum":  {"30.00"},
		"available_merchants":  {"1230000109"},
		"no_cash":              {"false"},
		"stock_type":           {"NORMAL"},
		"description":          {"满30减10"},
	}
}

func sandboxFavorStocks(c *consoleServer, name string) int {
	n := 0
	for _, st := range c.Sandbox.Stocks() {
		if st.Kind == "favor" && st.Name == name {
			n++
		}
	}
	return n
}

// Creating a voucher stock through the form stores it with WeChat's stock_id
// and create_time; posting the same form twice yields one stock.
func TestCreateVoucherStock(t *testing.T) {
	c := startConsole(t, nil)
	hc := c.userClient(t, "olivia", models.RoleOperator)
	resp, body := fetch(t, hc, "GET", c.URL+"/stocks/new", nil, "")
	if resp.StatusCode != 200 || !has(body, `name="form_token"`) || !has(body, `name="stock_name"`) || !has(body, `name="coupon_amount"`) {
		t.Fatalf("create form: %d", resp.StatusCode)
	}
	form := voucherForm("周末满30减10", "token-e2e-1")
	for i := range 2 {
		resp, _ := fetch(t, hc, "POST", c.URL+"/stocks/new", form, "")
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("post %d: %d", i+1, resp.StatusCode)
		}
	}
	if n := sandboxFavorStocks(c, "周末满30减10"); n != 1 {
		t.Fatalf("sandbox holds %d stocks of that name after a double post, want 1", n)
	}
	var st models.Stock
	if err := c.DB.Gorm.Where("kind = 'favor' AND name = ?", "周末满30减10").Take(&st).Error; err != nil {
		t.Fatal(err)
	}
	if st.StockID == "" || st.WxCreateTime == "" {
		t.Fatalf("stored stock lacks WeChat's stock_id or create_time: %+v", st)
	}
	var intents, successes int64
	c.DB.Gorm.Model(&audit.Entry{}).Where("action = 'stock.create' AND outcome = 'pending'").Count(&intents)
	c.DB.Gorm.Model(&audit.Entry{}).Where("action = 'stock.create' AND outcome = 'success'").Count(&successes)
	if intents != 1 || successes != 1 {
		t.Fatalf("audit: %d intents, %d successes; want 1 and 1", intents, successes)
	}
	_, body = fetch(t, hc, "GET", c.URL+"/stocks?q="+st.StockID, nil, "")
	if !has(body, "周末满30减10") {
		t.Fatal("created stock not found in the list")
	}
}

// A rejected form comes back with every value kept and errors by the fields.
func TestCreateVoucherStockInvalid(t *testing.T) {
	c := startConsole(t, nil)
	hc := c.userClient(t, "olivia", models.RoleOperator)
	form := voucherForm("bad_name", "token-invalid")
	form.Set("coupon_amount", "1.234")
	resp, body := fetch(t, hc, "POST", c.URL+"/stocks/new", form, "en")
	if resp.StatusCode != http.StatusUnprocessableEntity || !has(body, `id="stock_name-error"`) || !has(body, `id="coupon_amount-error"`) ||
		!has(body, `value="bad_name"`) || !has(body, `value="1.234"`) {
		t.Fatalf("invalid form: %d", resp.StatusCode)
	}
	if n := sandboxFavorStocks(c, "bad_name"); n != 0 {
		t.Fatal("an invalid form reached WeChat Pay")
	}
}

// WeChat Pay's errors come back to the form with code, message and
// Request-ID, values kept, a 4xx/5xx status and a failure audit entry.
func TestCreateVoucherStockWxErrors(t *testing.T) {
	cases := []struct {
		name   string
		setup  func(sb *sandbox.Sandbox)
		status int
		code   string
	}{
		{"PARAM_ERROR", func(sb *sandbox.Sandbox) { _ = sb.Advance(72 * time.Hour) }, http.StatusBadRequest, "PARAM_ERROR"},
		{"429", func(sb *sandbox.Sandbox) { _ = sb.SetFaults(sandbox.Faults{ThrottleRate: 1}) }, http.StatusTooManyRequests, "FREQUENCY_LIMITED"},
		{"500", func(sb *sandbox.Sandbox) { _ = sb.SetFaults(sandbox.Faults{FailRate: 1}) }, http.StatusBadGateway, "SYSTEM_ERROR"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := startConsole(t, nil)
			hc := c.userClient(t, "olivia", models.RoleOperator)
			tc.setup(c.Sandbox)
			form := voucherForm("失败测试", "token-"+tc.name)
			resp, body := fetch(t, hc, "POST", c.URL+"/stocks/new", form, "")
			if resp.StatusCode != tc.status || !has(body, `id="wx-error`) || !has(body, tc.code) || !has(body, `value="失败测试"`) {
				t.Fatalf("status %d, want %d with %s shown:\n%s", resp.StatusCode, tc.status, tc.code, body)
			}
			var e audit.Entry
			if err := c.DB.Gorm.Where("action = 'stock.create' AND outcome = 'failure'").Take(&e).Error; err != nil {
				t.Fatalf("no failure audit entry: %v", err)
			}
			if e.WxErrorCode != tc.code || e.WxRequestID == "" || e.WxRequestNo == "" {
				t.Fatalf("failure entry: %+v", e)
			}
			if !has(body, e.WxRequestID) {
				t.Fatal("the page does not show the Request-ID")
			}
		})
	}
}

// WeChat Pay's budget rules beyond document 003's text: a budget other than
// face value × count, or more than 60 per user, is refused next to its
// field, in the user's language, before any call.
func TestCreateVoucherStockBudgetRules(t *testing.T) {
	c := startConsole(t, nil)
	hc := c.userClient(t, "olivia", models.RoleOperator)
	cases := []struct {
		name, field, value, lang, want string
		errorField                     string
	}{
		{"budget_zh", "max_amount", "999.99", "", "总预算须等于面额乘以发放总上限：10.00 元 × 100 张 = 1000.00 元", "max_amount"},
		{"budget_en", "max_amount", "999.99", "en", "The budget must be the face value times the number of coupons: 10.00 yuan × 100 = 1000.00 yuan", "max_amount"},
		{"count_en", "max_coupons", "101", "en", "10.00 yuan × 101 = 1010.00 yuan", "max_amount"},
		{"per_user_zh", "max_coupons_per_user", "61", "", "单个用户最多可领 60 张。", "max_coupons_per_user"},
		{"per_user_en", "max_coupons_per_user", "61", "en", "A user may receive at most 60 coupons.", "max_coupons_per_user"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			form := voucherForm("预算规则"+tc.name[:3], "token-budget-"+tc.name)
			form.Set(tc.field, tc.value)
			resp, body := fetch(t, hc, "POST", c.URL+"/stocks/new", form, tc.lang)
			if resp.StatusCode != http.StatusUnprocessableEntity || !has(body, `id="`+tc.errorField+`-error"`) || !has(body, tc.want) ||
				!has(body, `value="`+tc.value+`"`) {
				t.Fatalf("status %d, want 422 with %q by %s", resp.StatusCode, tc.want, tc.errorField)
			}
		})
	}
	if n := sandboxFavorStocks(c, "预算规则"); n != 0 {
		t.Fatal("a refused form reached WeChat Pay")
	}
}
