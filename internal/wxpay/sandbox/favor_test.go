package sandbox

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// validFavor is a document 003 body that the sandbox accepts at t0.
func validFavor(no string) obj {
	return obj{
		"stock_name":           "夏日立减5元",
		"comment":              "门店夏季活动",
		"belong_merchant":      MerchantID,
		"available_begin_time": "2025-06-03T00:00:00+08:00",
		"available_end_time":   "2025-08-31T23:59:59+08:00",
		"stock_use_rule": obj{
			"max_coupons":          1000,
			"max_amount":           500000,
			"max_amount_by_day":    50000,
			"max_coupons_per_user": 2,
			"natural_person_limit": false,
			"prevent_api_abuse":    true,
		},
		"pattern_info": obj{
			"description":        "满30元可用,每人限领2张",
			"merchant_name":      "臻选咖啡",
			"background_color":   "COLOR010",
			"jump_target":        "MINI_PROGRAM",
			"mini_program_appid": DemoAppID,
			"mini_program_path":  "/pages/index/index",
		},
		"coupon_use_rule": obj{
			"fixed_normal_coupon": obj{"coupon_amount": 500, "transaction_minimum": 3000},
			"trade_type":          []string{"MICROAPP", "APPPAY"},
			"available_merchants": []string{MerchantID},
			"coupon_available_time": obj{
				"fix_available_time":           obj{"available_week_day": []int{1, 2, 3}, "begin_time": 0, "end_time": 3600},
				"available_time_after_receive": 60,
			},
		},
		"no_cash":        false,
		"stock_type":     "NORMAL",
		"out_request_no": no,
	}
}

// set changes a field of a body by a dotted path; a nil value deletes it.
func set(o obj, path string, v any) obj {
	parts := strings.Split(path, ".")
	cur := o
	for _, p := range parts[:len(parts)-1] {
		cur = cur[p].(obj)
	}
	if v == nil {
		delete(cur, parts[len(parts)-1])
	} else {
		cur[parts[len(parts)-1]] = v
	}
	return o
}

func TestCreateFavorStock(t *testing.T) {
	// More cases than the documented 60 creations a minute allow on a clock
	// that stands still.
	e := newEnv(t, func(o *Options) { o.RateLimit = 1000 })
	var created struct {
		StockID    string `json:"stock_id"`
		CreateTime string `json:"create_time"`
	}
	e.ok(e.call(http.MethodPost, favorCreatePath, validFavor("1230000109_20250602_0001"), asMerchant), &created)
	if !regexp.MustCompile(`^[0-9]+$`).MatchString(created.StockID) {
		t.Errorf("stock_id %q is not numeric", created.StockID)
	}
	if created.CreateTime != "2025-06-02T10:00:00+08:00" {
		t.Errorf("create_time %q", created.CreateTime)
	}
	var got favorStockEntity
	e.ok(e.call(http.MethodGet, favorStockPath(created.StockID, MerchantID), nil, asMerchant), &got)
	if got.Status != FavorUnactivated || got.StockName != "夏日立减5元" || got.StockUseRule.FixedNormalCoupon.CouponAmount != 500 {
		t.Errorf("read back %+v", got)
	}
	if s := e.stock(KindFavor, created.StockID); s.State != FavorUnactivated || s.Name != "夏日立减5元" {
		t.Errorf("/_sandbox/stocks: %+v", s)
	}

	cases := []struct {
		name   string
		change func(obj) obj
		status int
		code   string
	}{
		{"OK_nine_han_and_letters", func(o obj) obj { return set(o, "stock_name", "一二三四五六七八九AB") }, 200, ""},
		{"OK_twenty_letters", func(o obj) obj { return set(o, "stock_name", strings.Repeat("a", 20)) }, 200, ""},
		{"OK_without_optional_objects", func(o obj) obj {
			set(o, "pattern_info", nil)
			set(o, "comment", nil)
			return set(o, "coupon_use_rule.coupon_available_time", nil)
		}, 200, ""},
		{"OK_begin_now", func(o obj) obj {
			set(o, "available_begin_time", "2025-06-02T10:00:00+08:00")
			return set(o, "available_end_time", "2025-08-31T10:00:00+08:00") // exactly 90 days
		}, 200, ""},
		{"PARAM_ERROR_stock_name_missing", func(o obj) obj { return set(o, "stock_name", nil) }, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_stock_name_ten_han", func(o obj) obj { return set(o, "stock_name", "一二三四五六七八九十") }, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_stock_name_21_letters", func(o obj) obj { return set(o, "stock_name", strings.Repeat("a", 21)) }, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_stock_name_underscore", func(o obj) obj { return set(o, "stock_name", "立减_5元") }, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_stock_name_comma", func(o obj) obj { return set(o, "stock_name", "立减,5元") }, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_stock_name_semicolon", func(o obj) obj { return set(o, "stock_name", "立减;5元") }, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_stock_name_bar", func(o obj) obj { return set(o, "stock_name", "立减|5元") }, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_comment_61", func(o obj) obj { return set(o, "comment", strings.Repeat("备", 61)) }, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_belong_merchant_missing", func(o obj) obj { return set(o, "belong_merchant", nil) }, 400, "PARAM_ERROR"},
		{"INVALID_REQUEST_belong_merchant_other", func(o obj) obj { return set(o, "belong_merchant", "1900000101") }, 400, "INVALID_REQUEST"},
		{"PARAM_ERROR_begin_missing", func(o obj) obj { return set(o, "available_begin_time", nil) }, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_begin_format", func(o obj) obj { return set(o, "available_begin_time", "2025-06-03 00:00:00") }, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_end_format", func(o obj) obj { return set(o, "available_end_time", "2025/08/31") }, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_begin_in_past", func(o obj) obj { return set(o, "available_begin_time", "2025-06-02T09:59:59+08:00") }, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_begin_after_365_days", func(o obj) obj {
			set(o, "available_begin_time", "2026-06-03T10:00:00+08:00")
			return set(o, "available_end_time", "2026-06-10T10:00:00+08:00")
		}, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_range_over_90_days", func(o obj) obj { return set(o, "available_end_time", "2025-09-01T00:00:01+08:00") }, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_end_before_begin", func(o obj) obj { return set(o, "available_end_time", "2025-06-02T23:00:00+08:00") }, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_stock_use_rule_missing", func(o obj) obj { return set(o, "stock_use_rule", nil) }, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_max_coupons_missing", func(o obj) obj { return set(o, "stock_use_rule.max_coupons", nil) }, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_max_coupons_zero", func(o obj) obj { return set(o, "stock_use_rule.max_coupons", 0) }, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_max_coupons_string", func(o obj) obj { return set(o, "stock_use_rule.max_coupons", "100") }, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_max_amount_missing", func(o obj) obj { return set(o, "stock_use_rule.max_amount", nil) }, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_max_coupons_per_user_missing", func(o obj) obj { return set(o, "stock_use_rule.max_coupons_per_user", nil) }, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_natural_person_limit_missing", func(o obj) obj { return set(o, "stock_use_rule.natural_person_limit", nil) }, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_prevent_api_abuse_missing", func(o obj) obj { return set(o, "stock_use_rule.prevent_api_abuse", nil) }, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_description_missing", func(o obj) obj { return set(o, "pattern_info.description", nil) }, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_description_1001", func(o obj) obj { return set(o, "pattern_info.description", strings.Repeat("说", 1001)) }, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_merchant_name_13", func(o obj) obj { return set(o, "pattern_info.merchant_name", strings.Repeat("品", 13)) }, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_merchant_logo_129", func(o obj) obj { return set(o, "pattern_info.merchant_logo", strings.Repeat("l", 129)) }, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_background_color", func(o obj) obj { return set(o, "pattern_info.background_color", "COLOR999") }, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_background_color_empty", func(o obj) obj { return set(o, "pattern_info.background_color", "") }, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_jump_target", func(o obj) obj { return set(o, "pattern_info.jump_target", "H5") }, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_mini_program_appid_missing", func(o obj) obj { return set(o, "pattern_info.mini_program_appid", nil) }, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_mini_program_path_missing", func(o obj) obj { return set(o, "pattern_info.mini_program_path", nil) }, 400, "PARAM_ERROR"},
		{"OK_mini_program_fields_not_needed", func(o obj) obj {
			set(o, "pattern_info.jump_target", "PAYMENT_CODE")
			return set(o, "pattern_info.mini_program_path", nil)
		}, 200, ""},
		{"PARAM_ERROR_coupon_use_rule_missing", func(o obj) obj { return set(o, "coupon_use_rule", nil) }, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_fixed_normal_coupon_missing", func(o obj) obj { return set(o, "coupon_use_rule.fixed_normal_coupon", nil) }, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_coupon_amount_zero", func(o obj) obj { return set(o, "coupon_use_rule.fixed_normal_coupon.coupon_amount", 0) }, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_trade_type", func(o obj) obj { return set(o, "coupon_use_rule.trade_type", []string{"JSAPI"}) }, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_goods_tag_129", func(o obj) obj { return set(o, "coupon_use_rule.goods_tag", []string{strings.Repeat("g", 129)}) }, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_available_merchants_missing", func(o obj) obj { return set(o, "coupon_use_rule.available_merchants", nil) }, 400, "PARAM_ERROR"},
		{"INVALID_REQUEST_available_merchants_illegal", func(o obj) obj { return set(o, "coupon_use_rule.available_merchants", []string{"mch-1"}) }, 400, "INVALID_REQUEST"},
		{"PARAM_ERROR_week_day", func(o obj) obj {
			return set(o, "coupon_use_rule.coupon_available_time.fix_available_time.available_week_day", []int{7})
		}, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_no_cash_missing", func(o obj) obj { return set(o, "no_cash", nil) }, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_stock_type_missing", func(o obj) obj { return set(o, "stock_type", nil) }, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_stock_type_discount", func(o obj) obj { return set(o, "stock_type", "DISCOUNT") }, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_out_request_no_missing", func(o obj) obj { return set(o, "out_request_no", nil) }, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_out_request_no_chars", func(o obj) obj { return set(o, "out_request_no", "1230000109#2025") }, 400, "PARAM_ERROR"},
		{"PARAM_ERROR_out_request_no_129", func(o obj) obj { return set(o, "out_request_no", strings.Repeat("9", 129)) }, 400, "PARAM_ERROR"},
		{"OK_out_request_no_symbols", func(o obj) obj { return set(o, "out_request_no", "1230000109|2025*06-02_77") }, 200, ""},
		{"PARAM_ERROR_ext_info_129", func(o obj) obj { return set(o, "ext_info", strings.Repeat("x", 129)) }, 400, "PARAM_ERROR"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := e.in(t)
			body := tc.change(validFavor(fmt.Sprintf("1230000109_CASE_%03d", i)))
			r := e.call(http.MethodPost, favorCreatePath, body, asMerchant)
			if tc.status == 200 {
				e.ok(r, nil)
				return
			}
			e.fails(r, tc.status, tc.code)
		})
	}
	t.Run("PARAM_ERROR_not_json", func(t *testing.T) {
		e := e.in(t)
		e.fails(e.call(http.MethodPost, favorCreatePath, "{", asMerchant), 400, "PARAM_ERROR")
	})
	t.Run("PARAM_ERROR_trailing_data", func(t *testing.T) {
		e := e.in(t)
		body := append(bodyBytes(t, validFavor("1230000109_TRAIL_1")), "}"...)
		e.fails(e.call(http.MethodPost, favorCreatePath, body, asMerchant), 400, "PARAM_ERROR")
	})
	t.Run("PARAM_ERROR_empty_body", func(t *testing.T) {
		e := e.in(t)
		e.fails(e.call(http.MethodPost, favorCreatePath, "", asMerchant), 400, "PARAM_ERROR")
	})
	t.Run("SIGN_ERROR_brand", func(t *testing.T) {
		e := e.in(t)
		e.fails(e.call(http.MethodPost, favorCreatePath, validFavor("1230000109_BRAND_01"), asBrand), 401, "SIGN_ERROR")
	})
}

func TestGetFavorStock(t *testing.T) {
	e := newEnv(t, nil)
	var got favorStockEntity
	e.ok(e.call(http.MethodGet, favorStockPath(SeedFavorStock, MerchantID), nil, asMerchant), &got)
	if got.Status != FavorRunning || got.StockCreatorMchid != MerchantID || got.DistributedCoupons != 1234 || got.StockType != "NORMAL" {
		t.Errorf("%+v", got)
	}
	t.Run("RESOURCE_NOT_EXISTS", func(t *testing.T) {
		e := e.in(t)
		e.fails(e.call(http.MethodGet, favorStockPath("999", MerchantID), nil, asMerchant), 404, "RESOURCE_NOT_EXISTS")
	})
	t.Run("PARAM_ERROR_creator_missing", func(t *testing.T) {
		e := e.in(t)
		e.fails(e.call(http.MethodGet, "/v3/marketing/favor/stocks/"+SeedFavorStock, nil, asMerchant), 400, "PARAM_ERROR")
	})
	t.Run("NO_AUTH_other_creator", func(t *testing.T) {
		e := e.in(t)
		e.fails(e.call(http.MethodGet, favorStockPath(SeedFavorStock, "1900000101"), nil, asMerchant), 403, "NO_AUTH")
	})
	t.Run("stoped_after_end", func(t *testing.T) {
		e := e.in(t)
		e.clock.Advance(90 * 24 * time.Hour)
		defer e.clock.Advance(-90 * 24 * time.Hour)
		var got favorStockEntity
		e.ok(e.call(http.MethodGet, favorStockPath(SeedFavorStock, MerchantID), nil, asMerchant), &got)
		if got.Status != FavorStoped {
			t.Errorf("status %s after the end time", got.Status)
		}
	})
}

// Rules WeChat Pay enforces on document 003 that the document does not
// print: budget = face value × count, at most 60 coupons per user. A request
// that bypasses the console's form is answered as WeChat Pay answers it.
func TestCreateFavorStockBudgetRules(t *testing.T) {
	e := newEnv(t, nil)
	cases := []struct {
		name    string
		mod     func(obj) obj
		message string // "" for 200
	}{
		{"budget_is_face_times_count", func(o obj) obj { return o }, ""},
		{"budget_a_fen_short", func(o obj) obj { return set(o, "stock_use_rule.max_amount", 499999) }, "批次预算等于批次面额乘以发券数"},
		{"count_without_budget", func(o obj) obj { return set(o, "stock_use_rule.max_coupons", 999) }, "批次预算等于批次面额乘以发券数"},
		{"face_without_budget", func(o obj) obj { return set(o, "coupon_use_rule.fixed_normal_coupon.coupon_amount", 501) }, "批次预算等于批次面额乘以发券数"},
		{"sixty_per_user", func(o obj) obj { return set(o, "stock_use_rule.max_coupons_per_user", 60) }, ""},
		{"sixty_one_per_user", func(o obj) obj { return set(o, "stock_use_rule.max_coupons_per_user", 61) }, "单个用户可领个数不能超过60"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := e.in(t)
			r := e.call(http.MethodPost, favorCreatePath, tc.mod(validFavor(fmt.Sprintf("budget_rule_%02d", i))), asMerchant)
			if tc.message == "" {
				e.ok(r, nil)
				return
			}
			e.fails(r, http.StatusBadRequest, "PARAM_ERROR")
			if !strings.Contains(string(r.body), tc.message) {
				t.Errorf("message: %s", r.body)
			}
		})
	}
}
