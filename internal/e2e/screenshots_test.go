package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"voucherconsole/internal/browsertest"
	"voucherconsole/internal/models"
	"voucherconsole/internal/wxpay/sandbox"
)

// TestScreenshots saves full-page screenshots of the main pages at a laptop
// width (1366 px) and a phone width (390 px) into $CONSOLE_SCREENSHOT_DIR,
// for people to look at; without the variable it does nothing.
func TestScreenshots(t *testing.T) {
	dir := os.Getenv("CONSOLE_SCREENSHOT_DIR")
	if dir == "" {
		t.Skip("CONSOLE_SCREENSHOT_DIR not set")
	}
	c := startConsole(t, nil)
	const pw = "a-long-test-password"
	c.addUser(t, "mia", pw, models.RoleManager)
	id := stockRef(t, c, sandbox.SeedStockSending)
	bctx := browsertest.New(t, 3*time.Minute)
	signInBrowser(t, bctx, c.URL, "mia", pw)
	pages := map[string]string{"overview": "/", "stocks": "/stocks", "stock": "/stocks/" + id,
		"upload": "/stocks/" + id + "/uploads/new", "audit": "/audit"}
	for _, w := range []int64{1366, 390} {
		for name, path := range pages {
			if err := chromedp.Do(bctx,
				chromedp.EmulateViewport(w, 900),
				chromedp.Navigate(c.URL+path),
				chromedp.WaitVisible(chromedp.CSS("footer")),
			); err != nil {
				t.Fatal(err)
			}
			png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100)) // quality 100: PNG
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, name+"-"+strconv.FormatInt(w, 10)+".png"), png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
