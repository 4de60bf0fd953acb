package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"voucherconsole/internal/deactivate"
	"voucherconsole/internal/models"
	"voucherconsole/internal/presend"
	"voucherconsole/internal/stocks"
	"voucherconsole/internal/wxpay/sandbox"
)

// Every action that changes something at WeChat Pay goes through the one
// recorded call (wxops.Run): when WeChat Pay's reply fails verification the
// outcome is unknown, so the operation stays pending; the same form posted
// again reaches the sandbox with the same request number and an identical
// body, and there is one stock, one deactivation, one token.
func TestUnverifiedReplyResentUnchanged(t *testing.T) {
	cases := []struct {
		name     string
		kind     string // wx_operations kind
		endpoint string
		page     string // GET: the form, with its token
		post     string
		form     func(c *consoleServer, token string) url.Values
		resent   int // the status of the second post
		check    func(t *testing.T, c *consoleServer)
	}{
		{
			name: "create stock", kind: stocks.OpCreateFavorStock, endpoint: sandbox.EndpointCreateFavorStock,
			page: "/stocks/new", post: "/stocks/new", resent: http.StatusSeeOther,
			form: func(_ *consoleServer, token string) url.Values { return voucherForm("验签失败重发", token) },
			check: func(t *testing.T, c *consoleServer) {
				var n int64
				c.DB.Gorm.Model(&models.Stock{}).Where("kind = 'favor' AND name = ?", "验签失败重发").Count(&n)
				if got := sandboxFavorStocks(c, "验签失败重发"); got != 1 || n != 1 {
					t.Fatalf("%d stocks at WeChat Pay, %d in the console; want one each", got, n)
				}
			},
		},
		{
			name: "deactivate", kind: deactivate.OpKind, endpoint: sandbox.EndpointDeactivateStock,
			post: "/stocks/{id}/deactivate", page: "/stocks/{id}/deactivate", resent: http.StatusSeeOther,
			form: func(_ *consoleServer, token string) url.Values {
				return url.Values{"deactivate_reason": {"应答验签失败"}, "stock_id": {sandbox.SeedStockSending}, "form_token": {token}}
			},
			check: func(t *testing.T, c *consoleServer) {
				var st models.Stock
				c.DB.Gorm.Where("stock_id = ?", sandbox.SeedStockSending).Take(&st)
				if sandboxState(t, c, sandbox.SeedStockSending) != "DEACTIVATED" || st.State != models.StateDeactivated {
					t.Fatalf("stock %s in the console", st.State)
				}
			},
		},
		{
			name: "pre-send", kind: presend.OpKind, endpoint: sandbox.EndpointPreSendCouponBundle,
			page: "/presend", post: "/presend", resent: http.StatusOK,
			form: func(_ *consoleServer, token string) url.Values {
				return presendForm(sandbox.SeedBundleMemberDay, e2eOpenID(40), token)
			},
			check: func(t *testing.T, c *consoleServer) {
				var toks []presend.Token
				c.DB.Gorm.Find(&toks)
				if len(toks) != 1 || toks[0].Status != presend.StatusIssued || toks[0].Token == "" || toks[0].OpenIDSealed != "" {
					t.Fatalf("tokens %+v, want one issued", toks)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := startConsole(t, nil)
			hc := c.userClient(t, "olivia", models.RoleOperator)
			id := stockRef(t, c, sandbox.SeedStockSending)
			path := func(p string) string { return c.URL + strings.ReplaceAll(p, "{id}", id) }
			_, page := fetch(t, hc, "GET", path(tc.page), nil, "en")
			form := tc.form(c, formToken(t, page))

			if err := c.Sandbox.SetFaults(sandbox.Faults{BadSignatureRate: 1}); err != nil {
				t.Fatal(err)
			}
			resp, body := fetch(t, hc, "POST", path(tc.post), form, "en")
			if resp.StatusCode != http.StatusBadGateway || !has(body, `id="wx-error-code">REPLY_REJECTED`) || !has(body, "failed verification") {
				t.Fatalf("first post: %d, want 502 naming the rejected reply\n%s", resp.StatusCode, body)
			}
			var ops []models.WxOperation
			c.DB.Gorm.Where("kind = ?", tc.kind).Find(&ops)
			if len(ops) != 1 || ops[0].Status != models.OpPending || ops[0].WxErrorCode != "REPLY_REJECTED" {
				t.Fatalf("operations %+v, want one pending", ops)
			}
			if !has(body, ops[0].RequestNo) {
				t.Fatalf("the page does not name the request kept, %s:\n%s", ops[0].RequestNo, body)
			}

			_ = c.Sandbox.SetFaults(sandbox.Faults{})
			resp, body = fetch(t, hc, "POST", path(tc.post), form, "en")
			if resp.StatusCode != tc.resent {
				t.Fatalf("second post: %d, want %d\n%s", resp.StatusCode, tc.resent, body)
			}
			reqs := []sandbox.RequestInfo{}
			for _, r := range c.Sandbox.Requests() {
				if r.Endpoint == tc.endpoint {
					reqs = append(reqs, r)
				}
			}
			if len(reqs) != 1 || reqs[0].RequestNo != ops[0].RequestNo || reqs[0].Count != 2 || !reqs[0].Identical {
				t.Fatalf("sandbox saw %+v; want %s twice with identical bodies", reqs, ops[0].RequestNo)
			}
			c.DB.Gorm.Where("kind = ?", tc.kind).Find(&ops)
			if len(ops) != 1 || ops[0].Status != models.OpSucceeded {
				t.Fatalf("operations %+v, want the one succeeded", ops)
			}
			tc.check(t, c)
		})
	}
}

// The deactivation page's GET reads the stock back from WeChat Pay; its
// POST makes one WeChat Pay call, the deactivation itself, counted on the
// sandbox.
func TestDeactivatePostCallsOnce(t *testing.T) {
	c := startConsole(t, nil)
	hc := c.userClient(t, "olivia", models.RoleOperator)
	id := stockRef(t, c, sandbox.SeedStockPaused)
	total := func() int {
		n := 0
		for _, v := range c.Sandbox.Calls() {
			n += v
		}
		return n
	}
	before, reads := total(), c.Sandbox.Calls()[sandbox.EndpointGetProductCouponStock]
	_, page := fetch(t, hc, "GET", c.URL+"/stocks/"+id+"/deactivate", nil, "en")
	if got := c.Sandbox.Calls()[sandbox.EndpointGetProductCouponStock]; got != reads+1 || total() != before+1 {
		t.Fatalf("the GET made %d calls (%d reads), want one read", total()-before, got-reads)
	}
	form := url.Values{"deactivate_reason": {"一次调用"}, "stock_id": {sandbox.SeedStockPaused}, "form_token": {formToken(t, page)}}
	before = total()
	resp, _ := fetch(t, hc, "POST", c.URL+"/stocks/"+id+"/deactivate", form, "en")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
	if calls := c.Sandbox.Calls(); total() != before+1 || calls[sandbox.EndpointDeactivateStock] != 1 {
		t.Fatalf("the POST made %d WeChat Pay calls (%v), want one deactivation", total()-before, calls)
	}
}
