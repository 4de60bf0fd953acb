package wxpay

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrNotConfigured means an endpoint was called whose identity (merchant,
// service provider or brand) has no ID, serial or key in the Config.
var ErrNotConfigured = errors.New("wxpay: identity not configured")

// ErrInvalidArgument means a call was refused before anything was sent,
// e.g. an empty path parameter.
var ErrInvalidArgument = errors.New("wxpay: invalid argument")

// APIError is a non-2xx reply from WeChat Pay (or the sandbox). Its body is
// {"code": "...", "message": "...", "detail": {...}}.
type APIError struct {
	StatusCode int
	Code       string
	Message    string
	Detail     json.RawMessage
	// RequestID is the reply's Request-ID header, which WeChat Pay support
	// asks for in tickets; keep it in audit entries.
	RequestID string
	Endpoint  string

	retryAfter time.Duration // a 429's Retry-After, honoured by the backoff
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "wxpay %s: HTTP %d", e.Endpoint, e.StatusCode)
	if e.Code != "" {
		b.WriteString(" ")
		b.WriteString(e.Code)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (Request-ID %s)", e.RequestID)
	}
	return b.String()
}

// Retryable reports whether sending the same request again later, with the
// same request number, may succeed: 5xx, 429, and SYSTEM_ERROR whatever its
// status (document 002 lists a 400 SYSTEM_ERROR to be retried "with the
// same parameters"). The Client itself retries only 5xx and 429; a 400
// SYSTEM_ERROR is left for the caller (e.g. a job queue) to reschedule.
func (e *APIError) Retryable() bool {
	return retryableStatus(e.StatusCode) || e.Code == "SYSTEM_ERROR"
}

func retryableStatus(status int) bool {
	return status >= 500 || status == http.StatusTooManyRequests
}

// newAPIError builds an APIError from a non-2xx reply. Bodies that are not
// WeChat Pay's error JSON (a proxy's HTML page, say) become the message,
// shortened, so the user still sees something.
func newAPIError(endpoint Endpoint, status int, h http.Header, body []byte) *APIError {
	e := &APIError{StatusCode: status, RequestID: h.Get("Request-ID"), Endpoint: string(endpoint), retryAfter: parseRetryAfter(h)}
	var wire struct {
		Code    string          `json:"code"`
		Message string          `json:"message"`
		Detail  json.RawMessage `json:"detail"`
	}
	if err := json.Unmarshal(body, &wire); err == nil && wire.Code != "" {
		e.Code, e.Message = wire.Code, wire.Message
		if len(wire.Detail) > 0 && string(wire.Detail) != "null" {
			e.Detail = wire.Detail
		}
		return e
	}
	e.Message = truncate(strings.TrimSpace(string(body)), 200)
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	return e
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}

// IsCode reports whether err carries an APIError with the given code, e.g.
// IsCode(err, "NOT_FOUND").
func IsCode(err error, code string) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == code
}

// IsStatus reports whether err carries an APIError with the HTTP status.
func IsStatus(err error, status int) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.StatusCode == status
}

// TransportError is a failure to get a whole reply: connection refused,
// timeout, connection dropped mid-reply. Whether WeChat Pay acted on the
// request is unknown; resend it with the same request number.
type TransportError struct {
	Endpoint string
	Host     string
	Err      error
}

func (e *TransportError) Error() string {
	return fmt.Sprintf("wxpay %s: %s: %v", e.Endpoint, e.Host, e.Err)
}

func (e *TransportError) Unwrap() error { return e.Err }

// ReplyError is a 2xx reply the client refused: its signature did not
// verify (see VerifyReply) or its JSON did not decode. WeChat Pay may have
// carried out the request, so treat the outcome as unknown and read the
// stock back (or resend with the same request number).
type ReplyError struct {
	Endpoint  string
	Host      string
	RequestID string
	Err       error
}

func (e *ReplyError) Error() string {
	s := fmt.Sprintf("wxpay %s: reply from %s refused: %v", e.Endpoint, e.Host, e.Err)
	if e.RequestID != "" {
		s += fmt.Sprintf(" (Request-ID %s)", e.RequestID)
	}
	return s
}

func (e *ReplyError) Unwrap() error { return e.Err }

// IsRetryable reports whether a failed call may succeed if made again with
// the same request number: retryable API errors and transport errors.
// Reply verification failures and other 4xx are not.
func IsRetryable(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Retryable()
	}
	var te *TransportError
	return errors.As(err, &te)
}

// RequestIDOf returns the Request-ID WeChat Pay gave the reply behind err,
// or "" if there was no reply.
func RequestIDOf(err error) string {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.RequestID
	}
	var re *ReplyError
	if errors.As(err, &re) {
		return re.RequestID
	}
	return ""
}
