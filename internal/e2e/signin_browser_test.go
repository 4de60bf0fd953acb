package e2e

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"voucherconsole/internal/browsertest"
	"voucherconsole/internal/models"
)

// A person signs in, sees the home page with their name, and signs out.
func TestBrowserSignInOut(t *testing.T) {
	c := startConsole(t, nil)
	c.addUser(t, "olivia", "a-long-test-password", models.RoleOperator)
	ctx := browsertest.New(t, time.Minute)

	err := chromedp.Do(ctx,
		chromedp.Navigate(c.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), "olivia"),
		chromedp.SendKeys(chromedp.CSS("#password"), "a-long-test-password"),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS("#current-user")),
	)
	if err != nil {
		t.Fatal(err)
	}
	user, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#current-user")))
	if err != nil || user != "olivia" {
		t.Fatalf("signed-in user shown as %q (%v)", user, err)
	}
	heading, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("h1")))
	if err != nil || !has(heading, "olivia") {
		t.Fatalf("home heading %q (%v)", heading, err)
	}
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS("#sign-out")),
		chromedp.WaitVisible(chromedp.CSS("#username")),
	); err != nil {
		t.Fatal(err)
	}
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil || !has(loc, "/login") {
		t.Fatalf("after sign-out at %q (%v)", loc, err)
	}
}
