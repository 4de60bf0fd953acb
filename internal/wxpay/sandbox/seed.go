package sandbox

import (
	"fmt"
	"time"
)

// Demo data IDs. They are fixed so that a sandbox restarted without a
// StateDir (the console's in-process sandbox) offers the same stocks, and a
// console that registered them keeps finding them.
const (
	// SeedProductCoupon is 臻选拿铁兑换券, a single-use exchange coupon whose
	// stocks cover every state and two code modes.
	SeedProductCoupon = "1000000001"
	// SeedStockSending is SENDING in UPLOAD mode with a few codes: the stock
	// to upload codes to and to deactivate.
	SeedStockSending = "1000000001001"
	// SeedStockPaused is PAUSED in UPLOAD mode: deactivatable.
	SeedStockPaused = "1000000001002"
	// SeedStockAuditing is AUDITING: deactivation is refused.
	SeedStockAuditing = "1000000001003"
	// SeedStockStopped is STOPPED (its end time has passed): deactivation and
	// code upload are refused.
	SeedStockStopped = "1000000001004"
	// SeedStockDeactivated is already DEACTIVATED.
	SeedStockDeactivated = "1000000001005"
	// SeedStockWechatPayMode is SENDING in WECHATPAY mode: code upload is
	// refused.
	SeedStockWechatPayMode = "1000000001006"

	// SeedBundleCoupon is 门店满减券, whose stocks are grouped in bundles for
	// pre-send (document 004).
	SeedBundleCoupon = "1000000002"
	// SeedBundleStockSmall (满50减10, SENDING, 3 per user) and
	// SeedBundleStockLarge (满100减25, SENDING, 1 per user) make up
	// SeedBundleMemberDay.
	SeedBundleStockSmall = "1000000002001"
	SeedBundleStockLarge = "1000000002002"
	// SeedBundleStockPaused (满200减60) is PAUSED; it is SeedBundlePaused.
	SeedBundleStockPaused = "1000000002003"
	// SeedBundleStockLimited (满30减5) has a total budget of 3 sends; it is
	// SeedBundleLimited.
	SeedBundleStockLimited = "1000000002004"
	// SeedBundleMemberDay (会员日礼包) pre-sends; one token per user, as its
	// large stock allows one coupon per user.
	SeedBundleMemberDay = "1000000002101"
	// SeedBundlePaused (大额满减礼包) is refused: its stock is PAUSED.
	SeedBundlePaused = "1000000002102"
	// SeedBundleLimited (限量体验礼包) runs out after three tokens.
	SeedBundleLimited = "1000000002103"

	// SeedBusifavorUpload is a RUNNING busifavor stock in MERCHANT_UPLOAD
	// mode taking up to 5,000,000 codes.
	SeedBusifavorUpload = "1265000001"
	// SeedBusifavorWechatPay is a RUNNING busifavor stock in WECHATPAY_MODE:
	// code upload is refused.
	SeedBusifavorWechatPay = "1265000002"

	// SeedFavorStock is a running favor stock (代金券).
	SeedFavorStock = "1700000001"

	// DemoAppID and DemoOpenID are a well-formed AppID and OpenID to try
	// pre-send with.
	DemoAppID  = "wx6f3a9b2c1d4e5f70"
	DemoOpenID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
)

// seed fills st with the demo data, its times relative to now.
func seed(st *state, now time.Time) {
	day := now.In(cst)
	day = time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, cst)
	at := func(days int) string { return rfc3339(day.AddDate(0, 0, days)) }
	period := func(from, to int) pcAvailablePeriod {
		return pcAvailablePeriod{
			AvailableBeginTime: at(from),
			AvailableEndTime:   at(to),
			WeeklyAvailablePeriod: &pcWeeklyPeriod{
				DayList:       []string{"MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"},
				DayPeriodList: []pcDayRange{{BeginTime: 7 * 3600, EndTime: 22 * 3600}},
			},
		}
	}
	display := pcUsageRuleDisplay{
		CouponUsageMethodList: []string{"OFFLINE", "MINI_PROGRAM"},
		MiniProgramAppid:      DemoAppID,
		MiniProgramPath:       "/pages/coupon/use",
		UsageDescription:      "到店出示券码或在小程序下单时使用,不与其他优惠同享。",
		CouponAvailableStoreInfo: &pcStoreInfo{
			Description:      "上海、杭州、南京全部直营门店可用",
			MiniProgramAppid: DemoAppID,
			MiniProgramPath:  "/pages/store/list",
		},
	}
	couponDisplay := pcCouponDisplay{
		CodeDisplayMode: "QRCODE",
		BackgroundColor: "Color020",
		EntranceMiniProgram: &pcEntranceMiniProgram{
			Appid:           DemoAppID,
			Path:            "/pages/index/index",
			EntranceWording: "去点单",
			GuidanceWording: "更多新品优惠",
		},
	}

	latte := &productCoupon{ID: SeedProductCoupon, Name: "臻选拿铁兑换券", UsageMode: "SINGLE"}
	st.addProductCoupon(latte)
	latteStock := func(id, remark, mode, state string, from, to int) *pcStock {
		return &pcStock{
			ProductCouponID: latte.ID,
			StockID:         id,
			Remark:          remark,
			CouponCodeMode:  mode,
			StockSendRule:   pcSendRule{MaxCount: 10_000_000, MaxCountPerDay: 100_000, MaxCountPerUser: 5},
			SingleUsageRule: &pcSingleUsageRule{
				CouponAvailablePeriod: period(from, to),
				ExchangeCoupon:        &pcExchangeCoupon{Threshold: 0, ExchangePrice: 100},
			},
			UsageRuleDisplayInfo: display,
			CouponDisplayInfo:    couponDisplay,
			NotifyConfig:         pcNotifyConfig{NotifyAppid: DemoAppID},
			StoreScope:           "ALL",
			State:                state,
		}
	}
	sending := latteStock(SeedStockSending, "春季拿铁兑换批次", CodeModeUpload, StateSending, -30, 90)
	sending.SentTotal = 6
	sending.codes = newCodeSet()
	for i := 1; i <= 8; i++ {
		sending.codes.add(fmt.Sprintf("LATTE-SPRING-%04d", i))
	}
	sending.CodesUsed = 6
	st.addPCStock(sending)
	st.addPCStock(latteStock(SeedStockPaused, "门店活动暂停批次", CodeModeUpload, StatePaused, -30, 90))
	st.addPCStock(latteStock(SeedStockAuditing, "夏季新品待审批次", CodeModeUpload, StateAuditing, 1, 120))
	st.addPCStock(latteStock(SeedStockStopped, "冬季拿铁已结束批次", CodeModeUpload, StateStopped, -120, -10))
	deact := latteStock(SeedStockDeactivated, "错配门店已失效批次", CodeModeUpload, StateDeactivated, -30, 90)
	deact.DeactivateRequestNo = "DEMO_DEACTIVATE_0001"
	deact.DeactivateTime = rfc3339(day.AddDate(0, 0, -2).Add(10 * time.Hour))
	deact.DeactivateReason = "批次信息有误,重新创建"
	st.addPCStock(deact)
	st.addPCStock(latteStock(SeedStockWechatPayMode, "线上随机码批次", CodeModeWechatPay, StateSending, -30, 90))

	shop := &productCoupon{ID: SeedBundleCoupon, Name: "门店满减券", UsageMode: "SINGLE"}
	st.addProductCoupon(shop)
	shopStock := func(id, remark, state string, threshold, amount int64, rule pcSendRule) *pcStock {
		return &pcStock{
			ProductCouponID: shop.ID,
			StockID:         id,
			Remark:          remark,
			CouponCodeMode:  CodeModeWechatPay,
			StockSendRule:   rule,
			SingleUsageRule: &pcSingleUsageRule{
				CouponAvailablePeriod: period(-7, 60),
				NormalCoupon:          &pcNormalCoupon{Threshold: threshold, DiscountAmount: amount},
			},
			UsageRuleDisplayInfo: display,
			CouponDisplayInfo:    couponDisplay,
			NotifyConfig:         pcNotifyConfig{NotifyAppid: DemoAppID},
			StoreScope:           "ALL",
			State:                state,
		}
	}
	st.addPCStock(shopStock(SeedBundleStockSmall, "会员日满50减10", StateSending, 5000, 1000,
		pcSendRule{MaxCount: 100_000, MaxCountPerDay: 5_000, MaxCountPerUser: 3}))
	st.addPCStock(shopStock(SeedBundleStockLarge, "会员日满100减25", StateSending, 10000, 2500,
		pcSendRule{MaxCount: 50_000, MaxCountPerDay: 2_000, MaxCountPerUser: 1}))
	st.addPCStock(shopStock(SeedBundleStockPaused, "大额满200减60", StatePaused, 20000, 6000,
		pcSendRule{MaxCount: 10_000, MaxCountPerDay: 500, MaxCountPerUser: 1}))
	st.addPCStock(shopStock(SeedBundleStockLimited, "限量满30减5", StateSending, 3000, 500,
		pcSendRule{MaxCount: 3, MaxCountPerDay: 3, MaxCountPerUser: 1}))
	st.addBundle(&stockBundle{ID: SeedBundleMemberDay, ProductCouponID: shop.ID, Name: "会员日礼包",
		StockIDs: []string{SeedBundleStockSmall, SeedBundleStockLarge}})
	st.addBundle(&stockBundle{ID: SeedBundlePaused, ProductCouponID: shop.ID, Name: "大额满减礼包",
		StockIDs: []string{SeedBundleStockPaused}})
	st.addBundle(&stockBundle{ID: SeedBundleLimited, ProductCouponID: shop.ID, Name: "限量体验礼包",
		StockIDs: []string{SeedBundleStockLimited}})

	bfTime := bfAvailableTime{AvailableBeginTime: at(-7), AvailableEndTime: at(60)}
	// The weekend stock is usable on Saturdays and Sundays, 10:00–22:00, and
	// on one extra day.
	weekend := bfTime
	weekend.AvailableWeek = &bfAvailableWeek{WeekDay: []int64{6, 0}, AvailableDayTime: []bfDayRange{{BeginTime: 10 * 3600, EndTime: 22 * 3600}}}
	weekend.IrregularyAvaliableTime = []bfTimeWindow{{BeginTime: at(10), EndTime: at(11)}}
	st.addBusifavor(&busifavorStock{
		StockID:        SeedBusifavorUpload,
		StockName:      "周末满100减20",
		BelongMerchant: MerchantID,
		Comment:        "线下门店周末活动",
		GoodsName:      "全场饮品及烘焙",
		StockType:      "NORMAL",
		StockState:     BusifavorRunning,
		CouponCodeMode: BusifavorModeUpload,
		StockSendRule:  bfSendRule{MaxCoupons: 5_000_000, MaxCouponsPerUser: 2, MaxCouponsByDay: 100_000, PreventAPIAbuse: true},
		CouponUseRule: bfCouponUseRule{
			CouponAvailableTime: weekend,
			FixedNormalCoupon:   &bfFixedNormalCoupon{DiscountAmount: 2000, TransactionMinimum: 10000},
			UseMethod:           "OFF_LINE",
		},
	})
	st.addBusifavor(&busifavorStock{
		StockID:        SeedBusifavorWechatPay,
		StockName:      "新品9折体验券",
		BelongMerchant: MerchantID,
		GoodsName:      "当季新品",
		StockType:      "DISCOUNT",
		StockState:     BusifavorRunning,
		CouponCodeMode: BusifavorModeWechatPay,
		StockSendRule:  bfSendRule{MaxCoupons: 20_000, MaxCouponsPerUser: 1},
		CouponUseRule: bfCouponUseRule{
			CouponAvailableTime: bfTime,
			DiscountCoupon:      &bfDiscountCoupon{DiscountPercent: 90, TransactionMinimum: 0},
			UseMethod:           "OFF_LINE",
		},
	})

	ptr := func(s string) *string { return &s }
	i64 := func(v int64) *int64 { return &v }
	yes, no := true, false
	st.addFavor(&favorStock{
		StockID:     SeedFavorStock,
		CreatorMch:  MerchantID,
		Status:      FavorRunning,
		CreateTime:  at(-3),
		Distributed: 1234,
		Request: favorCreateReq{
			StockName:          ptr("新客立减10元"),
			Comment:            ptr("新客首单专享"),
			BelongMerchant:     ptr(MerchantID),
			AvailableBeginTime: ptr(at(-2)),
			AvailableEndTime:   ptr(at(60)),
			StockUseRule: &favorStockUseRule{
				MaxCoupons:         i64(10_000),
				MaxAmount:          i64(100_000),
				MaxCouponsPerUser:  i64(1),
				NaturalPersonLimit: &no,
				PreventAPIAbuse:    &yes,
			},
			PatternInfo: &favorPatternInfo{
				Description:     ptr("新客首单满30元立减10元,每人限领1张。"),
				MerchantName:    ptr("臻选咖啡"),
				BackgroundColor: ptr("COLOR020"),
			},
			CouponUseRule: &favorCouponUseRule{
				FixedNormalCoupon:  &favorFixedNormal{CouponAmount: i64(1000), TransactionMinimum: i64(3000)},
				AvailableMerchants: []string{MerchantID},
			},
			NoCash:       &no,
			StockType:    ptr("NORMAL"),
			OutRequestNo: ptr("1230000109_DEMO_0001"),
		},
	})
}
