package e2e

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"io/fs"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/PuerkitoBio/goquery"

	"voucherconsole/internal/database"
	"voucherconsole/internal/models"
	"voucherconsole/internal/testdb"
	"voucherconsole/internal/textcheck"
	"voucherconsole/internal/wxpay/sandbox"
)

// site is a running console with a user of each role signed in, a stock and
// an upload to address, and every route of its route table.
type site struct {
	*consoleServer
	clients map[string]*http.Client // by role; "anonymous" has no session
	params  map[string]string       // route prefix → :id value
}

func newSite(t *testing.T, env map[string]string) *site {
	t.Helper()
	c := startConsole(t, env)
	s := &site{consoleServer: c, clients: map[string]*http.Client{}, params: map[string]string{}}
	jar := func() *http.Client {
		return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	s.clients["anonymous"] = jar()
	for _, r := range models.AllRoles {
		s.clients[string(r)] = c.userClient(t, "u-"+string(r), r)
	}
	s.clients["everything"] = c.userClient(t, "u-all", models.AllRoles...)
	stock := stockRef(t, c, sandbox.SeedStockSending)
	s.params["/stocks/"] = stock
	// An upload whose invalid codes are spreadsheet formulas.
	resp, _ := postFile(t, s.clients["operator"], c.URL+"/stocks/"+stock+"/uploads", "formulas.csv",
		codesFile("HARD", 3, "=HYPERLINK(\"http://evil.example\")", "+cmd|' /C calc'!A0", "@SUM(A1)", "-2+3"), "en")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("upload for the tests: %d", resp.StatusCode)
	}
	s.params["/uploads/"] = strings.TrimPrefix(resp.Header.Get("Location"), "/uploads/")
	return s
}

// path fills a route pattern's parameters with things that exist.
func (s *site) path(pattern string) string {
	var parts []string
	for _, seg := range strings.Split(pattern, "/") {
		switch {
		case strings.HasPrefix(seg, ":"):
			v := "1"
			for prefix, id := range s.params {
				if strings.HasPrefix(pattern, prefix) {
					v = id
				}
			}
			seg = v
		case strings.HasPrefix(seg, "*"):
			seg = "app.css"
		}
		parts = append(parts, seg)
	}
	return strings.Join(parts, "/")
}

func (s *site) routes() []gin_route {
	var out []gin_route
	for _, r := range s.Server.Engine().Routes() {
		out = append(out, gin_route{r.Method, r.Path})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path+out[i].method < out[j].path+out[j].method })
	return out
}

type gin_route struct{ method, path string }

// safeToPost reports whether an empty POST to a route as any role leaves
// the site usable for the rest of the test (signing out does not).
func safeToPost(path string) bool { return path != "/logout" }

// checkHeaders asserts the security headers of one response.
func checkHeaders(t *testing.T, what string, resp *http.Response, signedIn, tls bool) {
	t.Helper()
	h := resp.Header
	csp := h.Get("Content-Security-Policy")
	if !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "script-src 'self'") ||
		strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("%s: Content-Security-Policy %q", what, csp)
	}
	if h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("%s: X-Content-Type-Options %q", what, h.Get("X-Content-Type-Options"))
	}
	if rp := h.Get("Referrer-Policy"); rp == "" || rp == "unsafe-url" {
		t.Errorf("%s: Referrer-Policy %q", what, rp)
	}
	if hsts := h.Get("Strict-Transport-Security"); tls != (hsts != "") {
		t.Errorf("%s: Strict-Transport-Security %q behind TLS %v", what, hsts, tls)
	}
	static := strings.Contains(what, "/static/")
	if (signedIn || strings.Contains(h.Get("Content-Disposition"), "attachment")) && !static && !strings.Contains(h.Get("Cache-Control"), "no-store") {
		t.Errorf("%s: Cache-Control %q on a signed-in response or download", what, h.Get("Cache-Control"))
	}
}

// Acceptance 3: every route of the route table, as every role, answers with
// the security headers (and never 5xx); so do a 404, a HEAD and a refused
// cross-origin request. Behind TLS, HSTS too.
func TestSecurityHeadersOnEveryRoute(t *testing.T) {
	for _, tls := range []bool{false, true} {
		t.Run(fmt.Sprintf("behind_tls=%v", tls), func(t *testing.T) {
			s := newSite(t, map[string]string{"CONSOLE_BEHIND_TLS": fmt.Sprint(tls)})
			routes := s.routes()
			if len(routes) < 40 {
				t.Fatalf("only %d routes enumerated", len(routes))
			}
			for _, who := range []string{"anonymous", "operator", "manager", "support", "admin"} {
				for _, rt := range routes {
					if rt.method == http.MethodPost && !safeToPost(rt.path) {
						continue
					}
					var form url.Values
					if rt.method == http.MethodPost {
						form = url.Values{}
					}
					resp, _ := fetch(t, s.clients[who], rt.method, s.URL+s.path(rt.path), form, "en")
					what := fmt.Sprintf("%s %s as %s (%d)", rt.method, s.path(rt.path), who, resp.StatusCode)
					if resp.StatusCode >= 500 {
						t.Errorf("%s: server error", what)
					}
					checkHeaders(t, what, resp, who != "anonymous", tls)
				}
			}
			for _, extra := range []struct {
				method, path string
				hdr          http.Header
			}{
				{"GET", "/no-such-page", nil},
				{"HEAD", "/stocks", nil},
				{"POST", "/stocks/new", http.Header{"Origin": {"https://evil.example"}, "Sec-Fetch-Site": {"cross-site"}}},
			} {
				req, _ := http.NewRequest(extra.method, s.URL+extra.path, nil)
				for k, v := range extra.hdr {
					req.Header[k] = v
				}
				resp, err := s.clients["operator"].Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				checkHeaders(t, extra.method+" "+extra.path, resp, true, tls)
			}
		})
	}
}

// formField is one named control of a rendered form.
type formField struct {
	name, kind, value string
	options           []string
}

type pageForm struct {
	page, method, action, enctype string
	fields                        []formField
}

func (f pageForm) key() string {
	var names []string
	for _, fl := range f.fields {
		names = append(names, fl.name)
	}
	return f.method + " " + f.action + " " + strings.Join(names, ",")
}

// formsOf reads every form of a rendered page.
func formsOf(page string, body string) []pageForm {
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(body))
	if err != nil {
		return nil
	}
	var out []pageForm
	doc.Find("form").Each(func(_ int, f *goquery.Selection) {
		pf := pageForm{page: page, method: strings.ToUpper(f.AttrOr("method", "GET")), action: f.AttrOr("action", page), enctype: f.AttrOr("enctype", "")}
		f.Find("input, textarea, select").Each(func(_ int, in *goquery.Selection) {
			name, ok := in.Attr("name")
			if !ok || name == "" {
				return
			}
			fl := formField{name: name, kind: goquery.NodeName(in)}
			switch fl.kind {
			case "input":
				fl.kind = in.AttrOr("type", "text")
				fl.value = in.AttrOr("value", "")
			case "textarea":
				fl.value = in.Text()
			case "select":
				in.Find("option").Each(func(_ int, o *goquery.Selection) { fl.options = append(fl.options, o.AttrOr("value", o.Text())) })
				if len(fl.options) > 0 {
					fl.value = fl.options[0]
				}
			}
			pf.fields = append(pf.fields, fl)
		})
		out = append(out, pf)
	})
	return out
}

// payloads are what every field of every form receives in turn.
var payloads = []struct{ name, value string }{
	{"oversized", strings.Repeat("A", 200_000)},
	{"long", strings.Repeat("券", 3000)},
	{"invalid_utf8", "ab\xff\xfecd"},
	{"nul", "a\x00b"},
	{"control", "x\x1b[31m\x07y"},
	{"bidi", "abc\u202edcba"},
	{"html", `"><script>alert(1)</script><img src=x onerror=alert(2)>`},
	{"javascript_url", "javascript:alert(3)"},
}

// Acceptance 2: every form of every page (the pages from the route table,
// the forms and their fields from the rendered HTML) gets each payload in
// each field. The answer is never 5xx; a refusal is a 4xx naming the field;
// anything echoed is escaped and valid UTF-8; and afterwards no text in the
// database holds invalid UTF-8 or a control character.
func TestEveryFormRefusesMalformedInput(t *testing.T) {
	for name, env := range map[string]map[string]string{
		"sqlite":   nil,
		"postgres": {"CONSOLE_DATABASE_URL": testdb.PostgresURL(t)},
	} {
		t.Run(name, func(t *testing.T) {
			s := newSite(t, env)
			hc := s.clients["everything"]
			seen := map[string]bool{}
			var forms []pageForm
			for _, rt := range s.routes() {
				if rt.method != http.MethodGet || strings.HasPrefix(rt.path, "/static/") || strings.HasSuffix(rt.path, ".csv") ||
					strings.HasSuffix(rt.path, "/file") || strings.HasSuffix(rt.path, ".png") {
					continue
				}
				page := s.path(rt.path)
				resp, body := fetch(t, hc, "GET", s.URL+page, nil, "en")
				if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
					continue
				}
				for _, f := range formsOf(page, body) {
					if !seen[f.key()] && safeToPost(f.action) {
						seen[f.key()] = true
						forms = append(forms, f)
					}
				}
			}
			if len(forms) < 10 {
				t.Fatalf("only %d distinct forms found", len(forms))
			}
			tried := 0
			for _, f := range forms {
				for i, target := range f.fields {
					if target.kind == "file" || target.kind == "submit" {
						continue
					}
					for _, p := range payloads {
						vals := url.Values{}
						for j, fl := range f.fields {
							v := fl.value
							if j == i {
								v = p.value
							}
							if fl.kind == "file" || ((fl.kind == "checkbox" || fl.kind == "radio") && j != i) {
								continue
							}
							vals.Add(fl.name, v)
						}
						resp, body := submit(t, hc, s.URL, f, vals)
						tried++
						what := fmt.Sprintf("%s %s (from %s) field %s = %s: %d", f.method, f.action, f.page, target.name, p.name, resp.StatusCode)
						if resp.StatusCode >= 500 {
							t.Errorf("%s: server error", what)
							continue
						}
						if !utf8.ValidString(body) || strings.ContainsRune(body, 0) {
							t.Errorf("%s: the page is not valid UTF-8 text", what)
						}
						if strings.Contains(body, "<script>alert(1)") || strings.Contains(body, "onerror=alert(2)>") {
							t.Errorf("%s: the payload is echoed unescaped", what)
						}
						malformed := p.name != "html" && p.name != "javascript_url" && p.name != "long"
						if malformed && resp.StatusCode < 400 && !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
							t.Errorf("%s: malformed text accepted", what)
						}
						if malformed && p.name != "oversized" && typedBox(target.kind) {
							checkFieldError(t, what, f, target.name, resp, body)
						}
						if resp.StatusCode >= 400 && resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusForbidden &&
							resp.StatusCode != http.StatusConflict && resp.StatusCode != http.StatusRequestEntityTooLarge && !strings.Contains(body, `class="error"`) && !strings.Contains(body, target.name) &&
							!strings.Contains(body, `role="alert"`) {
							t.Errorf("%s: refused without saying which field", what)
						}
					}
				}
			}
			t.Logf("%d forms, %d submissions", len(forms), tried)
			assertStoredTextClean(t, s.DB)
		})
	}
}

// typedBox reports whether a field of this kind is a box a person types
// into (the field error goes next to it); hidden fields, choices and
// buttons are not.
func typedBox(kind string) bool {
	switch kind {
	case "hidden", "checkbox", "radio", "select", "submit", "button", "file":
		return false
	}
	return true
}

// formsLeftToTheBackstop are the forms whose own validation does not yet
// apply the text rule: the request filter refuses their malformed values
// with a 400 page naming the field instead of an error by the box.
var formsLeftToTheBackstop = []string{
	"/login", "/account/", "/admin/", "/uploads/", "/stocks/:id/uploads", "/stocks/:id/threshold", "/alerts/",
	"/approvals/:id/approve", "/approvals/:id/withdraw", "/admin/approvals",
}

// checkFieldError asserts that a refused value of a typed box is answered
// by its form: 422 (400 for a search on a GET page) and the error element
// the form associates with the box (id NAME-error, as the Field component
// renders it), the other values kept.
func checkFieldError(t *testing.T, what string, f pageForm, field string, resp *http.Response, body string) {
	t.Helper()
	route := regexp.MustCompile(`/[0-9]+(/|$)`).ReplaceAllString(f.action, "/:id$1")
	for _, prefix := range formsLeftToTheBackstop {
		if strings.HasPrefix(route, prefix) {
			return
		}
	}
	want := http.StatusUnprocessableEntity
	if f.method == http.MethodGet && resp.StatusCode == http.StatusBadRequest {
		want = http.StatusBadRequest
	}
	if resp.StatusCode != want {
		t.Errorf("%s: want %d from the form's own validation", what, want)
		return
	}
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if doc.Find(`[id="`+field+`-error"]`).Length() == 0 {
		t.Errorf("%s: no error next to the field (no #%s-error)", what, field)
	}
	if doc.Find(`[name="`+field+`"]`).Length() == 0 {
		t.Errorf("%s: the form was not re-rendered with the field", what)
	}
}

func submit(t *testing.T, hc *http.Client, base string, f pageForm, vals url.Values) (*http.Response, string) {
	t.Helper()
	target := base + f.action
	if f.method == http.MethodGet {
		return fetch(t, hc, "GET", target+"?"+vals.Encode(), nil, "en")
	}
	if f.enctype == "multipart/form-data" {
		var body bytes.Buffer
		mw := newMultipart(&body, vals)
		req, _ := http.NewRequest("POST", target, &body)
		req.Header.Set("Content-Type", mw)
		req.Header.Set("Accept-Language", "en")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	return fetch(t, hc, "POST", target, vals, "en")
}

// assertStoredTextClean reads every text value of every table: none may
// hold invalid UTF-8 or a control character other than tab and line breaks.
func assertStoredTextClean(t *testing.T, db *database.DB) {
	t.Helper()
	q := "SELECT name FROM sqlite_master WHERE type = 'table'"
	if db.Dialect == database.Postgres {
		q = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
	}
	var tables []string
	if err := db.Gorm.Raw(q).Scan(&tables).Error; err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, table := range tables {
		if strings.HasPrefix(table, "sqlite_") || table == "stored_file_chunks" || table == "stored_files" {
			continue // file contents are bytes, not entered text
		}
		rows, err := db.SQL.Query(`SELECT * FROM "` + table + `"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				if str, ok := v.(string); ok {
					checked++
					if textcheck.Text(str, 0) != nil && !strings.HasPrefix(table, "river_") {
						t.Errorf("%s.%s holds malformed text %q", table, cols[i], textcheck.Clip(str, 80))
					}
				}
			}
		}
		rows.Close()
	}
	if checked == 0 {
		t.Fatal("no stored text checked")
	}
}

// The upload's report.csv, written by the one CSV cell writer, shows
// formula-like codes as text.
func TestDownloadsEscapeFormulas(t *testing.T) {
	s := newSite(t, nil)
	resp, body := fetch(t, s.clients["operator"], "GET", s.URL+"/uploads/"+s.params["/uploads/"]+"/report.csv", nil, "en")
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Cache-Control"), "no-store") {
		t.Fatalf("report: %d %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	records, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(body, "\uFEFF"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, r := range records[1:] {
		codes = append(codes, r[1])
	}
	for _, want := range []string{`'=HYPERLINK("http://evil.example")`, `'+cmd|' /C calc'!A0`, `'@SUM(A1)`, `'-2+3`} {
		found := false
		for _, c := range codes {
			found = found || c == want
		}
		if !found {
			t.Errorf("report lacks the escaped cell %q: %q", want, codes)
		}
	}
	for _, r := range records {
		for _, cell := range r {
			if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
				t.Errorf("cell %q would be a spreadsheet formula", cell)
			}
		}
	}
}

// Every file and directory of the data directory is owner-only, even when
// the directory existed before, world-readable, with files in it.
func TestDataDirectoryIsOwnerOnly(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "sandbox"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "old-notes.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := startConsole(t, map[string]string{"CONSOLE_DATA_DIR": dir})
	c.addUser(t, "olivia", "a-long-test-password", models.RoleOperator) // a write: the WAL exists
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		n++
		if info.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v", path, info.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"console.db", "session.key", "sandbox"} {
		if _, err := os.Stat(filepath.Join(dir, want)); err != nil {
			t.Errorf("expected %s in the data directory: %v", want, err)
		}
	}
	if n < 5 {
		t.Fatalf("only %d paths checked", n)
	}
}

// The in-process sandbox has no listener: no local port serves its codes.
func TestInProcessSandboxHasNoListener(t *testing.T) {
	c := startConsole(t, nil)
	if c.Sandbox == nil {
		t.Fatal("no sandbox in sandbox mode")
	}
	host := strings.TrimPrefix(c.URL, "http://")
	// The only TCP port this console serves is its own: try the sandbox's
	// inspection endpoint through it, and through every listening port the
	// process has that is not the console's.
	resp, _ := fetch(t, &http.Client{}, "GET", c.URL+"/_sandbox/stocks", nil, "")
	if resp.StatusCode == 200 {
		t.Fatal("the console serves the sandbox's inspection endpoint")
	}
	for _, port := range listeningPorts(t) {
		addr := net.JoinHostPort("127.0.0.1", port)
		if addr == host {
			continue
		}
		r, err := (&http.Client{}).Get("http://" + addr + "/_sandbox/stocks?codes=0")
		if err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				t.Fatalf("the sandbox answers on %s", addr)
			}
		}
	}
	// And the sandbox still works in-process: the demo stocks were read.
	if len(c.Sandbox.StockSummaries()) == 0 {
		t.Fatal("sandbox has no stocks")
	}
}

// listeningPorts lists the TCP ports in LISTEN state on loopback that this
// process (or any) has open, from /proc/net/tcp.
func listeningPorts(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/net/tcp")
	if err != nil {
		t.Skip("no /proc/self/net/tcp")
	}
	inodes := socketInodes()
	var ports []string
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] {
			continue
		}
		hostport := strings.Split(f[1], ":")
		var p int
		fmt.Sscanf(hostport[1], "%X", &p)
		ports = append(ports, fmt.Sprint(p))
	}
	return ports
}

// socketInodes are the socket inodes this process holds.
func socketInodes() map[string]bool {
	out := map[string]bool{}
	entries, _ := os.ReadDir("/proc/self/fd")
	for _, e := range entries {
		l, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err == nil && strings.HasPrefix(l, "socket:[") {
			out[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	return out
}

// newMultipart writes vals as a multipart form into body (with an empty
// file for a form's file field) and returns its content type.
func newMultipart(body *bytes.Buffer, vals url.Values) string {
	mw := multipart.NewWriter(body)
	for k, vs := range vals {
		for _, v := range vs {
			_ = mw.WriteField(k, v)
		}
	}
	fw, _ := mw.CreateFormFile("file", "codes.csv")
	fw.Write([]byte("CODE-1\r\n"))
	mw.Close()
	return mw.FormDataContentType()
}
