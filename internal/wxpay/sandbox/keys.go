package sandbox

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"voucherconsole/internal/wxpay/signing"
)

// The sandbox's fixed identities. They never change, so a console configured
// once keeps working with a restarted sandbox; only keys (and the serials and
// public key ID derived from them) differ between sandboxes without a
// StateDir.
const (
	// MerchantID is the merchant (普通商户) that owns favor and busifavor
	// stocks.
	MerchantID = "1230000109"
	// ServiceProviderID is the service provider (普通服务商) that uploads
	// product-coupon codes on the brand's behalf (document 000).
	ServiceProviderID = "1900000101"
	// BrandID is the brand (品牌商户) that owns the product coupons.
	BrandID = "120344"
)

// Keys are the sandbox's RSA private keys: the three callers' API
// certificate keys and WeChat Pay's own platform key, which signs replies.
type Keys struct {
	Merchant        *rsa.PrivateKey
	ServiceProvider *rsa.PrivateKey
	Brand           *rsa.PrivateKey
	Platform        *rsa.PrivateKey
}

// GenerateKeys makes four fresh RSA-2048 keys. It takes a second or so; tests
// generate one set and share it through Options.Keys.
func GenerateKeys() (*Keys, error) {
	var ks [4]*rsa.PrivateKey
	for i := range ks {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, fmt.Errorf("generate RSA key: %w", err)
		}
		ks[i] = k
	}
	return &Keys{Merchant: ks[0], ServiceProvider: ks[1], Brand: ks[2], Platform: ks[3]}, nil
}

func (k *Keys) complete() bool {
	return k != nil && k.Merchant != nil && k.ServiceProvider != nil && k.Brand != nil && k.Platform != nil
}

// Credentials are what a client needs to call the sandbox: each caller's ID,
// API certificate serial and private key, and the WeChat Pay public key with
// its ID, which replies are verified with.
type Credentials struct {
	MchID     string
	MchSerial string
	MchKey    *rsa.PrivateKey

	SPMchID  string
	SPSerial string
	SPKey    *rsa.PrivateKey

	BrandID     string
	BrandSerial string
	BrandKey    *rsa.PrivateKey

	PubKeyID string // PUB_KEY_ID_…
	PubKey   *rsa.PublicKey
}

// party is one caller the sandbox knows.
type party struct {
	id     string
	serial string
	key    *rsa.PrivateKey
}

type identities struct {
	merchant, sp, brand party
	platform            *rsa.PrivateKey
	pubKeyID            string
}

func newIdentities(k *Keys) identities {
	return identities{
		merchant: party{id: MerchantID, serial: certSerial(&k.Merchant.PublicKey), key: k.Merchant},
		sp:       party{id: ServiceProviderID, serial: certSerial(&k.ServiceProvider.PublicKey), key: k.ServiceProvider},
		brand:    party{id: BrandID, serial: certSerial(&k.Brand.PublicKey), key: k.Brand},
		platform: k.Platform,
		pubKeyID: pubKeyID(&k.Platform.PublicKey),
	}
}

// certSerial derives a 40-digit upper-case hexadecimal serial, the form of a
// WeChat Pay API certificate serial, from the key, so it is stable for a key.
func certSerial(pub *rsa.PublicKey) string {
	der, _ := x509.MarshalPKIXPublicKey(pub) // an RSA key always marshals
	sum := sha1.Sum(der)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// pubKeyID derives a WeChat Pay public key ID (PUB_KEY_ID_ and digits) from
// the key.
func pubKeyID(pub *rsa.PublicKey) string {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	sum := sha256.Sum256(der)
	var b strings.Builder
	b.WriteString("PUB_KEY_ID_01")
	for _, c := range sum[:30] {
		b.WriteByte('0' + c%10)
	}
	return b.String()
}

// Key file names inside StateDir/keys.
var stateKeyFiles = [4]string{"merchant_key.pem", "sp_key.pem", "brand_key.pem", "platform_key.pem"}

// loadOrCreateKeys reads the four keys from dir; when none is there it uses
// preset (or generates keys) and saves them with mode 0600. A partial set is
// an error rather than silently replaced, since replacing keys would break
// every console configured with the old ones.
func loadOrCreateKeys(dir string, preset *Keys) (*Keys, error) {
	var found [4]*rsa.PrivateKey
	n := 0
	for i, name := range stateKeyFiles {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("sandbox keys: %w", err)
		}
		k, err := signing.ParsePrivateKeyPEM(data)
		if err != nil {
			return nil, fmt.Errorf("sandbox keys: %s: %w", name, err)
		}
		found[i] = k
		n++
	}
	switch n {
	case 4:
		return &Keys{Merchant: found[0], ServiceProvider: found[1], Brand: found[2], Platform: found[3]}, nil
	case 0:
	default:
		return nil, fmt.Errorf("sandbox keys: only %d of 4 key files in %s", n, dir)
	}
	keys := preset
	if !keys.complete() {
		var err error
		if keys, err = GenerateKeys(); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sandbox keys: %w", err)
	}
	for i, k := range []*rsa.PrivateKey{keys.Merchant, keys.ServiceProvider, keys.Brand, keys.Platform} {
		data, err := signing.EncodePrivateKeyPEM(k)
		if err != nil {
			return nil, fmt.Errorf("sandbox keys: %w", err)
		}
		if err := writeFileAtomic(filepath.Join(dir, stateKeyFiles[i]), data, 0o600); err != nil {
			return nil, fmt.Errorf("sandbox keys: %w", err)
		}
	}
	return keys, nil
}

// writeFileAtomic writes data to a temporary file in path's directory and
// renames it over path, so a reader (or a crash) never sees half a file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Files WriteFiles writes.
const (
	EnvFileName            = "sandbox.env"
	MerchantKeyFileName    = "apiclient_key_merchant.pem"
	SPKeyFileName          = "apiclient_key_sp.pem"
	BrandKeyFileName       = "apiclient_key_brand.pem"
	PlatformPubKeyFileName = "wxpay_pub_key.pem"
)

// WriteFiles writes into dir the three callers' private keys (mode 0600), the
// WeChat Pay public key and sandbox.env: the CONSOLE_WXPAY_* settings of a
// console in live mode pointed at baseURL, with absolute key paths, so that
// `set -a; . DIR/sandbox.env` configures a console for this sandbox. A
// baseURL without a scheme ("127.0.0.1:8081") gets http://.
func (s *Sandbox) WriteFiles(dir, baseURL string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return err
	}
	if !strings.Contains(baseURL, "://") {
		baseURL = "http://" + baseURL
	}
	baseURL = strings.TrimRight(baseURL, "/")

	keyFiles := []struct {
		name string
		key  *rsa.PrivateKey
	}{
		{MerchantKeyFileName, s.ids.merchant.key},
		{SPKeyFileName, s.ids.sp.key},
		{BrandKeyFileName, s.ids.brand.key},
	}
	for _, kf := range keyFiles {
		data, err := signing.EncodePrivateKeyPEM(kf.key)
		if err != nil {
			return err
		}
		if err := writeFileAtomic(filepath.Join(abs, kf.name), data, 0o600); err != nil {
			return err
		}
	}
	pub, err := signing.EncodePublicKeyPEM(&s.ids.platform.PublicKey)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(abs, PlatformPubKeyFileName), pub, 0o644); err != nil {
		return err
	}

	lines := [][2]string{
		{"CONSOLE_WXPAY_MODE", "live"},
		{"CONSOLE_WXPAY_BASE_URL", baseURL},
		{"CONSOLE_WXPAY_FALLBACK_URL", baseURL},
		{"CONSOLE_WXPAY_MCHID", s.ids.merchant.id},
		{"CONSOLE_WXPAY_MCH_SERIAL", s.ids.merchant.serial},
		{"CONSOLE_WXPAY_MCH_KEY", filepath.Join(abs, MerchantKeyFileName)},
		{"CONSOLE_WXPAY_SP_MCHID", s.ids.sp.id},
		{"CONSOLE_WXPAY_SP_SERIAL", s.ids.sp.serial},
		{"CONSOLE_WXPAY_SP_KEY", filepath.Join(abs, SPKeyFileName)},
		{"CONSOLE_WXPAY_BRAND_ID", s.ids.brand.id},
		{"CONSOLE_WXPAY_BRAND_SERIAL", s.ids.brand.serial},
		{"CONSOLE_WXPAY_BRAND_KEY", filepath.Join(abs, BrandKeyFileName)},
		{"CONSOLE_WXPAY_PUBKEY_ID", s.ids.pubKeyID},
		{"CONSOLE_WXPAY_PUBKEY", filepath.Join(abs, PlatformPubKeyFileName)},
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l[0])
		b.WriteByte('=')
		b.WriteString(shellQuote(l[1]))
		b.WriteByte('\n')
	}
	return writeFileAtomic(filepath.Join(abs, EnvFileName), []byte(b.String()), 0o644)
}

// shellQuote leaves plain values bare, so the file also reads as a dotenv
// file, and single-quotes anything a shell would split or expand.
func shellQuote(v string) string {
	plain := v != ""
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-:@+,=%", r)) {
			plain = false
			break
		}
	}
	if plain {
		return v
	}
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}

// Credentials returns the callers' IDs, serials and private keys and the
// WeChat Pay public key and its ID.
func (s *Sandbox) Credentials() Credentials {
	return Credentials{
		MchID:       s.ids.merchant.id,
		MchSerial:   s.ids.merchant.serial,
		MchKey:      s.ids.merchant.key,
		SPMchID:     s.ids.sp.id,
		SPSerial:    s.ids.sp.serial,
		SPKey:       s.ids.sp.key,
		BrandID:     s.ids.brand.id,
		BrandSerial: s.ids.brand.serial,
		BrandKey:    s.ids.brand.key,
		PubKeyID:    s.ids.pubKeyID,
		PubKey:      &s.ids.platform.PublicKey,
	}
}
