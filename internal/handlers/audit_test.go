package handlers_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/database"
	"voucherconsole/internal/i18n"
	"voucherconsole/internal/models"
	"voucherconsole/internal/testdb"
)

func parseHTML(t *testing.T, body string) *goquery.Document {
	t.Helper()
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// shownSeqs lists the entries a page of /audit shows, in order.
func shownSeqs(doc *goquery.Document) []int64 {
	var out []int64
	doc.Find("#audit-entries details").Each(func(_ int, s *goquery.Selection) {
		n, _ := strconv.ParseInt(s.AttrOr("data-seq", ""), 10, 64)
		out = append(out, n)
	})
	return out
}

// appendEntries writes entries through audit.Append, as the console does.
func (h *harness) appendEntries(at time.Time, recs ...audit.Record) {
	h.t.Helper()
	for i, r := range recs {
		if _, err := audit.Append(context.Background(), h.db.Gorm, at.Add(time.Duration(i)*time.Minute), r); err != nil {
			h.t.Fatal(err)
		}
	}
}

// auditHead is the sequence number of the newest audit entry.
func (h *harness) auditHead() int64 {
	h.t.Helper()
	var seq int64
	if err := h.db.Gorm.Model(&audit.Entry{}).Select("COALESCE(MAX(seq), 0)").Scan(&seq).Error; err != nil {
		h.t.Fatal(err)
	}
	return seq
}

func stockRec(actor, id, reqNo string, outcome audit.Outcome) audit.Record {
	return audit.Record{
		Actor: actor, ActorRoles: []string{"operator"}, Action: "stock.create", TargetType: audit.TargetStock,
		TargetID: id, Outcome: outcome, WxRequestNo: reqNo, WxErrorCode: "PARAM_ERROR", WxRequestID: "08F1-REQ",
		ClientIP: "10.0.0.7", UserAgent: "Mozilla/5.0, \"test\"", RequestID: "rid-" + id, Detail: map[string]any{"stock_name": "春节, \"满100减10\""},
	}
}

func TestAuditPage(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		h := newHarness(t, db)
		b := h.auditHead() // the demo stocks' registrations come first
		h.addUser("mia", models.RoleManager)
		c := h.client()
		h.signIn(c, "mia", testPassword)
		// 2026-03-01 10:00 in Shanghai is 02:00 UTC.
		day := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
		h.appendEntries(day,
			stockRec("olivia", "42", "REQ_A_0001", audit.Success),
			stockRec("olivia", "43", "REQ_B_0002", audit.Failure),
			stockRec("sam", "42", "REQ_C_0003", audit.Pending),
		)

		resp, body := h.do(c, "GET", "/audit", nil, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("/audit: %d", resp.StatusCode)
		}
		doc := parseHTML(t, body)
		all := shownSeqs(doc)
		var times []string
		doc.Find("#audit-entries summary time").Each(func(_ int, s *goquery.Selection) { times = append(times, s.AttrOr("datetime", "")) })
		if len(all) < 5 || !slices.IsSortedFunc(times, func(a, b string) int { return strings.Compare(b, a) }) {
			t.Fatalf("entries %v at %v: want newest first", all, times)
		}
		// Entries b+3 to b+5, written last but dated March, come after those
		// of now.
		want := []int64{b + 2, b + 1}
		for seq := b; seq > 0; seq-- {
			want = append(want, seq)
		}
		want = append(want, b+5, b+4, b+3)
		if !slices.Equal(all, want) {
			t.Fatalf("entries %v, want %v", all, want)
		}
		if doc.Find("#audit-export").AttrOr("href", "") != "/audit/export.csv" {
			t.Fatalf("export link %q", doc.Find("#audit-export").AttrOr("href", ""))
		}

		// One stock's entries, expanded to their full detail.
		resp, body = h.do(c, "GET", "/audit?target_type=stock&target_id=42", nil, nil)
		doc = parseHTML(t, body)
		got := shownSeqs(doc)
		if resp.StatusCode != 200 || len(got) != 2 {
			t.Fatalf("stock 42: %d, entries %v", resp.StatusCode, got)
		}
		entry := doc.Find("#audit-entries li").First()
		text := entry.Text()
		for _, want := range []string{
			"sam", "REQ_C_0003", "PARAM_ERROR", "08F1-REQ", "10.0.0.7", `Mozilla/5.0, "test"`, "rid-42",
			"2026-03-01 10:02:00", "2026-03-01T02:02:00.000000Z", "待完成", "运营", "批次", "满100减10",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("entry detail lacks %q:\n%s", want, text)
			}
		}
		// Stock 42 is not in the console (the entries were written by the
		// test): no link to a page that would answer 404.
		if n := entry.Find("a.target-link").Length(); n != 0 {
			t.Errorf("%d target links to a stock that does not exist", n)
		}
		var e audit.Entry
		h.db.Gorm.Where("seq = ?", got[0]).Take(&e)
		if !strings.Contains(text, e.Hash) || !strings.Contains(text, e.PrevHash) {
			t.Error("entry detail lacks its hashes")
		}

		cases := []struct {
			query string
			want  int
		}{
			{"user=olivia", 2},
			{"user=olivia&outcome=failure", 1},
			{"action=stock.create", 3},
			{"q=req_b", 1},                                   // free text, any case, over request numbers
			{"q=4&from=2026-03-01&to=2026-03-01", 3},         // … and target IDs (of these three)
			{"action=stock.create&from=2026-03-01T10:01", 2}, // Shanghai time
			{"from=2026-03-01T10:00&to=2026-03-01T10:01", 1},
			{"from=2026-03-01T09:00&to=2026-03-01T10:00", 0},
			{"to=2026-02-28", 0},
			{"from=2026-03-01&to=2026-03-01", 3}, // a bare end date includes that day
		}
		for _, tc := range cases {
			resp, body := h.do(c, "GET", "/audit?"+tc.query, nil, nil)
			if got := shownSeqs(parseHTML(t, body)); resp.StatusCode != 200 || len(got) != tc.want {
				t.Errorf("%s: status %d, %d entries, want %d", tc.query, resp.StatusCode, len(got), tc.want)
			}
		}

		// Bad filter values come back with a 422, kept and explained.
		resp, body = h.do(c, "GET", "/audit?from=yesterday&outcome=maybe&user=olivia", nil, http.Header{"Accept-Language": {"en"}})
		doc = parseHTML(t, body)
		if resp.StatusCode != http.StatusUnprocessableEntity || doc.Find("#from-error").Text() == "" ||
			doc.Find("#outcome-error").Text() == "" || doc.Find("#user").AttrOr("value", "") != "olivia" {
			t.Fatalf("bad filter: %d from-error %q", resp.StatusCode, doc.Find("#from-error").Text())
		}
		resp, _ = h.do(c, "GET", "/audit?from=2026-03-02T00:00&to=2026-03-01T00:00", nil, nil)
		if resp.StatusCode != http.StatusUnprocessableEntity {
			t.Fatalf("reversed range: %d", resp.StatusCode)
		}
	})
}

func TestAuditPaging(t *testing.T) {
	h := newHarness(t, testdb.SQLite(t))
	h.addUser("mia", models.RoleManager)
	c := h.client()
	h.signIn(c, "mia", testPassword)
	var recs []audit.Record
	for i := range 120 {
		recs = append(recs, stockRec("olivia", fmt.Sprint(i), "", audit.Success))
	}
	h.appendEntries(time.Now().Add(-3*time.Hour), recs...)

	var seen []int64
	next := "/audit?user=olivia"
	for page := 0; next != ""; page++ {
		resp, body := h.do(c, "GET", next, nil, nil)
		doc := parseHTML(t, body)
		got := shownSeqs(doc)
		if resp.StatusCode != 200 || len(got) > 50 {
			t.Fatalf("page %d: %d, %d entries", page, resp.StatusCode, len(got))
		}
		if page > 0 && doc.Find("#audit-newer").Length() == 0 {
			t.Fatalf("page %d has no link to newer entries", page)
		}
		seen = append(seen, got...)
		next = doc.Find("#audit-older").AttrOr("href", "")
		if next != "" && !strings.Contains(next, "user=olivia") {
			t.Fatalf("older link %q lost the filter", next)
		}
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] >= seen[i-1] {
			t.Fatalf("entry %d after %d: pages overlap or are not newest first", seen[i], seen[i-1])
		}
	}
	if len(seen) != 120 {
		t.Fatalf("paged through %d entries, want 120", len(seen))
	}
	// Deep link to one entry, opened.
	target := seen[70]
	_, body := h.do(c, "GET", fmt.Sprintf("/audit?at=%d&open=%d", target, target), nil, nil)
	doc := parseHTML(t, body)
	first := doc.Find("#audit-entries details").First()
	if first.AttrOr("data-seq", "") != fmt.Sprint(target) || first.AttrOr("open", "missing") == "missing" {
		t.Fatalf("deep link shows %q open=%v", first.AttrOr("data-seq", ""), first.AttrOr("open", "missing"))
	}
}

// Acceptance 3: support and operator users get 403 on the audit log and its
// export, and each refusal is an audit entry.
func TestAuditRefusedToOthers(t *testing.T) {
	h := newHarness(t, testdb.SQLite(t))
	for _, r := range []models.Role{models.RoleOperator, models.RoleSupport, models.RoleAdmin} {
		h.addUser(string(r)+"-user", r)
	}
	for _, who := range []string{"operator-user", "support-user", "admin-user"} {
		c := h.client()
		h.signIn(c, who, testPassword)
		for _, path := range []string{"/audit", "/audit/export.csv", "/audit/export.csv?user=x", "/audit/verify"} {
			before := h.countAudit(audit.ActionAccessDenied)
			resp, body := h.do(c, "GET", path, nil, nil)
			if resp.StatusCode != http.StatusForbidden || strings.Contains(body, "seq,occurred_at_utc") {
				t.Fatalf("%s on %s: %d", who, path, resp.StatusCode)
			}
			var e audit.Entry
			h.db.Gorm.Order("seq DESC").Take(&e)
			if h.countAudit(audit.ActionAccessDenied) != before+1 || e.Outcome != audit.Denied || e.Actor != who ||
				e.TargetID != "GET "+strings.Split(path, "?")[0] {
				t.Fatalf("%s on %s: refusal audited as %+v", who, path, e)
			}
		}
	}
}

// Acceptance 4: the integrity page reports intact on a clean log and names
// the entry altered behind the application's back.
func TestAuditVerifyPage(t *testing.T) {
	// Entry numbers are counted from the last entry before the test's own
	// (the console registered the sandbox's demo stocks, audited).
	cases := []struct {
		name, tamper string
		zh, en       []string
	}{
		{"altered", "UPDATE audit_entries SET actor = 'mallory' WHERE seq = %[1]d",
			[]string{"哈希链在第 {bad} 条处断开", "被改动过", "截至第 {before} 条"},
			[]string{"The chain breaks at entry {bad}", "was altered", "up to entry {before}"}},
		{"deleted", "DELETE FROM audit_entries WHERE seq = %[1]d",
			[]string{"哈希链在第 {bad} 条处断开", "被删除了", "截至第 {before} 条"},
			[]string{"The chain breaks at entry {bad}", "was deleted", "up to entry {before}"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			testdb.Each(t, func(t *testing.T, db *database.DB) {
				h := newHarness(t, db)
				base := h.auditHead()
				h.addUser("mia", models.RoleManager) // entry base+1
				c := h.client()
				h.signIn(c, "mia", testPassword) // entry base+2
				h.appendEntries(time.Now(), stockRec("olivia", "42", "", audit.Success), stockRec("olivia", "43", "", audit.Success))
				last, bad := base+4, base+3
				numbers := strings.NewReplacer("{bad}", fmt.Sprint(bad), "{before}", fmt.Sprint(bad-1))

				resp, body := h.do(c, "GET", "/audit/verify", nil, nil)
				if resp.StatusCode != 200 || parseHTML(t, body).Find("#verify-never").Length() != 1 || parseHTML(t, body).Find("#verify-start").Length() != 1 {
					t.Fatalf("before any verification: %d\n%s", resp.StatusCode, body)
				}
				resp, body = verifyNow(t, h, c)
				result := parseHTML(t, body).Find("#verify-result").Text()
				if resp.StatusCode != 200 || !strings.Contains(result, fmt.Sprintf("完整：截至第 %d 条", last)) || !strings.Contains(result, fmt.Sprintf("共校验 %d 条", last)) {
					t.Fatalf("clean log: %d %q", resp.StatusCode, result)
				}
				_, body = h.do(c, "GET", "/audit/verify", nil, http.Header{"Accept-Language": {"en"}})
				if result := parseHTML(t, body).Find("#verify-result").Text(); !strings.Contains(result, fmt.Sprintf("Intact up to entry %d at", last)) {
					t.Fatalf("clean log in English: %q", result)
				}

				testdb.DropAuditGuard(t, db)
				if err := db.Gorm.Exec(fmt.Sprintf(tc.tamper, bad)).Error; err != nil {
					t.Fatal(err)
				}
				resp, body = verifyNow(t, h, c)
				doc := parseHTML(t, body)
				result = doc.Find("#verify-result").Text()
				for _, want := range tc.zh {
					if want = numbers.Replace(want); !strings.Contains(result, want) {
						t.Errorf("tampered log: %q lacks %q", result, want)
					}
				}
				if resp.StatusCode != 200 || doc.Find("#verify-entry").Length() != 1 {
					t.Fatalf("tampered log: %d, entry link %d", resp.StatusCode, doc.Find("#verify-entry").Length())
				}
				_, body = h.do(c, "GET", "/audit/verify", nil, http.Header{"Accept-Language": {"en"}})
				result = parseHTML(t, body).Find("#verify-result").Text()
				for _, want := range tc.en {
					if want = numbers.Replace(want); !strings.Contains(result, want) {
						t.Errorf("tampered log in English: %q lacks %q", result, want)
					}
				}
			})
		})
	}
}

// verifyNow starts a verification from the integrity page and returns the
// page once it has finished (it runs in the background).
func verifyNow(t *testing.T, h *harness, c *http.Client) (*http.Response, string) {
	t.Helper()
	resp, _ := h.do(c, "POST", "/audit/verify", url.Values{}, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/audit/verify" {
		t.Fatalf("start verification: %d", resp.StatusCode)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		resp, body := h.do(c, "GET", "/audit/verify", nil, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("integrity page: %d", resp.StatusCode)
		}
		if parseHTML(t, body).Find("#verify-running").Length() == 0 {
			return resp, body
		}
		if time.Now().After(deadline) {
			t.Fatal("the verification did not finish")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAuditExport(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *database.DB) {
		h := newHarness(t, db)
		h.addUser("mia", models.RoleManager)
		c := h.client()
		h.signIn(c, "mia", testPassword)
		tricky := stockRec("olivia", "42", "REQ,1", audit.Failure)
		tricky.UserAgent = "Mozilla/5.0 (X11, Linux)\n\"quoted\""
		h.appendEntries(time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC),
			tricky, stockRec("olivia", "43", "", audit.Success), stockRec("sam", "42", "", audit.Success))

		resp, body := h.do(c, "GET", "/audit/export.csv?target_type=stock&target_id=42", nil, nil)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") ||
			!strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment; filename=\"audit-") {
			t.Fatalf("export: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition"))
		}
		raw := []byte(body)
		if !bytes.HasPrefix(raw, []byte("\xEF\xBB\xBF")) {
			t.Fatal("export lacks the UTF-8 BOM")
		}
		rows, err := csv.NewReader(bytes.NewReader(raw[3:])).ReadAll()
		if err != nil {
			t.Fatalf("invalid CSV: %v", err)
		}
		// The header is in the user's language (Chinese by default), one
		// name per column.
		zh := i18n.MustLoad().For(i18n.Chinese)
		for i, name := range audit.ExportHeader {
			if i < len(rows[0]) && rows[0][i] != zh.T("audit.csv."+name) {
				t.Errorf("column %d header %q, want %q", i, rows[0][i], zh.T("audit.csv."+name))
			}
		}
		if rows[0][0] != "序号" || len(rows[0]) != len(audit.ExportHeader) || len(rows) != 3 {
			t.Fatalf("header %v, %d rows", rows[0], len(rows))
		}
		col := func(n string) int { return slices.Index(audit.ExportHeader, n) }
		last := rows[2]
		if last[col("user_agent")] != tricky.UserAgent || last[col("wx_request_no")] != "REQ,1" ||
			last[col("occurred_at_local")] != "2026-03-01 10:00:00 +08:00" || rows[1][col("actor")] != "sam" ||
			last[col("hash_scheme")] != "2" {
			t.Fatalf("rows %q", rows[1:])
		}

		// The export is itself audited, with its filter.
		var e audit.Entry
		if err := h.db.Gorm.Where("action = ?", audit.ActionAuditExport).Take(&e).Error; err != nil {
			t.Fatal(err)
		}
		var d struct {
			Filter map[string]string `json:"filter"`
		}
		_ = json.Unmarshal([]byte(e.Detail), &d)
		if e.Actor != "mia" || e.Outcome != audit.Success || d.Filter["target_id"] != "42" || d.Filter["target_type"] != "stock" {
			t.Fatalf("export audited as %+v", e)
		}

		// An unfiltered export covers the entries before its own.
		_, body = h.do(c, "GET", "/audit/export.csv", nil, nil)
		rows, _ = csv.NewReader(strings.NewReader(strings.TrimPrefix(body, "\uFEFF"))).ReadAll()
		var n int64
		h.db.Gorm.Model(&audit.Entry{}).Count(&n)
		if int64(len(rows)) != n-1+1 || rows[1][col("action")] != audit.ActionAuditExport {
			t.Fatalf("full export: %d rows for %d entries; newest %v", len(rows), n, rows[1])
		}

		resp, _ = h.do(c, "GET", "/audit/export.csv?"+url.Values{"from": {"soon"}}.Encode(), nil, nil)
		if resp.StatusCode != http.StatusUnprocessableEntity {
			t.Fatalf("export with a bad filter: %d", resp.StatusCode)
		}
	})
}
