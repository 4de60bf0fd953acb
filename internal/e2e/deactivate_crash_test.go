package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"voucherconsole/internal/audit"
	"voucherconsole/internal/database"
	"voucherconsole/internal/deactivate"
	"voucherconsole/internal/models"
	"voucherconsole/internal/presend"
	"voucherconsole/internal/testdb"
	"voucherconsole/internal/wxpay/sandbox"
)

var (
	consoleBinOnce sync.Once
	consoleBin     string
	consoleBinErr  error
	crashKeysOnce  sync.Once
	crashKeys      *sandbox.Keys
)

// buildConsoleBinary compiles cmd/console once per test binary.
func buildConsoleBinary(t *testing.T) string {
	t.Helper()
	consoleBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "console-e2e-bin")
		if err != nil {
			consoleBinErr = err
			return
		}
		consoleBin = filepath.Join(dir, "console")
		out, err := exec.Command("go", "build", "-o", consoleBin, "voucherconsole/cmd/console").CombinedOutput()
		if err != nil {
			consoleBinErr = errors.New(err.Error() + ": " + string(out))
		}
	})
	if consoleBinErr != nil {
		t.Fatalf("build console: %v", consoleBinErr)
	}
	return consoleBin
}

// consoleProcess is a `console serve` process.
type consoleProcess struct {
	cmd    *exec.Cmd
	addr   string
	stderr *lockedBuffer
	done   chan error
}

func startConsoleProcess(t *testing.T, env []string) *consoleProcess {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := &consoleProcess{addr: addr, stderr: &lockedBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(buildConsoleBinary(t), "serve")
	p.cmd.Env = append(os.Environ(), append(env, "CONSOLE_ADDR="+addr)...)
	p.cmd.Stdout, p.cmd.Stderr = p.stderr, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() { p.stop(t) })
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			return p
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("console exited at start: %v\n%s", err, p.stderr.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("console did not answer:\n%s", p.stderr.String())
	return nil
}

// wait waits for the process to exit by itself and returns its exit code.
func (p *consoleProcess) wait(t *testing.T) int {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(30 * time.Second):
		t.Fatalf("console did not exit:\n%s", p.stderr.String())
		return -1
	}
}

func (p *consoleProcess) stop(t *testing.T) {
	select {
	case err := <-p.done:
		p.done <- err
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Errorf("console did not stop cleanly: %v\n%s", err, p.stderr.String())
		}
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		t.Error("console did not stop within 20 s of SIGTERM")
	}
}

// sandboxEnv reads the CONSOLE_WXPAY_* lines of sandbox.env.
func sandboxEnv(t *testing.T, dir string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, sandbox.EnvFileName))
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		env = append(env, k+"="+strings.Trim(v, "'"))
	}
	return env
}

// sandboxRequestLog reads GET /_sandbox/requests: every request number the
// sandbox saw, how often, and whether its bodies were identical.
func sandboxRequestLog(t *testing.T, base, endpoint string) []sandbox.RequestInfo {
	t.Helper()
	resp, err := http.Get(base + "/_sandbox/requests")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Requests []sandbox.RequestInfo `json:"requests"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	var out []sandbox.RequestInfo
	for _, r := range body.Requests {
		if r.Endpoint == endpoint {
			out = append(out, r)
		}
	}
	return out
}

// crashRun starts the console with the fault hook armed for action, runs
// trigger (which posts the form that makes the process exit) and checks the
// exit: code 3 and the hook's log line.
func crashRun(t *testing.T, env []string, action string, hc *http.Client, trigger func(base string)) {
	t.Helper()
	p := startConsoleProcess(t, append(env, "CONSOLE_FAULT_CRASH_AFTER_INTENT="+action))
	trigger("http://" + p.addr)
	if code := p.wait(t); code != 3 {
		t.Fatalf("exit code %d, want 3 (the fault hook)\n%s", code, p.stderr.String())
	}
	if !strings.Contains(p.stderr.String(), "fault injection: exiting right after recording the intent") {
		t.Fatalf("no fault-injection line in the log:\n%s", p.stderr.String())
	}
}

// postExpectingCrash posts a form to a console that must exit instead of
// answering.
func postExpectingCrash(t *testing.T, hc *http.Client, u string, form url.Values) {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, err := hc.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("the console answered %d instead of crashing", resp.StatusCode)
	}
}

// The process crashes right after recording an intent (the fault hook),
// once for a deactivation and once for a pre-send; each restart completes
// the action with the same request number — the sandbox, which outlives the
// console, saw that number once, with one body — and the audit log holds the
// pending intent and the successful outcome. The pre-send's OpenID, kept
// sealed while pending, is wiped once the token is recorded.
func TestCrashBetweenIntentAndOutcome(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			crashKeysOnce.Do(func() { crashKeys, _ = sandbox.GenerateKeys() })
			sb, err := sandbox.New(sandbox.Options{Seed: true, Keys: crashKeys})
			if err != nil {
				t.Fatal(err)
			}
			ts := httptest.NewServer(sb.Handler())
			t.Cleanup(func() { ts.Close(); sb.Close() })
			sbDir := t.TempDir()
			if err := sb.WriteFiles(sbDir, ts.URL); err != nil {
				t.Fatal(err)
			}
			dataDir := t.TempDir()
			env := append(sandboxEnv(t, sbDir), "CONSOLE_DATA_DIR="+dataDir,
				"CONSOLE_SESSION_KEY=crash-test-session-secret-of-32-bytes-or-more", "CONSOLE_LOG_LEVEL=debug")
			dbURL := ""
			if dialect == "postgres" {
				dbURL = testdb.PostgresURL(t)
				env = append(env, "CONSOLE_DATABASE_URL="+dbURL)
			}
			add := exec.Command(buildConsoleBinary(t), "user", "add", "--username", "olivia", "--role", "operator")
			add.Env = append(os.Environ(), env...)
			add.Stdin = strings.NewReader("a-long-test-password\n")
			if out, err := add.CombinedOutput(); err != nil {
				t.Fatalf("user add: %v\n%s", err, out)
			}
			jar, _ := cookiejar.New(nil)
			hc := &http.Client{Jar: jar, Timeout: 30 * time.Second,
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

			// Deactivation: sign in, register the stock, post the form.
			var stockPath string
			crashRun(t, env, "deactivate", hc, func(base string) {
				resp, _ := fetch(t, hc, "POST", base+"/login", url.Values{"username": {"olivia"}, "password": {"a-long-test-password"}}, "")
				if resp.StatusCode != http.StatusSeeOther {
					t.Fatalf("sign in: %d", resp.StatusCode)
				}
				resp, _ = fetch(t, hc, "POST", base+"/stocks/register", url.Values{"kind": {"product_coupon"},
					"product_coupon_id": {sandbox.SeedProductCoupon}, "stock_id": {sandbox.SeedStockSending}}, "en")
				stockPath = resp.Header.Get("Location")
				if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(stockPath, "/stocks/") {
					t.Fatalf("register: %d %q", resp.StatusCode, stockPath)
				}
				_, page := fetch(t, hc, "GET", base+stockPath+"/deactivate", nil, "en")
				postExpectingCrash(t, hc, base+stockPath+"/deactivate",
					url.Values{"deactivate_reason": {"进程崩溃测试"}, "stock_id": {sandbox.SeedStockSending}, "form_token": {formToken(t, page)}})
			})
			if n := len(sandboxRequestLog(t, ts.URL, sandbox.EndpointDeactivateStock)); n != 0 || stateOf(sb, sandbox.SeedStockSending) != "SENDING" {
				t.Fatalf("before the restart: %d deactivation requests, state %s", n, stateOf(sb, sandbox.SeedStockSending))
			}

			// Pre-send: the restarted console (no fault) completes the
			// deactivation at start; then, armed for pre-send, crash again.
			var presendOpenID = "oCrashTestUser7pQm2LrN8vK4sZ"
			crashRun(t, env, "presend", hc, func(base string) {
				waitFor(t, "the deactivation resumed", func() bool { return stateOf(sb, sandbox.SeedStockSending) == "DEACTIVATED" })
				resp, _ := fetch(t, hc, "POST", base+"/stocks/register", url.Values{"kind": {"product_coupon"},
					"product_coupon_id": {sandbox.SeedBundleCoupon}, "stock_id": {sandbox.SeedBundleStockLarge},
					"stock_bundle_id": {sandbox.SeedBundleMemberDay}}, "en")
				if resp.StatusCode != http.StatusSeeOther {
					t.Fatalf("register the bundle's stock: %d", resp.StatusCode)
				}
				_, page := fetch(t, hc, "GET", base+"/presend", nil, "en")
				postExpectingCrash(t, hc, base+"/presend", url.Values{"product_coupon_id": {sandbox.SeedBundleCoupon},
					"stock_bundle_id": {sandbox.SeedBundleMemberDay}, "appid": {sandbox.DemoAppID}, "openid": {presendOpenID},
					"form_token": {formToken(t, page)}})
			})
			deactivations := sandboxRequestLog(t, ts.URL, sandbox.EndpointDeactivateStock)
			if len(deactivations) != 1 || deactivations[0].Count != 1 || !deactivations[0].Identical {
				t.Fatalf("sandbox deactivation requests %+v: want one request number, sent once", deactivations)
			}
			if n := len(sandboxRequestLog(t, ts.URL, sandbox.EndpointPreSendCouponBundle)); n != 0 {
				t.Fatalf("%d pre-send requests before the restart", n)
			}

			last := startConsoleProcess(t, env)
			waitFor(t, "the pre-send resumed", func() bool {
				return len(sandboxRequestLog(t, ts.URL, sandbox.EndpointPreSendCouponBundle)) == 1
			})
			presends := sandboxRequestLog(t, ts.URL, sandbox.EndpointPreSendCouponBundle)
			if presends[0].Count != 1 || !presends[0].Identical {
				t.Fatalf("sandbox pre-send requests %+v", presends)
			}
			// The console shows both (the session survived the restarts).
			base := "http://" + last.addr
			_, page := fetch(t, hc, "GET", base+stockPath, nil, "en")
			if !has(page, "Deactivated") || !has(page, deactivations[0].RequestNo) || !has(page, "进程崩溃测试") {
				t.Fatalf("stock page after the restart:\n%s", page)
			}
			waitFor(t, "the token recorded", func() bool {
				_, page = fetch(t, hc, "GET", base+"/presend/1", nil, "en")
				return has(page, `id="presend-token"`)
			})
			if !has(page, presends[0].RequestNo) || has(page, presendOpenID) {
				t.Fatalf("token page after the restart:\n%s", page)
			}
			last.stop(t)

			var db *database.DB
			if dialect == "postgres" {
				db, err = database.OpenPostgres(context.Background(), dbURL)
			} else {
				db, err = database.OpenSQLite(filepath.Join(dataDir, "console.db"))
			}
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			for _, tc := range []struct {
				action, kind, requestNo string
			}{
				{deactivate.Action, deactivate.OpKind, deactivations[0].RequestNo},
				{presend.ActionIssue, presend.OpKind, presends[0].RequestNo},
			} {
				var entries []audit.Entry
				db.Gorm.Where("action = ?", tc.action).Order("seq").Find(&entries)
				if len(entries) != 2 || entries[0].Outcome != audit.Pending || entries[1].Outcome != audit.Success ||
					entries[0].WxRequestNo != tc.requestNo || entries[1].WxRequestNo != tc.requestNo || entries[1].WxRequestID == "" {
					t.Fatalf("%s audit entries %+v, want the pending intent and the success of %s", tc.action, entries, tc.requestNo)
				}
				var ops []models.WxOperation
				db.Gorm.Where("kind = ?", tc.kind).Find(&ops)
				if len(ops) != 1 || ops[0].Status != models.OpSucceeded || ops[0].RequestNo != tc.requestNo {
					t.Fatalf("%s operations %+v", tc.kind, ops)
				}
			}
			var tok presend.Token
			if err := db.Gorm.Take(&tok).Error; err != nil || tok.Status != presend.StatusIssued || tok.OpenIDSealed != "" || tok.OpenIDMasked != presend.Mask(presendOpenID) {
				t.Fatalf("token record %+v (%v)", tok, err)
			}
		})
	}
}

// waitFor polls cond for up to 30 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func stateOf(sb *sandbox.Sandbox, stockID string) string {
	for _, s := range sb.Stocks() {
		if s.StockID == stockID {
			return s.State
		}
	}
	return ""
}
