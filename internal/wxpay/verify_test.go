package wxpay

import (
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"voucherconsole/internal/wxpay/signing"
)

var verifyNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

const verifyBody = `{"product_coupon_id":"200000001","stock_id":"123456789","state":"DEACTIVATED"}`

// signedReply returns headers WeChat Pay would send for body at ts.
func signedReply(t testing.TB, ts time.Time, body string) http.Header {
	t.Helper()
	h := http.Header{}
	signReply(testKeys().wx, testPubKeyID, ts, h, []byte(body))
	return h
}

func TestVerifyReply(t *testing.T) {
	pub := &testKeys().wx.PublicKey
	tests := []struct {
		name   string
		mutate func(h http.Header) (body string)
		want   error // nil: accepted
	}{
		{"untouched", func(h http.Header) string { return verifyBody }, nil},
		{"changed body", func(h http.Header) string { return verifyBody[:len(verifyBody)-2] + `X"}` }, ErrReplySignature},
		{"body with extra newline", func(h http.Header) string { return verifyBody + "\n" }, ErrReplySignature},
		{"wrong serial", func(h http.Header) string {
			h.Set(signing.HeaderSerial, "PUB_KEY_ID_0000000000000000000000000000")
			return verifyBody
		}, ErrReplySerial},
		{"signed by another key", func(h http.Header) string {
			other := http.Header{}
			signReply(testKeys().other, testPubKeyID, verifyNow, other, []byte(verifyBody))
			for k, v := range other {
				h[k] = v
			}
			return verifyBody
		}, ErrReplySignature},
		{"nonce changed", func(h http.Header) string {
			h.Set(signing.HeaderNonce, h.Get(signing.HeaderNonce)+"0")
			return verifyBody
		}, ErrReplySignature},
		{"signature not base64", func(h http.Header) string {
			h.Set(signing.HeaderSignature, "%%%")
			return verifyBody
		}, ErrReplySignature},
		{"timestamp not digits", func(h http.Header) string {
			h.Set(signing.HeaderTimestamp, "+"+h.Get(signing.HeaderTimestamp))
			return verifyBody
		}, ErrReplyMalformedHeaders},
		{"nonce with newline", func(h http.Header) string {
			h.Set(signing.HeaderNonce, "a\nb")
			return verifyBody
		}, ErrReplyMalformedHeaders},
		{"missing timestamp", func(h http.Header) string { h.Del(signing.HeaderTimestamp); return verifyBody }, ErrReplyMissingHeaders},
		{"missing nonce", func(h http.Header) string { h.Del(signing.HeaderNonce); return verifyBody }, ErrReplyMissingHeaders},
		{"missing signature", func(h http.Header) string { h.Del(signing.HeaderSignature); return verifyBody }, ErrReplyMissingHeaders},
		{"missing serial", func(h http.Header) string { h.Del(signing.HeaderSerial); return verifyBody }, ErrReplyMissingHeaders},
		{"no headers at all", func(h http.Header) string { clear(h); return verifyBody }, ErrReplyMissingHeaders},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := signedReply(t, verifyNow, verifyBody)
			body := tt.mutate(h)
			err := VerifyReply(pub, testPubKeyID, verifyNow, h, []byte(body))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("refused a genuine reply: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestVerifyReplyTimestampWindow: a reply 5 minutes or more away from local
// time, either way, is refused; anything strictly inside is accepted.
func TestVerifyReplyTimestampWindow(t *testing.T) {
	pub := &testKeys().wx.PublicKey
	tests := []struct {
		name   string
		offset time.Duration // reply timestamp relative to now
		ok     bool
	}{
		{"now", 0, true},
		{"4m59s old", -(5*time.Minute - time.Second), true},
		{"4m59s ahead", 5*time.Minute - time.Second, true},
		{"exactly 5m old", -5 * time.Minute, false},
		{"exactly 5m ahead", 5 * time.Minute, false},
		{"1h old", -time.Hour, false},
		{"1h ahead", time.Hour, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := signedReply(t, verifyNow.Add(tt.offset), verifyBody)
			err := VerifyReply(pub, testPubKeyID, verifyNow, h, []byte(verifyBody))
			if tt.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tt.ok && !errors.Is(err, ErrReplyStale) {
				t.Fatalf("err = %v, want ErrReplyStale", err)
			}
		})
	}
	// Sub-second local time: 4m59.999s is still inside, 5m0.000s is not.
	h := signedReply(t, verifyNow, verifyBody)
	if err := VerifyReply(pub, testPubKeyID, verifyNow.Add(5*time.Minute-time.Millisecond), h, []byte(verifyBody)); err != nil {
		t.Errorf("4m59.999s: %v", err)
	}
	if err := VerifyReply(pub, testPubKeyID, verifyNow.Add(5*time.Minute), h, []byte(verifyBody)); !errors.Is(err, ErrReplyStale) {
		t.Errorf("5m0s: err = %v, want ErrReplyStale", err)
	}
}

func TestVerifyReplyNoKey(t *testing.T) {
	h := signedReply(t, verifyNow, verifyBody)
	if err := VerifyReply(nil, testPubKeyID, verifyNow, h, []byte(verifyBody)); !errors.Is(err, ErrReplySignature) {
		t.Fatalf("err = %v", err)
	}
}

// FuzzVerifyReply: VerifyReply never panics, and the only input it accepts
// is the genuine reply, byte for byte; every mutation of headers or body is
// refused.
func FuzzVerifyReply(f *testing.F) {
	pub := &testKeys().wx.PublicKey
	genuine := signedReply(f, verifyNow, verifyBody)
	gTS := genuine.Get(signing.HeaderTimestamp)
	gNonce := genuine.Get(signing.HeaderNonce)
	gSig := genuine.Get(signing.HeaderSignature)

	f.Add(gTS, gNonce, gSig, testPubKeyID, []byte(verifyBody))
	f.Add(gTS, gNonce, gSig, testPubKeyID, []byte(verifyBody+" "))
	f.Add(gTS, gNonce+"\n", gSig, testPubKeyID, []byte(verifyBody))
	f.Add(gTS, gNonce, gSig[:len(gSig)-3]+"B==", testPubKeyID, []byte(verifyBody)) // padding-bit malleability
	f.Add(strconv.FormatInt(verifyNow.Unix()-300, 10), gNonce, gSig, testPubKeyID, []byte(verifyBody))
	f.Add("0"+gTS, gNonce, gSig, testPubKeyID, []byte(verifyBody))
	f.Add("", "", "", "", []byte(nil))
	f.Add("99999999999999999999", "n", "AAAA", testPubKeyID, []byte("{}"))
	f.Add(gTS, gNonce, gSig, "pub_key_id_0114232134912410000000000000", []byte(verifyBody))

	f.Fuzz(func(t *testing.T, ts, nonce, sig, serial string, body []byte) {
		h := http.Header{}
		h[signing.HeaderTimestamp] = []string{ts}
		h[signing.HeaderNonce] = []string{nonce}
		h[signing.HeaderSignature] = []string{sig}
		h[signing.HeaderSerial] = []string{serial}
		err := VerifyReply(pub, testPubKeyID, verifyNow, h, body)
		isGenuine := ts == gTS && nonce == gNonce && sig == gSig && serial == testPubKeyID && string(body) == verifyBody
		if err == nil && !isGenuine {
			t.Fatalf("accepted a forged reply: ts=%q nonce=%q sig=%q serial=%q body=%q", ts, nonce, sig, serial, body)
		}
		if err != nil && isGenuine {
			t.Fatalf("refused the genuine reply: %v", err)
		}
		if err != nil && !errors.Is(err, ErrReplyMissingHeaders) && !errors.Is(err, ErrReplyMalformedHeaders) &&
			!errors.Is(err, ErrReplySerial) && !errors.Is(err, ErrReplyStale) && !errors.Is(err, ErrReplySignature) {
			t.Fatalf("error without a sentinel: %v", err)
		}
	})
}
