package wxpay

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// The client-side rate limiter is a small GCRA ("virtual scheduling")
// limiter of our own rather than golang.org/x/time/rate, for two reasons:
//
//   - It is driven entirely by Config.Now and Config.Sleep, so a test can
//     prove the rate on a fake clock; x/time/rate's Wait uses real timers,
//     and its float token arithmetic drifts by nanoseconds, which matters
//     when a test asserts "200 calls at 20/s take at least 10 s".
//   - Slots are integer multiples of the interval, so the guarantee is
//     exact: with burst 1, no two requests are less than Per/N apart, hence
//     at most N requests fall in any window of length Per, which is what a
//     server counting in a sliding window (as WeChat Pay may) accepts.
//
// A new limiter starts "empty": its first slot is one interval after it is
// created. A console that has just restarted cannot know what its previous
// run sent in the last interval, and starting empty keeps a crash-looping
// console within the documented limit.
type limiter struct {
	interval time.Duration // Per / N
	tau      time.Duration // (burst-1)·interval: how far ahead of tat a request may go

	mu  sync.Mutex
	tat time.Time // theoretical arrival time of the next request

	// sent and delayed count requests let through and those that had to
	// wait for their slot, for the connection page's rate-limit use.
	sent, delayed int64
}

func newLimiter(r Rate, now time.Time) *limiter {
	if r.N <= 0 || r.Per <= 0 {
		return nil // unlimited (Config.validate refuses N == 0 in Rates)
	}
	burst := max(r.Burst, 1)
	l := &limiter{interval: r.Per / time.Duration(r.N)}
	l.tau = time.Duration(burst-1) * l.interval
	l.tat = now.Add(l.interval + l.tau) // empty bucket: first slot one interval away
	return l
}

// reserve books the next slot and returns when it starts and the state to
// hand to cancel.
func (l *limiter) reserve(now time.Time) (at, booked time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	at = l.tat.Add(-l.tau)
	if at.Before(now) {
		at = now
	}
	next := l.tat
	if next.Before(at) {
		next = at
	}
	l.tat = next.Add(l.interval)
	return at, l.tat
}

// cancel gives a slot back if no later slot was booked since; otherwise the
// slot is simply wasted, which errs on the side of sending less.
func (l *limiter) cancel(booked time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tat.Equal(booked) {
		l.tat = l.tat.Add(-l.interval)
	}
}

// wait blocks until the caller may send one request.
func (l *limiter) wait(ctx context.Context, now func() time.Time, sleep func(context.Context, time.Duration) error) error {
	if l == nil {
		return ctx.Err()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	at, booked := l.reserve(now())
	l.count(at.After(now()))
	if d := at.Sub(now()); d > 0 {
		// Do not hold a slot the deadline will not let us use.
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
			l.cancel(booked)
			return fmt.Errorf("rate limit: next slot in %s is past the deadline: %w", d, context.DeadlineExceeded)
		}
	}
	// Sleep until the clock reaches the slot; looping on the absolute slot
	// time (not a single duration) stays exact if Sleep wakes early or the
	// clock jumps.
	for {
		d := at.Sub(now())
		if d <= 0 {
			return nil
		}
		if err := sleep(ctx, d); err != nil {
			l.cancel(booked)
			return err
		}
	}
}

func (l *limiter) count(delayed bool) {
	l.mu.Lock()
	l.sent++
	if delayed {
		l.delayed++
	}
	l.mu.Unlock()
}

// RateUse is one client-side limit's use since the client started.
type RateUse struct {
	Endpoint Endpoint
	Identity string // the merchant, service provider or brand ID
	Rate     Rate
	Sent     int64 // requests let through
	Delayed  int64 // of which had to wait for a slot
	// Backlog is how far ahead slots are booked: zero when the limit is
	// not being reached.
	Backlog time.Duration
}

// use reports the limiters' use, unlimited endpoints left out.
func (ls *limiters) use(now time.Time) []RateUse {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	out := make([]RateUse, 0, len(ls.m))
	for key, l := range ls.m {
		if l == nil {
			continue
		}
		e, id, _ := strings.Cut(key, "\x00")
		l.mu.Lock()
		u := RateUse{Endpoint: Endpoint(e), Identity: id, Rate: ls.rates[Endpoint(e)], Sent: l.sent, Delayed: l.delayed}
		if ahead := l.tat.Sub(now) - l.interval - l.tau; ahead > 0 {
			u.Backlog = ahead
		}
		l.mu.Unlock()
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Endpoint != out[j].Endpoint {
			return out[i].Endpoint < out[j].Endpoint
		}
		return out[i].Identity < out[j].Identity
	})
	return out
}

// limiters holds one limiter per endpoint and identity (merchant ID, service
// provider ID or brand ID), shared by all goroutines using the Client.
type limiters struct {
	rates map[Endpoint]Rate
	mu    sync.Mutex
	m     map[string]*limiter
}

func (ls *limiters) get(e Endpoint, identity string, now func() time.Time) *limiter {
	key := string(e) + "\x00" + identity
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if l, ok := ls.m[key]; ok {
		return l
	}
	l := newLimiter(ls.rates[e], now())
	ls.m[key] = l
	return l
}
