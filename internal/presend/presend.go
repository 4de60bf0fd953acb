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
	"voucherconsole/internal/textcheck"
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
	Keys *Keys
	Now  clock.Func
	// AfterIntent, when set, runs right after an intent is recorded and
	// before the call: the fault hook with which tests crash the process
	// between the two.
	AfterIntent func()
}

// ops records pre-sends on the database without savepoints for nested
// transactions: the writes of one record (intent, outcome) commit or fail
// together, so the savepoints wxops and audit would set inside cost
// statements for nothing.
func (s *Service) ops() *wxops.Store {
	return &wxops.Store{DB: s.DB.Session(&gorm.Session{DisableNestedTransaction: true}), Now: s.Now}
}

// Errors the handlers turn into messages.
var (
	// ErrUnknownBundle: the product coupon and bundle are not registered
	// with any stock of the console.
	ErrUnknownBundle = errors.New("presend: stock bundle not registered")
	// ErrInFlight: the same form is being sent by another request now.
	ErrInFlight = wxops.ErrInFlight
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
	ProblemText     = "text" // not text: invalid UTF-8, a control or bidi character (textcheck)
)

// Validate checks the input against document 004's field rules before any
// call, reporting every problem by form field (named after the request
// field it fills).
func Validate(in Input) map[string]string {
	errs := map[string]string{}
	need := func(field, v string, pattern *regexp.Regexp) {
		switch {
		case textcheck.Line(v, 0) != nil:
			errs[field] = ProblemText
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
	switch {
	case textcheck.Line(in.Attach, 0) != nil:
		errs["attach"] = ProblemText
	case utf8.RuneCountInString(in.Attach) > MaxAttach:
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

// Submitted is the outcome of a posted pre-send form.
type Submitted struct {
	Input  Input             // as normalised
	Token  *Token            // the pre-send, when one was recorded (or found again)
	Errors map[string]string // field problems: nothing was sent
}

// Submit answers a posted pre-send form: fields that do not validate come
// back with every problem, unless the form was posted before (after an
// unknown outcome the page leaves the OpenID field empty), in which case
// its recorded request is resent; otherwise the token is obtained (Issue).
func (s *Service) Submit(ctx context.Context, ac audit.Context, in Input) (Submitted, error) {
	in.Normalize()
	if errs := Validate(in); len(errs) > 0 {
		tok, err := s.Repost(ctx, ac, in.FormToken)
		if tok == nil && err == nil {
			return Submitted{Input: in, Errors: errs}, nil
		}
		return Submitted{Input: in, Token: tok}, err
	}
	tok, err := s.Issue(ctx, ac, in)
	return Submitted{Input: in, Token: tok}, err
}

// Issue obtains a pre-send token through wxops.Run. The request number is
// generated here and recorded, with the exact body and the sealed OpenID,
// before the call; a re-post of the same form (same FormToken) returns that
// operation instead: its token when it has one, or the result of resending
// the same request. A WeChat Pay refusal comes back as the *wxpay.APIError,
// with the Token as recorded (status failed, or pending when the outcome is
// unknown and the request is kept to be resent).
func (s *Service) Issue(ctx context.Context, ac audit.Context, in Input) (*Token, error) {
	in.Normalize()
	if errs := Validate(in); len(errs) > 0 {
		// A form re-posted after an unknown outcome may leave the OpenID
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
	intent := wxops.Intent{
		Kind: OpKind, RequestNo: req.SendRequestNo, FormToken: in.FormToken, UserID: ac.ActorID, StockRef: tok.StockRef, Body: req,
		Also: func(tx *gorm.DB, op *models.WxOperation) error {
			tok.OperationID = op.ID
			return tx.Create(tok).Error
		},
	}
	fresh := s.call(tok, func() preparedCall {
		if s.AfterIntent != nil {
			s.AfterIntent()
		}
		return <-signed
	})
	op, err := s.ops().Run(ctx, ac, intent, fresh, s.recorded)
	switch {
	case op == nil && in.FormToken != "":
		// Posted twice at once: the other post recorded the intent (on
		// PostgreSQL this transaction then fails on the form token).
		if tok, rerr := s.Repost(ctx, ac, in.FormToken); tok != nil || rerr != nil {
			return tok, rerr
		}
		return nil, fmt.Errorf("record pre-send %s: %w", req.SendRequestNo, err)
	case op == nil:
		return nil, fmt.Errorf("record pre-send %s: %w", req.SendRequestNo, err)
	case op.ID != tok.OperationID: // the same form, posted again
		found, ferr := s.tokenOf(ctx, op)
		if ferr != nil {
			return nil, errors.Join(err, ferr)
		}
		return found, err
	}
	return tok, err
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
// the fields do not validate, so a form re-posted after an unknown outcome
// (its OpenID field left empty) resends the recorded request.
func (s *Service) Repost(ctx context.Context, ac audit.Context, formToken string) (*Token, error) {
	op, err := s.ops().Find(ctx, OpKind, formToken)
	if err != nil || op == nil {
		return nil, err
	}
	c, err := s.recorded(ctx, op)
	if err != nil {
		return nil, err
	}
	err = s.ops().Continue(ctx, ac, op, c)
	tok, terr := s.tokenOf(ctx, op)
	if terr != nil {
		return nil, errors.Join(err, terr)
	}
	return tok, err
}

// tokenOf is the token record of an operation; ErrInFlight when it has none
// yet (between its intent and its record, in another request).
func (s *Service) tokenOf(ctx context.Context, op *models.WxOperation) (*Token, error) {
	var tok Token
	err := s.DB.WithContext(ctx).Where("operation_id = ?", op.ID).Take(&tok).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrInFlight
	}
	if err != nil {
		return nil, err
	}
	return &tok, nil
}

// recorded is the Call of a recorded pre-send: the recorded body, and the
// OpenID unsealed from its token record. An operation whose OpenID cannot
// be recovered cannot be resent, and ends.
func (s *Service) recorded(ctx context.Context, op *models.WxOperation) (wxops.Call, error) {
	var tok Token
	err := s.DB.WithContext(ctx).Where("operation_id = ?", op.ID).Take(&tok).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		// An intent without its record (Issue writes both in one
		// transaction, so only an operation written otherwise): the OpenID
		// is unknown, so nothing was or can be sent.
		return s.unsendable(op, "NOT_SENT", "the pre-send's OpenID was never recorded; nothing was sent"), nil
	case err != nil:
		return wxops.Call{}, err
	}
	return s.call(&tok, func() preparedCall {
		req, err := wxops.Body[wxpay.PreSendCouponBundleRequest](op)
		if err != nil {
			return preparedCall{err: wxops.Unsendable(wxpay.CodeError, "the recorded request could not be read", err)}
		}
		openid, err := s.Keys.Open(tok.OpenIDSealed, tok.SendRequestNo)
		if err != nil {
			// Whether the first attempt reached WeChat Pay is unknown, but
			// it cannot be resent: end it, so the operator can issue a new
			// token.
			return preparedCall{err: wxops.Unsendable("UNRECOVERABLE",
				"the OpenID kept for resending could not be read (was the session secret changed?); issue a new token", err)}
		}
		call, err := s.WX.PreparePreSendCouponBundle(openid, req)
		return preparedCall{call, err}
	}), nil
}

// unsendable is the Call of an operation without a token record: it ends
// it, sending nothing.
func (s *Service) unsendable(op *models.WxOperation, code, message string) wxops.Call {
	return wxops.Call{
		Audit: wxops.Audit{Action: ActionIssue, TargetType: audit.TargetStock,
			TargetID: strings.TrimPrefix(op.Target, audit.TargetStock+":"), Detail: map[string]any{"error": message}},
		Send: func(context.Context, *models.WxOperation) (*wxops.Done, error) {
			return nil, wxops.Unsendable(code, message, nil)
		},
	}
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

// call sends the pre-send of tok, prepared (signed) by prepare, and keeps
// its outcome on the token record, in the transaction that records it: the
// token and its expiry, or the failure — a final one wipes the sealed
// OpenID; an unknown outcome keeps it, to be resent.
func (s *Service) call(tok *Token, prepare func() preparedCall) wxops.Call {
	return wxops.Call{
		Audit: wxops.Audit{Action: ActionIssue, TargetType: audit.TargetStock, TargetID: target(tok), Detail: detail(tok)},
		Send: func(ctx context.Context, _ *models.WxOperation) (*wxops.Done, error) {
			pc := prepare()
			if pc.err != nil {
				// Nothing went out: the call could not be built (not
				// configured, an OpenID no URL can carry).
				return nil, pc.err
			}
			reply, err := pc.call.Send(ctx)
			if err != nil {
				return nil, err
			}
			now := s.Now.UTC()
			exp := expiry(tok.CreatedAt, now)
			return &wxops.Done{
				RequestID: reply.Meta.RequestID, Result: map[string]any{"presend_id": tok.ID, "expires_at": exp},
				Detail: map[string]any{"expires_at": exp.Format(time.RFC3339)},
				Also: func(tx *gorm.DB, _ *models.WxOperation) error {
					tok.Status, tok.Token, tok.ExpiresAt, tok.OpenIDSealed = StatusIssued, reply.Token, &exp, ""
					tok.WxStatus, tok.WxErrorCode, tok.WxErrorMessage, tok.WxRequestID = 0, "", "", reply.Meta.RequestID
					tok.UpdatedAt = now
					return tx.Model(tok).Select(tokenColumns).Updates(tok).Error
				},
			}, nil
		},
		Failed: func(tx *gorm.DB, op *models.WxOperation) error {
			tok.WxStatus, tok.WxErrorCode, tok.WxErrorMessage, tok.WxRequestID = op.WxStatus, op.WxErrorCode, op.WxErrorMessage, op.WxRequestID
			if op.Status == models.OpFailed {
				tok.Status, tok.OpenIDSealed = StatusFailed, ""
			}
			tok.UpdatedAt = s.Now.UTC()
			return tx.Model(tok).Select(tokenColumns).Updates(tok).Error
		},
	}
}

// Resume completes pre-sends left pending — by a crash between intent and
// outcome, or by an unknown outcome — whose operation was last touched more
// than olderThan ago, by resending each with its recorded request number
// and body. It returns how many got their token.
func (s *Service) Resume(ctx context.Context, olderThan time.Duration) (int, error) {
	return s.ops().Resume(ctx, OpKind, s.Now.UTC(), olderThan, s.recorded)
}

// ErrNotFound: no pre-send has the ID.
var ErrNotFound = errors.New("presend: no such pre-send")

// Get loads a token record.
func (s *Service) Get(ctx context.Context, id int64) (*Token, error) {
	var t Token
	err := s.DB.WithContext(ctx).Take(&t, id).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
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
