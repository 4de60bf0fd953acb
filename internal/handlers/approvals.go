package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"voucherconsole/internal/approvals"
	"voucherconsole/internal/i18n"
	"voucherconsole/internal/models"
	"voucherconsole/internal/textcheck"
	"voucherconsole/internal/uploads"
	"voucherconsole/internal/wxpay"
	"voucherconsole/web/templates"
)

// requestApproval is called by the deactivation form once it is valid:
// when the policy says deactivation needs a second person, the request is
// recorded (nothing is sent) and the requester sent to it. It reports
// whether it answered the request.
func (s *Server) requestApproval(c *gin.Context, st *models.Stock, reason, formToken string) bool {
	ctx := c.Request.Context()
	p, err := s.Approvals.Policy(ctx)
	if err != nil {
		s.serverError(c, err)
		return true
	}
	if !p.Deactivate {
		return false
	}
	r, _, err := s.Approvals.RequestDeactivation(ctx, s.auditContext(c), st, reason, formToken)
	if err != nil {
		s.serverError(c, err)
		return true
	}
	t := s.localizer(c)
	s.setFlash(c, "info", t.T("approvals.requested", r.RequestNo))
	redirect(c, "/approvals/"+strconv.FormatInt(r.ID, 10))
	return true
}

// requestCreateApproval is requestApproval for a voucher stock whose
// budget (max_amount) reaches the policy's threshold.
func (s *Server) requestCreateApproval(c *gin.Context, req wxpay.CreateFavorStockRequest, formToken string) bool {
	if s.Approvals == nil {
		return false
	}
	ctx := c.Request.Context()
	p, err := s.Approvals.Policy(ctx)
	if err != nil {
		s.serverError(c, err)
		return true
	}
	if !p.CreateNeedsApproval(req.StockUseRule.MaxAmount) {
		return false
	}
	r, _, err := s.Approvals.RequestCreate(ctx, s.auditContext(c), req, formToken)
	if err != nil {
		s.serverError(c, err)
		return true
	}
	s.setFlash(c, "info", s.localizer(c).T("approvals.requested_create", r.RequestNo))
	redirect(c, "/approvals/"+strconv.FormatInt(r.ID, 10))
	return true
}

func approvalStatusLabel(t i18n.Localizer, st approvals.Status) string {
	return t.T("approvals.status." + string(st))
}

// approvalsPage is GET /approvals.
func (s *Server) approvalsPage(c *gin.Context) {
	u := currentUser(c)
	items, err := s.Approvals.List(c.Request.Context(), u)
	if err != nil {
		s.serverError(c, err)
		return
	}
	p := s.page(c, "approvals.title")
	t := p.T
	props := templates.ApprovalsProps{Page: p, Approver: s.Approvals.MayApprove(u)}
	for _, it := range items {
		id := strconv.FormatInt(it.ID, 10)
		props.Rows = append(props.Rows, templates.ApprovalRow{
			Link: "/approvals/" + id, ID: id, KindLabel: t.T("approvals.kind." + it.Kind), Stock: orDash(it.StockID),
			Requester: it.Requester, Status: string(it.Status), StatusLabel: approvalStatusLabel(t, it.Status),
			Created: s.localTime(it.CreatedAt), Expires: s.localTime(it.ExpiresAt),
		})
	}
	s.render(c, http.StatusOK, templates.ApprovalsPage(props))
}

// approvalFromPath loads the request named by :id that the user may see
// (404 otherwise: a request not yours does not exist for you).
func (s *Server) approvalFromPath(c *gin.Context) (*approvals.Item, bool) {
	it, ok := fromPath(s, c, s.Approvals.Get, approvals.ErrNotFound)
	if !ok {
		return nil, false
	}
	if !s.Approvals.Visible(currentUser(c), it) {
		s.notFound(c)
		return nil, false
	}
	return it, true
}

// approvalProps builds the request's page: the call as WeChat Pay will
// receive it and the stock's state, read back from WeChat Pay.
func (s *Server) approvalProps(c *gin.Context, it *approvals.Item) (templates.ApprovalProps, error) {
	u := currentUser(c)
	p := s.page(c, "approvals.title")
	t := p.T
	id := strconv.FormatInt(it.ID, 10)
	props := templates.ApprovalProps{
		Page: p, ID: id, KindLabel: t.T("approvals.kind." + it.Kind), Status: string(it.Status),
		StatusLabel: approvalStatusLabel(t, it.Status), Method: it.Method, Path: it.Path, RequestNo: it.RequestNo,
		CanDecide: s.Approvals.CanDecide(u, it), CanWithdraw: s.Approvals.CanWithdraw(u, it),
		OwnRequest: it.RequestedBy == u.ID, Errors: templates.FieldErrors{},
	}
	var body bytes.Buffer
	if err := json.Indent(&body, []byte(it.Body), "", "  "); err != nil {
		body.Reset()
		body.WriteString(it.Body)
	}
	props.Body = body.String()
	props.Facts = []templates.Fact{
		{Label: t.T("approvals.requester"), Value: it.Requester},
		{Label: t.T("approvals.created"), Value: s.localTime(it.CreatedAt)},
		{Label: t.T("approvals.expires"), Value: s.localTime(it.ExpiresAt)},
		{Label: t.T("stocks.stock_id"), Value: orDash(it.StockID)},
	}
	if it.Decider != "" && it.DecidedAt != nil {
		props.Facts = append(props.Facts,
			templates.Fact{Label: t.T("approvals.decider"), Value: it.Decider},
			templates.Fact{Label: t.T("approvals.decided_at"), Value: s.localTime(*it.DecidedAt)})
	}
	if it.RejectReason != "" {
		props.Facts = append(props.Facts, templates.Fact{Label: t.T("approvals.reject_reason"), Value: it.RejectReason})
	}
	if it.StockRef != nil {
		st, err := s.Stocks.Get(c.Request.Context(), *it.StockRef)
		if err != nil {
			return props, err
		}
		if _, err := s.Deactivate.ReadBack(c.Request.Context(), st); err != nil {
			if props.ReadError = wxProblem(t, err); props.ReadError == nil {
				return props, err
			}
		}
		props.StockLink = "/stocks/" + strconv.FormatInt(st.ID, 10)
		props.StockState, props.StateLabel = string(st.State), t.T("stocks.state."+string(st.State))
		props.Facts = append(props.Facts, templates.Fact{Label: t.T("stocks.wx_state"), Value: orDash(st.WxState)})
	}
	return props, nil
}

// approvalPage is GET /approvals/{id}.
func (s *Server) approvalPage(c *gin.Context) {
	it, ok := s.approvalFromPath(c)
	if !ok {
		return
	}
	props, err := s.approvalProps(c, it)
	if err != nil {
		s.serverError(c, err)
		return
	}
	s.render(c, http.StatusOK, templates.ApprovalPage(props))
}

// approvalRefused answers a decision the service refused: 403 for the
// requester deciding their own request (audited as denied), 409 for one no
// longer pending.
func (s *Server) approvalRefused(c *gin.Context, id int64, err error) {
	t := s.localizer(c)
	status, msg := http.StatusConflict, "approvals.err.decided"
	switch {
	case errors.Is(err, approvals.ErrNotFound):
		s.notFound(c)
		return
	case errors.Is(err, approvals.ErrOwnRequest), errors.Is(err, approvals.ErrNotApprover), errors.Is(err, approvals.ErrNotRequester):
		s.auditDenied(c, "approval_not_allowed")
		status, msg = http.StatusForbidden, "approvals.err.own_request"
		if errors.Is(err, approvals.ErrNotRequester) {
			msg = "approvals.err.not_requester"
		}
	case errors.Is(err, approvals.ErrExpired):
		msg = "approvals.err.expired"
	case !errors.Is(err, approvals.ErrDecided):
		s.serverError(c, err)
		return
	}
	it, gerr := s.Approvals.Get(c.Request.Context(), id)
	if gerr != nil || !s.Approvals.Visible(currentUser(c), it) {
		p := s.page(c, "approvals.title")
		s.render(c, status, templates.ErrorPage(templates.ErrorProps{Page: p, Status: status, Heading: t.T("approvals.title"), Message: t.T(msg)}))
		return
	}
	props, perr := s.approvalProps(c, it)
	if perr != nil {
		s.serverError(c, perr)
		return
	}
	props.Error = t.T(msg)
	s.render(c, status, templates.ApprovalPage(props))
}

// refusedDecision reports whether err is the service refusing a decision
// (nothing was changed or sent), rather than the outcome of a call.
func refusedDecision(err error) bool {
	for _, e := range []error{approvals.ErrNotFound, approvals.ErrOwnRequest, approvals.ErrNotApprover,
		approvals.ErrNotRequester, approvals.ErrDecided, approvals.ErrExpired} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func approvalID(c *gin.Context) (int64, bool) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	return id, err == nil && id > 0
}

// approvalApprove is POST /approvals/{id}/approve: the recorded call is
// made at once; of two approvers at once, one makes it.
func (s *Server) approvalApprove(c *gin.Context) {
	id, ok := approvalID(c)
	if !ok {
		s.notFound(c)
		return
	}
	t := s.localizer(c)
	r, st, err := s.Approvals.Approve(c.Request.Context(), s.auditContext(c), currentUser(c), id)
	back := "/approvals/" + strconv.FormatInt(id, 10)
	switch {
	case refusedDecision(err):
		s.approvalRefused(c, id, err)
		return
	case errors.Is(err, approvals.ErrNotSendable) && r != nil && r.Kind == approvals.KindUpload:
		s.setFlash(c, "error", t.T("approvals.err.upload_changed"))
	case errors.Is(err, approvals.ErrNotSendable):
		s.setFlash(c, "error", t.T("approvals.err.not_sendable"))
	case err == nil && r.Kind == approvals.KindUpload:
		s.setFlash(c, "success", t.T("approvals.upload_started"))
	case err != nil:
		prob := wxProblem(t, err)
		if prob == nil {
			s.serverError(c, err)
			return
		}
		it, gerr := s.Approvals.Get(c.Request.Context(), id)
		if gerr != nil {
			s.serverError(c, gerr)
			return
		}
		props, perr := s.approvalProps(c, it)
		if perr != nil {
			s.serverError(c, perr)
			return
		}
		props.WxError = prob
		s.render(c, problemStatus(prob), templates.ApprovalPage(props))
		return
	default:
		state := "—"
		if st != nil {
			state = t.T("stocks.state." + string(st.State))
		}
		s.setFlash(c, "success", t.T("approvals.approved", r.RequestNo, state))
	}
	redirect(c, back)
}

// approvalReject is POST /approvals/{id}/reject: a reason is required;
// nothing is sent.
func (s *Server) approvalReject(c *gin.Context) {
	id, ok := approvalID(c)
	if !ok {
		s.notFound(c)
		return
	}
	t := s.localizer(c)
	reason := c.PostForm("reject_reason")
	_, err := s.Approvals.Reject(c.Request.Context(), s.auditContext(c), currentUser(c), id, reason)
	var field string
	switch {
	case errors.Is(err, approvals.ErrReasonRequired):
		field = t.T("approvals.err.reason_required")
	case errors.Is(err, approvals.ErrReasonTooLong):
		field = t.T("approvals.err.reason_too_long", approvals.MaxReason, utf8.RuneCountInString(reason))
	case errors.Is(err, approvals.ErrReasonInvalid):
		field = t.T("approvals.err.reason_invalid")
	case err != nil:
		s.approvalRefused(c, id, err)
		return
	default:
		s.setFlash(c, "success", t.T("approvals.rejected"))
		redirect(c, "/approvals/"+strconv.FormatInt(id, 10))
		return
	}
	it, ok := s.approvalFromPath(c)
	if !ok {
		return
	}
	props, perr := s.approvalProps(c, it)
	if perr != nil {
		s.serverError(c, perr)
		return
	}
	props.Errors["reject_reason"], props.Reason = field, textcheck.Clean(reason) // kept, never the bad bytes
	s.render(c, http.StatusUnprocessableEntity, templates.ApprovalPage(props))
}

// approvalWithdraw is POST /approvals/{id}/withdraw, by the requester.
func (s *Server) approvalWithdraw(c *gin.Context) {
	id, ok := approvalID(c)
	if !ok {
		s.notFound(c)
		return
	}
	if _, err := s.Approvals.Withdraw(c.Request.Context(), s.auditContext(c), currentUser(c), id); err != nil {
		s.approvalRefused(c, id, err)
		return
	}
	s.setFlash(c, "success", s.localizer(c).T("approvals.withdrawn"))
	redirect(c, "/approvals/"+strconv.FormatInt(id, 10))
}

// approvalPolicyPage is GET /admin/approvals.
func (s *Server) approvalPolicyPage(c *gin.Context) {
	p, err := s.Approvals.Policy(c.Request.Context())
	if err != nil {
		s.serverError(c, err)
		return
	}
	s.render(c, http.StatusOK, templates.ApprovalPolicyPage(templates.ApprovalPolicyProps{
		Page: s.page(c, "approvals.policy_title"), Policy: p.String(), Default: orDash(s.Approvals.Default.String()), Errors: templates.FieldErrors{},
	}))
}

// maxPolicyInput bounds the policy field.
const maxPolicyInput = 200

// approvalPolicySet is POST /admin/approvals (audited). A post without the
// form's marker changes nothing.
func (s *Server) approvalPolicySet(c *gin.Context) {
	if c.PostForm("submitted") != "1" {
		redirect(c, "/admin/approvals")
		return
	}
	text := c.PostForm("approvals")
	t := s.localizer(c)
	var perr error
	if len(text) > maxPolicyInput {
		perr = approvals.ErrPolicy
	} else {
		_, perr = s.Approvals.SetPolicy(c.Request.Context(), s.auditContext(c), text)
	}
	switch {
	case perr == nil:
		s.setFlash(c, "success", t.T("approvals.policy_saved"))
		redirect(c, "/admin/approvals")
		return
	case !errors.Is(perr, approvals.ErrPolicy):
		s.serverError(c, perr)
		return
	}
	s.render(c, http.StatusUnprocessableEntity, templates.ApprovalPolicyPage(templates.ApprovalPolicyProps{
		Page: s.page(c, "approvals.policy_title"), Policy: text, Default: orDash(s.Approvals.Default.String()),
		Errors: templates.FieldErrors{"approvals": t.T("approvals.err.policy")},
	}))
}

// requestUploadApproval is called when the operator starts a checked
// upload: when the policy says a file of this many codes to send needs a
// second person, the request is recorded with the batches the dry run
// fixed (nothing is sent) and the operator sent to it. It reports whether
// it answered the request.
func (s *Server) requestUploadApproval(c *gin.Context) bool {
	if s.Approvals == nil || s.Approvals.Uploads == nil {
		return false
	}
	ctx := c.Request.Context()
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil {
		return false // the upload action answers 404
	}
	u, err := s.Uploads.Get(ctx, id)
	if err != nil || u.Status != uploads.StatusChecked {
		return false // the upload action answers
	}
	p, err := s.Approvals.Policy(ctx)
	if err != nil {
		s.serverError(c, err)
		return true
	}
	if !p.UploadNeedsApproval(u.CodesTotal) {
		return false
	}
	st, err := s.Stocks.Get(ctx, u.StockRef)
	if err != nil {
		s.serverError(c, err)
		return true
	}
	r, _, err := s.Approvals.RequestUpload(ctx, s.auditContext(c), u, st.StockID)
	if err != nil {
		s.serverError(c, err)
		return true
	}
	s.setFlash(c, "info", s.localizer(c).T("approvals.requested_upload", r.RequestNo))
	redirect(c, "/approvals/"+strconv.FormatInt(r.ID, 10))
	return true
}

// uploadApprovalNotice says why a checked upload was not sent: its
// approval request waits, or was rejected, expired, withdrawn or failed.
func (s *Server) uploadApprovalNotice(c *gin.Context, u *uploads.Upload) (string, error) {
	if s.Approvals == nil || u.Status != uploads.StatusChecked && u.Status != uploads.StatusAbandoned {
		return "", nil
	}
	r, err := s.Approvals.UploadApproval(c.Request.Context(), u.ID)
	if err != nil || r == nil || r.Status == approvals.StatusApproved {
		return "", err
	}
	t := s.localizer(c)
	id := strconv.FormatInt(r.ID, 10)
	if r.Status == approvals.StatusRejected {
		return t.T("uploads.approval.rejected", id, r.RejectReason), nil
	}
	return t.T("uploads.approval."+string(r.Status), id), nil
}
