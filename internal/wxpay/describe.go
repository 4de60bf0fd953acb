package wxpay

import (
	"errors"
	"net/http"
)

// Codes the console gives failures that carry no WeChat Pay error code.
const (
	CodeNetwork         = "NETWORK"          // no whole reply: whether WeChat Pay acted is unknown
	CodeReplyRejected   = "REPLY_REJECTED"   // a 2xx reply the client refused (signature, JSON)
	CodeNotConfigured   = "NOT_CONFIGURED"   // the identity has no ID, serial or key: nothing was sent
	CodeInvalidArgument = "INVALID_ARGUMENT" // refused before sending
	CodeError           = "ERROR"            // anything else; its text stays in the log
)

// Description is the one account of a failed WeChat Pay call that pages,
// forms, audit entries and recorded operations show: WeChat Pay's own code,
// message and Request-ID, whether sending the same request again may help,
// and the message-catalogue key of what the user is told. It never carries a
// Go error's text, which may name hosts, paths or keys: that goes to the log.
type Description struct {
	Status    int    // WeChat Pay's HTTP status; 0 when no reply was read
	Code      string // WeChat Pay's error code, or one of the Code* constants
	Message   string // WeChat Pay's own message; empty for the Code* constants
	RequestID string // the reply's Request-ID, which WeChat Pay support asks for
	// Retryable: sending the same request (same request number) again may
	// succeed — a 5xx, a 429, SYSTEM_ERROR, no reply, or a reply that failed
	// verification. WeChat Pay may then already have acted: the outcome is
	// unknown, never a failure.
	Retryable bool
	// Key is the catalogue message explaining the failure to the user.
	Key string
}

// Describe describes err; ok is false when err is not from a WeChat Pay call
// (nil, or a failure of the console's own, such as its database).
func Describe(err error) (d Description, ok bool) {
	var (
		ae *APIError
		te *TransportError
		re *ReplyError
	)
	switch {
	case err == nil:
		return d, false
	case errors.As(err, &ae):
		d = Description{Status: ae.StatusCode, Code: ae.Code, Message: ae.Message, RequestID: ae.RequestID, Retryable: ae.Retryable()}
		if d.Code == "" {
			d.Code = CodeError
		}
	case errors.As(err, &re):
		d = Description{Code: CodeReplyRejected, RequestID: re.RequestID, Retryable: true}
	case errors.As(err, &te):
		d = Description{Code: CodeNetwork, Retryable: true}
	case errors.Is(err, ErrNotConfigured):
		d = Description{Code: CodeNotConfigured}
	case errors.Is(err, ErrInvalidArgument):
		d = Description{Code: CodeInvalidArgument}
	default:
		return d, false
	}
	d.Key = Key(d.Status, d.Code)
	return d, true
}

// Key is the catalogue message explaining a failure by its HTTP status and
// code, for a description just made or one recorded earlier (an operation,
// a pre-send, a batch keep only status, code, message and Request-ID).
func Key(status int, code string) string {
	switch {
	case code == CodeReplyRejected:
		return "wx.err.reply_rejected"
	case code == CodeNetwork:
		return "wx.err.network"
	case code == CodeNotConfigured:
		return "wx.err.not_configured"
	case code == CodeInvalidArgument:
		return "wx.err.invalid_argument"
	case status == http.StatusTooManyRequests:
		return "wx.err.throttled"
	case retryableStatus(status) || code == "SYSTEM_ERROR" || code == CodeError:
		return "wx.err.unavailable"
	case status == 0:
		return "wx.err.not_sent" // the console's own code: nothing went out
	}
	return "wx.err.refused"
}
