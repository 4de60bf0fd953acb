package wxpay

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// Platform certificates (平台证书) are how WeChat Pay signed its replies
// before public keys, and still do for accounts that have not moved: each
// account downloads its certificates with GET /v3/certificates, encrypted
// with its APIv3 key, and verifies a reply with the one its
// Wechatpay-Serial names.

const pathCertificates = "/v3/certificates"

// EndpointDownloadCertificates is GET /v3/certificates.
const EndpointDownloadCertificates Endpoint = "DownloadCertificates"

// Reasons a certificate download is refused.
var (
	// ErrCertDecrypt means an encrypted certificate did not decrypt: the
	// APIv3 key is not the account's, or the certificate was altered (the
	// AEAD tag does not match).
	ErrCertDecrypt = errors.New("platform certificate does not decrypt with the APIv3 key")
	// ErrCertInvalid means a decrypted certificate is not a usable RSA
	// certificate matching its serial.
	ErrCertInvalid = errors.New("platform certificate is invalid")
)

// PlatformCert is one WeChat Pay platform certificate an account holds.
// Certificates are public; they may be stored and shown.
type PlatformCert struct {
	Serial      string // upper-case hexadecimal, as Wechatpay-Serial names it
	NotBefore   time.Time
	NotAfter    time.Time
	Fingerprint string // SHA-256 of the DER certificate, hexadecimal
	PEM         string

	pub *rsa.PublicKey
}

// ParsePlatformCert reads a PEM certificate.
func ParsePlatformCert(pemText string) (*PlatformCert, error) {
	block, _ := pem.Decode([]byte(pemText))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%w: no PEM certificate", ErrCertInvalid)
	}
	x, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCertInvalid, err)
	}
	pub, ok := x.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: not an RSA key", ErrCertInvalid)
	}
	sum := sha256.Sum256(x.Raw)
	return &PlatformCert{
		Serial: strings.ToUpper(x.SerialNumber.Text(16)), NotBefore: x.NotBefore, NotAfter: x.NotAfter,
		Fingerprint: hex.EncodeToString(sum[:]), PEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: x.Raw})),
		pub: pub,
	}, nil
}

// KeyFingerprint is the SHA-256 of a public key's PKIX form, hexadecimal:
// what the connection page shows to tell keys apart without showing them.
func KeyFingerprint(pub *rsa.PublicKey) string {
	if pub == nil {
		return ""
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// CertStorage keeps platform certificates and their refresh schedule where
// every console instance sees them. Accounts are named "merchant:ID",
// "service_provider:ID" or "brand:ID".
type CertStorage interface {
	// LoadCerts returns the certificates stored for the account.
	LoadCerts(ctx context.Context, account string) ([]*PlatformCert, error)
	// SaveCerts replaces the account's certificates.
	SaveCerts(ctx context.Context, account string, certs []*PlatformCert, now time.Time) error
	// ClaimRefresh reports whether the caller is to download the account's
	// certificates now: true for exactly one caller per period of every,
	// whichever instance asks first once the period is due.
	ClaimRefresh(ctx context.Context, account string, now time.Time, every time.Duration) (bool, error)
}

// certSet is one account's platform certificates, shared by every client
// made from one Config.
type certSet struct {
	account string
	apiv3   []byte

	mu   sync.RWMutex
	held map[string]*PlatformCert
	// signer is the serial of the certificate that signed the last reply
	// verified: the one WeChat Pay uses now, so the one to name in
	// Wechatpay-Serial.
	signer string

	// refreshMu makes refreshes single-flight: a caller finding a download
	// under way waits for it and then looks again, rather than starting its
	// own.
	refreshMu sync.Mutex
	lastStart time.Time // when the last download started
	nextLocal time.Time // the schedule, without CertStorage

	statMu        sync.Mutex // guards the figures below, read by the connection page
	downloads     int        // downloads made by this process
	lastRefreshed time.Time
	lastErr       string
}

func (cs *certSet) get(serial string, now time.Time) *PlatformCert {
	cs.mu.RLock()
	defer cs.mu.RUnlock()
	if c := cs.held[serial]; c != nil && now.Before(c.NotAfter) {
		return c
	}
	return nil
}

// newest is the certificate that signed the last reply, or else the
// unexpired one that became valid last.
func (cs *certSet) newest(now time.Time) *PlatformCert {
	cs.mu.RLock()
	defer cs.mu.RUnlock()
	if c := cs.held[cs.signer]; c != nil && now.Before(c.NotAfter) {
		return c
	}
	var best *PlatformCert
	for _, c := range cs.held {
		if now.Before(c.NotAfter) && !now.Before(c.NotBefore) && (best == nil || c.NotBefore.After(best.NotBefore)) {
			best = c
		}
	}
	return best
}

// replace holds every unexpired certificate of a download: WeChat Pay's
// list is the account's, and a certificate it no longer lists is retired.
func (cs *certSet) replace(certs []*PlatformCert, now time.Time) []*PlatformCert {
	cs.mu.Lock()
	cs.held = map[string]*PlatformCert{}
	cs.mu.Unlock()
	return cs.merge(certs, now)
}

// merge keeps every unexpired certificate held or given.
func (cs *certSet) merge(certs []*PlatformCert, now time.Time) []*PlatformCert {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.held == nil {
		cs.held = map[string]*PlatformCert{}
	}
	for _, c := range certs {
		cs.held[c.Serial] = c
	}
	out := make([]*PlatformCert, 0, len(cs.held))
	for s, c := range cs.held {
		if !now.Before(c.NotAfter) {
			delete(cs.held, s)
			continue
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NotBefore.Before(out[j].NotBefore) })
	return out
}

func (cs *certSet) signedBy(serial string) {
	cs.mu.Lock()
	cs.signer = serial
	cs.mu.Unlock()
}

func (cs *certSet) all() []PlatformCert {
	cs.mu.RLock()
	defer cs.mu.RUnlock()
	out := make([]PlatformCert, 0, len(cs.held))
	for _, c := range cs.held {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NotBefore.Before(out[j].NotBefore) })
	return out
}

// encryptedCertificate is encrypt_certificate in the download's reply.
type encryptedCertificate struct {
	Algorithm      string `json:"algorithm"`
	Nonce          string `json:"nonce"`
	AssociatedData string `json:"associated_data"`
	Ciphertext     string `json:"ciphertext"`
}

type certificatesReply struct {
	Data []struct {
		SerialNo           string               `json:"serial_no"`
		EffectiveTime      string               `json:"effective_time"`
		ExpireTime         string               `json:"expire_time"`
		EncryptCertificate encryptedCertificate `json:"encrypt_certificate"`
	} `json:"data"`
}

// decryptResource opens WeChat Pay's AEAD_AES_256_GCM envelope: the
// ciphertext (base64) carries the 16-byte tag at its end, the nonce and
// associated data are given as text.
func decryptResource(key []byte, e encryptedCertificate) ([]byte, error) {
	if e.Algorithm != "AEAD_AES_256_GCM" {
		return nil, fmt.Errorf("%w: algorithm %q, want AEAD_AES_256_GCM", ErrCertDecrypt, truncate(e.Algorithm, 32))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCertDecrypt, err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCertDecrypt, err)
	}
	if len(e.Nonce) != gcm.NonceSize() {
		return nil, fmt.Errorf("%w: nonce of %d bytes, want %d", ErrCertDecrypt, len(e.Nonce), gcm.NonceSize())
	}
	ct, err := base64.StdEncoding.DecodeString(e.Ciphertext)
	if err != nil {
		return nil, fmt.Errorf("%w: ciphertext is not base64", ErrCertDecrypt)
	}
	pt, err := gcm.Open(nil, []byte(e.Nonce), ct, []byte(e.AssociatedData))
	if err != nil {
		return nil, fmt.Errorf("%w: the authentication tag does not match (wrong APIv3 key, or the certificate was altered)", ErrCertDecrypt)
	}
	return pt, nil
}

// decodeCertificates decrypts and parses a download's reply.
func decodeCertificates(a *acct, body []byte) ([]*PlatformCert, error) {
	var reply certificatesReply
	if err := json.Unmarshal(body, &reply); err != nil {
		return nil, fmt.Errorf("decode certificates: %w", err)
	}
	out := make([]*PlatformCert, 0, len(reply.Data))
	for _, d := range reply.Data {
		serial := strings.ToUpper(d.SerialNo)
		pt, err := decryptResource(a.apiv3, d.EncryptCertificate)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %s: %w", a.label(), truncate(serial, 64), err)
		}
		c, err := ParsePlatformCert(string(pt))
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %s: %w", a.label(), truncate(serial, 64), err)
		}
		if c.Serial != serial {
			return nil, fmt.Errorf("%s: certificate %s: %w: it holds serial %s", a.label(), truncate(serial, 64), ErrCertInvalid, c.Serial)
		}
		out = append(out, c)
	}
	return out, nil
}

// download fetches the account's certificates, verifying the reply with a
// certificate it delivers (or one already held, or the account's public
// key), and keeps them.
func (c *Client) download(ctx context.Context, a *acct) error {
	cs := a.certs
	r, err := c.newRequest(EndpointDownloadCertificates, http.MethodGet, a, pathCertificates, nil)
	if err != nil {
		return err
	}
	var delivered []*PlatformCert
	r.verify = func(ctx context.Context, h http.Header, body []byte, seen time.Time) error {
		certs, err := decodeCertificates(a, body)
		if err != nil {
			return err
		}
		if certs == nil {
			certs = []*PlatformCert{}
		}
		delivered = certs
		return c.verifyReply(ctx, a, h, body, seen, certs)
	}
	cs.statMu.Lock()
	cs.downloads++
	cs.statMu.Unlock()
	if _, _, err := c.do(ctx, r, nil); err != nil {
		return err
	}
	now := c.cfg.Now()
	kept := cs.replace(delivered, now)
	if st := c.cfg.CertStorage; st != nil {
		if err := st.SaveCerts(ctx, cs.account, kept, now); err != nil {
			return fmt.Errorf("%s: keep platform certificates: %w", a.label(), err)
		}
	}
	return nil
}

// loadStored takes the certificates another instance stored.
func (c *Client) loadStored(ctx context.Context, a *acct) error {
	st := c.cfg.CertStorage
	if st == nil {
		return nil
	}
	certs, err := st.LoadCerts(ctx, a.certs.account)
	if err != nil {
		return fmt.Errorf("%s: read stored platform certificates: %w", a.label(), err)
	}
	a.certs.merge(certs, c.cfg.Now())
	return nil
}

// certFor returns the account's certificate serial, refreshing once if it
// is not held: from storage first (another instance may have downloaded
// it), then by a download — unless a download started after the reply was
// seen (it would have brought the certificate) or less than
// CertRefreshMinGap ago. The error is that of a download that failed.
func (c *Client) certFor(ctx context.Context, a *acct, serial string, seen time.Time) (*PlatformCert, error) {
	cs := a.certs
	if cert := cs.get(serial, c.cfg.Now()); cert != nil {
		return cert, nil
	}
	cs.refreshMu.Lock()
	defer cs.refreshMu.Unlock()
	if cert := cs.get(serial, c.cfg.Now()); cert != nil {
		return cert, nil
	}
	if err := c.loadStored(ctx, a); err == nil {
		if cert := cs.get(serial, c.cfg.Now()); cert != nil {
			return cert, nil
		}
	}
	now := c.cfg.Now()
	if !cs.lastStart.IsZero() && (!cs.lastStart.Before(seen) || now.Sub(cs.lastStart) < c.cfg.CertRefreshMinGap) {
		return nil, nil
	}
	err := c.refreshLocked(ctx, a)
	return cs.get(serial, c.cfg.Now()), err
}

// refreshLocked downloads with refreshMu held and notes the outcome.
func (c *Client) refreshLocked(ctx context.Context, a *acct) error {
	cs := a.certs
	cs.lastStart = c.cfg.Now()
	err := c.download(ctx, a)
	cs.statMu.Lock()
	cs.lastRefreshed = c.cfg.Now()
	cs.lastErr = ""
	if err != nil {
		cs.lastErr = truncate(err.Error(), 300)
	}
	cs.statMu.Unlock()
	return err
}

// requestSerial is the Wechatpay-Serial a request carries: the account's
// public key ID when it has one (during WeChat Pay's migration that asks for
// replies signed by the public key); else, where the endpoint requires the
// header, its newest platform certificate's serial; else none.
func (c *Client) requestSerial(ctx context.Context, r *request) (string, error) {
	a := r.who
	if a.pubKeyID != "" {
		return a.pubKeyID, nil
	}
	if !r.serialRequired || a.certs == nil {
		return "", nil
	}
	if cert := a.certs.newest(c.cfg.Now()); cert != nil {
		return cert.Serial, nil
	}
	a.certs.refreshMu.Lock()
	defer a.certs.refreshMu.Unlock()
	if err := c.loadStored(ctx, a); err != nil {
		return "", err
	}
	if cert := a.certs.newest(c.cfg.Now()); cert != nil {
		return cert.Serial, nil
	}
	if err := c.refreshLocked(ctx, a); err != nil {
		return "", err
	}
	if cert := a.certs.newest(c.cfg.Now()); cert != nil {
		return cert.Serial, nil
	}
	return "", fmt.Errorf("%w: %s holds no valid platform certificate for Wechatpay-Serial", ErrNotConfigured, a.label())
}

// RefreshCertificates is the scheduled refresh: for each account verified
// by platform certificates whose refresh is due, one instance (the one that
// claims it in CertStorage) downloads and stores them; the others read what
// it stored. Call it periodically (every minute, say); it downloads only
// every CertRefreshEvery.
func (c *Client) RefreshCertificates(ctx context.Context) error {
	var errs []error
	for _, a := range c.accts {
		if a.certs == nil || a.id == "" {
			continue
		}
		if err := c.refreshScheduled(ctx, a); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c *Client) refreshScheduled(ctx context.Context, a *acct) error {
	cs := a.certs
	cs.refreshMu.Lock()
	defer cs.refreshMu.Unlock()
	now := c.cfg.Now()
	due := false
	if st := c.cfg.CertStorage; st != nil {
		claimed, err := st.ClaimRefresh(ctx, cs.account, now, c.cfg.CertRefreshEvery)
		if err != nil {
			return fmt.Errorf("%s: claim the certificate refresh: %w", a.label(), err)
		}
		due = claimed
	} else if !now.Before(cs.nextLocal) {
		due = true
		cs.nextLocal = now.Add(c.cfg.CertRefreshEvery)
	}
	if !due {
		return c.loadStored(ctx, a)
	}
	return c.refreshLocked(ctx, a)
}

// accountKey names an account in CertStorage.
func accountKey(kind IdentityKind, id string) string { return string(kind) + ":" + id }
