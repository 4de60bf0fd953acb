package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"voucherconsole/internal/models"
	"voucherconsole/internal/wxpay/sandbox"
)

// auditDoc fetches an audit page as the manager and parses it.
func auditDoc(t *testing.T, hc *http.Client, u string) *goquery.Document {
	t.Helper()
	resp, body := fetch(t, hc, "GET", u, nil, "")
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %d", u, resp.StatusCode)
	}
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func entryTexts(doc *goquery.Document) []string {
	var out []string
	doc.Find("#audit-entries > li").Each(func(_ int, s *goquery.Selection) {
		out = append(out, strings.Join(strings.Fields(s.Find("summary").Text()), " "))
	})
	return out
}

// Acceptance 4: the audit filter finds entries by action label (typed as
// shown, or chosen from the list), by WeChat stock ID and by stock name,
// and by the start of a username in any case; an intent and its outcome
// read as one operation; and no link on a page of mixed entries answers 404.
func TestAuditFindsWhatManagersSee(t *testing.T) {
	c := startConsole(t, nil)
	op := c.userClient(t, "olivia", models.RoleOperator)
	mgr := c.userClient(t, "Mia", models.RoleManager) // usernames are kept lowercase
	sup := c.userClient(t, "sue", models.RoleSupport)

	// Mixed entries: a deactivation (intent and outcome), a denied page,
	// a failed registration, a refresh, sign-ins, the demo registrations.
	id := stockRef(t, c, sandbox.SeedStockSending)
	_, page := fetch(t, op, "GET", c.URL+"/stocks/"+id+"/deactivate", nil, "en")
	resp, _ := fetch(t, op, "POST", c.URL+"/stocks/"+id+"/deactivate", url.Values{"deactivate_reason": {"审计测试"},
		"stock_id": {sandbox.SeedStockSending}, "form_token": {formToken(t, page)}}, "en")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("deactivate: %d", resp.StatusCode)
	}
	fetch(t, sup, "GET", c.URL+"/audit", nil, "")                                                                     // denied
	fetch(t, op, "POST", c.URL+"/stocks/register", url.Values{"kind": {"busifavor"}, "stock_id": {"9999999999"}}, "") // failure: unknown stock
	fetch(t, op, "POST", c.URL+"/stocks/"+stockRef(t, c, sandbox.SeedStockPaused)+"/refresh", nil, "")

	// By the action's label, typed as the page shows it.
	texts := entryTexts(auditDoc(t, mgr, c.URL+"/audit?"+url.Values{"action": {"失效批次"}}.Encode()))
	if len(texts) != 2 {
		t.Fatalf("action label 失效批次: %d entries %q", len(texts), texts)
	}
	// The action filter is a list of labels in the user's language.
	doc := auditDoc(t, mgr, c.URL+"/audit")
	if doc.Find(`select#action option[value="stock.deactivate"]`).Text() != "失效批次" {
		t.Fatalf("action list: %q", doc.Find("select#action").Text())
	}
	// The intent and its outcome read as one operation.
	for _, s := range texts {
		if !has(s, "#") || !(has(s, "意图") || has(s, "结果")) {
			t.Errorf("deactivation entry does not name the other half of its operation: %q", s)
		}
	}

	// By WeChat stock ID and by name: the stock's entries (its registration
	// as demo data, the deactivation) though they name it by console ID.
	for _, q := range []string{sandbox.SeedStockSending, "春季拿铁"} {
		texts := entryTexts(auditDoc(t, mgr, c.URL+"/audit?"+url.Values{"q": {q}}.Encode()))
		joined := strings.Join(texts, "\n")
		if len(texts) < 3 || !has(joined, "登记批次") || !has(joined, "失效批次") || !has(joined, "春季拿铁兑换批次") || !has(joined, sandbox.SeedStockSending) {
			t.Fatalf("search %q: %q", q, texts)
		}
	}
	// By the start of a username, in any case.
	texts = entryTexts(auditDoc(t, mgr, c.URL+"/audit?user=OLI"))
	if len(texts) == 0 {
		t.Fatal("user prefix OLI finds nothing")
	}
	for _, s := range texts {
		if !has(s, "olivia") {
			t.Fatalf("user prefix OLI: %q", s)
		}
	}

	// Every link on the page of mixed entries leads to a page that exists.
	doc = auditDoc(t, mgr, c.URL+"/audit")
	seen := map[string]bool{}
	doc.Find("a[href]").Each(func(_ int, s *goquery.Selection) {
		href, _ := s.Attr("href")
		if !strings.HasPrefix(href, "/") || seen[href] {
			return
		}
		seen[href] = true
	})
	if len(seen) < 10 {
		t.Fatalf("only %d links on the audit page", len(seen))
	}
	for href := range seen {
		resp, _ := fetch(t, mgr, "GET", c.URL+href, nil, "")
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode >= 500 {
			t.Errorf("link %s answers %d", href, resp.StatusCode)
		}
	}
	// The CSV export's header is in the user's language.
	_, csv := fetch(t, mgr, "GET", c.URL+"/audit/export.csv", nil, "en")
	if !strings.HasPrefix(csv, "\uFEFFSeq,Time (UTC),Time (local),") {
		t.Fatalf("export header: %q", csv[:min(len(csv), 80)])
	}
}
