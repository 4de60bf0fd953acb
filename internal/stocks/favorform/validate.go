package favorform

import (
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"voucherconsole/internal/i18n"
	"voucherconsole/internal/wxpay"
)

// Message is a catalogue message: its ID and the arguments for its fmt
// verbs.
type Message struct {
	ID   string
	Args []any
}

// Text renders m in l's language.
func (m Message) Text(l i18n.Localizer) string { return l.T(m.ID, m.Args...) }

// Errors maps a form field name to its problem. Validate reports every field
// that has one (one message per field, the first rule it breaks).
type Errors map[string]Message

// Localize renders every message in l's language, keyed by field name (a
// templates.FieldErrors, which is a map[string]string).
func (e Errors) Localize(l i18n.Localizer) map[string]string {
	out := make(map[string]string, len(e))
	for field, m := range e {
		out[field] = m.Text(l)
	}
	return out
}

// Catalogue IDs of the validation messages (internal/i18n/locales/*/favor.json).
const (
	msgRequired          = "favor.err.required"
	msgTooLong           = "favor.err.too_long"
	msgStockNameChars    = "favor.err.stock_name_chars"
	msgStockNameHan      = "favor.err.stock_name_han"
	msgStockNameLength   = "favor.err.stock_name_length"
	msgDatetime          = "favor.err.datetime"
	msgBeginPast         = "favor.err.begin_past"
	msgBeginTooFar       = "favor.err.begin_too_far"
	msgEndNotAfterBegin  = "favor.err.end_not_after_begin"
	msgRangeTooLong      = "favor.err.range_too_long"
	msgPositiveInteger   = "favor.err.positive_integer"
	msgIntegerTooLarge   = "favor.err.integer_too_large"
	msgAmountSyntax      = "favor.err.amount_syntax"
	msgAmountPrecision   = "favor.err.amount_precision"
	msgAmountNegative    = "favor.err.amount_negative"
	msgAmountSign        = "favor.err.amount_sign"
	msgAmountTooLarge    = "favor.err.amount_too_large"
	msgAmountZero        = "favor.err.amount_zero"
	msgByDayOverTotal    = "favor.err.by_day_over_total"
	msgEnum              = "favor.err.enum"
	msgMiniProgramNeeded = "favor.err.mini_program_required"
	msgDescriptionNeeded = "favor.err.description_required"
	msgMerchantID        = "favor.err.merchant_id"
	msgItemTooLong       = "favor.err.item_too_long"
	msgBin               = "favor.err.bin"
	msgBinRequired       = "favor.err.bin_required"
	msgTimeOfDay         = "favor.err.time_of_day"
	msgTimeOfDayOrder    = "favor.err.time_of_day_order"
	msgOutRequestNoEmpty = "favor.err.out_request_no_empty"
	msgOutRequestNoLong  = "favor.err.out_request_no_too_long"
	msgOutRequestNoChars = "favor.err.out_request_no_chars"
	msgBudgetMismatch    = "favor.err.budget_mismatch"
	msgPerUserOver       = "favor.err.per_user_over"
)

// MaxCouponsPerUser is the most coupons per user WeChat Pay accepts for a
// favor stock; document 003 does not print it, WeChat Pay's replies do.
const MaxCouponsPerUser = 60

// BudgetFor is the budget WeChat Pay requires of a favor stock: face value
// times the number of coupons (PARAM_ERROR "批次预算等于批次面额乘以发券数"),
// in fen; ok is false when the product overflows.
func BudgetFor(couponAmountFen, maxCoupons int64) (fen int64, ok bool) {
	if couponAmountFen <= 0 || maxCoupons <= 0 || couponAmountFen > math.MaxInt64/maxCoupons {
		return 0, false
	}
	return couponAmountFen * maxCoupons, true
}

// Document 003's limits. Lengths are string(N) in the document and are
// counted here in characters (runes), not bytes: the document speaks of
// characters ("最多128个UTF8字符", "最多9个中文汉字"), and a limit in bytes
// would allow a third of the Chinese text an operator expects.
const (
	maxStockNameHan   = 9  // 批次名称最多9个中文汉字
	maxStockNameRunes = 20 // 批次名称最多20个字母; stock_name string(20)
	maxComment        = 60
	maxDescription    = 1000
	maxMerchantLogo   = 128
	maxMerchantName   = 12
	maxCouponImage    = 128
	maxMiniProgram    = 128 // mini_program_appid and mini_program_path
	maxItem           = 128 // goods_tag, available_items, unavailable_items: array[string(128)]
	maxMerchantID     = 20  // available_merchants: array[string(20)]
	maxOutRequestNo   = 128
	// maxLimitCardName: document 003 gives no limit for limit_card.name; 32
	// is what the console's sandbox enforces, so the form refuses what the
	// sandbox would.
	maxLimitCardName = 32
	maxBin           = 20

	maxLeadTime = 365 * 24 * time.Hour // 不能创建365天后开始的批次
	maxSpan     = 90 * 24 * time.Hour  // 批次可用时间范围最长为90天

	endOfDay = 24*60*60 - 1 // fix_available_time.end_time when left empty: 23:59:59
)

// forbiddenNameRunes are the characters document 003 bans from a stock name
// (_ , ; |), plus their full-width forms (＿ ， ； ｜), which a Chinese input
// method types for the same keys and which would defeat the rule's purpose.
const forbiddenNameRunes = "_,;|＿，；｜"

// checkStockName applies document 003's name rules to a trimmed name.
//
// "最多9个中文汉字 / 最多20个字母" is read as two limits that must both hold:
// at most 9 Chinese characters (Han ideographs, unicode.Han; Chinese
// punctuation is not a 汉字) and at most 20 characters in all, where a
// letter, digit, space or punctuation mark counts 1 like an ideograph. So
// "微信支付代金券批次" (9 Han) and twenty letters pass, ten Han or nine Han and
// twelve letters do not.
func checkStockName(name string) *Message {
	if name == "" {
		return &Message{ID: msgRequired}
	}
	if i := strings.IndexAny(name, forbiddenNameRunes); i >= 0 {
		r, _ := utf8.DecodeRuneInString(name[i:])
		return &Message{ID: msgStockNameChars, Args: []any{string(r)}}
	}
	han := 0
	for _, r := range name {
		if unicode.Is(unicode.Han, r) {
			han++
		}
	}
	if han > maxStockNameHan {
		return &Message{ID: msgStockNameHan, Args: []any{han}}
	}
	if n := utf8.RuneCountInString(name); n > maxStockNameRunes {
		return &Message{ID: msgStockNameLength, Args: []any{n}}
	}
	return nil
}

// ValidateOutRequestNo's errors.
var (
	ErrOutRequestNoEmpty   = errors.New("favorform: out_request_no is empty")
	ErrOutRequestNoTooLong = errors.New("favorform: out_request_no is longer than 128 characters")
	ErrOutRequestNoChars   = errors.New("favorform: out_request_no may only hold letters, digits, |, _, * and -")
)

// ValidateOutRequestNo checks a merchant request number (商户单据号) against
// document 003: at most 128 characters of ASCII letters, digits, |, _, *
// and -. The console generates the number and checks it with this before
// recording it.
func ValidateOutRequestNo(s string) error {
	if s == "" {
		return ErrOutRequestNoEmpty
	}
	if utf8.RuneCountInString(s) > maxOutRequestNo {
		return ErrOutRequestNoTooLong
	}
	for _, r := range s {
		if !isASCIIAlnum(r) && !strings.ContainsRune("|_*-", r) {
			return ErrOutRequestNoChars
		}
	}
	return nil
}

// MessageFor returns the catalogue message for an error of ParseYuan or
// ValidateOutRequestNo, and false for any other error.
func MessageFor(err error) (Message, bool) {
	switch {
	case errors.Is(err, ErrAmountEmpty):
		return Message{ID: msgRequired}, true
	case errors.Is(err, ErrAmountSyntax):
		return Message{ID: msgAmountSyntax}, true
	case errors.Is(err, ErrAmountPrecision):
		return Message{ID: msgAmountPrecision}, true
	case errors.Is(err, ErrAmountNegative):
		return Message{ID: msgAmountNegative}, true
	case errors.Is(err, ErrAmountSign):
		return Message{ID: msgAmountSign}, true
	case errors.Is(err, ErrAmountRange):
		return Message{ID: msgAmountTooLarge}, true
	case errors.Is(err, ErrOutRequestNoEmpty):
		return Message{ID: msgOutRequestNoEmpty}, true
	case errors.Is(err, ErrOutRequestNoTooLong):
		return Message{ID: msgOutRequestNoLong, Args: []any{maxOutRequestNo}}, true
	case errors.Is(err, ErrOutRequestNoChars):
		return Message{ID: msgOutRequestNoChars}, true
	}
	return Message{}, false
}

func isASCIIAlnum(r rune) bool {
	return r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
}

// rfc3339Offset renders a time as document 003 asks,
// yyyy-MM-DDTHH:mm:ss+TIMEZONE, always with a numeric offset (never "Z").
const rfc3339Offset = "2006-01-02T15:04:05-07:00"

// shownTime is how a time appears inside a message.
const shownTime = "2006-01-02 15:04"

var datetimeLayouts = []string{
	DatetimeLocalLayout,
	"2006-01-02T15:04:05",
	"2006-01-02 15:04",
	"2006-01-02 15:04:05",
}

// parseLocal reads a datetime-local value (with or without seconds) as a
// wall-clock time in loc.
func parseLocal(s string, loc *time.Location) (time.Time, bool) {
	for _, layout := range datetimeLayouts {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t.Truncate(time.Second), true
		}
	}
	return time.Time{}, false
}

// parseTimeOfDay reads "HH:MM" or "HH:MM:SS" (00:00 to 23:59:59) as seconds
// since midnight.
func parseTimeOfDay(s string) (int64, bool) {
	for _, layout := range []string{"15:04", "15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return int64(t.Hour()*3600 + t.Minute()*60 + t.Second()), true
		}
	}
	return 0, false
}

// splitList reads a list field: entries one per line or separated by
// commas (ASCII or full-width), trimmed, empty ones and repeats dropped,
// order kept.
func splitList(s string) []string {
	fields := strings.FieldsFunc(s, func(r rune) bool {
		return r == '\n' || r == '\r' || r == ',' || r == '，'
	})
	var out []string
	for _, f := range fields {
		if f = strings.TrimSpace(f); f != "" && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// validator collects the first problem of each field.
type validator struct{ errs Errors }

func (v *validator) fail(field, id string, args ...any) {
	if _, ok := v.errs[field]; !ok {
		v.errs[field] = Message{ID: id, Args: args}
	}
}

func (v *validator) failMsg(field string, m *Message) {
	if m != nil {
		v.fail(field, m.ID, m.Args...)
	}
}

// text trims a free-text value and checks its length in characters.
func (v *validator) text(field, s string, max int, required bool) string {
	s = strings.TrimSpace(strings.ReplaceAll(s, "\r\n", "\n"))
	switch n := utf8.RuneCountInString(s); {
	case s == "" && required:
		v.fail(field, msgRequired)
	case n > max:
		v.fail(field, msgTooLong, max, n)
	}
	return s
}

// count reads a positive whole number (a count or a number of minutes).
func (v *validator) count(field, s string, required bool) (int64, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		if required {
			v.fail(field, msgRequired)
		}
		return 0, false
	}
	if !allDigits(s) {
		v.fail(field, msgPositiveInteger)
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		v.fail(field, msgIntegerTooLarge)
		return 0, false
	}
	if n <= 0 {
		v.fail(field, msgPositiveInteger)
		return 0, false
	}
	return n, true
}

// amount reads yuan as fen; positive unless zero is allowed.
func (v *validator) amount(field, s string, required, allowZero bool) (int64, bool) {
	fen, err := ParseYuan(s)
	if errors.Is(err, ErrAmountEmpty) && !required {
		return 0, false
	}
	if err != nil {
		m, _ := MessageFor(err)
		v.fail(field, m.ID, m.Args...)
		return 0, false
	}
	if fen == 0 && !allowZero {
		v.fail(field, msgAmountZero)
		return 0, false
	}
	return fen, true
}

// enum checks an optional or required single choice.
func (v *validator) enum(field, s string, values []string, required bool) string {
	s = strings.TrimSpace(s)
	switch {
	case s == "" && required:
		v.fail(field, msgRequired)
	case s != "" && !slices.Contains(values, s):
		v.fail(field, msgEnum, s)
	}
	return s
}

// items checks a list of strings of at most max characters each.
func (v *validator) items(field, s string, max int) []string {
	list := splitList(s)
	for _, it := range list {
		if n := utf8.RuneCountInString(it); n > max {
			v.fail(field, msgItemTooLong, max, it, n)
			break
		}
	}
	return list
}

// digitsList checks a list of 1–max digit strings (merchant IDs, card BINs).
func (v *validator) digitsList(field, s string, max int, msgID string) []string {
	list := splitList(s)
	for _, it := range list {
		if !allDigits(it) || len(it) > max {
			v.fail(field, msgID, it)
			break
		}
	}
	return list
}

// Validate checks every rule of document 003 and builds the request body. It
// reports every field with a problem; when there is any, the request is the
// zero value, and when there is none, Errors is nil. The request's OutRequestNo is left empty for the console to
// fill; BelongMerchant is mchID; amounts are in fen; the validity period,
// entered as datetime-local values in loc, is sent as RFC 3339 with the
// offset of loc ("2026-12-01T10:00:00+08:00").
//
// Time rules, with now in loc: the start may not be earlier than the current
// minute (now truncated to the minute — a datetime-local field has no
// seconds, so the minute the operator is in is not "the past"; WeChat Pay
// may still refuse a start that has passed by the time the request arrives);
// the start is at most 365 days after now; the end is after the start, and
// at most 90 days after it (exactly 90 days is allowed).
func (f Form) Validate(now time.Time, loc *time.Location, mchID string) (wxpay.CreateFavorStockRequest, Errors) {
	if loc == nil {
		loc = now.Location()
	}
	now = now.In(loc)
	v := &validator{errs: Errors{}}
	var req wxpay.CreateFavorStockRequest

	// Basic information.
	req.StockName = strings.TrimSpace(f.StockName)
	v.failMsg(FieldStockName, checkStockName(req.StockName))
	req.Comment = v.text(FieldComment, f.Comment, maxComment, false)
	req.BelongMerchant = mchID
	v.validity(&req, f, now, loc)
	if noCash := v.enum(FieldNoCash, f.NoCash, NoCashValues, true); noCash == "true" {
		req.NoCash = true
	}
	req.StockType = wxpay.FavorStockType(v.enum(FieldStockType, f.StockType, StockTypes, true))

	// stock_use_rule (发放规则).
	rule := &req.StockUseRule
	var countOK bool
	rule.MaxCoupons, countOK = v.count(FieldMaxCoupons, f.MaxCoupons, true)
	total, totalOK := v.amount(FieldMaxAmount, f.MaxAmount, true, false)
	rule.MaxAmount = total
	if byDay, ok := v.amount(FieldMaxAmountByDay, f.MaxAmountByDay, false, false); ok {
		rule.MaxAmountByDay = byDay
		if totalOK && byDay > total {
			v.fail(FieldMaxAmountByDay, msgByDayOverTotal, FormatFen(total))
		}
	}
	var perUserOK bool
	rule.MaxCouponsPerUser, perUserOK = v.count(FieldMaxCouponsPerUser, f.MaxCouponsPerUser, true)
	if perUserOK && rule.MaxCouponsPerUser > MaxCouponsPerUser {
		v.fail(FieldMaxCouponsPerUser, msgPerUserOver, MaxCouponsPerUser)
	}
	rule.NaturalPersonLimit = f.NaturalPersonLimit
	rule.PreventAPIAbuse = f.PreventAPIAbuse

	req.PatternInfo = v.patternInfo(f)
	v.couponUseRule(&req.CouponUseRule, f)

	// WeChat Pay refuses a budget other than face value × count, though
	// document 003 does not say so; the form shows the product as the
	// operator types and refuses any other budget here, next to the budget.
	if fn := req.CouponUseRule.FixedNormalCoupon; totalOK && countOK && fn != nil && fn.CouponAmount > 0 {
		if want, ok := BudgetFor(fn.CouponAmount, rule.MaxCoupons); !ok || want != total {
			v.fail(FieldMaxAmount, msgBudgetMismatch, FormatFen(fn.CouponAmount), rule.MaxCoupons, FormatFen(want))
		}
	}

	if len(v.errs) > 0 {
		return wxpay.CreateFavorStockRequest{}, v.errs
	}
	return req, nil
}

// validity checks available_begin_time and available_end_time.
func (v *validator) validity(req *wxpay.CreateFavorStockRequest, f Form, now time.Time, loc *time.Location) {
	parse := func(field, s string) (time.Time, bool) {
		s = strings.TrimSpace(s)
		if s == "" {
			v.fail(field, msgRequired)
			return time.Time{}, false
		}
		t, ok := parseLocal(s, loc)
		if !ok {
			v.fail(field, msgDatetime)
		}
		return t, ok
	}
	begin, beginOK := parse(FieldAvailableBeginTime, f.AvailableBeginTime)
	end, endOK := parse(FieldAvailableEndTime, f.AvailableEndTime)
	if beginOK {
		y, m, d := now.Date()
		thisMinute := time.Date(y, m, d, now.Hour(), now.Minute(), 0, 0, loc)
		switch latest := now.Add(maxLeadTime); {
		case begin.Before(thisMinute):
			v.fail(FieldAvailableBeginTime, msgBeginPast, thisMinute.Format(shownTime))
		case begin.After(latest):
			v.fail(FieldAvailableBeginTime, msgBeginTooFar, latest.Format(shownTime))
		}
		req.AvailableBeginTime = begin.Format(rfc3339Offset)
	}
	if beginOK && endOK {
		switch latest := begin.Add(maxSpan); {
		case !end.After(begin):
			v.fail(FieldAvailableEndTime, msgEndNotAfterBegin)
		case end.After(latest):
			v.fail(FieldAvailableEndTime, msgRangeTooLong, latest.Format(shownTime))
		}
	}
	if endOK {
		req.AvailableEndTime = end.Format(rfc3339Offset)
	}
}

// patternInfo checks pattern_info (详情页), which is optional as a whole:
// nil when none of its fields is filled; when any is, description (its one
// required field) must be.
func (v *validator) patternInfo(f Form) *wxpay.FavorPatternInfo {
	filled := false
	for _, s := range []string{f.Description, f.MerchantLogo, f.MerchantName, f.BackgroundColor,
		f.CouponImage, f.JumpTarget, f.MiniProgramAppID, f.MiniProgramPath} {
		if strings.TrimSpace(s) != "" {
			filled = true
		}
	}
	if !filled {
		return nil
	}
	p := &wxpay.FavorPatternInfo{
		Description:     v.text(FieldDescription, f.Description, maxDescription, false),
		MerchantLogo:    v.text(FieldMerchantLogo, f.MerchantLogo, maxMerchantLogo, false),
		MerchantName:    v.text(FieldMerchantName, f.MerchantName, maxMerchantName, false),
		BackgroundColor: v.enum(FieldBackgroundColor, f.BackgroundColor, BackgroundColors, false),
		CouponImage:     v.text(FieldCouponImage, f.CouponImage, maxCouponImage, false),
		JumpTarget:      v.enum(FieldJumpTarget, f.JumpTarget, JumpTargets, false),
	}
	if p.Description == "" {
		v.fail(FieldDescription, msgDescriptionNeeded)
	}
	// 跳转至小程序时必填.
	mini := p.JumpTarget == JumpTargetMiniProgram
	p.MiniProgramAppID = v.text(FieldMiniProgramAppID, f.MiniProgramAppID, maxMiniProgram, false)
	p.MiniProgramPath = v.text(FieldMiniProgramPath, f.MiniProgramPath, maxMiniProgram, false)
	if mini && p.MiniProgramAppID == "" {
		v.fail(FieldMiniProgramAppID, msgMiniProgramNeeded)
	}
	if mini && p.MiniProgramPath == "" {
		v.fail(FieldMiniProgramPath, msgMiniProgramNeeded)
	}
	return p
}

// couponUseRule checks coupon_use_rule (核销规则).
func (v *validator) couponUseRule(r *wxpay.FavorCouponUseRule, f Form) {
	r.CouponAvailableTime = v.couponAvailableTime(f)

	// fixed_normal_coupon is required with stock_type NORMAL, the only type.
	// The face value is more than 0; the order minimum may be 0 (no
	// threshold). Document 003 states no relation between the two (its own
	// example has them equal), so none is enforced.
	fn := &wxpay.FixedNormalCoupon{}
	fn.CouponAmount, _ = v.amount(FieldCouponAmount, f.CouponAmount, true, false)
	fn.TransactionMinimum, _ = v.amount(FieldTransactionMinimum, f.TransactionMinimum, true, true)
	r.FixedNormalCoupon = fn

	r.GoodsTag = v.items(FieldGoodsTag, f.GoodsTag, maxItem)
	for _, t := range f.TradeType {
		if !slices.Contains(TradeTypes, t) {
			v.fail(FieldTradeType, msgEnum, t)
			break
		}
		if !slices.Contains(r.TradeType, t) {
			r.TradeType = append(r.TradeType, t)
		}
	}
	r.CombineUse = f.CombineUse
	r.AvailableItems = v.items(FieldAvailableItems, f.AvailableItems, maxItem)
	r.UnavailableItems = v.items(FieldUnavailableItems, f.UnavailableItems, maxItem)
	r.AvailableMerchants = v.digitsList(FieldAvailableMerchants, f.AvailableMerchants, maxMerchantID, msgMerchantID)
	if len(r.AvailableMerchants) == 0 {
		v.fail(FieldAvailableMerchants, msgRequired)
	}

	// limit_card: optional; a card name without a BIN would restrict
	// nothing, so a name requires at least one BIN.
	name := v.text(FieldLimitCardName, f.LimitCardName, maxLimitCardName, false)
	bins := v.digitsList(FieldBin, f.Bin, maxBin, msgBin)
	if name != "" && len(bins) == 0 {
		v.fail(FieldBin, msgBinRequired)
	}
	if name != "" || len(bins) > 0 {
		r.LimitCard = &wxpay.FavorLimitCard{Name: name, Bin: bins}
	}
}

// couponAvailableTime checks coupon_available_time (券生效时间), optional as
// a whole. fix_available_time is sent when a week day or a time of day is
// given: week days 0 (Sunday) to 6, begin defaulting to 00:00 and end to
// 23:59:59, end after begin.
func (v *validator) couponAvailableTime(f Form) *wxpay.FavorCouponAvailableTime {
	var fix *wxpay.FavorFixAvailableTime
	beginText, endText := strings.TrimSpace(f.BeginTime), strings.TrimSpace(f.EndTime)
	if len(f.AvailableWeekDay) > 0 || beginText != "" || endText != "" {
		fix = &wxpay.FavorFixAvailableTime{EndTime: endOfDay}
		for _, d := range f.AvailableWeekDay {
			if !slices.Contains(WeekDays, d) {
				v.fail(FieldAvailableWeekDay, msgEnum, d)
				break
			}
			n, _ := strconv.ParseInt(d, 10, 64)
			if !slices.Contains(fix.AvailableWeekDay, n) {
				fix.AvailableWeekDay = append(fix.AvailableWeekDay, n)
			}
		}
		slices.Sort(fix.AvailableWeekDay)
		beginOK, endOK := true, true
		if beginText != "" {
			if fix.BeginTime, beginOK = parseTimeOfDay(beginText); !beginOK {
				v.fail(FieldBeginTime, msgTimeOfDay)
			}
		}
		if endText != "" {
			if fix.EndTime, endOK = parseTimeOfDay(endText); !endOK {
				v.fail(FieldEndTime, msgTimeOfDay)
			}
		}
		if beginOK && endOK && fix.EndTime <= fix.BeginTime {
			v.fail(FieldEndTime, msgTimeOfDayOrder)
		}
	}
	after, _ := v.count(FieldAvailableTimeAfterReceive, f.AvailableTimeAfterReceive, false)
	if fix == nil && !f.SecondDayAvailable && after == 0 {
		return nil
	}
	return &wxpay.FavorCouponAvailableTime{
		FixAvailableTime:          fix,
		SecondDayAvailable:        f.SecondDayAvailable,
		AvailableTimeAfterReceive: after,
	}
}
