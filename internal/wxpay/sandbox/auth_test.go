package sandbox

import (
	"crypto/rsa"
	"net/http"
	"testing"
	"time"

	"voucherconsole/internal/wxpay/signing"
)

func TestAuthentication(t *testing.T) {
	e := newEnv(t, nil)
	otherKey := sharedKeys(t).MerchantWxPay // a valid RSA key that is not the caller's

	// A read of a seeded stock per caller kind, so only the signature can
	// make it fail.
	type target struct {
		name   string
		path   string
		caller caller
	}
	targets := []target{
		{"merchant", bfStockPath(SeedBusifavorUpload), asMerchant},
		{"brand", pcStockPath(SeedProductCoupon, SeedStockSending), asBrand},
	}
	cases := []struct {
		name string
		opt  opt
	}{
		{"missing_authorization", func(s *sig) { s.noAuth = true }},
		{"malformed_authorization", func(s *sig) { s.header = map[string]string{"Authorization": "WECHATPAY2-SHA256-RSA2048 mchid=1"} }},
		{"wrong_key", func(s *sig) { s.key = otherKey }},
		{"wrong_serial", func(s *sig) { s.serial = "0123456789ABCDEF0123456789ABCDEF01234567" }},
		{"unknown_id", func(s *sig) { s.id = "1999999999" }},
		{"stale_timestamp", func(s *sig) { s.ts -= int64((6 * time.Minute).Seconds()) }},
		{"future_timestamp", func(s *sig) { s.ts += int64((6 * time.Minute).Seconds()) }},
		{"signature_over_other_body", func(s *sig) { s.signBody = []byte(`{"x":1}`) }},
		{"nonce_differs_from_signed", func(s *sig) { s.claimNonce = signing.NewNonce() }},
	}
	for _, tg := range targets {
		for _, tc := range cases {
			t.Run("SIGN_ERROR_"+tg.name+"_"+tc.name, func(t *testing.T) {
				e := e.in(t)
				r := e.call(http.MethodGet, tg.path, nil, tg.caller, tc.opt)
				e.fails(r, http.StatusUnauthorized, "SIGN_ERROR")
			})
		}
		t.Run("OK_"+tg.name, func(t *testing.T) {
			e := e.in(t)
			e.ok(e.call(http.MethodGet, tg.path, nil, tg.caller), nil)
		})
	}

	// Each endpoint takes one caller kind and scheme.
	wrongCaller := []struct {
		name   string
		method string
		path   string
		as     caller
	}{
		{"sp_on_merchant_endpoint", http.MethodGet, bfStockPath(SeedBusifavorUpload), asSP},
		{"merchant_on_sp_endpoint", http.MethodPost, pcUploadPath(SeedProductCoupon, SeedStockSending), asMerchant},
		{"merchant_scheme_on_brand_endpoint", http.MethodGet, pcStockPath(SeedProductCoupon, SeedStockSending), asMerchant},
		{"brand_scheme_on_merchant_endpoint", http.MethodGet, bfStockPath(SeedBusifavorUpload), asBrand},
	}
	for _, tc := range wrongCaller {
		t.Run("SIGN_ERROR_"+tc.name, func(t *testing.T) {
			e := e.in(t)
			e.fails(e.call(tc.method, tc.path, obj{"out_request_no": "REQ_000001"}, tc.as), http.StatusUnauthorized, "SIGN_ERROR")
		})
	}
}

func TestReplyHeaders(t *testing.T) {
	e := newEnv(t, nil)
	seen := map[string]bool{}
	for range 3 {
		for _, r := range []*resp{
			e.call(http.MethodGet, bfStockPath(SeedBusifavorUpload), nil, asMerchant),
			e.call(http.MethodGet, bfStockPath("404404"), nil, asMerchant),
			e.call(http.MethodGet, bfStockPath(SeedBusifavorUpload), nil, asSP),
		} {
			id := r.header.Get("Request-ID")
			if id == "" || seen[id] {
				t.Fatalf("Request-ID %q missing or repeated", id)
			}
			seen[id] = true
		}
	}
	r := e.call(http.MethodGet, bfStockPath(SeedBusifavorUpload), nil, asMerchant)
	e.ok(r, nil)
	if r.header.Get("Wechatpay-Serial") != e.creds.MchPubKeyID || r.header.Get("Wechatpay-Nonce") == "" {
		t.Errorf("reply headers %v", r.header)
	}
	// A reply signed by any other key must not verify.
	var other *rsa.PublicKey = &sharedKeys(t).Merchant.PublicKey
	msg := signing.ReplyMessage(r.header.Get("Wechatpay-Timestamp"), r.header.Get("Wechatpay-Nonce"), r.body)
	if signing.Verify(other, msg, r.header.Get("Wechatpay-Signature")) == nil {
		t.Error("reply verifies with a key other than the platform key")
	}
}

func TestWrongMethodAndUnknownPath(t *testing.T) {
	e := newEnv(t, nil)
	r := e.call(http.MethodGet, favorCreatePath, nil, asMerchant)
	if r.status != http.StatusMethodNotAllowed || r.header.Get("Request-ID") == "" {
		t.Errorf("GET on a POST endpoint: %s", r)
	}
	e.fails(e.call(http.MethodGet, "/v3/nothing/here", nil, asMerchant), http.StatusNotFound, "NOT_FOUND")
}

func TestContentType(t *testing.T) {
	e := newEnv(t, nil)
	r := e.call(http.MethodPost, deactivatePath(SeedProductCoupon, SeedStockSending),
		obj{"out_request_no": "DEACT_CT_01", "deactivate_reason": "x"}, asBrand,
		func(s *sig) { s.header = map[string]string{"Content-Type": "text/plain"} })
	e.fails(r, http.StatusBadRequest, "INVALID_REQUEST")
	if got := e.stock(KindProductCoupon, SeedStockSending).State; got != StateSending {
		t.Errorf("state %s after a refused request", got)
	}
}
