package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"voucherconsole/internal/approvals"
	"voucherconsole/internal/models"
	"voucherconsole/internal/uploads"
	"voucherconsole/internal/wxpay/sandbox"
)

// uploadRequests counts the upload calls WeChat Pay's sandbox saw, by
// request number.
func uploadRequests(c *consoleServer) map[string]int {
	out := sandboxRequests(c, sandbox.EndpointUploadProductCouponCodes)
	for k, v := range sandboxRequests(c, sandbox.EndpointUploadBusifavorCodes) {
		out[k] += v
	}
	return out
}

// checkedUpload posts a file of n codes and returns the upload's page.
func checkedUpload(t *testing.T, c *consoleServer, hc *http.Client, prefix string, n int) string {
	t.Helper()
	id := stockRef(t, c, sandbox.SeedStockSending)
	resp, _ := postFile(t, hc, c.URL+"/stocks/"+id+"/uploads", prefix+".csv", codesFile(prefix, n), "en")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/uploads/") {
		t.Fatalf("upload: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	return c.URL + resp.Header.Get("Location")
}

// Under CONSOLE_APPROVALS=upload:500 a file below the threshold starts at
// once; one at it sends nothing until a manager approves (the operator
// cannot), two managers approving at once start it once, and every code is
// sent exactly once with the request numbers the approval showed.
func TestApprovalUpload(t *testing.T) {
	c := startConsole(t, map[string]string{"CONSOLE_APPROVALS": "upload:500"})
	op := c.userClient(t, "olivia", models.RoleOperator)
	mia := c.userClient(t, "mia", models.RoleManager)
	max := c.userClient(t, "max", models.RoleManager)

	small := checkedUpload(t, c, op, "SMALL", 499)
	if resp, _ := fetch(t, op, "POST", small+"/start", url.Values{}, "en"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != strings.TrimPrefix(small, c.URL) {
		t.Fatalf("small start: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if p := waitUploadEnded(t, op, small); p.Status != "finished" || p.CodesDone != 499 {
		t.Fatalf("small upload: %+v", p)
	}
	before := len(uploadRequests(c))

	big := checkedUpload(t, c, op, "BIG", 1000)
	resp, _ := fetch(t, op, "POST", big+"/start", url.Values{}, "en")
	m := approvalLocation.FindStringSubmatch(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || m == nil {
		t.Fatalf("big start: %d %s, want the approval request", resp.StatusCode, resp.Header.Get("Location"))
	}
	var r approvals.Request
	if err := c.DB.Gorm.Where("id = ?", m[1]).Take(&r).Error; err != nil {
		t.Fatal(err)
	}
	var batches []uploads.Batch
	uploadID := big[strings.LastIndex(big, "/")+1:]
	c.DB.Gorm.Where("upload_id = ?", uploadID).Order("batch_no").Find(&batches)
	if r.Kind != approvals.KindUpload || r.Status != approvals.StatusPending || len(batches) != 5 ||
		!strings.Contains(r.Body, batches[0].RequestNo) || !strings.Contains(r.Body, batches[4].RequestNo) || !strings.Contains(r.Body, "BIG.csv") {
		t.Fatalf("request %+v over %d batches", r, len(batches))
	}
	// Pressing start again is the same request.
	if resp, _ := fetch(t, op, "POST", big+"/start", url.Values{}, "en"); resp.Header.Get("Location") != "/approvals/"+m[1] {
		t.Fatalf("second start: %s", resp.Header.Get("Location"))
	}
	if _, page := fetch(t, op, "GET", big, nil, "en"); !has(page, `id="upload-notice"`) || !has(page, "Waiting for approval") {
		t.Fatalf("upload page does not say it waits:\n%s", page)
	}
	if len(uploadRequests(c)) != before {
		t.Fatal("codes were sent before approval")
	}
	link := c.URL + "/approvals/" + m[1]
	if _, page := fetch(t, mia, "GET", link, nil, "en"); !has(page, `id="approve-form"`) || !has(page, batches[4].RequestNo) {
		t.Fatalf("the manager's view:\n%s", page)
	}
	if resp, _ := fetch(t, op, "POST", link+"/approve", url.Values{}, "en"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("own approval: %d", resp.StatusCode)
	}

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
	if p := waitUploadEnded(t, op, big); p.Status != "finished" || p.CodesDone != 1000 {
		t.Fatalf("approved upload: %+v", p)
	}
	sent := uploadRequests(c)
	for _, b := range batches {
		if sent[b.RequestNo] != 1 {
			t.Fatalf("batch %d (%s) sent %d times", b.BatchNo, b.RequestNo, sent[b.RequestNo])
		}
	}
	if len(sent) != before+5 {
		t.Fatalf("sandbox saw %d request numbers, want %d", len(sent), before+5)
	}
	if n := len(auditEntries(t, c, uploads.ActionStart)); n != 2 {
		t.Fatalf("%d upload starts audited, want 2", n)
	}
	if len(auditEntries(t, c, approvals.ActionSent)) != 1 {
		t.Fatal("the start is not linked to the approval")
	}
}

// A rejected upload sends nothing and its page says why.
func TestApprovalUploadRejected(t *testing.T) {
	c := startConsole(t, map[string]string{"CONSOLE_APPROVALS": "upload:10"})
	op := c.userClient(t, "olivia", models.RoleOperator)
	mia := c.userClient(t, "mia", models.RoleManager)

	page := checkedUpload(t, c, op, "REJ", 300)
	resp, _ := fetch(t, op, "POST", page+"/start", url.Values{}, "en")
	m := approvalLocation.FindStringSubmatch(resp.Header.Get("Location"))
	if m == nil {
		t.Fatalf("start: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := fetch(t, mia, "POST", c.URL+"/approvals/"+m[1]+"/reject", url.Values{"reject_reason": {"wrong stock"}}, "en"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("reject: %d", resp.StatusCode)
	}
	if _, body := fetch(t, op, "GET", page, nil, "en"); !has(body, "was rejected (wrong stock)") || !has(body, "Checked") {
		t.Fatalf("upload page after rejection:\n%s", body)
	}
	// Starting again leads back to the decided request; nothing is sent.
	fetch(t, op, "POST", page+"/start", url.Values{}, "en")
	if len(uploadRequests(c)) != 0 {
		t.Fatal("a rejected upload sent codes")
	}
}
