package wxpay

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"voucherconsole/internal/wxpay/signing"
)

// IdentityKind names one of the console's three WeChat Pay accounts.
type IdentityKind string

// The three accounts.
const (
	IdentityMerchant        IdentityKind = "merchant"
	IdentityServiceProvider IdentityKind = "service_provider"
	IdentityBrand           IdentityKind = "brand"
)

// VerifyMode is how an account verifies WeChat Pay's replies.
type VerifyMode string

// Verification modes.
const (
	VerifyPublicKey   VerifyMode = "public-key"
	VerifyCertificate VerifyMode = "certificate"
	VerifyBoth        VerifyMode = "both" // WeChat Pay's migration (灰度切换)
)

// acct is one account as the client uses it: who signs, and how its
// replies are verified.
type acct struct {
	kind   IdentityKind
	name   string // "merchant", for messages
	scheme signing.Scheme
	id     string
	serial string
	key    *rsa.PrivateKey
	what   string // for ErrNotConfigured

	pubKeyID string         // "" when verified by certificates only
	pubKey   *rsa.PublicKey // its own, or the shared one
	apiv3    []byte
	certs    *certSet // nil without an APIv3 key
}

// label names the account in messages: "merchant 1230000109".
func (a *acct) label() string {
	if a.id == "" {
		return a.name
	}
	return a.name + " " + a.id
}

func (a *acct) mode() VerifyMode {
	switch {
	case a.certs != nil && a.pubKey != nil:
		return VerifyBoth
	case a.certs != nil:
		return VerifyCertificate
	}
	return VerifyPublicKey
}

// newAccts builds the three accounts from the Config. An account without a
// verification of its own (public key or APIv3 key) takes the shared public
// key.
func newAccts(cfg Config) [3]*acct {
	mk := func(kind IdentityKind, name string, scheme signing.Scheme, id, serial string, key *rsa.PrivateKey, what, pubID string, pub *rsa.PublicKey, apiv3 []byte) *acct {
		a := &acct{kind: kind, name: name, scheme: scheme, id: id, serial: serial, key: key, what: what,
			pubKeyID: pubID, pubKey: pub, apiv3: apiv3}
		if a.pubKey == nil && a.apiv3 == nil {
			a.pubKeyID, a.pubKey = cfg.PubKeyID, cfg.PubKey
		}
		if a.apiv3 != nil && a.id != "" {
			a.certs = cfg.State.certSet(accountKey(kind, id), apiv3)
		}
		return a
	}
	return [3]*acct{
		mk(IdentityMerchant, "merchant", signing.SchemeMerchant, cfg.MchID, cfg.MchSerial, cfg.MchKey,
			"merchant (MchID, MchSerial, MchKey)", cfg.MchPubKeyID, cfg.MchPubKey, cfg.MchAPIv3Key),
		mk(IdentityServiceProvider, "service provider", signing.SchemeMerchant, cfg.SPMchID, cfg.SPSerial, cfg.SPKey,
			"service provider (SPMchID, SPSerial, SPKey)", cfg.SPPubKeyID, cfg.SPPubKey, cfg.SPAPIv3Key),
		mk(IdentityBrand, "brand", signing.SchemeBrand, cfg.BrandID, cfg.BrandSerial, cfg.BrandKey,
			"brand (BrandID, BrandSerial, BrandKey)", cfg.BrandPubKeyID, cfg.BrandPubKey, cfg.BrandAPIv3Key),
	}
}

// verifyReply checks a 2xx reply as account a: with its public key when
// Wechatpay-Serial names it, else with the platform certificate it names:
// for a certificate download (delivered non-nil) one it delivers or one
// held; for any other reply one held, refreshed once if unknown. seen is
// when the reply arrived. Errors wrap an ErrReply… sentinel and name the
// account and the serial.
func (c *Client) verifyReply(ctx context.Context, a *acct, h http.Header, body []byte, seen time.Time, delivered []*PlatformCert) error {
	rh, err := parseReplyHeaders(h)
	if err != nil {
		return fmt.Errorf("%s: %w", a.label(), err)
	}
	now := c.cfg.Now()
	c.cfg.State.noteSkew(rh.at.Sub(now), now)
	if err := rh.fresh(now); err != nil {
		return fmt.Errorf("%s: %w", a.label(), err)
	}
	serial := truncate(rh.serial, 64)
	if a.pubKey != nil && rh.serial == a.pubKeyID {
		if err := rh.verify(a.pubKey, body); err != nil {
			return fmt.Errorf("%s: WeChat Pay public key %s: %w", a.label(), serial, err)
		}
		return nil
	}
	if a.certs != nil {
		var cert *PlatformCert
		for _, d := range delivered {
			if d.Serial == rh.serial && now.Before(d.NotAfter) {
				cert = d
			}
		}
		var refreshErr error
		switch {
		case cert != nil:
		case delivered != nil:
			// A download runs with the refresh lock held: no refresh within.
			cert = a.certs.get(rh.serial, now)
		default:
			cert, refreshErr = c.certFor(ctx, a, rh.serial, seen)
		}
		if cert != nil {
			if err := rh.verify(cert.pub, body); err != nil {
				return fmt.Errorf("%s: platform certificate %s: %w", a.label(), serial, err)
			}
			if delivered == nil {
				a.certs.signedBy(cert.Serial)
			}
			return nil
		}
		if refreshErr != nil {
			return fmt.Errorf("%w: %s: Wechatpay-Serial %q names no platform certificate it holds, and downloading them failed: %w",
				ErrReplySerial, a.label(), serial, refreshErr)
		}
	}
	switch a.mode() {
	case VerifyPublicKey:
		return fmt.Errorf("%w: %s: Wechatpay-Serial %q is not its WeChat Pay public key %s", ErrReplySerial, a.label(), serial, a.pubKeyID)
	case VerifyCertificate:
		return fmt.Errorf("%w: %s: Wechatpay-Serial %q names no platform certificate it holds", ErrReplySerial, a.label(), serial)
	}
	return fmt.Errorf("%w: %s: Wechatpay-Serial %q is neither its WeChat Pay public key %s nor a platform certificate it holds", ErrReplySerial, a.label(), serial, a.pubKeyID)
}

// State is what the clients made from one Config share: each account's
// platform certificates and what the calls saw.
type State struct {
	mu        sync.Mutex
	certs     map[string]*certSet
	endpoints map[Endpoint]*EndpointStatus
	skew      Skew
}

// NewState returns an empty State.
func NewState() *State {
	return &State{certs: map[string]*certSet{}, endpoints: map[Endpoint]*EndpointStatus{}}
}

func (s *State) certSet(account string, apiv3 []byte) *certSet {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.certs[account]
	if cs == nil {
		cs = &certSet{account: account, apiv3: apiv3, held: map[string]*PlatformCert{}}
		s.certs[account] = cs
	}
	return cs
}

// Skew is the difference seen between replies' Wechatpay-Timestamp and the
// local clock (positive: WeChat Pay's clock is ahead).
type Skew struct {
	Last    time.Duration
	MaxAbs  time.Duration
	Samples int64
	At      time.Time // when Last was seen
}

func (s *State) noteSkew(d time.Duration, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.skew.Last, s.skew.At = d, now
	s.skew.Samples++
	if d < 0 {
		d = -d
	}
	s.skew.MaxAbs = max(s.skew.MaxAbs, d)
}

// Skew returns the clock skew seen so far.
func (s *State) Skew() Skew {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.skew
}

// EndpointStatus is what calls to one endpoint saw most recently.
type EndpointStatus struct {
	Endpoint  Endpoint
	Successes int64
	Failures  int64

	LastSuccess          time.Time
	LastSuccessRequestID string

	LastFailure time.Time
	// FailureStatus, FailureCode and FailureMessage are WeChat Pay's HTTP
	// status, code and message for an error reply; for a call that got no
	// usable reply the code is TRANSPORT or REPLY_REFUSED.
	FailureStatus    int
	FailureCode      string
	FailureMessage   string
	FailureRequestID string
}

// Endpoints returns the status of every endpoint called so far.
func (s *State) Endpoints() []EndpointStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]EndpointStatus, 0, len(s.endpoints))
	for _, e := range s.endpoints {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Endpoint < out[j].Endpoint })
	return out
}

func (s *State) note(e Endpoint, meta Meta, err error, now time.Time) {
	if err != nil && (errors.Is(err, context.Canceled) || errors.Is(err, ErrNotConfigured) || errors.Is(err, ErrInvalidArgument)) {
		return // the caller's doing, not the connection's
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.endpoints[e]
	if st == nil {
		st = &EndpointStatus{Endpoint: e}
		s.endpoints[e] = st
	}
	if err == nil {
		st.Successes++
		st.LastSuccess, st.LastSuccessRequestID = now, meta.RequestID
		return
	}
	st.Failures++
	st.LastFailure = now
	st.FailureStatus, st.FailureRequestID = 0, RequestIDOf(err)
	var ae *APIError
	var re *ReplyError
	switch {
	case errors.As(err, &ae):
		st.FailureStatus, st.FailureCode, st.FailureMessage = ae.StatusCode, ae.Code, truncate(ae.Message, 200)
	case errors.As(err, &re):
		st.FailureCode, st.FailureMessage = "REPLY_REFUSED", truncate(re.Err.Error(), 300)
	default:
		st.FailureCode, st.FailureMessage = "TRANSPORT", "no reply (network error or timeout)"
	}
}

// AccountInfo describes one configured account for the connection page:
// IDs, serials and fingerprints, never keys.
type AccountInfo struct {
	Kind                IdentityKind
	ID                  string
	Serial              string // its API certificate serial
	KeyFingerprint      string // of its API private key's public half
	Mode                VerifyMode
	PubKeyID            string
	PubKeyFingerprint   string
	SharedPubKey        bool // the shared CONSOLE_WXPAY_PUBKEY, not its own
	Certificates        []PlatformCert
	CertDownloads       int
	CertLastRefresh     time.Time
	CertLastRefreshErr  string
	Configured          bool
	HasAPIv3Key         bool
	CertificatesPending bool // verified by certificates, none downloaded yet
}

// Accounts describes the three accounts.
func (c *Client) Accounts() []AccountInfo {
	out := make([]AccountInfo, 0, 3)
	for _, a := range c.accts {
		info := AccountInfo{Kind: a.kind, ID: a.id, Serial: a.serial, Mode: a.mode(), PubKeyID: a.pubKeyID,
			PubKeyFingerprint: KeyFingerprint(a.pubKey), Configured: a.id != "" && a.key != nil,
			HasAPIv3Key: a.apiv3 != nil}
		if a.key != nil {
			info.KeyFingerprint = KeyFingerprint(&a.key.PublicKey)
		}
		info.SharedPubKey = a.pubKey != nil && a.pubKey == c.cfg.PubKey && a.pubKeyID == c.cfg.PubKeyID
		if a.certs != nil {
			info.Certificates = a.certs.all()
			a.certs.statMu.Lock()
			info.CertDownloads, info.CertLastRefresh, info.CertLastRefreshErr = a.certs.downloads, a.certs.lastRefreshed, a.certs.lastErr
			a.certs.statMu.Unlock()
			info.CertificatesPending = len(info.Certificates) == 0
		}
		out = append(out, info)
	}
	return out
}

// RateUse reports the client-side rate limits' use.
func (c *Client) RateUse() []RateUse { return c.limits.use(c.cfg.Now()) }

// State returns what this client shares with clients of the same Config.
func (c *Client) State() *State { return c.cfg.State }
