package e2e

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"voucherconsole/internal/browsertest"
	"voucherconsole/internal/models"
	"voucherconsole/internal/wxpay/sandbox"
)

func browserCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Acceptance 3: an operator enrols in two-factor sign-in (QR code and the
// secret as text, a first code, the recovery codes) and signs in again with
// the password and then a code; under CONSOLE_APPROVALS=deactivate the
// operator asks for a deactivation, which waits; a manager approves it and
// sees the stock deactivated.
func TestBrowserTwoFactorAndApproval(t *testing.T) {
	c := startConsole(t, map[string]string{"CONSOLE_APPROVALS": "deactivate"})
	clk := &testClock{}
	c.TwoFactor.Now = clk.Now
	c.addUser(t, "olivia", "a-long-test-password", models.RoleOperator)
	c.addUser(t, "mia", "a-long-test-password", models.RoleManager)
	ctx := browsertest.New(t, 3*time.Minute)

	// Enrol.
	signInBrowser(t, ctx, c.URL, "olivia", "a-long-test-password")
	err := chromedp.Do(ctx,
		chromedp.Navigate(c.URL+"/account"),
		chromedp.Click(chromedp.CSS("#account-two-factor")),
		chromedp.WaitVisible(chromedp.CSS("#two-factor-qr")),
	)
	if err != nil {
		t.Fatalf("enrolment page: %v", err)
	}
	secret, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#two-factor-secret")))
	qrLoaded, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector("#two-factor-qr").complete && document.querySelector("#two-factor-qr").naturalWidth > 0`))
	if err != nil || secret == "" || !qrLoaded {
		t.Fatalf("enrolment page: secret %q, QR shown %v (%v)", secret, qrLoaded, err)
	}
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#code"), browserCode(t, secret, clk.Now())),
		chromedp.Click(chromedp.CSS("#enrol-submit")),
		chromedp.WaitVisible(chromedp.CSS("#recovery-codes")),
	)
	codes, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#recovery-codes li").length`))
	if err != nil || codes != 10 {
		t.Fatalf("confirmation: %d recovery codes (%v)", codes, err)
	}
	signOutBrowser(t, ctx)

	// Sign in with the password, then a code of the next time step.
	clk.mu.Lock()
	clk.offset += 30 * time.Second
	clk.mu.Unlock()
	err = chromedp.Do(ctx,
		chromedp.Navigate(c.URL+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), "olivia"),
		chromedp.SendKeys(chromedp.CSS("#password"), "a-long-test-password"),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS("#second-step-form")),
	)
	if err != nil {
		t.Fatalf("password step: %v", err)
	}
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#current-user").length`)); n != 0 {
		t.Fatal("signed in before the code")
	}
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#code"), browserCode(t, secret, clk.Now())),
		chromedp.Click(chromedp.CSS("#code-submit")),
		chromedp.WaitVisible(chromedp.CSS("#current-user")),
	)
	if err != nil {
		t.Fatalf("code step: %v", err)
	}

	// Ask for a deactivation: nothing is sent, the request waits.
	id := stockRef(t, c, sandbox.SeedStockSending)
	err = chromedp.Do(ctx,
		chromedp.Navigate(c.URL+"/stocks/"+id+"/deactivate"),
		chromedp.WaitVisible(chromedp.CSS("#deactivate_reason")),
		chromedp.SendKeys(chromedp.CSS("#deactivate_reason"), "门店调整，停止发放"),
		chromedp.SendKeys(chromedp.CSS("#stock_id"), sandbox.SeedStockSending),
		chromedp.Click(chromedp.CSS("#deactivate-submit")),
		chromedp.WaitVisible(chromedp.CSS("#approval-request-no")),
	)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	requestNo, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#approval-request-no")))
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#approve-form").length`)); n != 0 {
		t.Fatal("the requester is offered the approval")
	}
	if len(sandboxRequests(c, sandbox.EndpointDeactivateStock)) != 0 || sandboxState(t, c, sandbox.SeedStockSending) != "SENDING" {
		t.Fatal("sent before approval")
	}
	signOutBrowser(t, ctx)

	// A manager approves it from the list and sees the stock deactivated.
	signInBrowser(t, ctx, c.URL, "mia", "a-long-test-password")
	err = chromedp.Do(ctx,
		chromedp.Navigate(c.URL+"/approvals"),
		chromedp.WaitVisible(chromedp.CSS("#approvals")),
		chromedp.Click(chromedp.CSS("#approvals tbody a")),
		chromedp.WaitVisible(chromedp.CSS("#approve-submit")),
		chromedp.Click(chromedp.CSS("#approve-submit")),
		chromedp.WaitVisible(chromedp.CSS(".flash-success")),
	)
	if err != nil {
		t.Fatalf("approve: %v", err)
	}
	status, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#approval-status")))
	state, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#stock-state")))
	if (status != "已批准并发送" && status != "Approved and sent") || (state != "已失效" && state != "Deactivated") {
		t.Fatalf("after approval: status %q, stock %q", status, state)
	}
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS("#approval-stock-link")),
		chromedp.WaitVisible(chromedp.CSS("#stock-state")),
	)
	if err != nil {
		t.Fatal(err)
	}
	state, _ = chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#stock-state")))
	if state != "已失效" && state != "Deactivated" {
		t.Fatalf("stock page state %q", state)
	}
	if sent := sandboxRequests(c, sandbox.EndpointDeactivateStock); len(sent) != 1 || sent[requestNo] != 1 || sandboxState(t, c, sandbox.SeedStockSending) != "DEACTIVATED" {
		t.Fatalf("sandbox saw %v, want %s once", sent, requestNo)
	}
}
