package wxpay

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"voucherconsole/internal/wxpay/signing"
)

const (
	testMchID       = "1900000001"
	testMchSerial   = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
	testSPMchID     = "1900000099"
	testSPSerial    = "3775B6A45ACD588826D15E583A95F5DD2C08AA73"
	testBrandID     = "120344"
	testBrandSerial = "1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C"
	testPubKeyID    = "PUB_KEY_ID_0114232134912410000000000000"
)

type testKeySet struct {
	mch, sp, brand *rsa.PrivateKey
	wx             *rsa.PrivateKey // WeChat Pay's; its public half verifies replies
	other          *rsa.PrivateKey // signs forged replies
}

// testKeys generates the test keys once per test binary: 2048-bit RSA key
// generation is slow, more so under the race detector.
var testKeys = sync.OnceValue(func() testKeySet {
	gen := func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	}
	return testKeySet{mch: gen(), sp: gen(), brand: gen(), wx: gen(), other: gen()}
})

// testConfig is a complete Config pointing at base, with no failover, no
// real sleeping and rate limits lifted (tests that want them set them).
func testConfig(base string) Config {
	k := testKeys()
	unlimited := map[Endpoint]Rate{}
	for e := range defaultRates() {
		unlimited[e] = Rate{N: -1}
	}
	return Config{
		BaseURL:     base,
		MchID:       testMchID,
		MchSerial:   testMchSerial,
		MchKey:      k.mch,
		SPMchID:     testSPMchID,
		SPSerial:    testSPSerial,
		SPKey:       k.sp,
		BrandID:     testBrandID,
		BrandSerial: testBrandSerial,
		BrandKey:    k.brand,
		PubKeyID:    testPubKeyID,
		PubKey:      &k.wx.PublicKey,
		Timeout:     5 * time.Second,
		MaxAttempts: 4,
		Sleep:       func(ctx context.Context, d time.Duration) error { return ctx.Err() },
		Rates:       unlimited,
	}
}

func newTestClient(t testing.TB, cfg Config) *Client {
	t.Helper()
	c, err := NewClient(cfg, nil)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c
}

// signReply adds WeChat Pay's signature headers to a reply.
func signReply(key *rsa.PrivateKey, serial string, now time.Time, h http.Header, body []byte) {
	ts := strconv.FormatInt(now.Unix(), 10)
	nonce := signing.NewNonce()
	sig, err := signing.Sign(key, signing.ReplyMessage(ts, nonce, body))
	if err != nil {
		panic(err)
	}
	h.Set(signing.HeaderTimestamp, ts)
	h.Set(signing.HeaderNonce, nonce)
	h.Set(signing.HeaderSignature, sig)
	h.Set(signing.HeaderSerial, serial)
}

// recorded is a request as the fake server received it.
type recorded struct {
	Method string
	URI    string // request-target as received
	Header http.Header
	Body   []byte
	Auth   signing.Authorization
	At     time.Time // fake server's clock on arrival
}

// reply tells the fake server how to answer one request.
type reply struct {
	status    int
	body      string
	requestID string
	header    map[string]string
	signWith  *rsa.PrivateKey // default: WeChat Pay's test key
	serial    string          // default: testPubKeyID
	unsigned  bool
	drop      bool // send half a reply and close the connection
	hang      bool // never answer (until the client gives up)
}

// fakeWX is a minimal WeChat Pay over httptest: it checks each request's
// signature against the client's public keys (as WeChat Pay would, over the
// request-target it received), records it, and answers as told.
type fakeWX struct {
	srv     *httptest.Server
	now     func() time.Time
	respond func(i int, r recorded) reply

	mu   sync.Mutex
	reqs []recorded
}

func newFakeWX(t testing.TB, now func() time.Time, respond func(i int, r recorded) reply) *fakeWX {
	t.Helper()
	if now == nil {
		now = time.Now
	}
	f := &fakeWX{now: now, respond: respond}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeWX) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

func (f *fakeWX) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec := recorded{Method: r.Method, URI: r.RequestURI, Header: r.Header.Clone(), Body: body, At: f.now()}
	auth, err := signing.ParseAuthorization(r.Header.Get("Authorization"))
	if err == nil {
		rec.Auth = auth
		err = f.checkSignature(auth, r.Method, r.RequestURI, body)
	}
	f.mu.Lock()
	i := len(f.reqs)
	f.reqs = append(f.reqs, rec)
	f.mu.Unlock()
	if err != nil {
		w.Header().Set("Request-ID", "sign-error-"+strconv.Itoa(i))
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, `{"code":"SIGN_ERROR","message":%q}`, err.Error())
		return
	}
	rp := f.respond(i, rec)
	switch {
	case rp.hang:
		<-r.Context().Done()
		return
	case rp.drop:
		hj, ok := w.(http.Hijacker)
		if !ok {
			panic("no hijacker")
		}
		conn, buf, err := hj.Hijack()
		if err != nil {
			panic(err)
		}
		writeHalfReply(buf)
		conn.Close()
		return
	}
	if rp.status == 0 {
		rp.status = http.StatusOK
	}
	h := w.Header()
	if rp.requestID != "" {
		h.Set("Request-ID", rp.requestID)
	}
	for k, v := range rp.header {
		h.Set(k, v)
	}
	h.Set("Content-Type", "application/json")
	if rp.status >= 200 && rp.status < 300 && !rp.unsigned {
		key, serial := rp.signWith, rp.serial
		if key == nil {
			key = testKeys().wx
		}
		if serial == "" {
			serial = testPubKeyID
		}
		signReply(key, serial, f.now(), h, []byte(rp.body))
	}
	w.WriteHeader(rp.status)
	io.WriteString(w, rp.body)
}

func writeHalfReply(buf *bufio.ReadWriter) {
	buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"tok")
	buf.Flush()
}

func (f *fakeWX) checkSignature(a signing.Authorization, method, uri string, body []byte) error {
	k := testKeys()
	var pub *rsa.PublicKey
	switch {
	case a.Scheme == signing.SchemeMerchant && a.ID == testMchID && a.Serial == testMchSerial:
		pub = &k.mch.PublicKey
	case a.Scheme == signing.SchemeMerchant && a.ID == testSPMchID && a.Serial == testSPSerial:
		pub = &k.sp.PublicKey
	case a.Scheme == signing.SchemeBrand && a.ID == testBrandID && a.Serial == testBrandSerial:
		pub = &k.brand.PublicKey
	default:
		return fmt.Errorf("unknown identity %s %s %s", a.Scheme, a.ID, a.Serial)
	}
	return signing.Verify(pub, signing.RequestMessage(method, uri, a.Timestamp, a.Nonce, body), a.Signature)
}

// recordingSleep returns immediately and remembers the durations asked for.
type recordingSleep struct {
	mu sync.Mutex
	ds []time.Duration
}

func (s *recordingSleep) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.ds = append(s.ds, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *recordingSleep) durations() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.ds...)
}

// manualClock is a fake clock that moves only when told to.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// simClock is a discrete-event fake clock for concurrent code: Sleep blocks
// until simulated time reaches the sleeper's wake-up time, and simulated
// time jumps to the earliest wake-up only when every active goroutine is
// asleep, i.e. when nothing else could happen first. Elapsed simulated time
// is then exactly what the same goroutines would need on a real clock, with
// zero cost for network and CPU time.
type simClock struct {
	mu       sync.Mutex
	now      time.Time
	active   int // goroutines that may call Sleep
	sleepers map[*simSleeper]struct{}
}

type simSleeper struct {
	at   time.Time
	wake chan struct{}
}

func newSimClock(start time.Time, active int) *simClock {
	return &simClock{now: start, active: active, sleepers: map[*simSleeper]struct{}{}}
}

func (c *simClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *simClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	c.mu.Lock()
	s := &simSleeper{at: c.now.Add(d), wake: make(chan struct{})}
	c.sleepers[s] = struct{}{}
	c.advanceLocked()
	c.mu.Unlock()
	select {
	case <-s.wake:
		return nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.sleepers, s)
		c.advanceLocked()
		c.mu.Unlock()
		return ctx.Err()
	}
}

// Done marks one active goroutine finished.
func (c *simClock) Done() {
	c.mu.Lock()
	c.active--
	c.advanceLocked()
	c.mu.Unlock()
}

func (c *simClock) advanceLocked() {
	if c.active <= 0 || len(c.sleepers) < c.active {
		return
	}
	var next *simSleeper
	for s := range c.sleepers {
		if next == nil || s.at.Before(next.at) {
			next = s
		}
	}
	if next.at.After(c.now) {
		c.now = next.at
	}
	for s := range c.sleepers {
		if !s.at.After(c.now) {
			close(s.wake)
			delete(c.sleepers, s)
		}
	}
}
