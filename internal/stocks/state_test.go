package stocks

import (
	"testing"

	"voucherconsole/internal/models"
)

// A red "0 available" belongs only to stocks that send or may send again.
func TestLowInventoryOnlyWhileSending(t *testing.T) {
	zero, plenty := int64(0), int64(5000)
	for _, tc := range []struct {
		state     models.StockState
		available *int64
		want      bool
	}{
		{models.StateSending, &zero, true},
		{models.StatePaused, &zero, true},
		{models.StateSending, &plenty, false},
		{models.StateSending, nil, false},
		{models.StateStopped, &zero, false},
		{models.StateDeactivated, &zero, false},
		{models.StateAuditing, &zero, false},
	} {
		st := &models.Stock{Kind: models.KindProductCoupon, CouponCodeMode: "UPLOAD", State: tc.state, AvailableCount: tc.available}
		if got := LowInventory(st, 1000); got != tc.want {
			t.Errorf("%s with %v available: low = %v, want %v", tc.state, tc.available, got, tc.want)
		}
	}
}
