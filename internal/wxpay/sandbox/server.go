package sandbox

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"voucherconsole/internal/wxpay/signing"
)

// The endpoints, named by method and documented path. /_sandbox/requests
// names them so.
const (
	EndpointCreateFavorStock         = "POST /v3/marketing/favor/coupon-stocks"
	EndpointUploadBusifavorCodes     = "POST /v3/marketing/busifavor/stocks/{stock_id}/couponcodes"
	EndpointUploadProductCouponCodes = "POST /v3/marketing/partner/product-coupon/product-coupons/{product_coupon_id}/stocks/{stock_id}/upload-coupon-codes"
	EndpointDeactivateStock          = "POST /brand/marketing/product-coupon/product-coupons/{product_coupon_id}/stocks/{stock_id}/deactivate"
	EndpointPreSendCouponBundle      = "POST /brand/marketing/product-coupon/users/{openid}/pre-send-coupon-bundle"
	EndpointGetProductCouponStock    = "GET /brand/marketing/product-coupon/product-coupons/{product_coupon_id}/stocks/{stock_id}"
	EndpointGetFavorStock            = "GET /v3/marketing/favor/stocks/{stock_id}"
	EndpointGetBusifavorStock        = "GET /v3/marketing/busifavor/stocks/{stock_id}"
	EndpointCertificates             = "GET /v3/certificates"
)

// maxBodyBytes bounds a request body. The largest legitimate one, 200 codes
// of 40 characters, is under 10 KiB.
const maxBodyBytes = 1 << 20

// signatureWindow is how far a request's timestamp may be from the
// sandbox's time.
const signatureWindow = 5 * time.Minute

type callerKind int

const (
	callerMerchant callerKind = iota // WECHATPAY2-SHA256-RSA2048, the merchant
	callerSP                         // WECHATPAY2-SHA256-RSA2048, the service provider
	callerBrand                      // WECHATPAY-BRAND-SHA256-RSA2048, the brand
	callerAny                        // any of the three, each by its own scheme
)

func (s *Sandbox) party(k callerKind) *account {
	switch k {
	case callerSP:
		return s.ids.sp
	case callerBrand:
		return s.ids.brand
	}
	return s.ids.merchant
}

// endpoint describes one API endpoint and how the sandbox treats it.
type endpoint struct {
	name    string // EndpointXxx
	method  string
	pattern string // ServeMux pattern (the path of name)
	caller  callerKind
	// serialRequired: the document requires the Wechatpay-Serial header
	// (001 and 004: "the WeChat Pay public key ID of the brand_id").
	serialRequired bool

	limit           rate   // documented rate limit
	throttleCode    string // the document's 429 code
	throttleMessage string
	systemMessage   string // the document's 500 SYSTEM_ERROR wording

	// requestNoField names the body field holding the request number, if
	// the endpoint has one; conflict is the reply to a number reused with a
	// different request.
	requestNoField string
	conflict       func(no string) *apiError

	// handle runs with the sandbox's lock held; a nil error means 200 with
	// the returned value as JSON.
	handle func(s *Sandbox, c *call) (any, *apiError)
	// replay, if set, may refresh a bound reply before it is given again
	// (pre-send reissues an expired token).
	replay func(s *Sandbox, c *call, rec *requestRecord) *apiError
}

// call is one authenticated API request.
type call struct {
	r         *http.Request
	body      []byte
	callerID  string
	requestNo string
	fp        string // fingerprint of method, path, query and body
	now       time.Time
	rec       *requestRecord
	acct      *account // the caller's account
}

func conflictInvalidRequest(field string) func(string) *apiError {
	// Documents 000, 001, 003 and 004 require unique request numbers but do
	// not say what reusing one with a different request gets; the sandbox
	// answers 400 INVALID_REQUEST, the documents' code for a request that
	// breaks an API rule.
	return func(no string) *apiError {
		return &apiError{Status: http.StatusBadRequest, Code: "INVALID_REQUEST",
			Message: fmt.Sprintf("%s %q 已被使用,且本次请求参数与首次请求不一致", field, no),
			Detail:  map[string]any{"field": field, "value": no, "location": "body", "issue": "request number reused with different parameters"}}
	}
}

// endpoints describes the API; method and pattern are derived from name.
func (s *Sandbox) endpoints() []*endpoint {
	eps := s.endpointTable()
	for _, ep := range eps {
		ep.method, ep.pattern, _ = strings.Cut(ep.name, " ")
	}
	return eps
}

func (s *Sandbox) endpointTable() []*endpoint {
	const (
		rateLimited   = "RATELIMIT_EXCEEDED"
		freqLimited   = "FREQUENCY_LIMITED"
		sysError      = "系统异常,请稍后重试"
		rateLimitText = "请求超过接口频率限制"
	)
	return []*endpoint{
		{
			name: EndpointCreateFavorStock, caller: callerMerchant,
			limit:        rate{limit: 60, period: time.Minute}, // 003: 单个商户号调用频率60/min
			throttleCode: freqLimited, throttleMessage: "请求过于频繁", systemMessage: sysError,
			requestNoField: "out_request_no", conflict: conflictInvalidRequest("out_request_no"),
			handle: (*Sandbox).createFavorStock,
		},
		{
			name: EndpointUploadBusifavorCodes, caller: callerMerchant,
			throttleCode: freqLimited, throttleMessage: "频率限制", systemMessage: "系统失败",
			requestNoField: "upload_request_no",
			// Document 002 lists 400 RESOURCE_ALREADY_EXISTS for a reused
			// request number ("查看 out_request_no 字段是否重复使用").
			conflict: func(no string) *apiError {
				return &apiError{Status: http.StatusBadRequest, Code: "RESOURCE_ALREADY_EXISTS",
					Message: fmt.Sprintf("upload_request_no %q 已被使用,且本次请求参数与首次请求不一致", no),
					Detail:  map[string]any{"field": "upload_request_no", "value": no, "location": "body"}}
			},
			handle: (*Sandbox).uploadBusifavorCodes,
		},
		{
			name: EndpointUploadProductCouponCodes, caller: callerSP,
			throttleCode: rateLimited, throttleMessage: rateLimitText, systemMessage: sysError,
			requestNoField: "out_request_no", conflict: conflictInvalidRequest("out_request_no"),
			handle: (*Sandbox).uploadProductCouponCodes,
		},
		{
			name: EndpointDeactivateStock, caller: callerBrand, serialRequired: true,
			limit:        rate{limit: 20, period: time.Second}, // 001: 频率限制:20/s
			throttleCode: rateLimited, throttleMessage: rateLimitText, systemMessage: sysError,
			requestNoField: "out_request_no", conflict: conflictInvalidRequest("out_request_no"),
			handle: (*Sandbox).deactivateStock,
		},
		{
			name: EndpointPreSendCouponBundle, caller: callerBrand, serialRequired: true,
			limit:        rate{limit: 500, period: time.Second}, // 004: 500/秒(品牌ID维度)
			throttleCode: rateLimited, throttleMessage: rateLimitText, systemMessage: sysError,
			requestNoField: "send_request_no", conflict: conflictInvalidRequest("send_request_no"),
			handle: (*Sandbox).preSendCouponBundle,
			replay: (*Sandbox).replayPreSend,
		},
		{
			name: EndpointGetProductCouponStock, caller: callerBrand,
			throttleCode: rateLimited, throttleMessage: rateLimitText, systemMessage: sysError,
			handle: (*Sandbox).getProductCouponStock,
		},
		{
			name: EndpointGetFavorStock, caller: callerMerchant,
			throttleCode: freqLimited, throttleMessage: "请求过于频繁", systemMessage: sysError,
			handle: (*Sandbox).getFavorStock,
		},
		{
			name: EndpointGetBusifavorStock, caller: callerMerchant,
			throttleCode: freqLimited, throttleMessage: "频率限制", systemMessage: "系统失败",
			handle: (*Sandbox).getBusifavorStock,
		},
		{
			// Platform certificates (下载平台证书): any account, by its own
			// scheme; WeChat Pay publishes no limit and the sandbox sets none.
			name: EndpointCertificates, caller: callerAny,
			throttleCode: freqLimited, throttleMessage: "请求过于频繁", systemMessage: sysError,
			handle: (*Sandbox).certificates,
		},
	}
}

func (s *Sandbox) routes() http.Handler {
	mux := http.NewServeMux()
	for _, ep := range s.endpoints() {
		// The pattern has no method so that a wrong method gets WeChat's
		// JSON error rather than ServeMux's plain-text 405.
		mux.HandleFunc(ep.pattern, func(w http.ResponseWriter, r *http.Request) { s.serveAPI(ep, w, r) })
	}
	s.inspectionRoutes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{Status: http.StatusNotFound, Code: "NOT_FOUND", Message: "接口不存在: " + r.Method + " " + r.URL.Path})
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Every reply, errors included, carries a Request-ID, as WeChat
		// Pay's do; it is what a support ticket quotes.
		w.Header().Set(signing.HeaderRequestID, s.newRequestID())
		if !strings.HasPrefix(r.URL.Path, "/") {
			// "*" and the like: net/http's server refuses them before any
			// handler runs, but a handler called directly must too.
			writeError(w, &apiError{Status: http.StatusBadRequest, Code: "INVALID_REQUEST", Message: "请求路径不合法"})
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// serveAPI is the pipeline of every API call: read, authenticate, record the
// request number, inject faults, rate-limit, then handle (or replay) under
// the lock and send the signed reply.
func (s *Sandbox) serveAPI(ep *endpoint, w http.ResponseWriter, r *http.Request) {
	if r.Method != ep.method {
		w.Header().Set("Allow", ep.method)
		writeError(w, &apiError{Status: http.StatusMethodNotAllowed, Code: "INVALID_REQUEST",
			Message: "该接口仅支持 " + ep.method + " 方法"})
		return
	}
	s.countCall(ep.name)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		writeError(w, &apiError{Status: http.StatusBadRequest, Code: "INVALID_REQUEST", Message: "请求体读取失败或超过 1MB"})
		return
	}
	c, aerr := s.parseRequest(ep, r, body)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	s.record(ep, c)
	if s.injectFault(ep, w, r) {
		return
	}
	if !s.allow(ep, c) {
		writeError(w, &apiError{Status: http.StatusTooManyRequests, Code: ep.throttleCode, Message: ep.throttleMessage})
		return
	}
	status, reply, aerr := s.execute(ep, c)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	if ep.method != http.MethodGet {
		s.markDirty()
	}
	f := s.Faults()
	s.writeSigned(w, r, c.acct, status, reply, s.chance(f.BadSignatureRate), s.chance(f.UnknownSerialRate))
}

// parseRequest authenticates a request and works out its request number and
// fingerprint. It changes nothing.
func (s *Sandbox) parseRequest(ep *endpoint, r *http.Request, body []byte) (*call, *apiError) {
	acct, aerr := s.authenticate(ep, r, body)
	if aerr != nil {
		return nil, aerr
	}
	callerID := acct.id
	if ep.method != http.MethodGet {
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "application/json" {
			return nil, &apiError{Status: http.StatusBadRequest, Code: "INVALID_REQUEST",
				Message: "Content-Type 须为 application/json",
				Detail:  map[string]any{"field": "Content-Type", "location": "header"}}
		}
	}
	c := &call{r: r, body: body, callerID: callerID, acct: acct}
	if ep.requestNoField != "" {
		c.requestNo = requestNumber(ep.requestNoField, body)
	}
	c.fp = fingerprint(r, body)
	return c, nil
}

func signError(issue, field string) *apiError {
	return &apiError{Status: http.StatusUnauthorized, Code: "SIGN_ERROR", Message: "签名错误,请检查后再试: " + issue,
		Detail: map[string]any{"field": field, "location": "authorization", "issue": issue}}
}

// authenticate checks the Authorization header against the caller the
// endpoint takes, and the Wechatpay-Serial header where the document
// requires it, returning the caller's account.
func (s *Sandbox) authenticate(ep *endpoint, r *http.Request, body []byte) (*account, *apiError) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, signError("缺少 Authorization 请求头", "authorization")
	}
	a, err := signing.ParseAuthorization(h)
	if err != nil {
		return nil, signError("Authorization 请求头格式错误("+err.Error()+")", "authorization")
	}
	var p *account
	want := signing.SchemeMerchant
	if ep.caller == callerAny {
		want = a.Scheme
		for _, acct := range s.ids.all() {
			scheme := signing.SchemeMerchant
			if acct.kind == callerBrand {
				scheme = signing.SchemeBrand
			}
			if acct.id == a.ID && scheme == a.Scheme {
				p = acct
			}
		}
		if p == nil {
			return nil, signError(fmt.Sprintf("%s %q 无权调用该接口", want.IDField(), a.ID), want.IDField())
		}
	} else {
		p = s.party(ep.caller)
		if ep.caller == callerBrand {
			want = signing.SchemeBrand
		}
		if a.Scheme != want {
			return nil, signError("该接口须使用 "+string(want)+" 认证类型", "schema")
		}
		if a.ID != p.id {
			return nil, signError(fmt.Sprintf("%s %q 无权调用该接口", want.IDField(), a.ID), want.IDField())
		}
	}
	if a.Serial != p.serial {
		return nil, signError("serial_no 与 API 证书序列号不符", "serial_no")
	}
	ts := time.Unix(a.Timestamp, 0)
	if d := s.wireNow().Sub(ts); d > signatureWindow || d < -signatureWindow {
		return nil, signError("timestamp 与当前时间相差超过 5 分钟", "timestamp")
	}
	if ep.serialRequired {
		if got := r.Header.Get(signing.HeaderSerial); !s.acceptsSerial(p, got) {
			what := "微信支付公钥ID " + p.pubKeyID
			switch s.mode {
			case VerifyCertificate:
				what = "微信支付平台证书序列号"
			case VerifyBoth:
				what = "微信支付公钥ID " + p.pubKeyID + " 或平台证书序列号"
			}
			return nil, signError("Wechatpay-Serial 须为"+what, "Wechatpay-Serial")
		}
	}
	// The signed path is the request target as sent; r.URL.RequestURI()
	// re-encodes it, which differs only for unusual escapes, so either is
	// accepted.
	pub := &p.key.PublicKey
	targets := []string{r.URL.RequestURI()}
	if r.RequestURI != "" && r.RequestURI != targets[0] {
		targets = append(targets, r.RequestURI)
	}
	for _, target := range targets {
		if signing.Verify(pub, signing.RequestMessage(r.Method, target, a.Timestamp, a.Nonce, body), a.Signature) == nil {
			return p, nil
		}
	}
	return nil, signError("签名验证失败", "signature")
}

// requestNumber reads a string field from a JSON object body; it is "" when
// the body is not such an object. Like encoding/json, which the handlers
// decode with, it falls back to a key that differs only in case, so that the
// number recorded is the number handled.
func requestNumber(field string, body []byte) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return ""
	}
	raw, ok := m[field]
	if !ok {
		for k, v := range m {
			if strings.EqualFold(k, field) {
				raw = v
				break
			}
		}
	}
	var v string
	if json.Unmarshal(raw, &v) != nil {
		return ""
	}
	return v
}

// fingerprint identifies a request's content: method, path, query and body,
// the body in canonical form (keys sorted, no spacing) so that a client that
// re-encodes the same request is recognised as sending the same body.
func fingerprint(r *http.Request, body []byte) string {
	h := sha256.New()
	io.WriteString(h, r.Method+" "+r.URL.EscapedPath()+"?"+r.URL.RawQuery+"\n")
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err == nil && dec.InputOffset() == int64(len(bytes.TrimRight(body, " \t\r\n"))) {
		canon, _ := json.Marshal(v)
		h.Write(canon)
	} else {
		h.Write(body)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// record counts a request number in the request log.
func (s *Sandbox) record(ep *endpoint, c *call) {
	if c.requestNo == "" {
		return
	}
	s.mu.Lock()
	key := requestKey(ep.name, c.requestNo)
	rec := s.st.requests[key]
	if rec == nil {
		rec = &requestRecord{Endpoint: ep.name, RequestNo: c.requestNo, Identical: true, FirstFP: c.fp}
		s.st.requests[key] = rec
		s.st.Requests = append(s.st.Requests, rec)
	} else if rec.FirstFP != c.fp {
		rec.Identical = false
	}
	rec.Count++
	s.mu.Unlock()
	s.markDirty()
}

// injectFault applies the faults in force, reporting whether the call ended.
func (s *Sandbox) injectFault(ep *endpoint, w http.ResponseWriter, r *http.Request) bool {
	f := s.Faults()
	if s.chance(f.DropRate) {
		drop(w)
		return true
	}
	if f.Latency > 0 {
		t := time.NewTimer(f.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return true
		}
	}
	if s.chance(f.FailRate) {
		writeError(w, &apiError{Status: http.StatusInternalServerError, Code: "SYSTEM_ERROR", Message: ep.systemMessage})
		return true
	}
	if s.chance(f.ThrottleRate) {
		writeError(w, &apiError{Status: http.StatusTooManyRequests, Code: ep.throttleCode, Message: ep.throttleMessage})
		return true
	}
	return false
}

// drop closes the connection without a reply. A writer that cannot be
// hijacked (HTTP/2, a recorder) is aborted instead, which net/http turns into
// a reset stream or closed connection.
func drop(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	conn.Close()
}

func (s *Sandbox) allow(ep *endpoint, c *call) bool {
	r := ep.limit
	s.rateMu.RLock()
	if s.rateLimit > 0 {
		r = rate{limit: s.rateLimit, period: time.Second}
	}
	s.rateMu.RUnlock()
	return s.limiter.allow(ep.name+"\x00"+c.callerID, r, s.wireNow())
}

// execute handles a call, or replays the reply its request number already
// got, under the lock.
func (s *Sandbox) execute(ep *endpoint, c *call) (int, []byte, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.now = s.now()
	if c.requestNo != "" {
		c.rec = s.st.requests[requestKey(ep.name, c.requestNo)]
		if rec := c.rec; rec != nil && rec.BoundFP != "" {
			if rec.BoundFP != c.fp {
				return 0, nil, ep.conflict(c.requestNo)
			}
			if ep.replay != nil {
				if aerr := ep.replay(s, c, rec); aerr != nil {
					return 0, nil, aerr
				}
			}
			return rec.Status, rec.Reply, nil
		}
	}
	v, aerr := ep.handle(s, c)
	if aerr != nil {
		return 0, nil, aerr
	}
	reply, err := json.Marshal(v)
	if err != nil {
		return 0, nil, &apiError{Status: http.StatusInternalServerError, Code: "SYSTEM_ERROR", Message: ep.systemMessage}
	}
	if c.rec != nil {
		c.rec.BoundFP, c.rec.Status, c.rec.Reply = c.fp, http.StatusOK, reply
	}
	return http.StatusOK, reply, nil
}

// apiError is a WeChat Pay error reply.
type apiError struct {
	Status  int            `json:"-"`
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Detail  map[string]any `json:"detail,omitempty"`
}

func writeError(w http.ResponseWriter, e *apiError) {
	body, _ := json.Marshal(e)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(e.Status)
	w.Write(body)
}

// writeSigned sends a 2xx reply signed as account a's replies are in the
// sandbox's verify mode (see replySigner). With bad set the signature is
// made over a different message, so it is well-formed but does not verify;
// with foreign set it is made by a key the account does not know, under a
// serial that names none of its keys.
func (s *Sandbox) writeSigned(w http.ResponseWriter, r *http.Request, a *account, status int, body []byte, bad, foreign bool) {
	ts := strconv.FormatInt(s.wireNow().Unix(), 10)
	nonce := signing.NewNonce()
	msg := signing.ReplyMessage(ts, nonce, body)
	if bad {
		msg = append(msg, "tampered"...)
	}
	key, serial := s.replySigner(a, r)
	if foreign {
		// Another account's public key pair: a real key, just not this
		// account's, under a serial of neither form it knows.
		other := s.ids.merchant
		if a == other {
			other = s.ids.sp
		}
		key, serial = other.wxKey, "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"
	}
	sig, err := signing.Sign(key, msg)
	if err != nil {
		writeError(w, &apiError{Status: http.StatusInternalServerError, Code: "SYSTEM_ERROR", Message: "应答签名失败"})
		return
	}
	h := w.Header()
	if len(body) > 0 {
		h.Set("Content-Type", "application/json; charset=utf-8")
	}
	h.Set(signing.HeaderTimestamp, ts)
	h.Set(signing.HeaderNonce, nonce)
	h.Set(signing.HeaderSignature, sig)
	h.Set(signing.HeaderSerial, serial)
	w.WriteHeader(status)
	w.Write(body)
}
