package models

import "time"

// StockKind is which WeChat Pay product a stock belongs to.
type StockKind string

const (
	KindFavor         StockKind = "favor"          // 代金券, document 003
	KindBusifavor     StockKind = "busifavor"      // 商家券, document 002
	KindProductCoupon StockKind = "product_coupon" // 商品券, documents 000, 001, 004
)

// StockKinds lists the kinds in display order.
var StockKinds = []StockKind{KindFavor, KindBusifavor, KindProductCoupon}

// StockState is the console's normalised stock state; each kind's API spells
// its states differently (see stocks.NormalizeState).
type StockState string

const (
	StateUnactivated StockState = "UNACTIVATED" // created, not yet activated (favor)
	StateAuditing    StockState = "AUDITING"
	StateSending     StockState = "SENDING"
	StatePaused      StockState = "PAUSED"
	StateStopped     StockState = "STOPPED"
	StateDeactivated StockState = "DEACTIVATED"
	StateUnknown     StockState = "UNKNOWN"
)

// StockStates lists the states in display order.
var StockStates = []StockState{StateUnactivated, StateAuditing, StateSending, StatePaused, StateStopped, StateDeactivated}

// Stock is a stock the console knows: created through it or registered.
type Stock struct {
	ID                  int64 `gorm:"primaryKey"`
	Kind                StockKind
	StockID             string
	ProductCouponID     string
	Name                string
	State               StockState
	WxState             string
	CouponCodeMode      string
	TotalCount          *int64
	AvailableCount      *int64
	SentCount           *int64
	MaxCoupons          *int64
	MaxCouponsPerUser   *int64
	AvailableBeginTime  string
	AvailableEndTime    string
	WxCreateTime        string
	DeactivateTime      string
	DeactivateReason    string
	DeactivateRequestNo string
	Raw                 string // the last verified reply body read from WeChat Pay
	Demo                bool
	CreatedBy           *int64
	RefreshedAt         *time.Time
	RefreshedBy         string // who last read it back: a username, or SystemActor for the background sync
	LowStockThreshold   *int64 // the stock's own low-stock threshold; nil: the configured default
	CreatedAt           time.Time
	UpdatedAt           time.Time
	Bundles             []StockBundle `gorm:"foreignKey:StockRef"`
}

// StockBundle is a stock bundle (批次组) of a product-coupon stock.
type StockBundle struct {
	ID              int64 `gorm:"primaryKey"`
	StockRef        int64
	ProductCouponID string
	StockBundleID   string
}

// OperationStatus is where a WeChat Pay call stands.
type OperationStatus string

const (
	OpPending   OperationStatus = "pending" // intent recorded; outcome not yet known
	OpSucceeded OperationStatus = "succeeded"
	OpFailed    OperationStatus = "failed"
)

// WxOperation is one WeChat Pay call that changes something, recorded before
// the call with its request number and exact body, and completed after.
type WxOperation struct {
	ID             int64 `gorm:"primaryKey"`
	Kind           string
	RequestNo      string
	FormToken      *string
	UserID         *int64
	StockRef       *int64
	Target         string
	Body           string
	Status         OperationStatus
	Attempts       int
	WxStatus       int
	WxErrorCode    string
	WxErrorMessage string
	WxRequestID    string
	Result         string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}
