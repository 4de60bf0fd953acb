// Package presend issues pre-send tokens (document 004): a token with which
// the coupon widget sends a stock bundle of a product coupon to one user,
// valid for five minutes.
//
// Every call goes through wxops: the intent (request number and exact body)
// is recorded and audited before the call and the outcome after it, so a
// crash in between leaves a pending operation that Resume completes by
// resending the same request. The user's OpenID is not part of the body (it
// is a path parameter), and it is personal data: a Token row keeps its keyed
// hash and masked form for good, and the OpenID itself only sealed, only
// while the outcome is unknown.
package presend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/clock"
	"voucherconsole/internal/models"
	"voucherconsole/internal/wxops"
	"voucherconsole/internal/wxpay"
)

// OpKind is the wx_operations kind of document 004 calls.
const OpKind = "presend_coupon_bundle"

// ActionIssue is the audit action of a pre-send.
const ActionIssue = "presend.issue"

// TokenTTL is how long a token is valid (document 004: 有效期为5分钟).
const TokenTTL = 5 * time.Minute

// MaxAttach is document 004's limit on attach: 150 UTF-8 characters.
const MaxAttach = 150

// inFlight is how long after its intent an operation that has not been
// tried yet is taken to be in flight in another request, rather than left
// behind by a crash.
const inFlight = time.Minute

// Token statuses.
const (
	StatusPending = "pending" // intent recorded; no definitive answer yet
	StatusIssued  = "issued"
	StatusFailed  = "failed" // refused by WeChat Pay, or abandoned unsent
)

// Token is a pre-send as the console keeps it (table presend_tokens).
type Token struct {
	ID              int64 `gorm:"primaryKey"`
	OperationID     int64
	SendRequestNo   string
	StockRef        *int64
	ProductCouponID string
	StockBundleID   string
	AppID           string `gorm:"column:appid"`
	OpenIDHash      string `gorm:"column:openid_hash"`
	OpenIDMasked    string `gorm:"column:openid_masked"`
	OpenIDSealed    string `gorm:"column:openid_sealed"`
	Attach          string
	Status          string
	Token           string
	ExpiresAt       *time.Time
	WxStatus        int
	WxErrorCode     string
	WxErrorMessage  string
	WxRequestID     string
	CreatedBy       *int64
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// TableName is presend_tokens.
func (Token) TableName() string { return "presend_tokens" }

// Expired reports whether an issued token's five minutes are over at now.
func (t *Token) Expired(now time.Time) bool {
	return t.ExpiresAt != nil && !now.Before(*t.ExpiresAt)
}

// Remaining is the validity left at now (zero once expired or not issued).
func (t *Token) Remaining(now time.Time) time.Duration {
	if t.ExpiresAt == nil || !now.Before(*t.ExpiresAt) {
		return 0
	}
	return t.ExpiresAt.Sub(now)
}

// Client is the part of the WeChat Pay client that pre-sends: it builds
// and signs a call, which is sent later.
type Client interface {
	PreparePreSendCouponBundle(openid string, req wxpay.PreSendCouponBundleRequest) (*wxpay.PreSendCall, error)
}

// Service issues and lists pre-send tokens.
type Service struct {
	DB   *gorm.DB
	WX   Client
	Ops  *wxops.Store
	Keys *Keys
	Now  clock.Func
	// AfterIntent, when set, runs right after an intent is recorded and
	// before the call: the fault hook with which tests crash the process
	// between the two.
	AfterIntent func()
}

// flat is the database without savepoints for nested transactions: the
// writes of one record (intent, outcome) commit or fail together, so the
// savepoints wxops and audit would set inside cost statements for nothing.
func (s *Service) flat() *gorm.DB {
	return s.DB.Session(&gorm.Session{DisableNestedTransaction: true})
}

// Errors the handlers turn into messages.
var (
	// ErrUnknownBundle: the product coupon and bundle are not registered
	// with any stock of the console.
	ErrUnknownBundle = errors.New("presend: stock bundle not registered")
	// ErrInFlight: the same form is being sent by another request now.
	ErrInFlight = errors.New("presend: the same form is being submitted")
)

// Input is a pre-send as the operator asks for it.
type Input struct {
	ProductCouponID string
	StockBundleID   string
	AppID           string
	OpenID          string
	Attach          string
	FormToken       string // the form instance: a re-post is the same operation
}

// Normalize trims what a copy and paste adds around IDs.
func (in *Input) Normalize() {
	in.ProductCouponID = strings.TrimSpace(in.ProductCouponID)
	in.StockBundleID = strings.TrimSpace(in.StockBundleID)
	in.AppID = strings.TrimSpace(in.AppID)
	in.OpenID = strings.TrimSpace(in.OpenID)
}

var (
	idPattern     = regexp.MustCompile(`^[0-9A-Za-z_-]{1,64}$`)
	appIDPattern  = regexp.MustCompile(`^wx[0-9A-Za-z]{6,32}$`)
	openIDPattern = regexp.MustCompile(`^[0-9A-Za-z_-]{1,128}$`)
)

// Field problems Validate reports; the handlers translate them.
const (
	ProblemRequired = "required"
	ProblemFormat   = "format"
	ProblemTooLong  = "too_long"
)

// Validate checks the input against document 004's field rules before any
// call, reporting every problem by form field (named after the request
// field it fills).
func Validate(in Input) map[string]string {
	errs := map[string]string{}
	need := func(field, v string, pattern *regexp.Regexp) {
		switch {
		case v == "":
			errs[field] = ProblemRequired
		case !pattern.MatchString(v):
			errs[field] = ProblemFormat
		}
	}
	need("product_coupon_id", in.ProductCouponID, idPattern)
	need("stock_bundle_id", in.StockBundleID, idPattern)
	need("appid", in.AppID, appIDPattern)
	need("openid", in.OpenID, openIDPattern)
	if utf8.RuneCountInString(in.Attach) > MaxAttach {
		errs["attach"] = ProblemTooLong
	}
	return errs
}

// Bundle is a registered stock bundle with the stocks it was registered on.
type Bundle struct {
	ProductCouponID string
	StockBundleID   string
	Stocks          []BundleStock
}

// BundleStock is one registered stock of a bundle.
type BundleStock struct {
	Ref     int64
	StockID string
	Name    string
	State   models.StockState
}

// Bundles lists the registered stock bundles of product coupons, by product
// coupon and bundle ID.
func (s *Service) Bundles(ctx context.Context) ([]Bundle, error) {
	var rows []struct {
		ProductCouponID string
		StockBundleID   string
		Ref             int64
		StockID         string
		Name            string
		State           models.StockState
	}
	err := s.DB.WithContext(ctx).Table("stock_bundles AS b").
		Select("b.product_coupon_id, b.stock_bundle_id, s.id AS ref, s.stock_id, s.name, s.state").
		Joins("JOIN stocks AS s ON s.id = b.stock_ref").
		Where("s.kind = ?", models.KindProductCoupon).
		Order("b.product_coupon_id, b.stock_bundle_id, s.id").Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("list bundles: %w", err)
	}
	var out []Bundle
	for _, r := range rows {
		if n := len(out); n == 0 || out[n-1].ProductCouponID != r.ProductCouponID || out[n-1].StockBundleID != r.StockBundleID {
			out = append(out, Bundle{ProductCouponID: r.ProductCouponID, StockBundleID: r.StockBundleID})
		}
		b := &out[len(out)-1]
		b.Stocks = append(b.Stocks, BundleStock{Ref: r.Ref, StockID: r.StockID, Name: r.Name, State: r.State})
	}
	return out, nil
}

// bundleStocks are the console's stocks registered with a bundle, oldest
// first; the first is the target the audit entries name.
func (s *Service) bundleStocks(ctx context.Context, productCouponID, bundleID string) ([]int64, error) {
	var refs []int64
	err := s.DB.WithContext(ctx).Table("stock_bundles AS b").
		Joins("JOIN stocks AS s ON s.id = b.stock_ref").
		Where("s.kind = ? AND b.product_coupon_id = ? AND b.stock_bundle_id = ?", models.KindProductCoupon, productCouponID, bundleID).
		Order("s.id").Pluck("s.id", &refs).Error
	return refs, err
}

// detail is what the audit entries say about a pre-send: never the OpenID,
// only its masked form.
func detail(t *Token) map[string]any {
	return map[string]any{
		"product_coupon_id": t.ProductCouponID, "stock_bundle_id": t.StockBundleID,
		"appid": t.AppID, "openid": t.OpenIDMasked, "attach_chars": utf8.RuneCountInString(t.Attach),
	}
}

func target(t *Token) string {
	if t.StockRef != nil {
		return strconv.FormatInt(*t.StockRef, 10)
	}
	return t.ProductCouponID + "/" + t.StockBundleID
}

// Issue obtains a pre-send token. The request number is generated here and
// recorded, with the exact body and the sealed OpenID, before the call; a
// re-post of the same form (same FormToken) returns that operation instead
// (wxops.Begin finds it): its token when it has one, or the result of
// resending the same request.
// A WeChat Pay refusal comes back as the *wxpay.APIError, with the Token as
// recorded (status failed, or pending when the request may be resent).
func (s *Service) Issue(ctx context.Context, ac audit.Context, in Input) (*Token, error) {
	in.Normalize()
	if errs := Validate(in); len(errs) > 0 {
		// A form re-posted after a retryable failure may leave the OpenID
		// out: its operation resends what was recorded.
		if tok, err := s.Repost(ctx, ac, in.FormToken); tok != nil || err != nil {
			return tok, err
		}
		return nil, fmt.Errorf("presend: invalid input %v", errs)
	}
	now := s.Now.UTC()
	req := wxpay.PreSendCouponBundleRequest{
		ProductCouponID: in.ProductCouponID, StockBundleID: in.StockBundleID, AppID: in.AppID,
		SendRequestNo: wxops.NewRequestNo("PS", now, 32), Attach: in.Attach,
	}
	// The call is signed (about a millisecond of private-key arithmetic)
	// while the bundle is looked up and the intent recorded; it is sent only
	// once the intent has committed. A form that turns out to be a re-post,
	// or a bundle that is not registered, drops it unsent.
	signed := make(chan preparedCall, 1)
	go func() {
		call, err := s.WX.PreparePreSendCouponBundle(in.OpenID, req)
		signed <- preparedCall{call, err}
	}()
	refs, err := s.bundleStocks(ctx, in.ProductCouponID, in.StockBundleID)
	if err != nil {
		return nil, err
	}
	if len(refs) == 0 {
		return nil, ErrUnknownBundle
	}
	tok := &Token{
		SendRequestNo: req.SendRequestNo, StockRef: &refs[0], ProductCouponID: in.ProductCouponID,
		StockBundleID: in.StockBundleID, AppID: in.AppID, OpenIDHash: s.Keys.Hash(in.OpenID),
		OpenIDMasked: Mask(in.OpenID), Attach: in.Attach, Status: StatusPending, CreatedBy: ac.ActorID,
		CreatedAt: now, UpdatedAt: now,
	}
	if tok.OpenIDSealed, err = s.Keys.Seal(in.OpenID, req.SendRequestNo); err != nil {
		return nil, err
	}
	// The intent (operation, audit entry) and the token record with the
	// sealed OpenID commit together: whatever is pending can be resent.
	var (
		op       *models.WxOperation
		existing bool
	)
	err = s.flat().WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		ops := &wxops.Store{DB: tx, Now: s.Ops.Now}
		op, existing, err = ops.Begin(ctx, ac, wxops.Intent{
			Kind: OpKind, RequestNo: req.SendRequestNo, FormToken: in.FormToken, UserID: ac.ActorID, StockRef: tok.StockRef,
			Body: req, Action: ActionIssue, TargetType: audit.TargetStock, TargetID: target(tok), Detail: detail(tok),
		})
		if err != nil || existing {
			return err
		}
		tok.OperationID = op.ID
		return tx.Create(tok).Error
	})
	if err != nil {
		// Posted twice at once: the other post recorded the intent (on
		// PostgreSQL this transaction then fails on the form token).
		if tok, rerr := s.Repost(ctx, ac, in.FormToken); tok != nil || rerr != nil {
			return tok, rerr
		}
		return nil, fmt.Errorf("record pre-send %s: %w", req.SendRequestNo, err)
	}
	if existing { // the same form, posted again
		return s.continueOp(ctx, ac, op)
	}
	if s.AfterIntent != nil {
		s.AfterIntent()
	}
	return s.send(ctx, ac, op, tok, <-signed, false)
}

// preparedCall is a pre-send signed and ready to send, or why it could not
// be built.
type preparedCall struct {
	call *wxpay.PreSendCall
	err  error
}

// Repost answers a form posted again: when formToken names an operation
// already recorded it returns that operation's token (resending the request
// first when it is still pending); otherwise nil, nil. Handlers call it when
// the fields do not validate, so a form re-posted after a retryable failure
// (its OpenID field left empty) resends the recorded request.
func (s *Service) Repost(ctx context.Context, ac audit.Context, formToken string) (*Token, error) {
	if formToken == "" {
		return nil, nil
	}
	var op models.WxOperation
	err := s.DB.WithContext(ctx).Where("kind = ? AND form_token = ?", OpKind, formToken).Take(&op).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return s.continueOp(ctx, ac, &op)
}

// continueOp answers a re-post of a recorded operation: the token it got, or
// the result of resending it when it is still pending and not in flight.
func (s *Service) continueOp(ctx context.Context, ac audit.Context, op *models.WxOperation) (*Token, error) {
	var tok Token
	err := s.DB.WithContext(ctx).Where("operation_id = ?", op.ID).Take(&tok).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrInFlight // between its intent and its record, in another request
	}
	if err != nil {
		return nil, err
	}
	if op.Status != models.OpPending || tok.Status != StatusPending {
		return &tok, nil
	}
	if op.Attempts == 0 && s.Now.UTC().Sub(op.CreatedAt) < inFlight {
		return &tok, ErrInFlight
	}
	return s.resend(ctx, ac, op, &tok)
}

// resend sends a pending operation again: the recorded body, and the OpenID
// unsealed from its record.
func (s *Service) resend(ctx context.Context, ac audit.Context, op *models.WxOperation, tok *Token) (*Token, error) {
	var req wxpay.PreSendCouponBundleRequest
	if err := json.Unmarshal([]byte(op.Body), &req); err != nil {
		return tok, fmt.Errorf("operation %d body: %w", op.ID, err)
	}
	openid, err := s.Keys.Open(tok.OpenIDSealed, tok.SendRequestNo)
	if err != nil {
		// Whether the first attempt reached WeChat Pay is unknown, but it
		// cannot be resent: end it, so the operator can issue a new token.
		return tok, errors.Join(err, s.abandon(ctx, op, tok, "UNRECOVERABLE",
			"the OpenID kept for resending could not be read (was the session secret changed?); issue a new token"))
	}
	call, err := s.WX.PreparePreSendCouponBundle(openid, req)
	return s.send(ctx, ac, op, tok, preparedCall{call, err}, true)
}

// expiry is when a token obtained now expires. WeChat Pay answers a resent
// request within the first token's five minutes with that same token, so a
// token is taken to date from the first attempt while that is possible.
func expiry(firstAttempt, now time.Time) time.Time {
	if e := firstAttempt.Add(TokenTTL); now.Before(e) {
		return e
	}
	return now.Add(TokenTTL)
}

// tokenColumns are the columns an outcome updates.
var tokenColumns = []string{"status", "token", "expires_at", "openid_sealed", "wx_status", "wx_error_code", "wx_error_message", "wx_request_id", "updated_at"}

// send sends a recorded pre-send and records its outcome.
func (s *Service) send(ctx context.Context, ac audit.Context, op *models.WxOperation, tok *Token, pc preparedCall, resent bool) (*Token, error) {
	d := detail(tok)
	if resent {
		d["resent"] = true
	}
	if pc.err != nil {
		// Nothing went out: the call could not be built (not configured,
		// an OpenID no URL can carry).
		return tok, s.fail(ctx, ac, op, tok, pc.err, d)
	}
	reply, err := pc.call.Send(ctx)
	if err != nil {
		return tok, s.fail(ctx, ac, op, tok, err, d)
	}
	now := s.Now.UTC()
	exp := expiry(tok.CreatedAt, now)
	d["expires_at"] = exp.Format(time.RFC3339)
	ops := &wxops.Store{DB: s.flat(), Now: s.Ops.Now}
	err = ops.Succeed(ctx, ac, op, ActionIssue, audit.TargetStock, target(tok),
		map[string]any{"presend_id": tok.ID, "expires_at": exp}, reply.Meta.RequestID, d,
		func(tx *gorm.DB) error {
			tok.Status, tok.Token, tok.ExpiresAt, tok.OpenIDSealed = StatusIssued, reply.Token, &exp, ""
			tok.WxStatus, tok.WxErrorCode, tok.WxErrorMessage, tok.WxRequestID = 0, "", "", reply.Meta.RequestID
			tok.UpdatedAt = now
			return tx.Model(tok).Select(tokenColumns).Updates(tok).Error
		})
	if err != nil {
		return tok, fmt.Errorf("record pre-send %s: %w", op.RequestNo, err)
	}
	return tok, nil
}

// fail records a failed call on the operation (wxops decides whether it is
// final) and on the token; a final failure wipes the sealed OpenID. A reply
// that failed verification leaves the outcome unknown, so it is kept
// pending, to be resent, rather than ended.
func (s *Service) fail(ctx context.Context, ac audit.Context, op *models.WxOperation, tok *Token, cause error, d map[string]any) error {
	recorded := cause
	var re *wxpay.ReplyError
	if errors.As(cause, &re) {
		recorded = &wxpay.TransportError{Endpoint: re.Endpoint, Host: re.Host, Err: cause}
		d["reply_rejected"] = true
	}
	ferr := s.Ops.Fail(ctx, ac, op, ActionIssue, audit.TargetStock, target(tok), recorded, d)
	tok.WxStatus, tok.WxErrorCode, tok.WxErrorMessage, tok.WxRequestID = op.WxStatus, op.WxErrorCode, op.WxErrorMessage, op.WxRequestID
	if op.Status == models.OpFailed {
		tok.Status, tok.OpenIDSealed = StatusFailed, ""
	}
	tok.UpdatedAt = s.Now.UTC()
	uerr := s.DB.WithContext(ctx).Model(tok).Select(tokenColumns).Updates(tok).Error
	if ferr != nil || uerr != nil {
		return errors.Join(cause, ferr, uerr)
	}
	return cause
}

// abandon ends a pending operation that cannot be (re)sent, with a failure
// audit entry, and wipes its sealed OpenID.
func (s *Service) abandon(ctx context.Context, op *models.WxOperation, tok *Token, code, message string) error {
	now := s.Now.UTC()
	return s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		op.Status, op.FormToken, op.WxErrorCode, op.WxErrorMessage = models.OpFailed, nil, code, message
		if err := tx.Model(op).Select("status", "form_token", "wx_error_code", "wx_error_message", "updated_at").Updates(op).Error; err != nil {
			return err
		}
		d := map[string]any{"error": message}
		if tok != nil {
			tok.Status, tok.OpenIDSealed, tok.WxErrorCode, tok.WxErrorMessage, tok.UpdatedAt = StatusFailed, "", code, message, now
			if err := tx.Model(tok).Select(tokenColumns).Updates(tok).Error; err != nil {
				return err
			}
			d = detail(tok)
			d["error"] = message
		}
		ac := audit.Context{ActorID: op.UserID, Actor: "console (resume)"}
		rec := ac.Record(ActionIssue, audit.Failure, audit.TargetStock, strings.TrimPrefix(op.Target, audit.TargetStock+":"))
		rec.WxRequestNo, rec.WxErrorCode, rec.Detail = op.RequestNo, code, d
		_, err := audit.Append(ctx, tx, now, rec)
		return err
	})
}

// Resume completes pre-sends left pending — by a crash between intent and
// outcome, or by a retryable failure — whose operation was last touched
// more than olderThan ago, by resending each with its recorded request
// number and body. It returns how many got their token.
func (s *Service) Resume(ctx context.Context, olderThan time.Duration) (int, error) {
	if err := s.reconcile(ctx); err != nil {
		return 0, err
	}
	return s.Ops.ResendDue(ctx, OpKind, s.Now.UTC(), olderThan, func(op *models.WxOperation) (bool, error) {
		var tok Token
		err := s.DB.WithContext(ctx).Where("operation_id = ?", op.ID).Take(&tok).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			// An intent without its record (Issue writes both in one
			// transaction, so only an operation written otherwise): the
			// OpenID is unknown, so nothing was or can be sent.
			return false, s.abandon(ctx, op, nil, "NOT_SENT", "the pre-send's OpenID was never recorded; nothing was sent")
		}
		if err != nil {
			return false, err
		}
		ac := audit.Context{ActorID: op.UserID, Actor: "console (resume)"}
		_, err = s.resend(ctx, ac, op, &tok)
		return err == nil, nil // a failed resend is recorded on the operation
	})
}

// reconcile finishes token records whose operation ended while the record
// was not updated (a crash between the two writes of a failure).
func (s *Service) reconcile(ctx context.Context) error {
	var toks []Token
	err := s.DB.WithContext(ctx).Where("status = ? AND operation_id IN (?)", StatusPending,
		s.DB.Model(&models.WxOperation{}).Select("id").Where("kind = ? AND status = ?", OpKind, models.OpFailed)).
		Find(&toks).Error
	if err != nil {
		return err
	}
	for i := range toks {
		t := &toks[i]
		t.Status, t.OpenIDSealed, t.UpdatedAt = StatusFailed, "", s.Now.UTC()
		if err := s.DB.WithContext(ctx).Model(t).Select("status", "openid_sealed", "updated_at").Updates(t).Error; err != nil {
			return err
		}
	}
	return nil
}

// Get loads a token record.
func (s *Service) Get(ctx context.Context, id int64) (*Token, error) {
	var t Token
	err := s.DB.WithContext(ctx).Take(&t, id).Error
	return &t, err
}

// Recent lists the latest pre-sends, newest first.
func (s *Service) Recent(ctx context.Context, limit int) ([]Token, error) {
	var out []Token
	err := s.DB.WithContext(ctx).Order("id DESC").Limit(limit).Find(&out).Error
	return out, err
}

// ForStock lists the latest pre-sends of the stock's bundles, newest first.
func (s *Service) ForStock(ctx context.Context, st *models.Stock, limit int) ([]Token, error) {
	if len(st.Bundles) == 0 {
		return nil, nil
	}
	ids := make([]string, 0, len(st.Bundles))
	for _, b := range st.Bundles {
		ids = append(ids, b.StockBundleID)
	}
	var out []Token
	err := s.DB.WithContext(ctx).Where("product_coupon_id = ? AND stock_bundle_id IN ?", st.ProductCouponID, ids).
		Order("id DESC").Limit(limit).Find(&out).Error
	return out, err
}
