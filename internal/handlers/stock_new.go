package handlers

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"voucherconsole/internal/stocks/favorform"
	"voucherconsole/web/templates"
)

// stockNewPage is the create-voucher-stock form. Each rendering carries a
// fresh form token: posting the same form twice resends one request.
func (s *Server) stockNewPage(c *gin.Context) {
	p := s.page(c, "home.create_stock")
	form := favorform.DefaultForm(s.Now(), s.loc)
	form.AvailableMerchants = s.WX.Config().MchID // the creating merchant is the usual choice
	s.render(c, http.StatusOK, templates.StockNewPage(templates.StockNewProps{
		Page: p, Form: form, FormToken: newRequestID() + newRequestID(),
		MchID: s.WX.Config().MchID, TimeZone: s.Config.Timezone,
	}))
}

// stockCreate validates every field of document 003 on the server before any
// call, then creates the stock through the recorded-intent path.
func (s *Server) stockCreate(c *gin.Context) {
	_ = c.Request.ParseForm()
	form := favorform.FormFromValues(c.Request.PostForm)
	token := c.PostForm("form_token")
	if token == "" {
		token = newRequestID() + newRequestID()
	}
	p := s.page(c, "home.create_stock")
	props := templates.StockNewProps{Page: p, Form: form, FormToken: token, MchID: s.WX.Config().MchID, TimeZone: s.Config.Timezone}
	req, errs := form.Validate(s.Now(), s.loc, props.MchID)
	if len(errs) > 0 {
		props.Errors = errs.Localize(p.T)
		s.render(c, http.StatusUnprocessableEntity, templates.StockNewPage(props))
		return
	}
	if s.requestCreateApproval(c, req, token) { // approvals.go: a second person first
		return
	}
	st, err := s.Stocks.CreateFavor(c.Request.Context(), s.auditContext(c), s.WX, s.Ops, token, req)
	if err != nil {
		prob := wxProblem(err)
		if prob == nil {
			s.serverError(c, err)
			return
		}
		props.WxError = prob
		s.render(c, problemStatus(prob), templates.StockNewPage(props))
		return
	}
	s.setFlash(c, "success", p.T.T("stocks.created", st.Name, st.StockID))
	redirect(c, "/stocks/"+strconv.FormatInt(st.ID, 10))
}
