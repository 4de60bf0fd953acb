package wxpay

import (
	"bytes"
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"voucherconsole/internal/wxpay/signing"
)

// WeChat Pay's hosts. The fallback is a different site, meant for failover.
const (
	DefaultBaseURL     = "https://api.mch.weixin.qq.com"
	DefaultFallbackURL = "https://api2.mch.weixin.qq.com"
)

// Defaults applied by NewClient to zero Config fields.
const (
	DefaultUserAgent     = "voucherconsole-wxpay/1 (Go)"
	DefaultTimeout       = 10 * time.Second
	DefaultMaxAttempts   = 4
	DefaultBackoffBase   = 200 * time.Millisecond
	DefaultBackoffMax    = 5 * time.Second
	DefaultFailoverAfter = 2
	DefaultFailoverHold  = time.Minute

	DefaultCertRefreshEvery  = 12 * time.Hour
	DefaultCertRefreshMinGap = 10 * time.Second
)

// Rate is a client-side request rate: N requests per Per, with at most Burst
// requests sent back to back. The zero Rate means "use the endpoint's
// default"; a negative N disables the limit.
type Rate struct {
	N     int
	Per   time.Duration
	Burst int
}

// PerSecond and PerMinute build Rates with a burst of one.
func PerSecond(n int) Rate { return Rate{N: n, Per: time.Second} }

// PerMinute: see PerSecond.
func PerMinute(n int) Rate { return Rate{N: n, Per: time.Minute} }

func (r Rate) String() string {
	if r.N < 0 {
		return "unlimited"
	}
	return fmt.Sprintf("%d/%s burst %d", r.N, r.Per, max(r.Burst, 1))
}

// defaultRates are the documented limits (documents 001, 003, 004) and
// conservative values where WeChat Pay publishes none (code uploads, reads).
func defaultRates() map[Endpoint]Rate {
	return map[Endpoint]Rate{
		EndpointCreateFavorStock:             PerMinute(60), // 003: 60/min per merchant
		EndpointUploadBusifavorCodes:         PerSecond(50),
		EndpointUploadProductCouponCodes:     PerSecond(50),
		EndpointDeactivateProductCouponStock: PerSecond(20),  // 001: 20/s
		EndpointPreSendCouponBundle:          PerSecond(500), // 004: 500/s per brand
		EndpointGetProductCouponStock:        PerSecond(50),
		EndpointGetFavorStock:                PerSecond(50),
		EndpointGetBusifavorStock:            PerSecond(50),
	}
}

// Config configures a Client. Identities come in three kinds, each a WeChat
// Pay account of its own with its own API certificate: the merchant (favor
// and busifavor stocks), the service provider (product-coupon code upload,
// document 000) and the brand (the /brand/ endpoints). Only the identities
// whose endpoints are called need to be set.
//
// Each account verifies WeChat Pay's replies in its own way: with its own
// WeChat Pay public key (MchPubKeyID/MchPubKey…, falling back to the shared
// PubKeyID/PubKey), with WeChat Pay platform certificates downloaded with its
// APIv3 key (MchAPIv3Key…), or with both while WeChat Pay moves the account
// from certificates to a public key. Every configured identity needs one.
//
// Config never prints its keys: String, GoString and LogValue redact them.
type Config struct {
	// BaseURL and FallbackURL are the primary and failover hosts. When
	// BaseURL is empty both default to WeChat Pay's hosts; when BaseURL is
	// set (a sandbox, say) an empty FallbackURL means "no failover", so that
	// requests meant for a sandbox never reach the real WeChat Pay.
	BaseURL     string
	FallbackURL string

	MchID     string
	MchSerial string
	MchKey    *rsa.PrivateKey

	SPMchID  string
	SPSerial string
	SPKey    *rsa.PrivateKey

	BrandID     string
	BrandSerial string
	BrandKey    *rsa.PrivateKey

	// PubKeyID (PUB_KEY_ID_…) and PubKey are the WeChat Pay public key of
	// every identity that has neither a public key nor an APIv3 key of its
	// own (the settings from before accounts were told apart).
	PubKeyID string
	PubKey   *rsa.PublicKey

	// Each identity's own WeChat Pay public key (PUB_KEY_ID_… and the key).
	MchPubKeyID   string
	MchPubKey     *rsa.PublicKey
	SPPubKeyID    string
	SPPubKey      *rsa.PublicKey
	BrandPubKeyID string
	BrandPubKey   *rsa.PublicKey

	// Each identity's APIv3 key (32 bytes): with it, replies signed by that
	// account's WeChat Pay platform certificates are verified, the
	// certificates being downloaded with GET /v3/certificates and decrypted
	// with the key. It never leaves the client.
	MchAPIv3Key   []byte
	SPAPIv3Key    []byte
	BrandAPIv3Key []byte

	// CertStorage, if set, keeps the downloaded platform certificates
	// (public) and the refresh schedule where every instance sees them, so
	// that one download serves all. Nil keeps them in this process only.
	CertStorage CertStorage
	// CertRefreshEvery is how often platform certificates are downloaded
	// (default 12 hours); CertRefreshMinGap the least time between two
	// downloads caused by a reply naming an unknown serial (default 10 s),
	// so a flood of such replies costs one download, not one per reply.
	CertRefreshEvery  time.Duration
	CertRefreshMinGap time.Duration

	// State is what clients made from copies of one Config share: the
	// platform certificates held and every call's outcome (the
	// /admin/wxpay page shows it). NewClient makes one when nil.
	State *State

	UserAgent string

	// Timeout bounds one attempt (connect, send, read the whole reply).
	Timeout time.Duration
	// MaxAttempts bounds the attempts of one call, retries included.
	MaxAttempts int
	// BackoffBase and BackoffMax shape the exponential backoff with full
	// jitter between attempts: attempt n waits a random time in
	// [0, min(BackoffMax, BackoffBase·2^(n-2))].
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// FailoverAfter is how many consecutive network errors or 5xx replies
	// from one host make the rest of the call use the other host.
	FailoverAfter int
	// FailoverHold is how long later calls start on the fallback host after
	// a failover, sparing them the attempts the primary would waste.
	FailoverHold time.Duration

	// Now and Sleep are the client's clock; tests inject fake ones. Sleep
	// must return ctx's error if ctx ends first.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error

	// Rates overrides the per-endpoint client-side rate limits; endpoints
	// not listed keep their defaults (see DefaultRate).
	Rates map[Endpoint]Rate
}

// DefaultRate returns the client-side limit an endpoint has unless
// Config.Rates overrides it.
func DefaultRate(e Endpoint) Rate { return defaultRates()[e] }

// withDefaults returns a copy of c with zero fields defaulted.
func (c Config) withDefaults() Config {
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
		if c.FallbackURL == "" {
			c.FallbackURL = DefaultFallbackURL
		}
	}
	if c.UserAgent == "" {
		c.UserAgent = DefaultUserAgent
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.BackoffBase <= 0 {
		c.BackoffBase = DefaultBackoffBase
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = DefaultBackoffMax
	}
	if c.BackoffMax < c.BackoffBase {
		c.BackoffMax = c.BackoffBase
	}
	if c.FailoverAfter <= 0 {
		c.FailoverAfter = DefaultFailoverAfter
	}
	if c.FailoverHold <= 0 {
		c.FailoverHold = DefaultFailoverHold
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.CertRefreshEvery <= 0 {
		c.CertRefreshEvery = DefaultCertRefreshEvery
	}
	if c.CertRefreshMinGap <= 0 {
		c.CertRefreshMinGap = DefaultCertRefreshMinGap
	}
	if c.State == nil {
		c.State = NewState()
	}
	if c.Sleep == nil {
		c.Sleep = sleepContext
	}
	rates := defaultRates()
	for e, r := range c.Rates {
		if r != (Rate{}) {
			rates[e] = r
		}
	}
	c.Rates = rates
	return c
}

func (c Config) validate() error {
	var errs []error
	if (c.PubKey == nil) != (c.PubKeyID == "") {
		errs = append(errs, errors.New("PubKeyID (PUB_KEY_ID_…) and PubKey (WeChat Pay public key) go together"))
	}
	anyVerifier := c.PubKey != nil
	for _, id := range c.accounts() {
		if (id.pubKey == nil) != (id.pubKeyID == "") {
			errs = append(errs, fmt.Errorf("%s: its WeChat Pay public key ID and key go together", id.name))
		}
		if id.apiv3 != nil && len(id.apiv3) != 32 {
			errs = append(errs, fmt.Errorf("%s: APIv3 key must be 32 bytes, not %d", id.name, len(id.apiv3)))
		}
		has := id.pubKey != nil || id.apiv3 != nil
		anyVerifier = anyVerifier || has
		if id.id != "" && !has && c.PubKey == nil {
			errs = append(errs, fmt.Errorf("%s %s: no way to verify replies: set its WeChat Pay public key or its APIv3 key", id.name, id.id))
		}
	}
	if !anyVerifier {
		errs = append(errs, errors.New("a WeChat Pay public key or an APIv3 key is required to verify replies"))
	}
	for _, u := range []struct{ name, v string }{{"BaseURL", c.BaseURL}, {"FallbackURL", c.FallbackURL}} {
		if u.v == "" && u.name == "FallbackURL" {
			continue
		}
		p, err := url.Parse(u.v)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.RawQuery != "" {
			errs = append(errs, fmt.Errorf("%s %q: want an absolute http(s) URL without query", u.name, u.v))
		}
	}
	for e, r := range c.Rates {
		if r.N == 0 || (r.N > 0 && r.Per <= 0) {
			errs = append(errs, fmt.Errorf("rate for %s: %v: want N>0 and Per>0 (or N<0 for no limit)", e, r))
		}
	}
	return errors.Join(errs...)
}

// String describes the configuration with keys redacted.
func (c Config) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "wxpay.Config{BaseURL:%q FallbackURL:%q", c.BaseURL, c.FallbackURL)
	fmt.Fprintf(&b, " MchID:%q MchSerial:%q MchKey:%s", c.MchID, c.MchSerial, keyState(c.MchKey != nil))
	fmt.Fprintf(&b, " SPMchID:%q SPSerial:%q SPKey:%s", c.SPMchID, c.SPSerial, keyState(c.SPKey != nil))
	fmt.Fprintf(&b, " BrandID:%q BrandSerial:%q BrandKey:%s", c.BrandID, c.BrandSerial, keyState(c.BrandKey != nil))
	fmt.Fprintf(&b, " PubKeyID:%q PubKey:%s", c.PubKeyID, keyState(c.PubKey != nil))
	for _, a := range c.accounts() {
		fmt.Fprintf(&b, " %sPubKeyID:%q %sAPIv3Key:%s", a.field, a.pubKeyID, a.field, keyState(a.apiv3 != nil))
	}
	fmt.Fprintf(&b, " Timeout:%s MaxAttempts:%d}", c.Timeout, c.MaxAttempts)
	return b.String()
}

// GoString keeps %#v from dumping key material.
func (c Config) GoString() string { return c.String() }

// LogValue implements slog.LogValuer: identities and hosts, never keys.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("base_url", c.BaseURL),
		slog.String("fallback_url", c.FallbackURL),
		slog.String("mchid", c.MchID),
		slog.String("mch_serial", c.MchSerial),
		slog.String("mch_key", keyState(c.MchKey != nil)),
		slog.String("sp_mchid", c.SPMchID),
		slog.String("sp_serial", c.SPSerial),
		slog.String("sp_key", keyState(c.SPKey != nil)),
		slog.String("brand_id", c.BrandID),
		slog.String("brand_serial", c.BrandSerial),
		slog.String("brand_key", keyState(c.BrandKey != nil)),
		slog.String("pub_key_id", c.PubKeyID),
		slog.String("pub_key", keyState(c.PubKey != nil)),
		slog.String("mch_pub_key_id", c.MchPubKeyID),
		slog.String("mch_apiv3_key", keyState(c.MchAPIv3Key != nil)),
		slog.String("sp_pub_key_id", c.SPPubKeyID),
		slog.String("sp_apiv3_key", keyState(c.SPAPIv3Key != nil)),
		slog.String("brand_pub_key_id", c.BrandPubKeyID),
		slog.String("brand_apiv3_key", keyState(c.BrandAPIv3Key != nil)),
	)
}

func keyState(set bool) string {
	if set {
		return "[REDACTED]"
	}
	return "[unset]"
}

// KeyFiles names PEM files holding the Config's keys. Empty paths are
// skipped, leaving the corresponding key as it was.
type KeyFiles struct {
	MchKey   string // merchant API private key (apiclient_key.pem)
	SPKey    string // service provider API private key
	BrandKey string // brand API private key
	PubKey   string // WeChat Pay public key (pub_key.pem) of identities without their own

	MchPubKey, SPPubKey, BrandPubKey       string // each identity's WeChat Pay public key
	MchAPIv3Key, SPAPIv3Key, BrandAPIv3Key string // files holding each identity's APIv3 key
}

// LoadKeys reads the named key files into c. Errors name the file, never
// its content.
func (c *Config) LoadKeys(files KeyFiles) error {
	private := []struct {
		what, path string
		dst        **rsa.PrivateKey
	}{
		{"merchant key", files.MchKey, &c.MchKey},
		{"service provider key", files.SPKey, &c.SPKey},
		{"brand key", files.BrandKey, &c.BrandKey},
	}
	var errs []error
	for _, p := range private {
		if p.path == "" {
			continue
		}
		k, err := signing.LoadPrivateKey(p.path)
		if err != nil {
			// signing's errors already name the path (and never the content).
			errs = append(errs, fmt.Errorf("wxpay: %s: %w", p.what, err))
			continue
		}
		*p.dst = k
	}
	public := []struct {
		what, path string
		dst        **rsa.PublicKey
	}{
		{"WeChat Pay public key", files.PubKey, &c.PubKey},
		{"merchant's WeChat Pay public key", files.MchPubKey, &c.MchPubKey},
		{"service provider's WeChat Pay public key", files.SPPubKey, &c.SPPubKey},
		{"brand's WeChat Pay public key", files.BrandPubKey, &c.BrandPubKey},
	}
	for _, p := range public {
		if p.path == "" {
			continue
		}
		k, err := signing.LoadPublicKey(p.path)
		if err != nil {
			errs = append(errs, fmt.Errorf("wxpay: %s: %w", p.what, err))
			continue
		}
		*p.dst = k
	}
	apiv3 := []struct {
		what, path string
		dst        *[]byte
	}{
		{"merchant APIv3 key", files.MchAPIv3Key, &c.MchAPIv3Key},
		{"service provider APIv3 key", files.SPAPIv3Key, &c.SPAPIv3Key},
		{"brand APIv3 key", files.BrandAPIv3Key, &c.BrandAPIv3Key},
	}
	for _, p := range apiv3 {
		if p.path == "" {
			continue
		}
		k, err := LoadAPIv3Key(p.path)
		if err != nil {
			errs = append(errs, fmt.Errorf("wxpay: %s: %w", p.what, err))
			continue
		}
		*p.dst = k
	}
	return errors.Join(errs...)
}

// ErrBadAPIv3Key means an APIv3 key file does not hold a 32-character key.
var ErrBadAPIv3Key = errors.New("an APIv3 key is 32 characters")

// LoadAPIv3Key reads an APIv3 key file: the 32 characters set in the
// merchant platform (API安全 → APIv3密钥), surrounding white space ignored.
// Errors name the file, never its content.
func LoadAPIv3Key(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read APIv3 key: %w", err)
	}
	k := bytes.TrimSpace(data)
	if len(k) != 32 {
		return nil, fmt.Errorf("APIv3 key %s: %w (it holds %d bytes)", path, ErrBadAPIv3Key, len(k))
	}
	return bytes.Clone(k), nil
}

// account is one identity's settings, for validation and descriptions.
type account struct {
	name, field string // "merchant", "Mch"
	id          string
	pubKeyID    string
	pubKey      *rsa.PublicKey
	apiv3       []byte
}

func (c Config) accounts() []account {
	return []account{
		{"merchant", "Mch", c.MchID, c.MchPubKeyID, c.MchPubKey, c.MchAPIv3Key},
		{"service provider", "SP", c.SPMchID, c.SPPubKeyID, c.SPPubKey, c.SPAPIv3Key},
		{"brand", "Brand", c.BrandID, c.BrandPubKeyID, c.BrandPubKey, c.BrandAPIv3Key},
	}
}

func sleepContext(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
