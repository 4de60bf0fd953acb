package sandbox_test

// The console's real WeChat Pay client (package wxpay) against the sandbox
// over HTTP: every endpoint's success and documented error rows (issue 3,
// acceptance 3), a 10,000-code upload through 500s and 429s (acceptance 4),
// failover to the fallback host (acceptance 5) and the sandbox's own rate
// limits (acceptance 6, sandbox side).
//
// The sandbox runs on a manual clock that the client shares (Config.Now), so
// request and reply signatures agree and rate-limit buckets never refill by
// themselves; the client's Sleep returns at once and its own rate limits are
// off, so retries cost no time and every 429 seen is the sandbox's.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"voucherconsole/internal/wxpay"
	"voucherconsole/internal/wxpay/sandbox"
)

// maxAttempts is the client's MaxAttempts in these tests: a retryable error
// (5xx, 429) is seen this many times before the call gives up.
const maxAttempts = 3

// t0 is the sandbox's (and the client's) time: a Monday morning in Shanghai.
var (
	cst = time.FixedZone("CST", 8*3600)
	t0  = time.Date(2025, 6, 2, 10, 0, 0, 0, cst)
)

// t0Text is t0 as the sandbox writes times (create_time, deactivate_time).
const t0Text = "2025-06-02T10:00:00+08:00"

var (
	keysOnce sync.Once
	keysVal  *sandbox.Keys
	keysErr  error
)

// testKeys generates one sandbox key set for the test binary; RSA key
// generation is too slow to repeat per test.
func testKeys(tb testing.TB) *sandbox.Keys {
	tb.Helper()
	keysOnce.Do(func() { keysVal, keysErr = sandbox.GenerateKeys() })
	if keysErr != nil {
		tb.Fatal(keysErr)
	}
	return keysVal
}

// env is a seeded sandbox behind an httptest server that counts the API
// replies it sends, by status.
type env struct {
	sb    *sandbox.Sandbox
	srv   *httptest.Server
	clk   *sandbox.Clock
	creds sandbox.Credentials

	hits     atomic.Int64 // API requests (not /_sandbox/) answered
	certHits atomic.Int64 // GET /v3/certificates requests
	mu       sync.Mutex
	statuses map[int]int
}

func newEnv(tb testing.TB, mod func(*sandbox.Options)) *env {
	tb.Helper()
	clk := sandbox.NewClock(t0)
	opts := sandbox.Options{Seed: true, Clock: clk, Keys: testKeys(tb), Rand: rand.New(rand.NewPCG(3, 17))}
	if mod != nil {
		mod(&opts)
	}
	sb, err := sandbox.New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	e := &env{sb: sb, clk: clk, creds: sb.Credentials(), statuses: map[int]int{}}
	h := sb.Handler()
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/_sandbox/") {
			h.ServeHTTP(w, r)
			return
		}
		if r.URL.Path == "/v3/certificates" {
			e.certHits.Add(1)
		}
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		e.hits.Add(1)
		e.mu.Lock()
		e.statuses[rec.status()]++
		e.mu.Unlock()
	}))
	tb.Cleanup(func() {
		e.srv.Close()
		if err := sb.Close(); err != nil {
			tb.Error(err)
		}
	})
	return e
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (the sandbox's
// dropped-connection fault hijacks it).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *statusRecorder) status() int {
	if r.code == 0 {
		return http.StatusOK
	}
	return r.code
}

func (e *env) status(code int) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.statuses[code]
}

// host is the sandbox server's host, as the client reports it in Meta.Host.
func (e *env) host(tb testing.TB) string {
	u, err := url.Parse(e.srv.URL)
	if err != nil {
		tb.Fatal(err)
	}
	return u.Host
}

// noSleep is the client's Sleep: backoff and rate-limit waits return at once.
func noSleep(ctx context.Context, _ time.Duration) error { return ctx.Err() }

// noClientLimits turns the client's own rate limits off, so that only the
// sandbox limits.
func noClientLimits() map[wxpay.Endpoint]wxpay.Rate {
	unlimited := wxpay.Rate{N: -1}
	return map[wxpay.Endpoint]wxpay.Rate{
		wxpay.EndpointCreateFavorStock:             unlimited,
		wxpay.EndpointUploadBusifavorCodes:         unlimited,
		wxpay.EndpointUploadProductCouponCodes:     unlimited,
		wxpay.EndpointDeactivateProductCouponStock: unlimited,
		wxpay.EndpointPreSendCouponBundle:          unlimited,
		wxpay.EndpointGetProductCouponStock:        unlimited,
		wxpay.EndpointGetFavorStock:                unlimited,
		wxpay.EndpointGetBusifavorStock:            unlimited,
	}
}

// config is a client configuration for the sandbox: its credentials, its
// clock, immediate sleeps and no client-side limits.
func (e *env) config() wxpay.Config {
	c := e.creds
	return wxpay.Config{
		BaseURL:       e.srv.URL,
		MchID:         c.MchID,
		MchSerial:     c.MchSerial,
		MchKey:        c.MchKey,
		SPMchID:       c.SPMchID,
		SPSerial:      c.SPSerial,
		SPKey:         c.SPKey,
		BrandID:       c.BrandID,
		BrandSerial:   c.BrandSerial,
		BrandKey:      c.BrandKey,
		MchPubKeyID:   c.MchPubKeyID,
		MchPubKey:     c.MchPubKey,
		SPPubKeyID:    c.SPPubKeyID,
		SPPubKey:      c.SPPubKey,
		BrandPubKeyID: c.BrandPubKeyID,
		BrandPubKey:   c.BrandPubKey,
		Timeout:       10 * time.Second,
		MaxAttempts:   maxAttempts,
		Now:           e.clk.Now,
		Sleep:         noSleep,
		Rates:         noClientLimits(),
	}
}

func (e *env) client(tb testing.TB, cfg wxpay.Config) *wxpay.Client {
	tb.Helper()
	c, err := wxpay.NewClient(cfg, e.srv.Client())
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func stockInfo(tb testing.TB, e *env, kind, id string) sandbox.StockInfo {
	tb.Helper()
	for _, s := range e.sb.Stocks() {
		if s.Kind == kind && s.StockID == id {
			return s
		}
	}
	tb.Fatalf("sandbox has no %s stock %s", kind, id)
	return sandbox.StockInfo{}
}

func requestsOf(e *env, endpoint string) []sandbox.RequestInfo {
	var out []sandbox.RequestInfo
	for _, r := range e.sb.Requests() {
		if r.Endpoint == endpoint {
			out = append(out, r)
		}
	}
	return out
}

// wantAPIError asserts that err carries a WeChat Pay error reply with the
// status and code, a message and a Request-ID.
func wantAPIError(tb testing.TB, err error, status int, code string) *wxpay.APIError {
	tb.Helper()
	var ae *wxpay.APIError
	if !errors.As(err, &ae) {
		tb.Fatalf("want HTTP %d %s, got %v", status, code, err)
	}
	if ae.StatusCode != status || ae.Code != code {
		tb.Fatalf("want HTTP %d %s, got HTTP %d %s: %s", status, code, ae.StatusCode, ae.Code, ae.Message)
	}
	if ae.Message == "" {
		tb.Errorf("HTTP %d %s without a message", status, code)
	}
	if ae.RequestID == "" {
		tb.Errorf("HTTP %d %s without a Request-ID", status, code)
	}
	if ae.Endpoint == "" {
		tb.Errorf("HTTP %d %s does not name the endpoint", status, code)
	}
	if !wxpay.IsCode(err, code) || !wxpay.IsStatus(err, status) || wxpay.RequestIDOf(err) != ae.RequestID {
		tb.Errorf("IsCode/IsStatus/RequestIDOf disagree with the APIError %+v", ae)
	}
	return ae
}

// clientCase is one call of an endpoint through the client. A zero status
// expects success.
type clientCase[R any] struct {
	name string
	// setup runs first, fault-free, with a correctly configured client.
	setup func(t *testing.T, e *env, c *wxpay.Client)
	// faults and cfg then apply to the call under test.
	faults sandbox.Faults
	cfg    func(*wxpay.Config)
	call   func(ctx context.Context, c *wxpay.Client) (*R, error)

	status int
	code   string
	detail string // a substring the error's detail must hold
	// check inspects the reply (nil after an error) and the sandbox.
	check func(t *testing.T, e *env, r *R)
}

// runCases runs an endpoint's cases as subtests of t, each against a fresh
// seeded sandbox. Endpoints run in parallel with each other.
func runCases[R any](t *testing.T, meta func(*R) wxpay.Meta, cases []clientCase[R]) {
	t.Parallel()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			cfg := e.config()
			if tc.setup != nil {
				tc.setup(t, e, e.client(t, cfg))
			}
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			c := e.client(t, cfg)
			if err := e.sb.SetFaults(tc.faults); err != nil {
				t.Fatal(err)
			}
			before := e.hits.Load()
			r, err := tc.call(t.Context(), c)
			sent := e.hits.Load() - before

			if tc.status == 0 {
				if err != nil {
					t.Fatalf("want success, got %v", err)
				}
				m := meta(r)
				if m.RequestID == "" {
					t.Error("Meta.RequestID is empty")
				}
				if m.Attempts != 1 || sent != 1 {
					t.Errorf("Meta.Attempts %d, requests sent %d; want 1 and 1", m.Attempts, sent)
				}
				if want := e.host(t); m.Host != want {
					t.Errorf("Meta.Host %q, want %q", m.Host, want)
				}
			} else {
				wantAPIError(t, err, tc.status, tc.code)
				if tc.detail != "" {
					var ae *wxpay.APIError
					errors.As(err, &ae)
					if !strings.Contains(string(ae.Detail), tc.detail) {
						t.Errorf("detail %s does not mention %q", ae.Detail, tc.detail)
					}
				}
				if r != nil {
					t.Errorf("a reply (%+v) as well as an error", r)
				}
				want := int64(1)
				if tc.status >= 500 || tc.status == http.StatusTooManyRequests {
					want = maxAttempts // retried, then given up
				}
				if sent != want {
					t.Errorf("requests sent %d, want %d", sent, want)
				}
			}
			if tc.check != nil {
				tc.check(t, e, r)
			}
		})
	}
}

// commonCases are every endpoint's rows of the common error table: a wrong
// signature (401 SIGN_ERROR, not retried), the endpoint's throttling code
// (429, retried) and SYSTEM_ERROR (500, retried). withRequestNo says whether
// the endpoint has a request number, which the retries must resend unchanged.
func commonCases[R any](call func(context.Context, *wxpay.Client) (*R, error), throttleCode string, withRequestNo bool) []clientCase[R] {
	resentIdentically := func(t *testing.T, e *env, _ *R) {
		t.Helper()
		reqs := e.sb.Requests()
		if withRequestNo && len(reqs) != 1 {
			t.Fatalf("sandbox saw request numbers %+v, want one", reqs)
		}
		for _, r := range reqs {
			if r.Count != maxAttempts || !r.Identical {
				t.Errorf("request number %s seen %d times (identical %v), want %d identical", r.RequestNo, r.Count, r.Identical, maxAttempts)
			}
		}
	}
	return []clientCase[R]{
		{
			name: "401_SIGN_ERROR_wrong_key", call: call, status: http.StatusUnauthorized, code: "SIGN_ERROR",
			// Each identity signs with another identity's key.
			cfg: func(c *wxpay.Config) { c.MchKey, c.SPKey, c.BrandKey = c.SPKey, c.BrandKey, c.MchKey },
		},
		{
			name: "401_SIGN_ERROR_unknown_serial", call: call, status: http.StatusUnauthorized, code: "SIGN_ERROR",
			cfg: func(c *wxpay.Config) {
				bad := strings.Repeat("0", 40)
				c.MchSerial, c.SPSerial, c.BrandSerial = bad, bad, bad
			},
		},
		{
			name: "401_SIGN_ERROR_stale_timestamp", call: call, status: http.StatusUnauthorized, code: "SIGN_ERROR",
			cfg: func(c *wxpay.Config) {
				now := c.Now
				c.Now = func() time.Time { return now().Add(-6 * time.Minute) }
			},
		},
		{
			name: "429_" + throttleCode, call: call, status: http.StatusTooManyRequests, code: throttleCode,
			faults: sandbox.Faults{ThrottleRate: 1}, check: resentIdentically,
		},
		{
			name: "500_SYSTEM_ERROR", call: call, status: http.StatusInternalServerError, code: "SYSTEM_ERROR",
			faults: sandbox.Faults{FailRate: 1}, check: resentIdentically,
		},
	}
}

// sameRequestSeenTwice asserts that the sandbox saw the endpoint's only
// request number twice, with identical bodies or not.
func sameRequestSeenTwice(endpoint string, identical bool) func(t *testing.T, e *env) {
	return func(t *testing.T, e *env) {
		t.Helper()
		reqs := requestsOf(e, endpoint)
		if len(reqs) != 1 || reqs[0].Count != 2 || reqs[0].Identical != identical {
			t.Errorf("request log %+v, want one number seen twice with identical %v", reqs, identical)
		}
	}
}

func TestClientAgainstSandbox(t *testing.T) {
	t.Run("CreateFavorStock", testCreateFavorStock)
	t.Run("UploadBusifavorCodes", testUploadBusifavorCodes)
	t.Run("UploadProductCouponCodes", testUploadProductCouponCodes)
	t.Run("Deactivate", testDeactivate)
	t.Run("PreSend", testPreSend)
	t.Run("GetProductCouponStock", testGetProductCouponStock)
	t.Run("GetFavorStock", testGetFavorStock)
	t.Run("GetBusifavorStock", testGetBusifavorStock)
}

// Each endpoint's cases run as TestClientAgainstSandbox/<Endpoint>/
// <status>_<CODE>_<what>, the code being the one the endpoint's document
// lists for the row.

// validFavor is a document 003 request the sandbox accepts at t0.
func validFavor(no string) wxpay.CreateFavorStockRequest {
	return wxpay.CreateFavorStockRequest{
		StockName:          "夏日立减5元",
		Comment:            "门店夏季活动",
		AvailableBeginTime: "2025-06-03T00:00:00+08:00",
		AvailableEndTime:   "2025-08-31T23:59:59+08:00",
		StockUseRule: wxpay.FavorStockUseRule{
			MaxCoupons: 1000, MaxAmount: 500_000, MaxAmountByDay: 50_000, MaxCouponsPerUser: 2,
			PreventAPIAbuse: true,
		},
		PatternInfo: &wxpay.FavorPatternInfo{Description: "满30元可用,每人限领2张", MerchantName: "臻选咖啡", BackgroundColor: "COLOR010"},
		CouponUseRule: wxpay.FavorCouponUseRule{
			FixedNormalCoupon:  &wxpay.FixedNormalCoupon{CouponAmount: 500, TransactionMinimum: 3000},
			TradeType:          []string{"MICROAPP", "APPPAY"},
			AvailableMerchants: []string{sandbox.MerchantID},
		},
		StockType:    wxpay.FavorStockTypeNormal,
		OutRequestNo: no,
	}
}

func createFavor(mod func(*wxpay.CreateFavorStockRequest)) func(context.Context, *wxpay.Client) (*wxpay.CreateFavorStockReply, error) {
	return func(ctx context.Context, c *wxpay.Client) (*wxpay.CreateFavorStockReply, error) {
		req := validFavor("1230000109_20250602_0001")
		if mod != nil {
			mod(&req)
		}
		return c.CreateFavorStock(ctx, req)
	}
}

func testCreateFavorStock(t *testing.T) {
	type R = wxpay.CreateFavorStockReply
	var first *R
	cases := []clientCase[R]{
		{
			name: "200_OK", call: createFavor(nil),
			check: func(t *testing.T, e *env, r *R) {
				if !regexp.MustCompile(`^[0-9]+$`).MatchString(r.StockID) {
					t.Errorf("stock_id %q is not numeric", r.StockID)
				}
				if r.CreateTime != t0Text {
					t.Errorf("create_time %q, want %q", r.CreateTime, t0Text)
				}
				got, err := e.client(t, e.config()).GetFavorStock(t.Context(), r.StockID)
				if err != nil {
					t.Fatal(err)
				}
				if got.Status != wxpay.FavorStockUnactivated || got.StockName != "夏日立减5元" || got.StockCreatorMchID != sandbox.MerchantID {
					t.Errorf("stock read back: %+v", got)
				}
			},
		},
		{
			name: "200_OK_replayed_out_request_no",
			setup: func(t *testing.T, e *env, c *wxpay.Client) {
				var err error
				if first, err = createFavor(nil)(t.Context(), c); err != nil {
					t.Fatal(err)
				}
			},
			call: createFavor(nil),
			check: func(t *testing.T, e *env, r *R) {
				if r.StockID != first.StockID || r.CreateTime != first.CreateTime {
					t.Errorf("replay %+v, want the first reply %+v", r, first)
				}
				sameRequestSeenTwice(sandbox.EndpointCreateFavorStock, true)(t, e)
			},
		},
		{
			name: "400_PARAM_ERROR_stock_name", status: 400, code: "PARAM_ERROR", detail: "stock_name",
			call: createFavor(func(r *wxpay.CreateFavorStockRequest) { r.StockName = "夏日_立减" }),
		},
		{
			name: "400_PARAM_ERROR_stock_name_too_long", status: 400, code: "PARAM_ERROR", detail: "stock_name",
			call: createFavor(func(r *wxpay.CreateFavorStockRequest) { r.StockName = "ABCDEFGHIJKLMNOPQRSTU" }),
		},
		{
			name: "400_PARAM_ERROR_time_format", status: 400, code: "PARAM_ERROR", detail: "available_begin_time",
			call: createFavor(func(r *wxpay.CreateFavorStockRequest) { r.AvailableBeginTime = "2025-06-03 00:00:00" }),
		},
		{
			name: "400_PARAM_ERROR_begin_time_in_past", status: 400, code: "PARAM_ERROR", detail: "available_begin_time",
			call: createFavor(func(r *wxpay.CreateFavorStockRequest) { r.AvailableBeginTime = "2025-06-01T00:00:00+08:00" }),
		},
		{
			name: "400_PARAM_ERROR_span_over_90_days", status: 400, code: "PARAM_ERROR", detail: "available_end_time",
			call: createFavor(func(r *wxpay.CreateFavorStockRequest) { r.AvailableEndTime = "2025-09-30T00:00:00+08:00" }),
		},
		{
			name: "400_PARAM_ERROR_stock_type", status: 400, code: "PARAM_ERROR", detail: "stock_type",
			call: createFavor(func(r *wxpay.CreateFavorStockRequest) { r.StockType = "DISCOUNT" }),
		},
		{
			name: "400_PARAM_ERROR_out_request_no", status: 400, code: "PARAM_ERROR", detail: "out_request_no",
			call: createFavor(func(r *wxpay.CreateFavorStockRequest) { r.OutRequestNo = "bad no!" }),
		},
		{
			name: "400_INVALID_REQUEST_illegal_belong_merchant", status: 400, code: "INVALID_REQUEST", detail: "belong_merchant",
			call: createFavor(func(r *wxpay.CreateFavorStockRequest) { r.BelongMerchant = "1230000999" }),
		},
		{
			name: "400_INVALID_REQUEST_illegal_available_merchants", status: 400, code: "INVALID_REQUEST", detail: "available_merchants",
			call: createFavor(func(r *wxpay.CreateFavorStockRequest) { r.CouponUseRule.AvailableMerchants = []string{"abc"} }),
		},
		{
			name: "400_INVALID_REQUEST_out_request_no_reused",
			setup: func(t *testing.T, e *env, c *wxpay.Client) {
				if _, err := createFavor(nil)(t.Context(), c); err != nil {
					t.Fatal(err)
				}
			},
			call:   createFavor(func(r *wxpay.CreateFavorStockRequest) { r.StockName = "秋日立减5元" }),
			status: 400, code: "INVALID_REQUEST", detail: "out_request_no",
			check: func(t *testing.T, e *env, _ *R) { sameRequestSeenTwice(sandbox.EndpointCreateFavorStock, false)(t, e) },
		},
	}
	cases = append(cases, commonCases(createFavor(nil), "FREQUENCY_LIMITED", true)...)
	runCases(t, func(r *R) wxpay.Meta { return r.Meta }, cases)
}

func uploadBusifavor(stock, no string, codes ...string) func(context.Context, *wxpay.Client) (*wxpay.UploadBusifavorCodesReply, error) {
	return func(ctx context.Context, c *wxpay.Client) (*wxpay.UploadBusifavorCodesReply, error) {
		return c.UploadBusifavorCodes(ctx, stock, wxpay.UploadBusifavorCodesRequest{CouponCodeList: codes, UploadRequestNo: no})
	}
}

func testUploadBusifavorCodes(t *testing.T) {
	type R = wxpay.UploadBusifavorCodesReply
	const stock = sandbox.SeedBusifavorUpload
	tooMany := make([]string, wxpay.MaxBusifavorCodesPerUpload+1)
	for i := range tooMany {
		tooMany[i] = fmt.Sprintf("BF-MANY-%04d", i)
	}
	long := strings.Repeat("9", 33)
	cases := []clientCase[R]{
		{
			name: "200_OK", call: uploadBusifavor(stock, "bf_upload_0001", "BF 0001", "BF-0002", "BF-0002", long, "bad#code"),
			check: func(t *testing.T, e *env, r *R) {
				if r.StockID != stock || r.TotalCount != 4 || r.SuccessCount != 2 || r.FailCount != 2 || r.SuccessTime == "" {
					t.Errorf("reply %+v", r)
				}
				if !slices.Equal(r.SuccessCodes, []string{"BF 0001", "BF-0002"}) || !slices.Equal(r.DuplicateCodes, []string{"BF-0002"}) {
					t.Errorf("success %q, duplicate %q", r.SuccessCodes, r.DuplicateCodes)
				}
				var failed []string
				for _, f := range r.FailCodes {
					failed = append(failed, f.CouponCode+"="+f.Code)
					if f.Message == "" {
						t.Errorf("fail code %q without a message", f.CouponCode)
					}
				}
				if want := []string{long + "=LENGTH_LIMIT", "bad#code=PARAM_ERROR"}; !slices.Equal(failed, want) {
					t.Errorf("fail codes %q, want %q", failed, want)
				}
				if s := stockInfo(t, e, sandbox.KindBusifavor, stock); s.TotalCount != 2 || !slices.Equal(s.Codes, []string{"BF 0001", "BF-0002"}) {
					t.Errorf("inventory %d %q", s.TotalCount, s.Codes)
				}
			},
		},
		{
			name: "200_OK_exist_codes",
			setup: func(t *testing.T, e *env, c *wxpay.Client) {
				if _, err := uploadBusifavor(stock, "bf_upload_0001", "BF-1")(t.Context(), c); err != nil {
					t.Fatal(err)
				}
			},
			call: uploadBusifavor(stock, "bf_upload_0002", "BF-1", "BF-2"),
			check: func(t *testing.T, e *env, r *R) {
				if !slices.Equal(r.ExistCodes, []string{"BF-1"}) || !slices.Equal(r.SuccessCodes, []string{"BF-2"}) {
					t.Errorf("exist %q, success %q", r.ExistCodes, r.SuccessCodes)
				}
			},
		},
		{
			name: "400_PARAM_ERROR_too_many_codes", status: 400, code: "PARAM_ERROR", detail: "coupon_code_list",
			call: uploadBusifavor(stock, "bf_upload_0001", tooMany...),
		},
		{
			name: "400_PARAM_ERROR_upload_request_no", status: 400, code: "PARAM_ERROR", detail: "upload_request_no",
			call: uploadBusifavor(stock, "", "BF-1"),
		},
		{
			name: "400_INVALID_REQUEST_code_mode_not_MERCHANT_UPLOAD", status: 400, code: "INVALID_REQUEST",
			call: uploadBusifavor(sandbox.SeedBusifavorWechatPay, "bf_upload_0001", "BF-1"),
			check: func(t *testing.T, e *env, _ *R) {
				if s := stockInfo(t, e, sandbox.KindBusifavor, sandbox.SeedBusifavorWechatPay); s.TotalCount != 0 {
					t.Errorf("refused upload left %d codes", s.TotalCount)
				}
			},
		},
		{
			name: "400_RESOURCE_ALREADY_EXISTS_upload_request_no_reused",
			setup: func(t *testing.T, e *env, c *wxpay.Client) {
				if _, err := uploadBusifavor(stock, "bf_upload_0001", "BF-1")(t.Context(), c); err != nil {
					t.Fatal(err)
				}
			},
			call:   uploadBusifavor(stock, "bf_upload_0001", "BF-2"),
			status: 400, code: "RESOURCE_ALREADY_EXISTS", detail: "upload_request_no",
			check: func(t *testing.T, e *env, _ *R) {
				sameRequestSeenTwice(sandbox.EndpointUploadBusifavorCodes, false)(t, e)
				if s := stockInfo(t, e, sandbox.KindBusifavor, stock); !slices.Equal(s.Codes, []string{"BF-1"}) {
					t.Errorf("inventory %q, want only the first upload's code", s.Codes)
				}
			},
		},
		{
			name: "404_RESOURCE_NOT_EXISTS_stock", status: 404, code: "RESOURCE_NOT_EXISTS",
			call: uploadBusifavor("1265999999", "bf_upload_0001", "BF-1"),
		},
	}
	cases = append(cases, commonCases(uploadBusifavor(stock, "bf_upload_0001", "BF-1"), "FREQUENCY_LIMITED", true)...)
	runCases(t, func(r *R) wxpay.Meta { return r.Meta }, cases)
}

func uploadPC(pc, stock, no, brand string, codes ...string) func(context.Context, *wxpay.Client) (*wxpay.UploadProductCouponCodesReply, error) {
	return func(ctx context.Context, c *wxpay.Client) (*wxpay.UploadProductCouponCodesReply, error) {
		return c.UploadProductCouponCodes(ctx, pc, stock, wxpay.UploadProductCouponCodesRequest{OutRequestNo: no, CodeList: codes, BrandID: brand})
	}
}

func testUploadProductCouponCodes(t *testing.T) {
	type R = wxpay.UploadProductCouponCodesReply
	const pc, stock = sandbox.SeedProductCoupon, sandbox.SeedStockSending
	tooMany := make([]string, wxpay.MaxProductCouponCodesPerUpload+1)
	for i := range tooMany {
		tooMany[i] = fmt.Sprintf("PC-MANY-%04d", i)
	}
	var first *R
	cases := []clientCase[R]{
		{
			// One of each outcome: new, repeated in the request, already in
			// the stock (a seed code), and refused by the code alphabet.
			name: "200_OK", call: uploadPC(pc, stock, "pc_upload_0001", "", "ACC3_0001", "ACC3-0002", "ACC3-0002", "LATTE-SPRING-0001", "bad code!"),
			check: func(t *testing.T, e *env, r *R) {
				if r.TotalCount != 4 {
					t.Errorf("total_count %d, want 4", r.TotalCount)
				}
				if !slices.Equal(r.SuccessCodeList, []string{"ACC3_0001", "ACC3-0002"}) ||
					!slices.Equal(r.DuplicateCodeList, []string{"ACC3-0002"}) ||
					!slices.Equal(r.AlreadyExistCodeList, []string{"LATTE-SPRING-0001"}) {
					t.Errorf("success %q, duplicate %q, already exist %q", r.SuccessCodeList, r.DuplicateCodeList, r.AlreadyExistCodeList)
				}
				if len(r.FailedCodeList) != 1 || r.FailedCodeList[0].CouponCode != "bad code!" || r.FailedCodeList[0].Code != "PARAM_ERROR" || r.FailedCodeList[0].Message == "" {
					t.Errorf("failed %+v", r.FailedCodeList)
				}
				s := stockInfo(t, e, sandbox.KindProductCoupon, stock)
				if s.TotalCount != 10 || !slices.Contains(s.Codes, "ACC3_0001") || !slices.Contains(s.Codes, "ACC3-0002") {
					t.Errorf("inventory %d %q", s.TotalCount, s.Codes)
				}
			},
		},
		{
			name: "200_OK_replayed_out_request_no",
			setup: func(t *testing.T, e *env, c *wxpay.Client) {
				var err error
				if first, err = uploadPC(pc, stock, "pc_upload_0001", "", "ACC3-1", "ACC3-2")(t.Context(), c); err != nil {
					t.Fatal(err)
				}
			},
			call: uploadPC(pc, stock, "pc_upload_0001", "", "ACC3-1", "ACC3-2"),
			check: func(t *testing.T, e *env, r *R) {
				// The first reply again, not "already exist": the upload
				// was carried out once.
				if !slices.Equal(r.SuccessCodeList, first.SuccessCodeList) || len(r.AlreadyExistCodeList) != 0 {
					t.Errorf("replay %+v, want the first reply %+v", r, first)
				}
				if s := stockInfo(t, e, sandbox.KindProductCoupon, stock); s.TotalCount != 10 {
					t.Errorf("inventory %d codes, want 10", s.TotalCount)
				}
				sameRequestSeenTwice(sandbox.EndpointUploadProductCouponCodes, true)(t, e)
			},
		},
		{
			name: "400_PARAM_ERROR_out_request_no", status: 400, code: "PARAM_ERROR", detail: "out_request_no",
			call: uploadPC(pc, stock, "abc", "", "ACC3-1"),
		},
		{
			name: "400_PARAM_ERROR_too_many_codes", status: 400, code: "PARAM_ERROR", detail: "code_list",
			call: uploadPC(pc, stock, "pc_upload_0001", "", tooMany...),
		},
		{
			name: "400_INVALID_REQUEST_expired_stock", status: 400, code: "INVALID_REQUEST",
			call: uploadPC(pc, sandbox.SeedStockStopped, "pc_upload_0001", "", "ACC3-1"),
		},
		{
			name: "400_INVALID_REQUEST_code_mode_not_UPLOAD", status: 400, code: "INVALID_REQUEST",
			call: uploadPC(pc, sandbox.SeedStockWechatPayMode, "pc_upload_0001", "", "ACC3-1"),
			check: func(t *testing.T, e *env, _ *R) {
				if s := stockInfo(t, e, sandbox.KindProductCoupon, sandbox.SeedStockWechatPayMode); s.TotalCount != 0 {
					t.Errorf("refused upload left %d codes", s.TotalCount)
				}
			},
		},
		{
			name: "400_INVALID_REQUEST_out_request_no_reused",
			setup: func(t *testing.T, e *env, c *wxpay.Client) {
				if _, err := uploadPC(pc, stock, "pc_upload_0001", "", "ACC3-1")(t.Context(), c); err != nil {
					t.Fatal(err)
				}
			},
			call:   uploadPC(pc, stock, "pc_upload_0001", "", "ACC3-2"),
			status: 400, code: "INVALID_REQUEST", detail: "out_request_no",
			check: func(t *testing.T, e *env, _ *R) {
				sameRequestSeenTwice(sandbox.EndpointUploadProductCouponCodes, false)(t, e)
				if s := stockInfo(t, e, sandbox.KindProductCoupon, stock); slices.Contains(s.Codes, "ACC3-2") {
					t.Error("the refused request's code was stored")
				}
			},
		},
		{
			name: "403_NO_AUTH_brand", status: 403, code: "NO_AUTH",
			call: uploadPC(pc, stock, "pc_upload_0001", "999999", "ACC3-1"),
		},
		{
			name: "404_NOT_FOUND_product_coupon", status: 404, code: "NOT_FOUND",
			call: uploadPC("1999999999", stock, "pc_upload_0001", "", "ACC3-1"),
		},
		{
			name: "404_NOT_FOUND_stock", status: 404, code: "NOT_FOUND",
			call: uploadPC(pc, "1000000001999", "pc_upload_0001", "", "ACC3-1"),
		},
	}
	cases = append(cases, commonCases(uploadPC(pc, stock, "pc_upload_0001", "", "ACC3-1"), "RATELIMIT_EXCEEDED", true)...)
	runCases(t, func(r *R) wxpay.Meta { return r.Meta }, cases)
}

func deactivate(pc, stock, no, reason string) func(context.Context, *wxpay.Client) (*wxpay.ProductCouponStock, error) {
	return func(ctx context.Context, c *wxpay.Client) (*wxpay.ProductCouponStock, error) {
		return c.DeactivateProductCouponStock(ctx, pc, stock, wxpay.DeactivateProductCouponStockRequest{OutRequestNo: no, DeactivateReason: reason})
	}
}

func testDeactivate(t *testing.T) {
	type R = wxpay.ProductCouponStock
	const pc, reason = sandbox.SeedProductCoupon, "批次信息有误,重新创建"
	var first *R
	cases := []clientCase[R]{
		{
			name: "200_OK", call: deactivate(pc, sandbox.SeedStockSending, "deact_0001", reason),
			check: func(t *testing.T, e *env, r *R) {
				if r.ProductCouponID != pc || r.StockID != sandbox.SeedStockSending || r.State != wxpay.StockDeactivated {
					t.Errorf("stock %s/%s state %s", r.ProductCouponID, r.StockID, r.State)
				}
				if r.DeactivateRequestNo != "deact_0001" || r.DeactivateReason != reason || r.DeactivateTime != t0Text {
					t.Errorf("deactivate fields %q %q %q", r.DeactivateRequestNo, r.DeactivateReason, r.DeactivateTime)
				}
				if r.CouponCodeMode != wxpay.CouponCodeModeUpload || r.CouponCodeCountInfo == nil ||
					*r.CouponCodeCountInfo != (wxpay.CouponCodeCountInfo{TotalCount: 8, AvailableCount: 2}) {
					t.Errorf("code mode %s, counts %+v", r.CouponCodeMode, r.CouponCodeCountInfo)
				}
				if r.SentCountInfo.TotalCount != 6 || r.StockSendRule.MaxCount != 10_000_000 || len(r.Raw) == 0 {
					t.Errorf("sent %+v, send rule %+v, raw %d bytes", r.SentCountInfo, r.StockSendRule, len(r.Raw))
				}
				if s := stockInfo(t, e, sandbox.KindProductCoupon, sandbox.SeedStockSending); s.State != "DEACTIVATED" {
					t.Errorf("sandbox state %s", s.State)
				}
			},
		},
		{
			name: "200_OK_PAUSED", call: deactivate(pc, sandbox.SeedStockPaused, "deact_0001", reason),
			check: func(t *testing.T, e *env, r *R) {
				if r.State != wxpay.StockDeactivated {
					t.Errorf("state %s", r.State)
				}
			},
		},
		{
			// The stock is DEACTIVATED after the first call, so only a
			// replay of the first reply can answer 200.
			name: "200_OK_replayed_out_request_no",
			setup: func(t *testing.T, e *env, c *wxpay.Client) {
				var err error
				if first, err = deactivate(pc, sandbox.SeedStockSending, "deact_0001", reason)(t.Context(), c); err != nil {
					t.Fatal(err)
				}
			},
			call: deactivate(pc, sandbox.SeedStockSending, "deact_0001", reason),
			check: func(t *testing.T, e *env, r *R) {
				if string(r.Raw) != string(first.Raw) {
					t.Errorf("replay %s, want %s", r.Raw, first.Raw)
				}
				sameRequestSeenTwice(sandbox.EndpointDeactivateStock, true)(t, e)
			},
		},
		{
			name: "400_PARAM_ERROR_out_request_no", status: 400, code: "PARAM_ERROR", detail: "out_request_no",
			call: deactivate(pc, sandbox.SeedStockSending, "abc", reason),
		},
		{
			name: "400_PARAM_ERROR_deactivate_reason_missing", status: 400, code: "PARAM_ERROR", detail: "deactivate_reason",
			call: deactivate(pc, sandbox.SeedStockSending, "deact_0001", ""),
		},
		{
			name: "400_PARAM_ERROR_deactivate_reason_too_long", status: 400, code: "PARAM_ERROR", detail: "deactivate_reason",
			call: deactivate(pc, sandbox.SeedStockSending, "deact_0001", strings.Repeat("失", 151)),
		},
		{
			name: "400_INVALID_REQUEST_state_not_allowed", status: 400, code: "INVALID_REQUEST", detail: "AUDITING",
			call: deactivate(pc, sandbox.SeedStockAuditing, "deact_0001", reason),
		},
		{
			name: "400_INVALID_REQUEST_state_not_allowed_STOPPED", status: 400, code: "INVALID_REQUEST", detail: "STOPPED",
			call: deactivate(pc, sandbox.SeedStockStopped, "deact_0001", reason),
		},
		{
			name: "400_INVALID_REQUEST_state_not_allowed_DEACTIVATED", status: 400, code: "INVALID_REQUEST", detail: "DEACTIVATED",
			call: deactivate(pc, sandbox.SeedStockDeactivated, "deact_0001", reason),
		},
		{
			name: "400_INVALID_REQUEST_out_request_no_reused",
			setup: func(t *testing.T, e *env, c *wxpay.Client) {
				if _, err := deactivate(pc, sandbox.SeedStockPaused, "deact_0001", reason)(t.Context(), c); err != nil {
					t.Fatal(err)
				}
			},
			call:   deactivate(pc, sandbox.SeedStockPaused, "deact_0001", "另一个原因"),
			status: 400, code: "INVALID_REQUEST", detail: "out_request_no",
			check: func(t *testing.T, e *env, _ *R) { sameRequestSeenTwice(sandbox.EndpointDeactivateStock, false)(t, e) },
		},
		{
			name: "404_NOT_FOUND_product_coupon", status: 404, code: "NOT_FOUND",
			call: deactivate("1999999999", sandbox.SeedStockSending, "deact_0001", reason),
		},
		{
			name: "404_NOT_FOUND_stock", status: 404, code: "NOT_FOUND",
			call: deactivate(pc, "1000000001999", "deact_0001", reason),
		},
	}
	cases = append(cases, commonCases(deactivate(pc, sandbox.SeedStockSending, "deact_0001", reason), "RATELIMIT_EXCEEDED", true)...)
	runCases(t, func(r *R) wxpay.Meta { return r.Meta }, cases)
}

type preSendArgs struct {
	openid, pc, bundle, appid, no, attach string
}

func preSend(mod func(*preSendArgs)) func(context.Context, *wxpay.Client) (*wxpay.PreSendCouponBundleReply, error) {
	return func(ctx context.Context, c *wxpay.Client) (*wxpay.PreSendCouponBundleReply, error) {
		a := preSendArgs{openid: sandbox.DemoOpenID, pc: sandbox.SeedBundleCoupon, bundle: sandbox.SeedBundleMemberDay,
			appid: sandbox.DemoAppID, no: "presend_0001", attach: "acc3"}
		if mod != nil {
			mod(&a)
		}
		return c.PreSendCouponBundle(ctx, a.openid, wxpay.PreSendCouponBundleRequest{
			ProductCouponID: a.pc, StockBundleID: a.bundle, AppID: a.appid, SendRequestNo: a.no, Attach: a.attach,
		})
	}
}

func testPreSend(t *testing.T) {
	type R = wxpay.PreSendCouponBundleReply
	var first *R
	// Document 004's error table is empty; the sandbox answers with the
	// product-coupon documents' codes (001's "传入的OpenID不合法" row,
	// INVALID_REQUEST for a budget or state that forbids the send, 404
	// NOT_FOUND for unknown IDs), detail.reason naming the limit.
	cases := []clientCase[R]{
		{
			name: "200_OK", call: preSend(nil),
			check: func(t *testing.T, e *env, r *R) {
				tok, ok := e.sb.Token(r.Token)
				if r.Token == "" || !ok {
					t.Fatalf("token %q unknown to the sandbox", r.Token)
				}
				if !tok.Valid || tok.OpenID != sandbox.DemoOpenID || tok.StockBundleID != sandbox.SeedBundleMemberDay ||
					tok.SendRequestNo != "presend_0001" || tok.Attach != "acc3" || tok.ExpiresAt.Sub(tok.IssuedAt) != 5*time.Minute {
					t.Errorf("token %+v", tok)
				}
			},
		},
		{
			name: "200_OK_replayed_send_request_no",
			setup: func(t *testing.T, e *env, c *wxpay.Client) {
				var err error
				if first, err = preSend(nil)(t.Context(), c); err != nil {
					t.Fatal(err)
				}
			},
			call: preSend(nil),
			check: func(t *testing.T, e *env, r *R) {
				if r.Token != first.Token {
					t.Errorf("replay token %q, want the first %q", r.Token, first.Token)
				}
				sameRequestSeenTwice(sandbox.EndpointPreSendCouponBundle, true)(t, e)
			},
		},
		{
			// SeedBundleLimited's stock has a total budget of 3 sends.
			name: "400_INVALID_REQUEST_budget_exhausted",
			setup: func(t *testing.T, e *env, c *wxpay.Client) {
				for i := 1; i <= 3; i++ {
					if _, err := preSend(func(a *preSendArgs) {
						a.bundle, a.openid, a.no = sandbox.SeedBundleLimited, fmt.Sprintf("oUser_%04d", i), fmt.Sprintf("presend_%04d", i)
					})(t.Context(), c); err != nil {
						t.Fatal(err)
					}
				}
			},
			call: preSend(func(a *preSendArgs) {
				a.bundle, a.openid, a.no = sandbox.SeedBundleLimited, "oUser_0004", "presend_0004"
			}),
			status: 400, code: "INVALID_REQUEST", detail: "MAX_COUNT_REACHED",
		},
		{
			// SeedBundleMemberDay's large stock allows one coupon per user.
			name: "400_INVALID_REQUEST_per_user_limit",
			setup: func(t *testing.T, e *env, c *wxpay.Client) {
				if _, err := preSend(nil)(t.Context(), c); err != nil {
					t.Fatal(err)
				}
			},
			call:   preSend(func(a *preSendArgs) { a.no = "presend_0002" }),
			status: 400, code: "INVALID_REQUEST", detail: "MAX_COUNT_PER_USER_REACHED",
		},
		{
			name: "400_INVALID_REQUEST_stock_not_sending", status: 400, code: "INVALID_REQUEST", detail: "STOCK_NOT_SENDING",
			call: preSend(func(a *preSendArgs) { a.bundle = sandbox.SeedBundlePaused }),
		},
		{
			name: "400_INVALID_REQUEST_openid", status: 400, code: "INVALID_REQUEST", detail: "openid",
			call: preSend(func(a *preSendArgs) { a.openid = "o.bad.openid" }),
		},
		{
			name: "400_INVALID_REQUEST_send_request_no_reused",
			setup: func(t *testing.T, e *env, c *wxpay.Client) {
				if _, err := preSend(nil)(t.Context(), c); err != nil {
					t.Fatal(err)
				}
			},
			call:   preSend(func(a *preSendArgs) { a.attach = "changed" }),
			status: 400, code: "INVALID_REQUEST", detail: "send_request_no",
			check: func(t *testing.T, e *env, _ *R) {
				sameRequestSeenTwice(sandbox.EndpointPreSendCouponBundle, false)(t, e)
			},
		},
		{
			name: "400_PARAM_ERROR_appid", status: 400, code: "PARAM_ERROR", detail: "appid",
			call: preSend(func(a *preSendArgs) { a.appid = "not-an-appid" }),
		},
		{
			name: "400_PARAM_ERROR_send_request_no", status: 400, code: "PARAM_ERROR", detail: "send_request_no",
			call: preSend(func(a *preSendArgs) { a.no = "abc" }),
		},
		{
			name: "400_PARAM_ERROR_attach_too_long", status: 400, code: "PARAM_ERROR", detail: "attach",
			call: preSend(func(a *preSendArgs) { a.attach = strings.Repeat("附", 151) }),
		},
		{
			name: "404_NOT_FOUND_product_coupon", status: 404, code: "NOT_FOUND",
			call: preSend(func(a *preSendArgs) { a.pc = "1999999999" }),
		},
		{
			name: "404_NOT_FOUND_stock_bundle", status: 404, code: "NOT_FOUND",
			call: preSend(func(a *preSendArgs) { a.bundle = "1000000002999" }),
		},
	}
	cases = append(cases, commonCases(preSend(nil), "RATELIMIT_EXCEEDED", true)...)
	runCases(t, func(r *R) wxpay.Meta { return r.Meta }, cases)
}

func getPCStock(pc, stock string) func(context.Context, *wxpay.Client) (*wxpay.ProductCouponStock, error) {
	return func(ctx context.Context, c *wxpay.Client) (*wxpay.ProductCouponStock, error) {
		return c.GetProductCouponStock(ctx, pc, stock)
	}
}

func testGetProductCouponStock(t *testing.T) {
	type R = wxpay.ProductCouponStock
	const pc = sandbox.SeedProductCoupon
	cases := []clientCase[R]{
		{
			name: "200_OK", call: getPCStock(pc, sandbox.SeedStockSending),
			check: func(t *testing.T, e *env, r *R) {
				if r.ProductCouponID != pc || r.StockID != sandbox.SeedStockSending || r.State != wxpay.StockSending || r.Remark != "春季拿铁兑换批次" {
					t.Errorf("stock %s/%s %s %q", r.ProductCouponID, r.StockID, r.State, r.Remark)
				}
				if r.CouponCodeMode != wxpay.CouponCodeModeUpload || r.CouponCodeCountInfo == nil ||
					*r.CouponCodeCountInfo != (wxpay.CouponCodeCountInfo{TotalCount: 8, AvailableCount: 2}) {
					t.Errorf("code mode %s, counts %+v", r.CouponCodeMode, r.CouponCodeCountInfo)
				}
				if r.SentCountInfo.TotalCount != 6 || r.StockSendRule != (wxpay.StockSendRule{MaxCount: 10_000_000, MaxCountPerDay: 100_000, MaxCountPerUser: 5}) {
					t.Errorf("sent %+v, send rule %+v", r.SentCountInfo, r.StockSendRule)
				}
				if r.SingleUsageRule == nil || r.SingleUsageRule.ExchangeCoupon == nil || r.SingleUsageRule.ExchangeCoupon.ExchangePrice != 100 {
					t.Errorf("single usage rule %+v", r.SingleUsageRule)
				}
				if r.DeactivateTime != "" || r.DeactivateRequestNo != "" || len(r.Raw) == 0 {
					t.Errorf("deactivate fields on a SENDING stock, or no raw body: %+v", r)
				}
			},
		},
		{
			name: "200_OK_WECHATPAY_mode", call: getPCStock(pc, sandbox.SeedStockWechatPayMode),
			check: func(t *testing.T, e *env, r *R) {
				if r.CouponCodeMode != wxpay.CouponCodeModeWechatpay || r.CouponCodeCountInfo != nil {
					t.Errorf("code mode %s, counts %+v", r.CouponCodeMode, r.CouponCodeCountInfo)
				}
			},
		},
		{
			name: "200_OK_STOPPED", call: getPCStock(pc, sandbox.SeedStockStopped),
			check: func(t *testing.T, e *env, r *R) {
				if r.State != wxpay.StockStopped {
					t.Errorf("state %s", r.State)
				}
			},
		},
		{
			name: "200_OK_DEACTIVATED", call: getPCStock(pc, sandbox.SeedStockDeactivated),
			check: func(t *testing.T, e *env, r *R) {
				if r.State != wxpay.StockDeactivated || r.DeactivateRequestNo != "DEMO_DEACTIVATE_0001" || r.DeactivateTime == "" || r.DeactivateReason == "" {
					t.Errorf("stock %+v", r)
				}
			},
		},
		{
			name: "404_NOT_FOUND_product_coupon", status: 404, code: "NOT_FOUND",
			call: getPCStock("1999999999", sandbox.SeedStockSending),
		},
		{
			name: "404_NOT_FOUND_stock", status: 404, code: "NOT_FOUND",
			call: getPCStock(pc, "1000000001999"),
		},
	}
	cases = append(cases, commonCases(getPCStock(pc, sandbox.SeedStockSending), "RATELIMIT_EXCEEDED", false)...)
	runCases(t, func(r *R) wxpay.Meta { return r.Meta }, cases)
}

func getFavor(stock string) func(context.Context, *wxpay.Client) (*wxpay.FavorStock, error) {
	return func(ctx context.Context, c *wxpay.Client) (*wxpay.FavorStock, error) {
		return c.GetFavorStock(ctx, stock)
	}
}

func testGetFavorStock(t *testing.T) {
	type R = wxpay.FavorStock
	cases := []clientCase[R]{
		{
			name: "200_OK", call: getFavor(sandbox.SeedFavorStock),
			check: func(t *testing.T, e *env, r *R) {
				if r.StockID != sandbox.SeedFavorStock || r.StockCreatorMchID != sandbox.MerchantID || r.StockName != "新客立减10元" ||
					r.Status != wxpay.FavorStockRunning || r.DistributedCoupons != 1234 || r.StockType != wxpay.FavorStockTypeNormal || r.NoCash {
					t.Errorf("stock %+v", r)
				}
				if r.Description != "新客首单满30元立减10元,每人限领1张。" {
					t.Errorf("description %q", r.Description)
				}
				u := r.StockUseRule
				if u == nil || u.MaxCoupons != 10_000 || u.MaxAmount != 100_000 || u.MaxCouponsPerUser != 1 ||
					u.FixedNormalCoupon == nil || *u.FixedNormalCoupon != (wxpay.FixedNormalCoupon{CouponAmount: 1000, TransactionMinimum: 3000}) {
					t.Errorf("stock_use_rule %+v", u)
				}
				if len(r.Raw) == 0 {
					t.Error("no raw body")
				}
			},
		},
		{
			name: "404_RESOURCE_NOT_EXISTS", status: 404, code: "RESOURCE_NOT_EXISTS",
			call: getFavor("1799999999"),
		},
	}
	cases = append(cases, commonCases(getFavor(sandbox.SeedFavorStock), "FREQUENCY_LIMITED", false)...)
	runCases(t, func(r *R) wxpay.Meta { return r.Meta }, cases)
}

func getBusifavor(stock string) func(context.Context, *wxpay.Client) (*wxpay.BusifavorStock, error) {
	return func(ctx context.Context, c *wxpay.Client) (*wxpay.BusifavorStock, error) {
		return c.GetBusifavorStock(ctx, stock)
	}
}

func testGetBusifavorStock(t *testing.T) {
	type R = wxpay.BusifavorStock
	cases := []clientCase[R]{
		{
			name: "200_OK", call: getBusifavor(sandbox.SeedBusifavorUpload),
			check: func(t *testing.T, e *env, r *R) {
				if r.StockID != sandbox.SeedBusifavorUpload || r.StockName != "周末满100减20" || r.BelongMerchant != sandbox.MerchantID ||
					r.StockState != wxpay.BusifavorStockRunning || r.CouponCodeMode != wxpay.BusifavorCodeModeUpload || r.StockType != "NORMAL" {
					t.Errorf("stock %+v", r)
				}
				if r.CouponCodeCount == nil || *r.CouponCodeCount != (wxpay.BusifavorCodeCount{}) {
					t.Errorf("coupon_code_count %+v, want zero counts", r.CouponCodeCount)
				}
				if r.StockSendRule == nil || r.StockSendRule.MaxCoupons != 5_000_000 || r.StockSendRule.MaxCouponsPerUser != 2 {
					t.Errorf("stock_send_rule %+v", r.StockSendRule)
				}
				if r.CouponUseRule == nil || r.CouponUseRule.FixedNormalCoupon == nil || r.CouponUseRule.FixedNormalCoupon.DiscountAmount != 2000 {
					t.Errorf("coupon_use_rule %+v", r.CouponUseRule)
				}
			},
		},
		{
			name: "200_OK_WECHATPAY_MODE", call: getBusifavor(sandbox.SeedBusifavorWechatPay),
			check: func(t *testing.T, e *env, r *R) {
				if r.CouponCodeMode != wxpay.BusifavorCodeModeWechatpay || r.CouponCodeCount != nil || r.StockType != "DISCOUNT" {
					t.Errorf("stock %+v", r)
				}
			},
		},
		{
			name: "404_RESOURCE_NOT_EXISTS", status: 404, code: "RESOURCE_NOT_EXISTS",
			call: getBusifavor("1265999999"),
		},
	}
	cases = append(cases, commonCases(getBusifavor(sandbox.SeedBusifavorUpload), "FREQUENCY_LIMITED", false)...)
	runCases(t, func(r *R) wxpay.Meta { return r.Meta }, cases)
}

// TestUploadTenThousandCodesUnderFaults is acceptance 4: with 30% of
// requests failing 500 and 10% 429, 10,000 codes go up in 50 requests of 200,
// each with a fixed request number, resent until it succeeds. The sandbox
// must have seen every request number only with identical bodies, and hold
// each code exactly once.
func TestUploadTenThousandCodesUnderFaults(t *testing.T) {
	const (
		total     = 10_000
		perBatch  = wxpay.MaxProductCouponCodesPerUpload
		batches   = total / perBatch
		failShare = 0.3
		slowShare = 0.1
		pc, stock = sandbox.SeedProductCoupon, sandbox.SeedStockSending
	)
	e := newEnv(t, func(o *sandbox.Options) {
		o.Rand = rand.New(rand.NewPCG(2026, 4))
		// The sandbox draws the 500 first and the 429 among the requests
		// left, so the throttle rate is scaled for 10% of all requests.
		o.Faults = sandbox.Faults{FailRate: failShare, ThrottleRate: slowShare / (1 - failShare)}
	})
	cfg := e.config()
	cfg.MaxAttempts = 2 // so that some calls give up and the caller resends
	c := e.client(t, cfg)
	seedCodes := stockInfo(t, e, sandbox.KindProductCoupon, stock).Codes

	wantNos := make([]string, 0, batches)
	resends := 0
	for b := range batches {
		req := wxpay.UploadProductCouponCodesRequest{OutRequestNo: fmt.Sprintf("acc4_batch_%03d", b), CodeList: make([]string, perBatch)}
		for i := range req.CodeList {
			req.CodeList[i] = fmt.Sprintf("ACC4-%05d", b*perBatch+i)
		}
		wantNos = append(wantNos, req.OutRequestNo)
		var reply *wxpay.UploadProductCouponCodesReply
		for try := 1; reply == nil; try++ {
			r, err := c.UploadProductCouponCodes(t.Context(), pc, stock, req)
			switch {
			case err == nil:
				reply = r
			case !wxpay.IsRetryable(err):
				t.Fatalf("batch %d: %v", b, err)
			case try == 50:
				t.Fatalf("batch %d still failing after %d calls: %v", b, try, err)
			default:
				resends++
			}
		}
		// Faulted requests change nothing, so the one that went through
		// stored the whole batch.
		if reply.TotalCount != perBatch || !slices.Equal(reply.SuccessCodeList, req.CodeList) || len(reply.AlreadyExistCodeList) != 0 {
			t.Fatalf("batch %d: total %d, %d stored, %d already there", b, reply.TotalCount, len(reply.SuccessCodeList), len(reply.AlreadyExistCodeList))
		}
	}

	requests := e.hits.Load()
	n500, n429, n200 := e.status(http.StatusInternalServerError), e.status(http.StatusTooManyRequests), e.status(http.StatusOK)
	t.Logf("%d requests: %d×200, %d×500, %d×429; %d calls resent by the caller", requests, n200, n500, n429, resends)
	if n200 != batches || int64(n200+n500+n429) != requests {
		t.Errorf("replies: %d×200, %d×500, %d×429 of %d; want %d×200 and nothing else", n200, n500, n429, requests, batches)
	}
	if s := float64(n500) / float64(requests); s < 0.1 || s > 0.5 {
		t.Errorf("500 share %.2f, want about %.1f", s, failShare)
	}
	if s := float64(n429) / float64(requests); s < 0.02 || s > 0.25 {
		t.Errorf("429 share %.2f, want about %.1f", s, slowShare)
	}

	// Every request number, and only ours, each time with the same body.
	reqs := requestsOf(e, sandbox.EndpointUploadProductCouponCodes)
	var gotNos []string
	seen := 0
	for _, r := range reqs {
		gotNos = append(gotNos, r.RequestNo)
		seen += r.Count
		if !r.Identical {
			t.Errorf("request number %s was seen with different bodies", r.RequestNo)
		}
	}
	if !slices.Equal(gotNos, wantNos) {
		t.Errorf("request numbers seen %q, want %q", gotNos, wantNos)
	}
	if int64(seen) != requests {
		t.Errorf("request log counts %d requests, the server answered %d", seen, requests)
	}

	// The inventory holds the seed codes and each uploaded code once.
	info := stockInfo(t, e, sandbox.KindProductCoupon, stock)
	count := make(map[string]int, len(info.Codes))
	for _, code := range info.Codes {
		count[code]++
	}
	for code, n := range count {
		if n != 1 {
			t.Errorf("code %s held %d times", code, n)
		}
	}
	for i := range total {
		if code := fmt.Sprintf("ACC4-%05d", i); count[code] != 1 {
			t.Fatalf("code %s held %d times, want once", code, count[code])
		}
	}
	if want := int64(len(seedCodes) + total); info.TotalCount != want || int64(len(info.Codes)) != want {
		t.Errorf("inventory total_count %d, %d codes listed; want %d", info.TotalCount, len(info.Codes), want)
	}

	// The client reads the same count back.
	if err := e.sb.SetFaults(sandbox.Faults{}); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetProductCouponStock(t.Context(), pc, stock)
	if err != nil {
		t.Fatal(err)
	}
	if got.CouponCodeCountInfo == nil || got.CouponCodeCountInfo.TotalCount != int64(len(seedCodes)+total) {
		t.Errorf("coupon_code_count_info %+v", got.CouponCodeCountInfo)
	}
}

// deadURL returns a base URL at which nothing listens: a listener opened and
// closed, so connections to it are refused.
func deadURL(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		tb.Fatal(err)
	}
	return "http://" + addr
}

// TestFailoverToFallbackURL is acceptance 5: with the primary base URL
// refusing connections, every endpoint's call succeeds through the fallback,
// and later calls start there.
func TestFailoverToFallbackURL(t *testing.T) {
	cases := []struct {
		name      string
		endpoint  string // request log name, for endpoints with a request number
		call      func(ctx context.Context, c *wxpay.Client) (wxpay.Meta, error)
		requestNo string
	}{
		{"CreateFavorStock", sandbox.EndpointCreateFavorStock, func(ctx context.Context, c *wxpay.Client) (wxpay.Meta, error) {
			r, err := createFavor(nil)(ctx, c)
			if err != nil {
				return wxpay.Meta{}, err
			}
			return r.Meta, nil
		}, "1230000109_20250602_0001"},
		{"UploadBusifavorCodes", sandbox.EndpointUploadBusifavorCodes, func(ctx context.Context, c *wxpay.Client) (wxpay.Meta, error) {
			r, err := uploadBusifavor(sandbox.SeedBusifavorUpload, "bf_failover_1", "BF-FAILOVER-1")(ctx, c)
			if err != nil {
				return wxpay.Meta{}, err
			}
			return r.Meta, nil
		}, "bf_failover_1"},
		{"UploadProductCouponCodes", sandbox.EndpointUploadProductCouponCodes, func(ctx context.Context, c *wxpay.Client) (wxpay.Meta, error) {
			r, err := uploadPC(sandbox.SeedProductCoupon, sandbox.SeedStockSending, "pc_failover_1", "", "PC-FAILOVER-1")(ctx, c)
			if err != nil {
				return wxpay.Meta{}, err
			}
			return r.Meta, nil
		}, "pc_failover_1"},
		{"Deactivate", sandbox.EndpointDeactivateStock, func(ctx context.Context, c *wxpay.Client) (wxpay.Meta, error) {
			r, err := deactivate(sandbox.SeedProductCoupon, sandbox.SeedStockPaused, "deact_failover_1", "门店活动取消")(ctx, c)
			if err != nil {
				return wxpay.Meta{}, err
			}
			return r.Meta, nil
		}, "deact_failover_1"},
		{"PreSend", sandbox.EndpointPreSendCouponBundle, func(ctx context.Context, c *wxpay.Client) (wxpay.Meta, error) {
			r, err := preSend(nil)(ctx, c)
			if err != nil {
				return wxpay.Meta{}, err
			}
			return r.Meta, nil
		}, "presend_0001"},
		{"GetProductCouponStock", "", func(ctx context.Context, c *wxpay.Client) (wxpay.Meta, error) {
			r, err := getPCStock(sandbox.SeedProductCoupon, sandbox.SeedStockSending)(ctx, c)
			if err != nil {
				return wxpay.Meta{}, err
			}
			return r.Meta, nil
		}, ""},
		{"GetFavorStock", "", func(ctx context.Context, c *wxpay.Client) (wxpay.Meta, error) {
			r, err := getFavor(sandbox.SeedFavorStock)(ctx, c)
			if err != nil {
				return wxpay.Meta{}, err
			}
			return r.Meta, nil
		}, ""},
		{"GetBusifavorStock", "", func(ctx context.Context, c *wxpay.Client) (wxpay.Meta, error) {
			r, err := getBusifavor(sandbox.SeedBusifavorUpload)(ctx, c)
			if err != nil {
				return wxpay.Meta{}, err
			}
			return r.Meta, nil
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			cfg := e.config()
			cfg.BaseURL = deadURL(t)
			cfg.FallbackURL = e.srv.URL
			cfg.MaxAttempts = 4
			cfg.FailoverAfter = 2
			c := e.client(t, cfg)
			fallback := e.host(t)

			m, err := tc.call(t.Context(), c)
			if err != nil {
				t.Fatalf("call with the primary down: %v", err)
			}
			// Two refused connections on the primary, then the fallback.
			if m.Host != fallback || m.Attempts != cfg.FailoverAfter+1 || m.RequestID == "" {
				t.Errorf("Meta %+v, want host %s after %d attempts, with a Request-ID", m, fallback, cfg.FailoverAfter+1)
			}
			if n := e.hits.Load(); n != 1 {
				t.Errorf("the fallback got %d requests, want 1", n)
			}
			if tc.requestNo != "" {
				if reqs := requestsOf(e, tc.endpoint); len(reqs) != 1 || reqs[0].RequestNo != tc.requestNo || reqs[0].Count != 1 {
					t.Errorf("request log %+v, want %s once", reqs, tc.requestNo)
				}
			}

			// The failover is remembered: the next call starts on the fallback.
			m, err = tc.call(t.Context(), c)
			if err != nil {
				t.Fatalf("second call: %v", err)
			}
			if m.Host != fallback || m.Attempts != 1 {
				t.Errorf("second call Meta %+v, want host %s at the first attempt", m, fallback)
			}
		})
	}
}

// TestSandboxRateLimit is acceptance 6, sandbox side: a burst beyond the
// sandbox's own limit, from several goroutines with the client's limits off,
// gets 429 with the code the endpoint's document gives; the clock stands
// still, so exactly the limit gets through, and moving it on refills.
func TestSandboxRateLimit(t *testing.T) {
	type rlCase struct {
		name      string
		rateLimit float64       // Options.RateLimit; 0 is the documented limit
		allowed   int           // calls that get through on a clock standing still
		refill    time.Duration // clock advance that lets one more through
		code      string
		// call repeats the same request (same request number and body), so
		// every call that gets through answers 200.
		call func(ctx context.Context, c *wxpay.Client) error
	}
	errOnly := func(_ any, err error) error { return err }
	var (
		createFavorCall = func(ctx context.Context, c *wxpay.Client) error { return errOnly(createFavor(nil)(ctx, c)) }
		deactivateCall  = func(ctx context.Context, c *wxpay.Client) error {
			return errOnly(deactivate(sandbox.SeedProductCoupon, sandbox.SeedStockPaused, "deact_rl_0001", "门店活动取消")(ctx, c))
		}
		uploadBFCall = func(ctx context.Context, c *wxpay.Client) error {
			return errOnly(uploadBusifavor(sandbox.SeedBusifavorUpload, "bf_rl_0001", "BF-RL-1")(ctx, c))
		}
		uploadPCCall = func(ctx context.Context, c *wxpay.Client) error {
			return errOnly(uploadPC(sandbox.SeedProductCoupon, sandbox.SeedStockSending, "pc_rl_0001", "", "PC-RL-1")(ctx, c))
		}
		preSendCall = func(ctx context.Context, c *wxpay.Client) error { return errOnly(preSend(nil)(ctx, c)) }
		getPCCall   = func(ctx context.Context, c *wxpay.Client) error {
			return errOnly(getPCStock(sandbox.SeedProductCoupon, sandbox.SeedStockSending)(ctx, c))
		}
		getFavorCall = func(ctx context.Context, c *wxpay.Client) error {
			return errOnly(getFavor(sandbox.SeedFavorStock)(ctx, c))
		}
		getBFCall = func(ctx context.Context, c *wxpay.Client) error {
			return errOnly(getBusifavor(sandbox.SeedBusifavorUpload)(ctx, c))
		}
	)
	cases := []rlCase{
		// The documented limits (001: 20/s; 003: 60/min per merchant).
		{"Deactivate/429_RATELIMIT_EXCEEDED_documented_20_per_s", 0, 20, time.Second / 20, "RATELIMIT_EXCEEDED", deactivateCall},
		{"CreateFavorStock/429_FREQUENCY_LIMITED_documented_60_per_min", 0, 60, time.Minute / 60, "FREQUENCY_LIMITED", createFavorCall},
		// Options.RateLimit 5/s on every endpoint.
		{"CreateFavorStock/429_FREQUENCY_LIMITED_5_per_s", 5, 5, time.Second / 5, "FREQUENCY_LIMITED", createFavorCall},
		{"UploadBusifavorCodes/429_FREQUENCY_LIMITED_5_per_s", 5, 5, time.Second / 5, "FREQUENCY_LIMITED", uploadBFCall},
		{"UploadProductCouponCodes/429_RATELIMIT_EXCEEDED_5_per_s", 5, 5, time.Second / 5, "RATELIMIT_EXCEEDED", uploadPCCall},
		{"Deactivate/429_RATELIMIT_EXCEEDED_5_per_s", 5, 5, time.Second / 5, "RATELIMIT_EXCEEDED", deactivateCall},
		{"PreSend/429_RATELIMIT_EXCEEDED_5_per_s", 5, 5, time.Second / 5, "RATELIMIT_EXCEEDED", preSendCall},
		{"GetProductCouponStock/429_RATELIMIT_EXCEEDED_5_per_s", 5, 5, time.Second / 5, "RATELIMIT_EXCEEDED", getPCCall},
		{"GetFavorStock/429_FREQUENCY_LIMITED_5_per_s", 5, 5, time.Second / 5, "FREQUENCY_LIMITED", getFavorCall},
		{"GetBusifavorStock/429_FREQUENCY_LIMITED_5_per_s", 5, 5, time.Second / 5, "FREQUENCY_LIMITED", getBFCall},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(o *sandbox.Options) { o.RateLimit = tc.rateLimit })
			cfg := e.config()
			cfg.MaxAttempts = 1 // a 429 is reported, not retried
			c := e.client(t, cfg)

			const workers, extra = 4, 6
			calls := tc.allowed + extra
			jobs := make(chan struct{}, calls)
			for range calls {
				jobs <- struct{}{}
			}
			close(jobs)
			var ok, throttled atomic.Int64
			var wg sync.WaitGroup
			for range workers {
				wg.Go(func() {
					for range jobs {
						err := tc.call(t.Context(), c)
						if err == nil {
							ok.Add(1)
							continue
						}
						var ae *wxpay.APIError
						if errors.As(err, &ae) && ae.StatusCode == http.StatusTooManyRequests && ae.Code == tc.code && ae.Message != "" && ae.RequestID != "" {
							throttled.Add(1)
							continue
						}
						t.Errorf("want 200 or 429 %s, got %v", tc.code, err)
					}
				})
			}
			wg.Wait()
			if ok.Load() != int64(tc.allowed) || throttled.Load() != int64(extra) {
				t.Errorf("%d calls: %d succeeded, %d got 429 %s; want %d and %d", calls, ok.Load(), throttled.Load(), tc.code, tc.allowed, extra)
			}

			// Still limited while the clock stands still; one interval later
			// one more call goes through.
			if err := tc.call(t.Context(), c); !wxpay.IsCode(err, tc.code) {
				t.Errorf("call on the standing clock: %v, want 429 %s", err, tc.code)
			}
			if err := e.sb.Advance(tc.refill); err != nil {
				t.Fatal(err)
			}
			if err := tc.call(t.Context(), c); err != nil {
				t.Errorf("call after %v: %v", tc.refill, err)
			}
		})
	}
}
