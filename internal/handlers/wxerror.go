package handlers

import (
	"voucherconsole/internal/i18n"
	"voucherconsole/internal/wxpay"
	"voucherconsole/web/templates"
)

// wxProblem is what a page shows of a failed WeChat Pay call, from its one
// description (wxpay.Describe); nil when err is not a WeChat Pay error. A
// call that got no answer, or an answer that failed verification, is shown
// too, as such: the user must know nothing is confirmed.
func wxProblem(t i18n.Localizer, err error) *templates.WxProblem {
	d, ok := wxpay.Describe(err)
	if !ok {
		return nil
	}
	return describedProblem(t, d)
}

// recordedProblem is wxProblem for a failure recorded earlier (an
// operation's or a pre-send's status, code, message and Request-ID).
func recordedProblem(t i18n.Localizer, status int, code, message, requestID string) *templates.WxProblem {
	if code == "" {
		return nil
	}
	return describedProblem(t, wxpay.Description{Status: status, Code: code, Message: message, RequestID: requestID, Key: wxpay.Key(status, code)})
}

func describedProblem(t i18n.Localizer, d wxpay.Description) *templates.WxProblem {
	status := d.Status
	if status == 0 {
		status = 502 // no reply to pass on
	}
	return &templates.WxProblem{Status: status, Explanation: t.T(d.Key), Code: d.Code, Message: d.Message, RequestID: d.RequestID}
}

// problemLine is a recorded failure in one line of a list.
func problemLine(t i18n.Localizer, status int, code, message string) string {
	if code == "" {
		return ""
	}
	return code + ": " + problemMessage(t, status, code, message)
}

// problemMessage is WeChat Pay's message of a recorded failure or, for the
// console's own codes (no reply, a reply refused), what they mean.
func problemMessage(t i18n.Localizer, status int, code, message string) string {
	if message == "" && code != "" {
		return t.T(wxpay.Key(status, code))
	}
	return message
}
