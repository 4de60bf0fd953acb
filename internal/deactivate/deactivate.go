// Package deactivate deactivates product-coupon stocks (document 001): no
// new claims from the stock, coupons already issued stay valid, and it
// cannot be undone. Only SENDING or PAUSED stocks can be deactivated.
//
// Every call goes through wxops: the intent (request number and exact body)
// is recorded and audited before the call and the outcome after it, so a
// crash in between leaves a pending operation that Resume completes by
// resending the same request; WeChat Pay treats a repeated request number as
// the same deactivation.
package deactivate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/clock"
	"voucherconsole/internal/models"
	"voucherconsole/internal/stocks"
	"voucherconsole/internal/textcheck"
	"voucherconsole/internal/wxops"
	"voucherconsole/internal/wxpay"
)

// OpKind is the wx_operations kind of document 001 calls.
const OpKind = "deactivate_stock"

// Action is the audit action of a deactivation.
const Action = "stock.deactivate"

// MaxReason is document 001's limit on deactivate_reason: 150 UTF-8
// characters (counted as characters, not bytes).
const MaxReason = 150

// Client is the part of the WeChat Pay client deactivation needs.
type Client interface {
	DeactivateProductCouponStock(ctx context.Context, productCouponID, stockID string, req wxpay.DeactivateProductCouponStockRequest) (*wxpay.ProductCouponStock, error)
	GetProductCouponStock(ctx context.Context, productCouponID, stockID string) (*wxpay.ProductCouponStock, error)
}

// Service deactivates stocks.
type Service struct {
	DB  *gorm.DB
	WX  Client
	Now clock.Func
	// AfterIntent, when set, runs right after an intent is recorded and
	// before the call: the fault hook with which tests crash the process
	// between the two.
	AfterIntent func()
}

// ErrInFlight means the same form is being sent by another request now.
var ErrInFlight = wxops.ErrInFlight

func (s *Service) ops() *wxops.Store { return &wxops.Store{DB: s.DB, Now: s.Now} }

// NotAllowedError says why a stock cannot be deactivated: it is not a
// product coupon, or its state is neither SENDING nor PAUSED.
type NotAllowedError struct {
	Kind  models.StockKind
	State models.StockState
}

func (e *NotAllowedError) Error() string {
	if e.Kind != models.KindProductCoupon {
		return fmt.Sprintf("deactivate: only product-coupon stocks can be deactivated, not %s", e.Kind)
	}
	return fmt.Sprintf("deactivate: a stock in state %s cannot be deactivated (only SENDING or PAUSED)", e.State)
}

// Check returns nil when st may be deactivated, and a *NotAllowedError
// saying why not otherwise.
func Check(st *models.Stock) error {
	if stocks.CanDeactivate(st) {
		return nil
	}
	return &NotAllowedError{Kind: st.Kind, State: st.State}
}

// Field problems Validate reports; the handlers translate them.
const (
	ProblemRequired = "required"
	ProblemTooLong  = "too_long"
	ProblemMismatch = "mismatch"
	ProblemText     = "text" // not text: invalid UTF-8, a control or bidi character (textcheck)
)

// Validate checks the form: a reason of 1–MaxReason characters (surrounding
// spaces do not count) and the stock ID typed again as confirmation. Field
// names are the form's: deactivate_reason and stock_id.
func Validate(st *models.Stock, reason, confirm string) map[string]string {
	errs := map[string]string{}
	switch r := strings.TrimSpace(reason); {
	case textcheck.Text(reason, 0) != nil:
		errs["deactivate_reason"] = ProblemText
	case r == "":
		errs["deactivate_reason"] = ProblemRequired
	case utf8.RuneCountInString(r) > MaxReason:
		errs["deactivate_reason"] = ProblemTooLong
	}
	switch c := strings.TrimSpace(confirm); {
	case textcheck.Line(confirm, 0) != nil:
		errs["stock_id"] = ProblemText
	case c == "":
		errs["stock_id"] = ProblemRequired
	case c != st.StockID:
		errs["stock_id"] = ProblemMismatch
	}
	return errs
}

// ReadBack reads a product-coupon stock from WeChat Pay and stores what it
// says on the console's record. Reading changes nothing, so it is not
// audited.
func (s *Service) ReadBack(ctx context.Context, st *models.Stock) (wxpay.Meta, error) {
	if st.Kind != models.KindProductCoupon {
		return wxpay.Meta{}, nil
	}
	r, err := s.WX.GetProductCouponStock(ctx, st.ProductCouponID, st.StockID)
	if err != nil {
		return wxpay.Meta{}, err
	}
	now := s.Now.UTC()
	stocks.ApplyProductCoupon(st, r)
	st.RefreshedAt = &now
	if err := s.DB.WithContext(ctx).Omit("Bundles").Save(st).Error; err != nil {
		return r.Meta, fmt.Errorf("store stock %d: %w", st.ID, err)
	}
	return r.Meta, nil
}

// Refuse records that a deactivation of st was refused by the console
// (nothing was sent): a denied audit entry naming the reason.
func (s *Service) Refuse(ctx context.Context, ac audit.Context, st *models.Stock, why error) error {
	rec := ac.Record(Action, audit.Denied, audit.TargetStock, strconv.FormatInt(st.ID, 10))
	d := map[string]any{"stock_id": st.StockID, "kind": st.Kind, "state": st.State, "reason": "state_not_allowed"}
	var na *NotAllowedError
	if errors.As(why, &na) && na.Kind != models.KindProductCoupon {
		d["reason"] = "kind_not_allowed"
	}
	rec.Detail = d
	_, err := audit.Append(ctx, s.DB, s.Now.UTC(), rec)
	return err
}

func intentDetail(st *models.Stock, req wxpay.DeactivateProductCouponStockRequest) map[string]any {
	return map[string]any{
		"stock_id": st.StockID, "product_coupon_id": st.ProductCouponID,
		"deactivate_reason": req.DeactivateReason, "state_before": st.State,
	}
}

// Form is the deactivation form as posted.
type Form struct {
	Reason    string `form:"deactivate_reason"`
	Confirm   string `form:"stock_id"`
	FormToken string `form:"form_token"`
}

// Result is the outcome of a posted form.
type Result struct {
	// Stock is the console's record as the outcome left it.
	Stock *models.Stock
	// Refused says why the console refused the stock's deactivation
	// (audited as denied; nothing was sent).
	Refused error
	// Errors are the form's field problems (nothing was sent).
	Errors map[string]string
	// Pending: the request is kept to be resent (its outcome is unknown).
	Pending bool
	// Held: the form was valid and held, not sent (see Submit).
	Held bool
}

// Submit answers a posted deactivation form, with one WeChat Pay call at
// most on the way to a success: a form already posted gets its operation's
// outcome (resending it when it is pending); a stock that may not be
// deactivated is refused and audited as denied, a form with field errors
// comes back with them, both with nothing sent; otherwise the stock is
// deactivated. The error is WeChat Pay's (wxpay.Describe it), ErrInFlight,
// or the console's own.
//
// hold, when not nil, is asked before sending a valid form whether to hold
// it instead (a second person's approval first, say); Result.Held then says
// it did, and nothing was sent.
func (s *Service) Submit(ctx context.Context, ac audit.Context, st *models.Stock, f Form, hold func(st *models.Stock, reason, formToken string) bool) (Result, error) {
	op, err := s.ops().Find(ctx, OpKind, f.FormToken)
	if err != nil {
		return Result{Stock: st}, err
	}
	if op != nil {
		done, err := s.continueOp(ctx, ac, op)
		return Result{Stock: done, Pending: err != nil && op.Status == models.OpPending}, err
	}
	if why := Check(st); why != nil {
		return Result{Stock: st, Refused: why}, s.Refuse(ctx, ac, st, why)
	}
	if errs := Validate(st, f.Reason, f.Confirm); len(errs) > 0 {
		return Result{Stock: st, Errors: errs}, nil
	}
	if hold != nil && hold(st, f.Reason, f.FormToken) {
		return Result{Stock: st, Held: true}, nil
	}
	done, pending, err := s.deactivate(ctx, ac, st, f.Reason, f.FormToken)
	return Result{Stock: done, Pending: pending}, err
}

// Deactivate deactivates st with the reason, which the caller has
// validated, through wxops.Run. The request number is generated here and
// recorded with the exact body before the call; a re-post of the same form
// (same formToken) continues that operation instead of making another, and
// so does a deactivation of a stock whose deactivation from another form is
// still pending. The stock returned is the console's record as WeChat Pay's
// reply left it. A WeChat Pay refusal comes back as the *wxpay.APIError.
func (s *Service) Deactivate(ctx context.Context, ac audit.Context, st *models.Stock, reason, formToken string) (*models.Stock, error) {
	done, _, err := s.deactivate(ctx, ac, st, reason, formToken)
	return done, err
}

func (s *Service) deactivate(ctx context.Context, ac audit.Context, st *models.Stock, reason, formToken string) (*models.Stock, bool, error) {
	if err := Check(st); err != nil {
		return st, false, err
	}
	// A deactivation of this stock still pending (from another form) is
	// that request to finish, not a second one with another number.
	if op, err := s.ops().PendingFor(ctx, OpKind, st.ID); err != nil || op != nil {
		if err != nil {
			return st, false, err
		}
		done, err := s.continueOp(ctx, ac, op)
		return done, err != nil && op.Status == models.OpPending, err
	}
	return s.deactivateRequest(ctx, ac, st, NewRequest(s.Now.UTC(), reason), formToken)
}

// NewRequest is the body of a deactivation with a new request number.
func NewRequest(now time.Time, reason string) wxpay.DeactivateProductCouponStockRequest {
	return wxpay.DeactivateProductCouponStockRequest{
		OutRequestNo:     wxops.NewRequestNo("DA", now, 32),
		DeactivateReason: strings.TrimSpace(reason),
	}
}

// DeactivateRequest sends req, a request made beforehand (an approved
// request's, whose number was fixed when it was asked for), as Deactivate
// sends its own: through wxops.Run, so formToken (the approval's) finds the
// operation again however often it is sent.
func (s *Service) DeactivateRequest(ctx context.Context, ac audit.Context, st *models.Stock, req wxpay.DeactivateProductCouponStockRequest, formToken string) (*models.Stock, error) {
	done, _, err := s.deactivateRequest(ctx, ac, st, req, formToken)
	return done, err
}

func (s *Service) deactivateRequest(ctx context.Context, ac audit.Context, st *models.Stock, req wxpay.DeactivateProductCouponStockRequest, formToken string) (*models.Stock, bool, error) {
	if err := Check(st); err != nil {
		return nil, false, err
	}
	op, err := s.ops().Run(ctx, ac, wxops.Intent{
		Kind: OpKind, RequestNo: req.OutRequestNo, FormToken: formToken, UserID: ac.ActorID, StockRef: &st.ID, Body: req,
	}, s.call(st, req, true), s.recorded)
	if op == nil {
		return st, false, err
	}
	if op.RequestNo != req.OutRequestNo { // the form's operation, found again
		done, serr := s.stockOf(ctx, op)
		if serr != nil {
			return st, false, errors.Join(err, serr)
		}
		st = done
	}
	return st, err != nil && op.Status == models.OpPending, err
}

// recorded is the Call of a recorded deactivation.
func (s *Service) recorded(ctx context.Context, op *models.WxOperation) (wxops.Call, error) {
	st, err := s.stockOf(ctx, op)
	if err != nil {
		return wxops.Call{}, err
	}
	req, err := wxops.Body[wxpay.DeactivateProductCouponStockRequest](op)
	if err != nil {
		return wxops.Call{}, err
	}
	return s.call(st, req, false), nil
}

// Repost answers a form posted again: when formToken names a deactivation
// already recorded it returns true and that operation's outcome (resending
// the request first when it is still pending); otherwise false.
func (s *Service) Repost(ctx context.Context, ac audit.Context, formToken string) (*models.Stock, bool, error) {
	op, err := s.ops().Find(ctx, OpKind, formToken)
	if err != nil || op == nil {
		return nil, err != nil, err
	}
	st, err := s.continueOp(ctx, ac, op)
	return st, true, err
}

func (s *Service) stockOf(ctx context.Context, op *models.WxOperation) (*models.Stock, error) {
	if op.StockRef == nil {
		return nil, fmt.Errorf("operation %d names no stock", op.ID)
	}
	var st models.Stock
	if err := s.DB.WithContext(ctx).Preload("Bundles").Take(&st, *op.StockRef).Error; err != nil {
		return nil, fmt.Errorf("operation %d stock: %w", op.ID, err)
	}
	return &st, nil
}

// continueOp continues a recorded operation (wxops.Continue) and returns
// its stock as the outcome left it.
func (s *Service) continueOp(ctx context.Context, ac audit.Context, op *models.WxOperation) (*models.Stock, error) {
	c, err := s.recorded(ctx, op)
	if err != nil {
		return nil, err
	}
	err = s.ops().Continue(ctx, ac, op, c)
	st, serr := s.stockOf(ctx, op) // as the outcome left it
	if serr != nil {
		return nil, errors.Join(err, serr)
	}
	return st, err
}

// call sends a recorded deactivation of st and stores what WeChat Pay's
// reply says of the stock; after a refusal (typically because the state
// changed on WeChat Pay's side) it reads the stock back, to show the state
// it has now. fresh: the intent was recorded just now (the fault hook's
// moment).
func (s *Service) call(st *models.Stock, req wxpay.DeactivateProductCouponStockRequest, fresh bool) wxops.Call {
	return wxops.Call{
		Audit: wxops.Audit{Action: Action, TargetType: audit.TargetStock, TargetID: strconv.FormatInt(st.ID, 10), Detail: intentDetail(st, req)},
		Send: func(ctx context.Context, op *models.WxOperation) (*wxops.Done, error) {
			if fresh && s.AfterIntent != nil {
				s.AfterIntent()
			}
			body, err := wxops.Body[wxpay.DeactivateProductCouponStockRequest](op)
			if err != nil {
				return nil, wxops.Unsendable(wxpay.CodeError, "the recorded request could not be read", err)
			}
			reply, err := s.WX.DeactivateProductCouponStock(ctx, st.ProductCouponID, st.StockID, body)
			if err != nil {
				if d, ok := wxpay.Describe(err); ok && !d.Retryable {
					_, _ = s.ReadBack(ctx, st)
				}
				return nil, err
			}
			now := s.Now.UTC()
			return &wxops.Done{
				RequestID: reply.Meta.RequestID,
				Result: map[string]any{"state": reply.State, "deactivate_time": reply.DeactivateTime,
					"deactivate_reason": reply.DeactivateReason, "deactivate_request_no": reply.DeactivateRequestNo},
				Detail: map[string]any{"state": reply.State, "deactivate_time": reply.DeactivateTime, "deactivate_request_no": reply.DeactivateRequestNo},
				Also: func(tx *gorm.DB, _ *models.WxOperation) error {
					stocks.ApplyProductCoupon(st, reply)
					st.RefreshedAt = &now
					return tx.Omit("Bundles").Save(st).Error
				},
			}, nil
		},
	}
}

// Resume completes deactivations left pending — by a crash between intent
// and outcome, or by an unknown outcome — whose operation was last touched
// more than olderThan ago, by resending each with its recorded request
// number and body. It returns how many succeeded.
func (s *Service) Resume(ctx context.Context, olderThan time.Duration) (int, error) {
	return s.ops().Resume(ctx, OpKind, s.Now.UTC(), olderThan, s.recorded)
}

// Operation is a deactivation the console asked for, as the stock page and
// the deactivation page list it.
type Operation struct {
	ID             int64
	RequestNo      string
	Status         models.OperationStatus
	Reason         string
	Username       string
	WxStatus       int
	WxErrorCode    string
	WxErrorMessage string
	WxRequestID    string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// ForStock lists the deactivations asked for on a stock, newest first.
func (s *Service) ForStock(ctx context.Context, stockRef int64) ([]Operation, error) {
	var rows []struct {
		models.WxOperation
		Username string
	}
	err := s.DB.WithContext(ctx).Table("wx_operations AS o").
		Select("o.*, COALESCE(u.username, '') AS username").
		Joins("LEFT JOIN users AS u ON u.id = o.user_id").
		Where("o.kind = ? AND o.stock_ref = ?", OpKind, stockRef).
		Order("o.id DESC").Limit(20).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("list deactivations: %w", err)
	}
	out := make([]Operation, 0, len(rows))
	for _, r := range rows {
		var body wxpay.DeactivateProductCouponStockRequest
		_ = json.Unmarshal([]byte(r.Body), &body)
		out = append(out, Operation{
			ID: r.ID, RequestNo: r.RequestNo, Status: r.Status, Reason: body.DeactivateReason, Username: r.Username,
			WxStatus: r.WxStatus, WxErrorCode: r.WxErrorCode, WxErrorMessage: r.WxErrorMessage, WxRequestID: r.WxRequestID,
			CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
		})
	}
	return out, nil
}
