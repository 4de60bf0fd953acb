package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startProcess runs the console binary with args and env until the test ends.
func startProcess(t *testing.T, env []string, args ...string) *syncBuffer {
	t.Helper()
	cmd := exec.Command(buildConsole(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	return &out
}

func waitHTTP(t *testing.T, u string, out *syncBuffer) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(u); err == nil {
			resp.Body.Close()
			return
		}
	}
	t.Fatalf("%s did not answer:\n%s", u, out.String())
}

// readEnvFile reads KEY=VALUE lines.
func readEnvFile(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var env []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			env = append(env, line)
		}
	}
	return env
}

// `console sandbox` serves alone: it refuses unsigned requests with 401
// SIGN_ERROR, answers the inspection endpoints in the shapes SPEC gives, and a
// console started with its sandbox.env creates a stock in it.
func TestSandboxCommand(t *testing.T) {
	dir := t.TempDir()
	sbAddr := freeAddr(t)
	sbOut := startProcess(t, nil, "sandbox", "--addr", sbAddr, "--dir", dir)
	waitHTTP(t, "http://"+sbAddr+"/_sandbox/stocks", sbOut)

	resp, err := http.Post("http://"+sbAddr+"/v3/marketing/favor/coupon-stocks", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	var apiErr struct{ Code, Message string }
	_ = json.NewDecoder(resp.Body).Decode(&apiErr)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || apiErr.Code != "SIGN_ERROR" {
		t.Fatalf("unsigned request: %d %+v", resp.StatusCode, apiErr)
	}

	env := append(readEnvFile(t, filepath.Join(dir, "sandbox.env")), "CONSOLE_DATA_DIR="+t.TempDir())
	if code, out, stderr := console(t, envMap(env), "a-long-password\n", "user", "add", "--username", "olivia", "--role", "operator"); code != 0 {
		t.Fatalf("user add: %s %s", out, stderr)
	}
	addr := freeAddr(t)
	cOut := startProcess(t, append(env, "CONSOLE_ADDR="+addr), "serve")
	waitHTTP(t, "http://"+addr+"/healthz", cOut)

	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar}
	if resp, err := hc.PostForm("http://"+addr+"/login", url.Values{"username": {"olivia"}, "password": {"a-long-password"}}); err != nil || resp.StatusCode != 200 {
		t.Fatalf("sign in: %v %v", resp, err)
	}
	loc, _ := time.LoadLocation("Asia/Shanghai")
	begin := time.Now().In(loc).AddDate(0, 0, 1)
	form := url.Values{
		"form_token": {"sandbox-command-test"}, "stock_name": {"独立沙箱批次"},
		"available_begin_time": {begin.Format("2006-01-02") + "T00:00"}, "available_end_time": {begin.AddDate(0, 0, 10).Format("2006-01-02") + "T00:00"},
		"max_coupons": {"10"}, "max_amount": {"100"}, "max_coupons_per_user": {"1"}, "coupon_amount": {"10"},
		"transaction_minimum": {"20"}, "available_merchants": {"1230000109"}, "no_cash": {"false"}, "stock_type": {"NORMAL"},
	}
	resp, err = hc.PostForm("http://"+addr+"/stocks/new", form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "独立沙箱批次") || !strings.Contains(resp.Request.URL.Path, "/stocks/") {
		t.Fatalf("create through the console: %d %s\n%s", resp.StatusCode, resp.Request.URL, cOut.String())
	}

	var stocks struct {
		Stocks []struct {
			Kind            string   `json:"kind"`
			StockID         string   `json:"stock_id"`
			ProductCouponID string   `json:"product_coupon_id"`
			StockBundleIDs  []string `json:"stock_bundle_ids"`
			Name            string   `json:"name"`
			State           string   `json:"state"`
			CouponCodeMode  string   `json:"coupon_code_mode"`
			TotalCount      *int64   `json:"total_count"`
			AvailableCount  *int64   `json:"available_count"`
			Codes           []string `json:"codes"`
		} `json:"stocks"`
	}
	getJSON(t, "http://"+sbAddr+"/_sandbox/stocks", &stocks)
	found := false
	for _, s := range stocks.Stocks {
		if s.TotalCount == nil || s.AvailableCount == nil || s.Kind == "" || s.StockID == "" {
			t.Fatalf("stock entry lacks fields: %+v", s)
		}
		if s.Kind == "favor" && s.Name == "独立沙箱批次" {
			found = true
		}
	}
	if !found {
		t.Fatal("the stock created through the console is not in the sandbox")
	}
	var reqs struct {
		Requests []struct {
			Endpoint  string `json:"endpoint"`
			RequestNo string `json:"request_no"`
			Count     int    `json:"count"`
			Identical *bool  `json:"identical"`
		} `json:"requests"`
	}
	getJSON(t, "http://"+sbAddr+"/_sandbox/requests", &reqs)
	if len(reqs.Requests) != 1 || reqs.Requests[0].Count != 1 || reqs.Requests[0].Identical == nil || !*reqs.Requests[0].Identical || reqs.Requests[0].RequestNo == "" {
		t.Fatalf("requests: %+v", reqs)
	}
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func envMap(env []string) map[string]string {
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}
