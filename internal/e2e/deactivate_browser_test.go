package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"voucherconsole/internal/browsertest"
	"voucherconsole/internal/models"
	"voucherconsole/internal/wxpay/sandbox"
)

// browserSignIn signs a user in through the sign-in page.
func browserSignIn(t *testing.T, ctx context.Context, base, user string) {
	t.Helper()
	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), user),
		chromedp.SendKeys(chromedp.CSS("#password"), "a-long-test-password"),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS("#current-user")),
	)
	if err != nil {
		t.Fatal(err)
	}
}

// An operator deactivates a SENDING stock from its page: the
// explanation, the reason and the confirmation, then the stock as WeChat Pay
// returns it. A stock under review offers no action.
func TestBrowserDeactivate(t *testing.T) {
	c := startConsole(t, nil)
	c.addUser(t, "olivia", "a-long-test-password", models.RoleOperator)
	ctx := browsertest.New(t, 2*time.Minute)
	browserSignIn(t, ctx, c.URL, "olivia")

	reason := "门店调整，停止发放"
	err := chromedp.Do(ctx,
		chromedp.Navigate(c.URL+"/stocks/"+stockRef(t, c, sandbox.SeedStockSending)),
		chromedp.Click(chromedp.CSS("#deactivate-stock")),
		chromedp.WaitVisible(chromedp.CSS("#deactivate-explanation")),
		chromedp.SendKeys(chromedp.CSS("#deactivate_reason"), reason),
		chromedp.SendKeys(chromedp.CSS("#stock_id"), sandbox.SeedStockSending),
		chromedp.Click(chromedp.CSS("#deactivate-submit")),
		chromedp.WaitVisible(chromedp.CSS(".flash-success")),
	)
	if err != nil {
		t.Fatal(err)
	}
	state, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#stock-state")))
	if err != nil || (state != "已失效" && state != "Deactivated") { // the browser's language decides
		t.Fatalf("state shown %q (%v)", state, err)
	}
	facts, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#stock-facts")))
	if err != nil || !has(facts, reason) || !has(facts, "DEACTIVATED") {
		t.Fatalf("facts %q (%v)", facts, err)
	}
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#deactivate-form").length`)); n != 0 {
		t.Fatal("the form is still offered")
	}
	if got := sandboxState(t, c, sandbox.SeedStockSending); got != "DEACTIVATED" {
		t.Fatalf("sandbox state %s", got)
	}

	err = chromedp.Do(ctx,
		chromedp.Navigate(c.URL+"/stocks/"+stockRef(t, c, sandbox.SeedStockAuditing)+"/deactivate"),
		chromedp.WaitVisible(chromedp.CSS("#deactivate-refused")),
	)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#deactivate-form").length`)); n != 0 {
		t.Fatal("an AUDITING stock offers the form")
	}
}
