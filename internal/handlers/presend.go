package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"voucherconsole/internal/config"
	"voucherconsole/internal/i18n"
	"voucherconsole/internal/models"
	"voucherconsole/internal/presend"
	"voucherconsole/internal/textcheck"
	"voucherconsole/internal/wxpay/sandbox"
	"voucherconsole/web/templates"
)

// recentPresends is how many pre-sends /presend and a stock page list.
const recentPresends = 20

type presendForm struct {
	ProductCouponID string `form:"product_coupon_id"`
	StockBundleID   string `form:"stock_bundle_id"`
	AppID           string `form:"appid"`
	OpenID          string `form:"openid"`
	Attach          string `form:"attach"`
	FormToken       string `form:"form_token"`
}

// presendPage is GET /presend: the form, prefilled from the query (a stock
// page links here with its bundle; never with an OpenID, which would land
// in browser histories and proxy logs), and the latest pre-sends.
func (s *Server) presendPage(c *gin.Context) {
	f := presendForm{
		ProductCouponID: c.Query("product_coupon_id"), StockBundleID: c.Query("stock_bundle_id"), AppID: c.Query("appid"),
	}
	if f.AppID == "" && s.Config.WxPay.Mode == config.ModeSandbox {
		f.AppID = sandbox.DemoAppID
	}
	f.FormToken = newFormToken()
	props, err := s.presendFormProps(c, f)
	if err != nil {
		s.serverError(c, err)
		return
	}
	s.render(c, http.StatusOK, templates.PresendFormPage(props))
}

func (s *Server) presendFormProps(c *gin.Context, f presendForm) (templates.PresendFormProps, error) {
	p := s.page(c, "presend.title")
	t := p.T
	props := templates.PresendFormProps{
		Page: p, FormToken: formTokenOr(f.FormToken), ProductCouponID: f.ProductCouponID, StockBundleID: f.StockBundleID,
		AppID: f.AppID, OpenID: f.OpenID, Attach: f.Attach, MaxAttach: presend.MaxAttach, Errors: templates.FieldErrors{},
	}
	ctx := c.Request.Context()
	bundles, err := s.Presend.Bundles(ctx)
	if err != nil {
		return props, err
	}
	for _, b := range bundles {
		if n := len(props.Coupons); n == 0 || props.Coupons[n-1].Value != b.ProductCouponID {
			props.Coupons = append(props.Coupons, templates.Option{Value: b.ProductCouponID, Label: t.T("presend.coupon_option", b.ProductCouponID)})
			props.Bundles = append(props.Bundles, templates.OptionGroup{Label: t.T("presend.coupon_option", b.ProductCouponID)})
		}
		label := b.StockBundleID + " —"
		for i, st := range b.Stocks {
			if i > 0 {
				label += ","
			}
			name := st.Name
			if name == "" {
				name = st.StockID
			}
			label += " " + name + " (" + t.T("stocks.state."+string(st.State)) + ")"
		}
		g := &props.Bundles[len(props.Bundles)-1]
		g.Options = append(g.Options, templates.Option{Value: b.StockBundleID, Label: label})
	}
	recent, err := s.Presend.Recent(ctx, recentPresends)
	if err != nil {
		return props, err
	}
	props.Recent = s.presendLines(t, recent)
	return props, nil
}

// presendIssue is POST /presend: the service answers the form
// (presend.Service.Submit) — field errors (422, every one, values kept), or
// the token; a form already posted gets its operation's outcome instead, one
// request number however often it is posted.
func (s *Server) presendIssue(c *gin.Context) {
	var f presendForm
	_ = c.ShouldBind(&f)
	res, err := s.Presend.Submit(c.Request.Context(), s.auditContext(c), presend.Input{ProductCouponID: f.ProductCouponID,
		StockBundleID: f.StockBundleID, AppID: f.AppID, OpenID: f.OpenID, Attach: f.Attach, FormToken: formTokenOr(f.FormToken)})
	f.FormToken = res.Input.FormToken
	if len(res.Errors) == 0 {
		s.presendOutcome(c, f, res.Token, err)
		return
	}
	for _, v := range []*string{&f.ProductCouponID, &f.StockBundleID, &f.AppID, &f.OpenID, &f.Attach} {
		*v = textcheck.Clean(*v) // kept, but never the bad bytes
	}
	props, err := s.presendFormProps(c, f)
	if err != nil {
		s.serverError(c, err)
		return
	}
	t := props.Page.T
	for field, problem := range res.Errors {
		switch problem {
		case presend.ProblemText:
			props.Errors[field] = t.T("input.bad_text")
		case presend.ProblemRequired:
			props.Errors[field] = t.T("form.required")
		case presend.ProblemTooLong:
			props.Errors[field] = t.T("presend.err.attach_too_long", presend.MaxAttach, utf8.RuneCountInString(f.Attach))
		default:
			props.Errors[field] = t.T("presend.err.format_" + field)
		}
	}
	s.render(c, http.StatusUnprocessableEntity, templates.PresendFormPage(props))
}

// presendOutcome answers a pre-send: the token page itself (no redirect: a
// token is wanted at once, and posting the same form again shows the same
// token, so a reload does no harm; the page links to /presend/{id}), or the
// form again with what went wrong. Once a call has been made the OpenID is
// not sent back in the form: the field is left empty, the masked form shown
// as a hint.
func (s *Server) presendOutcome(c *gin.Context, f presendForm, tok *presend.Token, err error) {
	if tok != nil && (err == nil || errors.Is(err, presend.ErrInFlight)) {
		s.renderPresendToken(c, tok)
		return
	}
	status := http.StatusConflict
	var prob *templates.WxProblem
	switch {
	case errors.Is(err, presend.ErrInFlight):
	case errors.Is(err, presend.ErrUnknownBundle):
		status = http.StatusUnprocessableEntity
	default:
		if prob = wxProblem(s.localizer(c), err); prob == nil {
			s.serverError(c, err)
			return
		}
		status = problemStatus(prob)
	}
	props, perr := s.presendFormProps(c, f)
	if perr != nil {
		s.serverError(c, perr)
		return
	}
	t := props.Page.T
	switch {
	case errors.Is(err, presend.ErrInFlight):
		props.Notice = t.T("presend.in_flight")
	case errors.Is(err, presend.ErrUnknownBundle):
		props.Errors["stock_bundle_id"] = t.T("presend.err.unknown_bundle")
	default:
		props.WxError = prob
		props.OpenID = ""
		if tok != nil {
			props.OpenIDHint = tok.OpenIDMasked
			if tok.Status == presend.StatusPending {
				// The same form resends the recorded request, OpenID included.
				props.Notice = t.T("presend.retry_pending", tok.SendRequestNo)
				props.OpenIDOptional = true
			} else {
				props.FormToken = newFormToken()
			}
		}
	}
	s.render(c, status, templates.PresendFormPage(props))
}

// presendToken is GET /presend/{id}: the token with a copy button and a
// countdown while it is valid; that it expired once it is not.
func (s *Server) presendToken(c *gin.Context) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		s.notFound(c)
		return
	}
	tok, err := s.Presend.Get(c.Request.Context(), id)
	if errors.Is(err, presend.ErrNotFound) {
		s.notFound(c)
		return
	}
	if err != nil {
		s.serverError(c, err)
		return
	}
	s.renderPresendToken(c, tok)
}

func (s *Server) renderPresendToken(c *gin.Context, tok *presend.Token) {
	p := s.page(c, "presend.token_title")
	t := p.T
	now := s.Now()
	props := templates.PresendTokenProps{
		Page: p, Status: tok.Status, StatusLabel: t.T("presend.status." + tok.Status),
		TokenMasked: maskToken(tok.Token), Zone: s.loc.String(),
		Permalink: "/presend/" + strconv.FormatInt(tok.ID, 10),
		AgainURL:  "/presend?" + url.Values{"product_coupon_id": {tok.ProductCouponID}, "stock_bundle_id": {tok.StockBundleID}, "appid": {tok.AppID}}.Encode(),
	}
	if tok.ExpiresAt != nil {
		props.ExpiresAt, props.ExpiresAtISO = s.localTime(*tok.ExpiresAt), tok.ExpiresAt.In(s.loc).Format(time.RFC3339)
		props.Expired = tok.Expired(now)
		left := tok.Remaining(now)
		props.RemainingSeconds = int((left + time.Second - 1) / time.Second)
		props.Remaining = fmt.Sprintf("%d:%02d", props.RemainingSeconds/60, props.RemainingSeconds%60)
		if !props.Expired {
			props.Token = tok.Token
		}
	}
	props.Error = recordedProblem(t, tok.WxStatus, tok.WxErrorCode, tok.WxErrorMessage, tok.WxRequestID)
	props.Facts = []templates.Fact{
		{Label: t.T("presend.product_coupon_id"), Value: tok.ProductCouponID},
		{Label: t.T("presend.stock_bundle_id"), Value: tok.StockBundleID},
		{Label: t.T("presend.appid"), Value: tok.AppID},
		{Label: t.T("presend.openid"), Value: tok.OpenIDMasked},
		{Label: t.T("presend.attach"), Value: orDash(tok.Attach)},
		{Label: t.T("presend.request_no"), Value: tok.SendRequestNo},
		{Label: "Request-ID", Value: orDash(tok.WxRequestID)},
		{Label: t.T("presend.requested_at"), Value: s.localTime(tok.CreatedAt)},
	}
	s.render(c, http.StatusOK, templates.PresendTokenPage(props))
}

// maskToken shows a token's beginning only: lists need not carry usable
// tokens.
func maskToken(tok string) string {
	if len(tok) <= 8 {
		return tok
	}
	return tok[:8] + "…"
}

func (s *Server) presendLines(t i18n.Localizer, toks []presend.Token) []templates.PresendLine {
	now := s.Now()
	out := make([]templates.PresendLine, 0, len(toks))
	for i := range toks {
		tok := &toks[i]
		l := templates.PresendLine{
			ID: tok.ID, When: s.localTime(tok.CreatedAt), ProductCouponID: tok.ProductCouponID, StockBundleID: tok.StockBundleID,
			AppID: tok.AppID, OpenID: tok.OpenIDMasked, Token: maskToken(tok.Token), Status: tok.Status,
			StatusLabel: t.T("presend.status." + tok.Status), RequestNo: tok.SendRequestNo,
		}
		switch {
		case tok.Status == presend.StatusIssued && tok.Expired(now):
			l.Expiry = t.T("presend.expired_short")
		case tok.Status == presend.StatusIssued && tok.ExpiresAt != nil:
			l.Expiry = t.T("presend.valid_until_short", s.localTime(*tok.ExpiresAt))
		case tok.WxErrorCode != "":
			l.Expiry = problemLine(t, tok.WxStatus, tok.WxErrorCode, tok.WxErrorMessage)
		}
		out = append(out, l)
	}
	return out
}

// stockActivity is the stock page's record of what the console did on
// WeChat Pay for the stock: its deactivation requests and the pre-sends of
// its bundles, OpenIDs masked.
func (s *Server) stockActivity(c *gin.Context, st *models.Stock, t i18n.Localizer) templates.StockActivity {
	var a templates.StockActivity
	ctx := c.Request.Context()
	ops, err := s.Deactivate.ForStock(ctx, st.ID)
	if err != nil {
		s.log(c).Error("stock page: deactivations", "err", err)
	}
	a.Deactivations = s.deactivationLines(t, ops)
	if st.Kind == models.KindProductCoupon && len(st.Bundles) > 0 {
		toks, err := s.Presend.ForStock(ctx, st, recentPresends)
		if err != nil {
			s.log(c).Error("stock page: pre-sends", "err", err)
		}
		a.Presends = s.presendLines(t, toks)
		if s.allowed(currentUser(c), http.MethodGet, "/presend") {
			a.PresendURL = "/presend?" + url.Values{"product_coupon_id": {st.ProductCouponID}, "stock_bundle_id": {st.Bundles[0].StockBundleID}}.Encode()
		}
	}
	return a
}
