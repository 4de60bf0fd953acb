package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"voucherconsole/internal/testdb"
	"voucherconsole/internal/wxpay/sandbox"
)

// proc is a process of the console binary.
type proc struct {
	t        *testing.T
	cmd      *exec.Cmd
	addr     string
	out, err syncBuffer
	done     chan struct{}
}

func startProc(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, done: make(chan struct{})}
	p.cmd = exec.Command(buildConsole(t), args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.err
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill() })
	return p
}

// kill ends the process with SIGKILL: no shutdown code runs.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// waitHTTP waits until url answers 200.
func (p *proc) waitHTTP(url string) {
	p.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			p.t.Fatalf("process exited:\n%s", p.err.String())
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.t.Fatalf("%s did not answer:\n%s", url, p.err.String())
}

// startSandbox runs `console sandbox` and returns its base URL and the
// CONSOLE_WXPAY_* settings of its sandbox.env.
func startSandbox(t *testing.T, flags ...string) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	addr := freeAddr(t)
	p := startProc(t, nil, append([]string{"sandbox", "--addr", addr, "--dir", dir}, flags...)...)
	base := "http://" + addr
	p.waitHTTP(base + "/_sandbox/stocks?codes=0")
	f, err := os.Open(filepath.Join(dir, sandbox.EnvFileName))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var env []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' { // shell single quotes
			v = strings.ReplaceAll(v[1:len(v)-1], `'\''`, "'")
		}
		env = append(env, k+"="+v)
	}
	return base, env
}

// startServe runs `console serve` with env and waits until it answers.
func startServe(t *testing.T, env []string) (*proc, string) {
	t.Helper()
	addr := freeAddr(t)
	p := startProc(t, append(env, "CONSOLE_ADDR="+addr, "CONSOLE_LOG_LEVEL=warn"))
	p.addr = addr
	p.waitHTTP("http://" + addr + "/healthz")
	return p, "http://" + addr
}

func addOperator(t *testing.T, env []string) {
	t.Helper()
	cmd := exec.Command(buildConsole(t), "user", "add", "--username", "olivia", "--role", "operator")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader("a-long-test-password\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("user add: %v\n%s", err, out)
	}
}

// web is a signed-in operator's HTTP client on one console.
type web struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func signIn(t *testing.T, base string) *web {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	w := &web{t: t, base: base, hc: &http.Client{Jar: jar, Timeout: 60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	resp := w.post("/login", url.Values{"username": {"olivia"}, "password": {"a-long-test-password"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in: %d", resp.StatusCode)
	}
	return w
}

func (w *web) post(path string, form url.Values) *http.Response {
	w.t.Helper()
	resp, err := w.hc.PostForm(w.base+path, form)
	if err != nil {
		w.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func (w *web) get(path string) (int, string) {
	w.t.Helper()
	req, _ := http.NewRequest("GET", w.base+path, nil)
	req.Header.Set("Accept-Language", "en")
	resp, err := w.hc.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// registerStock registers the sandbox's SENDING upload-mode stock and
// returns its page path.
func (w *web) registerStock() string {
	w.t.Helper()
	resp := w.post("/stocks/register", url.Values{"kind": {"product_coupon"},
		"product_coupon_id": {sandbox.SeedProductCoupon}, "stock_id": {sandbox.SeedStockSending}})
	if resp.StatusCode != http.StatusSeeOther {
		w.t.Fatalf("register stock: %d", resp.StatusCode)
	}
	return resp.Header.Get("Location")
}

// upload checks and starts a file of n codes, returning the upload's path.
func (w *web) upload(stockPath, prefix string, n int) string {
	w.t.Helper()
	var file bytes.Buffer
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&file, "%s-%07d\n", prefix, i)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("file", prefix+".csv")
	fw.Write(file.Bytes())
	mw.Close()
	req, _ := http.NewRequest("POST", w.base+stockPath+"/uploads", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := w.hc.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		w.t.Fatalf("upload %s: %d", prefix, resp.StatusCode)
	}
	path := resp.Header.Get("Location")
	if resp := w.post(path+"/start", url.Values{}); resp.StatusCode != http.StatusSeeOther {
		w.t.Fatalf("start %s: %d", path, resp.StatusCode)
	}
	return path
}

type progressJSON struct {
	Status       string `json:"status"`
	CodesDone    int64  `json:"codes_done"`
	CodesTotal   int64  `json:"codes_total"`
	BatchesTotal int64  `json:"batches_total"`
	Ended        bool   `json:"ended"`
}

func (w *web) progress(path string) (progressJSON, error) {
	resp, err := w.hc.Get(w.base + path + "/progress")
	if err != nil {
		return progressJSON{}, err
	}
	defer resp.Body.Close()
	var p progressJSON
	err = json.NewDecoder(resp.Body).Decode(&p)
	return p, err
}

func (w *web) waitEnded(path string, timeout time.Duration) progressJSON {
	w.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		p, err := w.progress(path)
		if err == nil && p.Ended {
			return p
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("upload %s did not end within %s: %+v %v", path, timeout, p, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

var reportCount = regexp.MustCompile(`id="(report-[a-z-]+)">([0-9,]+)<`)

// report reads an ended upload's report counts off its page and checks that
// they reconcile: rows read = uploaded + invalid + duplicate + already on
// WeChat + failed (+ not sent).
func (w *web) report(path string) map[string]int64 {
	w.t.Helper()
	_, body := w.get(path)
	counts := map[string]int64{}
	for _, m := range reportCount.FindAllStringSubmatch(body, -1) {
		n, _ := strconv.ParseInt(strings.ReplaceAll(m[2], ",", ""), 10, 64)
		counts[m[1]] = n
	}
	sum := counts["report-uploaded"] + counts["report-invalid"] + counts["report-duplicate"] +
		counts["report-already"] + counts["report-failed"] + counts["report-not-sent"]
	if counts["report-rows"] == 0 || counts["report-rows"] != sum || !strings.Contains(body, `id="upload-reconciles"`) {
		w.t.Fatalf("report of %s does not reconcile: %v", path, counts)
	}
	return counts
}

// sandboxState reads the sandbox's inspection endpoints.
func sandboxState(t *testing.T, base string) (codes map[string]int, requests []sandbox.RequestInfo) {
	t.Helper()
	var stocks struct{ Stocks []sandbox.StockInfo }
	var reqs struct{ Requests []sandbox.RequestInfo }
	for path, v := range map[string]any{"/_sandbox/stocks": &stocks, "/_sandbox/requests": &reqs} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(v)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	codes = map[string]int{}
	for _, s := range stocks.Stocks {
		if s.StockID == sandbox.SeedStockSending {
			for _, c := range s.Codes {
				codes[c]++
			}
		}
	}
	return codes, reqs.Requests
}

// assertExactlyOnce checks that the sandbox holds each of the n codes
// prefix-… exactly once and saw no request number with two bodies.
func assertExactlyOnce(t *testing.T, sbURL string, prefixes []string, n int) []sandbox.RequestInfo {
	t.Helper()
	codes, reqs := sandboxState(t, sbURL)
	for c, k := range codes {
		if k != 1 {
			t.Fatalf("sandbox holds %s %d times", c, k)
		}
	}
	for _, p := range prefixes {
		for i := 1; i <= n; i++ {
			if c := fmt.Sprintf("%s-%07d", p, i); codes[c] != 1 {
				t.Fatalf("sandbox does not hold %s", c)
			}
		}
	}
	for _, r := range reqs {
		if !r.Identical {
			t.Fatalf("request number %s arrived with different bodies", r.RequestNo)
		}
	}
	return reqs
}

// Acceptance 3: the console process is killed (SIGKILL) while an upload is
// sending; started again, it finishes the upload on its own. The sandbox, a
// process of its own that outlives the console, saw no request number with
// two different bodies and holds each code once; the report reconciles.
func TestUploadSurvivesSIGKILL(t *testing.T) {
	sbURL, sbEnv := startSandbox(t, "--latency", "20ms")
	env := append(sbEnv, "CONSOLE_DATA_DIR="+t.TempDir())
	addOperator(t, env)
	console, base := startServe(t, env)
	w := signIn(t, base)
	stock := w.registerStock()
	const n = 30_000 // 150 batches: 3 s at the default 50 requests/s
	up := w.upload(stock, "CRASH", n)

	var at progressJSON
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		p, err := w.progress(up)
		if err == nil && p.CodesDone >= n/5 {
			at = p
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("upload did not get going: %+v %v\n%s", p, err, console.err.String())
		}
	}
	console.kill()
	t.Logf("killed the console with %d of %d codes sent", at.CodesDone, n)

	// Restart on the same data directory; nobody touches the upload.
	_, base = startServe(t, env)
	w = signIn(t, base)
	start := time.Now()
	p := w.waitEnded(up, 90*time.Second)
	t.Logf("finished %s after the restart", time.Since(start).Round(100*time.Millisecond))
	if p.Status != "finished" || p.CodesDone != n {
		t.Fatalf("after restart: %+v", p)
	}
	counts := w.report(up)
	if counts["report-uploaded"] != n || counts["report-failed"] != 0 {
		t.Fatalf("report %v", counts)
	}
	reqs := assertExactlyOnce(t, sbURL, []string{"CRASH"}, n)
	resent := 0
	for _, r := range reqs {
		if r.Count > 1 {
			resent++
		}
	}
	t.Logf("%d request numbers for %d batches; %d resent after the crash with the same body", len(reqs), p.BatchesTotal, resent)
	if int64(len(reqs)) != p.BatchesTotal {
		t.Fatalf("%d request numbers for %d batches", len(reqs), p.BatchesTotal)
	}
}

// Acceptance 5: two console processes on one PostgreSQL share the job queue:
// no batch is sent by both, both send, and their combined rate stays within
// the configured limit (50 requests/s, the upload endpoints' default; the
// sandbox answers 429 above it, and saw every request number once).
func TestTwoConsolesOnePostgres(t *testing.T) {
	dbURL := testdb.PostgresURL(t)
	sbURL, sbEnv := startSandbox(t, "--rate-limit", "50")
	envA := append(append([]string{}, sbEnv...), "CONSOLE_DATABASE_URL="+dbURL, "CONSOLE_DATA_DIR="+t.TempDir())
	envB := append(append([]string{}, sbEnv...), "CONSOLE_DATABASE_URL="+dbURL, "CONSOLE_DATA_DIR="+t.TempDir())
	addOperator(t, envA)
	_, baseA := startServe(t, envA)
	_, baseB := startServe(t, envB)
	a, b := signIn(t, baseA), signIn(t, baseB)
	stock := a.registerStock()
	// Eight uploads of 25 batches: each console works four jobs at a time,
	// so both must take some.
	const n = 5_000
	prefixes := []string{"TWOA1", "TWOB1", "TWOA2", "TWOB2", "TWOA3", "TWOB3", "TWOA4", "TWOB4"}
	var ups []string
	for i, p := range prefixes {
		w := a
		if i%2 == 1 {
			w = b
		}
		ups = append(ups, w.upload(stock, p, n))
	}
	for i, up := range ups {
		w := b
		if i%2 == 1 {
			w = a
		}
		if p := w.waitEnded(up, 90*time.Second); p.Status != "finished" || p.CodesDone != n {
			t.Fatalf("%s: %+v", up, p)
		}
		if counts := w.report(up); counts["report-uploaded"] != n {
			t.Fatalf("%s report %v", up, counts)
		}
	}
	reqs := assertExactlyOnce(t, sbURL, prefixes, n)
	if len(reqs) != len(prefixes)*n/200 {
		t.Fatalf("%d request numbers, want %d", len(reqs), len(prefixes)*n/200)
	}
	for _, r := range reqs {
		if r.Count != 1 {
			t.Fatalf("request %s arrived %d times: sent twice, or throttled by the sandbox", r.RequestNo, r.Count)
		}
	}

	// Who sent what, and when, from the shared database.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT sent_by, done_at FROM upload_batches ORDER BY done_at")
	if err != nil {
		t.Fatal(err)
	}
	senders := map[string]int{}
	var times []time.Time
	for rows.Next() {
		var by string
		var at time.Time
		if err := rows.Scan(&by, &at); err != nil {
			t.Fatal(err)
		}
		senders[by]++
		times = append(times, at)
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	if len(senders) != 2 {
		t.Fatalf("batches sent by %v, want both consoles", senders)
	}
	peak, j := 0, 0
	for i := range times {
		for times[i].Sub(times[j]) >= time.Second {
			j++
		}
		peak = max(peak, i-j+1)
	}
	span := times[len(times)-1].Sub(times[0])
	t.Logf("senders %v; %d batches in %s (%.1f/s), peak %d in a second", senders, len(times), span.Round(time.Millisecond),
		float64(len(times)-1)/span.Seconds(), peak)
	// Replies are recorded a little after the request; allow for the
	// requests in flight.
	if peak > 50+4 || span < time.Duration(float64(len(times)-1)/50*0.9*float64(time.Second)) {
		t.Fatalf("combined rate above the limit: peak %d in a second, %d batches in %s", peak, len(times), span)
	}
}
