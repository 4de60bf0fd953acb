package handlers

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"voucherconsole/internal/deactivate"
	"voucherconsole/internal/i18n"
	"voucherconsole/internal/models"
	"voucherconsole/web/templates"
)

// formTokenPattern is what a form token looks like: the console makes them
// (newFormToken); anything else is replaced by a fresh one.
var formTokenPattern = regexp.MustCompile(`^[0-9A-Za-z_-]{8,64}$`)

// newFormToken names one instance of a form, so that posting it twice is one
// WeChat Pay request (wxops finds the operation by it).
func newFormToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func formTokenOr(v string) string {
	if formTokenPattern.MatchString(v) {
		return v
	}
	return newFormToken()
}

type deactivateForm struct {
	Reason    string `form:"deactivate_reason"`
	Confirm   string `form:"stock_id"`
	FormToken string `form:"form_token"`
}

// deactivatePage is GET /stocks/{id}/deactivate: what deactivation does, the
// stock's state read back from WeChat Pay, and the form when the state
// allows it.
func (s *Server) deactivatePage(c *gin.Context) {
	st, ok := s.stockFromPath(c)
	if !ok {
		return
	}
	props, err := s.deactivateProps(c, st, true)
	if err != nil {
		s.serverError(c, err)
		return
	}
	props.FormToken = newFormToken()
	s.render(c, http.StatusOK, templates.DeactivatePage(props))
}

// deactivateProps builds the page for st, first reading it back from WeChat
// Pay when readBack is set (a failed read is shown, with the state last
// known).
func (s *Server) deactivateProps(c *gin.Context, st *models.Stock, readBack bool) (templates.DeactivateProps, error) {
	p := s.page(c, "deactivate.title")
	t := p.T
	props := templates.DeactivateProps{Page: p, ID: st.ID, StockID: st.StockID, MaxReason: deactivate.MaxReason, Errors: templates.FieldErrors{}}
	if readBack && st.Kind == models.KindProductCoupon {
		if _, err := s.Deactivate.ReadBack(c.Request.Context(), st); err != nil {
			prob := wxProblem(err)
			if prob == nil {
				return props, err
			}
			props.ReadError = prob
		}
	}
	props.Name = displayName(t, st)
	p.Title = t.T("deactivate.heading", props.Name)
	props.Page = p
	props.State, props.StateLabel = string(st.State), t.T("stocks.state."+string(st.State))
	props.StateExplanation = t.T("stocks.state_help." + string(st.State))
	props.Facts = []templates.Fact{
		{Label: t.T("stocks.kind"), Value: t.T("stocks.kind." + string(st.Kind))},
		{Label: t.T("stocks.stock_id"), Value: st.StockID},
	}
	if st.ProductCouponID != "" {
		props.Facts = append(props.Facts, templates.Fact{Label: t.T("stocks.product_coupon_id"), Value: st.ProductCouponID})
	}
	props.Facts = append(props.Facts, templates.Fact{Label: t.T("stocks.wx_state"), Value: orDash(st.WxState)})
	if st.DeactivateRequestNo != "" || st.DeactivateTime != "" || st.State == models.StateDeactivated {
		props.Facts = append(props.Facts,
			templates.Fact{Label: t.T("stocks.deactivate_time"), Value: s.wxTime(st.DeactivateTime)},
			templates.Fact{Label: t.T("stocks.deactivate_reason"), Value: orDash(st.DeactivateReason)},
			templates.Fact{Label: t.T("stocks.deactivate_request_no"), Value: orDash(st.DeactivateRequestNo)},
		)
	}
	props.RefreshedAt = "—"
	if st.RefreshedAt != nil {
		props.RefreshedAt = s.localTime(*st.RefreshedAt)
	}
	err := deactivate.Check(st)
	props.CanDeactivate = err == nil
	if err != nil {
		props.Refusal = refusal(t, err)
	}
	ops, lerr := s.Deactivate.ForStock(c.Request.Context(), st.ID)
	if lerr != nil {
		return props, lerr
	}
	props.Operations = s.deactivationLines(t, ops)
	if len(ops) > 0 && ops[0].Status == models.OpPending {
		props.Notice = t.T("deactivate.pending", ops[0].RequestNo)
	}
	return props, nil
}

func orDash(v string) string {
	if v == "" {
		return "—"
	}
	return v
}

// refusal says, in the user's language, why a stock cannot be deactivated.
func refusal(t i18n.Localizer, err error) string {
	var na *deactivate.NotAllowedError
	if !errors.As(err, &na) {
		return err.Error()
	}
	if na.Kind != models.KindProductCoupon {
		return t.T("deactivate.refused.kind", t.T("stocks.kind."+string(na.Kind)))
	}
	return t.T("deactivate.refused.state", t.T("stocks.state."+string(na.State)), na.State)
}

func (s *Server) deactivationLines(t i18n.Localizer, ops []deactivate.Operation) []templates.DeactivationLine {
	out := make([]templates.DeactivationLine, 0, len(ops))
	for _, o := range ops {
		l := templates.DeactivationLine{
			When: s.localTime(o.CreatedAt), By: o.Username, RequestNo: o.RequestNo, Reason: o.Reason,
			Status: string(o.Status), StatusLabel: t.T("deactivate.status." + string(o.Status)),
		}
		if o.WxErrorCode != "" {
			l.Error = o.WxErrorCode + ": " + o.WxErrorMessage
		}
		out = append(out, l)
	}
	return out
}

// deactivate is POST /stocks/{id}/deactivate. A form already posted gets its
// outcome; otherwise the state is read back from WeChat Pay and a stock that
// cannot be deactivated is refused (409, audited as denied, nothing sent),
// the form is checked (422 with every error), and only then is the request
// sent.
func (s *Server) deactivate(c *gin.Context) {
	st, ok := s.stockFromPath(c)
	if !ok {
		return
	}
	var f deactivateForm
	_ = c.ShouldBind(&f)
	ctx, ac := c.Request.Context(), s.auditContext(c)

	if done, found, err := s.Deactivate.Repost(ctx, ac, f.FormToken); found {
		if done == nil {
			done = st
		}
		s.deactivateOutcome(c, done, f, err)
		return
	}

	props, err := s.deactivateProps(c, st, true)
	if err != nil {
		s.serverError(c, err)
		return
	}
	props.Reason, props.Confirm, props.FormToken = f.Reason, f.Confirm, formTokenOr(f.FormToken)
	if why := deactivate.Check(st); why != nil {
		if err := s.Deactivate.Refuse(ctx, ac, st, why); err != nil {
			s.serverError(c, err)
			return
		}
		s.render(c, http.StatusConflict, templates.DeactivatePage(props))
		return
	}
	if errs := deactivate.Validate(st, f.Reason, f.Confirm); len(errs) > 0 {
		t := props.Page.T
		for field, problem := range errs {
			switch {
			case field == "deactivate_reason" && problem == deactivate.ProblemTooLong:
				props.Errors[field] = t.T("deactivate.err.reason_too_long", deactivate.MaxReason, utf8.RuneCountInString(f.Reason))
			case field == "deactivate_reason":
				props.Errors[field] = t.T("deactivate.err.reason_required")
			case problem == deactivate.ProblemMismatch:
				props.Errors[field] = t.T("deactivate.err.confirm_mismatch", st.StockID)
			default:
				props.Errors[field] = t.T("deactivate.err.confirm_required")
			}
		}
		s.render(c, http.StatusUnprocessableEntity, templates.DeactivatePage(props))
		return
	}
	if s.requestApproval(c, st, f.Reason, props.FormToken) { // approvals.go: a second person first
		return
	}
	done, err := s.Deactivate.Deactivate(ctx, ac, st, f.Reason, props.FormToken)
	if done == nil {
		done = st
	}
	f.FormToken = props.FormToken
	s.deactivateOutcome(c, done, f, err)
}

// deactivateOutcome answers a sent (or re-posted) deactivation: to the
// deactivation page, which shows the stock as WeChat Pay now has it, or the
// form again with WeChat Pay's error.
func (s *Server) deactivateOutcome(c *gin.Context, st *models.Stock, f deactivateForm, err error) {
	t := s.localizer(c)
	back := "/stocks/" + strconv.FormatInt(st.ID, 10) + "/deactivate"
	switch {
	case err == nil:
		s.setFlash(c, "success", t.T("deactivate.done", t.T("stocks.state."+string(st.State)), s.wxTime(st.DeactivateTime), st.DeactivateRequestNo))
		redirect(c, back)
		return
	case errors.Is(err, deactivate.ErrInFlight):
		s.setFlash(c, "info", t.T("deactivate.in_flight"))
		redirect(c, back)
		return
	}
	prob := wxProblem(err)
	if prob == nil {
		s.serverError(c, err)
		return
	}
	props, perr := s.deactivateProps(c, st, false)
	if perr != nil {
		s.serverError(c, perr)
		return
	}
	props.Reason, props.Confirm, props.FormToken, props.WxError = f.Reason, f.Confirm, formTokenOr(f.FormToken), prob
	s.render(c, problemStatus(prob), templates.DeactivatePage(props))
}
