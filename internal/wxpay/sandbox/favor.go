package sandbox

import (
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// favorCreateReq is document 003's request body. Pointers tell a missing
// field from a zero one, since most fields are required.
type favorCreateReq struct {
	StockName          *string             `json:"stock_name,omitempty"`
	Comment            *string             `json:"comment,omitempty"`
	BelongMerchant     *string             `json:"belong_merchant,omitempty"`
	AvailableBeginTime *string             `json:"available_begin_time,omitempty"`
	AvailableEndTime   *string             `json:"available_end_time,omitempty"`
	StockUseRule       *favorStockUseRule  `json:"stock_use_rule,omitempty"`
	PatternInfo        *favorPatternInfo   `json:"pattern_info,omitempty"`
	CouponUseRule      *favorCouponUseRule `json:"coupon_use_rule,omitempty"`
	NoCash             *bool               `json:"no_cash,omitempty"`
	StockType          *string             `json:"stock_type,omitempty"`
	OutRequestNo       *string             `json:"out_request_no,omitempty"`
	ExtInfo            *string             `json:"ext_info,omitempty"`
}

type favorStockUseRule struct {
	MaxCoupons         *int64 `json:"max_coupons,omitempty"`
	MaxAmount          *int64 `json:"max_amount,omitempty"`
	MaxAmountByDay     *int64 `json:"max_amount_by_day,omitempty"`
	MaxCouponsPerUser  *int64 `json:"max_coupons_per_user,omitempty"`
	NaturalPersonLimit *bool  `json:"natural_person_limit,omitempty"`
	PreventAPIAbuse    *bool  `json:"prevent_api_abuse,omitempty"`
}

type favorPatternInfo struct {
	Description      *string `json:"description,omitempty"`
	MerchantLogo     *string `json:"merchant_logo,omitempty"`
	MerchantName     *string `json:"merchant_name,omitempty"`
	BackgroundColor  *string `json:"background_color,omitempty"`
	CouponImage      *string `json:"coupon_image,omitempty"`
	JumpTarget       *string `json:"jump_target,omitempty"`
	MiniProgramAppid *string `json:"mini_program_appid,omitempty"`
	MiniProgramPath  *string `json:"mini_program_path,omitempty"`
}

type favorCouponUseRule struct {
	CouponAvailableTime *favorAvailableTime `json:"coupon_available_time,omitempty"`
	FixedNormalCoupon   *favorFixedNormal   `json:"fixed_normal_coupon,omitempty"`
	GoodsTag            []string            `json:"goods_tag,omitempty"`
	TradeType           []string            `json:"trade_type,omitempty"`
	CombineUse          *bool               `json:"combine_use,omitempty"`
	AvailableItems      []string            `json:"available_items,omitempty"`
	UnavailableItems    []string            `json:"unavailable_items,omitempty"`
	AvailableMerchants  []string            `json:"available_merchants,omitempty"`
	LimitCard           *favorLimitCard     `json:"limit_card,omitempty"`
}

type favorAvailableTime struct {
	FixAvailableTime          *favorFixTime `json:"fix_available_time,omitempty"`
	SecondDayAvailable        *bool         `json:"second_day_available,omitempty"`
	AvailableTimeAfterReceive *int64        `json:"available_time_after_receive,omitempty"`
}

type favorFixTime struct {
	AvailableWeekDay []int64 `json:"available_week_day,omitempty"`
	BeginTime        *int64  `json:"begin_time,omitempty"`
	EndTime          *int64  `json:"end_time,omitempty"`
}

type favorFixedNormal struct {
	CouponAmount       *int64 `json:"coupon_amount,omitempty"`
	TransactionMinimum *int64 `json:"transaction_minimum,omitempty"`
}

type favorLimitCard struct {
	Name *string  `json:"name,omitempty"`
	Bin  []string `json:"bin,omitempty"`
}

// Document 003's enumerations.
var (
	favorBackgroundColors = []string{"COLOR010", "COLOR020", "COLOR030", "COLOR040", "COLOR050", "COLOR060", "COLOR070",
		"COLOR080", "COLOR081", "COLOR082", "COLOR090", "COLOR100", "COLOR101", "COLOR102"}
	favorJumpTargets = []string{"PAYMENT_CODE", "MINI_PROGRAM", "DEFAULT_PAGE"}
	favorTradeTypes  = []string{"MICROAPP", "APPPAY", "PPAY", "CARD", "FACE", "OTHER"}
)

// Document 003's time rules.
const (
	favorMaxLeadTime = 365 * 24 * time.Hour // 不能创建365天后开始的批次
	favorMaxSpan     = 90 * 24 * time.Hour  // 批次可用时间范围最长为90天
)

// parseFavorCreate decodes document 003's body and checks every field rule
// the document states, in the document's field order, against now and the
// caller's merchant number. It returns the first broken rule.
func parseFavorCreate(body []byte, now time.Time, callerMchID string) (*favorCreateReq, *apiError) {
	var req favorCreateReq
	if aerr := decodeJSON(body, &req); aerr != nil {
		return nil, aerr
	}
	if aerr := checkStockName(req.StockName); aerr != nil {
		return nil, aerr
	}
	if req.Comment != nil {
		if aerr := maxRunes("comment", *req.Comment, 60); aerr != nil {
			return nil, aerr
		}
	}
	if req.BelongMerchant == nil || *req.BelongMerchant == "" {
		return nil, missing("belong_merchant")
	}
	if *req.BelongMerchant != callerMchID {
		// 003: 暂时不支持入参其他的商户号; the table's row for it.
		aerr := invalidRequest("非法的商户号: belong_merchant 须为当前调用接口的商户号")
		aerr.Detail = map[string]any{"field": "/body/belong_merchant", "location": "body"}
		return nil, aerr
	}
	if aerr := checkFavorTimes(req.AvailableBeginTime, req.AvailableEndTime, now); aerr != nil {
		return nil, aerr
	}
	if aerr := checkFavorStockUseRule(req.StockUseRule); aerr != nil {
		return nil, aerr
	}
	if req.PatternInfo != nil {
		if aerr := checkFavorPatternInfo(req.PatternInfo); aerr != nil {
			return nil, aerr
		}
	}
	if aerr := checkFavorCouponUseRule(req.CouponUseRule); aerr != nil {
		return nil, aerr
	}
	if aerr := checkFavorBudget(req.StockUseRule, req.CouponUseRule.FixedNormalCoupon); aerr != nil {
		return nil, aerr
	}
	if req.NoCash == nil {
		return nil, missing("no_cash")
	}
	if req.StockType == nil || *req.StockType == "" {
		return nil, missing("stock_type")
	}
	if *req.StockType != "NORMAL" {
		return nil, paramError("stock_type", "stock_type 仅支持 NORMAL(固定面额满减券批次)")
	}
	if req.OutRequestNo == nil || *req.OutRequestNo == "" {
		return nil, missing("out_request_no")
	}
	if aerr := checkFavorOutRequestNo(*req.OutRequestNo); aerr != nil {
		return nil, aerr
	}
	if req.ExtInfo != nil {
		if aerr := maxRunes("ext_info", *req.ExtInfo, 128); aerr != nil {
			return nil, aerr
		}
	}
	return &req, nil
}

// checkStockName applies document 003's 校验规则: at most 9 Chinese
// characters, at most 20 letters, none of _ , ; |. A mixed name must keep
// both limits: no more than 9 of its characters Chinese and no more than 20
// characters in all.
func checkStockName(v *string) *apiError {
	if v == nil || *v == "" {
		return missing("stock_name")
	}
	name := *v
	if strings.ContainsAny(name, "_,;|") {
		return paramError("stock_name", "批次名称中不能包含特殊字符 _ , ; |")
	}
	han := 0
	for _, r := range name {
		if unicode.Is(unicode.Han, r) {
			han++
		}
	}
	if han > 9 {
		return paramError("stock_name", "批次名称最多9个中文汉字")
	}
	if runeLen(name) > 20 {
		return paramError("stock_name", "批次名称最多20个字母")
	}
	return nil
}

func checkFavorTimes(beginText, endText *string, now time.Time) *apiError {
	if beginText == nil || *beginText == "" {
		return missing("available_begin_time")
	}
	if endText == nil || *endText == "" {
		return missing("available_end_time")
	}
	begin, err := time.Parse(time.RFC3339, *beginText)
	if err != nil {
		return paramError("available_begin_time", "输入时间格式错误: available_begin_time 须为 RFC 3339 格式,如 2015-05-20T13:29:35+08:00")
	}
	end, err := time.Parse(time.RFC3339, *endText)
	if err != nil {
		return paramError("available_end_time", "输入时间格式错误: available_end_time 须为 RFC 3339 格式,如 2015-05-20T13:29:35+08:00")
	}
	// Whole seconds: the format carries seconds, and a begin time of "now"
	// sent within the same second is not in the past.
	if begin.Before(now.Truncate(time.Second)) {
		return paramError("available_begin_time", "开始时间不可早于当前时间")
	}
	if begin.Sub(now) > favorMaxLeadTime {
		return paramError("available_begin_time", "不能创建365天后开始的批次")
	}
	if !end.After(begin) {
		return paramError("available_end_time", "结束时间须晚于开始时间")
	}
	if end.Sub(begin) > favorMaxSpan {
		return paramError("available_end_time", "批次可用时间范围最长为90天")
	}
	return nil
}

func positive(field string, v *int64) *apiError {
	if v == nil {
		return missing(field)
	}
	if *v <= 0 {
		return paramError(field, field+" 须为正整数")
	}
	return nil
}

// maxFavorCouponsPerUser: WeChat Pay refuses more than 60 coupons per user
// for a favor stock, though document 003 does not print the limit.
const maxFavorCouponsPerUser = 60

// checkFavorBudget applies a rule WeChat Pay enforces beyond document 003's
// text, seen in its replies to developers: the budget is the face value
// times the number of coupons, answered with PARAM_ERROR
// "批次预算等于批次面额乘以发券数" otherwise; and at most 60 per user.
func checkFavorBudget(r *favorStockUseRule, fn *favorFixedNormal) *apiError {
	if *r.MaxCouponsPerUser > maxFavorCouponsPerUser {
		return paramError("stock_use_rule.max_coupons_per_user", fmt.Sprintf("单个用户可领个数不能超过%d", maxFavorCouponsPerUser))
	}
	count, face, total := *r.MaxCoupons, *fn.CouponAmount, *r.MaxAmount
	if face > math.MaxInt64/count || face*count != total {
		return paramError("stock_use_rule.max_amount", "批次预算等于批次面额乘以发券数")
	}
	return nil
}

func checkFavorStockUseRule(r *favorStockUseRule) *apiError {
	if r == nil {
		return missing("stock_use_rule")
	}
	if aerr := positive("stock_use_rule.max_coupons", r.MaxCoupons); aerr != nil {
		return aerr
	}
	if aerr := positive("stock_use_rule.max_amount", r.MaxAmount); aerr != nil {
		return aerr
	}
	if r.MaxAmountByDay != nil {
		if aerr := positive("stock_use_rule.max_amount_by_day", r.MaxAmountByDay); aerr != nil {
			return aerr
		}
	}
	if aerr := positive("stock_use_rule.max_coupons_per_user", r.MaxCouponsPerUser); aerr != nil {
		return aerr
	}
	if r.NaturalPersonLimit == nil {
		return missing("stock_use_rule.natural_person_limit")
	}
	if r.PreventAPIAbuse == nil {
		return missing("stock_use_rule.prevent_api_abuse")
	}
	return nil
}

func enum(field string, v *string, values []string) *apiError {
	if v == nil {
		return nil
	}
	// 003: 可选枚举字段不用则不传,不可以传空值.
	if !slices.Contains(values, *v) {
		return paramError(field, fmt.Sprintf("%s 取值 %q 不合法,可选值: %s", field, *v, strings.Join(values, ", ")))
	}
	return nil
}

func checkFavorPatternInfo(p *favorPatternInfo) *apiError {
	if p.Description == nil || *p.Description == "" {
		return missing("pattern_info.description")
	}
	for _, f := range []struct {
		name string
		v    *string
		n    int
	}{
		{"pattern_info.description", p.Description, 1000},
		{"pattern_info.merchant_logo", p.MerchantLogo, 128},
		{"pattern_info.merchant_name", p.MerchantName, 12},
		{"pattern_info.coupon_image", p.CouponImage, 128},
		{"pattern_info.mini_program_appid", p.MiniProgramAppid, 128},
		{"pattern_info.mini_program_path", p.MiniProgramPath, 128},
	} {
		if f.v != nil {
			if aerr := maxRunes(f.name, *f.v, f.n); aerr != nil {
				return aerr
			}
		}
	}
	if aerr := enum("pattern_info.background_color", p.BackgroundColor, favorBackgroundColors); aerr != nil {
		return aerr
	}
	if aerr := enum("pattern_info.jump_target", p.JumpTarget, favorJumpTargets); aerr != nil {
		return aerr
	}
	if deref(p.JumpTarget) == "MINI_PROGRAM" {
		// 跳转至小程序时必填.
		if deref(p.MiniProgramAppid) == "" {
			return paramError("pattern_info.mini_program_appid", "jump_target 为 MINI_PROGRAM 时 mini_program_appid 必填")
		}
		if deref(p.MiniProgramPath) == "" {
			return paramError("pattern_info.mini_program_path", "jump_target 为 MINI_PROGRAM 时 mini_program_path 必填")
		}
	}
	return nil
}

func checkItems(field string, items []string, n int) *apiError {
	for i, it := range items {
		if it == "" || runeLen(it) > n {
			return paramError(fmt.Sprintf("%s.%d", field, i), fmt.Sprintf("%s 的每一项须为 1-%d 个字符", field, n))
		}
	}
	return nil
}

func checkFavorCouponUseRule(r *favorCouponUseRule) *apiError {
	if r == nil {
		return missing("coupon_use_rule")
	}
	if t := r.CouponAvailableTime; t != nil {
		if f := t.FixAvailableTime; f != nil {
			for _, d := range f.AvailableWeekDay {
				if d < 0 || d > 6 {
					return paramError("coupon_use_rule.coupon_available_time.fix_available_time.available_week_day",
						"available_week_day 取值为 0-6(0 为星期日)")
				}
			}
			b, e := deref(f.BeginTime), deref(f.EndTime)
			if b < 0 || e > 86400 || (f.EndTime != nil && e <= b) {
				return paramError("coupon_use_rule.coupon_available_time.fix_available_time",
					"fix_available_time 的 begin_time/end_time 为当天秒数(0-86400),且结束须晚于开始")
			}
		}
		if v := t.AvailableTimeAfterReceive; v != nil && *v <= 0 {
			return paramError("coupon_use_rule.coupon_available_time.available_time_after_receive", "available_time_after_receive 须为正整数")
		}
	}
	// 固定面额满减券使用规则: stock_type 为 NORMAL 时必填, and NORMAL is
	// the only type.
	fn := r.FixedNormalCoupon
	if fn == nil {
		return missing("coupon_use_rule.fixed_normal_coupon")
	}
	if aerr := positive("coupon_use_rule.fixed_normal_coupon.coupon_amount", fn.CouponAmount); aerr != nil {
		return aerr
	}
	if fn.TransactionMinimum == nil {
		return missing("coupon_use_rule.fixed_normal_coupon.transaction_minimum")
	}
	if *fn.TransactionMinimum < 0 {
		return paramError("coupon_use_rule.fixed_normal_coupon.transaction_minimum", "transaction_minimum 不能为负数")
	}
	if aerr := checkItems("coupon_use_rule.goods_tag", r.GoodsTag, 128); aerr != nil {
		return aerr
	}
	for i := range r.TradeType {
		if aerr := enum(fmt.Sprintf("coupon_use_rule.trade_type.%d", i), &r.TradeType[i], favorTradeTypes); aerr != nil {
			return aerr
		}
	}
	if aerr := checkItems("coupon_use_rule.available_items", r.AvailableItems, 128); aerr != nil {
		return aerr
	}
	if aerr := checkItems("coupon_use_rule.unavailable_items", r.UnavailableItems, 128); aerr != nil {
		return aerr
	}
	if len(r.AvailableMerchants) == 0 {
		return missing("coupon_use_rule.available_merchants")
	}
	for _, m := range r.AvailableMerchants {
		if !validMchID(m) {
			// 003's table: 400 INVALID_REQUEST 非法的商户号.
			aerr := invalidRequest(fmt.Sprintf("非法的商户号: available_merchants 中的 %q 不是合法的商户号", m))
			aerr.Detail = map[string]any{"field": "/body/coupon_use_rule/available_merchants", "location": "body"}
			return aerr
		}
	}
	if lc := r.LimitCard; lc != nil {
		if lc.Name != nil {
			if aerr := maxRunes("coupon_use_rule.limit_card.name", *lc.Name, 32); aerr != nil {
				return aerr
			}
		}
		for _, b := range lc.Bin {
			if !validMchID(b) {
				return paramError("coupon_use_rule.limit_card.bin", "limit_card.bin 须为数字")
			}
		}
	}
	return nil
}

// checkFavorOutRequestNo: document 003 allows letters, digits, |, _, *, -
// in up to 128 characters.
func checkFavorOutRequestNo(v string) *apiError {
	if len(v) > 128 {
		return paramError("out_request_no", "out_request_no 长度不能超过 128 个字符")
	}
	for _, r := range v {
		if !isAlnum(r) && !strings.ContainsRune("|_*-", r) {
			return paramError("out_request_no", "out_request_no 只可包含英文字母、数字、|、_、*、-")
		}
	}
	return nil
}

type favorCreateReply struct {
	StockID    string `json:"stock_id"`
	CreateTime string `json:"create_time"`
}

// createFavorStock is document 003. A new stock is unactivated, as the
// favor read endpoint reports a stock that has not been activated.
func (s *Sandbox) createFavorStock(c *call) (any, *apiError) {
	req, aerr := parseFavorCreate(c.body, c.now, c.callerID)
	if aerr != nil {
		return nil, aerr
	}
	id := strconv.FormatInt(s.st.NextFavorID, 10)
	s.st.NextFavorID++
	f := &favorStock{
		StockID:    id,
		CreatorMch: c.callerID,
		Status:     FavorUnactivated,
		CreateTime: rfc3339(c.now),
		Request:    *req,
	}
	s.st.addFavor(f)
	return favorCreateReply{StockID: id, CreateTime: f.CreateTime}, nil
}

// favorStockEntity is the favor read endpoint's reply (查询代金券批次详情).
type favorStockEntity struct {
	StockID            string               `json:"stock_id"`
	StockCreatorMchid  string               `json:"stock_creator_mchid"`
	StockName          string               `json:"stock_name"`
	Status             string               `json:"status"`
	CreateTime         string               `json:"create_time"`
	Description        string               `json:"description"`
	StockUseRule       favorStockUseRuleOut `json:"stock_use_rule"`
	AvailableBeginTime string               `json:"available_begin_time"`
	AvailableEndTime   string               `json:"available_end_time"`
	DistributedCoupons int64                `json:"distributed_coupons"`
	NoCash             bool                 `json:"no_cash"`
	Singleitem         bool                 `json:"singleitem"`
	StockType          string               `json:"stock_type"`
}

type favorFixedNormalOut struct {
	CouponAmount       int64 `json:"coupon_amount"`
	TransactionMinimum int64 `json:"transaction_minimum"`
}

type favorStockUseRuleOut struct {
	MaxCoupons        int64                `json:"max_coupons"`
	MaxAmount         int64                `json:"max_amount"`
	MaxAmountByDay    int64                `json:"max_amount_by_day,omitempty"`
	FixedNormalCoupon *favorFixedNormalOut `json:"fixed_normal_coupon,omitempty"`
	MaxCouponsPerUser int64                `json:"max_coupons_per_user"`
	CouponType        string               `json:"coupon_type"`
	GoodsTag          []string             `json:"goods_tag,omitempty"`
	TradeType         []string             `json:"trade_type,omitempty"`
	CombineUse        bool                 `json:"combine_use"`
}

func (f *favorStock) entity(now time.Time) favorStockEntity {
	r := f.Request
	use := deref(r.StockUseRule)
	coupon := deref(r.CouponUseRule)
	e := favorStockEntity{
		StockID:           f.StockID,
		StockCreatorMchid: f.CreatorMch,
		StockName:         deref(r.StockName),
		Status:            f.status(now),
		CreateTime:        f.CreateTime,
		StockUseRule: favorStockUseRuleOut{
			MaxCoupons:        deref(use.MaxCoupons),
			MaxAmount:         deref(use.MaxAmount),
			MaxAmountByDay:    deref(use.MaxAmountByDay),
			MaxCouponsPerUser: deref(use.MaxCouponsPerUser),
			CouponType:        deref(r.StockType),
			GoodsTag:          coupon.GoodsTag,
			TradeType:         coupon.TradeType,
			CombineUse:        deref(coupon.CombineUse),
		},
		AvailableBeginTime: deref(r.AvailableBeginTime),
		AvailableEndTime:   deref(r.AvailableEndTime),
		DistributedCoupons: f.Distributed,
		NoCash:             deref(r.NoCash),
		Singleitem:         len(coupon.AvailableItems) > 0,
		StockType:          deref(r.StockType),
	}
	if r.PatternInfo != nil {
		e.Description = deref(r.PatternInfo.Description)
	}
	if fn := coupon.FixedNormalCoupon; fn != nil {
		e.StockUseRule.FixedNormalCoupon = &favorFixedNormalOut{CouponAmount: deref(fn.CouponAmount), TransactionMinimum: deref(fn.TransactionMinimum)}
	}
	return e
}

// getFavorStock is the favor read endpoint. stock_creator_mchid is a
// required query parameter; a stock of another creator is not found.
func (s *Sandbox) getFavorStock(c *call) (any, *apiError) {
	creator := c.r.URL.Query().Get("stock_creator_mchid")
	if creator == "" {
		return nil, &apiError{Status: http.StatusBadRequest, Code: "PARAM_ERROR", Message: "商户号必填: 缺少 stock_creator_mchid",
			Detail: map[string]any{"field": "stock_creator_mchid", "location": "query"}}
	}
	if creator != c.callerID {
		return nil, &apiError{Status: http.StatusForbidden, Code: "NO_AUTH", Message: "stock_creator_mchid 与调用商户号不一致"}
	}
	f, ok := s.st.favor[c.r.PathValue("stock_id")]
	if !ok || f.CreatorMch != creator {
		return nil, notFound("RESOURCE_NOT_EXISTS", "批次不存在")
	}
	return f.entity(c.now), nil
}
