package favorform

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Asia/Shanghai without the system's zoneinfo

	"voucherconsole/internal/i18n"
)

var (
	shanghai = mustLoadLocation("Asia/Shanghai")
	// testNow is the clock for every case: 2026-06-15 10:30:45 in Shanghai.
	testNow = time.Date(2026, 6, 15, 10, 30, 45, 0, shanghai)
)

const testMchID = "1900000001"

func mustLoadLocation(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

func catalog(t *testing.T) *i18n.Catalog {
	t.Helper()
	c, err := i18n.Load()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// validForm fills every field of the form with valid values.
func validForm() Form {
	return Form{
		StockName:          "夏日满减券",
		Comment:            "六月活动",
		AvailableBeginTime: "2026-07-01T10:00",
		AvailableEndTime:   "2026-07-31T23:59",
		NoCash:             "false",
		StockType:          "NORMAL",

		MaxCoupons:         "100",
		MaxAmount:          "1000.00",
		MaxAmountByDay:     "200",
		MaxCouponsPerUser:  "3",
		NaturalPersonLimit: true,
		PreventAPIAbuse:    true,

		Description:     "满 50 元减 10 元，\r\n每人限领 3 张。",
		MerchantLogo:    "https://wxpaypicture.qpic.cn/logo.png",
		MerchantName:    "微信支付",
		BackgroundColor: "COLOR010",
		CouponImage:     "https://wxpaypicture.qpic.cn/detail.png",
		JumpTarget:      "PAYMENT_CODE",

		CouponAmount:       "10",
		TransactionMinimum: "50.00",
		GoodsTag:           "summer\nvip",
		TradeType:          []string{"MICROAPP", "CARD"},
		AvailableItems:     "SKU-1, SKU-2",
		AvailableMerchants: "1900000001\r\n1900000002",

		AvailableWeekDay: []string{"5", "1", "2", "3", "4"},
		BeginTime:        "09:00",
		EndTime:          "21:30",

		LimitCardName: "精粹白金",
		Bin:           "62542688",
	}
}

type ruleCase struct {
	name  string
	edit  func(f *Form)
	field string // the one field with an error; "" when the form is valid
	zh    string // the message shown in Chinese
	en    string // and in English
}

var (
	required   = [2]string{"此项为必填项。", "This field is required."}
	positive   = [2]string{"请输入大于 0 的整数，不带小数点或正负号。", "Enter a whole number greater than 0, without a decimal point or sign."}
	amountZero = [2]string{"金额须大于 0 元。", "The amount must be more than 0 yuan."}
	precision  = [2]string{"金额最多两位小数（精确到分）。", "Amounts have at most two decimal places (fen)."}
	negative   = [2]string{"金额不能为负数。", "The amount cannot be negative."}
	miniNeeded = [2]string{"卡包跳转目标为“跳转至小程序”时必填。", "Required when the wallet button leads to a Mini Program."}
)

func fails(name string, edit func(f *Form), field string, msg [2]string) ruleCase {
	return ruleCase{name: name, edit: edit, field: field, zh: msg[0], en: msg[1]}
}

func passes(name string, edit func(f *Form)) ruleCase { return ruleCase{name: name, edit: edit} }

func enumMsg(v string) [2]string {
	return [2]string{"“" + v + "”不是有效的选项，请从列表中选择。", "\"" + v + "\" is not a valid choice; pick one from the list."}
}

// runRules validates validForm with each case's edit and checks that exactly
// the expected field fails, with the expected text in both languages.
func runRules(t *testing.T, cases []ruleCase) {
	t.Helper()
	cat := catalog(t)
	zh, en := cat.For(i18n.Chinese), cat.For(i18n.English)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := validForm()
			tc.edit(&f)
			req, errs := f.Validate(testNow, shanghai, testMchID)
			if tc.field == "" {
				if len(errs) != 0 {
					t.Fatalf("want no errors, got %v", errs.Localize(zh))
				}
				if req.StockName == "" {
					t.Fatal("valid form built an empty request")
				}
				return
			}
			if !reflect.DeepEqual(req, reflect.Zero(reflect.TypeOf(req)).Interface()) {
				t.Error("a rejected form built a request")
			}
			if got := slices.Sorted(maps.Keys(errs)); !slices.Equal(got, []string{tc.field}) {
				t.Fatalf("fields with errors = %v, want [%s]: %v", got, tc.field, errs.Localize(zh))
			}
			m := errs[tc.field]
			if got := m.Text(zh); got != tc.zh {
				t.Errorf("Chinese:\n got %s\nwant %s", got, tc.zh)
			}
			if got := m.Text(en); got != tc.en {
				t.Errorf("English:\n got %s\nwant %s", got, tc.en)
			}
			if !zh.Has(m.ID) || !en.Has(m.ID) {
				t.Errorf("message %q is missing from a catalogue", m.ID)
			}
		})
	}
}

func TestValidForm(t *testing.T) {
	runRules(t, []ruleCase{passes("as is", func(*Form) {})})
}

// 批次名称: 最多9个中文汉字; 最多20个字母; 不能包含特殊字符 _ , ; |.
func TestStockNameRules(t *testing.T) {
	name := func(s string) func(*Form) { return func(f *Form) { f.StockName = s } }
	chars := func(c string) [2]string {
		return [2]string{
			"批次名称不能包含“" + c + "”：不允许使用 _ , ; | 及其全角形式。",
			"The stock name cannot contain \"" + c + "\": _ , ; | and their full-width forms are not allowed.",
		}
	}
	cases := []ruleCase{
		passes("9 Chinese characters", name("微信支付代金券批次")),
		fails("10 Chinese characters", name("微信支付代金券批次甲"), FieldStockName,
			[2]string{"批次名称最多 9 个中文汉字，当前为 10 个。", "The stock name may have at most 9 Chinese characters; it has 10."}),
		passes("20 letters", name("abcdefghijklmnopqrst")),
		fails("21 letters", name("abcdefghijklmnopqrstu"), FieldStockName,
			[2]string{"批次名称最多 20 个字符（字母、数字等每个计 1 个），当前为 21 个。", "The stock name may have at most 20 characters (each letter or digit counts 1); it has 21."}),
		passes("9 Chinese and 11 letters: 20 in all", name("微信支付代金券批次ABCDEFGHIJK")),
		fails("9 Chinese and 12 letters: 21 in all", name("微信支付代金券批次ABCDEFGHIJKL"), FieldStockName,
			[2]string{"批次名称最多 20 个字符（字母、数字等每个计 1 个），当前为 21 个。", "The stock name may have at most 20 characters (each letter or digit counts 1); it has 21."}),
		passes("Chinese punctuation is not a 汉字", name("夏日（限时）满减券！")),
		passes("surrounding spaces do not count", name("  微信支付代金券批次  ")),
		passes("hyphen, space and digits", name("618 Sale-2026")),
		fails("empty", name(""), FieldStockName, required),
		fails("only spaces", name("   "), FieldStockName, required),
	}
	for _, c := range []string{"_", ",", ";", "|", "＿", "，", "；", "｜"} {
		cases = append(cases, fails("forbidden "+c, name("夏日"+c+"满减"), FieldStockName, chars(c)))
	}
	runRules(t, cases)
}

// 可用时间: 开始时间不可早于当前时间; 不能创建365天后开始的批次; 批次可用时间范围最长为90天.
func TestValidityPeriodRules(t *testing.T) {
	period := func(begin, end string) func(*Form) {
		return func(f *Form) { f.AvailableBeginTime, f.AvailableEndTime = begin, end }
	}
	datetime := [2]string{"请输入有效的日期和时间，如 2026-12-01T10:00。", "Enter a valid date and time, such as 2026-12-01T10:00."}
	runRules(t, []ruleCase{
		// now is 2026-06-15 10:30:45.
		passes("begins in the current minute", period("2026-06-15T10:30", "2026-07-01T00:00")),
		fails("begins a minute ago", period("2026-06-15T10:29", "2026-07-01T00:00"), FieldAvailableBeginTime,
			[2]string{"开始时间不可早于当前时间（2026-06-15 10:30）。", "The start cannot be earlier than now (2026-06-15 10:30)."}),
		fails("begins yesterday", period("2026-06-14T23:59", "2026-07-01T00:00"), FieldAvailableBeginTime,
			[2]string{"开始时间不可早于当前时间（2026-06-15 10:30）。", "The start cannot be earlier than now (2026-06-15 10:30)."}),
		passes("begins 365 days ahead", period("2027-06-15T10:30", "2027-06-20T10:30")),
		fails("begins 365 days and a minute ahead", period("2027-06-15T10:31", "2027-06-20T10:30"), FieldAvailableBeginTime,
			[2]string{"不能创建 365 天后开始的批次，开始时间最晚为 2027-06-15 10:30。", "A stock cannot start more than 365 days ahead; the latest start is 2027-06-15 10:30."}),
		passes("runs exactly 90 days", period("2026-07-01T10:00", "2026-09-29T10:00")),
		fails("runs 90 days and a minute", period("2026-07-01T10:00", "2026-09-29T10:01"), FieldAvailableEndTime,
			[2]string{"批次可用时间范围最长为 90 天，结束时间最晚为 2026-09-29 10:00。", "A stock can run for at most 90 days; the latest end is 2026-09-29 10:00."}),
		passes("ends a minute after it begins", period("2026-07-01T10:00", "2026-07-01T10:01")),
		fails("ends when it begins", period("2026-07-01T10:00", "2026-07-01T10:00"), FieldAvailableEndTime,
			[2]string{"结束时间须晚于开始时间。", "The end must be after the start."}),
		fails("ends before it begins", period("2026-07-01T10:00", "2026-06-30T10:00"), FieldAvailableEndTime,
			[2]string{"结束时间须晚于开始时间。", "The end must be after the start."}),
		passes("seconds are accepted", period("2026-07-01T10:00:30", "2026-07-31T23:59:59")),
		fails("begin missing", period("", "2026-07-31T23:59"), FieldAvailableBeginTime, required),
		fails("end missing", period("2026-07-01T10:00", " "), FieldAvailableEndTime, required),
		fails("begin not a date", period("2026/07/01 10:00", "2026-07-31T23:59"), FieldAvailableBeginTime, datetime),
		fails("end not a real date", period("2026-07-01T10:00", "2026-02-30T10:00"), FieldAvailableEndTime, datetime),
		fails("end with a zone", period("2026-07-01T10:00", "2026-07-31T23:59:00+08:00"), FieldAvailableEndTime, datetime),
	})
}

// stock_use_rule: counts are positive integers, amounts yuan with at most
// two decimals; the daily budget is at most the total budget.
func TestStockUseRuleRules(t *testing.T) {
	maxCoupons := func(v string) func(*Form) { return func(f *Form) { f.MaxCoupons = v } }
	perUser := func(v string) func(*Form) { return func(f *Form) { f.MaxCouponsPerUser = v } }
	total := func(v string) func(*Form) { return func(f *Form) { f.MaxAmount = v } }
	byDay := func(v string) func(*Form) { return func(f *Form) { f.MaxAmountByDay = v } }
	runRules(t, []ruleCase{
		passes("one coupon", func(f *Form) { f.MaxCoupons, f.MaxAmount, f.MaxAmountByDay = "1", "10", "" }),
		fails("no coupons", maxCoupons("0"), FieldMaxCoupons, positive),
		fails("max_coupons missing", maxCoupons(""), FieldMaxCoupons, required),
		fails("fractional count", maxCoupons("1.5"), FieldMaxCoupons, positive),
		fails("negative count", maxCoupons("-3"), FieldMaxCoupons, positive),
		fails("signed count", maxCoupons("+3"), FieldMaxCoupons, positive),
		fails("words", maxCoupons("一百"), FieldMaxCoupons, positive),
		fails("count overflows", maxCoupons("99999999999999999999"), FieldMaxCoupons,
			[2]string{"数值过大。", "The number is too large."}),
		passes("per-user count with spaces", perUser(" 5 ")),
		fails("per-user count missing", perUser(""), FieldMaxCouponsPerUser, required),
		fails("per-user count zero", perUser("0"), FieldMaxCouponsPerUser, positive),
		fails("budget missing", total(""), FieldMaxAmount, required),
		fails("budget zero", total("0.00"), FieldMaxAmount, amountZero),
		passes("budget of one fen, no daily cap", func(f *Form) {
			f.MaxAmount, f.MaxAmountByDay, f.CouponAmount, f.MaxCoupons, f.TransactionMinimum = "0.01", "", "0.01", "1", "0"
		}),
		// WeChat Pay's rules beyond document 003's text: budget = face value
		// × count, at most 60 per user.
		passes("budget is face value times count", func(f *Form) { f.MaxAmount, f.CouponAmount, f.MaxCoupons = "1000", "10", "100" }),
		passes("budget written with decimals", func(f *Form) {
			f.MaxAmount, f.MaxAmountByDay, f.CouponAmount, f.MaxCoupons, f.TransactionMinimum = "33.3", "", "0.37", "90", "0"
		}),
		fails("budget a fen under face value times count", total("999.99"), FieldMaxAmount,
			[2]string{"总预算须等于面额乘以发放总上限：10.00 元 × 100 张 = 1000.00 元（微信支付：批次预算等于批次面额乘以发券数）。",
				"The budget must be the face value times the number of coupons: 10.00 yuan × 100 = 1000.00 yuan (WeChat Pay: 批次预算等于批次面额乘以发券数)."}),
		fails("count changed without the budget", maxCoupons("99"), FieldMaxAmount,
			[2]string{"总预算须等于面额乘以发放总上限：10.00 元 × 99 张 = 990.00 元（微信支付：批次预算等于批次面额乘以发券数）。",
				"The budget must be the face value times the number of coupons: 10.00 yuan × 99 = 990.00 yuan (WeChat Pay: 批次预算等于批次面额乘以发券数)."}),
		passes("60 per user", perUser("60")),
		fails("61 per user", perUser("61"), FieldMaxCouponsPerUser,
			[2]string{"单个用户最多可领 60 张。", "A user may receive at most 60 coupons."}),
		fails("budget with three decimals", total("1000.001"), FieldMaxAmount, precision),
		fails("negative budget", total("-1000"), FieldMaxAmount, negative),
		fails("signed budget", total("+1000"), FieldMaxAmount,
			[2]string{"金额前不要加正负号。", "Do not put a sign before the amount."}),
		fails("budget with a thousands separator", total("1,000"), FieldMaxAmount,
			[2]string{"请输入以元为单位的金额，如 19.99。", "Enter an amount in yuan, such as 19.99."}),
		fails("budget overflows", total("99999999999999999999"), FieldMaxAmount,
			[2]string{"金额过大。", "The amount is too large."}),
		passes("no daily cap", byDay("")),
		passes("daily cap equals the budget", byDay("1000")),
		fails("daily cap a fen over the budget", byDay("1000.01"), FieldMaxAmountByDay,
			[2]string{"单天预算发放上限不能大于总预算（1000.00 元）。", "The daily budget cap cannot exceed the total budget (1000.00 yuan)."}),
		fails("daily cap zero", byDay("0"), FieldMaxAmountByDay, amountZero),
		fails("daily cap with three decimals", byDay("1.234"), FieldMaxAmountByDay, precision),
	})
}

// fixed_normal_coupon (required with NORMAL): yuan to fen, exact.
func TestFixedNormalCouponRules(t *testing.T) {
	face := func(v string) func(*Form) { return func(f *Form) { f.CouponAmount = v } }
	minimum := func(v string) func(*Form) { return func(f *Form) { f.TransactionMinimum = v } }
	runRules(t, []ruleCase{
		passes("face value of one fen", func(f *Form) {
			f.CouponAmount, f.MaxAmount, f.MaxAmountByDay, f.TransactionMinimum = "0.01", "1", "", "0"
		}),
		fails("face value missing", face(""), FieldCouponAmount, required),
		fails("face value zero", face("0"), FieldCouponAmount, amountZero),
		fails("face value with three decimals", face("1.234"), FieldCouponAmount, precision),
		fails("negative face value", face("-5"), FieldCouponAmount, negative),
		passes("no order minimum", minimum("0")),
		passes("order minimum below the face value (document 003 sets no relation)", minimum("5")),
		fails("order minimum missing", minimum(""), FieldTransactionMinimum, required),
		fails("negative order minimum", minimum("-1"), FieldTransactionMinimum, negative),
		fails("order minimum with three decimals", minimum("50.005"), FieldTransactionMinimum, precision),
	})
}

// Every enumeration refuses values not in document 003's list.
func TestEnumRules(t *testing.T) {
	runRules(t, []ruleCase{
		passes("no_cash true", func(f *Form) { f.NoCash = "true" }),
		fails("no_cash missing", func(f *Form) { f.NoCash = "" }, FieldNoCash, required),
		fails("no_cash other", func(f *Form) { f.NoCash = "maybe" }, FieldNoCash, enumMsg("maybe")),
		fails("stock_type missing", func(f *Form) { f.StockType = "" }, FieldStockType, required),
		fails("stock_type other", func(f *Form) { f.StockType = "DISCOUNT" }, FieldStockType, enumMsg("DISCOUNT")),
		passes("every background colour", func(f *Form) { f.BackgroundColor = "COLOR102" }),
		passes("no background colour", func(f *Form) { f.BackgroundColor = "" }),
		fails("background colour not in the list", func(f *Form) { f.BackgroundColor = "COLOR011" }, FieldBackgroundColor, enumMsg("COLOR011")),
		fails("background colour in lower case", func(f *Form) { f.BackgroundColor = "color010" }, FieldBackgroundColor, enumMsg("color010")),
		passes("jump to the default page", func(f *Form) { f.JumpTarget = "DEFAULT_PAGE" }),
		passes("no jump target", func(f *Form) { f.JumpTarget = "" }),
		fails("jump target not in the list", func(f *Form) { f.JumpTarget = "HOME" }, FieldJumpTarget, enumMsg("HOME")),
		passes("every trade type", func(f *Form) { f.TradeType = slices.Clone(TradeTypes) }),
		passes("no trade type", func(f *Form) { f.TradeType = nil }),
		fails("trade type not in the list", func(f *Form) { f.TradeType = []string{"MICROAPP", "JSAPI"} }, FieldTradeType, enumMsg("JSAPI")),
		passes("Sunday and Saturday", func(f *Form) { f.AvailableWeekDay = []string{"0", "6"} }),
		fails("week day 7", func(f *Form) { f.AvailableWeekDay = []string{"1", "7"} }, FieldAvailableWeekDay, enumMsg("7")),
	})
}

// pattern_info: mini_program_appid and _path are required with MINI_PROGRAM;
// description is required once pattern_info is used.
func TestPatternInfoRules(t *testing.T) {
	mini := func(appid, path string) func(*Form) {
		return func(f *Form) { f.JumpTarget, f.MiniProgramAppID, f.MiniProgramPath = "MINI_PROGRAM", appid, path }
	}
	runRules(t, []ruleCase{
		passes("mini program with AppID and path", mini("wx1234567890abcdef", "/pages/index/index")),
		fails("mini program without AppID", mini("", "/pages/index/index"), FieldMiniProgramAppID, miniNeeded),
		fails("mini program without path", mini("wx1234567890abcdef", "  "), FieldMiniProgramPath, miniNeeded),
		passes("payment code needs no mini program", func(f *Form) { f.JumpTarget, f.MiniProgramAppID, f.MiniProgramPath = "PAYMENT_CODE", "", "" }),
		passes("no detail page at all", func(f *Form) {
			f.Description, f.MerchantLogo, f.MerchantName, f.BackgroundColor, f.CouponImage, f.JumpTarget = "", "", "", "", "", ""
		}),
		fails("detail page without description", func(f *Form) { f.Description = "" }, FieldDescription,
			[2]string{"填写了详情页的任一项时，使用说明为必填项。", "Required once any other detail-page field is filled in."}),
		fails("only a brand name", func(f *Form) {
			f.Description, f.MerchantLogo, f.BackgroundColor, f.CouponImage, f.JumpTarget = "", "", "", "", ""
		}, FieldDescription, [2]string{"填写了详情页的任一项时，使用说明为必填项。", "Required once any other detail-page field is filled in."}),
	})
}

// Lengths: string(N) is N characters, Chinese or not.
func TestLengthRules(t *testing.T) {
	s := func(r string, n int) string { return strings.Repeat(r, n) }
	runRules(t, []ruleCase{
		passes("comment of 60 Chinese characters", func(f *Form) { f.Comment = s("备", 60) }),
		fails("comment of 61", func(f *Form) { f.Comment = s("备", 61) }, FieldComment, [2]string{"最多 60 个字符，当前为 61 个。", "At most 60 characters; this has 61."}),
		passes("description of 1000", func(f *Form) { f.Description = s("说", 1000) }),
		fails("description of 1001", func(f *Form) { f.Description = s("说", 1001) }, FieldDescription, [2]string{"最多 1000 个字符，当前为 1001 个。", "At most 1000 characters; this has 1001."}),
		passes("a CRLF line break counts as one character", func(f *Form) { f.Description = s("说明\r\n", 333) + "说" }),
		passes("merchant name of 12", func(f *Form) { f.MerchantName = s("品", 12) }),
		fails("merchant name of 13", func(f *Form) { f.MerchantName = s("品", 13) }, FieldMerchantName, [2]string{"最多 12 个字符，当前为 13 个。", "At most 12 characters; this has 13."}),
		passes("merchant logo of 128", func(f *Form) { f.MerchantLogo = s("l", 128) }),
		fails("merchant logo of 129", func(f *Form) { f.MerchantLogo = s("l", 129) }, FieldMerchantLogo, [2]string{"最多 128 个字符，当前为 129 个。", "At most 128 characters; this has 129."}),
		fails("coupon image of 129", func(f *Form) { f.CouponImage = s("i", 129) }, FieldCouponImage, [2]string{"最多 128 个字符，当前为 129 个。", "At most 128 characters; this has 129."}),
		fails("mini program AppID of 129", func(f *Form) { f.MiniProgramAppID = s("w", 129) }, FieldMiniProgramAppID, [2]string{"最多 128 个字符，当前为 129 个。", "At most 128 characters; this has 129."}),
		passes("mini program path of 128", func(f *Form) { f.MiniProgramPath = s("p", 128) }),
		fails("mini program path of 129", func(f *Form) { f.MiniProgramPath = s("p", 129) }, FieldMiniProgramPath, [2]string{"最多 128 个字符，当前为 129 个。", "At most 128 characters; this has 129."}),
		passes("card name of 32", func(f *Form) { f.LimitCardName = s("卡", 32) }),
		fails("card name of 33", func(f *Form) { f.LimitCardName = s("卡", 33) }, FieldLimitCardName, [2]string{"最多 32 个字符，当前为 33 个。", "At most 32 characters; this has 33."}),
		passes("goods tag of 128", func(f *Form) { f.GoodsTag = "a\n" + s("t", 128) }),
		fails("goods tag of 129", func(f *Form) { f.GoodsTag = "a\n" + s("t", 129) }, FieldGoodsTag,
			[2]string{"每项最多 128 个字符：“" + s("t", 129) + "”有 129 个。", "Each entry may have at most 128 characters; \"" + s("t", 129) + "\" has 129."}),
		fails("available item of 129", func(f *Form) { f.AvailableItems = s("品", 129) }, FieldAvailableItems,
			[2]string{"每项最多 128 个字符：“" + s("品", 129) + "”有 129 个。", "Each entry may have at most 128 characters; \"" + s("品", 129) + "\" has 129."}),
		fails("unavailable item of 129", func(f *Form) { f.UnavailableItems = s("x", 129) }, FieldUnavailableItems,
			[2]string{"每项最多 128 个字符：“" + s("x", 129) + "”有 129 个。", "Each entry may have at most 128 characters; \"" + s("x", 129) + "\" has 129."}),
	})
}

// available_merchants (required, array[string(20)]) and limit_card.
func TestMerchantAndCardRules(t *testing.T) {
	merchants := func(v string) func(*Form) { return func(f *Form) { f.AvailableMerchants = v } }
	runRules(t, []ruleCase{
		passes("comma separated", merchants("1900000001,1900000002，1900000003")),
		passes("20 digits", merchants("12345678901234567890")),
		fails("21 digits", merchants("1900000001\n123456789012345678901"), FieldAvailableMerchants,
			[2]string{"商户号须为不超过 20 位的数字：“123456789012345678901”不符合。", "Merchant IDs are up to 20 digits; \"123456789012345678901\" is not."}),
		fails("not digits", merchants("19000000a1"), FieldAvailableMerchants,
			[2]string{"商户号须为不超过 20 位的数字：“19000000a1”不符合。", "Merchant IDs are up to 20 digits; \"19000000a1\" is not."}),
		fails("missing", merchants(" \n , "), FieldAvailableMerchants, required),
		passes("no card restriction", func(f *Form) { f.LimitCardName, f.Bin = "", "" }),
		passes("BINs without a card name", func(f *Form) { f.LimitCardName = "" }),
		fails("card name without BINs", func(f *Form) { f.Bin = "" }, FieldBin,
			[2]string{"填写了银行卡名称时，须至少填写一个卡 BIN。", "Enter at least one card BIN when a card name is given."}),
		fails("BIN not digits", func(f *Form) { f.Bin = "62542688\n6254a" }, FieldBin,
			[2]string{"银行卡 BIN 须为不超过 20 位的数字：“6254a”不符合。", "Card BINs are up to 20 digits; \"6254a\" is not."}),
	})
}

// coupon_available_time.
func TestCouponAvailableTimeRules(t *testing.T) {
	day := func(begin, end string) func(*Form) { return func(f *Form) { f.BeginTime, f.EndTime = begin, end } }
	timeOfDay := [2]string{"请按 HH:MM 格式输入当天时间，如 09:30。", "Enter a time of day as HH:MM, such as 09:30."}
	order := [2]string{"当天结束时间须晚于当天开始时间。", "The daily end time must be after the daily start time."}
	runRules(t, []ruleCase{
		passes("whole day by default", day("", "")),
		passes("with seconds", day("00:00:00", "23:59:59")),
		fails("hour 25", day("25:00", "23:00"), FieldBeginTime, timeOfDay),
		fails("not a time", day("09:00", "9pm"), FieldEndTime, timeOfDay),
		fails("ends before it begins", day("09:00", "08:59"), FieldEndTime, order),
		fails("ends when it begins", day("09:00", "09:00"), FieldEndTime, order),
		passes("valid for 1440 minutes after claiming", func(f *Form) { f.AvailableTimeAfterReceive = "1440" }),
		fails("valid for 0 minutes after claiming", func(f *Form) { f.AvailableTimeAfterReceive = "0" }, FieldAvailableTimeAfterReceive, positive),
	})
}

// A form with nothing in it reports every required field at once.
func TestEveryErrorIsReported(t *testing.T) {
	_, errs := Form{}.Validate(testNow, shanghai, testMchID)
	want := []string{
		FieldAvailableBeginTime, FieldAvailableEndTime, FieldAvailableMerchants, FieldCouponAmount,
		FieldMaxAmount, FieldMaxCoupons, FieldMaxCouponsPerUser, FieldNoCash, FieldStockName,
		FieldStockType, FieldTransactionMinimum,
	}
	if got := slices.Sorted(maps.Keys(errs)); !slices.Equal(got, want) {
		t.Errorf("fields with errors = %v\nwant %v", got, want)
	}
	for field, m := range errs {
		if m.ID != "favor.err.required" {
			t.Errorf("%s: %s, want favor.err.required", field, m.ID)
		}
	}

	f := validForm()
	f.StockName, f.CouponAmount, f.MaxAmount, f.JumpTarget, f.MiniProgramPath = "a_b", "-1", "1.001", "MINI_PROGRAM", ""
	_, errs = f.Validate(testNow, shanghai, testMchID)
	want = []string{FieldCouponAmount, FieldMaxAmount, FieldMiniProgramAppID, FieldMiniProgramPath, FieldStockName}
	if got := slices.Sorted(maps.Keys(errs)); !slices.Equal(got, want) {
		t.Errorf("fields with errors = %v\nwant %v", got, want)
	}
}

// A fully valid form produces exactly this request body.
func TestValidFormJSON(t *testing.T) {
	req, errs := validForm().Validate(testNow, shanghai, testMchID)
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	got, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	want := `{
		"stock_name": "夏日满减券",
		"comment": "六月活动",
		"belong_merchant": "1900000001",
		"available_begin_time": "2026-07-01T10:00:00+08:00",
		"available_end_time": "2026-07-31T23:59:00+08:00",
		"stock_use_rule": {
			"max_coupons": 100,
			"max_amount": 100000,
			"max_amount_by_day": 20000,
			"max_coupons_per_user": 3,
			"natural_person_limit": true,
			"prevent_api_abuse": true
		},
		"pattern_info": {
			"description": "满 50 元减 10 元，\n每人限领 3 张。",
			"merchant_logo": "https://wxpaypicture.qpic.cn/logo.png",
			"merchant_name": "微信支付",
			"background_color": "COLOR010",
			"coupon_image": "https://wxpaypicture.qpic.cn/detail.png",
			"jump_target": "PAYMENT_CODE"
		},
		"coupon_use_rule": {
			"coupon_available_time": {
				"fix_available_time": {"available_week_day": [1, 2, 3, 4, 5], "begin_time": 32400, "end_time": 77400}
			},
			"fixed_normal_coupon": {"coupon_amount": 1000, "transaction_minimum": 5000},
			"goods_tag": ["summer", "vip"],
			"trade_type": ["MICROAPP", "CARD"],
			"available_items": ["SKU-1", "SKU-2"],
			"available_merchants": ["1900000001", "1900000002"],
			"limit_card": {"name": "精粹白金", "bin": ["62542688"]}
		},
		"no_cash": false,
		"stock_type": "NORMAL",
		"out_request_no": ""
	}`
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(want)); err != nil {
		t.Fatal(err)
	}
	if string(got) != compact.String() {
		t.Errorf("request body:\n got %s\nwant %s", got, compact.String())
	}
}

// The smallest valid form: no optional object is sent, and the booleans
// WeChat requires are sent even when false.
func TestMinimalFormJSON(t *testing.T) {
	f := Form{
		StockName: " 新客立减 ", AvailableBeginTime: "2026-12-01T10:00", AvailableEndTime: "2026-12-31T10:00",
		NoCash: "true", StockType: "NORMAL", MaxCoupons: "10", MaxAmount: "0.1", MaxCouponsPerUser: "1",
		CouponAmount: "0.01", TransactionMinimum: "0", AvailableMerchants: "1900000001",
		SecondDayAvailable: true, AvailableTimeAfterReceive: "60",
	}
	req, errs := f.Validate(testNow, time.UTC, "")
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	got, _ := json.Marshal(req)
	want := `{"stock_name":"新客立减","belong_merchant":"","available_begin_time":"2026-12-01T10:00:00+00:00",` +
		`"available_end_time":"2026-12-31T10:00:00+00:00","stock_use_rule":{"max_coupons":10,"max_amount":10,` +
		`"max_coupons_per_user":1,"natural_person_limit":false,"prevent_api_abuse":false},"coupon_use_rule":{` +
		`"coupon_available_time":{"second_day_available":true,"available_time_after_receive":60},` +
		`"fixed_normal_coupon":{"coupon_amount":1,"transaction_minimum":0},"available_merchants":["1900000001"]},` +
		`"no_cash":true,"stock_type":"NORMAL","out_request_no":""}`
	if string(got) != want {
		t.Errorf("request body:\n got %s\nwant %s", got, want)
	}
}

// Week days alone give fix_available_time the whole day, 0 to 23:59:59.
func TestWeekDaysAlone(t *testing.T) {
	f := validForm()
	f.AvailableWeekDay, f.BeginTime, f.EndTime = []string{"0", "6", "6"}, "", ""
	req, errs := f.Validate(testNow, shanghai, testMchID)
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	fix := req.CouponUseRule.CouponAvailableTime.FixAvailableTime
	if !slices.Equal(fix.AvailableWeekDay, []int64{0, 6}) || fix.BeginTime != 0 || fix.EndTime != 86399 {
		t.Errorf("fix_available_time = %+v", fix)
	}
}

func TestValidateOutRequestNo(t *testing.T) {
	cat := catalog(t)
	zh, en := cat.For(i18n.Chinese), cat.For(i18n.English)
	for _, tc := range []struct {
		in     string
		err    error
		zh, en string
	}{
		{in: "1900000001-20260615-000001"},
		{in: "aZ09|_*-"},
		{in: strings.Repeat("a", 128)},
		{in: "", err: ErrOutRequestNoEmpty, zh: "商户单据号不能为空。", en: "The request number cannot be empty."},
		{in: strings.Repeat("a", 129), err: ErrOutRequestNoTooLong,
			zh: "商户单据号最多 128 个字符。", en: "The request number may have at most 128 characters."},
		{in: "abc def", err: ErrOutRequestNoChars,
			zh: "商户单据号只能包含英文字母、数字和 | _ * -。", en: "The request number may only contain letters, digits and | _ * -."},
		{in: "单据1", err: ErrOutRequestNoChars,
			zh: "商户单据号只能包含英文字母、数字和 | _ * -。", en: "The request number may only contain letters, digits and | _ * -."},
		{in: "a/b", err: ErrOutRequestNoChars,
			zh: "商户单据号只能包含英文字母、数字和 | _ * -。", en: "The request number may only contain letters, digits and | _ * -."},
	} {
		err := ValidateOutRequestNo(tc.in)
		if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
			t.Errorf("ValidateOutRequestNo(%q) = %v, want %v", tc.in, err, tc.err)
			continue
		}
		if err == nil {
			continue
		}
		m, ok := MessageFor(err)
		if !ok {
			t.Fatalf("no message for %v", err)
		}
		if m.Text(zh) != tc.zh || m.Text(en) != tc.en {
			t.Errorf("ValidateOutRequestNo(%q): messages %q / %q, want %q / %q", tc.in, m.Text(zh), m.Text(en), tc.zh, tc.en)
		}
	}
}

// FormFromValues reads every field by its request field's leaf name.
func TestFormFromValues(t *testing.T) {
	v := url.Values{
		"stock_name": {"夏日满减券"}, "comment": {"六月活动"},
		"available_begin_time": {"2026-07-01T10:00"}, "available_end_time": {"2026-07-31T23:59"},
		"max_coupons": {"100"}, "max_amount": {"1000.00"}, "max_amount_by_day": {"200"}, "max_coupons_per_user": {"3"},
		"natural_person_limit": {"true"}, "prevent_api_abuse": {"on"},
		"description": {"d"}, "merchant_logo": {"l"}, "merchant_name": {"n"}, "background_color": {"COLOR010"},
		"coupon_image": {"i"}, "jump_target": {"MINI_PROGRAM"}, "mini_program_appid": {"wx1"}, "mini_program_path": {"/p"},
		"coupon_amount": {"10"}, "transaction_minimum": {"50"}, "goods_tag": {"g"}, "trade_type": {"MICROAPP", "", "CARD"},
		"combine_use": {"1"}, "available_items": {"a"}, "unavailable_items": {"u"}, "available_merchants": {"1900000001"},
		"no_cash": {"false"}, "stock_type": {"NORMAL"}, "available_week_day": {"1", "0"}, "begin_time": {"09:00"},
		"end_time": {"21:00"}, "second_day_available": {"true"}, "available_time_after_receive": {"60"},
		"name": {"精粹白金"}, "bin": {"62542688"},
	}
	want := Form{
		StockName: "夏日满减券", Comment: "六月活动", AvailableBeginTime: "2026-07-01T10:00", AvailableEndTime: "2026-07-31T23:59",
		NoCash: "false", StockType: "NORMAL",
		MaxCoupons: "100", MaxAmount: "1000.00", MaxAmountByDay: "200", MaxCouponsPerUser: "3",
		NaturalPersonLimit: true, PreventAPIAbuse: true,
		Description: "d", MerchantLogo: "l", MerchantName: "n", BackgroundColor: "COLOR010", CouponImage: "i",
		JumpTarget: "MINI_PROGRAM", MiniProgramAppID: "wx1", MiniProgramPath: "/p",
		CouponAmount: "10", TransactionMinimum: "50", GoodsTag: "g", TradeType: []string{"MICROAPP", "CARD"},
		CombineUse: true, AvailableItems: "a", UnavailableItems: "u", AvailableMerchants: "1900000001",
		AvailableWeekDay: []string{"1", "0"}, BeginTime: "09:00", EndTime: "21:00", SecondDayAvailable: true,
		AvailableTimeAfterReceive: "60", LimitCardName: "精粹白金", Bin: "62542688",
	}
	got := FormFromValues(v)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("FormFromValues:\n got %+v\nwant %+v", got, want)
	}
	// Every field of Form is filled from some posted name.
	rv := reflect.ValueOf(got)
	for i := range rv.NumField() {
		if rv.Field(i).IsZero() {
			t.Errorf("Form.%s is not read by FormFromValues", rv.Type().Field(i).Name)
		}
	}
	// Unticked checkboxes are simply absent.
	if f := FormFromValues(url.Values{"combine_use": {"false"}}); f.CombineUse || f.NaturalPersonLimit {
		t.Error("absent or false checkboxes read as ticked")
	}
	// Values are kept exactly as typed, spaces included.
	if f := FormFromValues(url.Values{"stock_name": {" a "}}); f.StockName != " a " {
		t.Errorf("stock_name = %q", f.StockName)
	}
}

func TestDefaultForm(t *testing.T) {
	f := DefaultForm(testNow, shanghai)
	if f.AvailableBeginTime != "2026-06-16T00:00" || f.AvailableEndTime != "2026-07-15T23:59" {
		t.Errorf("validity %s – %s", f.AvailableBeginTime, f.AvailableEndTime)
	}
	if f.StockType != "NORMAL" || f.NoCash != "false" || f.MaxCouponsPerUser != "1" || !f.PreventAPIAbuse {
		t.Errorf("defaults %+v", f)
	}
	// Late in the evening UTC is already tomorrow in Shanghai.
	late := time.Date(2026, 12, 31, 20, 0, 0, 0, time.UTC) // 2027-01-01 04:00 in Shanghai
	if f := DefaultForm(late, shanghai); f.AvailableBeginTime != "2027-01-02T00:00" {
		t.Errorf("begin %s", f.AvailableBeginTime)
	}
	// The defaults plus what only the operator can decide is a valid form.
	f.StockName, f.MaxCoupons, f.MaxAmount, f.CouponAmount, f.TransactionMinimum, f.AvailableMerchants =
		"新客立减", "100", "1000", "10", "100", "1900000001"
	if _, errs := f.Validate(testNow, shanghai, testMchID); len(errs) != 0 {
		t.Errorf("default form invalid: %v", errs)
	}
}

// Every message Validate can produce exists in both catalogues.
func TestMessagesInCatalogue(t *testing.T) {
	cat := catalog(t)
	for _, id := range []string{
		msgRequired, msgTooLong, msgStockNameChars, msgStockNameHan, msgStockNameLength, msgDatetime,
		msgBeginPast, msgBeginTooFar, msgEndNotAfterBegin, msgRangeTooLong, msgPositiveInteger,
		msgIntegerTooLarge, msgAmountSyntax, msgAmountPrecision, msgAmountNegative, msgAmountSign,
		msgAmountTooLarge, msgAmountZero, msgByDayOverTotal, msgEnum, msgMiniProgramNeeded,
		msgDescriptionNeeded, msgMerchantID, msgItemTooLong, msgBin, msgBinRequired, msgTimeOfDay,
		msgTimeOfDayOrder, msgOutRequestNoEmpty, msgOutRequestNoLong, msgOutRequestNoChars,
	} {
		for _, l := range i18n.Locales {
			if !cat.For(l).Has(id) {
				t.Errorf("%s: %s missing", l, id)
			}
		}
	}
	// Labels and help for every field, and every enumeration value.
	fields := []string{"belong_merchant"}
	fields = append(fields, allFieldNames...)
	for _, name := range fields {
		for _, l := range i18n.Locales {
			for _, id := range []string{"favor.field." + name, "favor.help." + name} {
				if !cat.For(l).Has(id) {
					t.Errorf("%s: %s missing", l, id)
				}
			}
		}
	}
	for prefix, values := range map[string][]string{
		"favor.color.": BackgroundColors, "favor.jump_target.": JumpTargets, "favor.trade_type.": TradeTypes,
		"favor.stock_type.": StockTypes, "favor.no_cash.": NoCashValues, "favor.weekday.": WeekDays,
	} {
		for _, v := range values {
			for _, l := range i18n.Locales {
				if !cat.For(l).Has(prefix + v) {
					t.Errorf("%s: %s missing", l, prefix+v)
				}
			}
		}
	}
}

// allFieldNames are the names the form posts, one per request field the
// operator fills (document 003 minus belong_merchant, out_request_no and
// ext_info).
var allFieldNames = []string{
	FieldStockName, FieldComment, FieldAvailableBeginTime, FieldAvailableEndTime, FieldMaxCoupons,
	FieldMaxAmount, FieldMaxAmountByDay, FieldMaxCouponsPerUser, FieldNaturalPersonLimit,
	FieldPreventAPIAbuse, FieldDescription, FieldMerchantLogo, FieldMerchantName, FieldBackgroundColor,
	FieldCouponImage, FieldJumpTarget, FieldMiniProgramAppID, FieldMiniProgramPath, FieldAvailableWeekDay,
	FieldBeginTime, FieldEndTime, FieldSecondDayAvailable, FieldAvailableTimeAfterReceive, FieldCouponAmount,
	FieldTransactionMinimum, FieldGoodsTag, FieldTradeType, FieldCombineUse, FieldAvailableItems,
	FieldUnavailableItems, FieldAvailableMerchants, FieldLimitCardName, FieldBin, FieldNoCash, FieldStockType,
}
