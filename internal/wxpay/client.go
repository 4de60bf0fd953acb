// Package wxpay is the console's WeChat Pay APIv3 client for voucher
// stocks: creating favor (代金券) stocks, uploading busifavor and
// product-coupon codes, deactivating product-coupon stocks, pre-sending
// coupon bundles, and reading stocks back.
//
// Every request is signed (package signing) under the scheme of the identity
// that owns the endpoint, and every 2xx reply is verified, before it is
// decoded, the way that identity's account verifies: with its WeChat Pay
// public key, or with the platform certificate the reply names. Calls are retried with exponential
// backoff and full jitter on 5xx, 429 and transport errors, resending the
// identical body (so the same request number), fail over to the fallback
// host, and are held to per-endpoint client-side rate limits.
package wxpay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"voucherconsole/internal/wxpay/signing"
)

// Endpoint names an API operation; it labels errors and keys rate limits.
type Endpoint string

// The endpoints the client calls.
const (
	EndpointCreateFavorStock             Endpoint = "CreateFavorStock"
	EndpointUploadBusifavorCodes         Endpoint = "UploadBusifavorCodes"
	EndpointUploadProductCouponCodes     Endpoint = "UploadProductCouponCodes"
	EndpointDeactivateProductCouponStock Endpoint = "DeactivateProductCouponStock"
	EndpointPreSendCouponBundle          Endpoint = "PreSendCouponBundle"
	EndpointGetProductCouponStock        Endpoint = "GetProductCouponStock"
	EndpointGetFavorStock                Endpoint = "GetFavorStock"
	EndpointGetBusifavorStock            Endpoint = "GetBusifavorStock"
)

// Meta describes how a successful call went; the console shows and keeps
// RequestID (WeChat Pay support asks for it).
type Meta struct {
	RequestID string // the final reply's Request-ID header
	Attempts  int    // HTTP requests made, retries included
	Host      string // host that gave the final reply
}

// maxReplyBytes bounds a reply body; the largest legitimate reply (a stock
// entity) is a few kilobytes.
const maxReplyBytes = 4 << 20

// Client calls WeChat Pay. It is safe for concurrent use; rate limits and
// failover state are shared by all goroutines using one Client.
type Client struct {
	cfg      Config
	hc       *http.Client
	hosts    [2]*url.URL // primary, fallback (nil if none)
	limits   *limiters
	newNonce func() string // signing.NewNonce; replaced by signature-vector tests
	accts    [3]*acct      // merchant, service provider, brand

	// failoverUntil (Unix nanoseconds on cfg.Now's clock) makes calls start
	// on the fallback host until then.
	failoverUntil atomic.Int64
}

// NewClient checks cfg and returns a Client. hc may be nil (a fresh
// http.Client); per-attempt timeouts come from cfg.Timeout, not hc.Timeout.
func NewClient(cfg Config, hc *http.Client) (*Client, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("wxpay: config: %w", err)
	}
	if hc == nil {
		hc = &http.Client{}
	}
	c := &Client{
		cfg:      cfg,
		hc:       hc,
		limits:   &limiters{rates: cfg.Rates, m: map[string]*limiter{}},
		newNonce: signing.NewNonce,
		accts:    newAccts(cfg),
	}
	var err error
	if c.hosts[0], err = url.Parse(strings.TrimSuffix(cfg.BaseURL, "/")); err != nil {
		return nil, fmt.Errorf("wxpay: BaseURL: %w", err)
	}
	if cfg.FallbackURL != "" && cfg.FallbackURL != cfg.BaseURL {
		if c.hosts[1], err = url.Parse(strings.TrimSuffix(cfg.FallbackURL, "/")); err != nil {
			return nil, fmt.Errorf("wxpay: FallbackURL: %w", err)
		}
	}
	return c, nil
}

// Config returns the client's configuration, defaults applied.
func (c *Client) Config() Config { return c.cfg }

// String describes the client without key material.
func (c *Client) String() string { return "wxpay.Client{" + c.cfg.String() + "}" }

func (c *Client) merchant() *acct        { return c.accts[0] }
func (c *Client) serviceProvider() *acct { return c.accts[1] }
func (c *Client) brand() *acct           { return c.accts[2] }

// request is one API call, fixed before the first attempt so that every
// attempt sends the same bytes.
type request struct {
	endpoint Endpoint
	method   string
	path     string // escaped path and query, from the API root
	who      *acct
	body     []byte     // nil for GET
	pre      *presigned // the first attempt's signature, made ahead; nil: sign when sending
	// serialRequired: the document requires Wechatpay-Serial (001, 004).
	serialRequired bool
	// verify, if set, replaces the reply verification (the certificate
	// download verifies with what it delivers).
	verify func(ctx context.Context, h http.Header, body []byte, seen time.Time) error
}

// presigned is a request's Authorization made before the call for one host.
type presigned struct {
	base     *url.URL
	auth     string
	signedAt time.Time
}

// presignedFor is how long a signature made ahead is used; WeChat Pay
// accepts a timestamp up to five minutes off, and a call held up longer
// than this is signed afresh.
const presignedFor = time.Minute

// presign signs r's first attempt ahead of the call, for the host the call
// will start on.
func (c *Client) presign(r *request) error {
	base := c.hosts[c.startHost()]
	u, err := url.Parse(base.String() + r.path)
	if err != nil {
		return fmt.Errorf("wxpay %s: build request: %w", r.endpoint, err)
	}
	now := c.cfg.Now()
	auth, err := c.authorization(r, u.RequestURI(), now)
	if err != nil {
		return fmt.Errorf("wxpay %s: %w", r.endpoint, err)
	}
	r.pre = &presigned{base: base, auth: auth, signedAt: now}
	return nil
}

// authorization signs r for the request-target uri at now, with a fresh
// nonce.
func (c *Client) authorization(r *request, uri string, now time.Time) (string, error) {
	auth, err := signing.SignRequest(r.who.scheme, r.who.id, r.who.serial, r.who.key,
		r.method, uri, now.Unix(), c.newNonce(), r.body)
	if err != nil {
		return "", fmt.Errorf("sign request: %w", err)
	}
	return auth.String(), nil
}

// escapePath fills a path template's {name} segments with escaped values.
// Empty values are refused: they would produce "//" and a confusing 404.
func escapePath(template string, values ...string) (string, error) {
	var b strings.Builder
	rest := template
	for _, v := range values {
		i := strings.IndexByte(rest, '{')
		j := strings.IndexByte(rest, '}')
		if i < 0 || j < i {
			return "", fmt.Errorf("wxpay: path template %q has fewer parameters than values", template)
		}
		name := rest[i+1 : j]
		if strings.TrimSpace(v) == "" {
			return "", fmt.Errorf("%w: %s is empty", ErrInvalidArgument, name)
		}
		b.WriteString(rest[:i])
		b.WriteString(url.PathEscape(v))
		rest = rest[j+1:]
	}
	b.WriteString(rest)
	return b.String(), nil
}

func (c *Client) newRequest(e Endpoint, method string, who *acct, path string, payload any) (request, error) {
	r := request{endpoint: e, method: method, path: path, who: who,
		serialRequired: e == EndpointDeactivateProductCouponStock || e == EndpointPreSendCouponBundle}
	if who.id == "" || who.serial == "" || who.key == nil {
		return r, fmt.Errorf("%w: %s needs the %s", ErrNotConfigured, e, who.what)
	}
	if payload != nil {
		// Marshalled once: retries resend these exact bytes, so WeChat Pay
		// sees the same request number and treats the retry idempotently.
		b, err := json.Marshal(payload)
		if err != nil {
			return r, fmt.Errorf("wxpay %s: encode request: %w", e, err)
		}
		r.body = b
	}
	return r, nil
}

// do runs the call: rate limit, sign, send, retry, fail over, verify, and
// decode the reply into out. It returns the verified reply body too. The
// outcome is noted in the shared State.
func (c *Client) do(ctx context.Context, r request, out any) (Meta, []byte, error) {
	meta, body, err := c.attempts(ctx, r, out)
	c.cfg.State.note(r.endpoint, meta, err, c.cfg.Now())
	return meta, body, err
}

func (c *Client) attempts(ctx context.Context, r request, out any) (Meta, []byte, error) {
	var meta Meta
	lim := c.limits.get(r.endpoint, r.who.id, c.cfg.Now)
	host := c.startHost()
	failures := 0 // consecutive network errors / 5xx on the current host
	var last error
	// A signature made ahead serves the first attempt only: a retry is a
	// new request on the wire, with its own timestamp and nonce.
	pre := r.pre
	r.pre = nil
	for attempt := 1; attempt <= c.cfg.MaxAttempts; attempt++ {
		if attempt > 1 {
			delay := c.backoff(attempt, last)
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < delay {
				return meta, nil, fmt.Errorf("%w (giving up after %d attempts: deadline before next retry)", last, meta.Attempts)
			}
			if err := c.cfg.Sleep(ctx, delay); err != nil {
				return meta, nil, fmt.Errorf("wxpay %s: %w (after %d attempts; last error: %v)", r.endpoint, err, meta.Attempts, last)
			}
		}
		// Every attempt, retries included, spends one slot: the server
		// counts requests, not calls.
		if err := lim.wait(ctx, c.cfg.Now, c.cfg.Sleep); err != nil {
			if last != nil {
				return meta, nil, fmt.Errorf("wxpay %s: %w (after %d attempts; last error: %v)", r.endpoint, err, meta.Attempts, last)
			}
			return meta, nil, fmt.Errorf("wxpay %s: %w", r.endpoint, err)
		}
		base := c.hosts[host]
		meta.Attempts = attempt
		meta.Host = base.Host
		attemptReq := r
		if attempt == 1 && pre != nil && pre.base == base && c.cfg.Now().Sub(pre.signedAt) < presignedFor {
			attemptReq.pre = pre
		}
		status, header, body, err := c.send(ctx, base, attemptReq)
		if err != nil {
			last = &TransportError{Endpoint: string(r.endpoint), Host: base.Host, Err: err}
			if ctx.Err() != nil {
				// The caller's deadline or cancellation, not the host's fault.
				return meta, nil, last
			}
			failures++
		} else {
			meta.RequestID = header.Get(signing.HeaderRequestID)
			if status >= 200 && status < 300 {
				seen := c.cfg.Now()
				verify := r.verify
				if verify == nil {
					verify = func(ctx context.Context, h http.Header, body []byte, seen time.Time) error {
						return c.verifyReply(ctx, r.who, h, body, seen, nil)
					}
				}
				if err := verify(ctx, header, body, seen); err != nil {
					// Not retried: a forged or replayed reply will not get
					// better, and a genuine one means the call went through.
					return meta, nil, &ReplyError{Endpoint: string(r.endpoint), Host: base.Host, RequestID: meta.RequestID, Err: err}
				}
				// A signed reply without a body (204) has nothing to decode.
				if out != nil && len(body) > 0 {
					if err := json.Unmarshal(body, out); err != nil {
						return meta, nil, &ReplyError{Endpoint: string(r.endpoint), Host: base.Host, RequestID: meta.RequestID, Err: fmt.Errorf("decode reply: %w", err)}
					}
				}
				return meta, body, nil
			}
			apiErr := newAPIError(r.endpoint, status, header, body)
			if !retryableStatus(status) {
				return meta, nil, apiErr
			}
			last = apiErr
			if status >= 500 {
				failures++
			} else {
				failures = 0 // 429: the host is up, just busy
			}
		}
		if failures >= c.cfg.FailoverAfter && c.hosts[1] != nil {
			host = 1 - host
			failures = 0
			c.noteFailover(host)
		}
	}
	return meta, nil, fmt.Errorf("%w (after %d attempts)", last, meta.Attempts)
}

// send makes one attempt and reads the whole reply.
func (c *Client) send(ctx context.Context, base *url.URL, r request) (int, http.Header, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, base.String()+r.path, body)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("build request: %w", err)
	}
	// Sign exactly the request-target net/http will put on the wire (any
	// path prefix of BaseURL included), with a fresh timestamp and nonce —
	// unless the attempt was signed ahead, for this host.
	auth := ""
	if r.pre != nil {
		auth = r.pre.auth
	} else if auth, err = c.authorization(&r, req.URL.RequestURI(), c.cfg.Now()); err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	serial, err := c.requestSerial(ctx, &r)
	if err != nil {
		return 0, nil, nil, err
	}
	if serial != "" {
		req.Header.Set(signing.HeaderSerial, serial)
	}

	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, nil, stripURL(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes+1))
	if err != nil {
		// Connection dropped or timed out mid-reply.
		return 0, nil, nil, fmt.Errorf("read reply (HTTP %d): %w", resp.StatusCode, err)
	}
	if len(data) > maxReplyBytes {
		return 0, nil, nil, fmt.Errorf("reply larger than %d bytes", maxReplyBytes)
	}
	return resp.StatusCode, resp.Header, data, nil
}

// stripURL drops net/http's "Post \"https://…\":" prefix: the host is in
// TransportError already and path parameters (an openid) need not be in logs.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// backoff is the wait before attempt n (n ≥ 2): full jitter over an
// exponentially growing cap, so that many clients retrying at once spread
// out. A 429's Retry-After, if any, is honoured up to BackoffMax.
func (c *Client) backoff(attempt int, last error) time.Duration {
	capd := c.cfg.BackoffBase
	for i := 2; i < attempt && capd < c.cfg.BackoffMax; i++ {
		capd *= 2
	}
	capd = min(capd, c.cfg.BackoffMax)
	d := time.Duration(rand.Int64N(int64(capd) + 1))
	var ae *APIError
	if errors.As(last, &ae) && ae.StatusCode == http.StatusTooManyRequests && ae.retryAfter > 0 {
		d = max(d, min(ae.retryAfter, c.cfg.BackoffMax))
	}
	return d
}

// startHost picks the host a call starts on: the fallback while a recent
// failover is remembered.
func (c *Client) startHost() int {
	if c.hosts[1] != nil && c.cfg.Now().UnixNano() < c.failoverUntil.Load() {
		return 1
	}
	return 0
}

func (c *Client) noteFailover(to int) {
	if to == 1 {
		c.failoverUntil.Store(c.cfg.Now().Add(c.cfg.FailoverHold).UnixNano())
	} else {
		c.failoverUntil.Store(0) // the fallback failed too: go back to the primary
	}
}

func parseRetryAfter(h http.Header) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	return 0
}
