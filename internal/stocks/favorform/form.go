// Package favorform is the console's create-voucher-stock form (创建代金券批次,
// document 003, POST /v3/marketing/favor/coupon-stocks): the values as the
// operator typed them, the document's validation rules, and the conversion to
// the request body. It knows nothing of HTTP or the database.
//
// Form fields are named after the WeChat Pay request fields they fill; nested
// fields by their leaf name (coupon_amount, not
// coupon_use_rule.fixed_normal_coupon.coupon_amount). The only leaf name that
// is not self-explanatory is "name", limit_card's card name.
package favorform

import (
	"net/url"
	"strings"
	"time"
)

// Form field names (the request fields' leaf names). Errors are keyed by
// these, and the template gives each input the same name and id.
const (
	FieldStockName                 = "stock_name"
	FieldComment                   = "comment"
	FieldAvailableBeginTime        = "available_begin_time"
	FieldAvailableEndTime          = "available_end_time"
	FieldMaxCoupons                = "max_coupons"
	FieldMaxAmount                 = "max_amount"
	FieldMaxAmountByDay            = "max_amount_by_day"
	FieldMaxCouponsPerUser         = "max_coupons_per_user"
	FieldNaturalPersonLimit        = "natural_person_limit"
	FieldPreventAPIAbuse           = "prevent_api_abuse"
	FieldDescription               = "description"
	FieldMerchantLogo              = "merchant_logo"
	FieldMerchantName              = "merchant_name"
	FieldBackgroundColor           = "background_color"
	FieldCouponImage               = "coupon_image"
	FieldJumpTarget                = "jump_target"
	FieldMiniProgramAppID          = "mini_program_appid"
	FieldMiniProgramPath           = "mini_program_path"
	FieldAvailableWeekDay          = "available_week_day"
	FieldBeginTime                 = "begin_time"
	FieldEndTime                   = "end_time"
	FieldSecondDayAvailable        = "second_day_available"
	FieldAvailableTimeAfterReceive = "available_time_after_receive"
	FieldCouponAmount              = "coupon_amount"
	FieldTransactionMinimum        = "transaction_minimum"
	FieldGoodsTag                  = "goods_tag"
	FieldTradeType                 = "trade_type"
	FieldCombineUse                = "combine_use"
	FieldAvailableItems            = "available_items"
	FieldUnavailableItems          = "unavailable_items"
	FieldAvailableMerchants        = "available_merchants"
	FieldLimitCardName             = "name" // limit_card.name
	FieldBin                       = "bin"  // limit_card.bin
	FieldNoCash                    = "no_cash"
	FieldStockType                 = "stock_type"
)

// Document 003's enumerations, in the document's order. The template offers
// exactly these; Validate refuses anything else.
var (
	// BackgroundColors are pattern_info.background_color's 14 values.
	BackgroundColors = []string{"COLOR010", "COLOR020", "COLOR030", "COLOR040", "COLOR050", "COLOR060", "COLOR070",
		"COLOR080", "COLOR081", "COLOR082", "COLOR090", "COLOR100", "COLOR101", "COLOR102"}
	// JumpTargets are pattern_info.jump_target's values; unset means
	// DEFAULT_PAGE on WeChat's side.
	JumpTargets = []string{"PAYMENT_CODE", "MINI_PROGRAM", "DEFAULT_PAGE"}
	// TradeTypes are coupon_use_rule.trade_type's values; none chosen means
	// any payment mode (不限).
	TradeTypes = []string{"MICROAPP", "APPPAY", "PPAY", "CARD", "FACE", "OTHER"}
	// StockTypes: document 003 only supports NORMAL (固定面额满减券批次).
	StockTypes = []string{"NORMAL"}
	// NoCashValues are no_cash's values as the form posts them: "false"
	// 预充值 (prepaid budget) and "true" 免充值 (no prepayment).
	NoCashValues = []string{"false", "true"}
	// WeekDays are available_week_day's values in display order, Monday
	// first. WeChat Pay counts 0 as Sunday, 1 as Monday … 6 as Saturday.
	WeekDays = []string{"1", "2", "3", "4", "5", "6", "0"}
)

// JumpTargetMiniProgram is the jump target that requires mini_program_appid
// and mini_program_path.
const JumpTargetMiniProgram = "MINI_PROGRAM"

// Form holds the values exactly as entered (strings; checkboxes as bool or
// []string), so a rejected form re-renders with everything kept. It has
// every request field of document 003 except belong_merchant,
// out_request_no and ext_info, which the console fills.
type Form struct {
	// Basic information (top-level fields).
	StockName          string
	Comment            string
	AvailableBeginTime string // datetime-local, "2006-01-02T15:04", in the console's zone
	AvailableEndTime   string
	NoCash             string // "true" (免充值) or "false" (预充值)
	StockType          string // "NORMAL"

	// stock_use_rule (发放规则). Amounts in yuan.
	MaxCoupons         string
	MaxAmount          string
	MaxAmountByDay     string
	MaxCouponsPerUser  string
	NaturalPersonLimit bool
	PreventAPIAbuse    bool

	// pattern_info (详情页).
	Description      string
	MerchantLogo     string
	MerchantName     string
	BackgroundColor  string
	CouponImage      string
	JumpTarget       string
	MiniProgramAppID string
	MiniProgramPath  string

	// coupon_use_rule (核销规则). Amounts in yuan; the list fields take one
	// entry per line or comma separated.
	CouponAmount       string
	TransactionMinimum string
	GoodsTag           string
	TradeType          []string
	CombineUse         bool
	AvailableItems     string
	UnavailableItems   string // WeChat Pay: 该字段暂未开放
	AvailableMerchants string

	// coupon_use_rule.coupon_available_time (券生效时间).
	AvailableWeekDay          []string // "0" (Sunday) … "6"
	BeginTime                 string   // time of day, "HH:MM" (or "HH:MM:SS")
	EndTime                   string
	SecondDayAvailable        bool
	AvailableTimeAfterReceive string // minutes

	// coupon_use_rule.limit_card (指定银行卡BIN).
	LimitCardName string
	Bin           string
}

// FormFromValues reads a posted form. Fields are named exactly after the
// request fields' leaf names; trade_type and available_week_day repeat (one
// checkbox each). A checkbox counts as ticked when its value is "true", "on"
// (the browser default) or "1".
func FormFromValues(v url.Values) Form {
	return Form{
		StockName:          v.Get(FieldStockName),
		Comment:            v.Get(FieldComment),
		AvailableBeginTime: v.Get(FieldAvailableBeginTime),
		AvailableEndTime:   v.Get(FieldAvailableEndTime),
		NoCash:             v.Get(FieldNoCash),
		StockType:          v.Get(FieldStockType),

		MaxCoupons:         v.Get(FieldMaxCoupons),
		MaxAmount:          v.Get(FieldMaxAmount),
		MaxAmountByDay:     v.Get(FieldMaxAmountByDay),
		MaxCouponsPerUser:  v.Get(FieldMaxCouponsPerUser),
		NaturalPersonLimit: checked(v, FieldNaturalPersonLimit),
		PreventAPIAbuse:    checked(v, FieldPreventAPIAbuse),

		Description:      v.Get(FieldDescription),
		MerchantLogo:     v.Get(FieldMerchantLogo),
		MerchantName:     v.Get(FieldMerchantName),
		BackgroundColor:  v.Get(FieldBackgroundColor),
		CouponImage:      v.Get(FieldCouponImage),
		JumpTarget:       v.Get(FieldJumpTarget),
		MiniProgramAppID: v.Get(FieldMiniProgramAppID),
		MiniProgramPath:  v.Get(FieldMiniProgramPath),

		CouponAmount:       v.Get(FieldCouponAmount),
		TransactionMinimum: v.Get(FieldTransactionMinimum),
		GoodsTag:           v.Get(FieldGoodsTag),
		TradeType:          nonEmpty(v[FieldTradeType]),
		CombineUse:         checked(v, FieldCombineUse),
		AvailableItems:     v.Get(FieldAvailableItems),
		UnavailableItems:   v.Get(FieldUnavailableItems),
		AvailableMerchants: v.Get(FieldAvailableMerchants),

		AvailableWeekDay:          nonEmpty(v[FieldAvailableWeekDay]),
		BeginTime:                 v.Get(FieldBeginTime),
		EndTime:                   v.Get(FieldEndTime),
		SecondDayAvailable:        checked(v, FieldSecondDayAvailable),
		AvailableTimeAfterReceive: v.Get(FieldAvailableTimeAfterReceive),

		LimitCardName: v.Get(FieldLimitCardName),
		Bin:           v.Get(FieldBin),
	}
}

func checked(v url.Values, name string) bool {
	for _, s := range v[name] {
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "true", "on", "1":
			return true
		}
	}
	return false
}

func nonEmpty(in []string) []string {
	var out []string
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// DatetimeLocalLayout is the value format of an <input type="datetime-local">
// (minutes; browsers add ":05"-style seconds when step < 60, also accepted).
const DatetimeLocalLayout = "2006-01-02T15:04"

// DefaultForm is a new form's starting point: valid from tomorrow 00:00 in
// loc for 30 days (to 23:59 of the 30th day), one coupon per user, 防刷拦截
// on, 预充值 (no_cash false), stock type NORMAL. Everything the operator must
// decide (name, budget, face value, merchants) is left empty.
func DefaultForm(now time.Time, loc *time.Location) Form {
	if loc == nil {
		loc = now.Location()
	}
	y, m, d := now.In(loc).Date()
	begin := time.Date(y, m, d+1, 0, 0, 0, 0, loc)
	end := time.Date(y, m, d+1+30, 0, 0, 0, 0, loc).Add(-time.Minute)
	return Form{
		AvailableBeginTime: begin.Format(DatetimeLocalLayout),
		AvailableEndTime:   end.Format(DatetimeLocalLayout),
		MaxCouponsPerUser:  "1",
		PreventAPIAbuse:    true,
		NoCash:             "false",
		StockType:          "NORMAL",
	}
}
