package wxpay

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"voucherconsole/internal/wxpay/signing"
)

// TestConfigNeverPrintsKeys: every way a Config is likely to be printed or
// logged shows identities but no key material.
func TestConfigNeverPrintsKeys(t *testing.T) {
	cfg := testConfig("http://127.0.0.1:1")
	k := testKeys()
	secrets := []string{
		k.mch.D.String(), k.mch.Primes[0].String(), k.sp.D.String(), k.brand.D.String(),
		k.mch.N.String(), k.wx.N.String(),
	}
	var logBuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("config", "wxpay", cfg)
	outputs := map[string]string{
		"%v":   fmt.Sprintf("%v", cfg),
		"%+v":  fmt.Sprintf("%+v", cfg),
		"%#v":  fmt.Sprintf("%#v", cfg),
		"%s":   fmt.Sprintf("%s", cfg), //lint:ignore S1025 the test is of what %s prints
		"ptr":  fmt.Sprintf("%+v", &cfg),
		"slog": logBuf.String(),
	}
	for name, out := range outputs {
		for _, s := range secrets {
			if strings.Contains(out, s[:40]) {
				t.Errorf("%s output contains key material: %.200s", name, out)
			}
		}
		if !strings.Contains(out, testMchID) || !strings.Contains(out, "REDACTED") {
			t.Errorf("%s output lacks identities or redaction marks: %.300s", name, out)
		}
	}
}

func TestLoadKeys(t *testing.T) {
	dir := t.TempDir()
	k := testKeys()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mchPEM, _ := signing.EncodePrivateKeyPEM(k.mch)
	brandPEM, _ := signing.EncodePrivateKeyPEM(k.brand)
	pubPEM, _ := signing.EncodePublicKeyPEM(&k.wx.PublicKey)
	files := KeyFiles{
		MchKey:   write("apiclient_key.pem", mchPEM),
		BrandKey: write("brand_key.pem", brandPEM),
		PubKey:   write("pub_key.pem", pubPEM),
	}
	var cfg Config
	if err := cfg.LoadKeys(files); err != nil {
		t.Fatalf("LoadKeys: %v", err)
	}
	if !cfg.MchKey.Equal(k.mch) || !cfg.BrandKey.Equal(k.brand) || !cfg.PubKey.Equal(&k.wx.PublicKey) || cfg.SPKey != nil {
		t.Error("keys not loaded as expected")
	}

	// Errors name the file, never its content.
	secret := "-----BEGIN PRIVATE KEY-----\nTOPSECRETKEYBYTES\n-----END PRIVATE KEY-----\n"
	bad := write("broken.pem", []byte(secret))
	missing := filepath.Join(dir, "missing.pem")
	err := (&Config{}).LoadKeys(KeyFiles{SPKey: bad, PubKey: missing, MchKey: write("pub_as_private.pem", pubPEM)})
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{bad, missing, "pub_as_private.pem", "service provider key", "public key"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	if strings.Contains(msg, "TOPSECRET") || strings.Contains(msg, "BEGIN") {
		t.Errorf("error leaks file content: %q", msg)
	}
	if !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, signing.ErrBadKey) {
		t.Errorf("error chain lost: %v", err)
	}
}
