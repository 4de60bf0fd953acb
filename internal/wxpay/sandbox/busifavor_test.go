package sandbox

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

func bfUpload(no string, list []string) obj {
	return obj{"upload_request_no": no, "coupon_code_list": list}
}

func TestUploadBusifavorCodes(t *testing.T) {
	e := newEnv(t, nil)
	path := bfUploadPath(SeedBusifavorUpload)

	t.Run("OK_sorted_into_lists", func(t *testing.T) {
		e := e.in(t)
		var first bfUploadReply
		e.ok(e.call(http.MethodPost, path, bfUpload("BF_UP_0001", []string{"ABC 9588200", `a-*\/=|z`}), asMerchant), &first)
		list := []string{"ABC 9588200", "NEW1", "NEW1", strings.Repeat("L", 33), "tab\tcode", "中文"}
		var got bfUploadReply
		e.ok(e.call(http.MethodPost, path, bfUpload("BF_UP_0002", list), asMerchant), &got)
		if got.StockID != SeedBusifavorUpload || got.TotalCount != 5 || got.SuccessCount != 1 || got.FailCount != 3 {
			t.Errorf("%+v", got)
		}
		if !slices.Equal(got.SuccessCodes, []string{"NEW1"}) || !slices.Equal(got.ExistCodes, []string{"ABC 9588200"}) ||
			!slices.Equal(got.DuplicateCodes, []string{"NEW1"}) {
			t.Errorf("%+v", got)
		}
		if got.FailCodes[0].Code != "LENGTH_LIMIT" {
			t.Errorf("fail codes %+v", got.FailCodes)
		}
		if got.SuccessTime != "2025-06-02T10:00:00.000+08:00" {
			t.Errorf("success_time %q", got.SuccessTime)
		}
		s := e.stock(KindBusifavor, SeedBusifavorUpload)
		if s.TotalCount != 3 || s.AvailableCount != 3 || s.State != BusifavorRunning || s.CouponCodeMode != BusifavorModeUpload {
			t.Errorf("%+v", s)
		}
		var ent bfStockEntity
		e.ok(e.call(http.MethodGet, bfStockPath(SeedBusifavorUpload), nil, asMerchant), &ent)
		if ent.CouponCodeCount == nil || ent.CouponCodeCount.TotalCount != 3 || ent.StockState != BusifavorRunning {
			t.Errorf("read %+v", ent)
		}
	})

	// A small stock for the upper limit, and one of another merchant.
	e.sb.mu.Lock()
	e.sb.st.addBusifavor(&busifavorStock{StockID: "1265000090", StockName: "小批次", BelongMerchant: MerchantID, StockType: "NORMAL",
		StockState: BusifavorRunning, CouponCodeMode: BusifavorModeUpload, StockSendRule: bfSendRule{MaxCoupons: 3}})
	e.sb.st.addBusifavor(&busifavorStock{StockID: "1265000091", StockName: "他人批次", BelongMerchant: "1230000999", StockType: "NORMAL",
		StockState: BusifavorRunning, CouponCodeMode: BusifavorModeUpload, StockSendRule: bfSendRule{MaxCoupons: 100}})
	e.sb.mu.Unlock()
	t.Run("OK_up_to_limit", func(t *testing.T) {
		e := e.in(t)
		e.ok(e.call(http.MethodPost, bfUploadPath("1265000090"), bfUpload("BF_LIM_1", []string{"A", "B"}), asMerchant), nil)
	})

	errs := []struct {
		name   string
		path   string
		body   any
		status int
		code   string
	}{
		{"INVALID_REQUEST_limit", bfUploadPath("1265000090"), bfUpload("BF_LIM_2", []string{"C", "D"}), 400, "INVALID_REQUEST"},
		{"INVALID_REQUEST_code_mode", bfUploadPath(SeedBusifavorWechatPay), bfUpload("BF_E01", []string{"A"}), 400, "INVALID_REQUEST"},
		{"RESOURCE_NOT_EXISTS", bfUploadPath("404"), bfUpload("BF_E02", []string{"A"}), 404, "RESOURCE_NOT_EXISTS"},
		{"NOAUTH_other_merchant", bfUploadPath("1265000091"), bfUpload("BF_E03", []string{"A"}), 403, "NOAUTH"},
		{"PARAM_ERROR_201_codes", path, bfUpload("BF_E04", codes("c", 201)), 400, "PARAM_ERROR"},
		{"PARAM_ERROR_no_codes", path, bfUpload("BF_E05", nil), 400, "PARAM_ERROR"},
		{"PARAM_ERROR_upload_request_no_missing", path, obj{"coupon_code_list": []string{"A"}}, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_upload_request_no_129", path, bfUpload(strings.Repeat("n", 129), []string{"A"}), 400, "PARAM_ERROR"},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			e := e.in(t)
			before := e.stock(KindBusifavor, SeedBusifavorUpload).TotalCount
			e.fails(e.call(http.MethodPost, tc.path, tc.body, asMerchant), tc.status, tc.code)
			if after := e.stock(KindBusifavor, SeedBusifavorUpload).TotalCount; after != before {
				t.Errorf("inventory %d → %d", before, after)
			}
		})
	}
	if s := e.stock(KindBusifavor, "1265000090"); s.TotalCount != 2 {
		t.Errorf("refused upload beyond the limit changed the stock: %d codes", s.TotalCount)
	}
}

func TestGetBusifavorStock(t *testing.T) {
	e := newEnv(t, nil)
	var up, wx bfStockEntity
	e.ok(e.call(http.MethodGet, bfStockPath(SeedBusifavorUpload), nil, asMerchant), &up)
	if up.StockID != SeedBusifavorUpload || up.StockState != BusifavorRunning || up.CouponCodeMode != BusifavorModeUpload ||
		up.CouponCodeCount == nil || up.BelongMerchant != MerchantID || up.StockSendRule.MaxCoupons == 0 {
		t.Errorf("%+v", up)
	}
	e.ok(e.call(http.MethodGet, bfStockPath(SeedBusifavorWechatPay), nil, asMerchant), &wx)
	if wx.CouponCodeCount != nil || wx.CouponCodeMode != BusifavorModeWechatPay {
		t.Errorf("%+v", wx)
	}
	t.Run("RESOURCE_NOT_EXISTS", func(t *testing.T) {
		e := e.in(t)
		e.fails(e.call(http.MethodGet, bfStockPath("1"), nil, asMerchant), 404, "RESOURCE_NOT_EXISTS")
	})
	t.Run("NOAUTH_other_merchant", func(t *testing.T) {
		e := e.in(t)
		e.sb.mu.Lock()
		e.sb.st.addBusifavor(&busifavorStock{StockID: "1265000091", StockName: "他人批次", BelongMerchant: "1230000999",
			StockType: "NORMAL", StockState: BusifavorRunning, CouponCodeMode: BusifavorModeWechatPay})
		e.sb.mu.Unlock()
		e.fails(e.call(http.MethodGet, bfStockPath("1265000091"), nil, asMerchant), 403, "NOAUTH")
	})
}
