// Package signing implements the WeChat Pay APIv3 signature rules shared by
// the console's client and its sandbox: the request message and the
// Authorization header of both schemes (merchant/service provider and brand),
// the reply message and its headers, and loading RSA keys from PEM files.
//
// The rules are WeChat Pay's published ones: SHA256withRSA (PKCS #1 v1.5),
// base64, over newline-terminated lines.
package signing

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Scheme is an Authorization scheme name.
type Scheme string

const (
	// SchemeMerchant is used by merchants and service providers; the
	// identity field is mchid.
	SchemeMerchant Scheme = "WECHATPAY2-SHA256-RSA2048"
	// SchemeBrand is used by brands on /brand/ endpoints; the identity field
	// is brand_id.
	SchemeBrand Scheme = "WECHATPAY-BRAND-SHA256-RSA2048"
)

// IDField is the name of the Authorization parameter carrying the caller's
// identity under this scheme.
func (s Scheme) IDField() string {
	if s == SchemeBrand {
		return "brand_id"
	}
	return "mchid"
}

// Reply header names WeChat Pay signs its answers with.
const (
	HeaderTimestamp = "Wechatpay-Timestamp"
	HeaderNonce     = "Wechatpay-Nonce"
	HeaderSignature = "Wechatpay-Signature"
	HeaderSerial    = "Wechatpay-Serial"
	HeaderRequestID = "Request-ID"
)

// RequestMessage is the text a request signature covers:
// METHOD\nPATH_WITH_QUERY\nTIMESTAMP\nNONCE\nBODY\n.
func RequestMessage(method, pathWithQuery string, timestamp int64, nonce string, body []byte) []byte {
	var b strings.Builder
	b.Grow(len(method) + len(pathWithQuery) + len(nonce) + len(body) + 32)
	b.WriteString(method)
	b.WriteByte('\n')
	b.WriteString(pathWithQuery)
	b.WriteByte('\n')
	b.WriteString(strconv.FormatInt(timestamp, 10))
	b.WriteByte('\n')
	b.WriteString(nonce)
	b.WriteByte('\n')
	b.Write(body)
	b.WriteByte('\n')
	return []byte(b.String())
}

// ReplyMessage is the text a reply signature covers: TIMESTAMP\nNONCE\nBODY\n.
// The timestamp is taken as the header carries it, unparsed.
func ReplyMessage(timestamp, nonce string, body []byte) []byte {
	msg := make([]byte, 0, len(timestamp)+len(nonce)+len(body)+3)
	msg = append(msg, timestamp...)
	msg = append(msg, '\n')
	msg = append(msg, nonce...)
	msg = append(msg, '\n')
	msg = append(msg, body...)
	msg = append(msg, '\n')
	return msg
}

// Sign returns the base64 SHA256withRSA (PKCS #1 v1.5) signature of msg.
func Sign(key *rsa.PrivateKey, msg []byte) (string, error) {
	sum := sha256.Sum256(msg)
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// ErrBadSignature means a signature did not verify against the key.
var ErrBadSignature = errors.New("signature does not verify")

// Verify checks a base64 SHA256withRSA signature of msg.
func Verify(key *rsa.PublicKey, msg []byte, signature string) error {
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return fmt.Errorf("%w: not base64", ErrBadSignature)
	}
	sum := sha256.Sum256(msg)
	if err := rsa.VerifyPKCS1v15(key, crypto.SHA256, sum[:], sig); err != nil {
		return ErrBadSignature
	}
	return nil
}

// NewNonce returns a random 32-character hexadecimal nonce.
func NewNonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

// Authorization holds the parameters of an Authorization header.
type Authorization struct {
	Scheme    Scheme
	ID        string // mchid or brand_id, per scheme
	Nonce     string
	Signature string
	Timestamp int64
	Serial    string // the caller's API certificate serial number
}

// String renders the header value in WeChat Pay's published parameter order:
// id, nonce_str, signature, timestamp, serial_no.
func (a Authorization) String() string {
	return fmt.Sprintf(`%s %s="%s",nonce_str="%s",signature="%s",timestamp="%d",serial_no="%s"`,
		a.Scheme, a.Scheme.IDField(), a.ID, a.Nonce, a.Signature, a.Timestamp, a.Serial)
}

// ErrMalformedAuthorization means an Authorization header could not be parsed.
var ErrMalformedAuthorization = errors.New("malformed Authorization header")

// ParseAuthorization parses an Authorization header of either scheme. Every
// parameter must be present exactly once and quoted.
func ParseAuthorization(header string) (Authorization, error) {
	schemeText, params, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok {
		return Authorization{}, ErrMalformedAuthorization
	}
	a := Authorization{Scheme: Scheme(schemeText)}
	if a.Scheme != SchemeMerchant && a.Scheme != SchemeBrand {
		return Authorization{}, fmt.Errorf("%w: unknown scheme", ErrMalformedAuthorization)
	}
	seen := map[string]string{}
	for _, part := range strings.Split(params, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
			return Authorization{}, fmt.Errorf("%w: parameter %q", ErrMalformedAuthorization, k)
		}
		if _, dup := seen[k]; dup {
			return Authorization{}, fmt.Errorf("%w: repeated %q", ErrMalformedAuthorization, k)
		}
		seen[k] = v[1 : len(v)-1]
	}
	for _, k := range []string{a.Scheme.IDField(), "nonce_str", "signature", "timestamp", "serial_no"} {
		if seen[k] == "" {
			return Authorization{}, fmt.Errorf("%w: missing %q", ErrMalformedAuthorization, k)
		}
	}
	if len(seen) != 5 {
		return Authorization{}, fmt.Errorf("%w: unexpected parameters", ErrMalformedAuthorization)
	}
	ts, err := strconv.ParseInt(seen["timestamp"], 10, 64)
	if err != nil {
		return Authorization{}, fmt.Errorf("%w: timestamp", ErrMalformedAuthorization)
	}
	a.ID = seen[a.Scheme.IDField()]
	a.Nonce = seen["nonce_str"]
	a.Signature = seen["signature"]
	a.Timestamp = ts
	a.Serial = seen["serial_no"]
	return a, nil
}

// SignRequest builds the Authorization header for a request.
func SignRequest(scheme Scheme, id, serial string, key *rsa.PrivateKey, method, pathWithQuery string, timestamp int64, nonce string, body []byte) (Authorization, error) {
	sig, err := Sign(key, RequestMessage(method, pathWithQuery, timestamp, nonce, body))
	if err != nil {
		return Authorization{}, err
	}
	return Authorization{Scheme: scheme, ID: id, Nonce: nonce, Signature: sig, Timestamp: timestamp, Serial: serial}, nil
}
