package wxpay

import (
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"voucherconsole/internal/wxpay/signing"
)

// Reasons VerifyReply refuses a reply.
var (
	ErrReplyMissingHeaders   = errors.New("reply lacks Wechatpay-Timestamp, -Nonce, -Signature or -Serial")
	ErrReplyMalformedHeaders = errors.New("reply signature headers are malformed")
	ErrReplySerial           = errors.New("reply is signed with an unexpected key (Wechatpay-Serial)")
	ErrReplyStale            = errors.New("reply timestamp is 5 minutes or more away from local time")
	ErrReplySignature        = errors.New("reply signature does not verify")
)

// ReplyMaxSkew is how far a reply's Wechatpay-Timestamp may be from local
// time; a reply this far away or farther is refused (replay protection).
const ReplyMaxSkew = 5 * time.Minute

// VerifyReply checks a 2xx reply's signature headers against WeChat Pay's
// public key: Wechatpay-Serial must be pubKeyID, Wechatpay-Timestamp less
// than ReplyMaxSkew from now, and Wechatpay-Signature a SHA256withRSA
// signature of "TIMESTAMP\nNONCE\nBODY\n". Errors wrap one of the ErrReply…
// sentinels.
func VerifyReply(pub *rsa.PublicKey, pubKeyID string, now time.Time, h http.Header, body []byte) error {
	if pub == nil {
		return fmt.Errorf("%w: no WeChat Pay public key configured", ErrReplySignature)
	}
	rh, err := parseReplyHeaders(h)
	if err != nil {
		return err
	}
	if rh.serial != pubKeyID {
		return fmt.Errorf("%w: got %q, want %q", ErrReplySerial, truncate(rh.serial, 64), pubKeyID)
	}
	if err := rh.fresh(now); err != nil {
		return err
	}
	return rh.verify(pub, body)
}

// replyHeaders are a reply's signature headers, checked for form.
type replyHeaders struct {
	ts, nonce, sig, serial string
	at                     time.Time // the timestamp
}

// parseReplyHeaders reads the signature headers, refusing missing or
// malformed ones.
func parseReplyHeaders(h http.Header) (replyHeaders, error) {
	rh := replyHeaders{
		ts: h.Get(signing.HeaderTimestamp), nonce: h.Get(signing.HeaderNonce),
		sig: h.Get(signing.HeaderSignature), serial: h.Get(signing.HeaderSerial),
	}
	var missing []string
	for _, f := range []struct{ name, v string }{
		{signing.HeaderTimestamp, rh.ts}, {signing.HeaderNonce, rh.nonce},
		{signing.HeaderSignature, rh.sig}, {signing.HeaderSerial, rh.serial},
	} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return rh, fmt.Errorf("%w: %s", ErrReplyMissingHeaders, strings.Join(missing, ", "))
	}
	// The signed message is newline-separated, so a nonce holding a newline
	// (or a timestamp that is not plain digits) could move bytes between the
	// nonce and the body without changing the message. Refusing such headers
	// makes the split, and so what the signature covers, unambiguous.
	secs, ok := parseDigits(rh.ts)
	if !ok {
		return rh, fmt.Errorf("%w: Wechatpay-Timestamp %q is not a decimal Unix time", ErrReplyMalformedHeaders, truncate(rh.ts, 32))
	}
	if strings.ContainsAny(rh.nonce, "\r\n") {
		return rh, fmt.Errorf("%w: Wechatpay-Nonce holds a line break", ErrReplyMalformedHeaders)
	}
	rh.at = time.Unix(secs, 0)
	return rh, nil
}

// fresh refuses a reply stamped ReplyMaxSkew or more away from now.
func (rh replyHeaders) fresh(now time.Time) error {
	skew := now.Sub(rh.at)
	if skew >= ReplyMaxSkew || skew <= -ReplyMaxSkew {
		return fmt.Errorf("%w: Wechatpay-Timestamp %s is %s off", ErrReplyStale, rh.ts, skew.Round(time.Second))
	}
	return nil
}

// verify checks the signature over the reply with pub.
func (rh replyHeaders) verify(pub *rsa.PublicKey, body []byte) error {
	// Strict decoding refuses non-canonical base64 (stray padding bits), so
	// one signature has exactly one accepted spelling.
	if _, err := base64.StdEncoding.Strict().DecodeString(rh.sig); err != nil {
		return fmt.Errorf("%w: not canonical base64", ErrReplySignature)
	}
	if err := signing.Verify(pub, signing.ReplyMessage(rh.ts, rh.nonce, body), rh.sig); err != nil {
		return fmt.Errorf("%w: %v", ErrReplySignature, err)
	}
	return nil
}

// parseDigits parses a non-negative decimal made only of ASCII digits (no
// sign, no spaces), the form WeChat Pay sends.
func parseDigits(s string) (int64, bool) {
	if s == "" || len(s) > 12 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}
