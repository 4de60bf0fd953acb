package e2e

import (
	"fmt"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"voucherconsole/internal/models"
	"voucherconsole/internal/testdb"
)

// latencies runs requests from clients goroutines, each request built by
// next, and returns the sorted latencies.
func latencies(t testing.TB, hc *http.Client, clients, total int, next func(i int) string) []time.Duration {
	var (
		mu  sync.Mutex
		out = make([]time.Duration, 0, total)
		wg  sync.WaitGroup
	)
	work := make(chan int)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				start := time.Now()
				resp, err := hc.Get(next(i))
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				d := time.Since(start)
				if resp.StatusCode != 200 {
					t.Errorf("%s: %d", next(i), resp.StatusCode)
				}
				mu.Lock()
				out = append(out, d)
				mu.Unlock()
			}
		}()
	}
	for i := range total {
		work <- i
	}
	close(work)
	wg.Wait()
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return ds[int(float64(len(ds)-1)*p)]
}

// BenchmarkStockPages100k measures the stock list, a search by ID prefix, a
// search by name and a stock page with 100,000 stocks in PostgreSQL, from 16
// concurrent clients over loopback, and reports p50 and p99 per page kind
// (goal: p99 ≤ 50 ms).
//
//	go test -run '^$' -bench StockPages100k -benchtime 1x ./internal/e2e/
func BenchmarkStockPages100k(b *testing.B) {
	url := testdb.PostgresURL(b)
	c := startConsoleTB(b, map[string]string{"CONSOLE_DATABASE_URL": url})
	err := c.DB.Gorm.Exec(`INSERT INTO stocks (kind, stock_id, product_coupon_id, name, state, wx_state, coupon_code_mode,
		total_count, available_count, created_at, updated_at)
		SELECT 'product_coupon', (2000000000000 + g)::text, (3000000 + g / 10)::text, '批次 ' || g, 
		       (ARRAY['SENDING','PAUSED','STOPPED','AUDITING','DEACTIVATED'])[1 + g % 5], 'SENDING', 'UPLOAD', g % 5000, g % 3000, now(), now()
		FROM generate_series(1, 100000) AS g`).Error
	if err != nil {
		b.Fatal(err)
	}
	c.DB.Gorm.Exec("ANALYZE stocks")
	hc := c.userClientTB(b, "bench", models.RoleSupport)
	var mid int64
	c.DB.Gorm.Raw("SELECT id FROM stocks WHERE stock_id = '2000000050000'").Scan(&mid)
	cases := []struct {
		name string
		url  func(i int) string
	}{
		{"list", func(i int) string { return c.URL + "/stocks" }},
		{"list_state_filter", func(i int) string { return c.URL + "/stocks?state=PAUSED" }},
		{"search_id_prefix", func(i int) string { return c.URL + fmt.Sprintf("/stocks?q=20000000%d", 10+i%89) }},
		{"search_name", func(i int) string { return c.URL + fmt.Sprintf("/stocks?q=%%E6%%89%%B9%%E6%%AC%%A1+%d", 1000+i) }},
		{"stock_page", func(i int) string { return c.URL + fmt.Sprintf("/stocks/%d", mid+int64(i%1000)) }},
	}
	b.ResetTimer()
	for range b.N {
		for _, tc := range cases {
			ds := latencies(b, hc, 16, 800, tc.url)
			b.ReportMetric(float64(pct(ds, 0.50).Microseconds())/1000, tc.name+"_p50_ms")
			b.ReportMetric(float64(pct(ds, 0.99).Microseconds())/1000, tc.name+"_p99_ms")
		}
	}
}
