package sandbox_test

// The account model (issue 17): each identity its own keys and its own way
// of verifying replies — public key, platform certificates, or both — with
// the console's client against the sandbox in each verify mode.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"voucherconsole/internal/wxpay"
	"voucherconsole/internal/wxpay/sandbox"
)

// callsByAccount is one call per account, each naming who makes it.
func callsByAccount() []struct {
	who  string
	call func(context.Context, *wxpay.Client) error
} {
	return []struct {
		who  string
		call func(context.Context, *wxpay.Client) error
	}{
		{"merchant", func(ctx context.Context, c *wxpay.Client) error {
			_, err := c.GetBusifavorStock(ctx, sandbox.SeedBusifavorUpload)
			return err
		}},
		{"service provider", func(ctx context.Context, c *wxpay.Client) error {
			_, err := c.UploadProductCouponCodes(ctx, sandbox.SeedProductCoupon, sandbox.SeedStockSending,
				wxpay.UploadProductCouponCodesRequest{OutRequestNo: "acct_upload_0001", CodeList: []string{"ACCT-1"}})
			return err
		}},
		{"brand", func(ctx context.Context, c *wxpay.Client) error {
			_, err := c.PreSendCouponBundle(ctx, sandbox.DemoOpenID, wxpay.PreSendCouponBundleRequest{
				ProductCouponID: sandbox.SeedBundleCoupon, StockBundleID: sandbox.SeedBundleMemberDay,
				AppID: sandbox.DemoAppID, SendRequestNo: "acct_presend_0001"})
			return err
		}},
	}
}

// certConfig verifies by platform certificates only: APIv3 keys, no public
// keys.
func (e *env) certConfig() wxpay.Config {
	cfg := e.config()
	cfg.MchPubKeyID, cfg.MchPubKey, cfg.SPPubKeyID, cfg.SPPubKey, cfg.BrandPubKeyID, cfg.BrandPubKey = "", nil, "", nil, "", nil
	cfg.MchAPIv3Key, cfg.SPAPIv3Key, cfg.BrandAPIv3Key = e.creds.MchAPIv3Key, e.creds.SPAPIv3Key, e.creds.BrandAPIv3Key
	return cfg
}

func TestAccountsHaveTheirOwnKeys(t *testing.T) {
	e := newEnv(t, nil)
	c := e.creds
	if c.MchPubKeyID == c.SPPubKeyID || c.SPPubKeyID == c.BrandPubKeyID || c.MchPubKey.Equal(c.BrandPubKey) ||
		c.MchKey.Equal(c.SPKey) || string(c.MchAPIv3Key) == string(c.BrandAPIv3Key) {
		t.Fatal("accounts share keys")
	}
	for _, k := range callsByAccount() {
		if err := k.call(t.Context(), e.client(t, e.config())); err != nil {
			t.Errorf("%s: %v", k.who, err)
		}
	}
	if e.certHits.Load() != 0 {
		t.Errorf("public-key accounts downloaded certificates %d times", e.certHits.Load())
	}
}

// One account's WeChat Pay public key replaced by another's: that account's
// calls fail, naming it and the serial; the others work.
func TestSwappedPublicKeyFailsOnlyThatAccount(t *testing.T) {
	cases := []struct {
		name   string
		mod    func(*wxpay.Config, sandbox.Credentials)
		victim string
		want   error
		serial func(sandbox.Credentials) string
	}{
		{"merchant_key_file", func(cfg *wxpay.Config, c sandbox.Credentials) { cfg.MchPubKey = c.SPPubKey },
			"merchant", wxpay.ErrReplySignature, func(c sandbox.Credentials) string { return c.MchPubKeyID }},
		{"brand_key_file", func(cfg *wxpay.Config, c sandbox.Credentials) { cfg.BrandPubKey = c.MchPubKey },
			"brand", wxpay.ErrReplySignature, func(c sandbox.Credentials) string { return c.BrandPubKeyID }},
		// Key and ID both another account's: the reply names a key the
		// merchant does not hold.
		{"merchant_key_and_id", func(cfg *wxpay.Config, c sandbox.Credentials) {
			cfg.MchPubKeyID, cfg.MchPubKey = c.BrandPubKeyID, c.BrandPubKey
		}, "merchant", wxpay.ErrReplySerial, func(c sandbox.Credentials) string { return c.MchPubKeyID }},
		{"service_provider_key_file", func(cfg *wxpay.Config, c sandbox.Credentials) { cfg.SPPubKey = c.BrandPubKey },
			"service provider", wxpay.ErrReplySignature, func(c sandbox.Credentials) string { return c.SPPubKeyID }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			cfg := e.config()
			tc.mod(&cfg, e.creds)
			cl := e.client(t, cfg)
			for _, k := range callsByAccount() {
				err := k.call(t.Context(), cl)
				if k.who != tc.victim {
					if err != nil {
						t.Errorf("%s: %v", k.who, err)
					}
					continue
				}
				var re *wxpay.ReplyError
				if !errors.As(err, &re) || !errors.Is(err, tc.want) {
					t.Fatalf("%s: want a refused reply (%v), got %v", k.who, tc.want, err)
				}
				if msg := err.Error(); !strings.Contains(msg, tc.victim+" ") || !strings.Contains(msg, tc.serial(e.creds)) {
					t.Errorf("%s: message does not name the account and the serial: %s", k.who, msg)
				}
			}
		})
	}
}

func TestCertificateMode(t *testing.T) {
	e := newEnv(t, func(o *sandbox.Options) { o.VerifyMode = sandbox.VerifyCertificate })
	cl := e.client(t, e.certConfig())
	for _, k := range callsByAccount() {
		if err := k.call(t.Context(), cl); err != nil {
			t.Fatalf("%s: %v", k.who, err)
		}
	}
	if n := e.certHits.Load(); n != 3 {
		t.Errorf("certificate downloads: %d, want one per account", n)
	}
	before := map[wxpay.IdentityKind]string{}
	for _, a := range cl.Accounts() {
		if a.Mode != wxpay.VerifyCertificate || len(a.Certificates) != 1 || a.PubKeyID != "" {
			t.Fatalf("%s: mode %s, %d certificates, public key %q", a.Kind, a.Mode, len(a.Certificates), a.PubKeyID)
		}
		before[a.Kind] = a.Certificates[0].Serial
	}

	// A rotation: replies are signed by a certificate the client does not
	// hold yet. Concurrent calls cause one download per account, not one per
	// call, and keep working without a restart.
	if _, err := e.sb.Rotate(time.Hour); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(time.Minute) // past the least gap between downloads
	var wg sync.WaitGroup
	errs := make(chan error, 30)
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := cl.GetBusifavorStock(t.Context(), sandbox.SeedBusifavorUpload); err != nil {
				errs <- fmt.Errorf("call %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := e.certHits.Load(); n != 4 {
		t.Errorf("certificate downloads after rotation and 10 calls: %d, want 4", n)
	}
	for _, a := range cl.Accounts() {
		if a.Kind == wxpay.IdentityMerchant && (len(a.Certificates) != 2 || a.Certificates[0].Serial != before[a.Kind]) {
			t.Errorf("merchant holds %+v, want the old and the new certificate", a.Certificates)
		}
	}
	// The brand's pre-send names a certificate in Wechatpay-Serial, which
	// the sandbox requires there; after the grace period only the new one
	// is accepted, and the scheduled refresh drops the retired one.
	e.clk.Advance(2 * time.Hour)
	if err := cl.RefreshCertificates(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, k := range callsByAccount() {
		if err := k.call(t.Context(), cl); err != nil {
			t.Errorf("after the grace period, %s: %v", k.who, err)
		}
	}
}

func TestCertificateWrongAPIv3Key(t *testing.T) {
	e := newEnv(t, func(o *sandbox.Options) { o.VerifyMode = sandbox.VerifyCertificate })
	cfg := e.certConfig()
	cfg.MchAPIv3Key = e.creds.SPAPIv3Key // another account's: every tag fails
	cl := e.client(t, cfg)
	_, err := cl.GetBusifavorStock(t.Context(), sandbox.SeedBusifavorUpload)
	if !errors.Is(err, wxpay.ErrCertDecrypt) || !strings.Contains(err.Error(), "merchant "+sandbox.MerchantID) ||
		!strings.Contains(err.Error(), "authentication tag") {
		t.Fatalf("want a clear decryption error naming the merchant, got %v", err)
	}
	for _, res := range cl.Check(t.Context()) {
		if (res.Kind == wxpay.IdentityMerchant) == res.OK() {
			t.Errorf("check %s: %v", res.Kind, res.Err)
		}
	}
}

// WeChat Pay's migration: an account holding both its public key and its
// certificates accepts replies signed either way, and refuses one naming
// neither.
func TestBothMode(t *testing.T) {
	e := newEnv(t, func(o *sandbox.Options) { o.VerifyMode = sandbox.VerifyBoth })
	cfg := e.certConfig()
	cfg.MchPubKeyID, cfg.MchPubKey = e.creds.MchPubKeyID, e.creds.MchPubKey
	cfg.SPPubKeyID, cfg.SPPubKey = e.creds.SPPubKeyID, e.creds.SPPubKey
	cfg.BrandPubKeyID, cfg.BrandPubKey = e.creds.BrandPubKeyID, e.creds.BrandPubKey

	// The client asks for public-key replies (Wechatpay-Serial is the
	// public key ID); a client whose requests lack the header gets replies
	// signed by certificate.
	byPubKey := e.client(t, cfg)
	stripped, err := wxpay.NewClient(cfg, &http.Client{Transport: stripSerial{e.srv.Client().Transport}})
	if err != nil {
		t.Fatal(err)
	}
	for _, cl := range []*wxpay.Client{byPubKey, stripped} {
		if _, err := cl.GetBusifavorStock(t.Context(), sandbox.SeedBusifavorUpload); err != nil {
			t.Fatal(err)
		}
		if _, err := cl.GetFavorStock(t.Context(), sandbox.SeedFavorStock); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.certHits.Load(); n != 1 {
		t.Errorf("certificate downloads: %d, want 1 (the certificate-signed replies' account)", n)
	}

	must(t, e.sb.SetFaults(sandbox.Faults{UnknownSerialRate: 1}))
	e.clk.Advance(time.Minute)
	_, err = byPubKey.GetBusifavorStock(t.Context(), sandbox.SeedBusifavorUpload)
	var re *wxpay.ReplyError
	if !errors.As(err, &re) || !errors.Is(err, wxpay.ErrReplySerial) || !strings.Contains(err.Error(), "neither") {
		t.Fatalf("reply naming neither key: %v", err)
	}
	if wxpay.IsRetryable(err) {
		t.Error("a refused reply is not to be retried blindly")
	}
}

// A flood of replies naming an unknown serial costs one download.
func TestUnknownSerialSingleFlight(t *testing.T) {
	e := newEnv(t, func(o *sandbox.Options) { o.VerifyMode = sandbox.VerifyCertificate })
	cl := e.client(t, e.certConfig())
	if _, err := cl.GetBusifavorStock(t.Context(), sandbox.SeedBusifavorUpload); err != nil {
		t.Fatal(err)
	}
	must(t, e.sb.SetFaults(sandbox.Faults{UnknownSerialRate: 1}))
	e.clk.Advance(time.Minute)
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := cl.GetBusifavorStock(t.Context(), sandbox.SeedBusifavorUpload); !errors.Is(err, wxpay.ErrReplySerial) {
				t.Errorf("want ErrReplySerial, got %v", err)
			}
		}()
	}
	wg.Wait()
	if n := e.certHits.Load(); n != 2 {
		t.Errorf("downloads: %d, want 2 (the first, and one for 20 replies naming an unknown serial)", n)
	}
}

// stripSerial drops Wechatpay-Serial from requests.
type stripSerial struct{ base http.RoundTripper }

func (s stripSerial) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Del("Wechatpay-Serial")
	return s.base.RoundTrip(r)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
