package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/encoding/simplifiedchinese"

	"voucherconsole/internal/models"
	"voucherconsole/internal/uploads"
	"voucherconsole/internal/wxpay/sandbox"
)

// postFile posts a code file as the upload form does.
func postFile(t *testing.T, hc *http.Client, u, name string, data []byte, lang string) (*http.Response, string) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("file", name)
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(data)
	mw.Close()
	req, _ := http.NewRequest("POST", u, &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	if lang != "" {
		req.Header.Set("Accept-Language", lang)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// codesFile is n codes prefix-000001 … one per line (CRLF), then extra lines.
func codesFile(prefix string, n int, extra ...string) []byte {
	var b bytes.Buffer
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "%s-%06d\r\n", prefix, i)
	}
	for _, l := range extra {
		b.WriteString(l + "\r\n")
	}
	return b.Bytes()
}

type progress struct {
	Status      string  `json:"status"`
	CodesDone   int64   `json:"codes_done"`
	CodesTotal  int64   `json:"codes_total"`
	Percent     float64 `json:"percent"`
	PercentText string  `json:"percent_text"`
	Active      bool    `json:"active"`
	Ended       bool    `json:"ended"`
	StatusLabel string  `json:"status_label"`
}

func waitUploadEnded(t *testing.T, hc *http.Client, base string) progress {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, body := fetch(t, hc, "GET", base+"/progress", nil, "en")
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("progress: %d %s", resp.StatusCode, body)
		}
		var p progress
		if err := json.Unmarshal([]byte(body), &p); err != nil {
			t.Fatal(err)
		}
		if p.Ended {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("upload did not end: %+v", p)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// An operator uploads a file, sees the check, starts it and gets a report
// that reconciles; support can follow but not act; the file and the report
// can be downloaded; the stock page lists the upload.
func TestUploadOverHTTP(t *testing.T) {
	c := startConsole(t, map[string]string{"CONSOLE_UPLOAD_MAX_BYTES": "200000"})
	op := c.userClient(t, "olivia", models.RoleOperator)
	sup := c.userClient(t, "sue", models.RoleSupport)
	id := stockRef(t, c, sandbox.SeedStockSending)

	resp, body := fetch(t, op, "GET", c.URL+"/stocks/"+id, nil, "en")
	if resp.StatusCode != 200 || !has(body, `id="upload-codes"`) || !has(body, `id="stock-uploads"`) || !has(body, "No uploads yet") {
		t.Fatalf("stock page: %d", resp.StatusCode)
	}
	resp, body = fetch(t, op, "GET", c.URL+"/stocks/"+id+"/uploads/new", nil, "en")
	if resp.StatusCode != 200 || !has(body, `enctype="multipart/form-data"`) || !has(body, `name="file"`) || !has(body, "1–40 characters") {
		t.Fatalf("upload form: %d\n%s", resp.StatusCode, body)
	}

	// Refusals: no file, not text, no code column, too large.
	resp, body = fetch(t, op, "POST", c.URL+"/stocks/"+id+"/uploads", url.Values{}, "en")
	if resp.StatusCode != http.StatusBadRequest || !has(body, "Choose a file") {
		t.Fatalf("no file: %d", resp.StatusCode)
	}
	for _, tc := range []struct {
		name   string
		data   []byte
		status int
		msg    string
	}{
		{"binary.csv", []byte("A1\x00\x00\x01\n"), http.StatusUnprocessableEntity, "not a text file"},
		{"columns.csv", []byte("name,amount\nx,1\n"), http.StatusUnprocessableEntity, "has no code column"},
		{"header.csv", []byte("coupon_code\r\n"), http.StatusUnprocessableEntity, "has no codes"},
		{"big.csv", codesFile("BIG", 20_000), http.StatusRequestEntityTooLarge, "too large: at most 195.3 KB"},
	} {
		resp, body := postFile(t, op, c.URL+"/stocks/"+id+"/uploads", tc.name, tc.data, "en")
		if resp.StatusCode != tc.status || !has(body, tc.msg) || !has(body, `id="file-error"`) {
			t.Errorf("%s: %d, want %d with %q", tc.name, resp.StatusCode, tc.status, tc.msg)
		}
	}

	data := codesFile("HTTP", 1000, "HTTP-000001", "bad code!", "LATTE-SPRING-0002")
	resp, _ = postFile(t, op, c.URL+"/stocks/"+id+"/uploads", "codes.csv", data, "en")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/uploads/") {
		t.Fatalf("upload: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	page := c.URL + resp.Header.Get("Location")
	resp, body = fetch(t, op, "GET", page, nil, "en")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
	for _, want := range []string{`id="check-rows">1,003<`, `id="check-valid">1,001<`, `id="check-invalid">1<`, `id="check-duplicate">1<`,
		`id="check-known">0<`, `id="check-to-send">1,001<`, `id="start-upload"`, `id="abandon-upload"`, "same as row 1", "Checked"} {
		if !has(body, want) {
			t.Fatalf("check page lacks %s:\n%s", want, body)
		}
	}
	if len(c.Sandbox.Requests()) != 0 {
		t.Fatal("the check sent requests to WeChat Pay")
	}
	// Support follows but may not act.
	resp, body = fetch(t, sup, "GET", page, nil, "en")
	if resp.StatusCode != 200 || has(body, `id="start-upload"`) {
		t.Fatalf("support view: %d", resp.StatusCode)
	}
	if resp, _ := fetch(t, sup, "POST", page+"/start", url.Values{}, "en"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("support start: %d", resp.StatusCode)
	}

	resp, _ = fetch(t, op, "POST", page+"/start", url.Values{}, "en")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("start: %d", resp.StatusCode)
	}
	// A second start is refused with 409 and says why.
	resp, body = fetch(t, op, "POST", page+"/start", url.Values{}, "en")
	if resp.StatusCode != http.StatusConflict || !has(body, `id="upload-notice"`) {
		t.Fatalf("second start: %d", resp.StatusCode)
	}
	p := waitUploadEnded(t, sup, page)
	if p.Status != "finished" || p.CodesDone != 1001 || p.PercentText != "100%" || p.StatusLabel != "Finished" {
		t.Fatalf("ended: %+v", p)
	}
	resp, body = fetch(t, op, "GET", page, nil, "en")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
	for _, want := range []string{`id="report-rows">1,003<`, `id="report-uploaded">1,000<`, `id="report-already">1<`,
		`id="report-failed">0<`, `id="upload-reconciles"`, `id="download-report"`, `value="100"`} {
		if !has(body, want) {
			t.Fatalf("report page lacks %s:\n%s", want, body)
		}
	}
	if has(body, `http-equiv="refresh"`) {
		t.Fatal("an ended upload's page refreshes itself")
	}

	// The report and the file are codes: support sees counts only.
	for _, dl := range []string{"/report.csv", "/file"} {
		if resp, _ := fetch(t, sup, "GET", page+dl, nil, "en"); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("support downloads %s: %d, want 403", dl, resp.StatusCode)
		}
	}
	if _, body := fetch(t, sup, "GET", page, nil, "en"); has(body, `id="download-report"`) || has(body, `id="upload-file"`) || has(body, "HTTP-000001") {
		t.Fatal("support's upload page offers the codes")
	}
	resp, body = fetch(t, op, "GET", page+"/report.csv", nil, "en")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") ||
		!strings.HasPrefix(body, "\uFEFFrow,code,reason_code,reason,detail\r\n") {
		t.Fatalf("report: %d %q", resp.StatusCode, body[:min(len(body), 80)])
	}
	lines := strings.Split(strings.TrimSpace(body), "\r\n")[1:]
	want := []string{"1001,HTTP-000001,duplicate,same as row 1,", `1002,bad code!,bad_char,character 4 (“ ”) is not allowed,`,
		"1003,LATTE-SPRING-0002,wx_exists,already on WeChat Pay,"}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("report lines:\n%s", strings.Join(lines, "\n"))
	}
	resp, body = fetch(t, op, "GET", page+"/file", nil, "en")
	if resp.StatusCode != 200 || body != string(data) || !has(resp.Header.Get("Content-Disposition"), "codes.csv") {
		t.Fatalf("file download: %d", resp.StatusCode)
	}
	// A file kept on another instance's disk (before files were kept in
	// the database): the page says so instead of linking to a download
	// that fails.
	if err := c.DB.Gorm.Model(&uploads.Upload{}).Where("id = ?", strings.TrimPrefix(page, c.URL+"/uploads/")).
		Update("file_path", "uploads/999999").Error; err != nil {
		t.Fatal(err)
	}
	resp, body = fetch(t, sup, "GET", page, nil, "en")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
	if !has(body, `id="upload-file-elsewhere"`) || has(body, `id="upload-file"`) {
		t.Fatalf("page without the file on this instance:\n%s", body)
	}
	if resp, _ = fetch(t, op, "GET", page+"/file", nil, "en"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("file download without the file: %d", resp.StatusCode)
	}

	// The stock page lists it; the code counts were read back.
	resp, body = fetch(t, sup, "GET", c.URL+"/stocks/"+id, nil, "en")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
	if !has(body, "codes.csv") || !has(body, "1,000 of 1,001 uploaded") {
		t.Fatalf("stock page uploads:\n%s", body)
	}
	var st models.Stock
	c.DB.Gorm.Take(&st, id)
	if st.TotalCount == nil || *st.TotalCount != 1008 {
		t.Fatalf("stock total count %v, want 1008", st.TotalCount)
	}
	// The sandbox holds each code once.
	for _, s := range c.Sandbox.Stocks() {
		if s.StockID == sandbox.SeedStockSending && len(s.Codes) != 1008 {
			t.Fatalf("sandbox holds %d codes", len(s.Codes))
		}
	}
}

// A GBK file with the Chinese header 券码 is read as GB18030 and says so; a
// stock whose codes WeChat Pay generates refuses uploads.
func TestUploadGBK(t *testing.T) {
	c := startConsole(t, nil)
	op := c.userClient(t, "olivia", models.RoleOperator)
	id := stockRef(t, c, sandbox.SeedStockSending)
	gbk, err := simplifiedchinese.GBK.NewEncoder().String("序号,券码,备注\r\n1,GBK-0001,第一张\r\n2,GBK-0002,第二张\r\n3,坏券码,无效\r\n")
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := postFile(t, op, c.URL+"/stocks/"+id+"/uploads", "券码.csv", []byte(gbk), "")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("upload: %d", resp.StatusCode)
	}
	_, body := fetch(t, op, "GET", c.URL+resp.Header.Get("Location"), nil, "")
	for _, want := range []string{`id="upload-encoding">GBK/GB18030<`, `id="upload-header">有<`, `id="check-valid">2<`, `id="check-invalid">1<`, "坏券码"} {
		if !has(body, want) {
			t.Fatalf("GBK check lacks %s:\n%s", want, body)
		}
	}
	wid := stockRef(t, c, sandbox.SeedStockWechatPayMode)
	resp, body = fetch(t, op, "GET", c.URL+"/stocks/"+wid+"/uploads/new", nil, "en")
	if resp.StatusCode != http.StatusConflict || !has(body, `id="upload-refused"`) {
		t.Fatalf("WECHATPAY-mode stock: %d", resp.StatusCode)
	}
	resp, _ = postFile(t, op, c.URL+"/stocks/"+wid+"/uploads", "x.csv", []byte("A1\n"), "en")
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("upload to WECHATPAY-mode stock: %d", resp.StatusCode)
	}
}
