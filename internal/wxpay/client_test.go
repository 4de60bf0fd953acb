package wxpay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"voucherconsole/internal/wxpay/signing"
)

const stockEntityJSON = `{"product_coupon_id":"200000001","stock_id":"123456789","remark":"满减券","coupon_code_mode":"UPLOAD",
"coupon_code_count_info":{"total_count":10000,"available_count":999},
"stock_send_rule":{"max_count":10000000,"max_count_per_day":10000,"max_count_per_user":1},
"single_usage_rule":{"coupon_available_period":{"available_begin_time":"2025-01-01T00:00:00+08:00","available_end_time":"2025-10-01T00:00:00+08:00","available_days":10,"wait_days_after_receive":1,"weekly_available_period":{"day_list":["MONDAY"],"day_period_list":[{"begin_time":60,"end_time":86399}]},"irregular_available_period_list":[{"begin_time":"2025-01-01T00:00:00+08:00","end_time":"2025-10-01T00:00:00+08:00"}]},"normal_coupon":{"threshold":10000,"discount_amount":100}},
"usage_rule_display_info":{"coupon_usage_method_list":["MINI_PROGRAM"],"mini_program_appid":"wx1234567890","mini_program_path":"/pages/index/product","usage_description":"全场可用","coupon_available_store_info":{"description":"门店","mini_program_appid":"wx1234567890","mini_program_path":"/pages/index/store-list"}},
"coupon_display_info":{"code_display_mode":"QRCODE","background_color":"Color010","entrance_finder":{"finder_id":"gh_12345678","finder_video_id":"UDF","finder_video_cover_image_url":"https://wxpaylogo.qpic.cn/x"}},
"notify_config":{"notify_appid":"wx4fd12345678"},"store_scope":"SPECIFIC","sent_count_info":{"total_count":100,"today_count":10},
"state":"DEACTIVATED","deactivate_request_no":"deact_20250101_0001","deactivate_time":"2025-01-01T00:00+08:00","deactivate_reason":"批次信息有误,重新创建"}`

// TestEndpoints checks, for every method, the request on the wire (method,
// request-target, scheme and identity, headers, body) and the decoded reply.
func TestEndpoints(t *testing.T) {
	type result struct {
		meta  Meta
		value any
	}
	tests := []struct {
		name   string
		call   func(ctx context.Context, c *Client) (result, error)
		reply  string
		method string
		uri    string
		scheme signing.Scheme
		id     string
		body   string // exact JSON expected; "" for none
		check  func(t *testing.T, v any)
	}{
		{
			name: "CreateFavorStock",
			call: func(ctx context.Context, c *Client) (result, error) {
				r, err := c.CreateFavorStock(ctx, CreateFavorStockRequest{
					StockName: "春季满减", AvailableBeginTime: "2025-05-20T13:29:35+08:00", AvailableEndTime: "2025-06-20T13:29:35+08:00",
					StockUseRule:  FavorStockUseRule{MaxCoupons: 100, MaxAmount: 5000, MaxCouponsPerUser: 3},
					CouponUseRule: FavorCouponUseRule{FixedNormalCoupon: &FixedNormalCoupon{CouponAmount: 50, TransactionMinimum: 100}, AvailableMerchants: []string{testMchID}},
					StockType:     FavorStockTypeNormal, OutRequestNo: "1900000001_20250520_0001",
				})
				if err != nil {
					return result{}, err
				}
				return result{r.Meta, r}, nil
			},
			reply:  `{"stock_id":"98065001","create_time":"2015-05-20T13:29:35.120+08:00"}`,
			method: "POST", uri: "/v3/marketing/favor/coupon-stocks", scheme: signing.SchemeMerchant, id: testMchID,
			body: `{"stock_name":"春季满减","belong_merchant":"1900000001","available_begin_time":"2025-05-20T13:29:35+08:00","available_end_time":"2025-06-20T13:29:35+08:00",` +
				`"stock_use_rule":{"max_coupons":100,"max_amount":5000,"max_coupons_per_user":3,"natural_person_limit":false,"prevent_api_abuse":false},` +
				`"coupon_use_rule":{"fixed_normal_coupon":{"coupon_amount":50,"transaction_minimum":100},"available_merchants":["1900000001"]},` +
				`"no_cash":false,"stock_type":"NORMAL","out_request_no":"1900000001_20250520_0001"}`,
			check: func(t *testing.T, v any) {
				if r := v.(*CreateFavorStockReply); r.StockID != "98065001" || r.CreateTime == "" {
					t.Errorf("reply = %+v", r)
				}
			},
		},
		{
			name: "UploadBusifavorCodes",
			call: func(ctx context.Context, c *Client) (result, error) {
				r, err := c.UploadBusifavorCodes(ctx, "98065001", UploadBusifavorCodesRequest{CouponCodeList: []string{"ABC9588200", "ABC9588201"}, UploadRequestNo: "100002322019090134234sfdf"})
				if err != nil {
					return result{}, err
				}
				return result{r.Meta, r}, nil
			},
			reply: `{"stock_id":"98065001","total_count":2,"success_count":1,"success_codes":["ABC9588200"],"success_time":"2015-05-20T13:29:35.120+08:00",` +
				`"fail_count":1,"fail_codes":[{"coupon_code":"ABC9588201","code":"LENGTH_LIMIT","message":"too long"}],"exist_codes":[],"duplicate_codes":[]}`,
			method: "POST", uri: "/v3/marketing/busifavor/stocks/98065001/couponcodes", scheme: signing.SchemeMerchant, id: testMchID,
			body: `{"coupon_code_list":["ABC9588200","ABC9588201"],"upload_request_no":"100002322019090134234sfdf"}`,
			check: func(t *testing.T, v any) {
				r := v.(*UploadBusifavorCodesReply)
				if r.SuccessCount != 1 || r.FailCount != 1 || len(r.FailCodes) != 1 || r.FailCodes[0].Code != "LENGTH_LIMIT" {
					t.Errorf("reply = %+v", r)
				}
			},
		},
		{
			name: "UploadProductCouponCodes fills brand_id",
			call: func(ctx context.Context, c *Client) (result, error) {
				r, err := c.UploadProductCouponCodes(ctx, "200000001", "123456789", UploadProductCouponCodesRequest{OutRequestNo: "34657_20250101_123456", CodeList: []string{"vCode_1", "vCode_1"}})
				if err != nil {
					return result{}, err
				}
				return result{r.Meta, r}, nil
			},
			reply:  `{"total_count":1,"success_code_list":["vCode_1"],"duplicate_code_list":["vCode_1"]}`,
			method: "POST", uri: "/v3/marketing/partner/product-coupon/product-coupons/200000001/stocks/123456789/upload-coupon-codes",
			scheme: signing.SchemeMerchant, id: testSPMchID,
			body: `{"out_request_no":"34657_20250101_123456","code_list":["vCode_1","vCode_1"],"brand_id":"120344"}`,
			check: func(t *testing.T, v any) {
				if r := v.(*UploadProductCouponCodesReply); r.TotalCount != 1 || len(r.DuplicateCodeList) != 1 {
					t.Errorf("reply = %+v", r)
				}
			},
		},
		{
			name: "DeactivateProductCouponStock",
			call: func(ctx context.Context, c *Client) (result, error) {
				r, err := c.DeactivateProductCouponStock(ctx, "200000001", "123456789", DeactivateProductCouponStockRequest{OutRequestNo: "deact_20250101_0001", DeactivateReason: "批次信息有误,重新创建"})
				if err != nil {
					return result{}, err
				}
				return result{r.Meta, r}, nil
			},
			reply:  stockEntityJSON,
			method: "POST", uri: "/brand/marketing/product-coupon/product-coupons/200000001/stocks/123456789/deactivate",
			scheme: signing.SchemeBrand, id: testBrandID,
			body: `{"out_request_no":"deact_20250101_0001","deactivate_reason":"批次信息有误,重新创建"}`,
			check: func(t *testing.T, v any) {
				s := v.(*ProductCouponStock)
				if s.State != StockDeactivated || s.CouponCodeMode != CouponCodeModeUpload || s.CouponCodeCountInfo == nil ||
					s.CouponCodeCountInfo.AvailableCount != 999 || s.SentCountInfo.TodayCount != 10 || s.DeactivateReason == "" ||
					s.DeactivateTime != "2025-01-01T00:00+08:00" || s.SingleUsageRule == nil || s.SingleUsageRule.NormalCoupon.DiscountAmount != 100 ||
					*s.SingleUsageRule.CouponAvailablePeriod.AvailableDays != 10 || s.CouponDisplayInfo.EntranceFinder.FinderID != "gh_12345678" {
					t.Errorf("stock = %+v", s)
				}
				if !json.Valid(s.Raw) {
					t.Error("Raw is not the reply JSON")
				}
			},
		},
		{
			name: "PreSendCouponBundle",
			call: func(ctx context.Context, c *Client) (result, error) {
				r, err := c.PreSendCouponBundle(ctx, "oh-394z-6CGkNoJrsDLTTUKiAnp4", PreSendCouponBundleRequest{ProductCouponID: "200000001", StockBundleID: "100232301", AppID: "wx233544546545989", SendRequestNo: "34657_20250101_123456"})
				if err != nil {
					return result{}, err
				}
				return result{r.Meta, r}, nil
			},
			reply:  `{"token":"ABBpZjCfAAAB"}`,
			method: "POST", uri: "/brand/marketing/product-coupon/users/oh-394z-6CGkNoJrsDLTTUKiAnp4/pre-send-coupon-bundle",
			scheme: signing.SchemeBrand, id: testBrandID,
			body: `{"product_coupon_id":"200000001","stock_bundle_id":"100232301","appid":"wx233544546545989","send_request_no":"34657_20250101_123456"}`,
			check: func(t *testing.T, v any) {
				if r := v.(*PreSendCouponBundleReply); r.Token != "ABBpZjCfAAAB" {
					t.Errorf("reply = %+v", r)
				}
			},
		},
		{
			name: "GetProductCouponStock escapes path parameters",
			call: func(ctx context.Context, c *Client) (result, error) {
				r, err := c.GetProductCouponStock(ctx, "2000 0001/x", "12?3#4")
				if err != nil {
					return result{}, err
				}
				return result{r.Meta, r}, nil
			},
			reply:  stockEntityJSON,
			method: "GET", uri: "/brand/marketing/product-coupon/product-coupons/2000%200001%2Fx/stocks/12%3F3%234",
			scheme: signing.SchemeBrand, id: testBrandID,
			check: func(t *testing.T, v any) {
				if s := v.(*ProductCouponStock); s.StockID != "123456789" {
					t.Errorf("stock = %+v", s)
				}
			},
		},
		{
			name: "GetFavorStock",
			call: func(ctx context.Context, c *Client) (result, error) {
				r, err := c.GetFavorStock(ctx, "98065001")
				if err != nil {
					return result{}, err
				}
				return result{r.Meta, r}, nil
			},
			reply: `{"stock_id":"98065001","stock_creator_mchid":"1900000001","stock_name":"春季满减","status":"running","create_time":"2015-05-20T13:29:35+08:00",` +
				`"description":"d","stock_use_rule":{"max_coupons":100,"max_amount":5000,"max_coupons_per_user":3,"fixed_normal_coupon":{"coupon_amount":50,"transaction_minimum":100}},` +
				`"available_begin_time":"2025-05-20T13:29:35+08:00","available_end_time":"2025-06-20T13:29:35+08:00","distributed_coupons":7,"no_cash":false,"singleitem":false,"stock_type":"NORMAL"}`,
			method: "GET", uri: "/v3/marketing/favor/stocks/98065001?stock_creator_mchid=1900000001", scheme: signing.SchemeMerchant, id: testMchID,
			check: func(t *testing.T, v any) {
				s := v.(*FavorStock)
				if s.Status != FavorStockRunning || s.DistributedCoupons != 7 || s.StockUseRule.FixedNormalCoupon.CouponAmount != 50 {
					t.Errorf("stock = %+v", s)
				}
			},
		},
		{
			name: "GetBusifavorStock",
			call: func(ctx context.Context, c *Client) (result, error) {
				r, err := c.GetBusifavorStock(ctx, "98065001")
				if err != nil {
					return result{}, err
				}
				return result{r.Meta, r}, nil
			},
			reply: `{"stock_id":"98065001","stock_name":"商家券","belong_merchant":"1900000001","stock_type":"NORMAL","stock_state":"RUNNING",` +
				`"coupon_code_mode":"MERCHANT_UPLOAD","coupon_code_count":{"total_count":500,"available_count":480},"stock_send_rule":{"max_coupons":500,"max_coupons_per_user":1},"coupon_use_rule":{"use_method":"OFF_LINE"}}`,
			method: "GET", uri: "/v3/marketing/busifavor/stocks/98065001", scheme: signing.SchemeMerchant, id: testMchID,
			check: func(t *testing.T, v any) {
				s := v.(*BusifavorStock)
				if s.StockState != BusifavorStockRunning || s.CouponCodeMode != BusifavorCodeModeUpload || s.CouponCodeCount.AvailableCount != 480 {
					t.Errorf("stock = %+v", s)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeWX(t, nil, func(i int, r recorded) reply {
				return reply{body: tt.reply, requestID: "08F0B2C6A0061010"}
			})
			c := newTestClient(t, testConfig(srv.srv.URL))
			res, err := tt.call(t.Context(), c)
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			reqs := srv.requests()
			if len(reqs) != 1 {
				t.Fatalf("requests = %d, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Method != tt.method || r.URI != tt.uri {
				t.Errorf("request = %s %s, want %s %s", r.Method, r.URI, tt.method, tt.uri)
			}
			if r.Auth.Scheme != tt.scheme || r.Auth.ID != tt.id {
				t.Errorf("signed as %s %s, want %s %s", r.Auth.Scheme, r.Auth.ID, tt.scheme, tt.id)
			}
			for h, want := range map[string]string{
				"Accept": "application/json", "Content-Type": "application/json",
				"User-Agent": DefaultUserAgent, "Wechatpay-Serial": testPubKeyID,
			} {
				if got := r.Header.Get(h); got != want {
					t.Errorf("header %s = %q, want %q", h, got, want)
				}
			}
			if string(r.Body) != tt.body {
				t.Errorf("body:\n got %s\nwant %s", r.Body, tt.body)
			}
			if res.meta != (Meta{RequestID: "08F0B2C6A0061010", Attempts: 1, Host: srv.srv.Listener.Addr().String()}) {
				t.Errorf("meta = %+v", res.meta)
			}
			tt.check(t, res.value)
		})
	}
}

// TestRetriesResendIdenticalBody: 500, 429 and a connection dropped
// mid-reply are retried; every attempt carries the same body (same request
// number) under a fresh nonce and signature.
func TestRetriesResendIdenticalBody(t *testing.T) {
	srv := newFakeWX(t, nil, func(i int, r recorded) reply {
		switch i {
		case 0:
			return reply{status: 500, body: `{"code":"SYSTEM_ERROR","message":"系统异常"}`, requestID: "r0"}
		case 1:
			return reply{status: 429, body: `{"code":"RATELIMIT_EXCEEDED","message":"slow down"}`, requestID: "r1"}
		case 2:
			return reply{drop: true}
		}
		return reply{body: `{"token":"T"}`, requestID: "r3"}
	})
	sleep := &recordingSleep{}
	cfg := testConfig(srv.srv.URL)
	cfg.Sleep = sleep.Sleep
	cfg.MaxAttempts = 5
	c := newTestClient(t, cfg)
	req := PreSendCouponBundleRequest{ProductCouponID: "200000001", StockBundleID: "100232301", AppID: "wx233544546545989", SendRequestNo: "send_0001"}
	got, err := c.PreSendCouponBundle(t.Context(), "openid-1", req)
	if err != nil {
		t.Fatalf("call: %v", err)
	}
	if got.Token != "T" || got.Meta.Attempts != 4 || got.Meta.RequestID != "r3" {
		t.Errorf("reply = %+v", got)
	}
	reqs := srv.requests()
	if len(reqs) != 4 {
		t.Fatalf("requests = %d, want 4", len(reqs))
	}
	nonces := map[string]bool{}
	for i, r := range reqs {
		if !bytes.Equal(r.Body, reqs[0].Body) {
			t.Errorf("attempt %d body %s differs from %s", i+1, r.Body, reqs[0].Body)
		}
		var b PreSendCouponBundleRequest
		if err := json.Unmarshal(r.Body, &b); err != nil || b.SendRequestNo != "send_0001" {
			t.Errorf("attempt %d request number = %q (%v)", i+1, b.SendRequestNo, err)
		}
		if nonces[r.Auth.Nonce] {
			t.Errorf("attempt %d reuses nonce %s", i+1, r.Auth.Nonce)
		}
		nonces[r.Auth.Nonce] = true
	}
	if ds := sleep.durations(); len(ds) != 3 {
		t.Errorf("backoff sleeps = %v, want 3", ds)
	}
}

// TestNoRetryOn4xx: 4xx other than 429 fail at once, with the APIError
// carrying status, code, message, detail and Request-ID.
func TestNoRetryOn4xx(t *testing.T) {
	tests := []struct {
		status int
		body   string
		code   string
		msg    string
		detail string
	}{
		{400, `{"code":"PARAM_ERROR","message":"参数错误","detail":{"field":"/out_request_no","issue":"too short","location":"body"}}`,
			"PARAM_ERROR", "参数错误", `{"field":"/out_request_no","issue":"too short","location":"body"}`},
		{400, `{"code":"INVALID_REQUEST","message":"只有 coupon_code_mode 为 UPLOAD 的批次可以预上传券Code"}`, "INVALID_REQUEST", "只有 coupon_code_mode 为 UPLOAD 的批次可以预上传券Code", ""},
		{401, `{"code":"SIGN_ERROR","message":"验证不通过"}`, "SIGN_ERROR", "验证不通过", ""},
		{403, `{"code":"NO_AUTH","message":"缺少业务相关权限"}`, "NO_AUTH", "缺少业务相关权限", ""},
		{404, `{"code":"NOT_FOUND","message":"未找到 stock_id 对应的商品券批次"}`, "NOT_FOUND", "未找到 stock_id 对应的商品券批次", ""},
		{502, `<html>bad gateway</html>`, "", "<html>bad gateway</html>", ""}, // only to check non-JSON bodies; retried, see below
	}
	for _, tt := range tests {
		t.Run(tt.code+http.StatusText(tt.status), func(t *testing.T) {
			srv := newFakeWX(t, nil, func(i int, r recorded) reply {
				return reply{status: tt.status, body: tt.body, requestID: "REQ-4711"}
			})
			c := newTestClient(t, testConfig(srv.srv.URL))
			_, err := c.UploadProductCouponCodes(t.Context(), "200000001", "123456789", UploadProductCouponCodesRequest{OutRequestNo: "req_000001", CodeList: []string{"c1"}})
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want *APIError", err)
			}
			wantReqs := 1
			if tt.status >= 500 {
				wantReqs = 4
			}
			if n := len(srv.requests()); n != wantReqs {
				t.Errorf("requests = %d, want %d", n, wantReqs)
			}
			if ae.StatusCode != tt.status || ae.Code != tt.code || ae.Message != tt.msg || string(ae.Detail) != tt.detail ||
				ae.RequestID != "REQ-4711" || ae.Endpoint != string(EndpointUploadProductCouponCodes) {
				t.Errorf("APIError = %+v", ae)
			}
			if tt.code != "" && !IsCode(err, tt.code) {
				t.Errorf("IsCode(%s) = false", tt.code)
			}
			if RequestIDOf(err) != "REQ-4711" {
				t.Errorf("RequestIDOf = %q", RequestIDOf(err))
			}
			if got, want := ae.Retryable(), tt.status >= 500; got != want {
				t.Errorf("Retryable = %v, want %v", got, want)
			}
			if !strings.Contains(err.Error(), "REQ-4711") || strings.Contains(err.Error(), "WECHATPAY") {
				t.Errorf("error text %q", err)
			}
		})
	}
}

func TestGivesUpAfterMaxAttempts(t *testing.T) {
	srv := newFakeWX(t, nil, func(i int, r recorded) reply {
		return reply{status: 503, body: `{"code":"SYSTEM_ERROR","message":"busy"}`, requestID: "last"}
	})
	cfg := testConfig(srv.srv.URL)
	cfg.MaxAttempts = 3
	c := newTestClient(t, cfg)
	_, err := c.GetBusifavorStock(t.Context(), "1")
	if !IsStatus(err, 503) || !IsRetryable(err) || RequestIDOf(err) != "last" {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "after 3 attempts") {
		t.Errorf("err = %v", err)
	}
	if n := len(srv.requests()); n != 3 {
		t.Errorf("requests = %d, want 3", n)
	}
}

// TestReplyVerificationFailureNotRetried: a 2xx that fails verification is
// refused at once, never retried, and keeps its Request-ID.
func TestReplyVerificationFailureNotRetried(t *testing.T) {
	tests := []struct {
		name string
		rp   reply
		want error
	}{
		{"other key", reply{signWith: testKeys().other}, ErrReplySignature},
		{"wrong serial", reply{serial: "PUB_KEY_ID_OTHER"}, ErrReplySerial},
		{"unsigned", reply{unsigned: true}, ErrReplyMissingHeaders},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeWX(t, nil, func(i int, r recorded) reply {
				rp := tt.rp
				rp.body, rp.requestID = `{"token":"T"}`, "VERIFY-1"
				return rp
			})
			c := newTestClient(t, testConfig(srv.srv.URL))
			_, err := c.PreSendCouponBundle(t.Context(), "o1", PreSendCouponBundleRequest{SendRequestNo: "send_0001"})
			var re *ReplyError
			if !errors.Is(err, tt.want) || !errors.As(err, &re) || re.RequestID != "VERIFY-1" {
				t.Fatalf("err = %v", err)
			}
			if IsRetryable(err) {
				t.Error("verification failure reported retryable")
			}
			if n := len(srv.requests()); n != 1 {
				t.Errorf("requests = %d, want 1", n)
			}
		})
	}
}

// TestStaleReplyRefused: the client checks reply timestamps against its own
// (injected) clock.
func TestStaleReplyRefused(t *testing.T) {
	clock := &manualClock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	srv := newFakeWX(t, func() time.Time { return clock.Now().Add(-5 * time.Minute) }, func(i int, r recorded) reply {
		return reply{body: `{"token":"T"}`}
	})
	cfg := testConfig(srv.srv.URL)
	cfg.Now = clock.Now
	c := newTestClient(t, cfg)
	if _, err := c.PreSendCouponBundle(t.Context(), "o1", PreSendCouponBundleRequest{}); !errors.Is(err, ErrReplyStale) {
		t.Fatalf("err = %v, want ErrReplyStale", err)
	}
}

// closedAddr returns a local address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// TestFailoverClosedPrimary: with the primary refusing connections, calls
// succeed through the fallback; the failover is remembered for
// FailoverHold, after which the primary is tried again.
func TestFailoverClosedPrimary(t *testing.T) {
	clock := &manualClock{t: time.Now()}
	fallback := newFakeWX(t, clock.Now, func(i int, r recorded) reply { return reply{body: stockEntityJSON, requestID: "FB"} })
	cfg := testConfig(closedAddr(t))
	cfg.FallbackURL = fallback.srv.URL
	cfg.Now = clock.Now
	cfg.FailoverHold = time.Minute
	c := newTestClient(t, cfg)
	fbHost := fallback.srv.Listener.Addr().String()

	s, err := c.GetProductCouponStock(t.Context(), "200000001", "123456789")
	if err != nil {
		t.Fatalf("first call: %v", err)
	}
	if s.Meta.Host != fbHost || s.Meta.Attempts != 3 || s.Meta.RequestID != "FB" {
		t.Errorf("first call meta = %+v, want 2 refused attempts then the fallback", s.Meta)
	}

	s, err = c.GetProductCouponStock(t.Context(), "200000001", "123456789")
	if err != nil {
		t.Fatalf("second call: %v", err)
	}
	if s.Meta.Host != fbHost || s.Meta.Attempts != 1 {
		t.Errorf("second call meta = %+v, want straight to the fallback", s.Meta)
	}

	clock.Advance(time.Minute + time.Second)
	s, err = c.GetProductCouponStock(t.Context(), "200000001", "123456789")
	if err != nil {
		t.Fatalf("third call: %v", err)
	}
	if s.Meta.Attempts != 3 {
		t.Errorf("third call meta = %+v, want the primary retried after the hold", s.Meta)
	}
	// The fallback saw exactly the request the primary would have: same
	// request-target, signature valid (else it would have answered 401).
	for _, r := range fallback.requests() {
		if r.URI != "/brand/marketing/product-coupon/product-coupons/200000001/stocks/123456789" {
			t.Errorf("fallback got %s", r.URI)
		}
	}
}

func TestFailoverOn5xx(t *testing.T) {
	primary := newFakeWX(t, nil, func(i int, r recorded) reply {
		return reply{status: 502, body: `{"code":"SYSTEM_ERROR","message":"bad gateway"}`}
	})
	fallback := newFakeWX(t, nil, func(i int, r recorded) reply { return reply{body: `{"token":"T"}`} })
	cfg := testConfig(primary.srv.URL)
	cfg.FallbackURL = fallback.srv.URL
	c := newTestClient(t, cfg)
	got, err := c.PreSendCouponBundle(t.Context(), "o1", PreSendCouponBundleRequest{SendRequestNo: "send_0001"})
	if err != nil {
		t.Fatal(err)
	}
	if len(primary.requests()) != 2 || len(fallback.requests()) != 1 || got.Meta.Attempts != 3 {
		t.Errorf("primary %d, fallback %d, meta %+v", len(primary.requests()), len(fallback.requests()), got.Meta)
	}
	if !bytes.Equal(primary.requests()[0].Body, fallback.requests()[0].Body) {
		t.Error("fallback got a different body")
	}
}

// TestNoFallbackByDefaultForCustomBase: a sandbox BaseURL must never fail
// over to the real WeChat Pay.
func TestNoFallbackByDefaultForCustomBase(t *testing.T) {
	c := newTestClient(t, testConfig("http://127.0.0.1:1"))
	if c.hosts[1] != nil || c.Config().FallbackURL != "" {
		t.Errorf("fallback = %v", c.hosts[1])
	}
	cfg := testConfig("")
	c = newTestClient(t, cfg)
	if c.hosts[0].String() != DefaultBaseURL || c.hosts[1].String() != DefaultFallbackURL {
		t.Errorf("hosts = %v %v", c.hosts[0], c.hosts[1])
	}
}

// TestTimeoutPerAttempt: a host that never answers costs Timeout per
// attempt, and the call fails with a transport error.
func TestTimeoutPerAttempt(t *testing.T) {
	srv := newFakeWX(t, nil, func(i int, r recorded) reply { return reply{hang: true} })
	cfg := testConfig(srv.srv.URL)
	cfg.Timeout = 100 * time.Millisecond
	cfg.MaxAttempts = 2
	c := newTestClient(t, cfg)
	start := time.Now()
	_, err := c.GetFavorStock(t.Context(), "1")
	elapsed := time.Since(start)
	var te *TransportError
	if !errors.As(err, &te) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a transport timeout", err)
	}
	if elapsed < 200*time.Millisecond || elapsed > 10*time.Second {
		t.Errorf("took %s, want about 2×100ms", elapsed)
	}
	if n := len(srv.requests()); n != 2 {
		t.Errorf("requests = %d, want 2", n)
	}
}

// TestContextDeadlineHonoured: the caller's deadline wins over Timeout and
// MaxAttempts, and a real backoff sleep is cut short by it.
func TestContextDeadlineHonoured(t *testing.T) {
	var n atomic.Int32
	srv := newFakeWX(t, nil, func(i int, r recorded) reply {
		n.Add(1)
		if i == 0 {
			return reply{status: 500, body: `{"code":"SYSTEM_ERROR","message":"x"}`}
		}
		return reply{hang: true}
	})
	cfg := testConfig(srv.srv.URL)
	cfg.Sleep = nil // the real one
	cfg.Timeout = time.Minute
	cfg.MaxAttempts = 10
	cfg.BackoffBase, cfg.BackoffMax = time.Millisecond, time.Millisecond
	c := newTestClient(t, cfg)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.GetFavorStock(ctx, "1")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("took %s", el)
	}
	if n.Load() != 2 {
		t.Errorf("requests = %d, want 2", n.Load())
	}

	// A deadline shorter than the next backoff gives up instead of sleeping
	// into it: any sleep that happens must fit before the deadline.
	var slept []time.Duration
	cfg.BackoffBase, cfg.BackoffMax = time.Hour, time.Hour
	cfg.Sleep = func(ctx context.Context, d time.Duration) error {
		slept = append(slept, d)
		return nil
	}
	srv2 := newFakeWX(t, nil, func(i int, r recorded) reply {
		return reply{status: 500, body: `{"code":"SYSTEM_ERROR","message":"x"}`}
	})
	cfg.BaseURL = srv2.srv.URL
	c = newTestClient(t, cfg)
	ctx2, cancel2 := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel2()
	_, err = c.GetFavorStock(ctx2, "1")
	if !IsStatus(err, 500) {
		t.Fatalf("err = %v, want the last 500", err)
	}
	for _, d := range slept {
		if d > 2*time.Second {
			t.Errorf("slept %s past a 2s deadline", d)
		}
	}
}

func TestNotConfiguredAndBadArguments(t *testing.T) {
	srv := newFakeWX(t, nil, func(i int, r recorded) reply { return reply{body: `{}`} })
	cfg := testConfig(srv.srv.URL)
	cfg.BrandKey = nil
	c := newTestClient(t, cfg)
	if _, err := c.PreSendCouponBundle(t.Context(), "o1", PreSendCouponBundleRequest{}); !errors.Is(err, ErrNotConfigured) {
		t.Errorf("no brand key: err = %v", err)
	}
	if _, err := c.GetFavorStock(t.Context(), ""); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("empty stock id: err = %v", err)
	}
	if _, err := c.UploadProductCouponCodes(t.Context(), "p", " ", UploadProductCouponCodesRequest{}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("blank stock id: err = %v", err)
	}
	if n := len(srv.requests()); n != 0 {
		t.Errorf("requests = %d, want none", n)
	}
}

func TestNewClientValidation(t *testing.T) {
	base := testConfig("http://127.0.0.1:1")
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"no public key", func(c *Config) { c.PubKey = nil }, "PubKey"},
		{"no public key ID", func(c *Config) { c.PubKeyID = "" }, "PubKeyID"},
		{"relative base", func(c *Config) { c.BaseURL = "api.mch.weixin.qq.com" }, "BaseURL"},
		{"bad fallback", func(c *Config) { c.FallbackURL = "ftp://x" }, "FallbackURL"},
		{"bad rate", func(c *Config) { c.Rates = map[Endpoint]Rate{EndpointPreSendCouponBundle: {N: 5}} }, "rate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			tt.mutate(&cfg)
			_, err := NewClient(cfg, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want mention of %s", err, tt.want)
			}
		})
	}
}

func TestBackoffFullJitter(t *testing.T) {
	cfg := testConfig("http://127.0.0.1:1")
	cfg.BackoffBase, cfg.BackoffMax = 100*time.Millisecond, time.Second
	c := newTestClient(t, cfg)
	caps := map[int]time.Duration{2: 100 * time.Millisecond, 3: 200 * time.Millisecond, 4: 400 * time.Millisecond, 5: 800 * time.Millisecond, 6: time.Second, 30: time.Second}
	for attempt, capd := range caps {
		var maxSeen time.Duration
		for range 500 {
			d := c.backoff(attempt, nil)
			if d < 0 || d > capd {
				t.Fatalf("attempt %d: backoff %s outside [0, %s]", attempt, d, capd)
			}
			maxSeen = max(maxSeen, d)
		}
		if maxSeen < capd/2 {
			t.Errorf("attempt %d: max backoff %s, jitter not spread over [0, %s]", attempt, maxSeen, capd)
		}
	}
	// A 429's Retry-After is honoured, up to BackoffMax.
	h := http.Header{"Retry-After": {"1"}}
	ae := newAPIError(EndpointGetFavorStock, 429, h, []byte(`{"code":"FREQUENCY_LIMITED","message":"x"}`))
	if d := c.backoff(2, ae); d != time.Second {
		t.Errorf("Retry-After 1: backoff %s", d)
	}
}

// TestPathPrefixSigned: a BaseURL with a path (a sandbox mounted under a
// prefix) is signed with the prefix, as sent.
func TestPathPrefixSigned(t *testing.T) {
	srv := newFakeWX(t, nil, func(i int, r recorded) reply { return reply{body: `{"token":"T"}`} })
	u, _ := url.Parse(srv.srv.URL)
	u.Path = "/wx/"
	c := newTestClient(t, testConfig(u.String()))
	if _, err := c.PreSendCouponBundle(t.Context(), "o 1", PreSendCouponBundleRequest{}); err != nil {
		t.Fatalf("call: %v", err)
	}
	if got := srv.requests()[0].URI; got != "/wx/brand/marketing/product-coupon/users/o%201/pre-send-coupon-bundle" {
		t.Errorf("URI = %s", got)
	}
}

// A pre-send signed ahead goes out with that signature on its first attempt,
// so signing can overlap the caller's own work; a retry is signed afresh,
// and a signature held longer than a minute is not used.
func TestPreparedPreSend(t *testing.T) {
	clock := &manualClock{t: time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)}
	srv := newFakeWX(t, clock.Now, func(i int, r recorded) reply {
		if i == 0 {
			return reply{status: 500, body: `{"code":"SYSTEM_ERROR","message":"busy"}`}
		}
		return reply{body: `{"token":"T"}`}
	})
	cfg := testConfig(srv.srv.URL)
	cfg.Now = clock.Now
	c := newTestClient(t, cfg)
	req := PreSendCouponBundleRequest{ProductCouponID: "200000001", StockBundleID: "100232301", AppID: "wx233544546545989", SendRequestNo: "send_0001"}

	signedAt := clock.Now().Unix()
	call, err := c.PreparePreSendCouponBundle("o1", req)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(srv.requests()); n != 0 {
		t.Fatalf("preparing sent %d requests", n)
	}
	clock.Advance(30 * time.Second)
	got, err := call.Send(t.Context())
	if err != nil || got.Token != "T" {
		t.Fatalf("send: %+v %v", got, err)
	}
	reqs := srv.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	if reqs[0].Auth.Timestamp != signedAt {
		t.Errorf("first attempt signed at %d, want the prepared signature's %d", reqs[0].Auth.Timestamp, signedAt)
	}
	if reqs[1].Auth.Timestamp != clock.Now().Unix() || reqs[1].Auth.Nonce == reqs[0].Auth.Nonce {
		t.Errorf("retry reused the prepared signature: %+v", reqs[1].Auth)
	}

	held, err := c.PreparePreSendCouponBundle("o1", req)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	if _, err := held.Send(t.Context()); err != nil {
		t.Fatal(err)
	}
	if last := srv.requests()[2]; last.Auth.Timestamp != clock.Now().Unix() {
		t.Errorf("a signature held 2 minutes was used (signed at %d, sent at %d)", last.Auth.Timestamp, clock.Now().Unix())
	}
}
