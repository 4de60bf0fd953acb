package stocks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/models"
	"voucherconsole/internal/wxops"
	"voucherconsole/internal/wxpay"
)

// OpCreateFavorStock is the wx_operations kind of document 003 calls.
const OpCreateFavorStock = "create_favor_stock"

// Creator is the part of the WeChat Pay client that creates voucher stocks.
type Creator interface {
	CreateFavorStock(ctx context.Context, req wxpay.CreateFavorStockRequest) (*wxpay.CreateFavorStockReply, error)
	Config() wxpay.Config
}

// Merchant is the merchant voucher stocks are created as (belong_merchant),
// and the usual choice of merchants they may be used at.
func (s *Service) Merchant() string { return s.Create.Config().MchID }

func (s *Service) ops() *wxops.Store { return &wxops.Store{DB: s.DB, Now: s.Now} }

// ErrInFlight means the same form is being sent by another request now.
var ErrInFlight = wxops.ErrInFlight

// Created is the outcome of a stock creation.
type Created struct {
	Stock     *models.Stock // the console's record of the stock created
	RequestNo string        // the request's number (the form's first, when posted again)
	Pending   bool          // not created yet: the outcome is unknown and the request kept to be resent
}

// CreateFavor creates a voucher stock through wxops.Run. The request number
// is generated here and recorded with the exact body before the call; a
// re-post of the same form (same formToken) or the resumer resends that
// number and body — also after a reply that failed verification, whose
// outcome is unknown — so WeChat Pay creates one stock however often the
// form is posted. A WeChat Pay error is returned as such (wxpay.Describe).
func (s *Service) CreateFavor(ctx context.Context, ac audit.Context, formToken string, req wxpay.CreateFavorStockRequest) (Created, error) {
	req.OutRequestNo = NewCreateRequestNo(req, s.Now.UTC())
	return s.CreateFavorRequest(ctx, ac, formToken, req)
}

// NewCreateRequestNo is a new request number for document 003's req.
func NewCreateRequestNo(req wxpay.CreateFavorStockRequest, now time.Time) string {
	return wxops.NewRequestNo(req.BelongMerchant, now, 32)
}

// CreateFavorRequest creates a voucher stock from req, whose request number
// was fixed beforehand (an approved request's), as CreateFavor does.
func (s *Service) CreateFavorRequest(ctx context.Context, ac audit.Context, formToken string, req wxpay.CreateFavorStockRequest) (Created, error) {
	op, err := s.ops().Run(ctx, ac, wxops.Intent{
		Kind: OpCreateFavorStock, RequestNo: req.OutRequestNo, FormToken: formToken, UserID: ac.ActorID, Body: req,
	}, s.createCall(req.OutRequestNo, req.StockName), s.recordedCreate)
	if op == nil {
		return Created{}, err
	}
	out := Created{RequestNo: op.RequestNo, Pending: op.Status == models.OpPending}
	switch {
	case err != nil:
		return out, err
	case op.Status == models.OpSucceeded && op.StockRef != nil:
		out.Stock, err = s.Get(ctx, *op.StockRef)
		return out, err
	}
	return out, fmt.Errorf("stock creation %s ended %s", op.RequestNo, op.Status)
}

// createCall sends a recorded document 003 call and stores the stock it
// created.
func (s *Service) createCall(requestNo, name string) wxops.Call {
	return wxops.Call{
		Audit: wxops.Audit{Action: ActionCreate, TargetType: audit.TargetStock, TargetID: "new:" + requestNo,
			Detail: map[string]any{"stock_name": name}},
		Send: func(ctx context.Context, op *models.WxOperation) (*wxops.Done, error) {
			req, err := wxops.Body[wxpay.CreateFavorStockRequest](op)
			if err != nil {
				return nil, wxops.Unsendable(wxpay.CodeError, "the recorded request could not be read", err)
			}
			reply, err := s.Create.CreateFavorStock(ctx, req)
			if err != nil {
				return nil, err
			}
			return &wxops.Done{
				RequestID: reply.Meta.RequestID, Result: reply,
				Detail: map[string]any{"stock_id": reply.StockID, "create_time": reply.CreateTime},
				Also:   func(tx *gorm.DB, op *models.WxOperation) error { return s.storeCreated(tx, op, req, reply) },
			}, nil
		},
	}
}

// storeCreated records the stock WeChat Pay created, once: the same stock
// may already be recorded if an earlier attempt succeeded but its outcome
// was lost.
func (s *Service) storeCreated(tx *gorm.DB, op *models.WxOperation, req wxpay.CreateFavorStockRequest, reply *wxpay.CreateFavorStockReply) error {
	now := s.Now.UTC()
	st := &models.Stock{
		Kind: models.KindFavor, StockID: reply.StockID, Name: req.StockName,
		State: models.StateUnactivated, WxState: string(wxpay.FavorStockUnactivated),
		WxCreateTime: reply.CreateTime, AvailableBeginTime: req.AvailableBeginTime, AvailableEndTime: req.AvailableEndTime,
		MaxCoupons: ptr(req.StockUseRule.MaxCoupons), MaxCouponsPerUser: ptr(req.StockUseRule.MaxCouponsPerUser),
		CreatedBy: op.UserID, RefreshedAt: &now,
	}
	err := tx.Where("kind = ? AND product_coupon_id = '' AND stock_id = ?", models.KindFavor, reply.StockID).Take(st).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		err = tx.Create(st).Error
	}
	if err != nil {
		return err
	}
	op.StockRef = &st.ID
	return nil
}

// recordedCreate is the Call of a recorded stock creation.
func (s *Service) recordedCreate(_ context.Context, op *models.WxOperation) (wxops.Call, error) {
	req, err := wxops.Body[wxpay.CreateFavorStockRequest](op)
	if err != nil {
		return wxops.Call{}, err
	}
	return s.createCall(op.RequestNo, req.StockName), nil
}

// ResumeCreate resends the stock creations left pending (a crash, or an
// unknown outcome) last touched more than olderThan ago; it returns how many
// created their stock.
func (s *Service) ResumeCreate(ctx context.Context, olderThan time.Duration) (int, error) {
	return s.ops().Resume(ctx, OpCreateFavorStock, s.Now.UTC(), olderThan, s.recordedCreate)
}
