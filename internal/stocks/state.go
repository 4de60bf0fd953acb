// Package stocks keeps the console's record of voucher stocks: registering
// existing ones, creating voucher stocks on WeChat Pay, reading them back,
// and finding them. Every action is audited in the transaction that records it.
package stocks

import (
	"strings"

	"voucherconsole/internal/models"
)

// NormalizeState maps a stock's state, as its own API spells it, to the
// console's states.
func NormalizeState(kind models.StockKind, wx string) models.StockState {
	switch kind {
	case models.KindFavor:
		switch wx {
		case "unactivated":
			return models.StateUnactivated
		case "audit":
			return models.StateAuditing
		case "running":
			return models.StateSending
		case "stoped", "stopped":
			return models.StateStopped
		case "paused":
			return models.StatePaused
		}
	case models.KindBusifavor:
		switch wx {
		case "UNAUDIT":
			return models.StateAuditing
		case "RUNNING":
			return models.StateSending
		case "STOPED", "STOPPED":
			return models.StateStopped
		case "PAUSED":
			return models.StatePaused
		}
	case models.KindProductCoupon:
		s := models.StockState(strings.ToUpper(wx))
		for _, known := range models.StockStates {
			if s == known {
				return s
			}
		}
	}
	return models.StateUnknown
}

// CanDeactivate reports whether a stock may be deactivated: only SENDING or
// PAUSED product-coupon stocks (document 001).
func CanDeactivate(st *models.Stock) bool {
	return st.Kind == models.KindProductCoupon && (st.State == models.StateSending || st.State == models.StatePaused)
}

// UploadsCodes reports whether a stock's codes are uploaded by the brand:
// product-coupon code mode UPLOAD, merchant-stock code mode MERCHANT_UPLOAD.
func UploadsCodes(st *models.Stock) bool {
	switch st.Kind {
	case models.KindProductCoupon:
		return st.CouponCodeMode == "UPLOAD"
	case models.KindBusifavor:
		return st.CouponCodeMode == "MERCHANT_UPLOAD"
	}
	return false
}

// CanUpload reports whether codes may be uploaded to a stock now: its codes
// are uploaded by the brand and it is neither deactivated nor stopped.
func CanUpload(st *models.Stock) bool {
	return UploadsCodes(st) && st.State != models.StateDeactivated && st.State != models.StateStopped
}

// LowInventory reports whether a stock's available codes are below threshold.
// Only a stock that sends or may send again (SENDING, PAUSED) can be low: a
// stopped, deactivated or auditing stock's 0 available codes are no warning.
func LowInventory(st *models.Stock, threshold int64) bool {
	return UploadsCodes(st) && (st.State == models.StateSending || st.State == models.StatePaused) &&
		st.AvailableCount != nil && *st.AvailableCount < threshold
}
