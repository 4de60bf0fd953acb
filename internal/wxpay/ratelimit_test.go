package wxpay

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestDeactivateRateLimitFakeClock is the acceptance test: 200 deactivate
// calls from 16 goroutines take at least 10 s of client time, and no 1-s
// window sees more than 20 of them arrive at the server.
func TestDeactivateRateLimitFakeClock(t *testing.T) {
	const calls, workers = 200, 16
	start := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	clock := newSimClock(start, workers)
	srv := newFakeWX(t, clock.Now, func(i int, r recorded) reply { return reply{body: stockEntityJSON} })
	cfg := testConfig(srv.srv.URL)
	cfg.Now, cfg.Sleep = clock.Now, clock.Sleep
	cfg.Rates = nil // the documented defaults: deactivate 20/s
	c := newTestClient(t, cfg)

	jobs := make(chan int, calls)
	for i := range calls {
		jobs <- i
	}
	close(jobs)
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	wallStart := time.Now()
	for range workers {
		wg.Go(func() {
			defer clock.Done()
			for i := range jobs {
				_, err := c.DeactivateProductCouponStock(context.Background(), "200000001", fmt.Sprint(100000+i),
					DeactivateProductCouponStockRequest{OutRequestNo: fmt.Sprintf("deact_%06d", i), DeactivateReason: "test"})
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("call failed: %v", err)
	}

	elapsed := clock.Now().Sub(start)
	t.Logf("%d calls from %d goroutines: %s of client time (%s wall)", calls, workers, elapsed, time.Since(wallStart).Round(time.Millisecond))
	if elapsed < 10*time.Second {
		t.Errorf("client time %s, want at least 10s at 20/s", elapsed)
	}
	if elapsed > 10*time.Second+time.Second {
		t.Errorf("client time %s: the limiter is slower than 20/s", elapsed)
	}
	reqs := srv.requests()
	if len(reqs) != calls {
		t.Fatalf("server saw %d requests, want %d", len(reqs), calls)
	}
	at := make([]time.Time, len(reqs))
	for i, r := range reqs {
		at[i] = r.At
	}
	slices.SortFunc(at, time.Time.Compare)
	for i := 20; i < len(at); i++ {
		if w := at[i].Sub(at[i-20]); w < time.Second {
			t.Fatalf("requests %d and %d arrived %s apart: 21 requests within 1s", i-20, i, w)
		}
	}
}

// TestLimiterSlots checks the GCRA arithmetic directly: empty start,
// spacing, burst after idle, cancel.
func TestLimiterSlots(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := time.Millisecond

	l := newLimiter(PerSecond(20), t0)
	for k := 1; k <= 5; k++ {
		at, _ := l.reserve(t0)
		if want := t0.Add(time.Duration(k) * 50 * ms); !at.Equal(want) {
			t.Fatalf("slot %d at %s, want %s", k, at.Sub(t0), want.Sub(t0))
		}
	}
	// After a long idle spell, one request goes at once (burst 1) and the
	// next waits a full interval.
	t1 := t0.Add(time.Hour)
	if at, _ := l.reserve(t1); !at.Equal(t1) {
		t.Errorf("after idle: slot at +%s", at.Sub(t1))
	}
	if at, _ := l.reserve(t1); !at.Equal(t1.Add(50 * ms)) {
		t.Errorf("after idle, second: slot at +%s", at.Sub(t1))
	}

	// Burst 3: no initial burst, but three at once after idle.
	b := newLimiter(Rate{N: 10, Per: time.Second, Burst: 3}, t0)
	if at, _ := b.reserve(t0); !at.Equal(t0.Add(100 * ms)) {
		t.Errorf("burst limiter first slot at +%s", at.Sub(t0))
	}
	t2 := t0.Add(time.Minute)
	var got []time.Duration
	for range 5 {
		at, _ := b.reserve(t2)
		got = append(got, at.Sub(t2))
	}
	if want := []time.Duration{0, 0, 0, 100 * ms, 200 * ms}; !slices.Equal(got, want) {
		t.Errorf("burst slots %v, want %v", got, want)
	}

	// Cancel returns the last slot only.
	c := newLimiter(PerSecond(10), t0)
	_, b1 := c.reserve(t0)
	_, b2 := c.reserve(t0)
	c.cancel(b1) // not the last: wasted
	c.cancel(b2) // the last: returned
	if at, _ := c.reserve(t0); !at.Equal(t0.Add(200 * ms)) {
		t.Errorf("after cancel, slot at +%s, want +200ms", at.Sub(t0))
	}

	if newLimiter(Rate{N: -1}, t0) != nil {
		t.Error("negative N should mean no limiter")
	}
}

// TestLimiterWaitHonoursContext: a wait ends with the context, and a wait
// longer than the deadline is refused up front.
func TestLimiterWaitHonoursContext(t *testing.T) {
	clock := &manualClock{t: time.Now()}
	l := newLimiter(PerMinute(1), clock.Now())
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := l.wait(ctx, clock.Now, sleepContext)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	// The refused slot was given back: the next one is still a minute away.
	at, _ := l.reserve(clock.Now())
	if d := at.Sub(clock.Now()); d != time.Minute {
		t.Errorf("next slot in %s, want 1m", d)
	}

	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	if err := l.wait(cctx, clock.Now, sleepContext); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v", err)
	}
}

// TestLimitersKeyedByEndpointAndIdentity: endpoints and identities do not
// share slots.
func TestLimitersKeyedByEndpointAndIdentity(t *testing.T) {
	now := func() time.Time { return time.Unix(1700000000, 0) }
	ls := &limiters{rates: defaultRates(), m: map[string]*limiter{}}
	a := ls.get(EndpointDeactivateProductCouponStock, "brand-a", now)
	if ls.get(EndpointDeactivateProductCouponStock, "brand-a", now) != a {
		t.Error("same key, different limiter")
	}
	if ls.get(EndpointDeactivateProductCouponStock, "brand-b", now) == a {
		t.Error("brands share a limiter")
	}
	if ls.get(EndpointPreSendCouponBundle, "brand-a", now) == a {
		t.Error("endpoints share a limiter")
	}
	if got := ls.get(EndpointCreateFavorStock, "m", now).interval; got != time.Second {
		t.Errorf("create favor interval %s, want 1s (60/min)", got)
	}
	if got := ls.get(EndpointPreSendCouponBundle, "b", now).interval; got != 2*time.Millisecond {
		t.Errorf("pre-send interval %s, want 2ms (500/s)", got)
	}
}
