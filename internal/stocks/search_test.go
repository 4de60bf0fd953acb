package stocks_test

import (
	"context"
	"os"
	"testing"
	"time"

	"voucherconsole/internal/database"
	"voucherconsole/internal/models"
	"voucherconsole/internal/stocks"
	"voucherconsole/internal/testdb"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testdb.CleanupTemplate()
	os.Exit(code)
}

// The stock search forgives how a term was typed: spaces inside an ID,
// full-width digits and letters, and case.
func TestSearchForgivesTyping(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		now := time.Now().UTC()
		for _, st := range []models.Stock{
			{Kind: models.KindProductCoupon, StockID: "1000000001001", ProductCouponID: "1000000001", Name: "Spring Latte 春季拿铁"},
			{Kind: models.KindBusifavor, StockID: "1212345678", Name: "Weekend Offer"},
		} {
			st.CreatedAt, st.UpdatedAt = now, now
			if err := db.Gorm.Create(&st).Error; err != nil {
				t.Fatal(err)
			}
		}
		svc := &stocks.Service{DB: db.Gorm, Search: db.Search}
		for _, tc := range []struct {
			q    string
			want string
		}{
			{"10000 00001 001", "1000000001001"},
			{"１００００００００１００１", "1000000001001"},
			{"  spring   latte ", "1000000001001"},
			{"SPRING", "1000000001001"},
			{"ｗｅｅｋｅｎｄ", "1212345678"},
			{"1212 345", "1212345678"},
		} {
			got, _, err := svc.List(context.Background(), stocks.ListQuery{Q: tc.q})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].StockID != tc.want {
				t.Errorf("search %q: %d stocks %v, want %s", tc.q, len(got), got, tc.want)
			}
		}
	})
}
