package handlers

import (
	"errors"
	"maps"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"voucherconsole/internal/stocks"
	"voucherconsole/internal/stocks/favorform"
	"voucherconsole/web/templates"
)

// stockNewPage is the create-voucher-stock form. Each rendering carries a
// fresh form token: posting the same form twice resends one request.
func (s *Server) stockNewPage(c *gin.Context) {
	p := s.page(c, "home.create_stock")
	form := favorform.DefaultForm(s.Now(), s.loc)
	form.AvailableMerchants = s.Stocks.Merchant() // the creating merchant is the usual choice
	s.render(c, http.StatusOK, templates.StockNewPage(templates.StockNewProps{
		Page: p, Form: form, FormToken: newFormToken(),
		MchID: s.Stocks.Merchant(), TimeZone: s.Config.Timezone,
	}))
}

// stockCreate validates every field of document 003 on the server before any
// call, then creates the stock through the recorded call (wxops.Run): the
// same form posted again — after an unknown outcome too — resends the same
// request number, so WeChat Pay creates one stock.
func (s *Server) stockCreate(c *gin.Context) {
	_ = c.Request.ParseForm()
	textErrs := favorform.CheckText(c.Request.PostForm)
	form := favorform.FormFromValues(c.Request.PostForm)
	p := s.page(c, "home.create_stock")
	props := templates.StockNewProps{Page: p, Form: form, FormToken: formTokenOr(c.PostForm("form_token")),
		MchID: s.Stocks.Merchant(), TimeZone: s.Config.Timezone}
	req, errs := form.Validate(s.Now(), s.loc, props.MchID)
	if len(textErrs) > 0 { // not text: that is the problem to name
		if errs == nil {
			errs = favorform.Errors{}
		}
		maps.Copy(errs, textErrs)
	}
	if len(errs) > 0 {
		props.Errors = errs.Localize(p.T)
		s.render(c, http.StatusUnprocessableEntity, templates.StockNewPage(props))
		return
	}
	if s.requestCreateApproval(c, req, props.FormToken) { // approvals.go: a second person first
		return
	}
	res, err := s.Stocks.CreateFavor(c.Request.Context(), s.auditContext(c), props.FormToken, req)
	switch {
	case err == nil:
		s.setFlash(c, "success", p.T.T("stocks.created", res.Stock.Name, res.Stock.StockID))
		redirect(c, "/stocks/"+strconv.FormatInt(res.Stock.ID, 10))
		return
	case errors.Is(err, stocks.ErrInFlight):
		props.Notice = p.T.T("wx.in_flight")
		s.render(c, http.StatusConflict, templates.StockNewPage(props))
		return
	}
	prob := wxProblem(p.T, err)
	if prob == nil {
		s.serverError(c, err)
		return
	}
	props.WxError = prob
	if res.Pending {
		props.Notice = p.T.T("wx.pending", res.RequestNo)
	} else {
		props.FormToken = newFormToken() // refused: the corrected form is a new request
	}
	s.render(c, problemStatus(prob), templates.StockNewPage(props))
}
