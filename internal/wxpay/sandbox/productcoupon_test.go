package sandbox

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

func pcUpload(no string, codeList []string) obj {
	return obj{"out_request_no": no, "code_list": codeList, "brand_id": BrandID}
}

func TestUploadProductCouponCodes(t *testing.T) {
	e := newEnv(t, nil)
	path := pcUploadPath(SeedProductCoupon, SeedStockSending)
	before := e.stock(KindProductCoupon, SeedStockSending)

	t.Run("OK_sorted_into_lists", func(t *testing.T) {
		e := e.in(t)
		list := []string{"NEW-0001", "NEW-0002", "NEW-0001", "NEW-0001", "LATTE-SPRING-0001", "bad code!", strings.Repeat("x", 41), "NEW_0003"}
		var got pcUploadReply
		e.ok(e.call(http.MethodPost, path, pcUpload("UPLOAD_0001", list), asSP), &got)
		if got.TotalCount != 6 {
			t.Errorf("total_count %d, want 6 distinct codes", got.TotalCount)
		}
		if !slices.Equal(got.SuccessCodeList, []string{"NEW-0001", "NEW-0002", "NEW_0003"}) {
			t.Errorf("success %v", got.SuccessCodeList)
		}
		if !slices.Equal(got.DuplicateCodeList, []string{"NEW-0001"}) {
			t.Errorf("duplicate %v", got.DuplicateCodeList)
		}
		if !slices.Equal(got.AlreadyExistCodeList, []string{"LATTE-SPRING-0001"}) {
			t.Errorf("already exist %v", got.AlreadyExistCodeList)
		}
		if len(got.FailedCodeList) != 2 || got.FailedCodeList[0].CouponCode != "bad code!" || got.FailedCodeList[0].Code == "" || got.FailedCodeList[0].Message == "" {
			t.Errorf("failed %+v", got.FailedCodeList)
		}
		after := e.stock(KindProductCoupon, SeedStockSending)
		if after.TotalCount != before.TotalCount+3 || after.AvailableCount != before.AvailableCount+3 {
			t.Errorf("counts %d/%d → %d/%d", before.TotalCount, before.AvailableCount, after.TotalCount, after.AvailableCount)
		}
		if !slices.Contains(after.Codes, "NEW_0003") {
			t.Errorf("codes %v", after.Codes)
		}
		// The read endpoint shows the same counts.
		var ent pcStockEntity
		e.ok(e.call(http.MethodGet, pcStockPath(SeedProductCoupon, SeedStockSending), nil, asBrand), &ent)
		if ent.CouponCodeCountInfo == nil || ent.CouponCodeCountInfo.TotalCount != after.TotalCount || ent.CouponCodeCountInfo.AvailableCount != after.AvailableCount {
			t.Errorf("entity counts %+v", ent.CouponCodeCountInfo)
		}
	})
	t.Run("OK_200_codes", func(t *testing.T) {
		e := e.in(t)
		var got pcUploadReply
		e.ok(e.call(http.MethodPost, path, pcUpload("UPLOAD_0002", codes("B200-", 200)), asSP), &got)
		if got.TotalCount != 200 || len(got.SuccessCodeList) != 200 {
			t.Errorf("%d/%d", got.TotalCount, len(got.SuccessCodeList))
		}
	})
	t.Run("OK_forty_characters", func(t *testing.T) {
		e := e.in(t)
		var got pcUploadReply
		e.ok(e.call(http.MethodPost, path, pcUpload("UPLOAD_0003", []string{strings.Repeat("Z", 40)}), asSP), &got)
		if len(got.SuccessCodeList) != 1 {
			t.Errorf("%+v", got)
		}
	})

	errs := []struct {
		name   string
		path   string
		body   any
		status int
		code   string
	}{
		{"INVALID_REQUEST_code_mode", pcUploadPath(SeedProductCoupon, SeedStockWechatPayMode), pcUpload("UPLOAD_E01", []string{"A1"}), 400, "INVALID_REQUEST"},
		{"INVALID_REQUEST_expired", pcUploadPath(SeedProductCoupon, SeedStockStopped), pcUpload("UPLOAD_E02", []string{"A1"}), 400, "INVALID_REQUEST"},
		{"NOT_FOUND_product_coupon", pcUploadPath("9999999999", SeedStockSending), pcUpload("UPLOAD_E03", []string{"A1"}), 404, "NOT_FOUND"},
		{"NOT_FOUND_stock", pcUploadPath(SeedProductCoupon, "9999999999001"), pcUpload("UPLOAD_E04", []string{"A1"}), 404, "NOT_FOUND"},
		{"NOT_FOUND_stock_of_other_coupon", pcUploadPath(SeedProductCoupon, SeedBundleStockSmall), pcUpload("UPLOAD_E05", []string{"A1"}), 404, "NOT_FOUND"},
		{"NO_AUTH_brand", path, obj{"out_request_no": "UPLOAD_E06", "code_list": []string{"A1"}, "brand_id": "999999"}, 403, "NO_AUTH"},
		{"PARAM_ERROR_brand_id_missing", path, obj{"out_request_no": "UPLOAD_E07", "code_list": []string{"A1"}}, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_201_codes", path, pcUpload("UPLOAD_E08", codes("C201-", 201)), 400, "PARAM_ERROR"},
		{"PARAM_ERROR_code_list_missing", path, obj{"out_request_no": "UPLOAD_E09", "brand_id": BrandID}, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_code_list_empty", path, pcUpload("UPLOAD_E10", []string{}), 400, "PARAM_ERROR"},
		{"PARAM_ERROR_out_request_no_short", path, pcUpload("U_E11", []string{"A1"}), 400, "PARAM_ERROR"},
		{"PARAM_ERROR_out_request_no_41", path, pcUpload(strings.Repeat("U", 41), []string{"A1"}), 400, "PARAM_ERROR"},
		{"PARAM_ERROR_out_request_no_chars", path, pcUpload("UPLOAD.E12", []string{"A1"}), 400, "PARAM_ERROR"},
		{"PARAM_ERROR_code_list_type", path, obj{"out_request_no": "UPLOAD_E13", "code_list": "A1", "brand_id": BrandID}, 400, "PARAM_ERROR"},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			e := e.in(t)
			before := e.stock(KindProductCoupon, SeedStockSending)
			e.fails(e.call(http.MethodPost, tc.path, tc.body, asSP), tc.status, tc.code)
			if after := e.stock(KindProductCoupon, SeedStockSending); after.TotalCount != before.TotalCount {
				t.Errorf("a refused upload changed the inventory: %d → %d", before.TotalCount, after.TotalCount)
			}
		})
	}
	t.Run("INVALID_REQUEST_messages", func(t *testing.T) {
		e := e.in(t)
		r := e.call(http.MethodPost, pcUploadPath(SeedProductCoupon, SeedStockWechatPayMode), pcUpload("UPLOAD_M01", []string{"A1"}), asSP)
		if r.message() != "只有 coupon_code_mode 为 UPLOAD 的批次可以预上传券Code" {
			t.Errorf("message %q", r.message())
		}
		r = e.call(http.MethodPost, pcUploadPath(SeedProductCoupon, SeedStockStopped), pcUpload("UPLOAD_M02", []string{"A1"}), asSP)
		if r.message() != "已过期的批次不可预上传券Code" {
			t.Errorf("message %q", r.message())
		}
		r = e.call(http.MethodPost, pcUploadPath("9999999999", SeedStockSending), pcUpload("UPLOAD_M03", []string{"A1"}), asSP)
		if r.message() != "未找到 product_coupon_id 对应的商品券" {
			t.Errorf("message %q", r.message())
		}
		r = e.call(http.MethodPost, pcUploadPath(SeedProductCoupon, "1"), pcUpload("UPLOAD_M04", []string{"A1"}), asSP)
		if r.message() != "未找到 stock_id 对应的商品券批次" {
			t.Errorf("message %q", r.message())
		}
	})
}

func deactivateBody(no, reason string) obj {
	return obj{"out_request_no": no, "deactivate_reason": reason}
}

func TestDeactivate(t *testing.T) {
	e := newEnv(t, nil)
	for _, id := range []string{SeedStockSending, SeedStockPaused} {
		t.Run("OK_"+id, func(t *testing.T) {
			e := e.in(t)
			reason := strings.Repeat("因", 150) // the limit, in characters
			var got pcStockEntity
			e.ok(e.call(http.MethodPost, deactivatePath(SeedProductCoupon, id), deactivateBody("DEACT_"+id, reason), asBrand), &got)
			if got.State != StateDeactivated || got.DeactivateReason != reason || got.DeactivateRequestNo != "DEACT_"+id ||
				got.DeactivateTime != "2025-06-02T10:00:00+08:00" {
				t.Errorf("entity %+v", got)
			}
			if got.ProductCouponID != SeedProductCoupon || got.StockID != id || got.CouponCodeMode != CodeModeUpload ||
				got.CouponCodeCountInfo == nil || got.StockSendRule.MaxCount == 0 || got.SingleUsageRule == nil ||
				got.UsageRuleDisplayInfo.UsageDescription == "" || got.CouponDisplayInfo.CodeDisplayMode == "" ||
				got.NotifyConfig.NotifyAppid == "" || got.StoreScope == "" {
				t.Errorf("entity lacks document 001's required fields: %+v", got)
			}
			// The read endpoint returns the same entity.
			var read pcStockEntity
			e.ok(e.call(http.MethodGet, pcStockPath(SeedProductCoupon, id), nil, asBrand), &read)
			if read.State != StateDeactivated || read.DeactivateReason != reason {
				t.Errorf("read %+v", read)
			}
			if s := e.stock(KindProductCoupon, id); s.State != StateDeactivated {
				t.Errorf("/_sandbox/stocks state %s", s.State)
			}
		})
	}
	errs := []struct {
		name   string
		stock  string
		body   any
		status int
		code   string
	}{
		{"INVALID_REQUEST_state_AUDITING", SeedStockAuditing, deactivateBody("DEACT_E01", "原因"), 400, "INVALID_REQUEST"},
		{"INVALID_REQUEST_state_STOPPED", SeedStockStopped, deactivateBody("DEACT_E02", "原因"), 400, "INVALID_REQUEST"},
		{"INVALID_REQUEST_state_DEACTIVATED", SeedStockDeactivated, deactivateBody("DEACT_E03", "原因"), 400, "INVALID_REQUEST"},
		{"INVALID_REQUEST_state_again", SeedStockSending, deactivateBody("DEACT_E04", "再次失效"), 400, "INVALID_REQUEST"},
		{"PARAM_ERROR_reason_151", SeedStockWechatPayMode, deactivateBody("DEACT_E05", strings.Repeat("因", 151)), 400, "PARAM_ERROR"},
		{"PARAM_ERROR_reason_missing", SeedStockWechatPayMode, obj{"out_request_no": "DEACT_E06"}, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_reason_empty", SeedStockWechatPayMode, deactivateBody("DEACT_E07", ""), 400, "PARAM_ERROR"},
		{"PARAM_ERROR_out_request_no_missing", SeedStockWechatPayMode, obj{"deactivate_reason": "原因"}, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_out_request_no_chars", SeedStockWechatPayMode, deactivateBody("DEACT E08", "原因"), 400, "PARAM_ERROR"},
		{"NOT_FOUND_stock", "1000000001999", deactivateBody("DEACT_E09", "原因"), 404, "NOT_FOUND"},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			e := e.in(t)
			before := e.stock(KindProductCoupon, SeedStockWechatPayMode).State
			e.fails(e.call(http.MethodPost, deactivatePath(SeedProductCoupon, tc.stock), tc.body, asBrand), tc.status, tc.code)
			if after := e.stock(KindProductCoupon, SeedStockWechatPayMode).State; after != before {
				t.Errorf("state %s → %s", before, after)
			}
		})
	}
	t.Run("NOT_FOUND_product_coupon", func(t *testing.T) {
		e := e.in(t)
		e.fails(e.call(http.MethodPost, deactivatePath("1", SeedStockSending), deactivateBody("DEACT_E10", "原因"), asBrand), 404, "NOT_FOUND")
	})
	t.Run("SIGN_ERROR_service_provider", func(t *testing.T) {
		e := e.in(t)
		e.fails(e.call(http.MethodPost, deactivatePath(SeedProductCoupon, SeedStockWechatPayMode), deactivateBody("DEACT_E11", "原因"), asSP), 401, "SIGN_ERROR")
	})
}

func TestGetProductCouponStock(t *testing.T) {
	e := newEnv(t, nil)
	var up, wx pcStockEntity
	e.ok(e.call(http.MethodGet, pcStockPath(SeedProductCoupon, SeedStockSending), nil, asBrand), &up)
	if up.State != StateSending || up.CouponCodeCountInfo == nil || up.CouponCodeCountInfo.TotalCount != 8 || up.CouponCodeCountInfo.AvailableCount != 2 {
		t.Errorf("UPLOAD stock %+v", up)
	}
	if up.DeactivateTime != "" {
		t.Errorf("deactivate_time on a SENDING stock")
	}
	e.ok(e.call(http.MethodGet, pcStockPath(SeedProductCoupon, SeedStockWechatPayMode), nil, asBrand), &wx)
	if wx.CouponCodeCountInfo != nil {
		t.Errorf("coupon_code_count_info on a WECHATPAY stock")
	}
	for id, want := range map[string]string{
		SeedStockPaused: StatePaused, SeedStockAuditing: StateAuditing, SeedStockStopped: StateStopped, SeedStockDeactivated: StateDeactivated,
	} {
		var got pcStockEntity
		e.ok(e.call(http.MethodGet, pcStockPath(SeedProductCoupon, id), nil, asBrand), &got)
		if got.State != want {
			t.Errorf("%s: state %s, want %s", id, got.State, want)
		}
	}
	t.Run("NOT_FOUND", func(t *testing.T) {
		e := e.in(t)
		e.fails(e.call(http.MethodGet, pcStockPath(SeedProductCoupon, "42"), nil, asBrand), 404, "NOT_FOUND")
	})
}
