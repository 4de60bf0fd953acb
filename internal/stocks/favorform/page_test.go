package favorform_test

import (
	"bytes"
	"context"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"voucherconsole/internal/i18n"
	"voucherconsole/internal/stocks/favorform"
	"voucherconsole/web/templates"
)

// formFields are the names the page must post: every field the form reads.
var formFields = []string{
	"stock_name", "comment", "available_begin_time", "available_end_time", "max_coupons", "max_amount",
	"max_amount_by_day", "max_coupons_per_user", "natural_person_limit", "prevent_api_abuse", "description",
	"merchant_logo", "merchant_name", "background_color", "coupon_image", "jump_target", "mini_program_appid",
	"mini_program_path", "coupon_amount", "transaction_minimum", "goods_tag", "trade_type", "combine_use",
	"available_items", "unavailable_items", "available_merchants", "no_cash", "stock_type", "available_week_day",
	"begin_time", "end_time", "second_day_available", "available_time_after_receive", "name", "bin",
}

func render(t *testing.T, props templates.StockNewProps) *goquery.Document {
	t.Helper()
	var buf bytes.Buffer
	if err := templates.StockNewPage(props).Render(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	doc, err := goquery.NewDocumentFromReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// postedValues is what a browser would submit from the rendered form:
// inputs (checkboxes only when ticked), textareas and selected options.
func postedValues(doc *goquery.Document) url.Values {
	v := url.Values{}
	form := doc.Find(`form[action="/stocks/new"]`)
	form.Find("input[name]").Each(func(_ int, s *goquery.Selection) {
		name, _ := s.Attr("name")
		if typ, _ := s.Attr("type"); typ == "checkbox" {
			if _, on := s.Attr("checked"); !on {
				return
			}
		}
		val, _ := s.Attr("value")
		v.Add(name, val)
	})
	form.Find("textarea[name]").Each(func(_ int, s *goquery.Selection) {
		name, _ := s.Attr("name")
		v.Add(name, s.Text())
	})
	form.Find("select[name]").Each(func(_ int, s *goquery.Selection) {
		name, _ := s.Attr("name")
		opt := s.Find("option[selected]")
		if opt.Length() == 0 {
			opt = s.Find("option").First()
		}
		val, _ := opt.Attr("value")
		v.Add(name, val)
	})
	return v
}

func TestStockNewPage(t *testing.T) {
	cat, err := i18n.Load()
	if err != nil {
		t.Fatal(err)
	}
	loc := time.FixedZone("CST", 8*3600)
	now := time.Date(2026, 6, 15, 10, 30, 0, 0, loc)
	form := favorform.Form{
		StockName: "夏日_满减", Comment: "六月", AvailableBeginTime: "2026-07-01T10:00", AvailableEndTime: "2026-07-31T23:59",
		NoCash: "true", StockType: "NORMAL", MaxCoupons: "100", MaxAmount: "1000.001", MaxAmountByDay: "200",
		MaxCouponsPerUser: "3", NaturalPersonLimit: true, Description: "说明\n第二行", MerchantName: "微信支付",
		BackgroundColor: "COLOR081", JumpTarget: "MINI_PROGRAM", MiniProgramPath: "/pages/index",
		CouponAmount: "10", TransactionMinimum: "50", GoodsTag: "a\nb", TradeType: []string{"CARD", "FACE"},
		CombineUse: true, AvailableMerchants: "1900000001", AvailableWeekDay: []string{"3", "0"},
		BeginTime: "09:00", EndTime: "21:00", SecondDayAvailable: true, AvailableTimeAfterReceive: "60",
		LimitCardName: "精粹白金", Bin: "62542688",
	}
	_, errs := form.Validate(now, loc, "1900000001")
	if len(errs) != 3 { // stock_name, max_amount, mini_program_appid
		t.Fatalf("errors: %v", errs)
	}
	for _, l := range i18n.Locales {
		t.Run(string(l), func(t *testing.T) {
			localizer := cat.For(l)
			doc := render(t, templates.StockNewProps{
				Page:      templates.Page{T: localizer, Title: localizer.T("favor.title"), Username: "op"},
				Form:      form,
				Errors:    errs.Localize(localizer),
				FormToken: "tok-123",
				WxError:   &templates.WxErrorView{Status: 400, Code: "PARAM_ERROR", Message: "批次名称不合法", RequestID: "08F0B6AB0606A4B4"},
				MchID:     "1900000001",
				TimeZone:  "Asia/Shanghai",
			})
			f := doc.Find(`form[method="post"][action="/stocks/new"]`)
			if f.Length() != 1 {
				t.Fatal("no form posting to /stocks/new")
			}
			if v, _ := f.Find(`input[type="hidden"][name="form_token"]`).Attr("value"); v != "tok-123" {
				t.Errorf("form_token = %q", v)
			}
			// Every field is there, with its id, a label and help text.
			for _, name := range formFields {
				if f.Find(`[name="`+name+`"]`).Length() == 0 {
					t.Errorf("no input named %s", name)
				}
				if f.Find("#"+name).Length() != 1 {
					t.Errorf("no single element with id %s", name)
				}
				if strings.TrimSpace(f.Find("#"+name+"-help").Text()) == "" {
					t.Errorf("%s has no help text", name)
				}
			}
			for _, legend := range []string{"favor.group.basic", "favor.group.stock_use_rule", "favor.group.coupon_use_rule", "favor.group.pattern_info"} {
				want := localizer.T(legend)
				found := false
				f.Find("fieldset > legend").Each(func(_ int, s *goquery.Selection) { found = found || s.Text() == want })
				if !found {
					t.Errorf("no fieldset legend %q", want)
				}
			}
			// Each error sits next to its field, in the page's language.
			for field, m := range errs {
				if got := f.Find("#" + field + "-error").Text(); got != m.Text(localizer) {
					t.Errorf("%s error = %q, want %q", field, got, m.Text(localizer))
				}
			}
			// What the browser would post back is exactly what was typed.
			if got := favorform.FormFromValues(postedValues(doc)); !reflect.DeepEqual(got, form) {
				t.Errorf("values not kept:\n got %+v\nwant %+v", got, form)
			}
			// The WeChat Pay error shows code, message and Request-ID.
			box := doc.Find("#wx-error")
			for _, want := range []string{"PARAM_ERROR", "批次名称不合法", "08F0B6AB0606A4B4", "400"} {
				if !strings.Contains(box.Text(), want) {
					t.Errorf("WeChat Pay error box lacks %q: %s", want, box.Text())
				}
			}
			if !strings.Contains(doc.Find("#time-zone-note").Text(), "Asia/Shanghai") {
				t.Error("no time zone note")
			}
			if got := doc.Find(`option[value="COLOR081"]`).Text(); got != localizer.T("favor.color.COLOR081") {
				t.Errorf("colour label %q", got)
			}
		})
	}
}

// A new page from DefaultForm posts a form whose only errors are the
// fields the operator has to fill in.
func TestStockNewPageDefaults(t *testing.T) {
	cat, err := i18n.Load()
	if err != nil {
		t.Fatal(err)
	}
	loc := time.FixedZone("CST", 8*3600)
	now := time.Date(2026, 6, 15, 10, 30, 0, 0, loc)
	doc := render(t, templates.StockNewProps{
		Page: templates.Page{T: cat.For(i18n.Chinese)}, Form: favorform.DefaultForm(now, loc), MchID: "1900000001",
	})
	if doc.Find("#wx-error, #form-errors").Length() != 0 {
		t.Error("a fresh page shows errors")
	}
	_, errs := favorform.FormFromValues(postedValues(doc)).Validate(now, loc, "1900000001")
	for field := range errs {
		switch field {
		case "stock_name", "max_coupons", "max_amount", "coupon_amount", "transaction_minimum", "available_merchants":
		default:
			t.Errorf("default form: unexpected error on %s: %v", field, errs[field])
		}
	}
}
