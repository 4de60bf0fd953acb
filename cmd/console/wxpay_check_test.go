package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// `console wxpay check` against a standalone sandbox, in each verify mode:
// exit 0 when every account answers; exit 1 naming the account whose key
// is wrong, the others still reported ok.
func TestWxPayCheck(t *testing.T) {
	for _, mode := range []string{"public-key", "certificate", "both"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			addr := freeAddr(t)
			out := startProcess(t, nil, "sandbox", "--addr", addr, "--dir", dir, "--verify-mode", mode)
			waitHTTP(t, "http://"+addr+"/_sandbox/stocks", out)
			env := append(readEnvFile(t, filepath.Join(dir, "sandbox.env")), "CONSOLE_DATA_DIR="+t.TempDir())
			m := envMap(env)
			if _, pub := m["CONSOLE_WXPAY_SP_PUBKEY_ID"]; pub != (mode != "certificate") {
				t.Errorf("sandbox.env public-key lines: %v", m)
			}
			if _, v3 := m["CONSOLE_WXPAY_SP_APIV3_KEY"]; v3 != (mode != "public-key") {
				t.Errorf("sandbox.env APIv3 key lines: %v", m)
			}

			code, stdout := consoleCmd(t, env, "", "wxpay", "check")
			if code != 0 || strings.Count(stdout, "ok ") != 3 {
				t.Fatalf("healthy sandbox: exit %d\n%s", code, stdout)
			}

			// The service provider signs with the merchant's key.
			bad := append(env, "CONSOLE_WXPAY_SP_KEY="+m["CONSOLE_WXPAY_MCH_KEY"])
			code, stdout = consoleCmd(t, bad, "", "wxpay", "check")
			if code != 1 || !strings.Contains(stdout, "FAIL  service_provider "+m["CONSOLE_WXPAY_SP_MCHID"]) ||
				!strings.Contains(stdout, "SIGN_ERROR") || strings.Count(stdout, "ok ") != 2 {
				t.Fatalf("wrong service provider key: exit %d\n%s", code, stdout)
			}
			if mode == "public-key" {
				// The brand verifies with the merchant's public key.
				bad := append(env, "CONSOLE_WXPAY_BRAND_PUBKEY="+m["CONSOLE_WXPAY_MCH_PUBKEY"])
				code, stdout = consoleCmd(t, bad, "", "wxpay", "check")
				if code != 1 || !strings.Contains(stdout, "FAIL  brand "+m["CONSOLE_WXPAY_BRAND_ID"]) ||
					!strings.Contains(stdout, m["CONSOLE_WXPAY_BRAND_PUBKEY_ID"]) {
					t.Fatalf("wrong brand public key: exit %d\n%s", code, stdout)
				}
			}
		})
	}
}
