package sandbox

import (
	"bytes"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"voucherconsole/internal/wxpay/signing"
)

// This file is a tiny signing client for the tests: it signs requests the
// way WeChat Pay's published rules say (through package signing) and checks
// reply signatures with the sandbox's platform key.

var (
	keysOnce sync.Once
	keysVal  *Keys
	keysErr  error
)

// sharedKeys generates one key set for the whole test binary; RSA key
// generation is too slow to repeat per test.
func sharedKeys(tb testing.TB) *Keys {
	tb.Helper()
	keysOnce.Do(func() { keysVal, keysErr = GenerateKeys() })
	if keysErr != nil {
		tb.Fatal(keysErr)
	}
	return keysVal
}

// t0 is the tests' start time: a Monday morning in Shanghai.
var t0 = time.Date(2025, 6, 2, 10, 0, 0, 0, cst)

type env struct {
	tb    testing.TB
	sb    *Sandbox
	srv   *httptest.Server
	clock *Clock
	creds Credentials
}

// newEnv starts a seeded sandbox on a manual clock behind an HTTP server.
func newEnv(tb testing.TB, mod func(*Options)) *env {
	tb.Helper()
	clk := NewClock(t0)
	opts := Options{Clock: clk, Seed: true, Keys: sharedKeys(tb), Rand: rand.New(rand.NewPCG(1, 2))}
	if mod != nil {
		mod(&opts)
	}
	sb, err := New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(sb.Handler())
	tb.Cleanup(func() {
		srv.Close()
		if err := sb.Close(); err != nil {
			tb.Error(err)
		}
	})
	return &env{tb: tb, sb: sb, srv: srv, clock: clk, creds: sb.Credentials()}
}

// in returns the env reporting to tb, for use inside subtests.
func (e *env) in(tb testing.TB) *env {
	c := *e
	c.tb = tb
	return &c
}

type caller int

const (
	asMerchant caller = iota
	asSP
	asBrand
)

// sig is what signs one request; options change it to make bad requests.
type sig struct {
	scheme     signing.Scheme
	id         string
	serial     string
	key        *rsa.PrivateKey
	ts         int64
	nonce      string
	pubKeyID   string
	signBody   []byte // when set, the body the signature covers instead of the one sent
	claimNonce string // when set, the nonce the header claims instead of the one signed
	noAuth     bool
	header     map[string]string
}

type opt func(*sig)

func (e *env) sigFor(c caller) sig {
	s := sig{
		scheme: signing.SchemeMerchant,
		ts:     e.sb.wireNow().Unix(),
		nonce:  signing.NewNonce(),
	}
	switch c {
	case asMerchant:
		s.id, s.serial, s.key, s.pubKeyID = e.creds.MchID, e.creds.MchSerial, e.creds.MchKey, e.creds.MchPubKeyID
	case asSP:
		s.id, s.serial, s.key, s.pubKeyID = e.creds.SPMchID, e.creds.SPSerial, e.creds.SPKey, e.creds.SPPubKeyID
	case asBrand:
		s.scheme = signing.SchemeBrand
		s.id, s.serial, s.key, s.pubKeyID = e.creds.BrandID, e.creds.BrandSerial, e.creds.BrandKey, e.creds.BrandPubKeyID
	}
	return s
}

type resp struct {
	status int
	header http.Header
	body   []byte
	sigErr error // reply signature check, for 2xx
	netErr error
}

func (r *resp) code() string {
	var e struct {
		Code string `json:"code"`
	}
	json.Unmarshal(r.body, &e)
	return e.Code
}

func (r *resp) message() string {
	var e struct {
		Message string `json:"message"`
	}
	json.Unmarshal(r.body, &e)
	return e.Message
}

func (r *resp) String() string {
	if r.netErr != nil {
		return "network error: " + r.netErr.Error()
	}
	return fmt.Sprintf("%d %s", r.status, r.body)
}

// bodyBytes renders a test body: raw bytes and strings as they are,
// anything else as JSON.
func bodyBytes(tb testing.TB, body any) []byte {
	switch b := body.(type) {
	case nil:
		return nil
	case []byte:
		return b
	case string:
		return []byte(b)
	}
	data, err := json.Marshal(body)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// call sends a signed request as c and checks a 2xx reply's signature.
func (e *env) call(method, path string, body any, c caller, opts ...opt) *resp {
	e.tb.Helper()
	data := bodyBytes(e.tb, body)
	req, err := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(data))
	if err != nil {
		e.tb.Fatal(err)
	}
	s := e.sigFor(c)
	for _, o := range opts {
		o(&s)
	}
	signed := data
	if s.signBody != nil {
		signed = s.signBody
	}
	if !s.noAuth {
		a, err := signing.SignRequest(s.scheme, s.id, s.serial, s.key, method, req.URL.RequestURI(), s.ts, s.nonce, signed)
		if err != nil {
			e.tb.Fatal(err)
		}
		if s.claimNonce != "" {
			a.Nonce = s.claimNonce
		}
		req.Header.Set("Authorization", a.String())
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "sandbox-test")
	if method != http.MethodGet {
		req.Header.Set("Content-Type", "application/json")
	}
	if s.pubKeyID != "" {
		req.Header.Set(signing.HeaderSerial, s.pubKeyID)
	}
	for k, v := range s.header {
		req.Header.Set(k, v)
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		return &resp{netErr: err}
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil {
		return &resp{netErr: err}
	}
	r := &resp{status: res.StatusCode, header: res.Header, body: out}
	if res.StatusCode/100 == 2 {
		r.sigErr = e.verifyReply(res.Header, out)
	}
	return r
}

// verifyReply checks a reply as the console's client must: serial, time
// window and signature with the WeChat Pay public key the serial names (one
// of the three accounts').
func (e *env) verifyReply(h http.Header, body []byte) error {
	keys := map[string]*rsa.PublicKey{e.creds.MchPubKeyID: e.creds.MchPubKey, e.creds.SPPubKeyID: e.creds.SPPubKey, e.creds.BrandPubKeyID: e.creds.BrandPubKey}
	pub := keys[h.Get(signing.HeaderSerial)]
	if pub == nil {
		return fmt.Errorf("Wechatpay-Serial %q names no account's public key", h.Get(signing.HeaderSerial))
	}
	ts := h.Get(signing.HeaderTimestamp)
	var sec int64
	if _, err := fmt.Sscan(ts, &sec); err != nil {
		return fmt.Errorf("Wechatpay-Timestamp %q", ts)
	}
	if d := e.sb.wireNow().Sub(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("reply timestamp %s off by %v", ts, d)
	}
	return signing.Verify(pub, signing.ReplyMessage(ts, h.Get(signing.HeaderNonce), body), h.Get(signing.HeaderSignature))
}

// ok asserts a 200 with a valid signature and decodes the body into v.
func (e *env) ok(r *resp, v any) {
	e.tb.Helper()
	if r.netErr != nil || r.status != http.StatusOK {
		e.tb.Fatalf("want 200, got %s", r)
	}
	if r.sigErr != nil {
		e.tb.Fatalf("reply signature: %v", r.sigErr)
	}
	if v != nil {
		if err := json.Unmarshal(r.body, v); err != nil {
			e.tb.Fatalf("decode %s: %v", r.body, err)
		}
	}
}

// fails asserts an error reply with the given status and code, carrying a
// Request-ID.
func (e *env) fails(r *resp, status int, code string) {
	e.tb.Helper()
	if r.netErr != nil {
		e.tb.Fatalf("want %d %s, got %s", status, code, r)
	}
	if r.status != status || r.code() != code {
		e.tb.Fatalf("want %d %s, got %s", status, code, r)
	}
	if r.header.Get("Request-ID") == "" {
		e.tb.Errorf("error reply without Request-ID")
	}
	var shape struct {
		Code    *string        `json:"code"`
		Message *string        `json:"message"`
		Detail  map[string]any `json:"detail"`
	}
	if err := json.Unmarshal(r.body, &shape); err != nil || shape.Code == nil || shape.Message == nil || *shape.Message == "" {
		e.tb.Errorf("error body %s is not {code, message, detail}", r.body)
	}
}

// get fetches an unsigned /_sandbox/ endpoint into v.
func (e *env) get(path string, v any) {
	e.tb.Helper()
	res, err := e.srv.Client().Get(e.srv.URL + path)
	if err != nil {
		e.tb.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		e.tb.Fatalf("GET %s: %d %s", path, res.StatusCode, data)
	}
	if err := json.Unmarshal(data, v); err != nil {
		e.tb.Fatalf("GET %s: %v", path, err)
	}
}

// post sends an unsigned JSON POST to a /_sandbox/ endpoint.
func (e *env) post(path, body string) (int, []byte) {
	e.tb.Helper()
	res, err := e.srv.Client().Post(e.srv.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		e.tb.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return res.StatusCode, data
}

func (e *env) stock(kind, id string) StockInfo {
	e.tb.Helper()
	for _, s := range e.sb.Stocks() {
		if s.Kind == kind && s.StockID == id {
			return s
		}
	}
	e.tb.Fatalf("no %s stock %s", kind, id)
	return StockInfo{}
}

func (e *env) request(endpoint, no string) (RequestInfo, bool) {
	for _, r := range e.sb.Requests() {
		if r.Endpoint == endpoint && r.RequestNo == no {
			return r, true
		}
	}
	return RequestInfo{}, false
}

// Paths.
func pcUploadPath(pc, stock string) string {
	return "/v3/marketing/partner/product-coupon/product-coupons/" + pc + "/stocks/" + stock + "/upload-coupon-codes"
}

func deactivatePath(pc, stock string) string {
	return "/brand/marketing/product-coupon/product-coupons/" + pc + "/stocks/" + stock + "/deactivate"
}

func pcStockPath(pc, stock string) string {
	return "/brand/marketing/product-coupon/product-coupons/" + pc + "/stocks/" + stock
}

func preSendPath(openid string) string {
	return "/brand/marketing/product-coupon/users/" + openid + "/pre-send-coupon-bundle"
}

func bfUploadPath(stock string) string {
	return "/v3/marketing/busifavor/stocks/" + stock + "/couponcodes"
}

func bfStockPath(stock string) string { return "/v3/marketing/busifavor/stocks/" + stock }

func favorStockPath(stock, creator string) string {
	return "/v3/marketing/favor/stocks/" + stock + "?stock_creator_mchid=" + creator
}

const favorCreatePath = "/v3/marketing/favor/coupon-stocks"

// obj is a JSON object under construction.
type obj = map[string]any

func codes(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%06d", prefix, i)
	}
	return out
}
