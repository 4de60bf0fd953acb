package app

import (
	"fmt"
	"log/slog"

	"voucherconsole/internal/alerts"
	"voucherconsole/internal/approvals"
	"voucherconsole/internal/config"
	"voucherconsole/internal/database"
	"voucherconsole/internal/deactivate"
)

// newApprovals builds the maker–checker service: its starting policy is
// CONSOLE_APPROVALS (refused at start-up when it does not parse), and an
// approved deactivation is sent by the deactivation service, through the
// recorded-call path.
func newApprovals(cfg config.Config, db *database.DB, d *deactivate.Service, a *alerts.Service, logger *slog.Logger) (*approvals.Service, error) {
	p, err := approvals.ParsePolicy(cfg.Approvals)
	if err != nil {
		return nil, fmt.Errorf("CONSOLE_APPROVALS: %w", err)
	}
	return &approvals.Service{DB: db.Gorm, TTL: cfg.ApprovalTTL, Default: p, Deactivate: d,
		Alerts: a, Logger: logger.With("component", "approvals")}, nil
}
