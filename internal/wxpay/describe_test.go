package wxpay

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// Describe gives every WeChat Pay failure a code, the Request-ID, whether
// resending may help and a catalogue key — never the error's own text.
func TestDescribe(t *testing.T) {
	secret := errors.New("dial tcp 10.0.0.7:443: key /etc/wx/apiclient_key.pem")
	for _, tc := range []struct {
		name      string
		err       error
		ok        bool
		code, rid string
		retryable bool
		key       string
	}{
		{"refusal", &APIError{StatusCode: 400, Code: "PARAM_ERROR", Message: "参数错误", RequestID: "R1"}, true, "PARAM_ERROR", "R1", false, "wx.err.refused"},
		{"429", &APIError{StatusCode: 429, Code: "FREQUENCY_LIMITED", RequestID: "R2"}, true, "FREQUENCY_LIMITED", "R2", true, "wx.err.throttled"},
		{"5xx", &APIError{StatusCode: 500, Code: "SYSTEM_ERROR"}, true, "SYSTEM_ERROR", "", true, "wx.err.unavailable"},
		{"400 SYSTEM_ERROR", &APIError{StatusCode: 400, Code: "SYSTEM_ERROR"}, true, "SYSTEM_ERROR", "", true, "wx.err.unavailable"},
		{"no code", &APIError{StatusCode: 502, Message: "Bad Gateway"}, true, CodeError, "", true, "wx.err.unavailable"},
		{"bad signature", fmt.Errorf("create: %w", &ReplyError{RequestID: "R3", Err: secret}), true, CodeReplyRejected, "R3", true, "wx.err.reply_rejected"},
		{"no reply", &TransportError{Err: secret}, true, CodeNetwork, "", true, "wx.err.network"},
		{"not configured", fmt.Errorf("brand: %w", ErrNotConfigured), true, CodeNotConfigured, "", false, "wx.err.not_configured"},
		{"invalid argument", ErrInvalidArgument, true, CodeInvalidArgument, "", false, "wx.err.invalid_argument"},
		{"the console's own", secret, false, "", "", false, ""},
		{"nil", nil, false, "", "", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, ok := Describe(tc.err)
			if ok != tc.ok || d.Code != tc.code || d.RequestID != tc.rid || d.Retryable != tc.retryable || d.Key != tc.key {
				t.Fatalf("Describe = %+v, %v", d, ok)
			}
			if strings.Contains(fmt.Sprint(d), "10.0.0.7") {
				t.Fatalf("the error's text leaked into %+v", d)
			}
			if ok && Key(d.Status, d.Code) != d.Key {
				t.Fatalf("Key(%d, %s) = %s, want %s", d.Status, d.Code, Key(d.Status, d.Code), d.Key)
			}
		})
	}
}
