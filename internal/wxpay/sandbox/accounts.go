package sandbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"voucherconsole/internal/wxpay/signing"
)

// VerifyMode is how the sandbox's accounts sign their replies, as WeChat Pay
// does for an account: with the account's WeChat Pay public key, with its
// platform certificates (the older way), or both while WeChat Pay moves an
// account from certificates to a public key (灰度切换), when the request's
// Wechatpay-Serial says which the merchant expects.
type VerifyMode string

// The verify modes.
const (
	VerifyPublicKey   VerifyMode = "public-key"
	VerifyCertificate VerifyMode = "certificate"
	VerifyBoth        VerifyMode = "both"
)

// ParseVerifyMode reads a verify mode; "" is public-key.
func ParseVerifyMode(s string) (VerifyMode, error) {
	switch m := VerifyMode(s); m {
	case "":
		return VerifyPublicKey, nil
	case VerifyPublicKey, VerifyCertificate, VerifyBoth:
		return m, nil
	}
	return "", fmt.Errorf("verify mode %q: want public-key, certificate or both", s)
}

// DefaultRotateGrace is how long a platform certificate replaced by
// POST /_sandbox/rotate is still served and accepted.
const DefaultRotateGrace = time.Hour

// account is one WeChat Pay account the sandbox knows: the caller's API
// certificate (its key and serial), the account's WeChat Pay public key
// pair, its APIv3 key and its platform certificates.
type account struct {
	kind     callerKind
	name     string // merchant, service_provider, brand
	id       string
	serial   string
	key      *rsa.PrivateKey
	wxKey    *rsa.PrivateKey // signs replies in public-key mode
	pubKeyID string
	apiv3    string // 32 characters

	// certs, guarded by Sandbox.certMu, oldest first; the last one not
	// retiring signs replies in certificate mode.
	certs []*platformCert
}

type identities struct {
	merchant, sp, brand *account
}

func newIdentities(k *Keys) identities {
	mk := func(kind callerKind, name, id string, key, wx *rsa.PrivateKey) *account {
		return &account{kind: kind, name: name, id: id, serial: certSerial(&key.PublicKey), key: key,
			wxKey: wx, pubKeyID: pubKeyID(&wx.PublicKey)}
	}
	return identities{
		merchant: mk(callerMerchant, "merchant", MerchantID, k.Merchant, k.MerchantWxPay),
		sp:       mk(callerSP, "service_provider", ServiceProviderID, k.ServiceProvider, k.ServiceProviderWxPay),
		brand:    mk(callerBrand, "brand", BrandID, k.Brand, k.BrandWxPay),
	}
}

func (ids identities) all() []*account { return []*account{ids.merchant, ids.sp, ids.brand} }

// platformCert is a WeChat Pay platform certificate of one account.
type platformCert struct {
	serial    string
	key       *rsa.PrivateKey
	der       []byte
	notBefore time.Time
	notAfter  time.Time
	retireAt  time.Time // zero: in use; else served and accepted until then
}

// newPlatformCert issues a self-signed certificate, valid five years (or
// validity). Its
// serial is 20 random bytes, the 40 hexadecimal digits of WeChat Pay's.
func newPlatformCert(a *account, now time.Time, validity time.Duration) (*platformCert, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generate platform certificate key: %w", err)
	}
	return issueCert(a, key, now, validity)
}

func issueCert(a *account, key *rsa.PrivateKey, now time.Time, validity time.Duration) (*platformCert, error) {
	notAfter := now.AddDate(5, 0, 0)
	if validity > 0 {
		notAfter = now.Add(validity)
	}
	var raw [20]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, err
	}
	raw[0] |= 0x10 // 40 digits, no leading zero
	raw[0] &= 0x7f // positive
	serial := new(big.Int).SetBytes(raw[:])
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{CommonName: "Tenpay.com sandbox platform certificate", Organization: []string{"WeChat Pay sandbox"},
			OrganizationalUnit: []string{a.id}},
		// A minute back for clients whose clocks lag.
		NotBefore: now.Add(-time.Minute).UTC().Truncate(time.Second), NotAfter: notAfter.UTC().Truncate(time.Second),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("issue platform certificate: %w", err)
	}
	return &platformCert{serial: strings.ToUpper(serial.Text(16)), key: key, der: der,
		notBefore: tmpl.NotBefore, notAfter: tmpl.NotAfter}, nil
}

// newAPIv3Key makes a 32-character APIv3 key, as a merchant sets one.
func newAPIv3Key() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	var b [32]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:])
}

// accountsFile keeps, in StateDir/keys (mode 0600), each account's APIv3 key
// and platform certificates with their keys.
const accountsFileName = "accounts.json"

type accountsJSON map[string]struct {
	APIv3Key string     `json:"apiv3_key"`
	Certs    []certJSON `json:"certs"`
}

type certJSON struct {
	Key      string    `json:"key"`  // PKCS #8 PEM
	Cert     string    `json:"cert"` // PEM
	RetireAt time.Time `json:"retire_at"`
}

// setUpAccounts gives every account its APIv3 key and, in certificate and
// both modes, a platform certificate; from StateDir when saved there.
func (s *Sandbox) setUpAccounts() error {
	if s.opts.StateDir != "" {
		if err := s.loadAccounts(); err != nil {
			return err
		}
	}
	changed := false
	for _, a := range s.ids.all() {
		if a.apiv3 == "" {
			a.apiv3, changed = newAPIv3Key(), true
		}
		if s.mode != VerifyPublicKey && len(a.certs) == 0 {
			c, err := newPlatformCert(a, s.wireNow(), s.opts.CertValidity)
			if err != nil {
				return err
			}
			a.certs, changed = []*platformCert{c}, true
		}
	}
	if changed {
		return s.saveAccounts()
	}
	return nil
}

func (s *Sandbox) loadAccounts() error {
	data, err := os.ReadFile(filepath.Join(s.opts.StateDir, keysDirName, accountsFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sandbox accounts: %w", err)
	}
	var saved accountsJSON
	if err := json.Unmarshal(data, &saved); err != nil {
		return fmt.Errorf("sandbox accounts: %w", err)
	}
	for _, a := range s.ids.all() {
		sa, ok := saved[a.name]
		if !ok {
			continue
		}
		a.apiv3 = sa.APIv3Key
		for _, cj := range sa.Certs {
			key, err := signing.ParsePrivateKeyPEM([]byte(cj.Key))
			if err != nil {
				return fmt.Errorf("sandbox accounts: %s certificate key: %w", a.name, err)
			}
			block, _ := pem.Decode([]byte(cj.Cert))
			if block == nil {
				return fmt.Errorf("sandbox accounts: %s certificate: no PEM block", a.name)
			}
			x, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return fmt.Errorf("sandbox accounts: %s certificate: %w", a.name, err)
			}
			a.certs = append(a.certs, &platformCert{serial: strings.ToUpper(x.SerialNumber.Text(16)), key: key, der: x.Raw,
				notBefore: x.NotBefore, notAfter: x.NotAfter, retireAt: cj.RetireAt})
		}
	}
	return nil
}

// saveAccounts writes the accounts file; the caller holds certMu or is
// setting up.
func (s *Sandbox) saveAccounts() error {
	if s.opts.StateDir == "" {
		return nil
	}
	out := accountsJSON{}
	for _, a := range s.ids.all() {
		entry := out[a.name]
		entry.APIv3Key = a.apiv3
		for _, c := range a.certs {
			kp, err := signing.EncodePrivateKeyPEM(c.key)
			if err != nil {
				return err
			}
			entry.Certs = append(entry.Certs, certJSON{Key: string(kp),
				Cert: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.der})), RetireAt: c.retireAt})
		}
		out[a.name] = entry
	}
	data, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Join(s.opts.StateDir, keysDirName)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, accountsFileName), data, 0o600)
}

// VerifyMode is the mode the sandbox signs replies in.
func (s *Sandbox) VerifyMode() VerifyMode { return s.mode }

// liveCerts are the account's certificates not yet past their retirement,
// oldest first; the caller holds certMu.
func (s *Sandbox) liveCerts(a *account) []*platformCert {
	now := s.now()
	var out []*platformCert
	for _, c := range a.certs {
		if (c.retireAt.IsZero() || now.Before(c.retireAt)) && s.wireNow().Before(c.notAfter) {
			out = append(out, c)
		}
	}
	return out
}

// signingCert is the certificate replies are signed with: the newest one
// not retiring.
func (s *Sandbox) signingCert(a *account) *platformCert {
	s.certMu.Lock()
	defer s.certMu.Unlock()
	live := s.liveCerts(a)
	for i := len(live) - 1; i >= 0; i-- {
		if live[i].retireAt.IsZero() {
			return live[i]
		}
	}
	if len(live) > 0 {
		return live[len(live)-1]
	}
	return nil
}

// PlatformCertInfo describes one platform certificate.
type PlatformCertInfo struct {
	Account  string    `json:"account"`
	Serial   string    `json:"serial_no"`
	NotAfter time.Time `json:"expire_time"`
	RetireAt time.Time `json:"retire_at,omitzero"`
	Signing  bool      `json:"signing"`
}

// PlatformCerts lists the accounts' certificates still served.
func (s *Sandbox) PlatformCerts() []PlatformCertInfo {
	var out []PlatformCertInfo
	for _, a := range s.ids.all() {
		sc := s.signingCert(a)
		s.certMu.Lock()
		for _, c := range s.liveCerts(a) {
			out = append(out, PlatformCertInfo{Account: a.name, Serial: c.serial, NotAfter: c.notAfter, RetireAt: c.retireAt, Signing: c == sc})
		}
		s.certMu.Unlock()
	}
	return out
}

// ErrNoCertificates is returned by Rotate in public-key mode, where the
// accounts have no platform certificates.
var ErrNoCertificates = errors.New("the sandbox runs in public-key mode: its accounts have no platform certificates")

// Rotate issues each named account (merchant, service_provider, brand; none:
// all) a new platform certificate, which signs replies from now on; the one
// it replaces is still served and accepted for grace (zero:
// DefaultRotateGrace), as WeChat Pay keeps an old certificate valid while
// merchants pick up the new one.
func (s *Sandbox) Rotate(grace time.Duration, accounts ...string) ([]PlatformCertInfo, error) {
	if s.mode == VerifyPublicKey {
		return nil, ErrNoCertificates
	}
	if grace <= 0 {
		grace = DefaultRotateGrace
	}
	var chosen []*account
	for _, a := range s.ids.all() {
		if len(accounts) == 0 {
			chosen = append(chosen, a)
			continue
		}
		for _, n := range accounts {
			if n == a.name {
				chosen = append(chosen, a)
			}
		}
	}
	if len(chosen) == 0 {
		return nil, fmt.Errorf("no account named %q (merchant, service_provider, brand)", strings.Join(accounts, ","))
	}
	// Keys are made before the lock: generating one takes a while.
	fresh := make([]*platformCert, len(chosen))
	for i, a := range chosen {
		c, err := newPlatformCert(a, s.wireNow(), s.opts.CertValidity)
		if err != nil {
			return nil, err
		}
		fresh[i] = c
	}
	s.certMu.Lock()
	defer s.certMu.Unlock()
	now := s.now()
	var out []PlatformCertInfo
	for i, a := range chosen {
		for _, c := range a.certs {
			if c.retireAt.IsZero() {
				c.retireAt = now.Add(grace)
			}
		}
		a.certs = append(s.liveCerts(a), fresh[i])
		out = append(out, PlatformCertInfo{Account: a.name, Serial: fresh[i].serial, NotAfter: fresh[i].notAfter, Signing: true})
	}
	return out, s.saveAccounts()
}

// acceptsSerial reports whether a request's Wechatpay-Serial names a key of
// the account that the mode signs with: its public key ID, or one of its
// platform certificates still served.
func (s *Sandbox) acceptsSerial(a *account, serial string) bool {
	if s.mode != VerifyCertificate && serial == a.pubKeyID {
		return true
	}
	if s.mode == VerifyPublicKey {
		return false
	}
	s.certMu.Lock()
	defer s.certMu.Unlock()
	for _, c := range s.liveCerts(a) {
		if c.serial == serial {
			return true
		}
	}
	return false
}

// replySigner picks the key and serial a reply is signed with: in both
// modes the public key when the request's Wechatpay-Serial names it (that
// is how a merchant in WeChat Pay's migration asks for public-key replies),
// else the platform certificate.
func (s *Sandbox) replySigner(a *account, r *http.Request) (*rsa.PrivateKey, string) {
	usePub := s.mode == VerifyPublicKey || (s.mode == VerifyBoth && r.Header.Get(signing.HeaderSerial) == a.pubKeyID)
	if !usePub {
		if c := s.signingCert(a); c != nil {
			return c.key, c.serial
		}
	}
	return a.wxKey, a.pubKeyID
}

// certificates answers GET /v3/certificates: the account's certificates,
// each encrypted with its APIv3 key (AEAD_AES_256_GCM, associated data
// "certificate"). In public-key mode the list is empty.
func (s *Sandbox) certificates(c *call) (any, *apiError) {
	a := s.accountByID(c.callerID)
	type enc struct {
		Algorithm      string `json:"algorithm"`
		Nonce          string `json:"nonce"`
		AssociatedData string `json:"associated_data"`
		Ciphertext     string `json:"ciphertext"`
	}
	type entry struct {
		SerialNo           string `json:"serial_no"`
		EffectiveTime      string `json:"effective_time"`
		ExpireTime         string `json:"expire_time"`
		EncryptCertificate enc    `json:"encrypt_certificate"`
	}
	data := []entry{}
	if s.mode != VerifyPublicKey {
		s.certMu.Lock()
		live := s.liveCerts(a)
		s.certMu.Unlock()
		block, _ := aes.NewCipher([]byte(a.apiv3))
		gcm, _ := cipher.NewGCM(block)
		for _, pc := range live {
			nonce := newAPIv3Key()[:12]
			pt := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pc.der})
			ct := gcm.Seal(nil, []byte(nonce), pt, []byte("certificate"))
			data = append(data, entry{SerialNo: pc.serial, EffectiveTime: rfc3339(pc.notBefore), ExpireTime: rfc3339(pc.notAfter),
				EncryptCertificate: enc{Algorithm: "AEAD_AES_256_GCM", Nonce: nonce, AssociatedData: "certificate",
					Ciphertext: base64.StdEncoding.EncodeToString(ct)}})
		}
	}
	return map[string]any{"data": data}, nil
}

func (s *Sandbox) accountByID(id string) *account {
	for _, a := range s.ids.all() {
		if a.id == id {
			return a
		}
	}
	return s.ids.merchant
}
