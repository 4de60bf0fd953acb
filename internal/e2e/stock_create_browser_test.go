package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"voucherconsole/internal/browsertest"
	"voucherconsole/internal/models"
)

// An operator creates a voucher stock through the form — one rejected submit
// first — finds it in the list and opens its page.
func TestBrowserCreateVoucherStock(t *testing.T) {
	c := startConsole(t, nil)
	c.addUser(t, "olivia", "a-long-test-password", models.RoleOperator)
	ctx := browsertest.New(t, 2*time.Minute)
	set := func(id, v string) chromedp.Action[chromedp.Void] { return chromedp.SetValue(chromedp.CSS("#"+id), v) }
	err := chromedp.Do(ctx,
		chromedp.Navigate(c.URL+"/login"),
		chromedp.SendKeys(chromedp.CSS("#username"), "olivia"),
		chromedp.SendKeys(chromedp.CSS("#password"), "a-long-test-password"),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS("#current-user")),
		chromedp.Navigate(c.URL+"/stocks/new"),
		chromedp.WaitVisible(chromedp.CSS("#stock_name")),
		set("stock_name", "bad_name"),
		set("max_coupons", "100"),
		set("max_amount", "1000"),
		set("coupon_amount", "10"),
		set("transaction_minimum", "30"),
		set("available_merchants", "1230000109"),
		set("description", "满30减10"),
		chromedp.Submit(chromedp.CSS("#stock_name")),
		chromedp.WaitVisible(chromedp.CSS("#stock_name-error")),
	)
	if err != nil {
		t.Fatal(err)
	}
	kept, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS("#max_amount")))
	if err != nil || kept != "1000" {
		t.Fatalf("typed value not kept after the rejected submit: %q %v", kept, err)
	}
	if err := chromedp.Do(ctx,
		set("stock_name", "浏览器满减券"),
		chromedp.Submit(chromedp.CSS("#stock_name")),
		chromedp.WaitVisible(chromedp.CSS("#stock-name")),
	); err != nil {
		t.Fatal(err)
	}
	name, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#stock-name")))
	if name != "浏览器满减券" {
		t.Fatalf("stock page shows %q", name)
	}
	if err := chromedp.Do(ctx,
		chromedp.Navigate(c.URL+"/stocks"),
		chromedp.SetValue(chromedp.CSS("#q"), "浏览器"),
		chromedp.Submit(chromedp.CSS("#q")),
		chromedp.WaitVisible(chromedp.CSS("#stock-list")),
		chromedp.Click(chromedp.Search(`//a[contains(text(), "浏览器满减券")]`)),
		chromedp.WaitVisible(chromedp.CSS("#stock-state")),
	); err != nil {
		t.Fatal(err)
	}
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	if !strings.Contains(loc, "/stocks/") {
		t.Fatalf("ended at %s", loc)
	}
}

// The create form shows the budget WeChat Pay requires (face value ×
// count) as the operator types, and says when the budget entered differs.
func TestBrowserComputedBudget(t *testing.T) {
	c := startConsole(t, nil)
	c.addUser(t, "olivia", "a-long-test-password", models.RoleOperator)
	ctx := browsertest.New(t, 2*time.Minute)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(c.URL+"/login"),
		chromedp.SendKeys(chromedp.CSS("#username"), "olivia"),
		chromedp.SendKeys(chromedp.CSS("#password"), "a-long-test-password"),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS("#current-user")),
		chromedp.Navigate(c.URL+"/stocks/new"),
		chromedp.WaitVisible(chromedp.CSS("#max_coupons")),
		chromedp.SendKeys(chromedp.CSS("#max_coupons"), "150"),
		chromedp.SendKeys(chromedp.CSS("#coupon_amount"), "2.5"),
		chromedp.WaitVisible(chromedp.CSS("#computed-budget")),
	); err != nil {
		t.Fatal(err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#computed-budget")))
	// The mismatch note is in the browser's language.
	mismatch := func(s string) bool { return strings.Contains(s, "不一致") || strings.Contains(s, "differs") }
	if err != nil || !strings.Contains(text, "375.00") || mismatch(text) {
		t.Fatalf("computed budget %q %v", text, err)
	}
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#max_amount"), "300")); err != nil {
		t.Fatal(err)
	}
	text, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#computed-budget")))
	if err != nil || !strings.Contains(text, "375.00") || !mismatch(text) {
		t.Fatalf("computed budget with a different budget entered %q %v", text, err)
	}
}
