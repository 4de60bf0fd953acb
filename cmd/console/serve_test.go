package main

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"voucherconsole/internal/testdb"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// buildConsole compiles the console binary once per test run.
func buildConsole(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "console-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "console")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = err
			t.Logf("%s", out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build console: %v", buildErr)
	}
	return binPath
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// syncBuffer collects a process's output safely while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serveOnce starts `console` with env, waits for it to answer, fetches the
// sign-in page in Chinese and English, and stops it with SIGTERM.
func serveOnce(t *testing.T, env []string) (stdout, zh, en string) {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(buildConsole(t))
	cmd.Env = append(os.Environ(), append(env, "CONSOLE_ADDR="+addr)...)
	var out, errOut syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("console did not stop cleanly on SIGTERM: %v\n%s", err, errOut.String())
			}
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("console did not stop within 20 s of SIGTERM")
		}
	}()
	get := func(lang string) string {
		req, _ := http.NewRequest("GET", "http://"+addr+"/login", nil)
		if lang != "" {
			req.Header.Set("Accept-Language", lang)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	deadline := time.Now().Add(60 * time.Second)
	for zh == "" && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		zh = get("")
	}
	if zh == "" {
		t.Fatalf("console did not answer on %s:\n%s", addr, errOut.String())
	}
	// The one-time admin password is printed to standard error, beside
	// (not inside) the structured log.
	return out.String() + errOut.String(), zh, get("en")
}

// `console` on a fresh data directory serves the sign-in page in Chinese
// (English on request) and prints the one-time admin password once; the same
// binary does the same on a new PostgreSQL database.
func TestServeFreshStart(t *testing.T) {
	for name, env := range map[string][]string{
		"sqlite":   {"CONSOLE_DATA_DIR=" + t.TempDir()},
		"postgres": {"CONSOLE_DATA_DIR=" + t.TempDir(), "CONSOLE_DATABASE_URL=" + testdb.PostgresURL(t)},
	} {
		t.Run(name, func(t *testing.T) {
			out, zh, en := serveOnce(t, env)
			if !strings.Contains(out, "username: admin") || !strings.Contains(out, "password: ") {
				t.Fatalf("first start did not print the admin password:\n%s", out)
			}
			pw := strings.Fields(out[strings.Index(out, "password: ")+len("password: "):])[0]
			if n := strings.Count(out, pw); n != 1 {
				t.Fatalf("the one-time password appears %d times in the output, want once (never in a log record)", n)
			}
			if !strings.Contains(zh, `lang="zh-CN"`) || !strings.Contains(zh, "登录") {
				t.Fatal("sign-in page is not in Chinese by default")
			}
			if !strings.Contains(en, `lang="en"`) || !strings.Contains(en, "Sign in") {
				t.Fatal("sign-in page is not in English with Accept-Language: en")
			}
			out, _, _ = serveOnce(t, env)
			if strings.Contains(out, "password: ") {
				t.Fatalf("second start printed a password again:\n%s", out)
			}
		})
	}
}
