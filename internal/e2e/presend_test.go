package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/models"
	"voucherconsole/internal/presend"
	"voucherconsole/internal/wxpay/sandbox"
)

// presendForm is a filled pre-send form for one of the sandbox's bundles.
func presendForm(bundle, openid, token string) url.Values {
	return url.Values{
		"product_coupon_id": {sandbox.SeedBundleCoupon}, "stock_bundle_id": {bundle}, "appid": {sandbox.DemoAppID},
		"openid": {openid}, "attach": {"会员日门店活动"}, "form_token": {token},
	}
}

// e2eOpenID is a well-formed OpenID unique to a test.
func e2eOpenID(i int) string { return fmt.Sprintf("oE2eUser%02dQ7pWm2LrN8vK4sZc", i) }

var tokenRE = regexp.MustCompile(`<textarea id="presend-token"[^>]*>([^<]+)</textarea>`)

// A token is shown with its expiry time and a countdown; once five minutes
// have passed on the console's and the sandbox's clocks the page says it has
// expired. The same form submitted twice makes one request number.
func TestPresendIssueAndExpire(t *testing.T) {
	c := startClockConsole(t)
	hc := c.userClient(t, "olivia", models.RoleOperator)
	resp, page := fetch(t, hc, "GET", c.URL+"/presend", nil, "en")
	if resp.StatusCode != 200 || !has(page, sandbox.SeedBundleMemberDay) || !has(page, `value="`+sandbox.DemoAppID+`"`) || !has(page, `name="openid"`) {
		t.Fatalf("form: %d\n%s", resp.StatusCode, page)
	}
	form := presendForm(sandbox.SeedBundleMemberDay, e2eOpenID(1), formToken(t, page))
	resp, page = fetch(t, hc, "POST", c.URL+"/presend", form, "en") // answered with the token page
	loc := between(page, `data-permalink="`, `"`)
	m := tokenRE.FindStringSubmatch(page)
	if resp.StatusCode != 200 || m == nil || !has(page, `id="copy-token"`) || !has(page, `id="presend-countdown">5:00<`) ||
		!has(page, `id="presend-expires-at"`) || !has(page, "Valid until") || !has(page, "/static/presend.js") {
		t.Fatalf("token page: %d\n%s", resp.StatusCode, page)
	}
	tok := m[1]
	info, ok := c.Sandbox.Token(tok)
	if !ok || !info.Valid || info.OpenID != e2eOpenID(1) {
		t.Fatalf("sandbox token %+v", info)
	}
	if !has(page, info.SendRequestNo) || !has(page, presend.Mask(e2eOpenID(1))) || has(page, e2eOpenID(1)) {
		t.Fatal("the token page should show the request number and the masked OpenID only")
	}

	if !strings.HasPrefix(loc, "/presend/") {
		t.Fatalf("no link to the token page: %q", loc)
	}
	// The same form again: the same token, no second request.
	resp, again := fetch(t, hc, "POST", c.URL+"/presend", form, "en")
	if m2 := tokenRE.FindStringSubmatch(again); resp.StatusCode != 200 || m2 == nil || m2[1] != tok || !has(again, loc) {
		t.Fatalf("second submit: %d\n%s", resp.StatusCode, again)
	}
	// Its own page shows it too.
	if _, own := fetch(t, hc, "GET", c.URL+loc, nil, "en"); !has(own, tok) {
		t.Fatal("the token page does not show the token")
	}
	// Both stocks of the bundle list it, masked; another bundle's stock does not.
	for _, stockID := range []string{sandbox.SeedBundleStockSmall, sandbox.SeedBundleStockLarge} {
		_, sp := fetch(t, hc, "GET", c.URL+"/stocks/"+stockRef(t, c.consoleServer, stockID), nil, "en")
		list := between(sp, `id="stock-presends"`, "</table>")
		if !has(list, presend.Mask(e2eOpenID(1))) || !has(list, info.SendRequestNo) || has(list, tok) || !has(sp, `id="presend-for-stock"`) {
			t.Fatalf("stock %s page:\n%s", stockID, sp)
		}
	}
	if _, sp := fetch(t, hc, "GET", c.URL+"/stocks/"+stockRef(t, c.consoleServer, sandbox.SeedBundleStockLimited), nil, "en"); has(sp, info.SendRequestNo) {
		t.Fatal("another bundle's stock lists the token")
	}
	reqs := sandboxRequests(c.consoleServer, sandbox.EndpointPreSendCouponBundle)
	if len(reqs) != 1 || reqs[info.SendRequestNo] != 1 {
		t.Fatalf("requests %v", reqs)
	}

	c.advance(t, 4*time.Minute)
	_, page = fetch(t, hc, "GET", c.URL+loc, nil, "en")
	if !has(page, `id="presend-countdown">1:00<`) || has(page, `<p class="notice" id="presend-expired" role="status">`) {
		t.Fatalf("after 4 minutes:\n%s", page)
	}
	c.advance(t, time.Minute)
	_, page = fetch(t, hc, "GET", c.URL+loc, nil, "en")
	if !has(page, `<p class="notice" id="presend-expired" role="status">This token expired at`) || has(page, `id="copy-token"`) || has(page, tok) {
		t.Fatalf("after 5 minutes:\n%s", page)
	}
	if info, _ := c.Sandbox.Token(tok); info.Valid {
		t.Fatal("the sandbox still holds the token valid")
	}
	_, zh := fetch(t, hc, "GET", c.URL+loc, nil, "")
	if !has(zh, "已于") || !has(zh, "过期") {
		t.Fatalf("Chinese expired page:\n%s", zh)
	}
	// The lists say so too.
	_, list := fetch(t, hc, "GET", c.URL+"/presend", nil, "en")
	if !has(list, "expired") || !has(list, presend.Mask(e2eOpenID(1))) {
		t.Fatalf("list:\n%s", list)
	}
}

// WeChat Pay's refusals are shown with their code, message and Request-ID:
// budget exhausted, per-user limit, a paused stock, and 429 (whose request
// the same form resends, OpenID field empty).
func TestPresendErrors(t *testing.T) {
	c := startClockConsole(t)
	hc := c.userClient(t, "olivia", models.RoleOperator)
	post := func(form url.Values, lang string) (*http.Response, string) {
		return fetch(t, hc, "POST", c.URL+"/presend", form, lang)
	}
	for i := range 3 { // the limited bundle has a budget of three
		resp, _ := post(presendForm(sandbox.SeedBundleLimited, e2eOpenID(10+i), newTestToken()), "en")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("limited bundle, send %d: %d", i+1, resp.StatusCode)
		}
	}
	if resp, _ := post(presendForm(sandbox.SeedBundleMemberDay, e2eOpenID(1), newTestToken()), "en"); resp.StatusCode != http.StatusOK {
		t.Fatalf("member day: %d", resp.StatusCode)
	}
	for _, tc := range []struct {
		name    string
		form    url.Values
		message string
	}{
		{"budget exhausted", presendForm(sandbox.SeedBundleLimited, e2eOpenID(20), newTestToken()), "已达到发放总上限 3"},
		{"per-user limit", presendForm(sandbox.SeedBundleMemberDay, e2eOpenID(1), newTestToken()), "每人限领次数 1"},
		{"paused stock", presendForm(sandbox.SeedBundlePaused, e2eOpenID(2), newTestToken()), "不处于 SENDING 状态"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := post(tc.form, "en")
			if resp.StatusCode != http.StatusBadRequest || !has(body, `id="wx-error-code">INVALID_REQUEST`) || !has(body, tc.message) ||
				!has(body, `id="wx-request-id"`) || has(body, tc.form.Get("openid")) || !has(body, presend.Mask(tc.form.Get("openid"))) ||
				!has(body, "会员日门店活动") {
				t.Fatalf("%d\n%s", resp.StatusCode, body)
			}
		})
	}

	_ = c.Sandbox.SetFaults(sandbox.Faults{ThrottleRate: 1})
	form := presendForm(sandbox.SeedBundleMemberDay, e2eOpenID(3), newTestToken())
	resp, body := post(form, "en")
	if resp.StatusCode != http.StatusTooManyRequests || !has(body, `id="wx-error-code">RATELIMIT_EXCEEDED`) || !has(body, `id="wx-request-id"`) ||
		!has(body, `id="presend-notice"`) || has(body, e2eOpenID(3)) || !has(body, `value="`+form.Get("form_token")+`"`) {
		t.Fatalf("429: %d\n%s", resp.StatusCode, body)
	}
	_ = c.Sandbox.SetFaults(sandbox.Faults{})
	form.Set("openid", "") // as the page left it
	resp, page := post(form, "en")
	m := tokenRE.FindStringSubmatch(page)
	if resp.StatusCode != 200 || m == nil {
		t.Fatalf("resend: %d\n%s", resp.StatusCode, page)
	}
	if info, _ := c.Sandbox.Token(m[1]); info.OpenID != e2eOpenID(3) {
		t.Fatal("the resend did not reach the same user")
	}

	// Field errors before any call: every one at once, values kept.
	bad := url.Values{"product_coupon_id": {sandbox.SeedBundleCoupon}, "stock_bundle_id": {"999"}, "appid": {"app"}, "openid": {"bad/openid"},
		"attach": {strings.Repeat("附", 151)}, "form_token": {newTestToken()}}
	resp, body = post(bad, "en")
	if resp.StatusCode != http.StatusUnprocessableEntity || !has(body, `id="appid-error"`) || !has(body, `id="openid-error"`) ||
		!has(body, `id="attach-error"`) || !has(body, "at most 150 characters; it has 151") || !has(body, `value="bad/openid"`) {
		t.Fatalf("field errors: %d\n%s", resp.StatusCode, body)
	}
	bad = presendForm("999999", e2eOpenID(4), newTestToken())
	resp, body = post(bad, "en")
	if resp.StatusCode != http.StatusUnprocessableEntity || !has(body, `id="stock_bundle_id-error"`) || !has(body, "not registered") {
		t.Fatalf("unknown bundle: %d\n%s", resp.StatusCode, body)
	}
}

// The full OpenID appears nowhere after the call: not in the database (its
// file, its WAL, any row), the log, or any page — token page, lists, stock
// pages, the audit log and its export. (The sandbox's own state, under
// DATA_DIR/sandbox, is WeChat Pay's side and keeps it, as WeChat Pay does.)
func TestPresendOpenIDNowhere(t *testing.T) {
	c := startClockConsole(t)
	hc := c.userClient(t, "olivia", models.RoleOperator)
	mgr := c.userClient(t, "mia", models.RoleManager)
	id := e2eOpenID(42)
	var pages []string
	_, page := fetch(t, hc, "GET", c.URL+"/presend", nil, "en")
	resp, page := fetch(t, hc, "POST", c.URL+"/presend", presendForm(sandbox.SeedBundleMemberDay, id, formToken(t, page)), "en")
	pages = append(pages, page)
	if resp.StatusCode != 200 || tokenRE.FindStringSubmatch(page) == nil {
		t.Fatalf("token page: %d", resp.StatusCode)
	}
	// A refused call with the same OpenID (one per user), and a 429 left pending.
	_, body := fetch(t, hc, "POST", c.URL+"/presend", presendForm(sandbox.SeedBundleMemberDay, id, newTestToken()), "en")
	pages = append(pages, body)
	_ = c.Sandbox.SetFaults(sandbox.Faults{ThrottleRate: 1})
	_, body = fetch(t, hc, "POST", c.URL+"/presend", presendForm(sandbox.SeedBundleLimited, id, newTestToken()), "")
	pages = append(pages, body)
	_ = c.Sandbox.SetFaults(sandbox.Faults{})

	for _, u := range []string{"/presend", "/stocks/" + stockRef(t, c.consoleServer, sandbox.SeedBundleStockLarge),
		"/stocks/" + stockRef(t, c.consoleServer, sandbox.SeedBundleStockLimited), "/presend/1", "/presend/2", "/presend/3"} {
		_, body := fetch(t, hc, "GET", c.URL+u, nil, "en")
		pages = append(pages, body)
	}
	for _, u := range []string{"/audit", "/audit?q=PS", "/audit/export.csv"} {
		resp, body := fetch(t, mgr, "GET", c.URL+u, nil, "en")
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", u, resp.StatusCode)
		}
		pages = append(pages, body)
	}
	masked := presend.Mask(id)
	if !has(strings.Join(pages, ""), masked) {
		t.Fatal("the masked OpenID is not shown anywhere")
	}
	for i, p := range pages {
		if has(p, id) {
			t.Fatalf("page %d shows the full OpenID:\n%s", i, p)
		}
	}
	if has(c.log.String(), id) {
		t.Fatalf("the log holds the full OpenID:\n%s", c.log.String())
	}
	for _, table := range []string{"presend_tokens", "wx_operations", "audit_entries", "stocks", "stock_bundles", "users"} {
		var rows []map[string]any
		if err := c.DB.Gorm.Table(table).Find(&rows).Error; err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if has(fmt.Sprint(r), id) {
				t.Fatalf("%s holds the full OpenID: %v", table, r)
			}
		}
	}
	// The database files themselves, byte for byte (pages freed or not).
	if err := c.DB.SQL.Ping(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(c.dir, "console.db*"))
	if len(files) == 0 {
		t.Fatal("no database file found")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte(id)) {
			t.Fatalf("%s holds the full OpenID", f)
		}
	}
	// The pending one kept it sealed, as it must to be resent.
	var pending presend.Token
	c.DB.Gorm.Where("status = ?", presend.StatusPending).Take(&pending)
	if pending.OpenIDSealed == "" || pending.OpenIDMasked != masked {
		t.Fatalf("pending pre-send %+v", pending)
	}
	var entries []audit.Entry
	c.DB.Gorm.Where("action = ?", presend.ActionIssue).Find(&entries)
	for _, e := range entries {
		if !has(e.Detail, masked) {
			t.Fatalf("audit entry without the masked OpenID: %+v", e)
		}
	}
}
