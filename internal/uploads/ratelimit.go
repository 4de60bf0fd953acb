package uploads

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"voucherconsole/internal/database"
	"voucherconsole/internal/wxpay"
)

// RateLimiter spaces requests evenly across every console instance sharing
// the database: each request reserves the next free slot of its limit with
// one UPDATE … RETURNING on rate_limits and sleeps until the slot. Slots are
// on the database's clock (PostgreSQL's, shared by all instances), so the
// instances' own clocks need not agree. No two requests under one limit are
// closer than its interval, hence at most N fall in any window of Per.
type RateLimiter struct {
	DB *database.DB
	// Sleep waits (tests may replace it); nil is a timer honouring ctx.
	Sleep func(ctx context.Context, d time.Duration) error

	mu      sync.Mutex
	created map[string]bool
}

// Wait blocks until the caller may send one request under the limit name,
// whose requests are spaced by interval.
func (l *RateLimiter) Wait(ctx context.Context, name string, interval time.Duration) error {
	if interval <= 0 {
		return ctx.Err()
	}
	if err := l.ensure(ctx, name); err != nil {
		return err
	}
	var row struct{ NextAt, Now int64 }
	var err error
	iv := interval.Microseconds()
	if l.DB.Dialect == database.Postgres {
		err = l.DB.Gorm.WithContext(ctx).Raw(`UPDATE rate_limits
			SET next_at = GREATEST(next_at, CAST(EXTRACT(EPOCH FROM now()) * 1000000 AS BIGINT)) + ?
			WHERE name = ?
			RETURNING next_at, CAST(EXTRACT(EPOCH FROM now()) * 1000000 AS BIGINT) AS now`, iv, name).Scan(&row).Error
	} else {
		now := time.Now().UnixMicro()
		err = l.DB.Gorm.WithContext(ctx).Raw(`UPDATE rate_limits SET next_at = MAX(next_at, ?) + ? WHERE name = ?
			RETURNING next_at, ? AS now`, now, iv, name, now).Scan(&row).Error
	}
	if err != nil {
		return fmt.Errorf("rate limit %s: %w", name, err)
	}
	if row.NextAt == 0 {
		return fmt.Errorf("rate limit %s: no slot reserved", name)
	}
	wait := time.Duration(row.NextAt-iv-row.Now) * time.Microsecond
	if wait <= 0 {
		return nil
	}
	sleep := l.Sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	return sleep(ctx, wait)
}

func (l *RateLimiter) ensure(ctx context.Context, name string) error {
	l.mu.Lock()
	done := l.created[name]
	l.mu.Unlock()
	if done {
		return nil
	}
	if err := l.DB.Gorm.WithContext(ctx).Exec("INSERT INTO rate_limits (name, next_at) VALUES (?, 0) ON CONFLICT (name) DO NOTHING", name).Error; err != nil {
		return fmt.Errorf("rate limit %s: %w", name, err)
	}
	l.mu.Lock()
	if l.created == nil {
		l.created = map[string]bool{}
	}
	l.created[name] = true
	l.mu.Unlock()
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Rate limit names of the two upload endpoints.
const (
	LimitProductCouponUpload = "wxpay.UploadProductCouponCodes"
	LimitBusifavorUpload     = "wxpay.UploadBusifavorCodes"
)

// limitedTransport makes every HTTP attempt of an upload call, the client's
// retries included, wait for a slot of the shared limit, so that the rate
// holds for requests as WeChat Pay counts them.
type limitedTransport struct {
	base     http.RoundTripper
	lim      *RateLimiter
	interval map[string]time.Duration // by limit name
}

func (t *limitedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if name := limitOf(req); name != "" {
		if err := t.lim.Wait(req.Context(), name, t.interval[name]); err != nil {
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, err
		}
	}
	return t.base.RoundTrip(req)
}

func limitOf(req *http.Request) string {
	if req.Method != http.MethodPost {
		return ""
	}
	switch p := req.URL.Path; {
	case strings.HasSuffix(p, "/upload-coupon-codes"):
		return LimitProductCouponUpload
	case strings.HasPrefix(p, "/v3/marketing/busifavor/stocks/") && strings.HasSuffix(p, "/couponcodes"):
		return LimitBusifavorUpload
	}
	return ""
}

// NewUploadClient returns a WeChat Pay client for sending code batches: the
// configuration of cfg (identities, keys, hosts, retries), with the two upload
// endpoints held to rate (per console database, across instances) by lim
// instead of the client's per-process limiter. A zero rate keeps the
// endpoint's configured client-side rate.
func NewUploadClient(cfg wxpay.Config, lim *RateLimiter, rate wxpay.Rate) (*wxpay.Client, error) {
	return NewUploadClientVia(cfg, lim, rate, nil)
}

// NewUploadClientVia is NewUploadClient over the transport base (nil: a
// pooled HTTP transport); the in-process sandbox is reached through its own.
func NewUploadClientVia(cfg wxpay.Config, lim *RateLimiter, rate wxpay.Rate, base http.RoundTripper) (*wxpay.Client, error) {
	rates := map[wxpay.Endpoint]wxpay.Rate{}
	for e, r := range cfg.Rates {
		rates[e] = r
	}
	interval := map[string]time.Duration{}
	for name, e := range map[string]wxpay.Endpoint{
		LimitProductCouponUpload: wxpay.EndpointUploadProductCouponCodes,
		LimitBusifavorUpload:     wxpay.EndpointUploadBusifavorCodes,
	} {
		r := rate
		if r == (wxpay.Rate{}) {
			r = rates[e]
			if r == (wxpay.Rate{}) {
				r = wxpay.DefaultRate(e)
			}
		}
		if r.N > 0 && r.Per > 0 {
			interval[name] = r.Per / time.Duration(r.N)
		}
		rates[e] = wxpay.Rate{N: -1} // the shared limiter is in charge
	}
	cfg.Rates = rates
	if base == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 64
		base = t
	}
	return wxpay.NewClient(cfg, &http.Client{Transport: &limitedTransport{base: base, lim: lim, interval: interval}})
}
