package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"voucherconsole/internal/models"
	"voucherconsole/internal/testdb"
	"voucherconsole/internal/wxops"
	"voucherconsole/internal/wxpay"
	"voucherconsole/internal/wxpay/sandbox"
)

// BenchmarkPresendToken measures, interleaved in one run against the same
// in-process sandbox, (a) issuing a pre-send token through the console — the
// form post, answered with the rendered token page — and (b) the bare client
// call that obtains a token. It reports both per operation and their ratio
// (goal: console ≤ 1.5 × client).
//
// It runs on the embedded SQLite database and on PostgreSQL.
//
//	go test -run '^$' -bench PresendToken -benchtime 300x ./internal/e2e/
func BenchmarkPresendToken(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchmarkPresendToken(b, startClockConsole(b)) })
	b.Run("postgres", func(b *testing.B) { benchmarkPresendToken(b, startClockConsoleOn(b, testdb.PostgresURL(b))) })
	// The same with the sandbox answering after 30 ms, nearer a real
	// WeChat Pay round trip than a loopback call: the console's fixed cost
	// (recording intent and outcome) then weighs as it would in production.
	b.Run("postgres_wx_30ms", func(b *testing.B) {
		c := startClockConsoleOn(b, testdb.PostgresURL(b))
		if err := c.Sandbox.SetFaults(sandbox.Faults{Latency: 30 * time.Millisecond}); err != nil {
			b.Fatal(err)
		}
		benchmarkPresendToken(b, c)
	})
}

func benchmarkPresendToken(b *testing.B, c *clockConsole) {
	hc := c.userClientTB(b, "olivia", models.RoleOperator)
	ctx := context.Background()
	post := func(form url.Values) {
		req, _ := http.NewRequest("POST", c.URL+"/presend", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), `id="presend-token"`) {
			b.Fatalf("token page: %d", resp.StatusCode)
		}
	}
	bare := func(openid string) {
		reply, err := c.WX.PreSendCouponBundle(ctx, openid, wxpay.PreSendCouponBundleRequest{
			ProductCouponID: sandbox.SeedBundleCoupon, StockBundleID: sandbox.SeedBundleMemberDay, AppID: sandbox.DemoAppID,
			SendRequestNo: wxops.NewRequestNo("BENCH", time.Now(), 32), Attach: "会员日门店活动",
		})
		if err != nil || reply.Token == "" {
			b.Fatalf("client: %v", err)
		}
	}
	var viaConsole, viaClient time.Duration
	n := 0
	for i := 0; b.Loop(); i++ {
		// The bundle's large stock sends 2,000 a day: move to the next day
		// well before (both paths spend from it).
		if i > 0 && i%500 == 0 {
			b.StopTimer()
			c.advance(b, 24*time.Hour)
			b.StartTimer()
		}
		form := url.Values{
			"product_coupon_id": {sandbox.SeedBundleCoupon}, "stock_bundle_id": {sandbox.SeedBundleMemberDay}, "appid": {sandbox.DemoAppID},
			"openid": {fmt.Sprintf("oBenchConsole%08dXyZ", i)}, "attach": {"会员日门店活动"}, "form_token": {fmt.Sprintf("bench-form-%08d", i)},
		}
		openid := fmt.Sprintf("oBenchClient%08dXyZq", i)
		// Alternate which goes first, so neither always meets a warm or a
		// cold moment.
		if i%2 == 0 {
			t0 := time.Now()
			bare(openid)
			t1 := time.Now()
			post(form)
			viaClient += t1.Sub(t0)
			viaConsole += time.Since(t1)
		} else {
			t0 := time.Now()
			post(form)
			t1 := time.Now()
			bare(openid)
			viaConsole += t1.Sub(t0)
			viaClient += time.Since(t1)
		}
		n++
	}
	if n == 0 {
		return
	}
	consoleNs := float64(viaConsole.Nanoseconds()) / float64(n)
	clientNs := float64(viaClient.Nanoseconds()) / float64(n)
	b.ReportMetric(consoleNs/1e6, "console-ms/token")
	b.ReportMetric(clientNs/1e6, "client-ms/token")
	b.ReportMetric(consoleNs/clientNs, "ratio")
}
