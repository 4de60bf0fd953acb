package wxpay

import "encoding/json"

// Busifavor (商家券) stocks: document 002 (code upload) and the read
// endpoint GET /v3/marketing/busifavor/stocks/{stock_id}.

// UploadBusifavorCodesRequest is the body of
// POST /v3/marketing/busifavor/stocks/{stock_id}/couponcodes (document 002).
// Codes are 1–32 characters of 0-9 a-z A-Z space - _ \ / = |; 1–200 per call.
type UploadBusifavorCodesRequest struct {
	CouponCodeList  []string `json:"coupon_code_list,omitempty"`
	UploadRequestNo string   `json:"upload_request_no"`
}

// UploadBusifavorCodesReply is document 002's reply.
type UploadBusifavorCodesReply struct {
	StockID        string             `json:"stock_id"`
	TotalCount     uint64             `json:"total_count"`
	SuccessCount   uint64             `json:"success_count"`
	SuccessCodes   []string           `json:"success_codes,omitempty"`
	SuccessTime    string             `json:"success_time"`
	FailCount      uint64             `json:"fail_count,omitempty"`
	FailCodes      []FailedCouponCode `json:"fail_codes,omitempty"`
	ExistCodes     []string           `json:"exist_codes,omitempty"`
	DuplicateCodes []string           `json:"duplicate_codes,omitempty"`
	Meta           Meta               `json:"-"`
}

// FailedCouponCode is a code an upload refused, with WeChat Pay's reason
// (both upload endpoints use this shape).
type FailedCouponCode struct {
	CouponCode string `json:"coupon_code"`
	Code       string `json:"code"`
	Message    string `json:"message"`
}

// Busifavor stock states as the read endpoint reports them ("STOPED" is
// WeChat Pay's spelling).
const (
	BusifavorStockUnaudit = "UNAUDIT"
	BusifavorStockRunning = "RUNNING"
	BusifavorStockStoped  = "STOPED"
	BusifavorStockPaused  = "PAUSED"
)

// Busifavor coupon_code_mode values; codes can be uploaded only to
// MERCHANT_UPLOAD stocks.
const (
	BusifavorCodeModeWechatpay = "WECHATPAY_MODE"
	BusifavorCodeModeAPI       = "MERCHANT_API"
	BusifavorCodeModeUpload    = "MERCHANT_UPLOAD"
)

// BusifavorStock is the reply of GET /v3/marketing/busifavor/stocks/{stock_id}.
type BusifavorStock struct {
	StockID         string                  `json:"stock_id"`
	StockName       string                  `json:"stock_name"`
	BelongMerchant  string                  `json:"belong_merchant"`
	Comment         string                  `json:"comment,omitempty"`
	GoodsName       string                  `json:"goods_name,omitempty"`
	StockType       string                  `json:"stock_type"` // NORMAL, DISCOUNT, EXCHANGE
	StockState      string                  `json:"stock_state"`
	CouponCodeMode  string                  `json:"coupon_code_mode"`
	CouponCodeCount *BusifavorCodeCount     `json:"coupon_code_count,omitempty"`
	StockSendRule   *BusifavorSendRule      `json:"stock_send_rule,omitempty"`
	CouponUseRule   *BusifavorUseRule       `json:"coupon_use_rule,omitempty"`
	SendCountInfo   *BusifavorSendCountInfo `json:"send_count_information,omitempty"`
	// Raw is the verified reply body, for fields this struct does not name.
	Raw  json.RawMessage `json:"-"`
	Meta Meta            `json:"-"`
}

// BusifavorCodeCount is coupon_code_count: uploaded and still unused codes.
type BusifavorCodeCount struct {
	TotalCount     int64 `json:"total_count"`
	AvailableCount int64 `json:"available_count"`
}

// BusifavorSendRule is stock_send_rule.
type BusifavorSendRule struct {
	MaxAmount          int64 `json:"max_amount,omitempty"`
	MaxCoupons         int64 `json:"max_coupons,omitempty"`
	MaxCouponsPerUser  int64 `json:"max_coupons_per_user,omitempty"`
	MaxAmountByDay     int64 `json:"max_amount_by_day,omitempty"`
	MaxCouponsByDay    int64 `json:"max_coupons_by_day,omitempty"`
	NaturalPersonLimit bool  `json:"natural_person_limit,omitempty"`
	PreventAPIAbuse    bool  `json:"prevent_api_abuse,omitempty"`
	Transferable       bool  `json:"transferable,omitempty"`
	Shareable          bool  `json:"shareable,omitempty"`
}

// BusifavorUseRule is coupon_use_rule.
type BusifavorUseRule struct {
	CouponAvailableTime *BusifavorAvailableTime `json:"coupon_available_time,omitempty"`
	FixedNormalCoupon   *BusifavorNormalCoupon  `json:"fixed_normal_coupon,omitempty"`
	DiscountCoupon      *BusifavorDiscount      `json:"discount_coupon,omitempty"`
	ExchangeCoupon      *BusifavorExchange      `json:"exchange_coupon,omitempty"`
	UseMethod           string                  `json:"use_method,omitempty"`
	MiniProgramsAppID   string                  `json:"mini_programs_appid,omitempty"`
	MiniProgramsPath    string                  `json:"mini_programs_path,omitempty"`
}

// BusifavorAvailableTime is coupon_available_time: the validity period,
// and within it the weekly windows (available_week) and irregular windows
// (irregulary_avaliable_time, WeChat Pay's spelling) in which coupons may
// be used.
type BusifavorAvailableTime struct {
	AvailableBeginTime       string                `json:"available_begin_time,omitempty"`
	AvailableEndTime         string                `json:"available_end_time,omitempty"`
	AvailableDayAfterReceive int64                 `json:"available_day_after_receive,omitempty"`
	AvailableWeek            *BusifavorWeek        `json:"available_week,omitempty"`
	IrregularyAvaliableTime  []BusifavorTimeWindow `json:"irregulary_avaliable_time,omitempty"`
	WaitDaysAfterReceive     int64                 `json:"wait_days_after_receive,omitempty"`
}

// BusifavorWeek is available_week: the week days (0 Sunday … 6 Saturday)
// and, on them, the times of day (seconds since midnight) coupons work.
type BusifavorWeek struct {
	WeekDay          []int64             `json:"week_day,omitempty"`
	AvailableDayTime []BusifavorDayRange `json:"available_day_time,omitempty"`
}

// BusifavorDayRange is a time of day range in seconds since midnight.
type BusifavorDayRange struct {
	BeginTime int64 `json:"begin_time"`
	EndTime   int64 `json:"end_time"`
}

// BusifavorTimeWindow is an irregular window, RFC 3339 times.
type BusifavorTimeWindow struct {
	BeginTime string `json:"begin_time"`
	EndTime   string `json:"end_time"`
}

// BusifavorNormalCoupon is fixed_normal_coupon (满减), in fen.
type BusifavorNormalCoupon struct {
	DiscountAmount     int64 `json:"discount_amount"`
	TransactionMinimum int64 `json:"transaction_minimum"`
}

// BusifavorDiscount is discount_coupon (折扣).
type BusifavorDiscount struct {
	DiscountPercent    int64 `json:"discount_percent"`
	TransactionMinimum int64 `json:"transaction_minimum"`
}

// BusifavorExchange is exchange_coupon (换购).
type BusifavorExchange struct {
	ExchangePrice      int64 `json:"exchange_price"`
	TransactionMinimum int64 `json:"transaction_minimum"`
}

// BusifavorSendCountInfo is send_count_information.
type BusifavorSendCountInfo struct {
	TotalSendNum    int64 `json:"total_send_num"`
	TotalSendAmount int64 `json:"total_send_amount"`
	TodaySendNum    int64 `json:"today_send_num"`
	TodaySendAmount int64 `json:"today_send_amount"`
}
