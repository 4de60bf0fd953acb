package app

import (
	"fmt"

	"voucherconsole/internal/approvals"
	"voucherconsole/internal/config"
)

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
		Alerts: c.Alerts, Logger: c.Logger.With("component", "approvals")}
	return nil
}
