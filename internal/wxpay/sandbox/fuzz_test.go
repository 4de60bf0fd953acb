package sandbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"voucherconsole/internal/wxpay/signing"
)

// FuzzParseRequest feeds arbitrary requests to the sandbox's authentication
// and body parsing, and to its whole handler: nothing may panic, and every
// refusal must be a well-formed WeChat Pay error.
func FuzzParseRequest(f *testing.F) {
	sb, err := New(Options{Clock: NewClock(t0), Seed: true, Keys: sharedKeys(f)})
	if err != nil {
		f.Fatal(err)
	}
	eps := sb.endpoints()
	creds := sb.Credentials()
	ts := t0.Unix()
	seeds := []struct {
		ep     string
		target string
		as     caller
		body   string
	}{
		{EndpointCreateFavorStock, favorCreatePath, asMerchant, string(bodyBytes(f, validFavor("FUZZ_FAVOR_1")))},
		{EndpointUploadBusifavorCodes, bfUploadPath(SeedBusifavorUpload), asMerchant, `{"upload_request_no":"FUZZ_BF","coupon_code_list":["A 1","B|2"]}`},
		{EndpointUploadProductCouponCodes, pcUploadPath(SeedProductCoupon, SeedStockSending), asSP, `{"out_request_no":"FUZZ_PC_1","code_list":["X-1"],"brand_id":"` + BrandID + `"}`},
		{EndpointDeactivateStock, deactivatePath(SeedProductCoupon, SeedStockPaused), asBrand, `{"out_request_no":"FUZZ_DEACT","deactivate_reason":"原因"}`},
		{EndpointPreSendCouponBundle, preSendPath(DemoOpenID), asBrand, string(bodyBytes(f, preSendBody(SeedBundleMemberDay, "FUZZ_SEND_1")))},
		{EndpointGetProductCouponStock, pcStockPath(SeedProductCoupon, SeedStockSending), asBrand, ""},
		{EndpointGetFavorStock, favorStockPath(SeedFavorStock, MerchantID), asMerchant, ""},
		{EndpointGetBusifavorStock, bfStockPath(SeedBusifavorUpload), asMerchant, ""},
	}
	e := &env{tb: f, sb: sb, creds: creds}
	for _, s := range seeds {
		idx := 0
		for i, ep := range eps {
			if ep.name == s.ep {
				idx = i
			}
		}
		method, _, _ := strings.Cut(s.ep, " ")
		sg := e.sigFor(s.as)
		a, err := signing.SignRequest(sg.scheme, sg.id, sg.serial, sg.key, method, s.target, ts, "NONCE"+fmt.Sprint(idx), []byte(s.body))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(idx), method, s.target, a.String(), sg.pubKeyID, "application/json", []byte(s.body))
	}
	f.Add(uint8(0), "POST", "/v3/x?y=%zz", `WECHATPAY2-SHA256-RSA2048 mchid="1",nonce_str="",signature="=",timestamp="-9223372036854775808",serial_no="x"`, "", "", []byte(`{"a":`))
	f.Add(uint8(3), "POST", "/brand/../v3", `WECHATPAY-BRAND-SHA256-RSA2048 brand_id="120344",,`, "PUB", "application/json; charset=\x00", []byte("\xff\xfe"))

	handler := sb.Handler()
	f.Fuzz(func(t *testing.T, idx uint8, method, target, auth, serial, ctype string, body []byte) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		mk := func() *http.Request {
			r := &http.Request{Method: method, URL: u, RequestURI: target, Header: http.Header{},
				Body: io.NopCloser(bytes.NewReader(body)), Host: "api.mch.weixin.qq.com"}
			r.Header["Authorization"] = []string{auth}
			r.Header[signing.HeaderSerial] = []string{serial}
			r.Header["Content-Type"] = []string{ctype}
			return r
		}
		ep := eps[int(idx)%len(eps)]
		if c, aerr := sb.parseRequest(ep, mk(), body); (c == nil) == (aerr == nil) {
			t.Fatalf("parseRequest returned %v and %v", c, aerr)
		} else if aerr != nil {
			checkAPIError(t, aerr)
		}
		// The body parsers on their own, whatever the signature.
		openid := u.Path[strings.LastIndexByte(u.Path, '/')+1:]
		for _, parse := range []func() *apiError{
			func() *apiError { _, e := parseFavorCreate(body, t0, MerchantID); return e },
			func() *apiError { _, e := parseBusifavorUpload(body); return e },
			func() *apiError { _, e := parsePCUpload(body); return e },
			func() *apiError { _, e := parseDeactivate(body); return e },
			func() *apiError { _, e := parsePreSend(openid, body); return e },
		} {
			if aerr := parse(); aerr != nil {
				checkAPIError(t, aerr)
			}
		}
		fingerprint(mk(), body)
		requestNumber("out_request_no", body)

		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, mk())
		// API paths answer in WeChat's error format; the /_sandbox/ ones
		// are left to ServeMux for a wrong method.
		if rec.Code >= 400 && !strings.HasPrefix(u.Path, "/_sandbox/") {
			var e apiError
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Code == "" {
				t.Fatalf("%d reply %q is not a WeChat error", rec.Code, rec.Body.Bytes())
			}
		}
	})
}

func checkAPIError(t *testing.T, e *apiError) {
	t.Helper()
	if e.Status < 400 || e.Status > 599 || e.Code == "" || e.Message == "" {
		t.Fatalf("malformed error %+v", e)
	}
}

// BenchmarkUpload200 measures how many 200-code upload replies the sandbox
// gives per second over HTTP. The client's request signing is left out of
// the timing; the sandbox's signature check and reply signing are in it.
func BenchmarkUpload200(b *testing.B) {
	e := newEnv(b, nil)
	path := pcUploadPath(SeedProductCoupon, SeedStockSending)
	client := e.srv.Client()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		no := fmt.Sprintf("BENCH_%09d", i)
		body := bodyBytes(b, pcUpload(no, codes(no+"-", 200)))
		req, err := http.NewRequest(http.MethodPost, e.srv.URL+path, bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		s := e.sigFor(asSP)
		a, err := signing.SignRequest(s.scheme, s.id, s.serial, s.key, http.MethodPost, path, s.ts, s.nonce, body)
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Authorization", a.String())
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(signing.HeaderSerial, s.pubKeyID)
		b.StartTimer()

		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			b.Fatalf("status %d", res.StatusCode)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "replies/s")
	b.ReportMetric(float64(b.N*200)/b.Elapsed().Seconds(), "codes/s")
}
