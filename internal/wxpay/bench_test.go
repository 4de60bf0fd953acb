package wxpay

import (
	"net/http"
	"testing"

	"voucherconsole/internal/wxpay/signing"
)

// BenchmarkSign measures request signing as the client does it: message
// construction and RSA-2048 PKCS #1 v1.5 over a typical deactivate body.
func BenchmarkSign(b *testing.B) {
	key := testKeys().brand
	body := []byte(`{"out_request_no":"deact_20250101_0001","deactivate_reason":"批次信息有误,重新创建"}`)
	const path = "/brand/marketing/product-coupon/product-coupons/200000001/stocks/123456789/deactivate"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := signing.SignRequest(signing.SchemeBrand, testBrandID, testBrandSerial, key, "POST", path, 1700000000, vectorNonce, body); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sigs/s")
}

// BenchmarkVerifyReply measures reply verification on a stock-entity reply.
func BenchmarkVerifyReply(b *testing.B) {
	pub := &testKeys().wx.PublicKey
	body := []byte(stockEntityJSON)
	h := http.Header{}
	signReply(testKeys().wx, testPubKeyID, verifyNow, h, body)
	b.ReportAllocs()
	for b.Loop() {
		if err := VerifyReply(pub, testPubKeyID, verifyNow, h, body); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifies/s")
}
