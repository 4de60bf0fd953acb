// Package sandbox simulates the WeChat Pay APIv3 endpoints the console calls
// (documents 000–004 of shared/seeds and the three read endpoints of its
// README) as an http.Handler, so that the console can be tried and tested
// without WeChat Pay credentials.
//
// It is meant to be faithful rather than merely convenient: requests must be
// signed by a caller it knows, with the scheme the endpoint takes; every reply
// is signed with its own platform key; request bodies are checked against the
// documents' field rules and answered with the documents' error codes; state
// rules, code modes, code inventories, budgets and per-user limits, request
// numbers and rate limits are enforced. Where a document is silent the choice
// made is stated in a comment next to it.
//
// The package parses requests into its own structs, written from the
// documents, and shares only the signature rules (package signing) with the
// console's client, so that a misreading in one is not silently repeated in
// the other.
package sandbox

import (
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Sandbox. The zero Options give an empty sandbox on the
// wall clock with the documented rate limits and no faults.
type Options struct {
	// Now is the clock the sandbox runs on: stock validity, budgets' days,
	// token expiry, create-time checks, request and reply timestamps. It
	// cannot be advanced by the sandbox (Advance fails).
	Now func() time.Time
	// Clock, when set, is used instead of Now and can be advanced (Advance,
	// POST /_sandbox/clock). When neither is set the sandbox makes its own
	// adjustable clock on the wall clock; advancing it moves business time
	// (token expiry, stock end times, days) but not the time request
	// signatures are checked against or replies are stamped with, since the
	// clients keep to the wall clock.
	Clock *Clock

	// Faults are the initial faults; see SetFaults.
	Faults Faults
	// RateLimit, when positive, is the requests per second each endpoint
	// takes (per caller) before answering 429. Zero means the documented
	// limits: create favor stock 60/min per merchant (003), deactivate 20/s
	// (001), pre-send 500/s per brand (004); code uploads and reads are then
	// unlimited, as their documents state no limit.
	RateLimit float64

	// Seed fills a new sandbox with the demo data (see the Seed* constants).
	// It is ignored when state is loaded from StateDir.
	Seed bool
	// StateDir, when set, keeps the keys (StateDir/keys, mode 0600) and the
	// state (stocks, codes, request log, tokens) in files, so a restarted
	// sandbox keeps its identities and data. State is written shortly after
	// each change and on Close.
	StateDir string
	// SaveDelay is how long after a change the state is written, so a burst
	// of changes is written once. Zero means 200ms.
	SaveDelay time.Duration

	// Rand drives fault decisions, request IDs and tokens; a seeded source
	// makes them reproducible in tests. Nil means a randomly seeded source.
	Rand *rand.Rand
	// Keys, when complete, are used instead of generating keys (generating
	// six RSA-2048 keys takes a while). With StateDir, keys already saved
	// there take precedence and these are saved when there are none.
	Keys *Keys

	// VerifyMode is how replies are signed: with each account's WeChat Pay
	// public key (the default), with its platform certificates, or both.
	VerifyMode VerifyMode
	// CertValidity is how long platform certificates it issues are valid;
	// zero means five years. A short one lets a test see an expiry warning.
	CertValidity time.Duration
}

// Sandbox is a simulated WeChat Pay. It is safe for concurrent use.
type Sandbox struct {
	opts    Options
	now     func() time.Time // business time
	wireNow func() time.Time // time of request and reply signatures
	clock   *Clock           // nil when the clock is not adjustable
	ids     identities
	mode    VerifyMode
	certMu  sync.Mutex // guards the accounts' certificates

	mu sync.Mutex // guards st
	st *state

	callMu sync.Mutex
	calls  map[string]int // API calls per endpoint (Calls)

	faultMu sync.RWMutex
	faults  Faults

	rateMu    sync.RWMutex
	rateLimit float64

	randMu sync.Mutex
	rnd    *rand.Rand

	limiter *limiter
	reqSeq  atomic.Uint64

	saveDelay time.Duration
	saveMu    sync.Mutex // guards saveTimer and closed
	saveTimer *time.Timer
	// saving counts the scheduled saves not yet finished, so Close can wait
	// for one whose timer fired just before it: nothing writes to StateDir
	// once Close has returned.
	saving  sync.WaitGroup
	closed  bool
	flushMu sync.Mutex // serialises flushes
	saveErr atomic.Pointer[error]

	handler http.Handler
}

// New makes a sandbox: it loads or generates its keys, loads its state from
// StateDir or seeds it, and builds its handler.
func New(opts Options) (*Sandbox, error) {
	if err := opts.Faults.Validate(); err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	if opts.RateLimit < 0 {
		return nil, errors.New("sandbox: negative rate limit")
	}
	mode, err := ParseVerifyMode(string(opts.VerifyMode))
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	s := &Sandbox{
		opts:      opts,
		faults:    opts.Faults,
		rateLimit: opts.RateLimit,
		limiter:   newLimiter(),
		saveDelay: opts.SaveDelay,
		rnd:       opts.Rand,
		mode:      mode,
	}
	if s.saveDelay <= 0 {
		s.saveDelay = 200 * time.Millisecond
	}
	switch {
	case opts.Clock != nil:
		s.clock, s.now, s.wireNow = opts.Clock, opts.Clock.Now, opts.Clock.Now
	case opts.Now != nil:
		s.now, s.wireNow = opts.Now, opts.Now
	default:
		s.clock = &Clock{}
		s.now, s.wireNow = s.clock.Now, time.Now
	}
	if s.rnd == nil {
		var seed [16]byte
		_, _ = crand.Read(seed[:])
		s.rnd = rand.New(rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:])))
	}

	keys := opts.Keys
	if opts.StateDir != "" {
		keys, err = loadOrCreateKeys(filepath.Join(opts.StateDir, keysDirName), opts.Keys)
	} else if !keys.complete() {
		keys, err = GenerateKeys()
	}
	if err != nil {
		return nil, err
	}
	s.ids = newIdentities(keys)
	if err := s.setUpAccounts(); err != nil {
		return nil, err
	}

	loaded := false
	if opts.StateDir != "" {
		var st *state
		if st, loaded, err = loadState(opts.StateDir); err != nil {
			return nil, err
		}
		s.st = st
	}
	if !loaded {
		s.st = newState()
		if opts.Seed {
			seed(s.st, s.now())
		}
		if opts.StateDir != "" {
			// Code files without a state file are left over from a sandbox
			// that never saved its state; they belong to nothing now.
			if err := os.RemoveAll(filepath.Join(opts.StateDir, codesDirName)); err != nil {
				return nil, fmt.Errorf("sandbox state: %w", err)
			}
			if err := s.flush(); err != nil {
				return nil, err
			}
		}
	}
	s.handler = s.routes()
	return s, nil
}

// Handler returns the sandbox's HTTP handler: the API endpoints under /v3/
// and /brand/, and the unsigned inspection endpoints under /_sandbox/.
func (s *Sandbox) Handler() http.Handler { return s.handler }

// Close writes the state to StateDir (when set) and stops further saves. It
// reports the first error of any earlier background save, if the final save
// succeeds.
func (s *Sandbox) Close() error {
	s.saveMu.Lock()
	s.closed = true
	if s.saveTimer != nil {
		if s.saveTimer.Stop() {
			s.saving.Done() // it will not run
		}
		s.saveTimer = nil
	}
	s.saveMu.Unlock()
	s.saving.Wait()
	if err := s.flush(); err != nil {
		return err
	}
	if p := s.saveErr.Load(); p != nil {
		return *p
	}
	return nil
}

// SetFaults replaces the faults injected from now on.
func (s *Sandbox) SetFaults(f Faults) error {
	if err := f.Validate(); err != nil {
		return err
	}
	s.faultMu.Lock()
	s.faults = f
	s.faultMu.Unlock()
	return nil
}

// Faults returns the faults in force.
func (s *Sandbox) Faults() Faults {
	s.faultMu.RLock()
	defer s.faultMu.RUnlock()
	return s.faults
}

// ErrFixedClock is returned by Advance when the sandbox runs on a clock it
// cannot move (Options.Now).
var ErrFixedClock = errors.New("sandbox clock is external and cannot be advanced")

// Advance moves the sandbox's clock forward by d: tokens expire, stocks reach
// their end time, daily budgets roll over.
func (s *Sandbox) Advance(d time.Duration) error {
	if s.clock == nil {
		return ErrFixedClock
	}
	s.clock.Advance(d)
	return nil
}

// Now returns the sandbox's current (business) time.
func (s *Sandbox) Now() time.Time { return s.now() }

// chance reports true with probability p. A zero share draws nothing, so
// that a seeded source's sequence only depends on the faults in force.
func (s *Sandbox) chance(p float64) bool {
	if p <= 0 {
		return false
	}
	if p >= 1 {
		return true
	}
	s.randMu.Lock()
	defer s.randMu.Unlock()
	return s.rnd.Float64() < p
}

func (s *Sandbox) randUint64() uint64 {
	s.randMu.Lock()
	defer s.randMu.Unlock()
	return s.rnd.Uint64()
}

// newRequestID returns a unique Request-ID: a random part and a sequence
// number, so two are never equal even with a seeded source.
func (s *Sandbox) newRequestID() string {
	return fmt.Sprintf("%016X%08X", s.randUint64(), s.reqSeq.Add(1))
}
