package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"voucherconsole/internal/app"
	"voucherconsole/internal/audit"
	"voucherconsole/internal/config"
	"voucherconsole/internal/models"
)

// Only loopback consoles are driven.
func TestLoopbackOnly(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:8080", true}, {"http://localhost:8080/stocks", true}, {"http://[::1]:8080", true},
		{"http://127.9.9.9", true}, {"http://10.0.0.1:8080", false}, {"https://console.example.com", false},
		{"http://0.0.0.0:8080", false}, {"ftp://127.0.0.1", false}, {"127.0.0.1:8080", false},
	} {
		_, err := loopbackURL(tc.url)
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.url, err)
		}
	}
	var stderr bytes.Buffer
	code, err := run(context.Background(), []string{"-url", "http://127.0.0.1:1,http://192.168.1.2:80"}, func(string) string { return "" }, io.Discard, &stderr)
	if code != 2 || err == nil || !strings.Contains(err.Error(), "not a loopback") {
		t.Fatalf("a non-loopback URL: exit %d, %v", code, err)
	}
	for _, args := range [][]string{{"-url", "http://127.0.0.1:1", "-users", "0"}, {"-url", "http://127.0.0.1:1", "-duration", "31m"}, {}} {
		if code, _ := run(context.Background(), args, func(string) string { return "" }, io.Discard, &stderr); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

// A short run of every role against two consoles on one embedded database
// (in-process sandbox) ends with no errors, every upload finished, and the
// per-route figures and memory printed.
func TestShortRun(t *testing.T) {
	dir := t.TempDir()
	cfg, _, err := config.Load("console", nil, func(k string) string {
		switch k {
		case "CONSOLE_DATA_DIR":
			return dir
		}
		return ""
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c, err := app.Build(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(c.Server.Handler())
	t.Cleanup(func() { ts.Close(); c.Close() })
	var users strings.Builder
	for _, role := range []models.Role{models.RoleOperator, models.RoleManager, models.RoleSupport, models.RoleAdmin} {
		name := "lt-" + string(role)
		if _, err := c.Users.Add(context.Background(), audit.Context{Actor: "test"}, name, "a-long-test-password", []models.Role{role}, false); err != nil {
			t.Fatal(err)
		}
		users.WriteString(name + ",a-long-test-password," + string(role) + "\n")
	}
	file := filepath.Join(dir, "users.csv")
	os.WriteFile(file, []byte(users.String()), 0o600)

	var out, log bytes.Buffer
	code, err := run(context.Background(), []string{"-url", ts.URL, "-users", "6", "-duration", "3s", "-think", "20ms",
		"-users-file", file, "-codes", "50", "-pid", strconv.Itoa(os.Getpid())}, func(string) string { return "" }, &out, &log)
	t.Log(out.String())
	if err != nil || code != 0 {
		t.Fatalf("exit %d, %v\n%s", code, err, log.String())
	}
	// Which routes a 3-second random mix reaches varies; these always print.
	for _, want := range []string{" 0 errors", "page views (all GET pages)", "peak RSS", "\nOK\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out.String(), "still sending") {
		t.Error("uploads did not end")
	}
}
