// Package approvals is the console's maker–checker: actions the policy
// names (deactivation, large stock creations, large code files) are not
// sent when asked for but recorded as an approval request holding the exact
// WeChat Pay call — method, path and body, its request number fixed at
// once. A person who may approve (managers; never the requester) approves or
// rejects it; approval sends that recorded call through the one
// recorded-call path (wx_operations, form token "approval-<id>"), so a
// crash, a retry or two approvers at once still make one call with that
// request number. Requests expire; the requester may withdraw. Every step is
// audited with the request's number, linking request, decision and call.
package approvals

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"voucherconsole/internal/alerts"
	"voucherconsole/internal/audit"
	"voucherconsole/internal/clock"
	"voucherconsole/internal/deactivate"
	"voucherconsole/internal/models"
	"voucherconsole/internal/stocks"
	"voucherconsole/internal/textcheck"
	"voucherconsole/internal/wxpay"
)

// Kinds of request (and KindUpload: an upload's start, which commits with
// its approval and so is never resumed).
const (
	KindDeactivate = "deactivate"
	KindCreate     = "create"
)

// Status of a request.
type Status string

const (
	StatusPending   Status = "pending"
	StatusApproved  Status = "approved" // the call was (or is being) made
	StatusRejected  Status = "rejected"
	StatusExpired   Status = "expired"
	StatusWithdrawn Status = "withdrawn"
	StatusFailed    Status = "failed" // approved, but the console could not send it (the stock's state changed)
)

// Audit actions.
const (
	ActionRequest  = "approval.request"
	ActionApprove  = "approval.approve"
	ActionReject   = "approval.reject"
	ActionWithdraw = "approval.withdraw"
	ActionExpire   = "approval.expire"
	ActionSent     = "approval.sent"
	ActionPolicy   = "approval.policy"
	TargetApproval = "approval"
)

// Sentinel errors; handlers map them to messages.
var (
	ErrNotFound       = errors.New("approvals: no such request")
	ErrOwnRequest     = errors.New("approvals: the requester cannot decide their own request")
	ErrNotApprover    = errors.New("approvals: not allowed to approve")
	ErrNotRequester   = errors.New("approvals: only the requester may withdraw")
	ErrDecided        = errors.New("approvals: the request is no longer pending")
	ErrExpired        = errors.New("approvals: the request has expired")
	ErrReasonRequired = errors.New("approvals: a reason is required")
	ErrReasonTooLong  = errors.New("approvals: reason too long")
	ErrReasonInvalid  = errors.New("approvals: reason has control characters")
	ErrNotSendable    = errors.New("approvals: the stock can no longer be deactivated")
)

// MaxReason bounds a rejection's reason, in characters.
const MaxReason = 200

// DefaultTTL is how long a request waits for a decision.
const DefaultTTL = 24 * time.Hour

// Request is one approval request.
type Request struct {
	ID           int64 `gorm:"primaryKey"`
	Kind         string
	Status       Status
	RequestedBy  int64
	StockRef     *int64
	RequestNo    string
	Method       string
	Path         string
	Body         string // exactly as it will be sent
	FormToken    *string
	DecidedBy    *int64
	DecidedAt    *time.Time
	RejectReason string
	OperationID  *int64
	ExpiresAt    time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// TableName is the requests table.
func (Request) TableName() string { return "approval_requests" }

// Notice tells the requester (UserID) or the approvers (Role) about a
// request.
type Notice struct {
	ID        int64 `gorm:"primaryKey"`
	RequestID int64
	UserID    *int64
	Role      string
	Event     string
	CreatedAt time.Time
}

// TableName is the notices table.
func (Notice) TableName() string { return "approval_notices" }

// Notifier tells people about a request, inside the transaction that
// changes it.
type Notifier interface {
	Notify(ctx context.Context, tx *gorm.DB, n Notice) error
}

// TableNotifier records notices as rows (approval_notices), for the
// console's alerts to pick up.
type TableNotifier struct{}

// Notify records n.
func (TableNotifier) Notify(ctx context.Context, tx *gorm.DB, n Notice) error {
	return tx.WithContext(ctx).Create(&n).Error
}

// Alerter raises and clears the console's alerts (alerts.Service).
type Alerter interface {
	Raise(ctx context.Context, a alerts.Alert) (bool, error)
	Clear(ctx context.Context, kind, key string) error
}

// Alert kinds: approvers are told of a request waiting, the requester of
// its outcome.
const (
	AlertRequested = "approval_requested"
	alertOutcome   = "approval_" // + approved, rejected, expired, failed
)

// Deactivator sends deactivations (deactivate.Service).
type Deactivator interface {
	DeactivateRequest(ctx context.Context, ac audit.Context, st *models.Stock, req wxpay.DeactivateProductCouponStockRequest, formToken string) (*models.Stock, error)
	Repost(ctx context.Context, ac audit.Context, formToken string) (*models.Stock, bool, error)
}

// Creator creates voucher stocks from a recorded request (the stocks
// service, with the console's WeChat Pay client and operations).
type Creator interface {
	CreateFavorRequest(ctx context.Context, ac audit.Context, formToken string, req wxpay.CreateFavorStockRequest) (*models.Stock, error)
}

// Service keeps approval requests.
type Service struct {
	DB         *gorm.DB
	Now        clock.Func
	TTL        time.Duration // 0: DefaultTTL
	Default    Policy        // CONSOLE_APPROVALS, until an admin sets one
	Approvers  []models.Role // nil: managers
	Deactivate Deactivator
	Create     Creator
	// Uploads and Jobs start approved uploads; nil: uploads are never
	// held for approval.
	Uploads  UploadStarter
	Jobs     JobTx
	Notifier Notifier // nil: TableNotifier
	// Alerts, when set, tells approvers and requesters through the
	// console's alerts too, after each change commits; a failure there is
	// logged (the notice row committed with the change).
	Alerts Alerter
	Logger *slog.Logger
}

// alert tells, through the console's alerts, of event on r: approvers of a
// new request, the requester of its outcome.
func (s *Service) alert(ctx context.Context, r *Request, event string) {
	if s.Alerts == nil {
		return
	}
	id := strconv.FormatInt(r.ID, 10)
	key, link := "approval:"+id, "/approvals/"+id
	stockID := ""
	if r.StockRef != nil {
		var ids []string
		_ = s.DB.WithContext(ctx).Model(&models.Stock{}).Where("id = ?", *r.StockRef).Pluck("stock_id", &ids).Error
		if len(ids) > 0 {
			stockID = ids[0]
		}
	}
	var err error
	if event == "requested" {
		_, err = s.Alerts.Raise(ctx, alerts.Alert{Kind: AlertRequested, Key: key, Audience: alerts.Audience{Roles: s.approvers()},
			StockRef: r.StockRef, Link: link, Args: []string{id, stockID, r.RequestNo}})
	} else {
		err = s.Alerts.Clear(ctx, AlertRequested, key)
		if event != "withdrawn" && err == nil {
			requester := r.RequestedBy
			_, err = s.Alerts.Raise(ctx, alerts.Alert{Kind: alertOutcome + event, Key: key, Audience: alerts.Audience{UserID: &requester},
				StockRef: r.StockRef, Link: link, Args: []string{id, stockID, r.RequestNo}})
		}
	}
	if err != nil && s.Logger != nil {
		s.Logger.Error("approval alert", "approval_id", r.ID, "event", event, "err", err)
	}
}

func (s *Service) ttl() time.Duration {
	if s.TTL <= 0 {
		return DefaultTTL
	}
	return s.TTL
}

func (s *Service) approvers() []models.Role {
	if len(s.Approvers) == 0 {
		return []models.Role{models.RoleManager}
	}
	return s.Approvers
}

func (s *Service) notify(ctx context.Context, tx *gorm.DB, n Notice) error {
	if s.Notifier == nil {
		return TableNotifier{}.Notify(ctx, tx, n)
	}
	return s.Notifier.Notify(ctx, tx, n)
}

// notifyApprovers tells every approver role.
func (s *Service) notifyApprovers(ctx context.Context, tx *gorm.DB, r *Request, event string, now time.Time) error {
	for _, role := range s.approvers() {
		if err := s.notify(ctx, tx, Notice{RequestID: r.ID, Role: string(role), Event: event, CreatedAt: now}); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) notifyRequester(ctx context.Context, tx *gorm.DB, r *Request, event string, now time.Time) error {
	id := r.RequestedBy
	return s.notify(ctx, tx, Notice{RequestID: r.ID, UserID: &id, Event: event, CreatedAt: now})
}

func target(r *Request) string { return strconv.FormatInt(r.ID, 10) }

func (s *Service) record(ac audit.Context, action string, outcome audit.Outcome, r *Request, detail map[string]any) audit.Record {
	rec := ac.Record(action, outcome, TargetApproval, target(r))
	rec.WxRequestNo = r.RequestNo
	d := map[string]any{"kind": r.Kind}
	if r.StockRef != nil {
		d["stock_ref"] = *r.StockRef
	}
	for k, v := range detail {
		d[k] = v
	}
	rec.Detail = d
	return rec
}

// Policy is the policy in force: the one an admin set, or CONSOLE_APPROVALS.
func (s *Service) Policy(ctx context.Context) (Policy, error) {
	var row struct{ Policy string }
	res := s.DB.WithContext(ctx).Table("approval_policy").Select("policy").Where("id = 1").Limit(1).Scan(&row)
	if res.Error != nil {
		return Policy{}, res.Error
	}
	if res.RowsAffected == 0 {
		return s.Default, nil
	}
	return ParsePolicy(row.Policy)
}

// SetPolicy replaces the policy in force, audited with before and after.
func (s *Service) SetPolicy(ctx context.Context, ac audit.Context, text string) (Policy, error) {
	p, err := ParsePolicy(text)
	if err != nil {
		return Policy{}, err
	}
	before, err := s.Policy(ctx)
	if err != nil {
		return Policy{}, err
	}
	now := s.Now.UTC()
	err = s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		row := map[string]any{"id": 1, "policy": p.String(), "updated_by": ac.ActorID, "updated_at": now}
		if err := tx.Table("approval_policy").Clauses(clause.OnConflict{
			Columns: []clause.Column{{Name: "id"}}, DoUpdates: clause.AssignmentColumns([]string{"policy", "updated_by", "updated_at"}),
		}).Create(row).Error; err != nil {
			return err
		}
		rec := ac.Record(ActionPolicy, audit.Success, TargetApproval, "policy")
		rec.Detail = map[string]any{"before": before.String(), "after": p.String()}
		_, err := audit.Append(ctx, tx, now, rec)
		return err
	})
	return p, err
}

// RequestDeactivation records a request to deactivate st (which the caller
// has checked may be deactivated) with the reason: the body is made now,
// with its request number, and kept exactly. A form posted twice (same
// formToken) is one request; existing says it was already recorded.
func (s *Service) RequestDeactivation(ctx context.Context, ac audit.Context, st *models.Stock, reason, formToken string) (*Request, bool, error) {
	now := s.Now.UTC()
	body := deactivate.NewRequest(now, reason)
	method, path, err := wxpay.DeactivateProductCouponStockCall(st.ProductCouponID, st.StockID)
	if err != nil {
		return nil, false, err
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, false, err
	}
	ref := st.ID
	return s.recordRequest(ctx, ac, &Request{
		Kind: KindDeactivate, StockRef: &ref, RequestNo: body.OutRequestNo, Method: method, Path: path, Body: string(raw),
	}, formToken, map[string]any{
		"stock_id": st.StockID, "product_coupon_id": st.ProductCouponID,
		"deactivate_reason": body.DeactivateReason, "state_before": st.State,
		"expires_at": now.Add(s.ttl()).Format(time.RFC3339),
	})
}

var errRecorded = errors.New("approvals: form already recorded")

// RequestCreate records a request to create a voucher stock from req (the
// validated form): its request number is fixed now, and the body kept
// exactly. A form posted twice (same formToken) is one request.
func (s *Service) RequestCreate(ctx context.Context, ac audit.Context, req wxpay.CreateFavorStockRequest, formToken string) (*Request, bool, error) {
	now := s.Now.UTC()
	req.OutRequestNo = stocks.NewCreateRequestNo(req, now)
	method, path := wxpay.CreateFavorStockCall()
	raw, err := json.Marshal(req)
	if err != nil {
		return nil, false, err
	}
	detail := map[string]any{"stock_name": req.StockName, "max_amount": req.StockUseRule.MaxAmount,
		"expires_at": now.Add(s.ttl()).Format(time.RFC3339)}
	return s.recordRequest(ctx, ac, &Request{Kind: KindCreate, RequestNo: req.OutRequestNo, Method: method, Path: path, Body: string(raw)}, formToken, detail)
}

// recordRequest stores a new pending request r, audited and told, or finds
// the one its form already recorded.
func (s *Service) recordRequest(ctx context.Context, ac audit.Context, r *Request, formToken string, detail map[string]any) (*Request, bool, error) {
	if ac.ActorID == nil {
		return nil, false, errors.New("approvals: a request needs a signed-in requester")
	}
	now := s.Now.UTC()
	r.Status, r.RequestedBy = StatusPending, *ac.ActorID
	r.ExpiresAt, r.CreatedAt, r.UpdatedAt = now.Add(s.ttl()), now, now
	if formToken != "" {
		r.FormToken = &formToken
	}
	err := s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "form_token"}}, DoNothing: true}).Create(r)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return errRecorded
		}
		if _, err := audit.Append(ctx, tx, now, s.record(ac, ActionRequest, audit.Success, r, detail)); err != nil {
			return err
		}
		if err := s.notifyRequester(ctx, tx, r, "requested", now); err != nil {
			return err
		}
		return s.notifyApprovers(ctx, tx, r, "requested", now)
	})
	if errors.Is(err, errRecorded) {
		var found Request
		if err := s.DB.WithContext(ctx).Where("form_token = ?", formToken).Take(&found).Error; err != nil {
			return nil, false, err
		}
		return &found, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("record approval request: %w", err)
	}
	s.alert(ctx, r, "requested")
	return r, false, nil
}

// Item is a request with the names the pages show.
type Item struct {
	Request
	Requester string
	Decider   string
	StockID   string
	StockName string
}

// MayApprove reports whether u may approve or reject requests at all.
func (s *Service) MayApprove(u *models.User) bool { return u.HasAnyRole(s.approvers()...) }

// Visible reports whether u may see the request: approvers see every
// request, others their own.
func (s *Service) Visible(u *models.User, it *Item) bool {
	return s.MayApprove(u) || it.RequestedBy == u.ID
}

// CanDecide reports whether u may approve or reject it now.
func (s *Service) CanDecide(u *models.User, it *Item) bool {
	return it.Status == StatusPending && s.MayApprove(u) && it.RequestedBy != u.ID && s.Now.UTC().Before(it.ExpiresAt)
}

// CanWithdraw reports whether u may withdraw it now.
func (s *Service) CanWithdraw(u *models.User, it *Item) bool {
	return it.Status == StatusPending && it.RequestedBy == u.ID
}

func (s *Service) items(ctx context.Context) *gorm.DB {
	return s.DB.WithContext(ctx).Table("approval_requests AS a").
		Select("a.*, COALESCE(r.username, '') AS requester, COALESCE(d.username, '') AS decider, " +
			"COALESCE(st.stock_id, '') AS stock_id, COALESCE(st.name, '') AS stock_name").
		Joins("LEFT JOIN users AS r ON r.id = a.requested_by").
		Joins("LEFT JOIN users AS d ON d.id = a.decided_by").
		Joins("LEFT JOIN stocks AS st ON st.id = a.stock_ref")
}

// List returns the requests u may see, pending first, newest first.
func (s *Service) List(ctx context.Context, u *models.User) ([]Item, error) {
	if err := s.ExpireDue(ctx); err != nil {
		return nil, err
	}
	q := s.items(ctx)
	if !s.MayApprove(u) {
		q = q.Where("a.requested_by = ?", u.ID)
	}
	var out []Item
	err := q.Order("CASE WHEN a.status = 'pending' THEN 0 ELSE 1 END, a.id DESC").Limit(200).Scan(&out).Error
	return out, err
}

// Get returns a request.
func (s *Service) Get(ctx context.Context, id int64) (*Item, error) {
	if err := s.ExpireDue(ctx); err != nil {
		return nil, err
	}
	var it Item
	res := s.items(ctx).Where("a.id = ?", id).Limit(1).Scan(&it)
	if res.Error != nil {
		return nil, res.Error
	}
	if res.RowsAffected == 0 {
		return nil, ErrNotFound
	}
	return &it, nil
}

// ExpireDue marks pending requests past their time expired, each audited
// and its requester told.
func (s *Service) ExpireDue(ctx context.Context) error {
	now := s.Now.UTC()
	var due []Request
	if err := s.DB.WithContext(ctx).Where("status = ? AND expires_at <= ?", StatusPending, now).Order("id").Limit(100).Find(&due).Error; err != nil {
		return err
	}
	for i := range due {
		r := &due[i]
		err := s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			res := tx.Model(&Request{}).Where("id = ? AND status = ?", r.ID, StatusPending).
				Updates(map[string]any{"status": StatusExpired, "updated_at": now})
			if res.Error != nil || res.RowsAffected == 0 {
				return res.Error
			}
			if _, err := audit.Append(ctx, tx, now, s.record(audit.Context{Actor: "console"}, ActionExpire, audit.Success, r, nil)); err != nil {
				return err
			}
			return s.notifyRequester(ctx, tx, r, "expired", now)
		})
		if err != nil {
			return err
		}
		s.alert(ctx, r, "expired")
	}
	return nil
}

// decide moves a pending request to status for u, or says why not.
func (s *Service) decide(ctx context.Context, ac audit.Context, u *models.User, id int64, status Status, action string,
	extra map[string]any, also func(tx *gorm.DB, r *Request) error) (*Request, error) {
	run := func(ctx context.Context, fn func(tx *gorm.DB) error) error {
		return s.DB.WithContext(ctx).Transaction(fn)
	}
	return s.decideIn(ctx, run, ac, u, id, status, action, extra, also)
}

// decideIn is decide in the transaction run makes.
func (s *Service) decideIn(ctx context.Context, run func(ctx context.Context, fn func(tx *gorm.DB) error) error, ac audit.Context, u *models.User, id int64, status Status, action string,
	extra map[string]any, also func(tx *gorm.DB, r *Request) error) (*Request, error) {
	now := s.Now.UTC()
	var r Request
	err := run(ctx, func(tx *gorm.DB) error {
		set := map[string]any{"status": status, "updated_at": now}
		q := tx.Model(&Request{}).Where("id = ? AND status = ? AND expires_at > ?", id, StatusPending, now)
		if status == StatusWithdrawn {
			q = q.Where("requested_by = ?", u.ID)
		} else {
			q = q.Where("requested_by <> ?", u.ID)
			set["decided_by"], set["decided_at"] = u.ID, now
			if reason, ok := extra["reason"]; ok {
				set["reject_reason"] = reason
			}
		}
		// One statement decides: of two approvers at once, one changes
		// the row and the other finds it decided.
		res := q.Updates(set)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return errNotTaken
		}
		if err := tx.Take(&r, id).Error; err != nil {
			return err
		}
		if _, err := audit.Append(ctx, tx, now, s.record(ac, action, audit.Success, &r, extra)); err != nil {
			return err
		}
		return also(tx, &r)
	})
	if errors.Is(err, errNotTaken) {
		return s.whyNot(ctx, u, id, status)
	}
	if err != nil {
		return nil, err
	}
	s.alert(ctx, &r, string(status))
	return &r, nil
}

var errNotTaken = errors.New("approvals: not taken")

func (s *Service) whyNot(ctx context.Context, u *models.User, id int64, status Status) (*Request, error) {
	var r Request
	err := s.DB.WithContext(ctx).Take(&r, id).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return nil, ErrNotFound
	case err != nil:
		return nil, err
	case r.Status == StatusPending && !s.Now.UTC().Before(r.ExpiresAt):
		if err := s.ExpireDue(ctx); err != nil {
			return nil, err
		}
		return &r, ErrExpired
	case r.Status == StatusExpired:
		return &r, ErrExpired
	case r.Status != StatusPending:
		return &r, ErrDecided
	case status == StatusWithdrawn:
		return &r, ErrNotRequester
	default:
		return &r, ErrOwnRequest
	}
}

// Approve approves request id as u and makes its recorded call. The
// request returned is as the approval left it; the stock is as WeChat Pay's
// reply left it. A call that failed is recorded on its operation (and
// resent when retryable); its error is returned with the request.
func (s *Service) Approve(ctx context.Context, ac audit.Context, u *models.User, id int64) (*Request, *models.Stock, error) {
	if !s.MayApprove(u) {
		return nil, nil, ErrNotApprover
	}
	var kind string
	if err := s.DB.WithContext(ctx).Model(&Request{}).Where("id = ?", id).Limit(1).Pluck("kind", &kind).Error; err != nil {
		return nil, nil, err
	}
	if kind == KindUpload {
		r, err := s.approveUpload(ctx, ac, u, id)
		return r, nil, err
	}
	r, err := s.decide(ctx, ac, u, id, StatusApproved, ActionApprove, nil, func(tx *gorm.DB, r *Request) error {
		return s.notifyRequester(ctx, tx, r, "approved", s.Now.UTC())
	})
	if err != nil {
		return r, nil, err
	}
	st, err := s.send(ctx, ac, r)
	return r, st, err
}

// Reject rejects request id as u, with a reason; nothing is sent.
func (s *Service) Reject(ctx context.Context, ac audit.Context, u *models.User, id int64, reason string) (*Request, error) {
	if !s.MayApprove(u) {
		return nil, ErrNotApprover
	}
	reason = strings.TrimSpace(reason)
	switch {
	case reason == "":
		return nil, ErrReasonRequired
	case textcheck.Line(reason, 0) != nil: // the one rule for entered text
		return nil, ErrReasonInvalid
	case utf8.RuneCountInString(reason) > MaxReason:
		return nil, ErrReasonTooLong
	}
	return s.decide(ctx, ac, u, id, StatusRejected, ActionReject, map[string]any{"reason": reason}, func(tx *gorm.DB, r *Request) error {
		return s.notifyRequester(ctx, tx, r, "rejected", s.Now.UTC())
	})
}

// Withdraw withdraws u's own pending request; nothing is sent.
func (s *Service) Withdraw(ctx context.Context, ac audit.Context, u *models.User, id int64) (*Request, error) {
	return s.decide(ctx, ac, u, id, StatusWithdrawn, ActionWithdraw, nil, func(tx *gorm.DB, r *Request) error {
		return s.notifyApprovers(ctx, tx, r, "withdrawn", s.Now.UTC())
	})
}

func formToken(r *Request) string { return "approval-" + strconv.FormatInt(r.ID, 10) }

// send makes an approved request's call, or continues it: the operation is
// found by the request number, so a retry after a crash resends the same
// call rather than making another.
func (s *Service) send(ctx context.Context, ac audit.Context, r *Request) (*models.Stock, error) {
	switch r.Kind {
	case KindDeactivate:
	case KindCreate:
		return s.sendCreate(ctx, ac, r)
	default:
		return nil, fmt.Errorf("approvals: kind %q cannot be sent", r.Kind)
	}
	db := s.DB.WithContext(ctx)
	var op models.WxOperation
	err := db.Where("kind = ? AND request_no = ?", deactivate.OpKind, r.RequestNo).Take(&op).Error
	found := err == nil
	if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, err
	}
	var st *models.Stock
	switch {
	case found && op.Status == models.OpFailed:
		// Refused by WeChat Pay before: recorded, not sent again.
	case found:
		st, _, err = s.Deactivate.Repost(ctx, ac, formToken(r))
	default:
		if r.StockRef == nil {
			return nil, fmt.Errorf("approval %d names no stock", r.ID)
		}
		var stock models.Stock
		if err := db.Preload("Bundles").Take(&stock, *r.StockRef).Error; err != nil {
			return nil, err
		}
		var body wxpay.DeactivateProductCouponStockRequest
		if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
			return nil, fmt.Errorf("approval %d body: %w", r.ID, err)
		}
		st, err = s.Deactivate.DeactivateRequest(ctx, ac, &stock, body, formToken(r))
		var na *deactivate.NotAllowedError
		if errors.As(err, &na) {
			return &stock, s.markUnsendable(ctx, ac, r, na)
		}
	}
	if lerr := s.link(ctx, ac, r, deactivate.OpKind); lerr != nil {
		return st, errors.Join(err, lerr)
	}
	return st, err
}

// sendCreate makes an approved creation's call, or continues it, found by
// its request number; a creation WeChat Pay refused is not sent again.
func (s *Service) sendCreate(ctx context.Context, ac audit.Context, r *Request) (*models.Stock, error) {
	var op models.WxOperation
	err := s.DB.WithContext(ctx).Where("kind = ? AND request_no = ?", stocks.OpCreateFavorStock, r.RequestNo).Take(&op).Error
	if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, err
	}
	var st *models.Stock
	if err != nil || op.Status != models.OpFailed {
		var body wxpay.CreateFavorStockRequest
		if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
			return nil, fmt.Errorf("approval %d body: %w", r.ID, err)
		}
		st, err = s.Create.CreateFavorRequest(ctx, ac, formToken(r), body)
		if lerr := s.link(ctx, ac, r, stocks.OpCreateFavorStock); lerr != nil {
			return st, errors.Join(err, lerr)
		}
		return st, err
	}
	return nil, s.link(ctx, ac, r, stocks.OpCreateFavorStock)
}

// markUnsendable ends an approved request whose stock can no longer be
// deactivated (its state changed while it waited): nothing is sent.
func (s *Service) markUnsendable(ctx context.Context, ac audit.Context, r *Request, why *deactivate.NotAllowedError) error {
	now := s.Now.UTC()
	err := s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&Request{}).Where("id = ? AND status = ?", r.ID, StatusApproved).
			Updates(map[string]any{"status": StatusFailed, "updated_at": now})
		if res.Error != nil || res.RowsAffected == 0 {
			return res.Error
		}
		rec := s.record(ac, ActionSent, audit.Denied, r, map[string]any{"reason": "state_not_allowed", "state": why.State})
		if _, err := audit.Append(ctx, tx, now, rec); err != nil {
			return err
		}
		return s.notifyRequester(ctx, tx, r, "failed", now)
	})
	if err != nil {
		return err
	}
	r.Status = StatusFailed
	s.alert(ctx, r, "failed")
	return ErrNotSendable
}

// link records which operation made the request's call, once, audited
// with the operation's outcome.
func (s *Service) link(ctx context.Context, ac audit.Context, r *Request, opKind string) error {
	now := s.Now.UTC()
	return s.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var op models.WxOperation
		err := tx.Where("kind = ? AND request_no = ?", opKind, r.RequestNo).Take(&op).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		set := map[string]any{"operation_id": op.ID}
		if r.StockRef == nil && op.StockRef != nil { // a created stock
			set["stock_ref"] = *op.StockRef
		}
		res := tx.Model(&Request{}).Where("id = ? AND operation_id IS NULL", r.ID).Updates(set)
		if res.Error != nil || res.RowsAffected == 0 {
			return res.Error
		}
		r.OperationID = &op.ID
		rec := s.record(ac, ActionSent, audit.Success, r, map[string]any{"operation_id": op.ID, "operation_status": op.Status})
		_, err = audit.Append(ctx, tx, now, rec)
		return err
	})
}

// Resume expires requests past their time and makes the calls of approved
// requests whose approval was recorded but whose call was not (a crash
// between the two), once they were left alone for olderThan.
func (s *Service) Resume(ctx context.Context, olderThan time.Duration) (int, error) {
	if err := s.ExpireDue(ctx); err != nil {
		return 0, err
	}
	var due []Request
	err := s.DB.WithContext(ctx).Where("status = ? AND kind <> ? AND operation_id IS NULL AND decided_at < ?", StatusApproved, KindUpload, s.Now.UTC().Add(-olderThan)).
		Order("id").Limit(100).Find(&due).Error
	if err != nil {
		return 0, err
	}
	done := 0
	var errs []error
	for i := range due {
		r := &due[i]
		ac := audit.Context{ActorID: r.DecidedBy, Actor: "console (resume)"}
		if _, err := s.send(ctx, ac, r); err != nil && !errors.Is(err, ErrNotSendable) {
			errs = append(errs, err)
			continue
		}
		done++
	}
	return done, errors.Join(errs...)
}
