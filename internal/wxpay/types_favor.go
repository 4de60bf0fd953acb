package wxpay

import "encoding/json"

// Favor (代金券) stocks: document 003 (create) and the read endpoint
// GET /v3/marketing/favor/stocks/{stock_id}.

// CreateFavorStockRequest is the body of POST /v3/marketing/favor/coupon-stocks
// (document 003). Times are RFC 3339 strings, e.g.
// "2015-05-20T13:29:35+08:00"; amounts are in fen.
type CreateFavorStockRequest struct {
	// StockName: at most 9 Chinese characters or 20 letters; no _ , ; |.
	StockName string `json:"stock_name"`
	Comment   string `json:"comment,omitempty"`
	// BelongMerchant must be the creating merchant's ID; left empty, the
	// client fills in Config.MchID.
	BelongMerchant     string             `json:"belong_merchant"`
	AvailableBeginTime string             `json:"available_begin_time"`
	AvailableEndTime   string             `json:"available_end_time"`
	StockUseRule       FavorStockUseRule  `json:"stock_use_rule"`
	PatternInfo        *FavorPatternInfo  `json:"pattern_info,omitempty"`
	CouponUseRule      FavorCouponUseRule `json:"coupon_use_rule"`
	NoCash             bool               `json:"no_cash"`    // true 免充值, false 预充值
	StockType          FavorStockType     `json:"stock_type"` // only NORMAL
	OutRequestNo       string             `json:"out_request_no"`
	ExtInfo            string             `json:"ext_info,omitempty"` // not yet open
}

// FavorStockType is a favor stock's type; WeChat Pay only accepts NORMAL
// (固定面额满减券).
type FavorStockType string

// FavorStockTypeNormal is a fixed-amount voucher stock.
const FavorStockTypeNormal FavorStockType = "NORMAL"

// FavorStockUseRule is stock_use_rule (发放规则). The booleans are required
// and so always sent.
type FavorStockUseRule struct {
	MaxCoupons         int64 `json:"max_coupons"`
	MaxAmount          int64 `json:"max_amount"`
	MaxAmountByDay     int64 `json:"max_amount_by_day,omitempty"`
	MaxCouponsPerUser  int64 `json:"max_coupons_per_user"`
	NaturalPersonLimit bool  `json:"natural_person_limit"`
	PreventAPIAbuse    bool  `json:"prevent_api_abuse"`
}

// FavorPatternInfo is pattern_info (代金券详情页).
type FavorPatternInfo struct {
	Description     string `json:"description"`
	MerchantLogo    string `json:"merchant_logo,omitempty"`
	MerchantName    string `json:"merchant_name,omitempty"`
	BackgroundColor string `json:"background_color,omitempty"` // COLOR010 … COLOR102
	CouponImage     string `json:"coupon_image,omitempty"`
	// JumpTarget: PAYMENT_CODE, MINI_PROGRAM or DEFAULT_PAGE.
	JumpTarget       string `json:"jump_target,omitempty"`
	MiniProgramAppID string `json:"mini_program_appid,omitempty"`
	MiniProgramPath  string `json:"mini_program_path,omitempty"`
}

// FavorCouponUseRule is coupon_use_rule (核销规则).
type FavorCouponUseRule struct {
	CouponAvailableTime *FavorCouponAvailableTime `json:"coupon_available_time,omitempty"`
	// FixedNormalCoupon is required when stock_type is NORMAL.
	FixedNormalCoupon *FixedNormalCoupon `json:"fixed_normal_coupon,omitempty"`
	GoodsTag          []string           `json:"goods_tag,omitempty"`
	// TradeType: MICROAPP, APPPAY, PPAY, CARD, FACE, OTHER; empty = any.
	TradeType []string `json:"trade_type,omitempty"`
	// CombineUse: omitted means false, WeChat Pay's default.
	CombineUse         bool            `json:"combine_use,omitempty"`
	AvailableItems     []string        `json:"available_items,omitempty"`
	UnavailableItems   []string        `json:"unavailable_items,omitempty"` // not yet open
	AvailableMerchants []string        `json:"available_merchants"`
	LimitCard          *FavorLimitCard `json:"limit_card,omitempty"`
}

// FavorCouponAvailableTime is coupon_available_time (券生效时间).
type FavorCouponAvailableTime struct {
	FixAvailableTime          *FavorFixAvailableTime `json:"fix_available_time,omitempty"`
	SecondDayAvailable        bool                   `json:"second_day_available,omitempty"`
	AvailableTimeAfterReceive int64                  `json:"available_time_after_receive,omitempty"`
}

// FavorFixAvailableTime is fix_available_time: week days (0 = Sunday … 6 = Saturday)
// and seconds within the day. Begin and end are always sent, 0 being a
// meaningful time of day.
type FavorFixAvailableTime struct {
	AvailableWeekDay []int64 `json:"available_week_day,omitempty"`
	BeginTime        int64   `json:"begin_time"`
	EndTime          int64   `json:"end_time"`
}

// FixedNormalCoupon is fixed_normal_coupon: face value and order minimum, in fen.
type FixedNormalCoupon struct {
	CouponAmount       int64 `json:"coupon_amount"`
	TransactionMinimum int64 `json:"transaction_minimum"`
}

// FavorLimitCard is limit_card (指定银行卡BIN).
type FavorLimitCard struct {
	Name string   `json:"name,omitempty"`
	Bin  []string `json:"bin,omitempty"`
}

// CreateFavorStockReply is document 003's reply.
type CreateFavorStockReply struct {
	StockID    string `json:"stock_id"`
	CreateTime string `json:"create_time"`
	Meta       Meta   `json:"-"`
}

// FavorStockStatus is a favor stock's status as the read endpoint reports it.
type FavorStockStatus string

// Favor stock statuses ("stoped" is WeChat Pay's spelling).
const (
	FavorStockUnactivated FavorStockStatus = "unactivated" // 未激活
	FavorStockAudit       FavorStockStatus = "audit"       // 审核中
	FavorStockRunning     FavorStockStatus = "running"     // 运行中
	FavorStockStoped      FavorStockStatus = "stoped"      // 已停止
	FavorStockPaused      FavorStockStatus = "paused"      // 暂停发放
)

// FavorStock is the reply of GET /v3/marketing/favor/stocks/{stock_id}.
type FavorStock struct {
	StockID            string              `json:"stock_id"`
	StockCreatorMchID  string              `json:"stock_creator_mchid"`
	StockName          string              `json:"stock_name"`
	Status             FavorStockStatus    `json:"status"`
	CreateTime         string              `json:"create_time"`
	Description        string              `json:"description"`
	StockUseRule       *FavorStockReadRule `json:"stock_use_rule,omitempty"`
	AvailableBeginTime string              `json:"available_begin_time"`
	AvailableEndTime   string              `json:"available_end_time"`
	DistributedCoupons int64               `json:"distributed_coupons"`
	NoCash             bool                `json:"no_cash"`
	StartTime          string              `json:"start_time,omitempty"`
	StopTime           string              `json:"stop_time,omitempty"`
	Singleitem         bool                `json:"singleitem"`
	StockType          FavorStockType      `json:"stock_type"`
	CardID             string              `json:"card_id,omitempty"`
	// Raw is the verified reply body, for fields this struct does not name.
	Raw  json.RawMessage `json:"-"`
	Meta Meta            `json:"-"`
}

// FavorStockReadRule is the stock_use_rule the read endpoint returns, which
// folds in the coupon's face value.
type FavorStockReadRule struct {
	MaxCoupons        int64              `json:"max_coupons"`
	MaxAmount         int64              `json:"max_amount"`
	MaxAmountByDay    int64              `json:"max_amount_by_day,omitempty"`
	FixedNormalCoupon *FixedNormalCoupon `json:"fixed_normal_coupon,omitempty"`
	MaxCouponsPerUser int64              `json:"max_coupons_per_user"`
	CouponType        string             `json:"coupon_type,omitempty"`
	GoodsTag          []string           `json:"goods_tag,omitempty"`
	TradeType         []string           `json:"trade_type,omitempty"`
	CombineUse        bool               `json:"combine_use,omitempty"`
}
