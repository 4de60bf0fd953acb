package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/deactivate"
	"voucherconsole/internal/models"
	"voucherconsole/internal/wxpay/sandbox"
)

// Deactivating a SENDING stock through the page turns it DEACTIVATED in the
// sandbox and in the console, shows the reason, time and request number as
// WeChat Pay returns them, and leaves one outcome entry in the audit log
// (after the intent's pending entry). The page explains deactivation in the
// user's language.
func TestDeactivateSendingStock(t *testing.T) {
	c := startConsole(t, nil)
	hc := c.userClient(t, "olivia", models.RoleOperator)
	id := stockRef(t, c, sandbox.SeedStockSending)

	_, stockPage := fetch(t, hc, "GET", c.URL+"/stocks/"+id, nil, "en")
	if !has(stockPage, `id="deactivate-stock"`) {
		t.Fatal("the stock page of a SENDING stock offers no deactivation")
	}
	resp, zh := fetch(t, hc, "GET", c.URL+"/stocks/"+id+"/deactivate", nil, "")
	if resp.StatusCode != 200 || !has(zh, "该批次不会再有新的用户领券") || !has(zh, "仍然有效") || !has(zh, "无法撤销") || !has(zh, `id="deactivate-form"`) {
		t.Fatalf("Chinese page: %d\n%s", resp.StatusCode, zh)
	}
	_, page := fetch(t, hc, "GET", c.URL+"/stocks/"+id+"/deactivate", nil, "en")
	for _, want := range []string{"no new claims", "stay valid", "cannot be undone", "Sending", `name="deactivate_reason"`, `name="stock_id"`} {
		if !has(page, want) {
			t.Fatalf("English page lacks %q:\n%s", want, page)
		}
	}
	reason := "门店调整，批次信息有误，停止发放"
	form := url.Values{"deactivate_reason": {reason}, "stock_id": {sandbox.SeedStockSending}, "form_token": {formToken(t, page)}}
	resp, _ = fetch(t, hc, "POST", c.URL+"/stocks/"+id+"/deactivate", form, "en")
	resp, result := follow(t, hc, c.URL, resp, "en")
	if resp.StatusCode != 200 || !has(result, "Deactivated") || !has(result, reason) || has(result, `id="deactivate-form"`) {
		t.Fatalf("after deactivation: %d\n%s", resp.StatusCode, result)
	}
	if got := sandboxState(t, c, sandbox.SeedStockSending); got != "DEACTIVATED" {
		t.Fatalf("sandbox state %s", got)
	}
	var st models.Stock
	c.DB.Gorm.Take(&st, id)
	if st.State != models.StateDeactivated || st.DeactivateReason != reason || st.DeactivateTime == "" || st.DeactivateRequestNo == "" {
		t.Fatalf("console record %+v", st)
	}
	when, _ := time.Parse(time.RFC3339, st.DeactivateTime)
	if !has(result, st.DeactivateRequestNo) || !has(result, when.In(c.Config.Location()).Format("2006-01-02 15:04:05")) {
		t.Fatalf("the page does not show the request number and time:\n%s", result)
	}
	entries := auditEntries(t, c, deactivate.Action)
	outcomes := 0
	for _, e := range entries {
		if e.Outcome != audit.Pending {
			outcomes++
			if e.Outcome != audit.Success || e.WxRequestNo != st.DeactivateRequestNo || e.TargetID != id {
				t.Fatalf("outcome entry %+v", e)
			}
		}
	}
	if outcomes != 1 || len(entries) != 2 {
		t.Fatalf("%d audit entries (%d outcomes), want the intent and one outcome: %+v", len(entries), outcomes, entries)
	}
	// The stock page shows the deactivation and its request.
	_, stockPage = fetch(t, hc, "GET", c.URL+"/stocks/"+id, nil, "en")
	if has(stockPage, `id="deactivate-stock"`) || !has(stockPage, `id="deactivation-requests"`) || !has(stockPage, st.DeactivateRequestNo) || !has(stockPage, reason) {
		t.Fatalf("stock page after deactivation:\n%s", stockPage)
	}
}

// AUDITING, STOPPED and DEACTIVATED stocks: no action on the pages; a direct
// POST is refused with the reason (409), audited as denied, and nothing is
// sent to WeChat Pay.
func TestDeactivateRefused(t *testing.T) {
	c := startConsole(t, nil)
	hc := c.userClient(t, "olivia", models.RoleOperator)
	for _, tc := range []struct {
		stockID, state, label string
	}{
		{sandbox.SeedStockAuditing, "AUDITING", "Under review"},
		{sandbox.SeedStockStopped, "STOPPED", "Stopped"},
		{sandbox.SeedStockDeactivated, "DEACTIVATED", "Deactivated"},
		{sandbox.SeedFavorStock, "", "Voucher"},
	} {
		t.Run(tc.stockID, func(t *testing.T) {
			id := stockRef(t, c, tc.stockID)
			_, stockPage := fetch(t, hc, "GET", c.URL+"/stocks/"+id, nil, "en")
			if has(stockPage, `id="deactivate-stock"`) {
				t.Fatal("the stock page offers deactivation")
			}
			resp, page := fetch(t, hc, "GET", c.URL+"/stocks/"+id+"/deactivate", nil, "en")
			if resp.StatusCode != 200 || has(page, `id="deactivate-form"`) || !has(page, `id="deactivate-refused"`) || !has(page, tc.label) {
				t.Fatalf("page: %d\n%s", resp.StatusCode, page)
			}
			before := len(sandboxRequests(c, sandbox.EndpointDeactivateStock))
			denied := len(auditEntries(t, c, deactivate.Action))
			form := url.Values{"deactivate_reason": {"试图失效"}, "stock_id": {tc.stockID}, "form_token": {newTestToken()}}
			resp, page = fetch(t, hc, "POST", c.URL+"/stocks/"+id+"/deactivate", form, "en")
			if resp.StatusCode != http.StatusConflict || !has(page, "cannot be deactivated") || !has(page, "Nothing was sent") {
				t.Fatalf("POST: %d\n%s", resp.StatusCode, page)
			}
			if tc.state != "" && !has(page, tc.state) {
				t.Fatalf("the refusal does not name the state %s", tc.state)
			}
			if len(sandboxRequests(c, sandbox.EndpointDeactivateStock)) != before {
				t.Fatal("a deactivation was sent to WeChat Pay")
			}
			entries := auditEntries(t, c, deactivate.Action)
			if len(entries) != denied+1 || entries[len(entries)-1].Outcome != audit.Denied || entries[len(entries)-1].TargetID != id {
				t.Fatalf("audit: %+v", entries)
			}
		})
	}
}

var testTokenSeq atomic.Int64

func newTestToken() string { return fmt.Sprintf("test-form-token-%04d", testTokenSeq.Add(1)) }

// The reason is 1–150 characters counted as characters: 150 Chinese
// characters are accepted, 151 refused with a field error, an empty reason
// and a wrong confirmation refused; refused forms keep what was typed and
// send nothing. The same form posted twice is one request.
func TestDeactivateValidation(t *testing.T) {
	c := startConsole(t, nil)
	hc := c.userClient(t, "olivia", models.RoleOperator)
	id := stockRef(t, c, sandbox.SeedStockPaused)
	_, page := fetch(t, hc, "GET", c.URL+"/stocks/"+id+"/deactivate", nil, "en")
	tok := formToken(t, page)
	long := strings.Repeat("停", 151)
	for _, tc := range []struct {
		name, reason, confirm, field, message string
	}{
		{"151 characters", long, sandbox.SeedStockPaused, "deactivate_reason", "at most 150 characters; it has 151"},
		{"empty reason", "", sandbox.SeedStockPaused, "deactivate_reason", "Enter the reason"},
		{"blank reason", "   ", sandbox.SeedStockPaused, "deactivate_reason", "Enter the reason"},
		{"wrong confirmation", "原因", sandbox.SeedStockSending, "stock_id", "is not this stock"},
		{"no confirmation", "原因", "", "stock_id", "Type the stock ID to confirm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			form := url.Values{"deactivate_reason": {tc.reason}, "stock_id": {tc.confirm}, "form_token": {tok}}
			resp, body := fetch(t, hc, "POST", c.URL+"/stocks/"+id+"/deactivate", form, "en")
			if resp.StatusCode != http.StatusUnprocessableEntity || !has(body, tc.message) || !has(body, `id="`+tc.field+`-error"`) {
				t.Fatalf("%d\n%s", resp.StatusCode, body)
			}
			if tc.reason != "" && !has(body, tc.reason) {
				t.Fatal("the reason typed was not kept")
			}
		})
	}
	_, zh := fetch(t, hc, "POST", c.URL+"/stocks/"+id+"/deactivate", url.Values{"deactivate_reason": {long}, "stock_id": {sandbox.SeedStockPaused}, "form_token": {tok}}, "")
	if !has(zh, "最多 150 个字符，当前为 151 个") {
		t.Fatalf("Chinese field error missing:\n%s", zh)
	}
	if n := len(sandboxRequests(c, sandbox.EndpointDeactivateStock)); n != 0 {
		t.Fatalf("%d requests sent for refused forms", n)
	}
	ok := strings.Repeat("停", 150)
	form := url.Values{"deactivate_reason": {ok}, "stock_id": {sandbox.SeedStockPaused}, "form_token": {tok}}
	for range 2 { // the same form, twice
		resp, _ := fetch(t, hc, "POST", c.URL+"/stocks/"+id+"/deactivate", form, "en")
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("150 characters: %d", resp.StatusCode)
		}
	}
	reqs := sandboxRequests(c, sandbox.EndpointDeactivateStock)
	if len(reqs) != 1 {
		t.Fatalf("requests %v, want one", reqs)
	}
	for no, n := range reqs {
		if n != 1 {
			t.Fatalf("request %s sent %d times", no, n)
		}
	}
	var st models.Stock
	c.DB.Gorm.Take(&st, id)
	if st.State != models.StateDeactivated || st.DeactivateReason != ok {
		t.Fatalf("record %+v", st)
	}
}

// WeChat Pay's errors are shown with code, message and Request-ID; a 429
// leaves the request pending and the same form resends it.
func TestDeactivateWeChatError(t *testing.T) {
	c := startConsole(t, nil)
	hc := c.userClient(t, "olivia", models.RoleOperator)
	id := stockRef(t, c, sandbox.SeedStockSending)
	_, page := fetch(t, hc, "GET", c.URL+"/stocks/"+id+"/deactivate", nil, "en")
	form := url.Values{"deactivate_reason": {"限流测试"}, "stock_id": {sandbox.SeedStockSending}, "form_token": {formToken(t, page)}}
	if err := c.Sandbox.SetFaults(sandbox.Faults{ThrottleRate: 1}); err != nil {
		t.Fatal(err)
	}
	resp, body := fetch(t, hc, "POST", c.URL+"/stocks/"+id+"/deactivate", form, "en")
	if resp.StatusCode != http.StatusTooManyRequests || !has(body, `id="wx-error-code">RATELIMIT_EXCEEDED`) || !has(body, `id="wx-request-id"`) ||
		!has(body, "请求超过接口频率限制") || !has(body, `id="deactivate-notice"`) || !has(body, "限流测试") {
		t.Fatalf("429: %d\n%s", resp.StatusCode, body)
	}
	_ = c.Sandbox.SetFaults(sandbox.Faults{})
	resp, _ = fetch(t, hc, "POST", c.URL+"/stocks/"+id+"/deactivate", form, "en")
	if resp.StatusCode != http.StatusSeeOther || sandboxState(t, c, sandbox.SeedStockSending) != "DEACTIVATED" {
		t.Fatalf("resend: %d", resp.StatusCode)
	}
	if reqs := sandboxRequests(c, sandbox.EndpointDeactivateStock); len(reqs) != 1 {
		t.Fatalf("requests %v, want one number", reqs)
	}
}

// Support may not open the deactivation page or post to it.
func TestDeactivateSupportRefused(t *testing.T) {
	c := startConsole(t, nil)
	hc := c.userClient(t, "sue", models.RoleSupport)
	id := stockRef(t, c, sandbox.SeedStockSending)
	for _, m := range []string{"GET", "POST"} {
		resp, _ := fetch(t, hc, m, c.URL+"/stocks/"+id+"/deactivate", url.Values{}, "en")
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("%s: %d", m, resp.StatusCode)
		}
	}
}
