package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"voucherconsole/internal/wxpay/sandbox"
)

// runner is one load run: the crowd, what it has learnt of the consoles
// (stock IDs, uploads started) and what it measured.
type runner struct {
	o        options
	accounts []account
	log      io.Writer
	tr       *http.Transport
	stats    *stats
	runID    string // unique per run: code prefixes

	requests atomic.Int64
	cancel   context.CancelFunc

	// Learnt in setup: the console's IDs of the stocks the crowd uses.
	uploadStocks []int64 // product-coupon and merchant stocks in upload mode
	allStocks    []int64
	pausedStock  int64 // the one a crowd may deactivate
	deactivated  atomic.Bool

	createMu   sync.Mutex
	nextCreate time.Time

	codeSeq atomic.Int64
	mu      sync.Mutex
	uploads []uploadRef
}

type uploadRef struct{ base, path string }

func newRunner(o options, accounts []account, log io.Writer) *runner {
	return &runner{
		o: o, accounts: accounts, log: log, stats: newStats(),
		tr: &http.Transport{MaxIdleConns: 2 * o.users, MaxIdleConnsPerHost: 2 * o.users, IdleConnTimeout: time.Minute},
		// Base 36 of the start time: codes of two runs never collide.
		runID: strings.ToUpper(strconv.FormatInt(time.Now().UnixMilli()%(36*36*36*36*36*36), 36)),
	}
}

// client is one signed-in user on one console.
type client struct {
	r    *runner
	base string
	acct account
	hc   *http.Client
	lang string
	rng  *rand.Rand
}

func (r *runner) newClient(base string, a account, seed uint64) *client {
	jar, _ := cookiejar.New(nil)
	lang := "zh-CN,zh;q=0.9"
	if seed%3 == 0 {
		lang = "en"
	}
	return &client{r: r, base: base, acct: a, lang: lang, rng: rand.New(rand.NewPCG(seed, uint64(time.Now().UnixNano()))),
		hc: &http.Client{Jar: jar, Transport: r.tr, Timeout: r.o.timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var errBudget = errors.New("request budget spent")

// reply is what a request returned.
type reply struct {
	status   int
	body     string
	location string
}

// do sends one request as a browser on the console's own pages would
// (same-origin: Origin and Sec-Fetch-Site on every request, a Referer), and
// records its latency under route and, when its status is not one of
// expect, an error.
func (c *client) do(ctx context.Context, route, method, path string, body io.Reader, ctype string, expect ...int) (reply, error) {
	if c.r.requests.Add(1) > c.r.o.maxRequests {
		c.r.cancel()
		return reply{}, errBudget
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return reply{}, err
	}
	req.Header.Set("Accept-Language", c.lang)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Referer", c.base+"/")
	req.Header.Set("User-Agent", "console-loadtest/1")
	if method != http.MethodGet {
		req.Header.Set("Origin", c.base)
		req.Header.Set("Content-Type", ctype)
	}
	start := time.Now()
	resp, err := c.hc.Do(req)
	var rep reply
	if err == nil {
		var b []byte
		b, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		rep = reply{status: resp.StatusCode, body: string(b), location: resp.Header.Get("Location")}
	}
	elapsed := time.Since(start)
	if err != nil {
		if ctx.Err() != nil {
			return rep, ctx.Err() // the run ended mid-request: not the console's fault
		}
		c.r.stats.fail(route, 0, err.Error())
		return rep, err
	}
	c.r.stats.observe(route, elapsed)
	if !slices.Contains(expect, rep.status) {
		c.r.stats.fail(route, rep.status, summary(rep.body))
		return rep, fmt.Errorf("%s: status %d", route, rep.status)
	}
	return rep, nil
}

func (c *client) get(ctx context.Context, route, path string, expect ...int) (reply, error) {
	if len(expect) == 0 {
		expect = []int{http.StatusOK}
	}
	return c.do(ctx, route, http.MethodGet, path, nil, "", expect...)
}

func (c *client) post(ctx context.Context, route, path string, form url.Values, expect ...int) (reply, error) {
	return c.do(ctx, route, http.MethodPost, path, strings.NewReader(form.Encode()), "application/x-www-form-urlencoded", expect...)
}

var titleRe = regexp.MustCompile(`(?s)<title>(.*?)</title>`)

// summary names a failed reply: its page title, or its first bytes.
func summary(body string) string {
	if m := titleRe.FindStringSubmatch(body); m != nil {
		return strings.TrimSpace(html.UnescapeString(m[1]))
	}
	if len(body) > 120 {
		body = body[:120]
	}
	return strings.TrimSpace(body)
}

func (c *client) signIn(ctx context.Context) error {
	if _, err := c.get(ctx, "GET /login", "/login"); err != nil {
		return err
	}
	rep, err := c.post(ctx, "POST /login", "/login", url.Values{"username": {c.acct.username}, "password": {c.acct.password}}, http.StatusSeeOther)
	if err != nil {
		return fmt.Errorf("sign in %s on %s: %w (%s)", c.acct.username, c.base, err, summary(rep.body))
	}
	return nil
}

var (
	formTokenRe = regexp.MustCompile(`name="form_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="form_token"`)
	stockLinkRe = regexp.MustCompile(`href="/stocks/(\d+)"`)
	olderRe     = regexp.MustCompile(`href="([^"]+)" id="audit-older"|id="audit-older" href="([^"]+)"`)
	nextPageRe  = regexp.MustCompile(`href="([^"]+)" id="next-page"|id="next-page" href="([^"]+)"`)
)

func firstGroup(re *regexp.Regexp, s string) string {
	m := re.FindStringSubmatch(s)
	for _, g := range m[min(1, len(m)):] {
		if g != "" {
			return html.UnescapeString(g)
		}
	}
	return ""
}

// setup registers the sandbox's demo stocks (once registered, the console
// refuses them again with 422, which is fine here) and learns their IDs.
func (r *runner) setup(ctx context.Context) error {
	var a *account
	for i := range r.accounts {
		if role := r.accounts[i].role; role == roleOperator || role == roleManager {
			a = &r.accounts[i]
			break
		}
	}
	if a == nil {
		return errors.New("the crowd needs an operator or a manager")
	}
	c := r.newClient(r.o.urls[0], *a, 1)
	if err := c.signIn(ctx); err != nil {
		return err
	}
	type reg struct {
		kind, pcID, stockID, bundle string
		upload, paused              bool
	}
	regs := []reg{
		{kind: "product_coupon", pcID: sandbox.SeedProductCoupon, stockID: sandbox.SeedStockSending, upload: true},
		{kind: "busifavor", stockID: sandbox.SeedBusifavorUpload, upload: true},
		{kind: "product_coupon", pcID: sandbox.SeedProductCoupon, stockID: sandbox.SeedStockPaused, paused: true},
		{kind: "product_coupon", pcID: sandbox.SeedBundleCoupon, stockID: sandbox.SeedBundleStockLarge, bundle: sandbox.SeedBundleMemberDay},
		{kind: "product_coupon", pcID: sandbox.SeedBundleCoupon, stockID: sandbox.SeedBundleStockSmall, bundle: sandbox.SeedBundleMemberDay},
		{kind: "favor", stockID: sandbox.SeedFavorStock},
	}
	for _, g := range regs {
		form := url.Values{"kind": {g.kind}, "stock_id": {g.stockID}, "product_coupon_id": {g.pcID}, "stock_bundle_id": {g.bundle}}
		if _, err := c.post(ctx, "POST /stocks/register", "/stocks/register", form, http.StatusSeeOther, http.StatusUnprocessableEntity); err != nil {
			return err
		}
		rep, err := c.get(ctx, "GET /stocks?q", "/stocks?q="+g.stockID)
		if err != nil {
			return err
		}
		m := stockLinkRe.FindStringSubmatch(rep.body)
		if m == nil {
			return fmt.Errorf("stock %s is not listed after registering it", g.stockID)
		}
		id, _ := strconv.ParseInt(m[1], 10, 64)
		r.allStocks = append(r.allStocks, id)
		if g.upload {
			r.uploadStocks = append(r.uploadStocks, id)
		}
		if g.paused {
			r.pausedStock = id
		}
	}
	r.stats.reset() // setup is not part of the measurement
	r.requests.Store(0)
	return nil
}

// run starts the crowd, stops it after the duration and gathers the result.
func (r *runner) run(ctx context.Context) *result {
	ctx, r.cancel = context.WithCancel(ctx)
	defer r.cancel()
	mem := watchMemory(ctx, r.o.pids)

	// Everyone signs in first (argon2id is heavy on purpose), then the
	// clock starts.
	fmt.Fprintf(r.log, "signing in %d users on %s …\n", r.o.users, strings.Join(r.o.urls, ", "))
	clients := make([]*client, r.o.users)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range clients {
		a := r.accounts[i%len(r.accounts)]
		c := r.newClient(r.o.urls[i%len(r.o.urls)], a, uint64(i+2))
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if c.signIn(ctx) == nil {
				clients[i] = c
			}
		})
	}
	wg.Wait()
	fmt.Fprintf(r.log, "%d users working for %s …\n", r.o.users, r.o.duration)
	runCtx, stopRun := context.WithTimeout(ctx, r.o.duration)
	defer stopRun()
	start := time.Now()
	for _, c := range clients {
		if c != nil {
			wg.Go(func() { c.work(runCtx) })
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	res := r.stats.result(elapsed)
	res.users, res.instances = r.o.users, len(r.o.urls)
	res.uploads = r.awaitUploads(ctx)
	res.memory = mem()
	if r.o.sandbox != "" {
		res.sandbox = checkSandbox(ctx, r.o.sandbox)
	}
	return res
}

// action is one thing a user does: a few requests.
type action struct {
	weight float64
	do     func(c *client, ctx context.Context)
}

// mixFor is each role's mix.
func mixFor(role string) []action {
	return map[string][]action{
		roleSupport: {
			{3, (*client).browse}, {3, (*client).search}, {2, (*client).filter}, {4, (*client).stockPage}, {2, (*client).uploadPage},
		},
		roleOperator: {
			{2, (*client).browse}, {2, (*client).search}, {1, (*client).filter}, {3, (*client).stockPage}, {1.5, (*client).uploadPage},
			{1, (*client).upload}, {0.5, (*client).createStock}, {0.3, (*client).registerAgain}, {0.6, (*client).presend}, {0.3, (*client).deactivate},
		},
		roleManager: {
			{1, (*client).browse}, {1, (*client).search}, {1, (*client).stockPage}, {1, (*client).uploadPage}, {0.5, (*client).upload},
			{0.3, (*client).createStock}, {0.3, (*client).presend},
			{3, (*client).audit}, {2, (*client).auditFiltered}, {1, (*client).auditOlder}, {0.3, (*client).auditExport},
		},
		roleAdmin: {
			{3, (*client).adminUsers}, {1, (*client).account},
		},
	}[role]
}

func (c *client) work(ctx context.Context) {
	mix := mixFor(c.acct.role)
	var total float64
	for _, a := range mix {
		total += a.weight
	}
	for ctx.Err() == nil {
		x := c.rng.Float64() * total
		for _, a := range mix {
			if x -= a.weight; x < 0 {
				a.do(c, ctx)
				break
			}
		}
		if c.r.o.think > 0 {
			pause := time.Duration(c.rng.Int64N(int64(2 * c.r.o.think)))
			select {
			case <-ctx.Done():
			case <-time.After(pause):
			}
		}
	}
}

func (c *client) pick(ids []int64) string { return strconv.FormatInt(ids[c.rng.IntN(len(ids))], 10) }

func (c *client) browse(ctx context.Context) {
	rep, err := c.get(ctx, "GET /stocks", "/stocks")
	if err == nil {
		if next := firstGroup(nextPageRe, rep.body); next != "" && c.rng.IntN(2) == 0 {
			c.get(ctx, "GET /stocks (next page)", next)
		}
	}
}

var searches = []string{"1000000", "10000000010", "1265", "拿铁", "满", "latte", "1700000001", "会员日", "no-such-stock"}

func (c *client) search(ctx context.Context) {
	c.get(ctx, "GET /stocks?q", "/stocks?q="+url.QueryEscape(searches[c.rng.IntN(len(searches))]))
}

func (c *client) filter(ctx context.Context) {
	kinds := []string{"product_coupon", "busifavor", "favor", ""}
	states := []string{"SENDING", "PAUSED", "DEACTIVATED", ""}
	q := url.Values{"kind": {kinds[c.rng.IntN(len(kinds))]}, "state": {states[c.rng.IntN(len(states))]}}
	c.get(ctx, "GET /stocks?kind&state", "/stocks?"+q.Encode())
}

func (c *client) stockPage(ctx context.Context) {
	c.get(ctx, "GET /stocks/{id}", "/stocks/"+c.pick(c.r.allStocks))
}

// uploadPage opens an upload someone started on this console's database,
// and its progress.
func (c *client) uploadPage(ctx context.Context) {
	c.r.mu.Lock()
	n := len(c.r.uploads)
	var u uploadRef
	if n > 0 {
		u = c.r.uploads[c.rng.IntN(n)]
	}
	c.r.mu.Unlock()
	if n == 0 {
		c.stockPage(ctx)
		return
	}
	if _, err := c.get(ctx, "GET /uploads/{id}", u.path); err == nil {
		c.get(ctx, "GET /uploads/{id}/progress", u.path+"/progress")
	}
}

// upload checks a small code file (one duplicate and one bad row among
// new codes) and starts it.
func (c *client) upload(ctx context.Context) {
	stock := "/stocks/" + c.pick(c.r.uploadStocks)
	if _, err := c.get(ctx, "GET /stocks/{id}/uploads/new", stock+"/uploads/new"); err != nil {
		return
	}
	var file bytes.Buffer
	file.WriteString("code\r\n")
	first := ""
	for range c.r.o.codes {
		code := fmt.Sprintf("LT%s-%07d", c.r.runID, c.r.codeSeq.Add(1))
		if first == "" {
			first = code
		}
		file.WriteString(code + "\r\n")
	}
	file.WriteString(first + "\r\nbad code!\r\n")
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("file", "codes-"+c.r.runID+".csv")
	fw.Write(file.Bytes())
	mw.Close()
	rep, err := c.do(ctx, "POST /stocks/{id}/uploads", http.MethodPost, stock+"/uploads", &body, mw.FormDataContentType(), http.StatusSeeOther)
	if err != nil {
		return
	}
	path := rep.location
	if _, err := c.get(ctx, "GET /uploads/{id}", path); err != nil {
		return
	}
	if _, err := c.post(ctx, "POST /uploads/{id}/start", path+"/start", url.Values{}, http.StatusSeeOther); err != nil {
		return
	}
	c.r.mu.Lock()
	c.r.uploads = append(c.r.uploads, uploadRef{base: c.base, path: path})
	c.r.mu.Unlock()
	c.get(ctx, "GET /uploads/{id}/progress", path+"/progress")
}

// createStock creates a voucher stock (document 003), at most one every
// two seconds across the crowd: WeChat Pay allows 60 a minute per merchant.
func (c *client) createStock(ctx context.Context) {
	c.r.createMu.Lock()
	now := time.Now()
	ok := now.After(c.r.nextCreate)
	if ok {
		c.r.nextCreate = now.Add(2 * time.Second)
	}
	c.r.createMu.Unlock()
	if !ok {
		c.stockPage(ctx)
		return
	}
	rep, err := c.get(ctx, "GET /stocks/new", "/stocks/new")
	if err != nil {
		return
	}
	loc, _ := time.LoadLocation("Asia/Shanghai")
	begin := time.Now().In(loc).AddDate(0, 0, 1)
	form := url.Values{
		"form_token":           {firstGroup(formTokenRe, rep.body)},
		"stock_name":           {fmt.Sprintf("压测满30减10%d", c.rng.IntN(1000))},
		"comment":              {"load test"},
		"available_begin_time": {begin.Format("2006-01-02") + "T00:00"},
		"available_end_time":   {begin.AddDate(0, 0, 30).Format("2006-01-02") + "T23:59"},
		"max_coupons":          {"100"},
		"max_amount":           {"1000.00"},
		"max_coupons_per_user": {"1"},
		"prevent_api_abuse":    {"true"},
		"coupon_amount":        {"10"},
		"transaction_minimum":  {"30.00"},
		"available_merchants":  {sandbox.MerchantID},
		"no_cash":              {"false"},
		"stock_type":           {"NORMAL"},
		"description":          {"满30减10"},
	}
	if rep, err = c.post(ctx, "POST /stocks/new", "/stocks/new", form, http.StatusSeeOther); err == nil {
		c.get(ctx, "GET /stocks/{id}", rep.location)
	}
}

// registerAgain opens the register form and posts a stock already
// registered: the console refuses it with 422 and says so.
func (c *client) registerAgain(ctx context.Context) {
	if _, err := c.get(ctx, "GET /stocks/register", "/stocks/register"); err != nil {
		return
	}
	c.post(ctx, "POST /stocks/register (already registered)", "/stocks/register", url.Values{"kind": {"product_coupon"},
		"product_coupon_id": {sandbox.SeedProductCoupon}, "stock_id": {sandbox.SeedStockSending}}, http.StatusUnprocessableEntity)
}

const openIDAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// presend issues a pre-send token for a new user of the member-day bundle.
func (c *client) presend(ctx context.Context) {
	rep, err := c.get(ctx, "GET /presend", "/presend")
	if err != nil {
		return
	}
	openid := []byte("oLT")
	for len(openid) < 28 {
		openid = append(openid, openIDAlphabet[c.rng.IntN(len(openIDAlphabet))])
	}
	c.post(ctx, "POST /presend", "/presend", url.Values{"product_coupon_id": {sandbox.SeedBundleCoupon},
		"stock_bundle_id": {sandbox.SeedBundleMemberDay}, "appid": {sandbox.DemoAppID}, "openid": {string(openid)},
		"attach": {"load test"}, "form_token": {firstGroup(formTokenRe, rep.body)}}, http.StatusOK)
}

// deactivate opens the paused stock's deactivation page; the first user to
// find the form there deactivates it (once per crowd: it stays deactivated).
func (c *client) deactivate(ctx context.Context) {
	path := "/stocks/" + strconv.FormatInt(c.r.pausedStock, 10) + "/deactivate"
	rep, err := c.get(ctx, "GET /stocks/{id}/deactivate", path)
	if err != nil || !strings.Contains(rep.body, `name="deactivate_reason"`) || c.r.deactivated.Swap(true) {
		return
	}
	c.post(ctx, "POST /stocks/{id}/deactivate", path, url.Values{"deactivate_reason": {"压测:活动提前结束"},
		"stock_id": {sandbox.SeedStockPaused}, "form_token": {firstGroup(formTokenRe, rep.body)}}, http.StatusSeeOther)
}

func (c *client) audit(ctx context.Context) { c.get(ctx, "GET /audit", "/audit") }

func (c *client) auditFiltered(ctx context.Context) {
	filters := []url.Values{
		{"action": {"upload.check"}}, {"outcome": {"failure"}}, {"target_type": {"stock"}},
		{"user": {c.acct.username}}, {"q": {"LT"}}, {"action": {"stock.create"}, "outcome": {"success"}},
	}
	c.get(ctx, "GET /audit?filter", "/audit?"+filters[c.rng.IntN(len(filters))].Encode())
}

func (c *client) auditOlder(ctx context.Context) {
	rep, err := c.get(ctx, "GET /audit", "/audit")
	if err != nil {
		return
	}
	for range 3 {
		older := firstGroup(olderRe, rep.body)
		if older == "" {
			return
		}
		if rep, err = c.get(ctx, "GET /audit (older page)", older); err != nil {
			return
		}
	}
}

// auditExport exports the entries of the last hour, as a manager reviewing
// a shift would.
func (c *client) auditExport(ctx context.Context) {
	loc, _ := time.LoadLocation("Asia/Shanghai")
	from := time.Now().In(loc).Add(-time.Hour).Format("2006-01-02T15:04")
	c.get(ctx, "GET /audit/export.csv", "/audit/export.csv?"+url.Values{"from": {from}}.Encode())
}

var userLinkRe = regexp.MustCompile(`href="/admin/users/(\d+)"`)

// adminUsers lists the users and opens one.
func (c *client) adminUsers(ctx context.Context) {
	rep, err := c.get(ctx, "GET /admin/users", "/admin/users")
	if err != nil {
		return
	}
	if ids := userLinkRe.FindAllStringSubmatch(rep.body, -1); len(ids) > 0 {
		c.get(ctx, "GET /admin/users/{id}", "/admin/users/"+ids[c.rng.IntN(len(ids))][1])
	}
}

func (c *client) account(ctx context.Context) { c.get(ctx, "GET /account", "/account") }

// awaitUploads waits (up to -wait) for the uploads the crowd started to
// end, and counts them by status.
func (r *runner) awaitUploads(ctx context.Context) map[string]int {
	out := map[string]int{}
	if len(r.uploads) == 0 {
		return out
	}
	var a *account
	for i := range r.accounts {
		if role := r.accounts[i].role; role != roleAdmin {
			a = &r.accounts[i]
			break
		}
	}
	clients := map[string]*client{}
	deadline := time.Now().Add(r.o.wait)
	pending := slices.Clone(r.uploads)
	for len(pending) > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		var still []uploadRef
		for _, u := range pending {
			c := clients[u.base]
			if c == nil {
				c = r.newClient(u.base, *a, 0)
				if err := c.signIn(ctx); err != nil {
					out["unknown"] += len(pending)
					return out
				}
				clients[u.base] = c
			}
			st, ended := progressOf(ctx, c, u.path)
			if ended {
				out[st]++
			} else {
				still = append(still, u)
			}
		}
		pending = still
		if len(pending) > 0 {
			time.Sleep(500 * time.Millisecond)
		}
	}
	if len(pending) > 0 {
		out["still sending"] += len(pending)
	}
	return out
}
