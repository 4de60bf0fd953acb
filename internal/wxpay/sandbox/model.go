package sandbox

import (
	"time"
)

// cst is China Standard Time, the zone WeChat Pay writes its times in and the
// zone its daily budgets roll over in.
var cst = time.FixedZone("CST", 8*60*60)

// rfc3339 formats t the way WeChat Pay does: seconds, +08:00.
func rfc3339(t time.Time) string { return t.In(cst).Format(time.RFC3339) }

// rfc3339Milli formats t with milliseconds, as document 002's success_time.
func rfc3339Milli(t time.Time) string { return t.In(cst).Format("2006-01-02T15:04:05.000Z07:00") }

// dayOf is the calendar day (in China) that daily budgets count against.
func dayOf(t time.Time) string { return t.In(cst).Format(time.DateOnly) }

// Stock kinds, as /_sandbox/stocks names them.
const (
	KindFavor         = "favor"
	KindBusifavor     = "busifavor"
	KindProductCoupon = "product_coupon"
)

// Product-coupon stock states (document 001).
const (
	StateAuditing    = "AUDITING"
	StateSending     = "SENDING"
	StatePaused      = "PAUSED"
	StateStopped     = "STOPPED"
	StateDeactivated = "DEACTIVATED"
)

// Product-coupon code modes (document 001).
const (
	CodeModeWechatPay = "WECHATPAY"
	CodeModeUpload    = "UPLOAD"
	CodeModeAPIAssign = "API_ASSIGN"
)

// Busifavor stock states and code modes, as the busifavor read endpoint
// spells them.
const (
	BusifavorUnaudit = "UNAUDIT"
	BusifavorRunning = "RUNNING"
	BusifavorStoped  = "STOPED"
	BusifavorPaused  = "PAUSED"

	BusifavorModeWechatPay = "WECHATPAY_MODE"
	BusifavorModeAPI       = "MERCHANT_API"
	BusifavorModeUpload    = "MERCHANT_UPLOAD"
)

// Favor stock statuses, as the favor read endpoint spells them.
const (
	FavorUnactivated = "unactivated"
	FavorAudit       = "audit"
	FavorRunning     = "running"
	FavorStoped      = "stoped"
	FavorPaused      = "paused"
)

// codeSet is a stock's uploaded codes. The set answers "already uploaded?";
// the list keeps upload order and is append-only, so a prefix of it can be
// read (to persist or list it) after the sandbox's lock is released.
type codeSet struct {
	m         map[string]struct{}
	list      []string
	persisted int // how many of list are in the stock's codes file
}

func newCodeSet() *codeSet { return &codeSet{m: map[string]struct{}{}} }

func (c *codeSet) has(code string) bool { _, ok := c.m[code]; return ok }

func (c *codeSet) add(code string) {
	c.m[code] = struct{}{}
	c.list = append(c.list, code)
}

func (c *codeSet) len() int64 { return int64(len(c.list)) }

// snapshot returns the codes uploaded so far. The caller holds the lock; the
// returned slice may be read after it is released.
func (c *codeSet) snapshot() []string { return c.list[:len(c.list):len(c.list)] }

// productCoupon is a 商品券; its stocks and bundles refer to it by ID.
type productCoupon struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	UsageMode string `json:"usage_mode"` // SINGLE or SEQUENTIAL
}

// stockBundle is a 商品券批次组: the unit document 004 pre-sends.
type stockBundle struct {
	ID              string   `json:"id"`
	ProductCouponID string   `json:"product_coupon_id"`
	Name            string   `json:"name"`
	StockIDs        []string `json:"stock_ids"`
}

// pcStock is a product-coupon stock (商品券批次), with the configuration
// document 001's entity shows and the counters the sandbox keeps.
type pcStock struct {
	ProductCouponID      string                 `json:"product_coupon_id"`
	StockID              string                 `json:"stock_id"`
	Remark               string                 `json:"remark,omitempty"`
	CouponCodeMode       string                 `json:"coupon_code_mode"`
	StockSendRule        pcSendRule             `json:"stock_send_rule"`
	SingleUsageRule      *pcSingleUsageRule     `json:"single_usage_rule,omitempty"`
	SequentialUsageRule  *pcSequentialUsageRule `json:"sequential_usage_rule,omitempty"`
	UsageRuleDisplayInfo pcUsageRuleDisplay     `json:"usage_rule_display_info"`
	CouponDisplayInfo    pcCouponDisplay        `json:"coupon_display_info"`
	NotifyConfig         pcNotifyConfig         `json:"notify_config"`
	StoreScope           string                 `json:"store_scope"`
	State                string                 `json:"state"` // as set; STOPPED is also derived from the end time

	SentTotal int64            `json:"sent_total"`
	SentDay   string           `json:"sent_day,omitempty"`
	SentToday int64            `json:"sent_today"`
	PerUser   map[string]int64 `json:"per_user,omitempty"` // sends per OpenID
	CodesUsed int64            `json:"codes_used"`         // uploaded codes handed out

	DeactivateRequestNo string `json:"deactivate_request_no,omitempty"`
	DeactivateTime      string `json:"deactivate_time,omitempty"`
	DeactivateReason    string `json:"deactivate_reason,omitempty"`

	codes *codeSet
}

type pcSendRule struct {
	MaxCount        int64 `json:"max_count"`
	MaxCountPerDay  int64 `json:"max_count_per_day,omitempty"` // 0: no daily limit
	MaxCountPerUser int64 `json:"max_count_per_user"`
}

type pcWeeklyPeriod struct {
	DayList       []string     `json:"day_list,omitempty"`
	DayPeriodList []pcDayRange `json:"day_period_list,omitempty"`
}

type pcDayRange struct {
	BeginTime int64 `json:"begin_time"`
	EndTime   int64 `json:"end_time"`
}

type pcAvailablePeriod struct {
	AvailableBeginTime    string          `json:"available_begin_time"`
	AvailableEndTime      string          `json:"available_end_time"`
	AvailableDays         int64           `json:"available_days,omitempty"`
	WaitDaysAfterReceive  int64           `json:"wait_days_after_receive,omitempty"`
	WeeklyAvailablePeriod *pcWeeklyPeriod `json:"weekly_available_period,omitempty"`
}

type pcNormalCoupon struct {
	Threshold      int64 `json:"threshold"`
	DiscountAmount int64 `json:"discount_amount"`
}

type pcDiscountCoupon struct {
	Threshold  int64 `json:"threshold"`
	PercentOff int64 `json:"percent_off"`
}

type pcExchangeCoupon struct {
	Threshold     int64 `json:"threshold"`
	ExchangePrice int64 `json:"exchange_price"`
}

type pcSingleUsageRule struct {
	CouponAvailablePeriod pcAvailablePeriod `json:"coupon_available_period"`
	NormalCoupon          *pcNormalCoupon   `json:"normal_coupon,omitempty"`
	DiscountCoupon        *pcDiscountCoupon `json:"discount_coupon,omitempty"`
	ExchangeCoupon        *pcExchangeCoupon `json:"exchange_coupon,omitempty"`
}

type pcSequentialUsageRule struct {
	CouponAvailablePeriod pcAvailablePeriod  `json:"coupon_available_period"`
	NormalCouponList      []pcNormalCoupon   `json:"normal_coupon_list,omitempty"`
	DiscountCouponList    []pcDiscountCoupon `json:"discount_coupon_list,omitempty"`
	ExchangeCouponList    []pcExchangeCoupon `json:"exchange_coupon_list,omitempty"`
	SpecialFirst          bool               `json:"special_first"`
}

type pcStoreInfo struct {
	Description      string `json:"description"`
	MiniProgramAppid string `json:"mini_program_appid,omitempty"`
	MiniProgramPath  string `json:"mini_program_path,omitempty"`
}

type pcUsageRuleDisplay struct {
	CouponUsageMethodList    []string     `json:"coupon_usage_method_list"`
	MiniProgramAppid         string       `json:"mini_program_appid,omitempty"`
	MiniProgramPath          string       `json:"mini_program_path,omitempty"`
	AppPath                  string       `json:"app_path,omitempty"`
	UsageDescription         string       `json:"usage_description"`
	CouponAvailableStoreInfo *pcStoreInfo `json:"coupon_available_store_info,omitempty"`
}

type pcEntranceMiniProgram struct {
	Appid           string `json:"appid"`
	Path            string `json:"path"`
	EntranceWording string `json:"entrance_wording"`
	GuidanceWording string `json:"guidance_wording"`
}

type pcCouponDisplay struct {
	CodeDisplayMode     string                 `json:"code_display_mode"`
	BackgroundColor     string                 `json:"background_color,omitempty"`
	EntranceMiniProgram *pcEntranceMiniProgram `json:"entrance_mini_program,omitempty"`
}

type pcNotifyConfig struct {
	NotifyAppid string `json:"notify_appid"`
}

// period is the stock's coupon availability window.
func (s *pcStock) period() pcAvailablePeriod {
	switch {
	case s.SingleUsageRule != nil:
		return s.SingleUsageRule.CouponAvailablePeriod
	case s.SequentialUsageRule != nil:
		return s.SequentialUsageRule.CouponAvailablePeriod
	}
	return pcAvailablePeriod{}
}

// expired reports whether the stock's end time has passed.
func (s *pcStock) expired(now time.Time) bool {
	end, err := time.Parse(time.RFC3339, s.period().AvailableEndTime)
	return err == nil && !now.Before(end)
}

// state is the stock's state at now: a stock still sending or paused when
// its end time passes is STOPPED (document 001: 已停止,当前已到达结束时间).
func (s *pcStock) state(now time.Time) string {
	if (s.State == StateSending || s.State == StatePaused) && s.expired(now) {
		return StateStopped
	}
	return s.State
}

// sentToday is the number of sends on now's day.
func (s *pcStock) sentToday(now time.Time) int64 {
	if s.SentDay != dayOf(now) {
		return 0
	}
	return s.SentToday
}

// pcStockEntity is document 001's 应答参数, the stock entity both deactivate
// and the product-coupon stock read endpoint return.
type pcStockEntity struct {
	ProductCouponID      string                 `json:"product_coupon_id"`
	StockID              string                 `json:"stock_id"`
	Remark               string                 `json:"remark,omitempty"`
	CouponCodeMode       string                 `json:"coupon_code_mode"`
	CouponCodeCountInfo  *codeCountInfo         `json:"coupon_code_count_info,omitempty"`
	StockSendRule        pcSendRule             `json:"stock_send_rule"`
	SingleUsageRule      *pcSingleUsageRule     `json:"single_usage_rule,omitempty"`
	SequentialUsageRule  *pcSequentialUsageRule `json:"sequential_usage_rule,omitempty"`
	UsageRuleDisplayInfo pcUsageRuleDisplay     `json:"usage_rule_display_info"`
	CouponDisplayInfo    pcCouponDisplay        `json:"coupon_display_info"`
	NotifyConfig         pcNotifyConfig         `json:"notify_config"`
	StoreScope           string                 `json:"store_scope"`
	SentCountInfo        sentCountInfo          `json:"sent_count_info"`
	State                string                 `json:"state"`
	DeactivateRequestNo  string                 `json:"deactivate_request_no,omitempty"`
	DeactivateTime       string                 `json:"deactivate_time,omitempty"`
	DeactivateReason     string                 `json:"deactivate_reason,omitempty"`
}

type codeCountInfo struct {
	TotalCount     int64 `json:"total_count"`
	AvailableCount int64 `json:"available_count"`
}

type sentCountInfo struct {
	TotalCount int64 `json:"total_count"`
	TodayCount int64 `json:"today_count"`
}

func (s *pcStock) entity(now time.Time) pcStockEntity {
	e := pcStockEntity{
		ProductCouponID:      s.ProductCouponID,
		StockID:              s.StockID,
		Remark:               s.Remark,
		CouponCodeMode:       s.CouponCodeMode,
		StockSendRule:        s.StockSendRule,
		SingleUsageRule:      s.SingleUsageRule,
		SequentialUsageRule:  s.SequentialUsageRule,
		UsageRuleDisplayInfo: s.UsageRuleDisplayInfo,
		CouponDisplayInfo:    s.CouponDisplayInfo,
		NotifyConfig:         s.NotifyConfig,
		StoreScope:           s.StoreScope,
		SentCountInfo:        sentCountInfo{TotalCount: s.SentTotal, TodayCount: s.sentToday(now)},
		State:                s.state(now),
	}
	// Document 001: coupon_code_count_info exists if and only if the mode
	// is UPLOAD; the deactivate_* fields if and only if DEACTIVATED.
	if s.CouponCodeMode == CodeModeUpload {
		e.CouponCodeCountInfo = &codeCountInfo{TotalCount: s.codes.len(), AvailableCount: s.codes.len() - s.CodesUsed}
	}
	if s.State == StateDeactivated {
		e.DeactivateRequestNo = s.DeactivateRequestNo
		e.DeactivateTime = s.DeactivateTime
		e.DeactivateReason = s.DeactivateReason
	}
	return e
}

// favorStock is a 代金券批次 created through document 003.
type favorStock struct {
	StockID     string         `json:"stock_id"`
	CreatorMch  string         `json:"stock_creator_mchid"`
	Status      string         `json:"status"`
	CreateTime  string         `json:"create_time"`
	Distributed int64          `json:"distributed_coupons"`
	Request     favorCreateReq `json:"request"`
}

// status is the stock's status at now: a running or paused stock past its
// end time has stopped.
func (f *favorStock) status(now time.Time) string {
	if f.Status == FavorRunning || f.Status == FavorPaused {
		if end, err := time.Parse(time.RFC3339, deref(f.Request.AvailableEndTime)); err == nil && !now.Before(end) {
			return FavorStoped
		}
	}
	return f.Status
}

// busifavorStock is a 商家券批次; the sandbox cannot create these (they are
// created elsewhere and registered in the console), so they come from the
// seed data.
type busifavorStock struct {
	StockID        string          `json:"stock_id"`
	StockName      string          `json:"stock_name"`
	BelongMerchant string          `json:"belong_merchant"`
	Comment        string          `json:"comment,omitempty"`
	GoodsName      string          `json:"goods_name"`
	StockType      string          `json:"stock_type"` // NORMAL, DISCOUNT, EXCHANGE
	StockState     string          `json:"stock_state"`
	CouponCodeMode string          `json:"coupon_code_mode"`
	StockSendRule  bfSendRule      `json:"stock_send_rule"`
	CouponUseRule  bfCouponUseRule `json:"coupon_use_rule"`
	CodesUsed      int64           `json:"codes_used"`

	codes *codeSet
}

type bfSendRule struct {
	MaxCoupons         int64 `json:"max_coupons"`
	MaxCouponsPerUser  int64 `json:"max_coupons_per_user"`
	MaxCouponsByDay    int64 `json:"max_coupons_by_day,omitempty"`
	NaturalPersonLimit bool  `json:"natural_person_limit"`
	PreventAPIAbuse    bool  `json:"prevent_api_abuse"`
	Transferable       bool  `json:"transferable"`
	Shareable          bool  `json:"shareable"`
}

type bfAvailableTime struct {
	AvailableBeginTime string `json:"available_begin_time"`
	AvailableEndTime   string `json:"available_end_time"`
	// available_week and irregulary_avaliable_time (WeChat Pay's
	// spelling): when, within the period, coupons may be used.
	AvailableWeek           *bfAvailableWeek `json:"available_week,omitempty"`
	IrregularyAvaliableTime []bfTimeWindow   `json:"irregulary_avaliable_time,omitempty"`
}

type bfAvailableWeek struct {
	WeekDay          []int64      `json:"week_day"`
	AvailableDayTime []bfDayRange `json:"available_day_time,omitempty"`
}

type bfDayRange struct {
	BeginTime int64 `json:"begin_time"` // seconds since midnight
	EndTime   int64 `json:"end_time"`
}

type bfTimeWindow struct {
	BeginTime string `json:"begin_time"`
	EndTime   string `json:"end_time"`
}

type bfFixedNormalCoupon struct {
	DiscountAmount     int64 `json:"discount_amount"`
	TransactionMinimum int64 `json:"transaction_minimum"`
}

type bfDiscountCoupon struct {
	DiscountPercent    int64 `json:"discount_percent"`
	TransactionMinimum int64 `json:"transaction_minimum"`
}

type bfCouponUseRule struct {
	CouponAvailableTime bfAvailableTime      `json:"coupon_available_time"`
	FixedNormalCoupon   *bfFixedNormalCoupon `json:"fixed_normal_coupon,omitempty"`
	DiscountCoupon      *bfDiscountCoupon    `json:"discount_coupon,omitempty"`
	UseMethod           string               `json:"use_method"`
}

// requestRecord is what the sandbox knows about one request number of one
// endpoint: how often it arrived, whether every body was the same, and, once
// a request with it succeeded, the reply to give again.
type requestRecord struct {
	Endpoint  string `json:"endpoint"`
	RequestNo string `json:"request_no"`
	Count     int    `json:"count"`
	Identical bool   `json:"identical"`
	FirstFP   string `json:"first_fp"`

	BoundFP string `json:"bound_fp,omitempty"` // fingerprint of the request that succeeded
	Status  int    `json:"status,omitempty"`
	Reply   []byte `json:"reply,omitempty"` // never modified in place, so it may be shared
	Token   string `json:"token,omitempty"` // pre-send: the token Reply holds
}

// tokenRecord is an issued pre-send token.
type tokenRecord struct {
	Token           string    `json:"token"`
	OpenID          string    `json:"openid"`
	AppID           string    `json:"appid"`
	ProductCouponID string    `json:"product_coupon_id"`
	StockBundleID   string    `json:"stock_bundle_id"`
	SendRequestNo   string    `json:"send_request_no"`
	Attach          string    `json:"attach,omitempty"`
	IssuedAt        time.Time `json:"issued_at"`
	ExpiresAt       time.Time `json:"expires_at"`
}

// tokenTTL is a pre-send token's life (document 004: 有效期为5分钟).
const tokenTTL = 5 * time.Minute

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
