package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"voucherconsole/internal/browsertest"
	"voucherconsole/internal/models"
	"voucherconsole/internal/wxpay/sandbox"
)

// An operator gets a pre-send token in the browser: the token with a copy
// button that copies it, a countdown that runs, and — once the five minutes
// are over — the page says the token has expired, both live (the script) and
// on the next load (the server).
func TestBrowserPresend(t *testing.T) {
	c := startClockConsole(t)
	c.addUser(t, "olivia", "a-long-test-password", models.RoleOperator)
	ctx := browsertest.New(t, 2*time.Minute)
	browserSignIn(t, ctx, c.URL, "olivia")

	err := chromedp.Do(ctx,
		chromedp.Navigate(c.URL+"/presend"),
		chromedp.WaitVisible(chromedp.CSS("#presend-form")),
		chromedp.SetValue(chromedp.CSS("#stock_bundle_id"), sandbox.SeedBundleMemberDay),
		chromedp.SendKeys(chromedp.CSS("#openid"), e2eOpenID(7)),
		chromedp.SendKeys(chromedp.CSS("#attach"), "浏览器测试"),
		chromedp.Click(chromedp.CSS("#presend-submit")),
		chromedp.WaitVisible(chromedp.CSS("#copy-token")), // shown by the script
	)
	if err != nil {
		t.Fatal(err)
	}
	token, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS("#presend-token")))
	if err != nil || token == "" {
		t.Fatalf("token %q (%v)", token, err)
	}
	if info, ok := c.Sandbox.Token(token); !ok || info.OpenID != e2eOpenID(7) {
		t.Fatalf("the token shown is not the sandbox's: %+v", info)
	}
	expiresAt, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#presend-expires-at")))
	if expiresAt == "" {
		t.Fatal("no expiry time shown")
	}

	// The countdown runs.
	first, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#presend-countdown")))
	if err := chromedp.Do(ctx, chromedp.Sleep(2200*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	second, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#presend-countdown")))
	if !strings.HasPrefix(first, "4:5") && first != "5:00" || first == second || !strings.HasPrefix(second, "4:5") {
		t.Fatalf("countdown %q then %q", first, second)
	}

	// Copy: with clipboard access granted the token lands on the clipboard
	// and the button says so.
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := chromedp.CallBrowser(ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: name}, Setting: browser.PermissionSettingGranted, Origin: c.URL,
		}); err != nil {
			t.Logf("grant %s: %v", name, err)
		}
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#copy-token"))); err != nil {
		t.Fatal(err)
	}
	label, err := chromedp.Run(ctx, chromedp.Poll[string](`(() => { const b = document.getElementById("copy-token"); return b.dataset.copied ? b.textContent : null; })()`,
		chromedp.WithPollingTimeout(5*time.Second)))
	if err != nil || (label != "已复制" && label != "Copied") {
		t.Fatalf("copy button label %q (%v)", label, err)
	}
	clip, err := chromedp.Run(ctx, chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Logf("reading the clipboard back is not possible here (%v); the button reported success", err)
	} else if clip != token {
		t.Fatalf("clipboard holds %q, want the token", clip)
	}

	// Three seconds before the end: the script counts down to zero and says
	// the token expired.
	c.advance(t, 5*time.Minute-3*time.Second)
	err = chromedp.Do(ctx,
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS("#copy-token")),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := chromedp.Do(waitCtx, chromedp.WaitVisible(chromedp.CSS("#presend-expired"))); err != nil {
		t.Fatalf("the page did not say the token expired: %v", err)
	}
	disabled, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("copy-token").disabled`))
	countdown, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#presend-expired")))
	if !disabled || !(has(countdown, "过期") || has(countdown, "expired")) {
		t.Fatalf("after the countdown: copy disabled %v, text %q", disabled, countdown)
	}

	// A new load says so from the server, without the token.
	c.advance(t, 5*time.Second)
	if err := chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#presend-expired"))); err != nil {
		t.Fatal(err)
	}
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#presend-token, #copy-token").length`)); n != 0 {
		t.Fatal("an expired token is still offered")
	}
}
