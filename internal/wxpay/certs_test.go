package wxpay

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"
)

// sealCert encrypts a certificate as WeChat Pay's download does.
func sealCert(t *testing.T, key []byte, pemText []byte, nonce, ad string) encryptedCertificate {
	t.Helper()
	block, _ := aes.NewCipher(key)
	gcm, _ := cipher.NewGCM(block)
	return encryptedCertificate{Algorithm: "AEAD_AES_256_GCM", Nonce: nonce, AssociatedData: ad,
		Ciphertext: base64.StdEncoding.EncodeToString(gcm.Seal(nil, []byte(nonce), pemText, []byte(ad)))}
}

func testCert(t *testing.T) ([]byte, string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := new(big.Int).SetString("5157F09EFDC096DE15EBE81A47057A7232F1B8E1", 16)
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
}

func TestDecryptCertificate(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	certPEM, serial := testCert(t)
	good := sealCert(t, key, certPEM, "0123456789ab", "certificate")
	tamperedTag := good
	ct, _ := base64.StdEncoding.DecodeString(good.Ciphertext)
	ct[len(ct)-1] ^= 1 // the last byte is the tag's
	tamperedTag.Ciphertext = base64.StdEncoding.EncodeToString(ct)
	otherAD := good
	otherAD.AssociatedData = "transaction"
	otherNonce := good
	otherNonce.Nonce = "ba9876543210"
	otherAlg := good
	otherAlg.Algorithm = "AEAD_SM4_GCM"
	shortNonce := good
	shortNonce.Nonce = "abc"

	pt, err := decryptResource(key, good)
	if err != nil || string(pt) != string(certPEM) {
		t.Fatalf("decrypt: %v", err)
	}
	c, err := ParsePlatformCert(string(pt))
	if err != nil || c.Serial != serial || len(c.Fingerprint) != 64 {
		t.Fatalf("parse: %+v %v", c, err)
	}
	for name, e := range map[string]encryptedCertificate{
		"wrong_tag": tamperedTag, "other_associated_data": otherAD, "other_nonce": otherNonce,
		"other_algorithm": otherAlg, "short_nonce": shortNonce,
	} {
		if _, err := decryptResource(key, e); !errors.Is(err, ErrCertDecrypt) {
			t.Errorf("%s: %v, want ErrCertDecrypt", name, err)
		}
	}
	if _, err := decryptResource([]byte(strings.Repeat("x", 32)), good); !errors.Is(err, ErrCertDecrypt) ||
		!strings.Contains(err.Error(), "authentication tag does not match") {
		t.Errorf("wrong key: %v", err)
	}
	if _, err := decryptResource(key, tamperedTag); err == nil || strings.Contains(err.Error(), string(key)) {
		t.Errorf("the error must not carry the key: %v", err)
	}
}

// A download whose serial_no disagrees with the certificate inside is
// refused: the reply would otherwise be verified with a certificate under
// a name it does not have.
func TestDecodeCertificatesSerialMismatch(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	certPEM, serial := testCert(t)
	enc := sealCert(t, key, certPEM, "0123456789ab", "certificate")
	a := &acct{name: "merchant", id: "1230000109", apiv3: key}
	body := func(s string) []byte {
		return []byte(`{"data":[{"serial_no":"` + s + `","effective_time":"","expire_time":"","encrypt_certificate":{"algorithm":"` +
			enc.Algorithm + `","nonce":"` + enc.Nonce + `","associated_data":"` + enc.AssociatedData + `","ciphertext":"` + enc.Ciphertext + `"}}]}`)
	}
	certs, err := decodeCertificates(a, body(strings.ToLower(serial)))
	if err != nil || len(certs) != 1 || certs[0].Serial != serial {
		t.Fatalf("decode: %v", err)
	}
	if _, err := decodeCertificates(a, body("00AA")); !errors.Is(err, ErrCertInvalid) || !strings.Contains(err.Error(), "merchant 1230000109") {
		t.Fatalf("serial mismatch: %v", err)
	}
}

func TestLoadAPIv3Key(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		content string
		ok      bool
	}{
		"exact": {strings.Repeat("a", 32), true}, "newline": {strings.Repeat("a", 32) + "\n", true},
		"short": {"abc", false}, "long": {strings.Repeat("a", 33), false},
	} {
		p := dir + "/" + name
		if err := writeTestFile(p, tc.content); err != nil {
			t.Fatal(err)
		}
		k, err := LoadAPIv3Key(p)
		if tc.ok != (err == nil) || (err == nil && len(k) != 32) {
			t.Errorf("%s: %v", name, err)
		}
		if err != nil && strings.Contains(err.Error(), tc.content) && tc.content != "" {
			t.Errorf("%s: the error shows the key", name)
		}
	}
}

func writeTestFile(p, s string) error { return os.WriteFile(p, []byte(s), 0o600) }
