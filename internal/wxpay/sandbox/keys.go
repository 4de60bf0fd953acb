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
// certificate keys and, since each caller is a WeChat Pay account of its
// own, each account's WeChat Pay public key pair, which signs its replies in
// public-key mode. Platform certificates (certificate mode) get keys of
// their own, made when first needed.
type Keys struct {
	Merchant        *rsa.PrivateKey
	ServiceProvider *rsa.PrivateKey
	Brand           *rsa.PrivateKey

	MerchantWxPay        *rsa.PrivateKey
	ServiceProviderWxPay *rsa.PrivateKey
	BrandWxPay           *rsa.PrivateKey
}

// GenerateKeys makes six fresh RSA-2048 keys. It takes a few seconds; tests
// generate one set and share it through Options.Keys.
func GenerateKeys() (*Keys, error) {
	var ks [6]*rsa.PrivateKey
	for i := range ks {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, fmt.Errorf("generate RSA key: %w", err)
		}
		ks[i] = k
	}
	return &Keys{Merchant: ks[0], ServiceProvider: ks[1], Brand: ks[2],
		MerchantWxPay: ks[3], ServiceProviderWxPay: ks[4], BrandWxPay: ks[5]}, nil
}

func (k *Keys) list() []*rsa.PrivateKey {
	return []*rsa.PrivateKey{k.Merchant, k.ServiceProvider, k.Brand, k.MerchantWxPay, k.ServiceProviderWxPay, k.BrandWxPay}
}

func (k *Keys) complete() bool {
	if k == nil {
		return false
	}
	for _, x := range k.list() {
		if x == nil {
			return false
		}
	}
	return true
}

// Credentials are what a client needs to call the sandbox: per account its
// ID, API certificate serial and private key, and how its replies are
// verified: its WeChat Pay public key and that key's ID, and its APIv3 key
// (for the platform certificates of certificate mode).
type Credentials struct {
	MchID       string
	MchSerial   string
	MchKey      *rsa.PrivateKey
	MchPubKeyID string // PUB_KEY_ID_…
	MchPubKey   *rsa.PublicKey
	MchAPIv3Key []byte

	SPMchID    string
	SPSerial   string
	SPKey      *rsa.PrivateKey
	SPPubKeyID string
	SPPubKey   *rsa.PublicKey
	SPAPIv3Key []byte

	BrandID       string
	BrandSerial   string
	BrandKey      *rsa.PrivateKey
	BrandPubKeyID string
	BrandPubKey   *rsa.PublicKey
	BrandAPIv3Key []byte
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

// Key file names inside StateDir/keys: the callers' keys, then the
// accounts' WeChat Pay public key pairs. (A platform_key.pem left by an
// older sandbox, which had one WeChat Pay key for all, is ignored.)
var stateKeyFiles = [6]string{"merchant_key.pem", "sp_key.pem", "brand_key.pem",
	"merchant_wxpay_key.pem", "sp_wxpay_key.pem", "brand_wxpay_key.pem"}

// loadOrCreateKeys reads the keys from dir; those missing come from preset
// (or are generated) and are saved with mode 0600. A partial set of the
// callers' keys is an error rather than silently replaced, since replacing
// them would break every console configured with the old ones; the
// accounts' WeChat Pay keys go into sandbox.env at every start, so missing
// ones (a directory from an older sandbox) are simply made.
func loadOrCreateKeys(dir string, preset *Keys) (*Keys, error) {
	var found [6]*rsa.PrivateKey
	callers := 0
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
		if i < 3 {
			callers++
		}
	}
	if callers != 0 && callers != 3 {
		return nil, fmt.Errorf("sandbox keys: only %d of the 3 callers' key files in %s", callers, dir)
	}
	var fill []*rsa.PrivateKey
	if preset.complete() {
		fill = preset.list()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sandbox keys: %w", err)
	}
	for i := range found {
		if found[i] != nil {
			continue
		}
		var k *rsa.PrivateKey
		if fill != nil {
			k = fill[i]
		} else {
			var err error
			if k, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
				return nil, fmt.Errorf("generate RSA key: %w", err)
			}
		}
		data, err := signing.EncodePrivateKeyPEM(k)
		if err != nil {
			return nil, fmt.Errorf("sandbox keys: %w", err)
		}
		if err := writeFileAtomic(filepath.Join(dir, stateKeyFiles[i]), data, 0o600); err != nil {
			return nil, fmt.Errorf("sandbox keys: %w", err)
		}
		found[i] = k
	}
	return &Keys{Merchant: found[0], ServiceProvider: found[1], Brand: found[2],
		MerchantWxPay: found[3], ServiceProviderWxPay: found[4], BrandWxPay: found[5]}, nil
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

// Files WriteFiles writes: per account its API private key (mode 0600),
// and its WeChat Pay public key (public-key and both modes) or its APIv3 key
// (certificate and both modes, mode 0600).
const (
	EnvFileName         = "sandbox.env"
	MerchantKeyFileName = "apiclient_key_merchant.pem"
	SPKeyFileName       = "apiclient_key_sp.pem"
	BrandKeyFileName    = "apiclient_key_brand.pem"

	MerchantPubKeyFileName = "wxpay_pub_key_merchant.pem"
	SPPubKeyFileName       = "wxpay_pub_key_sp.pem"
	BrandPubKeyFileName    = "wxpay_pub_key_brand.pem"

	MerchantAPIv3KeyFileName = "apiv3_key_merchant.txt"
	SPAPIv3KeyFileName       = "apiv3_key_sp.txt"
	BrandAPIv3KeyFileName    = "apiv3_key_brand.txt"
)

// WriteFiles writes into dir each account's key files and sandbox.env: the
// CONSOLE_WXPAY_* settings of a console in live mode pointed at baseURL,
// with absolute key paths, so that `set -a; . DIR/sandbox.env` configures a
// console for this sandbox. The verification settings follow the verify
// mode: public-key lines (CONSOLE_WXPAY_MCH_PUBKEY_ID…), APIv3 key lines
// (CONSOLE_WXPAY_MCH_APIV3_KEY…), or both. A baseURL without a scheme
// ("127.0.0.1:8081") gets http://.
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

	lines := [][2]string{
		{"CONSOLE_WXPAY_MODE", "live"},
		{"CONSOLE_WXPAY_BASE_URL", baseURL},
		{"CONSOLE_WXPAY_FALLBACK_URL", baseURL},
	}
	files := []struct {
		acct                     *account
		env, idVar               string
		keyFile, pubFile, v3File string
	}{
		{s.ids.merchant, "MCH", "CONSOLE_WXPAY_MCHID", MerchantKeyFileName, MerchantPubKeyFileName, MerchantAPIv3KeyFileName},
		{s.ids.sp, "SP", "CONSOLE_WXPAY_SP_MCHID", SPKeyFileName, SPPubKeyFileName, SPAPIv3KeyFileName},
		{s.ids.brand, "BRAND", "CONSOLE_WXPAY_BRAND_ID", BrandKeyFileName, BrandPubKeyFileName, BrandAPIv3KeyFileName},
	}
	mode := s.VerifyMode()
	for _, f := range files {
		data, err := signing.EncodePrivateKeyPEM(f.acct.key)
		if err != nil {
			return err
		}
		if err := writeFileAtomic(filepath.Join(abs, f.keyFile), data, 0o600); err != nil {
			return err
		}
		lines = append(lines,
			[2]string{f.idVar, f.acct.id},
			[2]string{"CONSOLE_WXPAY_" + f.env + "_SERIAL", f.acct.serial},
			[2]string{"CONSOLE_WXPAY_" + f.env + "_KEY", filepath.Join(abs, f.keyFile)})
		if mode != VerifyCertificate {
			pub, err := signing.EncodePublicKeyPEM(&f.acct.wxKey.PublicKey)
			if err != nil {
				return err
			}
			if err := writeFileAtomic(filepath.Join(abs, f.pubFile), pub, 0o644); err != nil {
				return err
			}
			lines = append(lines,
				[2]string{"CONSOLE_WXPAY_" + f.env + "_PUBKEY_ID", f.acct.pubKeyID},
				[2]string{"CONSOLE_WXPAY_" + f.env + "_PUBKEY", filepath.Join(abs, f.pubFile)})
		}
		if mode != VerifyPublicKey {
			if err := writeFileAtomic(filepath.Join(abs, f.v3File), []byte(f.acct.apiv3+"\n"), 0o600); err != nil {
				return err
			}
			lines = append(lines, [2]string{"CONSOLE_WXPAY_" + f.env + "_APIV3_KEY", filepath.Join(abs, f.v3File)})
		}
	}
	// Files of another mode, left by an earlier run, would mislead.
	for _, f := range files {
		if mode == VerifyCertificate {
			_ = os.Remove(filepath.Join(abs, f.pubFile))
		}
		if mode == VerifyPublicKey {
			_ = os.Remove(filepath.Join(abs, f.v3File))
		}
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

// Credentials returns each account's ID, serial and private key, its
// WeChat Pay public key and ID, and its APIv3 key.
func (s *Sandbox) Credentials() Credentials {
	m, sp, b := s.ids.merchant, s.ids.sp, s.ids.brand
	return Credentials{
		MchID: m.id, MchSerial: m.serial, MchKey: m.key,
		MchPubKeyID: m.pubKeyID, MchPubKey: &m.wxKey.PublicKey, MchAPIv3Key: []byte(m.apiv3),
		SPMchID: sp.id, SPSerial: sp.serial, SPKey: sp.key,
		SPPubKeyID: sp.pubKeyID, SPPubKey: &sp.wxKey.PublicKey, SPAPIv3Key: []byte(sp.apiv3),
		BrandID: b.id, BrandSerial: b.serial, BrandKey: b.key,
		BrandPubKeyID: b.pubKeyID, BrandPubKey: &b.wxKey.PublicKey, BrandAPIv3Key: []byte(b.apiv3),
	}
}
