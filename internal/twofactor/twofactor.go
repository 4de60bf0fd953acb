// Package twofactor is the console's second sign-in factor: time-based
// one-time passwords (TOTP, RFC 6238, as authenticator apps compute them)
// and ten one-time recovery codes per user.
//
// The shared secret is sealed with AES-GCM before it is stored, with the
// user's ID as associated data (a sealed secret copied to another user does
// not open); it is shown only while enrolling. Recovery codes are stored
// only as keyed hashes. A code is accepted once: the last accepted time step
// is kept and a code of that step or an earlier one is refused. Failed codes
// are counted like failed passwords and lock the second step for a while.
// Every step is audited in the same transaction as its change.
package twofactor

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"image/png"
	"strconv"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/clock"
	"voucherconsole/internal/models"
)

// Audit actions of the second factor.
const (
	ActionEnrolStart      = "two_factor.enrol_start"
	ActionEnrol           = "two_factor.enrol"
	ActionEnrolFailed     = "two_factor.enrol_failed"
	ActionVerify          = "auth.two_factor"
	ActionVerifyFailed    = "auth.two_factor_failed"
	ActionVerifyThrottled = "auth.two_factor_throttled"
	ActionReset           = "two_factor.reset"
	ActionRequiredRoles   = "two_factor.required_roles"
)

// Sentinel errors; handlers map them to messages in the user's language.
var (
	ErrBadCode         = errors.New("two-factor: wrong or already used code")
	ErrThrottled       = errors.New("two-factor: too many wrong codes")
	ErrNotEnrolled     = errors.New("two-factor: not enrolled")
	ErrAlreadyEnrolled = errors.New("two-factor: already enrolled")
)

// Parameters of the codes: authenticator apps' defaults (6 digits, 30
// seconds, SHA-1), one step of clock drift either way.
const (
	period         = 30
	digits         = otp.DigitsSix
	skew           = 1
	RecoveryCodes  = 10
	recoveryLength = 10 // characters of a recovery code, before the dash
	maxCodeLength  = 32 // longer input is not a code
)

// Keys seal secrets and hash recovery codes.
type Keys struct {
	aead cipher.AEAD
	mac  []byte
}

// Labels separating the keys derived from one configured secret.
const (
	labelSeal = "console two-factor secret seal v1"
	labelMAC  = "console two-factor recovery code v1"
)

// NewKeys derives the sealing and hashing keys from secret (CONSOLE_TOTP_KEY,
// or the session secret when that is not set).
func NewKeys(secret []byte) (*Keys, error) {
	if len(secret) < 16 {
		return nil, errors.New("two-factor key too short (at least 16 bytes)")
	}
	enc, err := hkdf.Key(sha256.New, secret, nil, labelSeal, 32)
	if err != nil {
		return nil, err
	}
	mac, err := hkdf.Key(sha256.New, secret, nil, labelMAC, 32)
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
	return &Keys{aead: aead, mac: mac}, nil
}

func userAD(userID int64) []byte { return []byte("user:" + strconv.FormatInt(userID, 10)) }

func (k *Keys) seal(userID int64, secret string) string {
	nonce := make([]byte, k.aead.NonceSize())
	_, _ = rand.Read(nonce)
	out := k.aead.Seal(nonce, nonce, []byte(secret), userAD(userID))
	return base64.StdEncoding.EncodeToString(out)
}

func (k *Keys) open(userID int64, sealed string) (string, error) {
	raw, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil || len(raw) < k.aead.NonceSize() {
		return "", errors.New("two-factor: sealed secret malformed")
	}
	n := k.aead.NonceSize()
	plain, err := k.aead.Open(nil, raw[:n], raw[n:], userAD(userID))
	if err != nil {
		return "", errors.New("two-factor: sealed secret does not open (wrong key?)")
	}
	return string(plain), nil
}

func (k *Keys) hashRecovery(userID int64, code string) string {
	h := hmac.New(sha256.New, k.mac)
	h.Write(userAD(userID))
	h.Write([]byte{0})
	h.Write([]byte(code))
	return hex.EncodeToString(h.Sum(nil))
}

// Secret is a user's TOTP secret, sealed.
type Secret struct {
	UserID       int64 `gorm:"primaryKey;autoIncrement:false"`
	SecretSealed string
	ConfirmedAt  *time.Time
	LastStep     int64
	Failures     int
	LockedUntil  *time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// TableName is the secrets table.
func (Secret) TableName() string { return "two_factor_secrets" }

// RecoveryCode is one recovery code's keyed hash.
type RecoveryCode struct {
	ID        int64 `gorm:"primaryKey"`
	UserID    int64
	CodeHash  string
	UsedAt    *time.Time
	CreatedAt time.Time
}

// TableName is the recovery codes table.
func (RecoveryCode) TableName() string { return "two_factor_recovery_codes" }

// RequiredRole is a role whose users must use a second factor.
type RequiredRole struct {
	Role      models.Role `gorm:"primaryKey"`
	CreatedAt time.Time
}

// TableName is the required roles table.
func (RequiredRole) TableName() string { return "two_factor_roles" }

// Service is the second factor.
type Service struct {
	DB          *gorm.DB
	Keys        *Keys
	Now         clock.Func
	Issuer      string // the name authenticator apps show
	MaxFailures int    // wrong codes in a row before the second step locks
	Lockout     time.Duration
}

func (s *Service) issuer() string {
	if s.Issuer == "" {
		return "Voucher Console"
	}
	return s.Issuer
}

func (s *Service) maxFailures() int {
	if s.MaxFailures < 1 {
		return 5
	}
	return s.MaxFailures
}

func (s *Service) lockout() time.Duration {
	if s.Lockout <= 0 {
		return 15 * time.Minute
	}
	return s.Lockout
}

func uid(u *models.User) string { return strconv.FormatInt(u.ID, 10) }

func (s *Service) secretOf(db *gorm.DB, userID int64) (*Secret, error) {
	var sec Secret
	err := db.Where("user_id = ?", userID).Take(&sec).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotEnrolled
	}
	if err != nil {
		return nil, err
	}
	return &sec, nil
}

// Enrolled reports whether the user has a confirmed second factor.
func (s *Service) Enrolled(ctx context.Context, userID int64) (bool, error) {
	var n int64
	err := s.DB.WithContext(ctx).Model(&Secret{}).Where("user_id = ? AND confirmed_at IS NOT NULL", userID).Count(&n).Error
	return n > 0, err
}

// MustEnroll reports whether u holds a role that requires a second factor
// and has none confirmed yet. It is one query: every request of a signed-in
// user asks it.
func (s *Service) MustEnroll(ctx context.Context, u *models.User) (bool, error) {
	var n int64
	err := s.DB.WithContext(ctx).Raw(`SELECT COUNT(*) FROM two_factor_roles r
		JOIN user_roles ur ON ur.role = r.role AND ur.user_id = ?
		WHERE NOT EXISTS (SELECT 1 FROM two_factor_secrets t WHERE t.user_id = ? AND t.confirmed_at IS NOT NULL)`,
		u.ID, u.ID).Scan(&n).Error
	return n > 0, err
}

// Required reports whether u holds a role that requires a second factor.
func (s *Service) Required(ctx context.Context, u *models.User) (bool, error) {
	rs, err := s.RequiredRoles(ctx)
	if err != nil {
		return false, err
	}
	return u.HasAnyRole(rs...), nil
}

// Status is what the account page says about a user's second factor.
type Status struct {
	Enrolled     bool
	ConfirmedAt  time.Time
	RecoveryLeft int
	Required     bool
}

// StatusOf returns u's second-factor status.
func (s *Service) StatusOf(ctx context.Context, u *models.User) (Status, error) {
	var st Status
	req, err := s.Required(ctx, u)
	if err != nil {
		return st, err
	}
	st.Required = req
	sec, err := s.secretOf(s.DB.WithContext(ctx), u.ID)
	if errors.Is(err, ErrNotEnrolled) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	if sec.ConfirmedAt == nil {
		return st, nil
	}
	st.Enrolled, st.ConfirmedAt = true, *sec.ConfirmedAt
	var n int64
	err = s.DB.WithContext(ctx).Model(&RecoveryCode{}).Where("user_id = ? AND used_at IS NULL", u.ID).Count(&n).Error
	st.RecoveryLeft = int(n)
	return st, err
}

// Enrolment is an enrolment not yet confirmed: the secret as text and as
// the otpauth:// URL the QR code carries.
type Enrolment struct {
	Secret string
	URL    string
}

func (s *Service) key(u *models.User, secret string) (*otp.Key, error) {
	raw, err := base32NoPad.DecodeString(secret)
	if err != nil {
		return nil, err
	}
	return totp.Generate(totp.GenerateOpts{
		Issuer: s.issuer(), AccountName: u.Username, Period: period, Digits: digits,
		Algorithm: otp.AlgorithmSHA1, Secret: raw,
	})
}

// StartEnrolment returns u's enrolment in progress, starting one (a new
// secret, audited) when there is none. A user with a confirmed factor gets
// ErrAlreadyEnrolled: the secret is never shown again.
func (s *Service) StartEnrolment(ctx context.Context, ac audit.Context, u *models.User) (*Enrolment, error) {
	db := s.DB.WithContext(ctx)
	sec, err := s.secretOf(db, u.ID)
	switch {
	case err == nil && sec.ConfirmedAt != nil:
		return nil, ErrAlreadyEnrolled
	case err == nil:
		plain, err := s.Keys.open(u.ID, sec.SecretSealed)
		if err != nil {
			return nil, err
		}
		return s.enrolment(u, plain)
	case !errors.Is(err, ErrNotEnrolled):
		return nil, err
	}
	k, err := totp.Generate(totp.GenerateOpts{Issuer: s.issuer(), AccountName: u.Username, Period: period, Digits: digits})
	if err != nil {
		return nil, err
	}
	now := s.Now.UTC()
	err = db.Transaction(func(tx *gorm.DB) error {
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&Secret{
			UserID: u.ID, SecretSealed: s.Keys.seal(u.ID, k.Secret()), CreatedAt: now, UpdatedAt: now,
		})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return errRaced
		}
		_, err := audit.Append(ctx, tx, now, ac.Record(ActionEnrolStart, audit.Success, audit.TargetUser, uid(u)))
		return err
	})
	if errors.Is(err, errRaced) { // another tab started it at the same moment
		return s.StartEnrolment(ctx, ac, u)
	}
	if err != nil {
		return nil, fmt.Errorf("start enrolment: %w", err)
	}
	return s.enrolment(u, k.Secret())
}

// base32NoPad is how TOTP secrets are written (RFC 4648, no padding).
var base32NoPad = base32.StdEncoding.WithPadding(base32.NoPadding)

var errRaced = errors.New("two-factor: enrolment started concurrently")

func (s *Service) enrolment(u *models.User, secret string) (*Enrolment, error) {
	k, err := s.key(u, secret)
	if err != nil {
		return nil, err
	}
	return &Enrolment{Secret: k.Secret(), URL: k.URL()}, nil
}

// QRCode is the PNG image of the enrolment in progress's otpauth:// URL.
func (s *Service) QRCode(ctx context.Context, u *models.User) ([]byte, error) {
	sec, err := s.secretOf(s.DB.WithContext(ctx), u.ID)
	if err != nil {
		return nil, err
	}
	if sec.ConfirmedAt != nil {
		return nil, ErrAlreadyEnrolled
	}
	plain, err := s.Keys.open(u.ID, sec.SecretSealed)
	if err != nil {
		return nil, err
	}
	k, err := s.key(u, plain)
	if err != nil {
		return nil, err
	}
	img, err := k.Image(240, 240)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// NormalizeCode strips what people type around a code: spaces and dashes,
// and case.
func NormalizeCode(code string) string {
	code = strings.Map(func(r rune) rune {
		switch r {
		case ' ', '-', '\t':
			return -1
		}
		return r
	}, code)
	return strings.ToLower(code)
}

func isTOTP(code string) bool {
	if len(code) != int(digits) {
		return false
	}
	for _, r := range code {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// matchStep returns the time step, within the allowed drift of now, whose
// code is code; 0 when none.
func matchStep(secret, code string, now time.Time) (int64, error) {
	opts := totp.ValidateOpts{Period: period, Digits: digits, Algorithm: otp.AlgorithmSHA1}
	cur := now.Unix() / period
	var found int64
	for step := cur - skew; step <= cur+skew; step++ {
		want, err := totp.GenerateCodeCustom(secret, time.Unix(step*period, 0), opts)
		if err != nil {
			return 0, err
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			found = step
		}
	}
	return found, nil
}

// Confirm completes u's enrolment with a first code from the authenticator
// and returns the ten recovery codes, shown to the user this once. A wrong
// code is ErrBadCode (audited, the enrolment stays in progress).
func (s *Service) Confirm(ctx context.Context, ac audit.Context, u *models.User, code string) ([]string, error) {
	db := s.DB.WithContext(ctx)
	now := s.Now.UTC()
	sec, err := s.secretOf(db, u.ID)
	if err != nil {
		return nil, err
	}
	if sec.ConfirmedAt != nil {
		return nil, ErrAlreadyEnrolled
	}
	plain, err := s.Keys.open(u.ID, sec.SecretSealed)
	if err != nil {
		return nil, err
	}
	code = NormalizeCode(code)
	step := int64(0)
	if isTOTP(code) {
		if step, err = matchStep(plain, code, now); err != nil {
			return nil, err
		}
	}
	if step == 0 {
		rec := ac.Record(ActionEnrolFailed, audit.Failure, audit.TargetUser, uid(u))
		rec.Detail = map[string]any{"reason": "bad_code"}
		if _, err := audit.Append(ctx, db, now, rec); err != nil {
			return nil, err
		}
		return nil, ErrBadCode
	}
	codes := make([]string, RecoveryCodes)
	for i := range codes {
		codes[i] = newRecoveryCode()
	}
	err = db.Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&Secret{}).Where("user_id = ? AND confirmed_at IS NULL", u.ID).
			Updates(map[string]any{"confirmed_at": now, "last_step": step, "failures": 0, "updated_at": now})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrAlreadyEnrolled
		}
		if err := s.storeRecovery(tx, u.ID, codes, now); err != nil {
			return err
		}
		rec := ac.Record(ActionEnrol, audit.Success, audit.TargetUser, uid(u))
		rec.Detail = map[string]any{"recovery_codes": RecoveryCodes}
		_, err := audit.Append(ctx, tx, now, rec)
		return err
	})
	if err != nil {
		return nil, err
	}
	return codes, nil
}

func (s *Service) storeRecovery(tx *gorm.DB, userID int64, codes []string, now time.Time) error {
	if err := tx.Where("user_id = ?", userID).Delete(&RecoveryCode{}).Error; err != nil {
		return err
	}
	rows := make([]RecoveryCode, len(codes))
	for i, c := range codes {
		rows[i] = RecoveryCode{UserID: userID, CodeHash: s.Keys.hashRecovery(userID, NormalizeCode(c)), CreatedAt: now}
	}
	return tx.Create(&rows).Error
}

// recoveryAlphabet leaves out letters read as digits and the reverse.
const recoveryAlphabet = "abcdefghjkmnpqrstuvwxyz23456789"

func newRecoveryCode() string {
	b := make([]byte, recoveryLength)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = recoveryAlphabet[int(b[i])%len(recoveryAlphabet)]
	}
	return string(b[:recoveryLength/2]) + "-" + string(b[recoveryLength/2:])
}

// Verify checks the second step of a sign-in for the user: a code from the
// authenticator (refused when its time step was already used) or an unused
// recovery code (used up by this). Wrong codes are counted; after
// MaxFailures in a row the second step is refused, even with a right code,
// until Lockout has passed. It reports whether a recovery code was used.
func (s *Service) Verify(ctx context.Context, ac audit.Context, u *models.User, code string) (recovery bool, err error) {
	db := s.DB.WithContext(ctx)
	now := s.Now.UTC()
	sec, err := s.secretOf(db, u.ID)
	if err != nil {
		return false, err
	}
	if sec.ConfirmedAt == nil {
		return false, ErrNotEnrolled
	}
	target := uid(u)
	if sec.LockedUntil != nil && sec.LockedUntil.After(now) {
		rec := ac.Record(ActionVerifyThrottled, audit.Denied, audit.TargetUser, target)
		rec.Detail = map[string]any{"locked_until": sec.LockedUntil.UTC().Format(time.RFC3339)}
		if _, err := audit.Append(ctx, db, now, rec); err != nil {
			return false, err
		}
		return false, ErrThrottled
	}
	code = NormalizeCode(code)
	reason := "bad_code"
	switch {
	case isTOTP(code):
		plain, err := s.Keys.open(u.ID, sec.SecretSealed)
		if err != nil {
			return false, err
		}
		step, err := matchStep(plain, code, now)
		if err != nil {
			return false, err
		}
		if step != 0 {
			ok, err := s.accept(ctx, ac, u, now, "totp", func(tx *gorm.DB) (bool, error) {
				// Only a step later than the last one accepted: the
				// condition makes two uses of one code race to one winner.
				res := tx.Model(&Secret{}).Where("user_id = ? AND last_step < ?", u.ID, step).
					Updates(map[string]any{"last_step": step, "failures": 0, "locked_until": nil, "updated_at": now})
				return res.RowsAffected == 1, res.Error
			})
			if err != nil || ok {
				return false, err
			}
			reason = "replayed"
		}
	case len(code) == recoveryLength && recoveryShaped(code):
		hash := s.Keys.hashRecovery(u.ID, code)
		ok, err := s.accept(ctx, ac, u, now, "recovery_code", func(tx *gorm.DB) (bool, error) {
			res := tx.Model(&RecoveryCode{}).Where("user_id = ? AND code_hash = ? AND used_at IS NULL", u.ID, hash).
				Update("used_at", now)
			if res.Error != nil || res.RowsAffected != 1 {
				return false, res.Error
			}
			err := tx.Model(&Secret{}).Where("user_id = ?", u.ID).
				Updates(map[string]any{"failures": 0, "locked_until": nil, "updated_at": now}).Error
			return err == nil, err
		})
		if err != nil || ok {
			return ok, err
		}
	}
	err = db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Model(&Secret{}).Where("user_id = ?", u.ID).
			Updates(map[string]any{"failures": gorm.Expr("failures + 1"), "updated_at": now}).Error; err != nil {
			return err
		}
		if err := tx.Model(&Secret{}).Where("user_id = ? AND failures >= ?", u.ID, s.maxFailures()).
			Updates(map[string]any{"locked_until": now.Add(s.lockout()), "failures": 0}).Error; err != nil {
			return err
		}
		rec := ac.Record(ActionVerifyFailed, audit.Failure, audit.TargetUser, target)
		rec.Detail = map[string]any{"reason": reason}
		_, err := audit.Append(ctx, tx, now, rec)
		return err
	})
	if err != nil {
		return false, err
	}
	return false, ErrBadCode
}

func recoveryShaped(s string) bool {
	for _, r := range s {
		if !strings.ContainsRune(recoveryAlphabet, r) {
			return false
		}
	}
	return true
}

// accept runs take (which reports whether the code was taken) and audits
// the success in the same transaction.
func (s *Service) accept(ctx context.Context, ac audit.Context, u *models.User, now time.Time, method string, take func(tx *gorm.DB) (bool, error)) (bool, error) {
	var ok bool
	err := s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		if ok, err = take(tx); err != nil || !ok {
			return err
		}
		rec := ac.Record(ActionVerify, audit.Success, audit.TargetUser, uid(u))
		rec.Detail = map[string]any{"method": method}
		_, err = audit.Append(ctx, tx, now, rec)
		return err
	})
	return ok, err
}

// Reset removes a user's second factor (a lost phone): the secret and the
// recovery codes are deleted and the user's sessions end. A user of a role
// that requires it enrols again at the next sign-in.
func (s *Service) Reset(ctx context.Context, ac audit.Context, userID int64) error {
	now := s.Now.UTC()
	return s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Where("user_id = ?", userID).Delete(&Secret{})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrNotEnrolled
		}
		if err := tx.Where("user_id = ?", userID).Delete(&RecoveryCode{}).Error; err != nil {
			return err
		}
		if err := tx.Model(&models.User{}).Where("id = ?", userID).
			Updates(map[string]any{"session_version": gorm.Expr("session_version + 1"), "updated_at": now}).Error; err != nil {
			return err
		}
		_, err := audit.Append(ctx, tx, now, ac.Record(ActionReset, audit.Success, audit.TargetUser, strconv.FormatInt(userID, 10)))
		return err
	})
}

// RequiredRoles lists the roles whose users must use a second factor.
func (s *Service) RequiredRoles(ctx context.Context) ([]models.Role, error) {
	var rows []RequiredRole
	if err := s.DB.WithContext(ctx).Order("role").Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]models.Role, len(rows))
	for i, r := range rows {
		out[i] = r.Role
	}
	return out, nil
}

// SetRequiredRoles replaces the roles that require a second factor,
// audited with the roles before and after.
func (s *Service) SetRequiredRoles(ctx context.Context, ac audit.Context, roles []models.Role) error {
	now := s.Now.UTC()
	return s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var before []RequiredRole
		if err := tx.Order("role").Find(&before).Error; err != nil {
			return err
		}
		if err := tx.Where("1 = 1").Delete(&RequiredRole{}).Error; err != nil {
			return err
		}
		var after []string
		for _, r := range models.AllRoles {
			for _, want := range roles {
				if want == r {
					if err := tx.Create(&RequiredRole{Role: r, CreatedAt: now}).Error; err != nil {
						return err
					}
					after = append(after, string(r))
					break
				}
			}
		}
		names := make([]string, len(before))
		for i, r := range before {
			names[i] = string(r.Role)
		}
		rec := ac.Record(ActionRequiredRoles, audit.Success, "two_factor", "required_roles")
		rec.Detail = map[string]any{"roles_before": names, "roles_after": after}
		_, err := audit.Append(ctx, tx, now, rec)
		return err
	})
}

// EnrolledUser is a user with a confirmed second factor, for the admin page.
type EnrolledUser struct {
	UserID       int64
	Username     string
	ConfirmedAt  time.Time
	RecoveryLeft int
}

// EnrolledUsers lists the users with a confirmed second factor.
func (s *Service) EnrolledUsers(ctx context.Context) ([]EnrolledUser, error) {
	var out []EnrolledUser
	err := s.DB.WithContext(ctx).Raw(`SELECT t.user_id, u.username, t.confirmed_at,
		(SELECT COUNT(*) FROM two_factor_recovery_codes r WHERE r.user_id = t.user_id AND r.used_at IS NULL) AS recovery_left
		FROM two_factor_secrets t JOIN users u ON u.id = t.user_id
		WHERE t.confirmed_at IS NOT NULL ORDER BY u.username`).Scan(&out).Error
	return out, err
}
