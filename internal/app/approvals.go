package app

import (
	"context"
	"fmt"

	"voucherconsole/internal/approvals"
	"voucherconsole/internal/audit"
	"voucherconsole/internal/config"
	"voucherconsole/internal/models"
	"voucherconsole/internal/wxpay"
)

// stockCreator creates an approved voucher stock with the console's
// WeChat Pay client and recorded operations.
type stockCreator struct{ c *Console }

func (sc stockCreator) CreateFavorRequest(ctx context.Context, ac audit.Context, formToken string, req wxpay.CreateFavorStockRequest) (*models.Stock, error) {
	res, err := sc.c.Stocks.CreateFavorRequest(ctx, ac, formToken, req)
	return res.Stock, err
}

// startApprovals builds the maker–checker service: its starting policy is
// CONSOLE_APPROVALS (refused at start-up when it does not parse), and an
// approved deactivation is sent by the deactivation service, through the
// recorded-call path.
func (c *Console) startApprovals(cfg config.Config) error {
	p, err := approvals.ParsePolicy(cfg.Approvals)
	if err != nil {
		return fmt.Errorf("CONSOLE_APPROVALS: %w", err)
	}
	c.Approvals = &approvals.Service{DB: c.DB.Gorm, TTL: cfg.ApprovalTTL, Default: p, Deactivate: c.Deactivate,
		Create: stockCreator{c}, Uploads: c.Uploads, Jobs: c.Jobs,
		Alerts: c.Alerts, Logger: c.Logger.With("component", "approvals")}
	return nil
}
