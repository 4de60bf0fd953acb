package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"golang.org/x/text/encoding/simplifiedchinese"

	"voucherconsole/internal/browsertest"
	"voucherconsole/internal/models"
	"voucherconsole/internal/wxpay/sandbox"
)

// Acceptance 8: in Chromium, an operator uploads a UTF-8 file with a BOM,
// sees the dry-run counts, starts it, watches the progress bar reach 100%
// and downloads the report; a second upload, of a GBK file with the header
// 券码, is read correctly and says it was GBK.
func TestBrowserUpload(t *testing.T) {
	c := startConsole(t, nil)
	c.addUser(t, "olivia", "a-long-test-password", models.RoleOperator)
	// English, so the assertions read naturally.
	if err := c.DB.Gorm.Model(&models.User{}).Where("username = ?", "olivia").Update("locale", "en").Error; err != nil {
		t.Fatal(err)
	}
	id := stockRef(t, c, sandbox.SeedStockSending)
	ctx := browsertest.New(t, 3*time.Minute)
	dir := t.TempDir()
	yes := true

	// 20,000 codes (100 batches: two seconds at the default 50 requests/s),
	// a duplicate and an invalid row.
	var b bytes.Buffer
	b.WriteString("\uFEFFcode\r\n")
	for i := 1; i <= 20_000; i++ {
		fmt.Fprintf(&b, "WEB-%06d\r\n", i)
	}
	b.WriteString("WEB-000007\r\nno spaces allowed\r\n")
	utf8File := filepath.Join(dir, "codes-utf8-bom.csv")
	if err := os.WriteFile(utf8File, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}

	if err := chromedp.Do(ctx,
		chromedp.Navigate(c.URL+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), "olivia"),
		chromedp.SendKeys(chromedp.CSS("#password"), "a-long-test-password"),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS("#current-user")),
		chromedp.Navigate(c.URL+"/stocks/"+id),
		chromedp.WaitVisible(chromedp.CSS(`#upload-codes`)),
		chromedp.Click(chromedp.CSS("#upload-codes")),
		chromedp.WaitVisible(chromedp.CSS("#upload-form")),
		chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{utf8File}),
		chromedp.Click(chromedp.CSS("#check-file")),
		chromedp.WaitVisible(chromedp.CSS("#upload-check")),
	); err != nil {
		t.Fatal(err)
	}
	for sel, want := range map[string]string{
		"#check-rows": "20,002", "#check-valid": "20,000", "#check-invalid": "1", "#check-duplicate": "1",
		"#check-known": "0", "#check-to-send": "20,000", "#upload-encoding": "UTF-8 with BOM", "#upload-header": "Yes",
		"#upload-status": "Checked",
	} {
		if got := text(sel); got != want {
			t.Errorf("%s = %q, want %q", sel, got, want)
		}
	}

	// Start, and watch the bar move to 100%.
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS("#start-upload")),
		chromedp.WaitVisible(chromedp.CSS("#upload-progress")),
	); err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	deadline := time.Now().Add(90 * time.Second)
	for {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[int](`(function(){var p=document.getElementById("upload-progress");return p?Math.round(p.value):-1})()`))
		if err != nil {
			t.Fatal(err)
		}
		seen[v] = true
		if v == 100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("progress bar stuck; values seen %v", seen)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The page reloads itself to show the report.
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("#upload-report"))); err != nil {
		t.Fatal(err)
	}
	if len(seen) < 3 {
		t.Errorf("the progress bar did not move live: values seen %v", seen)
	}
	for sel, want := range map[string]string{
		"#upload-status": "Finished", "#report-rows": "20,002", "#report-uploaded": "20,000", "#report-invalid": "1",
		"#report-duplicate": "1", "#report-already": "0", "#report-failed": "0", "#upload-percent": "100%",
	} {
		if got := text(sel); got != want {
			t.Errorf("report %s = %q, want %q", sel, got, want)
		}
	}

	// Download the report.
	downloads := t.TempDir()
	progress := chromedp.Events(ctx, browser.DownloadProgress)
	if err := chromedp.Do(ctx,
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
				Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: downloads, EventsEnabled: &yes,
			})
			return err
		}),
		chromedp.Click(chromedp.CSS("#download-report")),
	); err != nil {
		t.Fatal(err)
	}
	var guid string
	for ev, err := range progress {
		if err != nil {
			t.Fatalf("report download: %v", err)
		}
		if ev.State == browser.DownloadProgressStateCompleted {
			guid = ev.GUID
			break
		}
	}
	report, err := os.ReadFile(filepath.Join(downloads, guid))
	if err != nil {
		t.Fatal(err)
	}
	wantReport := "\uFEFFrow,code,reason_code,reason,detail\r\n" +
		"20002,WEB-000007,duplicate,same as row 8,\r\n" +
		"20003,no spaces allowed,bad_char,character 3 (“ ”) is not allowed,\r\n"
	if string(report) != wantReport {
		t.Fatalf("downloaded report:\n%q\nwant\n%q", report, wantReport)
	}

	// A GBK file with the header 券码.
	gbk, err := simplifiedchinese.GBK.NewEncoder().String("序号,券码,备注\r\n1,GBK-0001,第一张\r\n2,GBK-0002,第二张\r\n3,GBK-0001,重复\r\n")
	if err != nil {
		t.Fatal(err)
	}
	gbkFile := filepath.Join(dir, "codes-gbk.csv")
	if err := os.WriteFile(gbkFile, []byte(gbk), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx,
		chromedp.Navigate(c.URL+"/stocks/"+id+"/uploads/new"),
		chromedp.WaitVisible(chromedp.CSS("#upload-form")),
		chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{gbkFile}),
		chromedp.Click(chromedp.CSS("#check-file")),
		chromedp.WaitVisible(chromedp.CSS("#upload-check")),
	); err != nil {
		t.Fatal(err)
	}
	for sel, want := range map[string]string{
		"#upload-encoding": "GBK/GB18030", "#upload-header": "Yes", "#check-rows": "3", "#check-valid": "2",
		"#check-duplicate": "1", "#check-invalid": "0",
	} {
		if got := text(sel); got != want {
			t.Errorf("GBK upload %s = %q, want %q", sel, got, want)
		}
	}
	problems := text("#upload-problems")
	if !strings.Contains(problems, "GBK-0001") || !strings.Contains(problems, "same as row 2") {
		t.Fatalf("GBK problems: %q", problems)
	}
}
