package sandbox

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
)

func TestIdempotency(t *testing.T) {
	e := newEnv(t, nil)
	cases := []struct {
		name     string
		endpoint string
		path     string
		as       caller
		no       string
		first    obj
		other    obj
		otherPth string // when the difference is in the path
		code     string // reply to the reused number with a different request
	}{
		{
			name: "create_favor_stock", endpoint: EndpointCreateFavorStock, path: favorCreatePath, as: asMerchant,
			no: "IDEM_FAVOR_1", first: validFavor("IDEM_FAVOR_1"), other: set(validFavor("IDEM_FAVOR_1"), "stock_name", "另一个名字"),
			code: "INVALID_REQUEST",
		},
		{
			name: "busifavor_upload", endpoint: EndpointUploadBusifavorCodes, path: bfUploadPath(SeedBusifavorUpload), as: asMerchant,
			no: "IDEM_BF_1", first: bfUpload("IDEM_BF_1", []string{"IDEM1", "IDEM2"}), other: bfUpload("IDEM_BF_1", []string{"IDEM3"}),
			code: "RESOURCE_ALREADY_EXISTS",
		},
		{
			name: "product_coupon_upload", endpoint: EndpointUploadProductCouponCodes, path: pcUploadPath(SeedProductCoupon, SeedStockSending), as: asSP,
			no: "IDEM_PC_1", first: pcUpload("IDEM_PC_1", []string{"IDEM-1", "IDEM-2"}), other: pcUpload("IDEM_PC_1", []string{"IDEM-3"}),
			code: "INVALID_REQUEST",
		},
		{
			name: "deactivate", endpoint: EndpointDeactivateStock, path: deactivatePath(SeedProductCoupon, SeedStockPaused), as: asBrand,
			no: "IDEM_DEACT_1", first: deactivateBody("IDEM_DEACT_1", "活动取消"), other: deactivateBody("IDEM_DEACT_1", "另一个原因"),
			code: "INVALID_REQUEST",
		},
		{
			name: "pre_send", endpoint: EndpointPreSendCouponBundle, path: preSendPath(DemoOpenID), as: asBrand,
			no: "IDEM_SEND_1", first: preSendBody(SeedBundleMemberDay, "IDEM_SEND_1"), other: preSendBody(SeedBundleMemberDay, "IDEM_SEND_1"),
			otherPth: preSendPath("oAnotherUser"), code: "INVALID_REQUEST",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := e.in(t)
			first := e.call(http.MethodPost, tc.path, tc.first, tc.as)
			e.ok(first, nil)
			stocksBefore := e.sb.Stocks()
			// The same number and body, re-encoded with other key order and
			// spacing, gets the first reply again and changes nothing.
			again := e.call(http.MethodPost, tc.path, reencode(t, tc.first), tc.as)
			e.ok(again, nil)
			if !bytes.Equal(first.body, again.body) {
				t.Errorf("replay differs:\n%s\n%s", first.body, again.body)
			}
			if !sameStocks(stocksBefore, e.sb.Stocks()) {
				t.Error("a replay changed the stocks")
			}
			otherPath := tc.path
			if tc.otherPth != "" {
				otherPath = tc.otherPth
			}
			e.fails(e.call(http.MethodPost, otherPath, tc.other, tc.as), 400, tc.code)
			if !sameStocks(stocksBefore, e.sb.Stocks()) {
				t.Error("a refused reuse changed the stocks")
			}
			r, ok := e.request(tc.endpoint, tc.no)
			if !ok || r.Count != 3 || r.Identical {
				t.Errorf("request log %+v", r)
			}
		})
	}
	t.Run("failed_request_does_not_bind_its_number", func(t *testing.T) {
		e := e.in(t)
		path := deactivatePath(SeedProductCoupon, SeedStockSending)
		e.fails(e.call(http.MethodPost, path, deactivateBody("IDEM_FIX_1", string(make([]rune, 151))), asBrand), 400, "PARAM_ERROR")
		e.ok(e.call(http.MethodPost, path, deactivateBody("IDEM_FIX_1", "修正后的原因"), asBrand), nil)
	})
	t.Run("identical_log", func(t *testing.T) {
		e := e.in(t)
		body := pcUpload("IDEM_LOG_1", []string{"LOG-1"})
		for range 3 {
			e.ok(e.call(http.MethodPost, pcUploadPath(SeedProductCoupon, SeedStockSending), body, asSP), nil)
		}
		var out struct {
			Requests []RequestInfo `json:"requests"`
		}
		e.get("/_sandbox/requests", &out)
		found := false
		for _, r := range out.Requests {
			if r.RequestNo == "IDEM_LOG_1" {
				found = true
				if r.Count != 3 || !r.Identical || r.Endpoint != EndpointUploadProductCouponCodes {
					t.Errorf("%+v", r)
				}
			}
		}
		if !found {
			t.Error("request number missing from /_sandbox/requests")
		}
	})
}

// reencode renders a body with its keys in another order and with spaces.
func reencode(t *testing.T, o obj) []byte {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("{ ")
	keys := make([]string, 0, len(o))
	for k := range o {
		keys = append(keys, k)
	}
	// Reverse-sorted keys: the client's encoder would never produce this.
	slices.Sort(keys)
	slices.Reverse(keys)
	for i, k := range keys {
		if i > 0 {
			b.WriteString(" , ")
		}
		kj, _ := json.Marshal(k)
		vj, err := json.Marshal(o[k])
		if err != nil {
			t.Fatal(err)
		}
		b.Write(kj)
		b.WriteString(" : ")
		b.Write(vj)
	}
	b.WriteString(" }")
	return b.Bytes()
}

func sameStocks(a, b []StockInfo) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.StockID != y.StockID || x.State != y.State || x.TotalCount != y.TotalCount || x.AvailableCount != y.AvailableCount || len(x.Codes) != len(y.Codes) {
			return false
		}
	}
	return true
}
