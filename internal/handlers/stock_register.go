package handlers

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"voucherconsole/internal/models"
	"voucherconsole/internal/stocks"
	"voucherconsole/internal/textcheck"
	"voucherconsole/web/templates"
)

func (s *Server) stockRegisterPage(c *gin.Context) {
	p := s.page(c, "stocks.register_title")
	s.render(c, http.StatusOK, templates.StockRegisterPage(templates.StockRegisterProps{
		Page: p, Kind: string(models.KindProductCoupon), Kinds: registerKinds(s, c),
	}))
}

// registerKinds are the kinds that are created elsewhere and registered here.
func registerKinds(s *Server, c *gin.Context) []templates.Option {
	t := s.localizer(c)
	var out []templates.Option
	for _, k := range []models.StockKind{models.KindProductCoupon, models.KindBusifavor, models.KindFavor} {
		out = append(out, templates.Option{Value: string(k), Label: t.T("stocks.kind." + string(k))})
	}
	return out
}

type registerForm struct {
	Kind            string `form:"kind"`
	ProductCouponID string `form:"product_coupon_id"`
	StockID         string `form:"stock_id"`
	StockBundleIDs  string `form:"stock_bundle_id"`
	Name            string `form:"name"`
}

func splitIDs(s string) []string {
	f := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '，' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
	return f
}

// stockRegister registers an existing stock after reading it back from
// WeChat Pay.
func (s *Server) stockRegister(c *gin.Context) {
	var f registerForm
	_ = c.ShouldBind(&f)
	p := s.page(c, "stocks.register_title")
	props := templates.StockRegisterProps{
		Page: p, Kind: f.Kind, ProductCouponID: f.ProductCouponID, StockID: f.StockID,
		StockBundleIDs: f.StockBundleIDs, Name: f.Name, Kinds: registerKinds(s, c), Errors: templates.FieldErrors{},
	}
	kind := models.StockKind(f.Kind)
	switch kind {
	case models.KindProductCoupon, models.KindBusifavor, models.KindFavor:
	default:
		props.Errors["kind"] = p.T.T("stocks.err.kind")
	}
	// A value that is not text has no other problem worth naming.
	checkLines(p.T, props.Errors, map[string]*string{"kind": &props.Kind, "product_coupon_id": &props.ProductCouponID,
		"stock_id": &props.StockID, "name": &props.Name})
	if textcheck.Text(props.StockBundleIDs, 0) != nil { // a text area: one ID a line
		props.Errors["stock_bundle_id"], props.StockBundleIDs = p.T.T("input.bad_text"), textcheck.Clean(props.StockBundleIDs)
	}
	if strings.TrimSpace(f.StockID) == "" {
		props.Errors["stock_id"] = p.T.T("form.required")
	}
	if kind == models.KindProductCoupon && strings.TrimSpace(f.ProductCouponID) == "" {
		props.Errors["product_coupon_id"] = p.T.T("stocks.err.product_coupon_id_required")
	}
	if len([]rune(f.Name)) > 60 {
		props.Errors["name"] = p.T.T("stocks.err.name_too_long", 60)
	}
	if len(props.Errors) == 0 {
		st, err := s.Stocks.Register(c.Request.Context(), s.auditContext(c), stocks.RegisterInput{
			Kind: kind, ProductCouponID: f.ProductCouponID, StockID: f.StockID, BundleIDs: splitIDs(f.StockBundleIDs), Name: strings.TrimSpace(f.Name),
		})
		switch {
		case err == nil:
			s.setFlash(c, "success", p.T.T("stocks.registered", displayName(p.T, st)))
			redirect(c, "/stocks/"+strconv.FormatInt(st.ID, 10))
			return
		case errors.Is(err, stocks.ErrInvalidID):
			props.Errors["stock_id"] = p.T.T("stocks.err.invalid_id")
		case errors.Is(err, stocks.ErrAlreadyRegistered):
			props.Errors["stock_id"] = p.T.T("stocks.err.already_registered")
		default:
			prob := wxProblem(p.T, err)
			if prob == nil {
				s.serverError(c, err)
				return
			}
			if prob.Code == "NOT_FOUND" || prob.Code == "RESOURCE_NOT_EXISTS" || prob.Status == http.StatusNotFound {
				prob.Message = p.T.T("stocks.err.wx_not_found") + " (" + prob.Message + ")"
			}
			props.WxError = prob
			s.render(c, problemStatus(prob), templates.StockRegisterPage(props))
			return
		}
	}
	s.render(c, http.StatusUnprocessableEntity, templates.StockRegisterPage(props))
}
