package sandbox

import (
	"sync"
	"time"
)

// Clock is an adjustable clock. A Clock made by NewClock stands still at its
// start time until it is advanced, which makes tests deterministic; the zero
// Clock follows the wall clock plus whatever it has been advanced by, which is
// what a standalone sandbox uses so that token expiry can be tried without
// waiting five minutes.
//
// A Clock is safe for concurrent use.
type Clock struct {
	mu     sync.Mutex
	manual bool
	t      time.Time
	offset time.Duration
}

// NewClock returns a manual clock that reads start until advanced.
func NewClock(start time.Time) *Clock {
	return &Clock{manual: true, t: start}
}

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.manual {
		return c.t
	}
	return time.Now().Add(c.offset)
}

// Advance moves the clock forward by d (backward when d is negative).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.manual {
		c.t = c.t.Add(d)
	} else {
		c.offset += d
	}
}
