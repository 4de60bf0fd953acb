package wxpay

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"voucherconsole/internal/wxpay/signing"
)

// The vectors below were computed independently of Go with
//
//	openssl dgst -sha256 -sign testdata/vector_key.pem msg.txt | base64 -w0
//
// over the messages in the table. testdata/vector_key.pem is a throwaway
// key made for these tests only.
const (
	vectorTimestamp = 1700000000
	vectorNonce     = "593BEC0C930BF1AFEB40B4A08C8FB242"
)

type signingVector struct {
	name    string
	call    func(ctx context.Context, c *Client) error
	message string // the exact text signed
	auth    string // the exact Authorization header
}

func signingVectors() []signingVector {
	return []signingVector{
		{
			name: "merchant GET with query",
			call: func(ctx context.Context, c *Client) error {
				_, err := c.GetFavorStock(ctx, "98065001")
				return err
			},
			message: "GET\n/v3/marketing/favor/stocks/98065001?stock_creator_mchid=1900000001\n1700000000\n593BEC0C930BF1AFEB40B4A08C8FB242\n\n",
			auth: `WECHATPAY2-SHA256-RSA2048 mchid="1900000001",nonce_str="593BEC0C930BF1AFEB40B4A08C8FB242",` +
				`signature="HY2YhNZXnEvPRCOW2nUKaH1qtUI+bqr4xXwPMNpWu7PgDVRohMdAHdR1zZHUs1CaPxLnFKOPAcF3uqUMOyv0ia4uBawpkNFIa7DN2/X9c3hk306JH8Td1d3Fo2pP56DQ0AUme3Wg0TtGZq1tzgzR+19YEs24NqxPltTonR3c/30hnvv3YIX2MxqVBVsBFte7ozOawKuHdQ+Kw35FNA6hJ+Wh+SqOlKUSVpxTwP71RonTWsTGZ3Pa9af5aqGDOhQ31AdykbUMxKf6neMHZnvQDNiHCvjVWdyFhq9f9A8tNU1Aj7GfSv0knDoh1KZXjWQwbZ6ozXETBCQDCmwNIKdQyA==",` +
				`timestamp="1700000000",serial_no="5157F09EFDC096DE15EBE81A47057A7232F1B8E1"`,
		},
		{
			name: "brand POST",
			call: func(ctx context.Context, c *Client) error {
				_, err := c.DeactivateProductCouponStock(ctx, "200000001", "123456789",
					DeactivateProductCouponStockRequest{OutRequestNo: "deact_20250101_0001", DeactivateReason: "批次信息有误,重新创建"})
				return err
			},
			message: "POST\n/brand/marketing/product-coupon/product-coupons/200000001/stocks/123456789/deactivate\n1700000000\n593BEC0C930BF1AFEB40B4A08C8FB242\n" +
				`{"out_request_no":"deact_20250101_0001","deactivate_reason":"批次信息有误,重新创建"}` + "\n",
			auth: `WECHATPAY-BRAND-SHA256-RSA2048 brand_id="120344",nonce_str="593BEC0C930BF1AFEB40B4A08C8FB242",` +
				`signature="QTXk9HKHpvA4unqPddt2wIAWANRRRqubrBMzFz1uDfRZV10aEC+uaeRHKhIcP7o6H/YlCO1PxNF8NAJDOZkepb08zK6h63FM3LFAeQUg48FN5aZu8RKZoyrRxa2MbLVMkSgN2CI484ERXupFg/nyd6s85mxQjQoDwMbpzUIZcYDAbOqKKSWZh38YxTg+O4VvabWFNpCKuWbXJe8ojbr/eFJ3jJYbr3MnaGOkZeOX6OHC36u8DO5PVhKzj6yjRs4pGhewlGOGVOIvosOdUnBp9x3RzNKhe17fc1G9ZfIhrzPd5kumBKNVynNHBNWP0Lk5B+QBDI1hym8BffCUVEEDgw==",` +
				`timestamp="1700000000",serial_no="1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C"`,
		},
		{
			name: "service provider POST with brand_id in body",
			call: func(ctx context.Context, c *Client) error {
				_, err := c.UploadProductCouponCodes(ctx, "200000001", "123456789",
					UploadProductCouponCodesRequest{OutRequestNo: "34657_20250101_123456", CodeList: []string{"vCode_1234567890"}})
				return err
			},
			message: "POST\n/v3/marketing/partner/product-coupon/product-coupons/200000001/stocks/123456789/upload-coupon-codes\n1700000000\n593BEC0C930BF1AFEB40B4A08C8FB242\n" +
				`{"out_request_no":"34657_20250101_123456","code_list":["vCode_1234567890"],"brand_id":"120344"}` + "\n",
			auth: `WECHATPAY2-SHA256-RSA2048 mchid="1900000099",nonce_str="593BEC0C930BF1AFEB40B4A08C8FB242",` +
				`signature="R6lAtwVg9jVGH2JK1enHcEzOdKYhHNwt6i3NxYvlZ5kTfRJXxNlwQWbkKibHmria27Vac+D7vts8Edkh0gwVxravkf/BuKO57c0xdThLLbPR3KVN6H3OcQtnyrBY8zYAzVi2GPZSNEQhIJbAFTR+mVmyAqyjDxBeT6EXkeUDKsSmDgmx4dnnjCsl+215lSXwz2k+wjDrGaXTdzvNMaHDvW4qSF/eGiaqvfSLA7Bx+YADaFtuc17mZf73aVRXlFFiEI4RfVtRJLApvFRS5YGXTqxVLedubSrNwqOqe/N+t7t+jveLx1B5m80+F92rL5udEO2uGQjyRDHQbhqw+2z/oQ==",` +
				`timestamp="1700000000",serial_no="3775B6A45ACD588826D15E583A95F5DD2C08AA73"`,
		},
	}
}

func loadVectorKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := signing.LoadPrivateKey(filepath.Join("testdata", "vector_key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestSigningVectors drives the real client (fixed clock and nonce, all
// three identities signing with the vector key) and checks the exact
// Authorization header it puts on the wire, and that openssl verifies it.
func TestSigningVectors(t *testing.T) {
	key := loadVectorKey(t)
	now := time.Unix(vectorTimestamp, 0)
	var got []recorded
	srv := newFakeWX(t, func() time.Time { return now }, func(i int, r recorded) reply {
		return reply{body: `{}`}
	})
	cfg := testConfig(srv.srv.URL)
	cfg.MchKey, cfg.SPKey, cfg.BrandKey = key, key, key
	cfg.Now = func() time.Time { return now }
	c := newTestClient(t, cfg)
	c.newNonce = func() string { return vectorNonce }

	for i, v := range signingVectors() {
		t.Run(v.name, func(t *testing.T) {
			_ = v.call(t.Context(), c) // the fake server checks signatures with other keys; only the request matters
			got = srv.requests()
			if len(got) != i+1 {
				t.Fatalf("requests = %d, want %d", len(got), i+1)
			}
			r := got[i]
			if auth := r.Header.Get("Authorization"); auth != v.auth {
				t.Errorf("Authorization:\n got %s\nwant %s", auth, v.auth)
			}
			msg := signing.RequestMessage(r.Method, r.URI, vectorTimestamp, vectorNonce, r.Body)
			if string(msg) != v.message {
				t.Errorf("signed message:\n got %q\nwant %q", msg, v.message)
			}
			a, err := signing.ParseAuthorization(v.auth)
			if err != nil {
				t.Fatal(err)
			}
			opensslVerify(t, &key.PublicKey, []byte(v.message), a.Signature)
		})
	}
}

// TestSigningGeneratedKeyOpenSSL signs with a key generated in the test
// and has openssl verify the signature, for both schemes' messages.
func TestSigningGeneratedKeyOpenSSL(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range signingVectors() {
		t.Run(v.name, func(t *testing.T) {
			sig, err := signing.Sign(key, []byte(v.message))
			if err != nil {
				t.Fatal(err)
			}
			opensslVerify(t, &key.PublicKey, []byte(v.message), sig)
			// A one-byte change must not verify.
			tampered := []byte(v.message)
			tampered[0] ^= 1
			if opensslRun(t, &key.PublicKey, tampered, sig) {
				t.Error("openssl verified a tampered message")
			}
		})
	}
}

func opensslPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("openssl not found (required when CI=true): %v", err)
		}
		t.Skipf("openssl not found: %v", err)
	}
	return p
}

func opensslVerify(t *testing.T, pub *rsa.PublicKey, msg []byte, sigB64 string) {
	t.Helper()
	if !opensslRun(t, pub, msg, sigB64) {
		t.Errorf("openssl did not verify the signature over %q", msg)
	}
}

// opensslRun runs `openssl dgst -sha256 -verify pub.pem -signature sig.bin
// msg.txt` and reports whether it printed "Verified OK".
func opensslRun(t *testing.T, pub *rsa.PublicKey, msg []byte, sigB64 string) bool {
	t.Helper()
	bin := opensslPath(t)
	dir := t.TempDir()
	pubPEM, err := signing.EncodePublicKeyPEM(pub)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"pub.pem": pubPEM, "sig.bin": sig, "msg.txt": msg}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, "dgst", "-sha256", "-verify", "pub.pem", "-signature", "sig.bin", "msg.txt")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	ok := err == nil && bytes.Contains(out, []byte("Verified OK"))
	if !ok && err == nil {
		t.Logf("openssl: %s", strings.TrimSpace(string(out)))
	}
	return ok
}
