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
	"voucherconsole/internal/textcheck"
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
			prob := wxProblem(t, err)
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
		l.Error = problemLine(t, o.WxStatus, o.WxErrorCode, o.WxErrorMessage)
		out = append(out, l)
	}
	return out
}

// deactivate is POST /stocks/{id}/deactivate: the service answers the form
// (deactivate.Service.Submit) with at most one WeChat Pay call on the way to
// a success — a form already posted gets its outcome; a stock that cannot be
// deactivated is refused (409, audited as denied, nothing sent); a form with
// errors comes back with every one (422) — and the page shows the outcome.
func (s *Server) deactivate(c *gin.Context) {
	st, ok := s.stockFromPath(c)
	if !ok {
		return
	}
	var f deactivate.Form
	_ = c.ShouldBind(&f)
	f.FormToken = formTokenOr(f.FormToken)
	// A valid form may wait for a second person's approval (approvals.go)
	// instead of being sent.
	hold := func(st *models.Stock, reason, formToken string) bool {
		return s.requestApproval(c, st, reason, formToken)
	}
	res, err := s.Deactivate.Submit(c.Request.Context(), s.auditContext(c), st, f, hold)
	if res.Stock == nil {
		res.Stock = st
	}
	if res.Held { // approvals.go answered: a second person first
		return
	}
	t := s.localizer(c)
	back := "/stocks/" + strconv.FormatInt(res.Stock.ID, 10) + "/deactivate"
	switch {
	case err == nil && res.Refused == nil && len(res.Errors) == 0:
		st := res.Stock
		s.setFlash(c, "success", t.T("deactivate.done", t.T("stocks.state."+string(st.State)), s.wxTime(st.DeactivateTime), st.DeactivateRequestNo))
		redirect(c, back)
		return
	case errors.Is(err, deactivate.ErrInFlight):
		s.setFlash(c, "info", t.T("deactivate.in_flight"))
		redirect(c, back)
		return
	}
	var prob *templates.WxProblem
	if err != nil {
		if prob = wxProblem(t, err); prob == nil {
			s.serverError(c, err)
			return
		}
	}
	props, perr := s.deactivateProps(c, res.Stock, false)
	if perr != nil {
		s.serverError(c, perr)
		return
	}
	props.Reason, props.Confirm, props.FormToken, props.WxError = f.Reason, f.Confirm, f.FormToken, prob
	status := http.StatusUnprocessableEntity
	switch {
	case prob != nil:
		status = problemStatus(prob)
		if !res.Pending {
			props.FormToken = newFormToken() // refused: the corrected form is a new request
		}
	case res.Refused != nil:
		status = http.StatusConflict
	}
	for field, problem := range res.Errors {
		switch {
		case problem == deactivate.ProblemText:
			props.Errors[field] = t.T("input.bad_text")
			if field == "deactivate_reason" { // kept, but never the bad bytes
				props.Reason = textcheck.Clean(props.Reason)
			} else {
				props.Confirm = textcheck.Clean(props.Confirm)
			}
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
	s.render(c, status, templates.DeactivatePage(props))
}
