package handlers

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"voucherconsole/internal/i18n"
	"voucherconsole/internal/wxconn"
	"voucherconsole/internal/wxpay"
	"voucherconsole/web/templates"
)

// adminWxPayPage shows the health of the WeChat Pay connection (SPEC:
// admins "see settings and the health of the WeChat Pay connection").
func (s *Server) adminWxPayPage(c *gin.Context) {
	p := s.page(c, "wxpay.title")
	s.render(c, http.StatusOK, templates.AdminWxPayPage(s.wxpayProps(p, s.WxConn.Status())))
}

// adminWxPayTest makes one signed read per account (audited) and shows the
// outcome on the page.
func (s *Server) adminWxPayTest(c *gin.Context) {
	run, err := s.WxConn.Test(c.Request.Context(), s.auditContext(c))
	if err != nil {
		s.serverError(c, err)
		return
	}
	t := s.localizer(c)
	if run.OK() {
		s.setFlash(c, "success", t.T("wxpay.test_flash_ok"))
	} else {
		s.setFlash(c, "error", t.T("wxpay.test_flash_failed"))
	}
	c.Redirect(http.StatusSeeOther, "/admin/wxpay#wxpay-test-results")
}

func (s *Server) wxpayProps(p templates.Page, st wxconn.Status) templates.AdminWxPayProps {
	t := p.T
	when := func(tm time.Time) string {
		if tm.IsZero() {
			return ""
		}
		return tm.In(s.loc).Format("2006-01-02 15:04:05")
	}
	props := templates.AdminWxPayProps{Page: p, Mode: st.Mode, BaseURL: st.BaseURL, FallbackURL: st.FallbackURL}
	if st.Skew.Samples == 0 {
		props.Skew = t.T("wxpay.skew_none")
	} else {
		props.Skew = t.T("wxpay.skew_value", st.Skew.Last.Round(time.Second).String(), st.Skew.MaxAbs.Round(time.Second).String(), st.Skew.Samples)
		props.SkewWarn = st.Skew.MaxAbs >= time.Minute
	}
	for _, a := range st.Accounts {
		v := templates.WxPayAccountView{
			Kind: string(a.Kind), Label: t.T("wxpay.account." + string(a.Kind)), ID: a.ID, Serial: a.Serial,
			KeyFingerprint: a.KeyFingerprint, Mode: string(a.Mode), PubKeyID: a.PubKeyID,
			PubKeyFingerprint: a.PubKeyFingerprint, SharedPubKey: a.SharedPubKey, Configured: a.Configured,
		}
		for _, c := range a.Certificates {
			v.Certs = append(v.Certs, templates.WxPayCertView{Serial: c.Serial, Fingerprint: c.Fingerprint,
				NotAfter: when(c.NotAfter), Warn: c.NotAfter.Sub(st.Now) < wxconn.CertWarning})
		}
		switch {
		case a.CertLastRefreshErr != "":
			v.CertNote = t.T("wxpay.cert_refresh_failed", when(a.CertLastRefresh), a.CertLastRefreshErr)
		case a.CertificatesPending:
			v.CertNote = t.T("wxpay.cert_pending")
		case !a.CertLastRefresh.IsZero():
			v.CertNote = t.T("wxpay.cert_refreshed", when(a.CertLastRefresh))
		}
		props.Accounts = append(props.Accounts, v)
	}
	for _, e := range st.Endpoints {
		props.Endpoints = append(props.Endpoints, templates.WxPayEndpointView{
			Endpoint: string(e.Endpoint), Successes: strconv.FormatInt(e.Successes, 10), Failures: strconv.FormatInt(e.Failures, 10),
			LastSuccess: when(e.LastSuccess), SuccessRequestID: e.LastSuccessRequestID,
			LastFailure: when(e.LastFailure), FailureCode: e.FailureCode, FailureMessage: e.FailureMessage,
			FailureRequestID: e.FailureRequestID,
		})
	}
	for _, r := range st.Rates {
		props.Rates = append(props.Rates, templates.WxPayRateView{
			Endpoint: string(r.Endpoint), Identity: r.Identity, Rate: r.Rate.String(),
			Sent: strconv.FormatInt(r.Sent, 10), Delayed: strconv.FormatInt(r.Delayed, 10), Backlog: r.Backlog.Round(time.Millisecond).String(),
		})
	}
	if run := st.LastTest; run != nil {
		props.LastTestAt, props.LastTestBy, props.LastTestOK = when(run.At), run.By, run.OK()
		for _, r := range run.Results {
			props.LastTest = append(props.LastTest, templates.WxPayTestView{
				Kind: string(r.Kind), ID: r.ID, OK: r.OK(), Message: describeCheck(t, r.Err),
				RequestID: r.RequestID, Took: r.Took.Round(time.Millisecond).String(),
			})
		}
	}
	return props
}

// describeCheck says why an account did not answer: WeChat Pay's code and
// message, the reason a reply was refused (which names the account and the
// serial, never a key), or that no reply came.
func describeCheck(t i18n.Localizer, err error) string {
	if err == nil {
		return ""
	}
	var ae *wxpay.APIError
	var re *wxpay.ReplyError
	var te *wxpay.TransportError
	switch {
	case errors.As(err, &ae):
		return t.T("wxpay.check_api_error", ae.StatusCode, ae.Code, ae.Message)
	case errors.As(err, &re):
		return t.T("wxpay.check_reply_refused", re.Err.Error())
	case errors.As(err, &te):
		return t.T("wxpay.check_no_reply", te.Host)
	case errors.Is(err, wxpay.ErrNotConfigured):
		return t.T("wxpay.not_configured")
	case errors.Is(err, wxpay.ErrCertDecrypt), errors.Is(err, wxpay.ErrCertInvalid):
		return t.T("wxpay.check_reply_refused", err.Error())
	}
	return t.T("wxpay.check_no_reply", "")
}
