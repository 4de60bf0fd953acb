package e2e

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/browsertest"
	"voucherconsole/internal/models"
	"voucherconsole/internal/monitor"
	"voucherconsole/internal/wxpay/sandbox"
)

// Acceptance 1: each role's home page shows the overview its role needs,
// with figures that match the data the test made — stocks by state, a
// sending stock below its threshold with the time it runs out at its rate,
// a call whose outcome is unknown, the last failure with WeChat Pay's code —
// and the charts render (an SVG line per series, a table of the figures
// behind each).
func TestBrowserOverviewPerRole(t *testing.T) {
	c := startConsole(t, map[string]string{"CONSOLE_STOCK_SYNC_INTERVAL": "1h"})
	const pw = "a-long-test-password"
	for name, r := range map[string]models.Role{"olivia": models.RoleOperator, "mia": models.RoleManager, "sue": models.RoleSupport, "ada": models.RoleAdmin} {
		c.addUser(t, name, pw, r)
	}
	ctx := context.Background()
	now := time.Now().UTC()

	// The demo stock that sends from uploaded codes: threshold 5 (it has
	// 2 available), 6 codes sent over the last 6 hours (one an hour: 2
	// codes last two hours), recorded as snapshots.
	var st models.Stock
	if err := c.DB.Gorm.Where("stock_id = ?", sandbox.SeedStockSending).Take(&st).Error; err != nil {
		t.Fatal(err)
	}
	five := int64(5)
	if err := c.Stocks.SetThreshold(ctx, audit.Context{Actor: "test"}, st.ID, &five); err != nil {
		t.Fatal(err)
	}
	sent := *st.SentCount
	for h := 6; h >= 1; h-- {
		s, a := sent-int64(h), int64(2+h)
		if err := c.DB.Gorm.Create(&monitor.Snapshot{StockRef: st.ID, TakenAt: now.Add(-time.Duration(h) * time.Hour), SentCount: &s, AvailableCount: &a}).Error; err != nil {
			t.Fatal(err)
		}
	}
	// A call whose outcome is unknown, and a failure with WeChat Pay's code.
	ref := st.ID
	op := models.WxOperation{Kind: "deactivate_stock", RequestNo: "OVERVIEW-PENDING-0001", StockRef: &ref, Body: "{}",
		Status: models.OpPending, CreatedAt: now.Add(-20 * time.Minute), UpdatedAt: now.Add(-20 * time.Minute)}
	if err := c.DB.Gorm.Create(&op).Error; err != nil {
		t.Fatal(err)
	}
	if _, err := audit.Append(ctx, c.DB.Gorm, now, audit.Record{Actor: "olivia", Action: "stock.deactivate", TargetType: audit.TargetStock,
		TargetID: strconv.FormatInt(st.ID, 10), Outcome: audit.Failure, WxErrorCode: "STOCK_STATE_INVALID"}); err != nil {
		t.Fatal(err)
	}
	var byState []struct {
		State string
		N     int
	}
	c.DB.Gorm.Model(&models.Stock{}).Select("state, COUNT(*) AS n").Group("state").Scan(&byState)
	total := 0
	for _, s := range byState {
		total += s.N
	}

	type seen struct {
		Total, Sending, Stopped string
		Low                     string
		Unknown, Failures       string
		Charts, Polylines, Rows int
		HasStates               bool
	}
	read := func(t *testing.T, bctx context.Context) seen {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.Evaluate[seen](`(() => {
			const txt = s => { const e = document.querySelector(s); return e ? e.innerText : ""; };
			return {
				total: txt("#stat-total .stat-value"), sending: txt("#stat-SENDING .stat-value"), stopped: txt("#stat-STOPPED .stat-value"),
				low: txt("#overview-low"), unknown: txt("#overview-unknown"), failures: txt("#overview-failures"),
				charts: document.querySelectorAll("figure.chart svg").length,
				polylines: document.querySelectorAll("figure.chart svg polyline[points]").length,
				rows: document.querySelectorAll("figure.chart table.chart-table tbody tr").length,
				hasStates: !!document.querySelector("#overview-states"),
			};
		})()`))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	count := func(state string) string {
		for _, s := range byState {
			if s.State == state {
				return strconv.Itoa(s.N)
			}
		}
		return "0"
	}

	for _, tc := range []struct {
		user              string
		stocks, acts      bool
		failureLinksAudit bool
	}{
		{"olivia", true, true, false},
		{"mia", true, true, true},
		{"sue", true, false, false},
		{"ada", false, true, false},
	} {
		t.Run(tc.user, func(t *testing.T) {
			bctx := browsertest.New(t, 2*time.Minute)
			signInBrowser(t, bctx, c.URL, tc.user, pw)
			if err := chromedp.Do(bctx, chromedp.Navigate(c.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#overview"))); err != nil {
				t.Fatal(err)
			}
			v := read(t, bctx)
			if tc.stocks {
				if v.Total != strconv.Itoa(total) || v.Sending != count("SENDING") || v.Stopped != count("STOPPED") {
					t.Errorf("stocks by state: %+v, want total %d, sending %s, stopped %s", v, total, count("SENDING"), count("STOPPED"))
				}
				if !has(v.Low, "春季拿铁兑换批次") || !strings.Contains(v.Low, "\t2\t5\t") || !(has(v.Low, "每小时 1 张") || has(v.Low, "1 an hour")) ||
					!(has(v.Low, "2 小时 0 分钟") || has(v.Low, "2 hours 0 minutes")) {
					t.Errorf("low stocks: %q", v.Low)
				}
				// The total and the stock with the snapshots, each an SVG
				// with two lines and a table of the points behind it.
				if v.Charts < 2 || v.Polylines != 2*v.Charts || v.Rows < 2*6 {
					t.Errorf("charts: %d SVGs, %d lines, %d table rows", v.Charts, v.Polylines, v.Rows)
				}
			} else if v.HasStates || v.Charts != 0 {
				t.Errorf("%s sees stock figures: %+v", tc.user, v)
			}
			if tc.acts {
				if !has(v.Unknown, "OVERVIEW-PENDING-0001") || !has(v.Failures, "STOCK_STATE_INVALID") {
					t.Errorf("unknown %q, failures %q", v.Unknown, v.Failures)
				}
			} else if v.Unknown != "" || v.Failures != "" {
				t.Errorf("%s sees calls and failures: %q %q", tc.user, v.Unknown, v.Failures)
			}
			link, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`!!document.querySelector("#overview-failures a[href^='/audit']")`))
			if err != nil || link != tc.failureLinksAudit {
				t.Errorf("failure links to the audit log: %v (%v)", link, err)
			}
		})
	}
}
