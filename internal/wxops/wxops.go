// Package wxops is the one way the console makes a WeChat Pay call that
// changes something. The intent — request number and the exact body — is
// recorded and audited as pending before the call, and the outcome after it.
// A crash in between, or a reply whose outcome is unknown, leaves a pending
// operation that is resent unchanged (WeChat Pay deduplicates by request
// number), so a retry never does the thing twice.
//
// The API, in the order a call goes through it:
//
//   - Run(ctx, ac, intent, call, again) records the intent and sends it: Record,
//     then Send. When the intent's form token names an operation already
//     recorded (the same form posted again, or twice at once), Run makes no
//     new one: it continues that operation (Continue) — its outcome when it
//     has one, ErrInFlight while another request is sending it, otherwise a
//     resend of its recorded body under its recorded request number.
//   - Record(ctx, ac, intent, audit) only records: for a call made later (an
//     approval records at submission and sends once approved, with the
//     request number fixed at submission). Intent.Also writes the caller's
//     own rows in the same transaction.
//   - Send(ctx, ac, op, call) sends a recorded operation and records its
//     outcome; Continue(ctx, ac, op, call) answers a re-post of it.
//   - Find and PendingFor look operations up (by form token; a stock's
//     pending one); Resume(ctx, kind, now, olderThan, callFor) is the
//     resumers' loop: every pending operation of a kind that is due is
//     claimed and sent again through Send.
//
// Call.Send makes the WeChat Pay call from the operation (op.Body is what
// was recorded: Body decodes it) and returns what to record of a success
// (Done). Its error is classified with wxpay.Describe:
//
//   - a success records the result, Done.Also's writes and a success audit
//     entry carrying the Request-ID, in one transaction;
//   - a WeChat Pay refusal (a 4xx other than 429, SYSTEM_ERROR aside) is
//     definitive: the operation fails and frees its form token, so the form
//     corrected is a new operation with a new request number;
//   - an unknown outcome — a reply that failed verification, no reply, a
//     5xx, a 429 — keeps the operation pending, to be resent with the same
//     request number; it is never recorded as a failure;
//   - Unsendable(code, message) from Send ends an operation that cannot be
//     sent (nothing went out).
//
// Both kinds of failure run Call.Failed in the transaction that records
// them, and their audit entries carry only wxpay.Describe's code and
// Request-ID, never an error's text.
package wxops

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
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

// InFlight is how long after its intent an operation never tried is taken
// to be in flight in another request rather than left behind by a crash.
const InFlight = time.Minute

// ErrInFlight means the operation is being sent by another request now (its
// form was posted twice at once): its outcome is that request's.
var ErrInFlight = errors.New("wxops: the same operation is being sent by another request")

// Intent is a call about to be made, as it is recorded.
type Intent struct {
	Kind      string // e.g. "create_favor_stock"
	RequestNo string
	FormToken string // the form instance; a re-post finds the same operation
	UserID    *int64
	StockRef  *int64
	Body      any // the request, marshalled once and kept
	// Also, when set, runs in the transaction recording a new operation
	// (not when the form token finds one): rows a resend needs.
	Also func(tx *gorm.DB, op *models.WxOperation) error
}

// Audit is what an operation's audit entries say: the action, its target
// and details (never secrets nor full personal data). An empty TargetID on
// success names the operation's StockRef.
type Audit struct {
	Action, TargetType, TargetID string
	Detail                       map[string]any
}

// Call is how a recorded operation is sent and its outcome recorded.
type Call struct {
	Audit Audit
	// Send makes the WeChat Pay call of op and returns what to record of
	// its success.
	Send func(ctx context.Context, op *models.WxOperation) (*Done, error)
	// Failed, when set, runs in the transaction recording a failure or an
	// unknown outcome; op.Status says which (OpFailed or OpPending).
	Failed func(tx *gorm.DB, op *models.WxOperation) error
}

// Done is a successful call: its reply's Request-ID, the result kept on the
// operation, details added to the audit entry, and writes made in the same
// transaction (e.g. storing the created stock; setting op.StockRef there
// names it).
type Done struct {
	RequestID string
	Result    any
	Detail    map[string]any
	Also      func(tx *gorm.DB, op *models.WxOperation) error
}

// Body decodes the recorded request of op: what is sent, first time or
// resent.
func Body[T any](op *models.WxOperation) (T, error) {
	var v T
	if err := json.Unmarshal([]byte(op.Body), &v); err != nil {
		return v, fmt.Errorf("operation %d body: %w", op.ID, err)
	}
	return v, nil
}

// Run records the intent and sends it (see the package comment). It returns
// the operation as it now stands (op.Status: succeeded, failed, or pending
// when the outcome is unknown) and, when this call did not succeed, why: the
// WeChat Pay error (wxpay.Describe it), ErrInFlight, or the console's own.
//
// c sends the intent just recorded; again builds the Call of an operation
// the form token finds already recorded (its own body, target and rows),
// as it does for Resume.
func (s *Store) Run(ctx context.Context, ac audit.Context, in Intent, c Call, again CallFor) (*models.WxOperation, error) {
	op, existing, err := s.Record(ctx, ac, in, c.Audit)
	if err != nil {
		return nil, err
	}
	if existing {
		if c, err = again(ctx, op); err != nil {
			return op, err
		}
		return op, s.Continue(ctx, ac, op, c)
	}
	return op, s.send(ctx, ac, op, c, false)
}

// CallFor builds the Call of a recorded operation, from its recorded body
// and the caller's own rows: how Run continues an operation found by its
// form token, and how Resume resends one.
type CallFor func(ctx context.Context, op *models.WxOperation) (Call, error)

// Record records the intent with a pending audit entry, or returns the
// operation already recorded for the same form token (existing = true), in
// whatever state it is.
func (s *Store) Record(ctx context.Context, ac audit.Context, in Intent, a Audit) (op *models.WxOperation, existing bool, err error) {
	db := s.DB.WithContext(ctx)
	body, err := json.Marshal(in.Body)
	if err != nil {
		return nil, false, fmt.Errorf("operation body: %w", err)
	}
	op = &models.WxOperation{
		Kind: in.Kind, RequestNo: in.RequestNo, UserID: in.UserID, StockRef: in.StockRef,
		Target: a.TargetType + ":" + a.TargetID, Body: string(body), Status: models.OpPending,
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
		if in.Also != nil {
			if err := in.Also(tx, op); err != nil {
				return err
			}
		}
		rec := ac.Record(a.Action, audit.Pending, a.TargetType, a.TargetID)
		rec.WxRequestNo = in.RequestNo
		rec.Detail = a.Detail
		_, err := audit.Append(ctx, tx, s.Now.UTC(), rec)
		return err
	})
	if (errors.Is(err, errFormRecorded) || errors.Is(err, gorm.ErrDuplicatedKey)) && in.FormToken != "" {
		found, ferr := s.Find(ctx, in.Kind, in.FormToken)
		if ferr == nil && found == nil {
			ferr = fmt.Errorf("form token recorded for another kind of operation than %s", in.Kind)
		}
		return found, ferr == nil, ferr
	}
	if err != nil {
		return nil, false, fmt.Errorf("record intent: %w", err)
	}
	return op, false, nil
}

// errFormRecorded: an operation with the intent's form token exists.
var errFormRecorded = errors.New("form token already recorded")

// Find returns the operation of a kind recorded for a form token, or nil
// when there is none (or formToken is empty). A failed operation has freed
// its token and is not found.
func (s *Store) Find(ctx context.Context, kind, formToken string) (*models.WxOperation, error) {
	if formToken == "" {
		return nil, nil
	}
	return s.first(s.DB.WithContext(ctx).Where("kind = ? AND form_token = ?", kind, formToken))
}

// PendingFor returns the oldest pending operation of a kind on a stock, or
// nil: an action that must not be asked twice at once (a deactivation)
// continues it rather than recording another.
func (s *Store) PendingFor(ctx context.Context, kind string, stockRef int64) (*models.WxOperation, error) {
	return s.first(s.DB.WithContext(ctx).Where("kind = ? AND stock_ref = ? AND status = ?", kind, stockRef, models.OpPending).Order("id"))
}

func (s *Store) first(q *gorm.DB) (*models.WxOperation, error) {
	var op models.WxOperation
	err := q.Take(&op).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &op, nil
}

// Continue answers a recorded operation posted again: nil when it has an
// outcome (op.Status says which), ErrInFlight when it was recorded moments
// ago and never tried (another request is sending it), and otherwise the
// result of resending it.
func (s *Store) Continue(ctx context.Context, ac audit.Context, op *models.WxOperation, c Call) error {
	if op.Status != models.OpPending {
		return nil
	}
	if op.Attempts == 0 && s.Now.UTC().Sub(op.CreatedAt.UTC()) < InFlight {
		return ErrInFlight
	}
	return s.send(ctx, ac, op, c, true)
}

// Send sends a recorded operation and records its outcome (see the package
// comment); it returns the call's error when it did not succeed.
func (s *Store) Send(ctx context.Context, ac audit.Context, op *models.WxOperation, c Call) error {
	return s.send(ctx, ac, op, c, op.Attempts > 0)
}

func (s *Store) send(ctx context.Context, ac audit.Context, op *models.WxOperation, c Call, resent bool) error {
	callErr, recErr := s.try(ctx, ac, op, c, resent)
	if recErr != nil {
		return errors.Join(callErr, recErr)
	}
	return callErr
}

// try sends op and records the outcome; callErr is why the call did not
// succeed (recorded on the operation), recErr a failure to record.
func (s *Store) try(ctx context.Context, ac audit.Context, op *models.WxOperation, c Call, resent bool) (callErr, recErr error) {
	detail := maps.Clone(c.Audit.Detail)
	if detail == nil {
		detail = map[string]any{}
	}
	if resent {
		detail["resent"] = true
	}
	done, err := c.Send(ctx, op)
	if err != nil {
		return err, s.fail(ctx, ac, op, c, err, detail)
	}
	maps.Copy(detail, done.Detail)
	res, _ := json.Marshal(done.Result)
	err = s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if done.Also != nil {
			if err := done.Also(tx, op); err != nil {
				return err
			}
		}
		op.Status, op.Result, op.WxRequestID = models.OpSucceeded, string(res), done.RequestID
		op.WxStatus, op.WxErrorCode, op.WxErrorMessage = 0, "", ""
		op.Attempts++
		if err := tx.Model(op).Select("status", "result", "wx_request_id", "wx_status", "wx_error_code", "wx_error_message",
			"attempts", "stock_ref", "updated_at").Updates(op).Error; err != nil {
			return err
		}
		targetID := c.Audit.TargetID
		if targetID == "" && op.StockRef != nil {
			targetID = fmt.Sprint(*op.StockRef) // known only once Also has run
		}
		rec := ac.Record(c.Audit.Action, audit.Success, c.Audit.TargetType, targetID)
		rec.WxRequestNo, rec.WxRequestID, rec.Detail = op.RequestNo, done.RequestID, detail
		_, err := audit.Append(ctx, tx, s.Now.UTC(), rec)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("record outcome of %s %s: %w", op.Kind, op.RequestNo, err)
	}
	return nil, nil
}

// UnsendableError ends an operation that cannot be sent: nothing went out
// (see Unsendable).
type UnsendableError struct {
	Code, Message string
	Err           error
}

func (e *UnsendableError) Error() string { return "wxops: cannot send: " + e.Message }
func (e *UnsendableError) Unwrap() error { return e.Err }

// Unsendable is what Call.Send returns for an operation it cannot send at
// all (say, the data to resend it is lost): the operation fails with code
// and message — the console's own words, shown and audited — and frees its
// form token.
func Unsendable(code, message string, err error) error {
	return &UnsendableError{Code: code, Message: message, Err: err}
}

// Classify says what a failed call's error means for its operation: final
// (a definitive refusal, or nothing could be sent) or not (the outcome is
// unknown: resend the same request), and what is recorded of it.
func Classify(err error) (d wxpay.Description, final bool) {
	var ue *UnsendableError
	if errors.As(err, &ue) {
		return wxpay.Description{Code: ue.Code, Message: ue.Message}, true
	}
	d, ok := wxpay.Describe(err)
	if !ok {
		// Not a WeChat Pay error: whether the call went out is unknown
		// (a cancelled request, say), so it stays pending.
		return wxpay.Description{Code: wxpay.CodeError, Retryable: true, Key: "wx.err.unavailable"}, false
	}
	return d, !d.Retryable
}

// fail records a failed call: final or pending as Classify says.
func (s *Store) fail(ctx context.Context, ac audit.Context, op *models.WxOperation, c Call, cause error, detail map[string]any) error {
	d, final := Classify(cause)
	rec := ac.Record(c.Audit.Action, audit.Failure, c.Audit.TargetType, c.Audit.TargetID)
	rec.WxRequestNo, rec.WxErrorCode, rec.WxRequestID = op.RequestNo, d.Code, d.RequestID
	detail["retryable"] = !final
	if d.Code == wxpay.CodeReplyRejected {
		detail["reply_rejected"] = true
	}
	rec.Detail = detail
	op.WxStatus, op.WxErrorCode, op.WxErrorMessage, op.WxRequestID = d.Status, d.Code, d.Message, d.RequestID
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
		if c.Failed != nil {
			if err := c.Failed(tx, op); err != nil {
				return err
			}
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

// Resume is the resumers' loop: it resends the operations of a kind due at
// now (see Pending) through Send, each with the Call callFor builds for it,
// as the console on behalf of the user who asked. Each is claimed first, so
// an operation another instance is resending, or whose form was posted
// again, is left to it. It returns how many succeeded; a resend that did not
// is recorded on its operation, and only the errors of listing, claiming,
// callFor and recording are returned.
func (s *Store) Resume(ctx context.Context, kind string, now time.Time, olderThan time.Duration, callFor CallFor) (int, error) {
	pending, err := s.Pending(ctx, kind, now, olderThan)
	if err != nil {
		return 0, err
	}
	done := 0
	var errs []error
	for i := range pending {
		op := &pending[i]
		ok, err := s.claim(ctx, op, now.Add(-olderThan), now)
		if err != nil || !ok {
			errs = append(errs, err)
			continue
		}
		c, err := callFor(ctx, op)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ac := audit.Context{ActorID: op.UserID, Actor: ResumeActor}
		callErr, recErr := s.try(ctx, ac, op, c, true)
		if callErr == nil && recErr == nil {
			done++
		}
		errs = append(errs, recErr)
	}
	return done, errors.Join(errs...)
}

// ResumeActor is who the audit entries of a resumed operation name as
// acting (on behalf of the user who asked).
const ResumeActor = "console (resume)"

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
