package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/browsertest"
	"voucherconsole/internal/models"
	"voucherconsole/internal/wxpay/sandbox"
)

// waitURL waits until the tab's location contains want (after a form
// submit, which does not wait for the next page by itself).
func waitURL(t *testing.T, ctx context.Context, want string) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		loc, err := chromedp.Run(ctx, chromedp.Location())
		if err == nil && strings.Contains(loc, want) {
			if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.readyState === "complete"`)); err == nil {
				return loc
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("location %q (err %v) never contained %q", loc, err, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func signInBrowser(t *testing.T, ctx context.Context, base, user, password string) {
	t.Helper()
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), user),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS("#current-user")),
	); err != nil {
		t.Fatalf("sign in as %s: %v", user, err)
	}
}

func signOutBrowser(t *testing.T, ctx context.Context) {
	t.Helper()
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS("#sign-out")),
		chromedp.WaitVisible(chromedp.CSS("#username")),
	); err != nil {
		t.Fatalf("sign out: %v", err)
	}
}

// Acceptance 6: a manager filters the log to one stock's entries, opens one
// entry and exports the CSV; an admin adds a user, who then signs in with the
// one-time password and must change it.
func TestBrowserAuditAndUsers(t *testing.T) {
	c := startConsole(t, nil)
	const pw = "a-long-test-password"
	c.addUser(t, "mia", pw, models.RoleManager)
	c.addUser(t, "ada", pw, models.RoleAdmin)
	ctx := context.Background()
	// Entries about a stock the console knows, so its link leads somewhere;
	// after its registration as demo data (its third entry).
	sid := stockRef(t, c, sandbox.SeedStockSending)
	at := time.Now()
	for i, r := range []audit.Record{
		{Actor: "olivia", ActorRoles: []string{"operator"}, Action: "stock.create", TargetType: audit.TargetStock, TargetID: sid, Outcome: audit.Pending, WxRequestNo: "REQ-42-CREATE"},
		{Actor: "olivia", ActorRoles: []string{"operator"}, Action: "stock.create", TargetType: audit.TargetStock, TargetID: sid, Outcome: audit.Success, WxRequestNo: "REQ-42-CREATE"},
		{Actor: "olivia", ActorRoles: []string{"operator"}, Action: "stock.create", TargetType: audit.TargetStock, TargetID: "43", Outcome: audit.Failure, WxRequestNo: "REQ-43", WxErrorCode: "PARAM_ERROR"},
	} {
		if _, err := audit.Append(ctx, c.DB.Gorm, at.Add(time.Duration(i)*time.Second), r); err != nil {
			t.Fatal(err)
		}
	}
	bctx := browsertest.New(t, 2*time.Minute)

	// The manager filters the log to that stock.
	signInBrowser(t, bctx, c.URL, "mia", pw)
	if err := chromedp.Do(bctx,
		chromedp.Navigate(c.URL+"/audit"),
		chromedp.WaitVisible(chromedp.CSS("#audit-filter")),
		chromedp.SetValue(chromedp.CSS("#target_type"), "stock"),
		chromedp.SendKeys(chromedp.CSS("#target_id"), sid),
		chromedp.Click(chromedp.CSS("#audit-filter-submit")),
	); err != nil {
		t.Fatal(err)
	}
	waitURL(t, bctx, "target_id="+sid)
	n, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll("#audit-entries details").length`))
	if err != nil || n != 3 {
		t.Fatalf("stock %s shows %d entries (%v), want 3", sid, n, err)
	}
	// Open the newest entry: its full detail shows.
	if err := chromedp.Do(bctx,
		chromedp.Click(chromedp.CSS("#audit-entries details summary")),
		chromedp.WaitVisible(chromedp.CSS("#audit-entries details[open] dl")),
	); err != nil {
		t.Fatal(err)
	}
	detail, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#audit-entries details[open] dl")))
	if err != nil || !has(detail, "REQ-42-CREATE") || !has(detail, "olivia") || !(has(detail, "成功") || has(detail, "Success")) {
		t.Fatalf("opened entry shows %q (%v)", detail, err)
	}
	link, err := chromedp.Run(bctx, chromedp.AttributeValue(chromedp.CSS("#audit-entries details[open] a.target-link"), "href"))
	if err != nil || !link.Exists || !strings.HasSuffix(link.Value, "/stocks/"+sid) {
		t.Fatalf("target link %+v (%v)", link, err)
	}

	// Export the filtered entries with the browser's own session.
	type download struct {
		Status      int    `json:"status"`
		ContentType string `json:"contentType"`
		Disposition string `json:"disposition"`
		BOM         []int  `json:"bom"`
		Text        string `json:"text"`
	}
	dl, err := chromedp.Run(bctx, chromedp.Evaluate[download](`(async () => {
		const r = await fetch(document.querySelector("#audit-export").href);
		const b = new Uint8Array(await r.arrayBuffer());
		return {status: r.status, contentType: r.headers.get("Content-Type"),
			disposition: r.headers.get("Content-Disposition"),
			bom: Array.from(b.slice(0, 3)), text: new TextDecoder().decode(b)};
	})()`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(dl.Text), "\n")
	if dl.Status != 200 || !has(dl.ContentType, "text/csv") || !has(dl.Disposition, "attachment") ||
		len(dl.BOM) != 3 || dl.BOM[0] != 0xEF || dl.BOM[1] != 0xBB || dl.BOM[2] != 0xBF ||
		len(lines) != 4 || !(strings.HasPrefix(lines[0], "Seq,Time (UTC)") || strings.HasPrefix(lines[0], "序号,时间（UTC）")) || !has(lines[1], "REQ-42-CREATE") {
		t.Fatalf("export: %+v", dl)
	}
	var e audit.Entry
	if err := c.DB.Gorm.Where("action = ?", audit.ActionAuditExport).Take(&e).Error; err != nil {
		t.Fatalf("the export was not audited: %v", err)
	}
	var d struct {
		Filter map[string]string `json:"filter"`
	}
	_ = json.Unmarshal([]byte(e.Detail), &d)
	if e.Actor != "mia" || d.Filter["target_id"] != sid {
		t.Fatalf("export audited as %+v", e)
	}
	signOutBrowser(t, bctx)

	// The admin adds a user and reads the one-time password, once.
	signInBrowser(t, bctx, c.URL, "ada", pw)
	if err := chromedp.Do(bctx,
		chromedp.Navigate(c.URL+"/admin/users"),
		chromedp.Click(chromedp.CSS("#add-user")),
		chromedp.WaitVisible(chromedp.CSS("#add-user-form")),
		chromedp.SendKeys(chromedp.CSS("#username"), "nina"),
		chromedp.Click(chromedp.CSS("#role-support")),
		chromedp.Click(chromedp.CSS("#add-user-submit")),
		chromedp.WaitVisible(chromedp.CSS("#one-time-password")),
	); err != nil {
		t.Fatal(err)
	}
	otp, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#one-time-password")))
	if err != nil || len(otp) != 16 {
		t.Fatalf("one-time password %q (%v)", otp, err)
	}
	roles, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#user-roles")))
	if err != nil || !(has(roles, "客服") || has(roles, "Support")) {
		t.Fatalf("new user's roles %q (%v)", roles, err)
	}
	signOutBrowser(t, bctx)

	// The new user signs in with it and must set a new password first.
	if err := chromedp.Do(bctx,
		chromedp.SendKeys(chromedp.CSS("#username"), "nina"),
		chromedp.SendKeys(chromedp.CSS("#password"), otp),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS("#new_password")),
	); err != nil {
		t.Fatal(err)
	}
	waitURL(t, bctx, "/account/password")
	if err := chromedp.Do(bctx,
		chromedp.SendKeys(chromedp.CSS("#current_password"), otp),
		chromedp.SendKeys(chromedp.CSS("#new_password"), "ninas-own-password"),
		chromedp.SendKeys(chromedp.CSS("#confirm_password"), "ninas-own-password"),
		chromedp.Submit(chromedp.CSS("#confirm_password")),
		chromedp.WaitVisible(chromedp.CSS("#home-roles")),
	); err != nil {
		t.Fatal(err)
	}
	if u, err := c.Users.ByID(ctx, userID(t, c, "nina")); err != nil || u.MustChangePassword {
		t.Fatalf("nina after changing her password: %+v %v", u, err)
	}
}

func userID(t *testing.T, c *consoleServer, name string) int64 {
	t.Helper()
	var u models.User
	if err := c.DB.Gorm.Where("username = ?", name).Take(&u).Error; err != nil {
		t.Fatal(err)
	}
	return u.ID
}
