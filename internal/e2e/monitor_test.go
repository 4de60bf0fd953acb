package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"voucherconsole/internal/alerts"
	"voucherconsole/internal/audit"
	"voucherconsole/internal/models"
	"voucherconsole/internal/stocks"
	"voucherconsole/internal/testdb"
	"voucherconsole/internal/wxpay/sandbox"
)

// readLog counts the sandbox's stock reads (GET requests carry no request
// number, so /_sandbox/requests does not list them) with their arrival times.
type readLog struct {
	mu    sync.Mutex
	reads map[string][]time.Time // path → arrivals
}

func (l *readLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && !strings.HasPrefix(r.URL.Path, "/_sandbox/") {
			l.mu.Lock()
			l.reads[r.URL.Path] = append(l.reads[r.URL.Path], time.Now())
			l.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	})
}

func (l *readLog) of(sub string) []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []time.Time
	for p, ts := range l.reads {
		if strings.Contains(p, sub) {
			out = append(out, ts...)
		}
	}
	return out
}

// liveSandbox is a standalone sandbox over HTTP, its reads counted, and the
// settings that make a console in live mode talk to it.
func liveSandbox(t *testing.T) (*sandbox.Sandbox, *readLog, map[string]string) {
	t.Helper()
	crashKeysOnce.Do(func() { crashKeys, _ = sandbox.GenerateKeys() })
	sb, err := sandbox.New(sandbox.Options{Seed: true, Keys: crashKeys})
	if err != nil {
		t.Fatal(err)
	}
	log := &readLog{reads: map[string][]time.Time{}}
	ts := httptest.NewServer(log.wrap(sb.Handler()))
	t.Cleanup(func() { ts.Close(); sb.Close() })
	dir := t.TempDir()
	if err := sb.WriteFiles(dir, ts.URL); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range sandboxEnv(t, dir) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return sb, log, env
}

// Acceptance 2: with a 2-second sync interval and two console instances on
// one PostgreSQL database, a stock stopped at WeChat Pay (the sandbox's
// clock moved past its end) shows STOPPED without anyone pressing refresh,
// read by the system, with an audit entry by the system; the sandbox saw
// the stock read at most once per interval, never by both instances at once.
func TestStockSyncTwoInstances(t *testing.T) {
	sb, reads, env := liveSandbox(t)
	env["CONSOLE_DATABASE_URL"] = testdb.PostgresURL(t)
	env["CONSOLE_STOCK_SYNC_INTERVAL"] = "2s"
	env["CONSOLE_SESSION_KEY"] = "sync-test-session-secret-of-32-bytes-or-more"
	a := startConsole(t, env)
	st, err := a.Stocks.Register(context.Background(), audit.Context{Actor: "test"}, stocks.RegisterInput{
		Kind: models.KindProductCoupon, ProductCouponID: sandbox.SeedProductCoupon, StockID: sandbox.SeedStockSending})
	if err != nil {
		t.Fatal(err)
	}
	b := startConsole(t, env)
	hc := b.userClient(t, "sue", models.RoleSupport)
	page := b.URL + "/stocks/" + strconv.FormatInt(st.ID, 10)

	// Let both instances run a few intervals while the stock is SENDING.
	start := time.Now()
	waitFor(t, "three background reads", func() bool { return len(reads.of(sandbox.SeedStockSending)) >= 3 })
	_, body := fetch(t, hc, "GET", page, nil, "en")
	if !has(body, "background sync") {
		t.Fatalf("stock page does not say the background sync read it:\n%s", body)
	}

	if err := sb.Advance(100 * 24 * time.Hour); err != nil { // past the stock's end: STOPPED
		t.Fatal(err)
	}
	waitFor(t, "the stock page to show STOPPED", func() bool {
		_, body := fetch(t, hc, "GET", page, nil, "en")
		return has(body, "state-STOPPED")
	})
	elapsed := time.Since(start)

	var es []audit.Entry
	if err := a.DB.Gorm.Where("action = ? AND target_id = ?", stocks.ActionSyncStateChange, strconv.FormatInt(st.ID, 10)).
		Find(&es).Error; err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].Actor != stocks.SystemActor || !has(es[0].Detail, `"state":"STOPPED"`) || !has(es[0].Detail, `"from":"SENDING"`) {
		t.Fatalf("audit entries of the state change: %+v", es)
	}

	// One read per interval across both instances: consecutive reads are
	// an interval apart (less the spread of request latency), and there
	// are no more of them than intervals elapsed.
	got := reads.of(sandbox.SeedStockSending)
	for i := 1; i < len(got); i++ {
		if gap := got[i].Sub(got[i-1]); gap < time.Second {
			t.Errorf("reads %d and %d only %s apart", i-1, i, gap)
		}
	}
	if limit := int(elapsed/(2*time.Second)) + 2; len(got) > limit {
		t.Errorf("%d reads in %s, more than one per 2s interval", len(got), elapsed)
	}
	// A stopped stock cannot change any more: no further reads.
	n := len(reads.of(sandbox.SeedStockSending))
	time.Sleep(5 * time.Second)
	if m := len(reads.of(sandbox.SeedStockSending)); m != n {
		t.Errorf("a stopped stock was read %d more times", m-n)
	}
}

// weComReceiver is a local WeCom group robot: it fails the first request
// with a 500, then answers as the robot does.
type weComReceiver struct {
	mu       sync.Mutex
	attempts int
	messages []map[string]any
}

func (r *weComReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts++
	if r.attempts == 1 {
		http.Error(w, "busy", http.StatusInternalServerError)
		return
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	r.messages = append(r.messages, m)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"errcode":0,"errmsg":"ok"}`))
}

func (r *weComReceiver) counts() (int, []map[string]any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.attempts, append([]map[string]any(nil), r.messages...)
}

// Acceptance 3: with a local receiver as the WeCom webhook, a stock going
// below its threshold produces exactly one WeCom markdown message, retried
// when the receiver fails first, and none while the condition holds; the
// alert is in the console with an unread count, its delivery recorded.
func TestLowStockAlertToWeCom(t *testing.T) {
	rcv := &weComReceiver{}
	ts := httptest.NewServer(rcv)
	t.Cleanup(ts.Close)
	c := startConsole(t, map[string]string{
		"CONSOLE_ALERT_WECOM_WEBHOOK": ts.URL + "/cgi-bin/webhook/send?key=test-robot-key",
		"CONSOLE_STOCK_SYNC_INTERVAL": "1s",
		"CONSOLE_LOW_STOCK_THRESHOLD": "0", // no stock is below 0 available codes
	})
	var st models.Stock
	if err := c.DB.Gorm.Where("stock_id = ?", sandbox.SeedStockSending).Take(&st).Error; err != nil {
		t.Fatal(err)
	}
	if st.AvailableCount == nil || *st.AvailableCount != 2 {
		t.Fatalf("demo stock available: %v", st.AvailableCount)
	}
	time.Sleep(3 * time.Second) // a few evaluations: nothing is low
	if n, _ := rcv.counts(); n != 0 {
		var rows []alerts.Row
		c.DB.Gorm.Find(&rows)
		t.Fatalf("%d messages before any stock was low: %+v", n, rows)
	}

	// The stock's own threshold goes above its available codes.
	op := c.userClient(t, "olivia", models.RoleOperator)
	page := c.URL + "/stocks/" + strconv.FormatInt(st.ID, 10)
	resp, _ := fetch(t, op, "POST", page+"/threshold", map[string][]string{"low_stock_threshold": {"5"}}, "en")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("set threshold: %d", resp.StatusCode)
	}
	waitFor(t, "the WeCom message", func() bool { _, ms := rcv.counts(); return len(ms) == 1 })
	time.Sleep(4 * time.Second) // the condition holds: no more messages
	attempts, ms := rcv.counts()
	if attempts != 2 || len(ms) != 1 {
		t.Fatalf("%d attempts, %d messages; want 2 attempts (one failed), 1 message: %v", attempts, len(ms), ms)
	}
	md, _ := ms[0]["markdown"].(map[string]any)
	content, _ := md["content"].(string)
	if ms[0]["msgtype"] != "markdown" || !has(content, "券码库存不足") || !has(content, "春季拿铁兑换批次") || !has(content, "/stocks/") {
		t.Fatalf("message: %v", ms[0])
	}

	// In the console: the operator sees it, unread, on the alerts page.
	_, body := fetch(t, op, "GET", c.URL+"/alerts", nil, "en")
	if !has(body, "Codes running low") || !has(body, `id="alerts-unread"`) {
		t.Fatalf("alerts page:\n%s", body)
	}
	var ds []alerts.Delivery
	if err := c.DB.Gorm.Find(&ds).Error; err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].Status != alerts.DeliveryDelivered || ds[0].Attempts != 2 || has(ds[0].LastError, "test-robot-key") {
		t.Fatalf("deliveries: %+v", ds)
	}
	// Admins see the delivery record.
	adm := c.userClient(t, "ada", models.RoleAdmin)
	_, body = fetch(t, adm, "GET", c.URL+"/alerts", nil, "en")
	if !has(body, "WeCom group robot") || !has(body, "Delivered") {
		t.Fatalf("admin alerts page:\n%s", body)
	}
}
