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

// inFlight is how long after its intent an operation not yet tried is taken
// to be in flight in another request rather than left behind by a crash.
const inFlight = time.Minute

// Client is the part of the WeChat Pay client deactivation needs.
type Client interface {
	DeactivateProductCouponStock(ctx context.Context, productCouponID, stockID string, req wxpay.DeactivateProductCouponStockRequest) (*wxpay.ProductCouponStock, error)
	GetProductCouponStock(ctx context.Context, productCouponID, stockID string) (*wxpay.ProductCouponStock, error)
}

// Service deactivates stocks.
type Service struct {
	DB  *gorm.DB
	WX  Client
	Ops *wxops.Store
	Now clock.Func
	// AfterIntent, when set, runs right after an intent is recorded and
	// before the call: the fault hook with which tests crash the process
	// between the two.
	AfterIntent func()
}

// ErrInFlight means the same form is being sent by another request now.
var ErrInFlight = errors.New("deactivate: the same form is being submitted")

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
)

// Validate checks the form: a reason of 1–MaxReason characters (surrounding
// spaces do not count) and the stock ID typed again as confirmation. Field
// names are the form's: deactivate_reason and stock_id.
func Validate(st *models.Stock, reason, confirm string) map[string]string {
	errs := map[string]string{}
	switch r := strings.TrimSpace(reason); {
	case r == "":
		errs["deactivate_reason"] = ProblemRequired
	case utf8.RuneCountInString(r) > MaxReason:
		errs["deactivate_reason"] = ProblemTooLong
	}
	switch c := strings.TrimSpace(confirm); {
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

// Deactivate deactivates st with the reason, which the caller has
// validated. The request number is generated here and recorded with the
// exact body before the call; a re-post of the same form (same formToken)
// continues that operation instead of making another. The stock returned is
// the console's record as WeChat Pay's reply left it. A WeChat Pay refusal
// comes back as the *wxpay.APIError.
func (s *Service) Deactivate(ctx context.Context, ac audit.Context, st *models.Stock, reason, formToken string) (*models.Stock, error) {
	if err := Check(st); err != nil {
		return nil, err
	}
	// A deactivation of this stock still pending (from another form) is
	// that request to finish, not a second one with another number.
	var pending models.WxOperation
	err := s.DB.WithContext(ctx).Where("kind = ? AND stock_ref = ? AND status = ?", OpKind, st.ID, models.OpPending).
		Order("id").Take(&pending).Error
	switch {
	case err == nil:
		return s.continueOp(ctx, ac, &pending)
	case !errors.Is(err, gorm.ErrRecordNotFound):
		return nil, err
	}
	return s.DeactivateRequest(ctx, ac, st, NewRequest(s.Now.UTC(), reason), formToken)
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
// sends its own.
func (s *Service) DeactivateRequest(ctx context.Context, ac audit.Context, st *models.Stock, req wxpay.DeactivateProductCouponStockRequest, formToken string) (*models.Stock, error) {
	if err := Check(st); err != nil {
		return nil, err
	}
	op, existing, err := s.Ops.Begin(ctx, ac, wxops.Intent{
		Kind: OpKind, RequestNo: req.OutRequestNo, FormToken: formToken, UserID: ac.ActorID, StockRef: &st.ID,
		Body: req, Action: Action, TargetType: audit.TargetStock, TargetID: strconv.FormatInt(st.ID, 10),
		Detail: intentDetail(st, req),
	})
	if err != nil {
		return nil, err
	}
	if existing {
		return s.continueOp(ctx, ac, op)
	}
	if s.AfterIntent != nil {
		s.AfterIntent()
	}
	return s.send(ctx, ac, op, st, req, false)
}

// Repost answers a form posted again: when formToken names a deactivation
// already recorded it returns true and that operation's outcome (resending
// the request first when it is still pending); otherwise false. Handlers
// call it before checking the state, so a double submit ends on the
// deactivated stock rather than on a refusal.
func (s *Service) Repost(ctx context.Context, ac audit.Context, formToken string) (*models.Stock, bool, error) {
	if formToken == "" {
		return nil, false, nil
	}
	var op models.WxOperation
	err := s.DB.WithContext(ctx).Where("kind = ? AND form_token = ?", OpKind, formToken).Take(&op).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, true, err
	}
	st, err := s.continueOp(ctx, ac, &op)
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

func (s *Service) continueOp(ctx context.Context, ac audit.Context, op *models.WxOperation) (*models.Stock, error) {
	st, err := s.stockOf(ctx, op)
	if err != nil {
		return nil, err
	}
	if op.Status != models.OpPending {
		return st, nil
	}
	if op.Attempts == 0 && s.Now.UTC().Sub(op.CreatedAt.UTC()) < inFlight {
		return st, ErrInFlight
	}
	return s.resend(ctx, ac, op, st)
}

func (s *Service) resend(ctx context.Context, ac audit.Context, op *models.WxOperation, st *models.Stock) (*models.Stock, error) {
	var req wxpay.DeactivateProductCouponStockRequest
	if err := json.Unmarshal([]byte(op.Body), &req); err != nil {
		return st, fmt.Errorf("operation %d body: %w", op.ID, err)
	}
	return s.send(ctx, ac, op, st, req, true)
}

func (s *Service) send(ctx context.Context, ac audit.Context, op *models.WxOperation, st *models.Stock, req wxpay.DeactivateProductCouponStockRequest, resent bool) (*models.Stock, error) {
	target := strconv.FormatInt(st.ID, 10)
	d := intentDetail(st, req)
	if resent {
		d["resent"] = true
	}
	reply, err := s.WX.DeactivateProductCouponStock(ctx, st.ProductCouponID, st.StockID, req)
	if err != nil {
		recorded := err
		var re *wxpay.ReplyError
		if errors.As(err, &re) {
			// WeChat Pay may have deactivated the stock: keep the operation
			// pending, to be resent with the same request number.
			recorded = &wxpay.TransportError{Endpoint: re.Endpoint, Host: re.Host, Err: err}
			d["reply_rejected"] = true
		}
		if ferr := s.Ops.Fail(ctx, ac, op, Action, audit.TargetStock, target, recorded, d); ferr != nil {
			return st, errors.Join(err, ferr)
		}
		if op.Status == models.OpFailed {
			// Refused, typically because the state changed on WeChat
			// Pay's side: show the state it has now.
			_, _ = s.ReadBack(ctx, st)
		}
		return st, err
	}
	now := s.Now.UTC()
	d["state"], d["deactivate_time"], d["deactivate_request_no"] = reply.State, reply.DeactivateTime, reply.DeactivateRequestNo
	result := map[string]any{"state": reply.State, "deactivate_time": reply.DeactivateTime,
		"deactivate_reason": reply.DeactivateReason, "deactivate_request_no": reply.DeactivateRequestNo}
	err = s.Ops.Succeed(ctx, ac, op, Action, audit.TargetStock, target, result, reply.Meta.RequestID, d,
		func(tx *gorm.DB) error {
			stocks.ApplyProductCoupon(st, reply)
			st.RefreshedAt = &now
			return tx.Omit("Bundles").Save(st).Error
		})
	if err != nil {
		return st, fmt.Errorf("record deactivation %s: %w", op.RequestNo, err)
	}
	return st, nil
}

// Resume completes deactivations left pending — by a crash between intent
// and outcome, or by a retryable failure — whose operation was last touched
// more than olderThan ago, by resending each with its recorded request
// number and body. It returns how many succeeded.
func (s *Service) Resume(ctx context.Context, olderThan time.Duration) (int, error) {
	return s.Ops.ResendDue(ctx, OpKind, s.Now.UTC(), olderThan, func(op *models.WxOperation) (bool, error) {
		st, err := s.stockOf(ctx, op)
		if err != nil {
			return false, err
		}
		ac := audit.Context{ActorID: op.UserID, Actor: "console (resume)"}
		_, err = s.resend(ctx, ac, op, st)
		return err == nil, nil // a failed resend is recorded on the operation
	})
}

// Operation is a deactivation the console asked for, as the stock page and
// the deactivation page list it.
type Operation struct {
	ID             int64
	RequestNo      string
	Status         models.OperationStatus
	Reason         string
	Username       string
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
			WxErrorCode: r.WxErrorCode, WxErrorMessage: r.WxErrorMessage, WxRequestID: r.WxRequestID,
			CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
		})
	}
	return out, nil
}
