package app

import (
	"context"
	"fmt"
	"log/slog"

	"voucherconsole/internal/alerts"
	"voucherconsole/internal/approvals"
	"voucherconsole/internal/audit"
	"voucherconsole/internal/config"
	"voucherconsole/internal/database"
	"voucherconsole/internal/deactivate"
	"voucherconsole/internal/models"
	"voucherconsole/internal/stocks"
	"voucherconsole/internal/wxpay"
)

// stockCreator creates an approved voucher stock with the console's
// WeChat Pay client and recorded operations.
type stockCreator struct{ stocks *stocks.Service }

func (sc stockCreator) CreateFavorRequest(ctx context.Context, ac audit.Context, formToken string, req wxpay.CreateFavorStockRequest) (*models.Stock, error) {
	res, err := sc.stocks.CreateFavorRequest(ctx, ac, formToken, req)
	return res.Stock, err
}

// newApprovals builds the maker–checker service: its starting policy is
// CONSOLE_APPROVALS (refused at start-up when it does not parse), and an
// approved deactivation is sent by the deactivation service, through the
// recorded-call path.
func newApprovals(cfg config.Config, db *database.DB, st *stocks.Service, d *deactivate.Service, a *alerts.Service, logger *slog.Logger) (*approvals.Service, error) {
	p, err := approvals.ParsePolicy(cfg.Approvals)
	if err != nil {
		return nil, fmt.Errorf("CONSOLE_APPROVALS: %w", err)
	}
	return &approvals.Service{DB: db.Gorm, TTL: cfg.ApprovalTTL, Default: p, Deactivate: d,
		Create: stockCreator{st}, Alerts: a, Logger: logger.With("component", "approvals")}, nil
}
