package sandbox

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func preSendBody(bundle, no string) obj {
	return obj{"product_coupon_id": SeedBundleCoupon, "stock_bundle_id": bundle, "appid": DemoAppID, "send_request_no": no, "attach": "活动A"}
}

type detailReply struct {
	Code   string `json:"code"`
	Detail struct {
		Reason  string `json:"reason"`
		StockID string `json:"stock_id"`
	} `json:"detail"`
}

func TestPreSend(t *testing.T) {
	e := newEnv(t, nil)
	var tok preSendReply
	e.ok(e.call(http.MethodPost, preSendPath(DemoOpenID), preSendBody(SeedBundleMemberDay, "SEND_0001"), asBrand), &tok)
	if tok.Token == "" || len(tok.Token) > 1024 {
		t.Fatalf("token %q", tok.Token)
	}
	info, ok := e.sb.Token(tok.Token)
	if !ok || !info.Valid || info.OpenID != DemoOpenID || info.StockBundleID != SeedBundleMemberDay || info.SendRequestNo != "SEND_0001" ||
		!info.ExpiresAt.Equal(t0.Add(5*time.Minute)) {
		t.Errorf("token info %+v", info)
	}
	for _, id := range []string{SeedBundleStockSmall, SeedBundleStockLarge} {
		var ent pcStockEntity
		e.ok(e.call(http.MethodGet, pcStockPath(SeedBundleCoupon, id), nil, asBrand), &ent)
		if ent.SentCountInfo.TotalCount != 1 || ent.SentCountInfo.TodayCount != 1 {
			t.Errorf("%s sent %+v", id, ent.SentCountInfo)
		}
	}
	// Another user gets a different token.
	var tok2 preSendReply
	e.ok(e.call(http.MethodPost, preSendPath("oUser2_abcdefg"), preSendBody(SeedBundleMemberDay, "SEND_0002"), asBrand), &tok2)
	if tok2.Token == tok.Token {
		t.Error("two sends got the same token")
	}

	errs := []struct {
		name   string
		openid string
		body   any
		status int
		code   string
		reason string
	}{
		{"INVALID_REQUEST_per_user_limit", DemoOpenID, preSendBody(SeedBundleMemberDay, "SEND_E01"), 400, "INVALID_REQUEST", "MAX_COUNT_PER_USER_REACHED"},
		{"INVALID_REQUEST_state_paused", DemoOpenID, preSendBody(SeedBundlePaused, "SEND_E02"), 400, "INVALID_REQUEST", "STOCK_NOT_SENDING"},
		{"INVALID_REQUEST_openid", "bad*openid", preSendBody(SeedBundleMemberDay, "SEND_E03"), 400, "INVALID_REQUEST", ""},
		{"PARAM_ERROR_appid", "oUser3", set(preSendBody(SeedBundleMemberDay, "SEND_E04"), "appid", "app123"), 400, "PARAM_ERROR", ""},
		{"PARAM_ERROR_appid_missing", "oUser3", set(preSendBody(SeedBundleMemberDay, "SEND_E05"), "appid", nil), 400, "PARAM_ERROR", ""},
		{"PARAM_ERROR_attach_151", "oUser3", set(preSendBody(SeedBundleMemberDay, "SEND_E06"), "attach", strings.Repeat("附", 151)), 400, "PARAM_ERROR", ""},
		{"PARAM_ERROR_send_request_no_short", "oUser3", preSendBody(SeedBundleMemberDay, "S_E07"), 400, "PARAM_ERROR", ""},
		{"PARAM_ERROR_send_request_no_missing", "oUser3", set(preSendBody(SeedBundleMemberDay, "x"), "send_request_no", nil), 400, "PARAM_ERROR", ""},
		{"PARAM_ERROR_stock_bundle_id_missing", "oUser3", set(preSendBody(SeedBundleMemberDay, "SEND_E08"), "stock_bundle_id", nil), 400, "PARAM_ERROR", ""},
		{"PARAM_ERROR_product_coupon_id_missing", "oUser3", set(preSendBody(SeedBundleMemberDay, "SEND_E09"), "product_coupon_id", nil), 400, "PARAM_ERROR", ""},
		{"NOT_FOUND_bundle", "oUser3", preSendBody("1000000002999", "SEND_E10"), 404, "NOT_FOUND", ""},
		{"NOT_FOUND_bundle_of_other_coupon", "oUser3", set(preSendBody(SeedBundleMemberDay, "SEND_E11"), "product_coupon_id", SeedProductCoupon), 404, "NOT_FOUND", ""},
		{"NOT_FOUND_product_coupon", "oUser3", set(preSendBody(SeedBundleMemberDay, "SEND_E12"), "product_coupon_id", "1"), 404, "NOT_FOUND", ""},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			e := e.in(t)
			r := e.call(http.MethodPost, preSendPath(tc.openid), tc.body, asBrand)
			e.fails(r, tc.status, tc.code)
			if tc.reason != "" {
				var d detailReply
				e.ok(&resp{status: 200, body: r.body}, &d)
				if d.Detail.Reason != tc.reason {
					t.Errorf("reason %q, want %q", d.Detail.Reason, tc.reason)
				}
			}
		})
	}
	t.Run("OK_attach_150", func(t *testing.T) {
		e := e.in(t)
		e.ok(e.call(http.MethodPost, preSendPath("oUser4"), set(preSendBody(SeedBundleMemberDay, "SEND_0003"), "attach", strings.Repeat("附", 150)), asBrand), nil)
	})
	t.Run("INVALID_REQUEST_total_budget", func(t *testing.T) {
		e := e.in(t)
		for _, u := range []string{"oLimitA", "oLimitB", "oLimitC"} {
			e.ok(e.call(http.MethodPost, preSendPath(u), preSendBody(SeedBundleLimited, "SEND_LIM_"+u), asBrand), nil)
		}
		r := e.call(http.MethodPost, preSendPath("oLimitD"), preSendBody(SeedBundleLimited, "SEND_LIM_oLimitD"), asBrand)
		e.fails(r, 400, "INVALID_REQUEST")
		if !strings.Contains(r.message(), "发放总上限") {
			t.Errorf("message %q", r.message())
		}
	})
	t.Run("INVALID_REQUEST_daily_budget", func(t *testing.T) {
		e := e.in(t)
		e.sb.mu.Lock()
		st := e.sb.st.pcStocks[pcStockKey(SeedBundleCoupon, SeedBundleStockLimited)]
		st.StockSendRule = pcSendRule{MaxCount: 100, MaxCountPerDay: 3, MaxCountPerUser: 1}
		e.sb.mu.Unlock()
		r := e.call(http.MethodPost, preSendPath("oDailyA"), preSendBody(SeedBundleLimited, "SEND_DAY_A"), asBrand)
		e.fails(r, 400, "INVALID_REQUEST")
		if !strings.Contains(r.message(), "今日发放上限") {
			t.Errorf("message %q", r.message())
		}
		// A new day restores the daily budget, not the total.
		e.clock.Advance(24 * time.Hour)
		defer e.clock.Advance(-24 * time.Hour)
		e.ok(e.call(http.MethodPost, preSendPath("oDailyA"), preSendBody(SeedBundleLimited, "SEND_DAY_B"), asBrand), nil)
		var ent pcStockEntity
		e.ok(e.call(http.MethodGet, pcStockPath(SeedBundleCoupon, SeedBundleStockLimited), nil, asBrand), &ent)
		if ent.SentCountInfo.TotalCount != 4 || ent.SentCountInfo.TodayCount != 1 {
			t.Errorf("sent %+v", ent.SentCountInfo)
		}
	})
	t.Run("INVALID_REQUEST_no_available_code", func(t *testing.T) {
		e := e.in(t)
		// A bundle around the UPLOAD stock, which has 2 unused codes.
		e.sb.mu.Lock()
		e.sb.st.addBundle(&stockBundle{ID: "1000000001100", ProductCouponID: SeedProductCoupon, Name: "测试", StockIDs: []string{SeedStockSending}})
		e.sb.mu.Unlock()
		body := func(no string) obj {
			return obj{"product_coupon_id": SeedProductCoupon, "stock_bundle_id": "1000000001100", "appid": DemoAppID, "send_request_no": no}
		}
		e.ok(e.call(http.MethodPost, preSendPath("oCodeA"), body("SEND_CODE_A"), asBrand), nil)
		e.ok(e.call(http.MethodPost, preSendPath("oCodeB"), body("SEND_CODE_B"), asBrand), nil)
		e.fails(e.call(http.MethodPost, preSendPath("oCodeC"), body("SEND_CODE_C"), asBrand), 400, "INVALID_REQUEST")
		if s := e.stock(KindProductCoupon, SeedStockSending); s.AvailableCount != 0 || s.TotalCount != 8 {
			t.Errorf("counts %d/%d", s.TotalCount, s.AvailableCount)
		}
	})
}

func TestPreSendTokenExpiry(t *testing.T) {
	e := newEnv(t, nil)
	body := preSendBody(SeedBundleMemberDay, "SEND_EXPIRY_1")
	var first, again, later preSendReply
	e.ok(e.call(http.MethodPost, preSendPath(DemoOpenID), body, asBrand), &first)

	e.clock.Advance(4*time.Minute + 59*time.Second)
	if info, _ := e.sb.Token(first.Token); !info.Valid {
		t.Error("token expired before 5 minutes")
	}
	e.ok(e.call(http.MethodPost, preSendPath(DemoOpenID), body, asBrand), &again)
	if again.Token != first.Token {
		t.Error("a retry within 5 minutes got a different token")
	}

	e.clock.Advance(time.Second)
	if info, _ := e.sb.Token(first.Token); info.Valid {
		t.Error("token still valid after 5 minutes")
	}
	var viaHTTP TokenInfo
	e.get("/_sandbox/tokens/"+first.Token, &viaHTTP)
	if viaHTTP.Valid {
		t.Error("/_sandbox/tokens says valid after 5 minutes")
	}
	// A retry after expiry gets a fresh token for the same send.
	e.ok(e.call(http.MethodPost, preSendPath(DemoOpenID), body, asBrand), &later)
	if later.Token == first.Token {
		t.Error("a retry after expiry got the expired token")
	}
	if info, _ := e.sb.Token(later.Token); !info.Valid {
		t.Error("fresh token not valid")
	}
	var ent pcStockEntity
	e.ok(e.call(http.MethodGet, pcStockPath(SeedBundleCoupon, SeedBundleStockLarge), nil, asBrand), &ent)
	if ent.SentCountInfo.TotalCount != 1 {
		t.Errorf("retries counted as sends: %d", ent.SentCountInfo.TotalCount)
	}
	if r, _ := e.request(EndpointPreSendCouponBundle, "SEND_EXPIRY_1"); r.Count != 3 || !r.Identical {
		t.Errorf("request log %+v", r)
	}
}
