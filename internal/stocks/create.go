package stocks

import (
	"context"
	"encoding/json"
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
}

// ErrPendingElsewhere means the form's operation is being sent by another
// request right now.
var ErrPendingElsewhere = errors.New("the same form is being submitted")

// CreateFavor creates a voucher stock. The request number is generated here
// and recorded with the exact body before the call; a re-post of the same
// form (same formToken) or a retry resends that number and body, so WeChat
// Pay creates one stock however often the form is posted. The returned stock
// is the console's record of it.
func (s *Service) CreateFavor(ctx context.Context, ac audit.Context, wx Creator, ops *wxops.Store, formToken string, req wxpay.CreateFavorStockRequest) (*models.Stock, error) {
	req.OutRequestNo = NewCreateRequestNo(req, s.Now.UTC())
	return s.CreateFavorRequest(ctx, ac, wx, ops, formToken, req)
}

// NewCreateRequestNo is a new request number for document 003's req.
func NewCreateRequestNo(req wxpay.CreateFavorStockRequest, now time.Time) string {
	return wxops.NewRequestNo(req.BelongMerchant, now, 32)
}

// CreateFavorRequest creates a voucher stock from req, whose request number
// was fixed beforehand (an approved request's), as CreateFavor does.
func (s *Service) CreateFavorRequest(ctx context.Context, ac audit.Context, wx Creator, ops *wxops.Store, formToken string, req wxpay.CreateFavorStockRequest) (*models.Stock, error) {
	op, existing, err := ops.Begin(ctx, ac, wxops.Intent{
		Kind: OpCreateFavorStock, RequestNo: req.OutRequestNo, FormToken: formToken, UserID: ac.ActorID,
		Body: req, Action: ActionCreate, TargetType: audit.TargetStock, TargetID: "new:" + req.OutRequestNo,
		Detail: map[string]any{"stock_name": req.StockName},
	})
	if err != nil {
		return nil, err
	}
	if existing {
		switch op.Status {
		case models.OpSucceeded:
			if op.StockRef != nil {
				return s.Get(ctx, *op.StockRef)
			}
		case models.OpPending:
			// Resend exactly what was recorded, not the form as posted now.
			if err := json.Unmarshal([]byte(op.Body), &req); err != nil {
				return nil, fmt.Errorf("recorded body: %w", err)
			}
		}
	}
	return s.sendCreate(ctx, ac, wx, ops, op, req)
}

func (s *Service) sendCreate(ctx context.Context, ac audit.Context, wx Creator, ops *wxops.Store, op *models.WxOperation, req wxpay.CreateFavorStockRequest) (*models.Stock, error) {
	target := "new:" + req.OutRequestNo
	reply, err := wx.CreateFavorStock(ctx, req)
	if err != nil {
		if ferr := ops.Fail(ctx, ac, op, ActionCreate, audit.TargetStock, target, err, map[string]any{"stock_name": req.StockName}); ferr != nil {
			return nil, errors.Join(err, ferr)
		}
		return nil, err
	}
	now := s.Now.UTC()
	st := &models.Stock{
		Kind: models.KindFavor, StockID: reply.StockID, Name: req.StockName,
		State: models.StateUnactivated, WxState: string(wxpay.FavorStockUnactivated),
		WxCreateTime: reply.CreateTime, AvailableBeginTime: req.AvailableBeginTime, AvailableEndTime: req.AvailableEndTime,
		MaxCoupons: ptr(req.StockUseRule.MaxCoupons), MaxCouponsPerUser: ptr(req.StockUseRule.MaxCouponsPerUser),
		CreatedBy: op.UserID, RefreshedAt: &now,
	}
	err = ops.Succeed(ctx, ac, op, ActionCreate, audit.TargetStock, "", reply, reply.Meta.RequestID,
		map[string]any{"stock_id": reply.StockID, "create_time": reply.CreateTime, "stock_name": req.StockName},
		func(tx *gorm.DB) error {
			// The same stock may already be recorded if an earlier attempt
			// succeeded but its outcome was lost.
			err := tx.Where("kind = ? AND product_coupon_id = '' AND stock_id = ?", models.KindFavor, reply.StockID).Take(st).Error
			if errors.Is(err, gorm.ErrRecordNotFound) {
				err = tx.Create(st).Error
			}
			if err != nil {
				return err
			}
			op.StockRef = &st.ID
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("record created stock %s: %w", reply.StockID, err)
	}
	return st, nil
}
