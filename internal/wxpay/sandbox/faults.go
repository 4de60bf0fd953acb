package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// Faults are the failures the sandbox injects into API calls (never into the
// /_sandbox/ inspection endpoints), so that a client's retries, failover and
// signature checks can be exercised. Each rate is a share in [0, 1].
//
// Faults are decided before a request is handled, so a faulted request
// changes no stock, code or token; that includes DropRate, which could have
// been applied after handling (a lost reply) but is applied before so that no
// state change is ever lost silently. A lost reply after a state change can be
// simulated with BadSignatureRate, which the client must treat as a failure.
// The request number of a faulted request is still recorded in the request
// log (/_sandbox/requests), which observes what arrived rather than what was
// done.
type Faults struct {
	// FailRate is the share of calls answered 500 SYSTEM_ERROR.
	FailRate float64
	// ThrottleRate is the share of calls answered 429 with the endpoint's
	// documented throttling code (RATELIMIT_EXCEEDED or FREQUENCY_LIMITED).
	ThrottleRate float64
	// Latency delays every call.
	Latency time.Duration
	// DropRate is the share of calls whose connection is closed without a
	// reply.
	DropRate float64
	// BadSignatureRate is the share of 2xx replies whose Wechatpay-Signature
	// does not verify. The call itself is handled normally.
	BadSignatureRate float64
	// UnknownSerialRate is the share of 2xx replies signed by a key the
	// account does not know, under a Wechatpay-Serial that is neither its
	// WeChat Pay public key ID nor one of its platform certificates. The call
	// itself is handled normally.
	UnknownSerialRate float64
}

// faultsJSON is the wire form of Faults: snake_case rates and the latency as
// a Go duration string ("250ms").
type faultsJSON struct {
	FailRate          float64         `json:"fail_rate"`
	ThrottleRate      float64         `json:"throttle_rate"`
	Latency           json.RawMessage `json:"latency,omitempty"`
	DropRate          float64         `json:"drop_rate"`
	BadSignatureRate  float64         `json:"bad_signature_rate"`
	UnknownSerialRate float64         `json:"unknown_serial_rate"`
}

// MarshalJSON renders the latency as a duration string.
func (f Faults) MarshalJSON() ([]byte, error) {
	lat, _ := json.Marshal(f.Latency.String())
	return json.Marshal(faultsJSON{
		FailRate:          f.FailRate,
		ThrottleRate:      f.ThrottleRate,
		Latency:           lat,
		DropRate:          f.DropRate,
		BadSignatureRate:  f.BadSignatureRate,
		UnknownSerialRate: f.UnknownSerialRate,
	})
}

// UnmarshalJSON accepts the latency as a duration string or as a number of
// milliseconds.
func (f *Faults) UnmarshalJSON(data []byte) error {
	var j faultsJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	var lat time.Duration
	if len(j.Latency) > 0 && string(j.Latency) != "null" {
		var s string
		var ms float64
		switch {
		case json.Unmarshal(j.Latency, &s) == nil:
			d, err := time.ParseDuration(s)
			if err != nil {
				return fmt.Errorf("latency: %w", err)
			}
			lat = d
		case json.Unmarshal(j.Latency, &ms) == nil:
			lat = time.Duration(ms * float64(time.Millisecond))
		default:
			return errors.New("latency: want a duration string or milliseconds")
		}
	}
	*f = Faults{
		FailRate:          j.FailRate,
		ThrottleRate:      j.ThrottleRate,
		Latency:           lat,
		DropRate:          j.DropRate,
		BadSignatureRate:  j.BadSignatureRate,
		UnknownSerialRate: j.UnknownSerialRate,
	}
	return nil
}

// Validate reports a rate outside [0, 1] or a negative latency.
func (f Faults) Validate() error {
	for _, r := range []struct {
		name string
		v    float64
	}{
		{"fail_rate", f.FailRate},
		{"throttle_rate", f.ThrottleRate},
		{"drop_rate", f.DropRate},
		{"bad_signature_rate", f.BadSignatureRate},
		{"unknown_serial_rate", f.UnknownSerialRate},
	} {
		if math.IsNaN(r.v) || r.v < 0 || r.v > 1 {
			return fmt.Errorf("%s %v is not a share between 0 and 1", r.name, r.v)
		}
	}
	if f.Latency < 0 {
		return fmt.Errorf("latency %v is negative", f.Latency)
	}
	return nil
}

// rate is a request budget: limit requests per period, refilled evenly, with
// a burst of limit. The zero rate is unlimited.
type rate struct {
	limit  float64
	period time.Duration
}

func (r rate) unlimited() bool { return r.limit <= 0 || r.period <= 0 }

// limiter holds one token bucket per key (endpoint and caller). It runs on the
// sandbox's clock so that a test clock standing still makes the limit exact.
type limiter struct {
	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter() *limiter { return &limiter{buckets: map[string]*bucket{}} }

// allow takes one token from key's bucket, reporting whether there was one.
func (l *limiter) allow(key string, r rate, now time.Time) bool {
	if r.unlimited() {
		return true
	}
	capacity := math.Max(r.limit, 1)
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		b = &bucket{tokens: capacity, last: now}
		l.buckets[key] = b
	}
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = math.Min(capacity, b.tokens+elapsed.Seconds()*r.limit/r.period.Seconds())
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
