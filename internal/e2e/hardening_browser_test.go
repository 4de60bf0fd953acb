package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"voucherconsole/internal/browsertest"
)

// browserPayloads are script payloads a page that echoed input unescaped
// would run.
var browserPayloads = []string{
	`"><script>alert(1)</script><img src=x onerror=alert(2)><svg onload=alert(3)>`,
	`'-alert(4)-'</textarea><script>alert(5)</script>`,
	`javascript:alert(6)`,
}

// Acceptance 2, in a browser: every page with a form (found from the route
// table and the rendered HTML, as TestEveryFormRefusesMalformedInput finds
// them) gets script payloads in every text field and is submitted; the page
// that answers, echoing what was typed, must open no JavaScript dialog.
func TestBrowserPayloadsOpenNoDialog(t *testing.T) {
	s := newSite(t, nil)
	hc := s.clients["everything"]
	type target struct {
		page  string
		index int
		key   string
	}
	var targets []target
	seen := map[string]bool{}
	for _, rt := range s.routes() {
		if rt.method != http.MethodGet || strings.HasPrefix(rt.path, "/static/") || strings.HasSuffix(rt.path, ".csv") ||
			strings.HasSuffix(rt.path, "/file") || strings.HasSuffix(rt.path, ".png") {
			continue
		}
		pg := s.path(rt.path)
		resp, body := fetch(t, hc, "GET", s.URL+pg, nil, "en")
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			continue
		}
		for i, f := range formsOf(pg, body) {
			text := false
			for _, fl := range f.fields {
				switch fl.kind {
				case "text", "search", "hidden", "textarea", "url", "email", "tel", "datetime-local", "date":
					text = true
				}
			}
			if text && !seen[f.key()] && safeToPost(f.action) {
				seen[f.key()] = true
				targets = append(targets, target{page: pg, index: i, key: f.key()})
			}
		}
	}
	if len(targets) < 8 {
		t.Fatalf("only %d forms with text fields found", len(targets))
	}

	ctx := browsertest.New(t, 5*time.Minute)
	var mu sync.Mutex
	var opened []string
	current := ""
	go func() {
		for ev, err := range chromedp.Events(ctx, page.JavascriptDialogOpening) {
			if err != nil {
				return
			}
			mu.Lock()
			opened = append(opened, current+": "+ev.Message)
			mu.Unlock()
			go func() {
				_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
			}()
		}
	}()
	signInBrowser(t, ctx, s.URL, "u-all", "a-long-test-password")
	for _, tg := range targets {
		for _, p := range browserPayloads {
			mu.Lock()
			current = tg.key
			mu.Unlock()
			js, _ := json.Marshal(p)
			fill := `(function(){var f=document.forms[` + itoaInt(tg.index) + `]; if(!f) return false;
				for (var i=0;i<f.elements.length;i++){var e=f.elements[i]; var ty=(e.type||'').toLowerCase();
				if (e.tagName==='TEXTAREA'||['text','search','hidden','url','email','tel','number','date','datetime-local','password'].indexOf(ty)>=0){e.value=` + string(js) + `;}}
				HTMLFormElement.prototype.submit.call(f); return true;})()`
			if err := chromedp.Do(ctx, chromedp.Navigate(s.URL+tg.page)); err != nil {
				t.Fatalf("open %s: %v", tg.page, err)
			}
			if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fill)); err != nil {
				t.Fatalf("fill %s on %s: %v", tg.key, tg.page, err)
			}
			waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_ = chromedp.Do(waitCtx, chromedp.Sleep(200*time.Millisecond), chromedp.WaitReady(chromedp.CSS("body")))
			cancel()
		}
	}
	// Give a late dialog a moment to be reported.
	_ = chromedp.Do(ctx, chromedp.Sleep(300*time.Millisecond))
	mu.Lock()
	defer mu.Unlock()
	if len(opened) > 0 {
		t.Fatalf("JavaScript dialogs opened: %v", opened)
	}
	t.Logf("%d forms submitted with %d payloads each", len(targets), len(browserPayloads))
}

func itoaInt(n int) string { return itoa(int64(n)) }
