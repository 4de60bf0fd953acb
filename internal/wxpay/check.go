package wxpay

import (
	"context"
	"net/http"
	"time"
)

// CheckResult is one account's answer to the connection test.
type CheckResult struct {
	Kind      IdentityKind
	ID        string
	Mode      VerifyMode
	Err       error // nil: the account answered and its reply verified
	RequestID string
	Took      time.Duration
}

// OK reports whether the account answered.
func (r CheckResult) OK() bool { return r.Err == nil }

// Check makes one signed read per configured account and verifies the
// reply as that account's calls are: GET /v3/certificates, the one read
// every account may make without naming a stock. An account on platform
// certificates downloads them in passing (a refresh); one on a public key
// only checks the reply's signature. Unconfigured accounts are left out.
func (c *Client) Check(ctx context.Context) []CheckResult {
	var out []CheckResult
	for _, a := range c.accts {
		if a.id == "" && a.key == nil {
			continue
		}
		res := CheckResult{Kind: a.kind, ID: a.id, Mode: a.mode()}
		start := c.cfg.Now()
		if a.certs != nil {
			a.certs.refreshMu.Lock()
			res.Err = c.refreshLocked(ctx, a)
			a.certs.refreshMu.Unlock()
		} else {
			var r request
			r, res.Err = c.newRequest(EndpointDownloadCertificates, http.MethodGet, a, pathCertificates, nil)
			if res.Err == nil {
				var meta Meta
				meta, _, res.Err = c.do(ctx, r, nil)
				res.RequestID = meta.RequestID
			}
		}
		if res.RequestID == "" {
			res.RequestID = RequestIDOf(res.Err)
		}
		res.Took = c.cfg.Now().Sub(start)
		out = append(out, res)
	}
	return out
}
