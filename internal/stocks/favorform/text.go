package favorform

import (
	"net/url"

	"voucherconsole/internal/textcheck"
)

const msgBadText = "input.bad_text"

// multiLine are the fields the form shows as text areas (one entry a line):
// line breaks are text there, and nowhere else.
var multiLine = map[string]bool{
	FieldAvailableMerchants: true, FieldGoodsTag: true, FieldAvailableItems: true,
	FieldUnavailableItems: true, FieldBin: true, FieldDescription: true,
}

// TextFields are every field of the form: CheckText checks each, so the
// request filter leaves them to this form (it shows the error by the field).
var TextFields = []string{
	FieldStockName, FieldComment, FieldAvailableBeginTime, FieldAvailableEndTime, FieldMaxCoupons, FieldMaxAmount,
	FieldMaxAmountByDay, FieldMaxCouponsPerUser, FieldNaturalPersonLimit, FieldPreventAPIAbuse, FieldDescription,
	FieldMerchantLogo, FieldMerchantName, FieldBackgroundColor, FieldCouponImage, FieldJumpTarget,
	FieldMiniProgramAppID, FieldMiniProgramPath, FieldAvailableWeekDay, FieldBeginTime, FieldEndTime,
	FieldSecondDayAvailable, FieldAvailableTimeAfterReceive, FieldCouponAmount, FieldTransactionMinimum,
	FieldGoodsTag, FieldTradeType, FieldCombineUse, FieldAvailableItems, FieldUnavailableItems,
	FieldAvailableMerchants, FieldLimitCardName, FieldBin, FieldNoCash, FieldStockType,
}

// CheckText applies the one rule for entered text (textcheck) to every
// field of the form and reports each that breaks it. It replaces each bad
// value in v by its cleaned form, so the re-rendered form keeps what was
// typed without echoing the bad bytes. It runs before Validate: a value that
// is not text has no other problem worth naming.
func CheckText(v url.Values) Errors {
	errs := Errors{}
	for _, field := range TextFields {
		for i, s := range v[field] {
			check := textcheck.Line
			if multiLine[field] {
				check = textcheck.Text
			}
			if check(s, 0) != nil {
				errs[field] = Message{ID: msgBadText}
				v[field][i] = textcheck.Clean(s)
			}
		}
	}
	return errs
}
