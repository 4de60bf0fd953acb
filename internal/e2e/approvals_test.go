package e2e

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"voucherconsole/internal/alerts"
	"voucherconsole/internal/approvals"
	"voucherconsole/internal/audit"
	"voucherconsole/internal/deactivate"
	"voucherconsole/internal/models"
	"voucherconsole/internal/wxpay/sandbox"
)

var approvalLocation = regexp.MustCompile(`^/approvals/(\d+)$`)

// requestDeactivation posts the deactivation form as hc and returns the
// approval request it recorded.
func requestDeactivation(t *testing.T, c *consoleServer, hc *http.Client, stockID, reason string) *approvals.Request {
	t.Helper()
	id := stockRef(t, c, stockID)
	_, page := fetch(t, hc, "GET", c.URL+"/stocks/"+id+"/deactivate", nil, "en")
	form := url.Values{"deactivate_reason": {reason}, "stock_id": {stockID}, "form_token": {formToken(t, page)}}
	resp, _ := fetch(t, hc, "POST", c.URL+"/stocks/"+id+"/deactivate", form, "en")
	m := approvalLocation.FindStringSubmatch(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || m == nil {
		t.Fatalf("deactivation under the policy: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	// The same form posted again is the same request.
	if again, _ := fetch(t, hc, "POST", c.URL+"/stocks/"+id+"/deactivate", form, "en"); again.Header.Get("Location") != resp.Header.Get("Location") {
		t.Fatalf("double submit made another request: %s", again.Header.Get("Location"))
	}
	var r approvals.Request
	if err := c.DB.Gorm.Take(&r, m[1]).Error; err != nil {
		t.Fatal(err)
	}
	return &r
}

// Acceptance 2: under CONSOLE_APPROVALS=deactivate an operator's
// deactivation sends nothing until a manager approves; the operator cannot
// approve (no action on the page, the route refuses); two managers at once
// make one call, carrying the request number fixed at submission.
func TestApprovalDeactivation(t *testing.T) {
	c := startConsole(t, map[string]string{"CONSOLE_APPROVALS": "deactivate"})
	op := c.userClient(t, "olivia", models.RoleOperator)
	mia := c.userClient(t, "mia", models.RoleManager)
	max := c.userClient(t, "max", models.RoleManager)

	r := requestDeactivation(t, c, op, sandbox.SeedStockSending, "门店调整，停止发放")
	if len(sandboxRequests(c, sandbox.EndpointDeactivateStock)) != 0 || sandboxState(t, c, sandbox.SeedStockSending) != "SENDING" {
		t.Fatal("a deactivation was sent before approval")
	}
	if r.Status != approvals.StatusPending || !strings.HasPrefix(r.RequestNo, "DA") || !strings.Contains(r.Body, r.RequestNo) {
		t.Fatalf("recorded request %+v", r)
	}
	link := c.URL + "/approvals/" + itoa(r.ID)

	// The requester sees the request as WeChat Pay will receive it, but no
	// action to approve it; the route refuses (audited as denied).
	resp, page := fetch(t, op, "GET", link, nil, "en")
	if resp.StatusCode != 200 || !has(page, r.RequestNo) || !has(page, "/deactivate") || !has(page, "deactivate_reason") ||
		has(page, `id="approve-form"`) || !has(page, `id="withdraw-form"`) || !has(page, "Sending") {
		t.Fatalf("requester's view: %d\n%s", resp.StatusCode, page)
	}
	denied := len(auditEntries(t, c, audit.ActionAccessDenied))
	if resp, _ := fetch(t, op, "POST", link+"/approve", url.Values{}, "en"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("operator approving: %d", resp.StatusCode)
	}
	if len(auditEntries(t, c, audit.ActionAccessDenied)) != denied+1 {
		t.Fatal("the refused approval was not audited")
	}
	// Managers see it in the list with the actions.
	_, list := fetch(t, mia, "GET", c.URL+"/approvals", nil, "en")
	if !has(list, `id="approval-`+itoa(r.ID)+`"`) {
		t.Fatalf("the manager's list lacks the request:\n%s", list)
	}
	if _, page := fetch(t, mia, "GET", link, nil, "en"); !has(page, `id="approve-form"`) || !has(page, `id="reject-form"`) {
		t.Fatal("the manager's view offers no decision")
	}

	// Two managers approve at once: one call.
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i, hc := range []*http.Client{mia, max} {
		wg.Go(func() {
			resp, _ := fetch(t, hc, "POST", link+"/approve", url.Values{}, "en")
			codes[i] = resp.StatusCode
		})
	}
	wg.Wait()
	if !((codes[0] == http.StatusSeeOther && codes[1] == http.StatusConflict) || (codes[1] == http.StatusSeeOther && codes[0] == http.StatusConflict)) {
		t.Fatalf("two approvals at once: %v, want one 303 and one 409", codes)
	}
	sent := sandboxRequests(c, sandbox.EndpointDeactivateStock)
	if len(sent) != 1 || sent[r.RequestNo] != 1 {
		t.Fatalf("sandbox saw %v, want one request %s once", sent, r.RequestNo)
	}
	if sandboxState(t, c, sandbox.SeedStockSending) != "DEACTIVATED" {
		t.Fatal("the stock was not deactivated")
	}
	var st models.Stock
	c.DB.Gorm.Where("stock_id = ?", sandbox.SeedStockSending).Take(&st)
	if st.DeactivateRequestNo != r.RequestNo {
		t.Fatalf("deactivated with request number %s, the request fixed %s", st.DeactivateRequestNo, r.RequestNo)
	}
	_, page = fetch(t, op, "GET", link, nil, "en")
	if !has(page, "Approved and sent") || !has(page, "Deactivated") || has(page, `id="withdraw-form"`) {
		t.Fatalf("after approval:\n%s", page)
	}
	// Every step audited with the request number: request, decision, call.
	for _, a := range []string{approvals.ActionRequest, approvals.ActionApprove, approvals.ActionSent, deactivate.Action} {
		var n int64
		c.DB.Gorm.Model(&audit.Entry{}).Where("action = ? AND wx_request_no = ?", a, r.RequestNo).Count(&n)
		if n == 0 {
			t.Errorf("no %s entry with request number %s", a, r.RequestNo)
		}
	}
	var after approvals.Request
	c.DB.Gorm.Take(&after, r.ID)
	if after.OperationID == nil || after.DecidedBy == nil {
		t.Fatalf("request not linked to its call and decision: %+v", after)
	}

	// Managers were told of the request through the console's alerts (now
	// cleared), the requester of the approval.
	var requested, approved []alerts.Row
	c.DB.Gorm.Where("kind = ? AND cond_key = ?", approvals.AlertRequested, "approval:"+itoa(r.ID)).Find(&requested)
	c.DB.Gorm.Where("kind = ? AND cond_key = ?", "approval_approved", "approval:"+itoa(r.ID)).Find(&approved)
	if len(requested) != 1 || requested[0].ClearedAt == nil || requested[0].Audience != "manager" ||
		len(approved) != 1 || approved[0].UserID == nil || *approved[0].UserID != r.RequestedBy {
		t.Fatalf("alerts: requested %+v, approved %+v", requested, approved)
	}

	// A retry (the resumer after a crash) makes no second call.
	if _, err := c.Approvals.Resume(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if n := sandboxRequests(c, sandbox.EndpointDeactivateStock)[r.RequestNo]; n != 1 {
		t.Fatalf("after the resumer the sandbox saw the request %d times", n)
	}
}

// A manager who asks cannot approve their own request: no action, the
// route refuses.
func TestApprovalOwnRequestRefused(t *testing.T) {
	c := startConsole(t, map[string]string{"CONSOLE_APPROVALS": "deactivate"})
	mia := c.userClient(t, "mia", models.RoleManager)
	r := requestDeactivation(t, c, mia, sandbox.SeedStockPaused, "预算调整")
	link := c.URL + "/approvals/" + itoa(r.ID)
	_, page := fetch(t, mia, "GET", link, nil, "en")
	if has(page, `id="approve-form"`) || !has(page, `id="approval-own"`) {
		t.Fatalf("own request offers approval:\n%s", page)
	}
	resp, page := fetch(t, mia, "POST", link+"/approve", url.Values{}, "en")
	if resp.StatusCode != http.StatusForbidden || !has(page, "cannot approve or reject your own request") {
		t.Fatalf("approving one's own request: %d", resp.StatusCode)
	}
	if resp, _ := fetch(t, mia, "POST", link+"/reject", url.Values{"reject_reason": {"x"}}, "en"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("rejecting one's own request: %d", resp.StatusCode)
	}
	if len(sandboxRequests(c, sandbox.EndpointDeactivateStock)) != 0 {
		t.Fatal("something was sent")
	}
}

// A rejected, expired or withdrawn request sends nothing; a rejection needs
// a reason.
func TestApprovalRejectExpireWithdraw(t *testing.T) {
	c := startConsole(t, map[string]string{"CONSOLE_APPROVALS": "deactivate"})
	clk := &testClock{}
	c.Approvals.Now = clk.Now
	op := c.userClient(t, "olivia", models.RoleOperator)
	mia := c.userClient(t, "mia", models.RoleManager)
	none := func(what string) {
		t.Helper()
		if n := len(sandboxRequests(c, sandbox.EndpointDeactivateStock)); n != 0 {
			t.Fatalf("%s: %d deactivations sent", what, n)
		}
	}

	r := requestDeactivation(t, c, op, sandbox.SeedStockPaused, "活动提前结束")
	link := c.URL + "/approvals/" + itoa(r.ID)
	resp, page := fetch(t, mia, "POST", link+"/reject", url.Values{"reject_reason": {"  "}}, "en")
	if resp.StatusCode != http.StatusUnprocessableEntity || !has(page, "Enter the reason for rejecting") {
		t.Fatalf("reject without a reason: %d", resp.StatusCode)
	}
	resp, page = fetch(t, mia, "POST", link+"/reject", url.Values{"reject_reason": {strings.Repeat("长", 201)}}, "en")
	if resp.StatusCode != http.StatusUnprocessableEntity || !has(page, "at most 200 characters; it has 201") {
		t.Fatalf("reject with a long reason: %d", resp.StatusCode)
	}
	if resp, _ := fetch(t, mia, "POST", link+"/reject", url.Values{"reject_reason": {"预算不足"}}, "en"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("reject: %d", resp.StatusCode)
	}
	if resp, _ := fetch(t, mia, "POST", link+"/approve", url.Values{}, "en"); resp.StatusCode != http.StatusConflict {
		t.Fatalf("approve after reject: %d", resp.StatusCode)
	}
	if _, page := fetch(t, op, "GET", link, nil, "en"); !has(page, "Rejected") || !has(page, "预算不足") {
		t.Fatal("the requester does not see the rejection and its reason")
	}
	none("rejected")

	r = requestDeactivation(t, c, op, sandbox.SeedStockPaused, "活动提前结束")
	clk.mu.Lock()
	clk.offset = 25 * time.Hour
	clk.mu.Unlock()
	resp, page = fetch(t, mia, "POST", c.URL+"/approvals/"+itoa(r.ID)+"/approve", url.Values{}, "en")
	if resp.StatusCode != http.StatusConflict || !has(page, "expired") {
		t.Fatalf("approve an expired request: %d", resp.StatusCode)
	}
	var expired approvals.Request
	c.DB.Gorm.Take(&expired, r.ID)
	if expired.Status != approvals.StatusExpired || len(auditEntries(t, c, approvals.ActionExpire)) != 1 {
		t.Fatalf("expired request %+v", expired)
	}
	none("expired")
	clk.mu.Lock()
	clk.offset = 0
	clk.mu.Unlock()

	r = requestDeactivation(t, c, op, sandbox.SeedStockPaused, "活动提前结束")
	if resp, _ := fetch(t, mia, "POST", c.URL+"/approvals/"+itoa(r.ID)+"/withdraw", url.Values{}, "en"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a manager withdrawing another's request: %d", resp.StatusCode)
	}
	if resp, _ := fetch(t, op, "POST", c.URL+"/approvals/"+itoa(r.ID)+"/withdraw", url.Values{}, "en"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("withdraw: %d", resp.StatusCode)
	}
	if resp, _ := fetch(t, mia, "POST", c.URL+"/approvals/"+itoa(r.ID)+"/approve", url.Values{}, "en"); resp.StatusCode != http.StatusConflict {
		t.Fatalf("approve after withdraw: %d", resp.StatusCode)
	}
	none("withdrawn")

	// Notices: the requester was told of each outcome, the managers of each
	// request.
	var notices int64
	c.DB.Gorm.Model(&approvals.Notice{}).Where("event IN ?", []string{"rejected", "expired"}).Count(&notices)
	if notices != 2 {
		t.Fatalf("%d rejection/expiry notices", notices)
	}
}

// A crash between the approval and the call: the resumer makes the call
// once, with the request's number, however often it runs.
func TestApprovalResumedAfterCrash(t *testing.T) {
	c := startConsole(t, map[string]string{"CONSOLE_APPROVALS": "deactivate"})
	op := c.userClient(t, "olivia", models.RoleOperator)
	c.addUser(t, "mia", "a-long-test-password", models.RoleManager)
	r := requestDeactivation(t, c, op, sandbox.SeedStockSending, "门店调整")
	// As a crash right after the approval committed leaves it: approved,
	// no call.
	var mia models.User
	c.DB.Gorm.Where("username = ?", "mia").Take(&mia)
	now := time.Now().Add(-time.Minute)
	if err := c.DB.Gorm.Model(&approvals.Request{}).Where("id = ?", r.ID).
		Updates(map[string]any{"status": approvals.StatusApproved, "decided_by": mia.ID, "decided_at": now}).Error; err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := c.Approvals.Resume(context.Background(), 0); err != nil {
			t.Fatal(err)
		}
	}
	sent := sandboxRequests(c, sandbox.EndpointDeactivateStock)
	if len(sent) != 1 || sent[r.RequestNo] != 1 || sandboxState(t, c, sandbox.SeedStockSending) != "DEACTIVATED" {
		t.Fatalf("after the resumer: %v", sent)
	}
}

// Admins change the policy on a page (audited); a bad policy is refused
// with the field's error.
func TestApprovalPolicyPage(t *testing.T) {
	c := startConsole(t, nil)
	ada := c.userClient(t, "ada", models.RoleAdmin)
	op := c.userClient(t, "olivia", models.RoleOperator)
	resp, page := fetch(t, ada, "POST", c.URL+"/admin/approvals", url.Values{"submitted": {"1"}, "approvals": {"deactivate,create:abc"}}, "en")
	if resp.StatusCode != http.StatusUnprocessableEntity || !has(page, "Not a policy") || !has(page, "deactivate,create:abc") {
		t.Fatalf("bad policy: %d", resp.StatusCode)
	}
	if resp, _ := fetch(t, ada, "POST", c.URL+"/admin/approvals", url.Values{"submitted": {"1"}, "approvals": {"deactivate, upload:100000"}}, "en"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("set policy: %d", resp.StatusCode)
	}
	entries := auditEntries(t, c, approvals.ActionPolicy)
	if len(entries) != 1 || !has(entries[0].Detail, `"after":"deactivate,upload:100000"`) {
		t.Fatalf("policy audit %+v", entries)
	}
	// Now in force: a deactivation waits for approval.
	requestDeactivation(t, c, op, sandbox.SeedStockPaused, "测试")
	if len(sandboxRequests(c, sandbox.EndpointDeactivateStock)) != 0 {
		t.Fatal("sent without approval")
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// Under create:<yuan>, a stock budgeted at the threshold or more waits for
// a manager; one below it is created at once. Approval creates it once,
// with the request number fixed at submission.
func TestApprovalCreateStock(t *testing.T) {
	c := startConsole(t, map[string]string{"CONSOLE_APPROVALS": "create:1000"})
	op := c.userClient(t, "olivia", models.RoleOperator)
	mia := c.userClient(t, "mia", models.RoleManager)

	small := voucherForm("小额满30减10", "token-approval-small")
	small.Set("max_amount", "990.00")
	small.Set("max_coupons", "99")
	if resp, _ := fetch(t, op, "POST", c.URL+"/stocks/new", small, "en"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/stocks/") {
		t.Fatalf("stock below the threshold: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}

	form := voucherForm("大额满30减10", "token-approval-large") // ¥1,000: at the threshold
	resp, _ := fetch(t, op, "POST", c.URL+"/stocks/new", form, "en")
	m := approvalLocation.FindStringSubmatch(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || m == nil {
		t.Fatalf("stock at the threshold: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if again, _ := fetch(t, op, "POST", c.URL+"/stocks/new", form, "en"); again.Header.Get("Location") != resp.Header.Get("Location") {
		t.Fatal("double submit made another request")
	}
	if sandboxFavorStocks(c, "大额满30减10") != 0 {
		t.Fatal("created before approval")
	}
	var r approvals.Request
	c.DB.Gorm.Take(&r, m[1])
	_, page := fetch(t, mia, "GET", c.URL+"/approvals/"+m[1], nil, "en")
	if !has(page, "/v3/marketing/favor/coupon-stocks") || !has(page, r.RequestNo) || !has(page, "大额满30减10") {
		t.Fatalf("approval page:\n%s", page)
	}
	if resp, _ := fetch(t, mia, "POST", c.URL+"/approvals/"+m[1]+"/approve", url.Values{}, "en"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("approve: %d", resp.StatusCode)
	}
	if _, err := c.Approvals.Resume(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if n := sandboxFavorStocks(c, "大额满30减10"); n != 1 {
		t.Fatalf("%d stocks created", n)
	}
	if n := sandboxRequests(c, sandbox.EndpointCreateFavorStock)[r.RequestNo]; n != 1 {
		t.Fatalf("the sandbox saw request %s %d times", r.RequestNo, n)
	}
	var after approvals.Request
	c.DB.Gorm.Take(&after, r.ID)
	if after.Status != approvals.StatusApproved || after.StockRef == nil || after.OperationID == nil {
		t.Fatalf("request after approval %+v", after)
	}
}
