// Package wxops records every WeChat Pay call that changes something. The
// intent — request number and the exact body — is stored and audited as
// pending before the call; the outcome after it. A crash in between leaves a
// pending operation that is resent unchanged (WeChat Pay deduplicates by
// request number), so a retry never does the thing twice.
package wxops

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/clock"
	"voucherconsole/internal/models"
	"voucherconsole/internal/wxpay"
)

// Store keeps operations.
type Store struct {
	DB  *gorm.DB
	Now clock.Func
}

// Intent describes a call about to be made.
type Intent struct {
	Kind      string // e.g. "create_favor_stock"
	RequestNo string
	FormToken string // the form instance; a re-post finds the same operation
	UserID    *int64
	StockRef  *int64
	Body      any    // the request, marshalled once and kept
	Action    string // audit action
	// TargetType and TargetID name what the audit entries are about.
	TargetType, TargetID string
	Detail               map[string]any
}

// Begin records the intent, or returns the operation already recorded for
// the same form token (existing = true): a double submit or a retry then
// resends that operation's request number and body.
func (s *Store) Begin(ctx context.Context, ac audit.Context, in Intent) (op *models.WxOperation, existing bool, err error) {
	db := s.DB.WithContext(ctx)
	body, err := json.Marshal(in.Body)
	if err != nil {
		return nil, false, fmt.Errorf("operation body: %w", err)
	}
	op = &models.WxOperation{
		Kind: in.Kind, RequestNo: in.RequestNo, UserID: in.UserID, StockRef: in.StockRef,
		Target: in.TargetType + ":" + in.TargetID, Body: string(body), Status: models.OpPending,
	}
	if in.FormToken != "" {
		tok := in.FormToken
		op.FormToken = &tok
	}
	err = db.Transaction(func(tx *gorm.DB) error {
		insert := tx
		if in.FormToken != "" {
			// A form token already recorded (a re-post, or two posts
			// racing: the second waits for the first to commit) inserts
			// nothing, and the recorded operation is looked up below. The
			// first post of a form, by far the most common, costs no lookup.
			insert = tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "form_token"}}, DoNothing: true})
		}
		res := insert.Create(op)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return errFormRecorded
		}
		rec := ac.Record(in.Action, audit.Pending, in.TargetType, in.TargetID)
		rec.WxRequestNo = in.RequestNo
		rec.Detail = in.Detail
		_, err := audit.Append(ctx, tx, s.Now.UTC(), rec)
		return err
	})
	if (errors.Is(err, errFormRecorded) || errors.Is(err, gorm.ErrDuplicatedKey)) && in.FormToken != "" {
		var found models.WxOperation
		if err := db.Where("form_token = ?", in.FormToken).Take(&found).Error; err != nil {
			return nil, false, err
		}
		return &found, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("record intent: %w", err)
	}
	return op, false, nil
}

// errFormRecorded: an operation with the intent's form token exists.
var errFormRecorded = errors.New("form token already recorded")

// Succeed records the outcome of a successful call; also runs in the same
// transaction (e.g. storing the created stock), and the audit entry carries
// the WeChat Pay Request-ID.
func (s *Store) Succeed(ctx context.Context, ac audit.Context, op *models.WxOperation, action, targetType, targetID string,
	result any, wxRequestID string, detail map[string]any, also func(tx *gorm.DB) error) error {
	res, _ := json.Marshal(result)
	return s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if also != nil {
			if err := also(tx); err != nil {
				return err
			}
		}
		op.Status, op.Result, op.WxRequestID = models.OpSucceeded, string(res), wxRequestID
		op.Attempts++
		if err := tx.Model(op).Select("status", "result", "wx_request_id", "attempts", "stock_ref", "updated_at").Updates(op).Error; err != nil {
			return err
		}
		if targetID == "" && op.StockRef != nil {
			targetID = fmt.Sprint(*op.StockRef) // known only once also has run
		}
		rec := ac.Record(action, audit.Success, targetType, targetID)
		rec.WxRequestNo, rec.WxRequestID, rec.Detail = op.RequestNo, wxRequestID, detail
		_, err := audit.Append(ctx, tx, s.Now.UTC(), rec)
		return err
	})
}

// Fail records a failed call. A definitive refusal (a 4xx other than 429)
// ends the operation and frees its form token, so the corrected form is a
// new operation with a new request number; anything else (5xx, 429, network)
// leaves it pending, to be resent with the same request number.
func (s *Store) Fail(ctx context.Context, ac audit.Context, op *models.WxOperation, action, targetType, targetID string, cause error, detail map[string]any) error {
	final := !wxpay.IsRetryable(cause)
	var ae *wxpay.APIError
	rec := ac.Record(action, audit.Failure, targetType, targetID)
	rec.WxRequestNo = op.RequestNo
	if errors.As(cause, &ae) {
		op.WxStatus, op.WxErrorCode, op.WxErrorMessage, op.WxRequestID = ae.StatusCode, ae.Code, ae.Message, ae.RequestID
		rec.WxErrorCode, rec.WxRequestID = ae.Code, ae.RequestID
	} else {
		op.WxErrorCode, op.WxErrorMessage = "NETWORK", "no reply from WeChat Pay"
		rec.WxErrorCode = "NETWORK"
	}
	if detail == nil {
		detail = map[string]any{}
	}
	detail["retryable"] = !final
	rec.Detail = detail
	op.Attempts++
	cols := []string{"attempts", "wx_status", "wx_error_code", "wx_error_message", "wx_request_id", "updated_at"}
	if final {
		op.Status, op.FormToken = models.OpFailed, nil
		cols = append(cols, "status", "form_token")
	}
	return s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Model(op).Select(cols).Updates(op).Error; err != nil {
			return err
		}
		_, err := audit.Append(ctx, tx, s.Now.UTC(), rec)
		return err
	})
}

// Pending lists operations of a kind still pending and due to be resent at
// now: left alone for ResendAfter(olderThan, attempts), so an operation in
// flight in another request is not sent twice at once, and one WeChat Pay
// keeps refusing is resent less and less often.
func (s *Store) Pending(ctx context.Context, kind string, now time.Time, olderThan time.Duration) ([]models.WxOperation, error) {
	var ops []models.WxOperation
	err := s.DB.WithContext(ctx).Where("kind = ? AND status = ? AND updated_at < ?", kind, models.OpPending, now.Add(-olderThan)).
		Order("id").Find(&ops).Error
	due := ops[:0]
	for _, op := range ops {
		if now.Sub(op.UpdatedAt) > ResendAfter(olderThan, op.Attempts) {
			due = append(due, op)
		}
	}
	return due, err
}

// ResendDue resends the operations of a kind due at now (see Pending),
// each through resend, which reports whether it completed. Each is claimed
// first, so an operation another instance is resending, or whose form was
// posted again, is left to it. It returns how many completed, and the
// errors of listing, claiming and resend.
func (s *Store) ResendDue(ctx context.Context, kind string, now time.Time, olderThan time.Duration,
	resend func(op *models.WxOperation) (bool, error)) (int, error) {
	pending, err := s.Pending(ctx, kind, now, olderThan)
	if err != nil {
		return 0, err
	}
	done := 0
	var errs []error
	for i := range pending {
		op := &pending[i]
		ok, err := s.claim(ctx, op, now.Add(-olderThan), now)
		if err == nil && ok {
			ok, err = resend(op)
			if ok {
				done++
			}
		}
		errs = append(errs, err)
	}
	return done, errors.Join(errs...)
}

// claim takes a pending operation for one resend: it succeeds only when
// nothing touched the operation since it was last left alone before cutoff
// (another instance resending it, or its form posted again), and marks it
// touched.
func (s *Store) claim(ctx context.Context, op *models.WxOperation, cutoff, now time.Time) (bool, error) {
	res := s.DB.WithContext(ctx).Model(&models.WxOperation{}).
		Where("id = ? AND status = ? AND updated_at < ?", op.ID, models.OpPending, cutoff).
		Update("updated_at", now)
	return res.RowsAffected == 1, res.Error
}

// maxResendAfter bounds the wait between resends of a pending operation.
const maxResendAfter = time.Hour

// ResendAfter is how long a pending operation that has been tried attempts
// times is left alone before it is resent: olderThan after a crash or a
// first failure, then twice as long after each further failure, up to an
// hour. olderThan zero (a restart: nothing is in flight) resends at once.
func ResendAfter(olderThan time.Duration, attempts int) time.Duration {
	d := olderThan
	for i := 1; i < attempts && d < maxResendAfter; i++ {
		d *= 2
	}
	return min(d, maxResendAfter)
}

const digits = "0123456789"

// NewRequestNo returns prefix followed by the date and random digits, up to
// maxLen characters: unique, and of the alphabet every endpoint accepts.
func NewRequestNo(prefix string, now time.Time, maxLen int) string {
	s := prefix + now.In(time.FixedZone("CST", 8*3600)).Format("20060102")
	n := maxLen - len(s)
	if n > 14 {
		n = 14
	}
	b := make([]byte, n)
	for i := range b {
		v, _ := rand.Int(rand.Reader, big.NewInt(10))
		b[i] = digits[v.Int64()]
	}
	return s + string(b)
}
