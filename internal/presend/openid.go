package presend

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"unicode/utf8"
)

// OpenIDs are personal data. The console keeps, for each pre-send, a keyed
// hash of the OpenID (to recognise the same user again without knowing who
// it is) and a masked form (to show); while the call's outcome is unknown it
// also keeps the OpenID sealed, so that a restarted console can resend the
// request, and wipes it once the outcome is recorded. Both keys are derived
// from the console's session secret, which never enters the database.

// Keys hash and seal OpenIDs.
type Keys struct {
	mac  []byte
	aead cipher.AEAD
}

// HKDF labels: one key per purpose, neither usable for the other nor for
// the session cookies derived from the same secret.
const (
	labelHash = "voucherconsole presend openid hmac-sha256 v1"
	labelSeal = "voucherconsole presend openid aes-256-gcm v1"
)

// NewKeys derives the hashing and sealing keys from the session secret.
func NewKeys(secret []byte) (*Keys, error) {
	if len(secret) < 16 {
		return nil, errors.New("presend: secret too short")
	}
	mac, err := hkdf.Key(sha256.New, secret, nil, labelHash, 32)
	if err != nil {
		return nil, err
	}
	enc, err := hkdf.Key(sha256.New, secret, nil, labelSeal, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(enc)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Keys{mac: mac, aead: aead}, nil
}

// Hash is the OpenID's keyed hash, hex-encoded.
func (k *Keys) Hash(openid string) string {
	h := hmac.New(sha256.New, k.mac)
	h.Write([]byte(openid))
	return hex.EncodeToString(h.Sum(nil))
}

// Seal encrypts the OpenID, bound to context (the request number), so a
// sealed value copied to another record does not open.
func (k *Keys) Seal(openid, context string) (string, error) {
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	out := k.aead.Seal(nonce, nonce, []byte(openid), []byte(context))
	return base64.RawStdEncoding.EncodeToString(out), nil
}

// ErrUnseal means a sealed OpenID did not open: the session secret changed,
// or the value was altered or moved to another record.
var ErrUnseal = errors.New("presend: sealed OpenID does not open with this console's key")

// Open decrypts what Seal made with the same context.
func (k *Keys) Open(sealed, context string) (string, error) {
	raw, err := base64.RawStdEncoding.DecodeString(sealed)
	if err != nil || len(raw) < k.aead.NonceSize() {
		return "", ErrUnseal
	}
	n := k.aead.NonceSize()
	pt, err := k.aead.Open(nil, raw[:n], raw[n:], []byte(context))
	if err != nil {
		return "", fmt.Errorf("%w", ErrUnseal)
	}
	return string(pt), nil
}

// Mask shows the first and last four characters of an OpenID with an
// ellipsis between ("oUpF…eS6o"). A value too short to hide anything that
// way keeps at most a third of its characters at each end.
func Mask(openid string) string {
	n := utf8.RuneCountInString(openid)
	keep := 4
	if n < 12 {
		keep = n / 3
	}
	r := []rune(openid)
	return string(r[:keep]) + "…" + string(r[n-keep:])
}
