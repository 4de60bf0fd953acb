package config

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestLoad(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr bool
		check   func(t *testing.T, c Config)
	}{
		{name: "defaults", check: func(t *testing.T, c Config) {
			if c.Addr != "127.0.0.1:8080" || c.DataDir != "./data" || c.WxPay.Mode != ModeSandbox || c.Timezone != "Asia/Shanghai" || c.UploadRate != 0 {
				t.Fatalf("defaults: %+v", c)
			}
		}},
		{name: "variables", env: map[string]string{"CONSOLE_ADDR": "127.0.0.1:9000", "CONSOLE_UPLOAD_RATE": "12.5", "CONSOLE_LOGIN_LOCKOUT": "1m"}, check: func(t *testing.T, c Config) {
			if c.Addr != "127.0.0.1:9000" || c.UploadRate != 12.5 || c.LoginLockout != time.Minute {
				t.Fatalf("from variables: %+v", c)
			}
		}},
		{name: "flags win over variables", env: map[string]string{"CONSOLE_ADDR": "127.0.0.1:9000"}, args: []string{"--addr", "127.0.0.1:9001"}, check: func(t *testing.T, c Config) {
			if c.Addr != "127.0.0.1:9001" {
				t.Fatalf("addr %q", c.Addr)
			}
		}},
		{name: "malformed number", env: map[string]string{"CONSOLE_UPLOAD_RATE": "fast"}, wantErr: true},
		{name: "negative rate", env: map[string]string{"CONSOLE_UPLOAD_RATE": "-1"}, wantErr: true},
		{name: "unknown mode", env: map[string]string{"CONSOLE_WXPAY_MODE": "test"}, wantErr: true},
		{name: "live needs the public key", env: map[string]string{"CONSOLE_WXPAY_MODE": "live"}, wantErr: true},
		{name: "bad database URL", env: map[string]string{"CONSOLE_DATABASE_URL": "mysql://x"}, wantErr: true},
		{name: "bad time zone", env: map[string]string{"CONSOLE_TIMEZONE": "Mars/Base"}, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, _, err := Load("console", tc.args, func(k string) string { return tc.env[k] }, io.Discard)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

// The session key never reaches a log line.
func TestLogValueHidesSecrets(t *testing.T) {
	c := Config{SessionKey: "super-secret-session-key-0123456789", Addr: "a"}
	if v := c.LogValue().String(); strings.Contains(v, "super-secret") {
		t.Fatalf("log value shows the session key: %s", v)
	}
}

func TestParseProxies(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		ok   bool
	}{
		{"", nil, true},
		{"10.0.0.1", []string{"10.0.0.1"}, true},
		{" 10.0.0.0/8 , ::1 ,", []string{"10.0.0.0/8", "::1"}, true},
		{"10.0.0.0/33", nil, false},
		{"proxy.example", nil, false},
		{"*", nil, false},
	} {
		got, err := ParseProxies(tc.in)
		if (err == nil) != tc.ok || strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("ParseProxies(%q) = %v, %v", tc.in, got, err)
		}
	}
}
