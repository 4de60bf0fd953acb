// Package wxconn is the health of the console's WeChat Pay connection, for
// admins (the /admin/wxpay page): the mode and hosts, each account's IDs,
// serials, fingerprints and platform certificates, what calls to each
// endpoint saw, the clock skew and the client-side rate limits; and the
// connection test, one signed read per account, audited.
package wxconn

import (
	"context"
	"errors"
	"sync"
	"time"

	"gorm.io/gorm"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/clock"
	"voucherconsole/internal/wxpay"
)

// ActionTest is the audit action of a connection test.
const ActionTest = "wxpay.test_connection"

// TargetConnection is the audit target type of a connection test.
const TargetConnection = "wxpay"

// CertWarning is how far ahead a platform certificate's expiry is warned of.
const CertWarning = 30 * 24 * time.Hour

// Service reports on the connection and tests it.
type Service struct {
	Client      *wxpay.Client
	Mode        string // "sandbox" or "live"
	BaseURL     string
	FallbackURL string
	DB          *gorm.DB // the audit log
	Now         clock.Func

	mu   sync.Mutex
	last *TestRun
}

// TestRun is a connection test's outcome.
type TestRun struct {
	At      time.Time
	By      string
	Results []wxpay.CheckResult
}

// OK reports whether every account answered.
func (r *TestRun) OK() bool {
	for _, res := range r.Results {
		if !res.OK() {
			return false
		}
	}
	return len(r.Results) > 0
}

// Status is everything the page shows.
type Status struct {
	Mode        string
	BaseURL     string
	FallbackURL string
	Now         time.Time
	Accounts    []wxpay.AccountInfo
	Endpoints   []wxpay.EndpointStatus
	Skew        wxpay.Skew
	Rates       []wxpay.RateUse
	LastTest    *TestRun
}

// Status gathers the connection's state now.
func (s *Service) Status() Status {
	s.mu.Lock()
	last := s.last
	s.mu.Unlock()
	return Status{
		Mode: s.Mode, BaseURL: s.BaseURL, FallbackURL: s.FallbackURL, Now: s.Now.UTC(),
		Accounts: s.Client.Accounts(), Endpoints: s.Client.State().Endpoints(), Skew: s.Client.State().Skew(),
		Rates: s.Client.RateUse(), LastTest: last,
	}
}

// Test makes one signed read per configured account and records it in the
// audit log: success when every account answered, failure otherwise, with
// each account's outcome (code and Request-ID, never a key) in the detail.
func (s *Service) Test(ctx context.Context, ac audit.Context) (*TestRun, error) {
	run := &TestRun{At: s.Now.UTC(), By: ac.Actor, Results: s.Client.Check(ctx)}
	outcome := audit.Success
	if !run.OK() {
		outcome = audit.Failure
	}
	rec := ac.Record(ActionTest, outcome, TargetConnection, s.Mode)
	accounts := map[string]any{}
	for _, r := range run.Results {
		entry := map[string]any{"id": r.ID, "mode": string(r.Mode), "ok": r.OK()}
		if r.RequestID != "" {
			entry["request_id"] = r.RequestID
		}
		var ae *wxpay.APIError
		switch {
		case r.OK():
		case asAPIError(r.Err, &ae):
			entry["code"] = ae.Code
			if rec.WxErrorCode == "" {
				rec.WxErrorCode, rec.WxRequestID = ae.Code, ae.RequestID
			}
		default:
			entry["code"] = "REPLY_OR_NETWORK"
		}
		accounts[string(r.Kind)] = entry
	}
	rec.Detail = map[string]any{"accounts": accounts}
	if _, err := audit.Append(ctx, s.DB, s.Now.UTC(), rec); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.last = run
	s.mu.Unlock()
	return run, nil
}

func asAPIError(err error, target **wxpay.APIError) bool { return errors.As(err, target) }
