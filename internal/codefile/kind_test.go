package codefile

import (
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		kind Kind
		code string
		want Problem
	}{
		{ProductCoupon, "A", Problem{}},
		{ProductCoupon, "azAZ09_-", Problem{}},
		{ProductCoupon, strings.Repeat("x", 40), Problem{}},
		{ProductCoupon, strings.Repeat("x", 41), Problem{Reason: ReasonTooLong}},
		{ProductCoupon, "", Problem{Reason: ReasonEmpty}},
		{ProductCoupon, "ab*c", Problem{Reason: ReasonBadChar, Char: '*', Pos: 3}},
		{ProductCoupon, "a b", Problem{Reason: ReasonBadChar, Char: ' ', Pos: 2}},
		{ProductCoupon, " ", Problem{Reason: ReasonBadChar, Char: ' ', Pos: 1}}, // Validate does not trim
		{ProductCoupon, "券码1", Problem{Reason: ReasonBadChar, Char: '券', Pos: 1}},
		{ProductCoupon, "ab中cd", Problem{Reason: ReasonBadChar, Char: '中', Pos: 3}},
		{ProductCoupon, "ab,cd", Problem{Reason: ReasonBadChar, Char: ',', Pos: 3}},
		{ProductCoupon, "ａ", Problem{Reason: ReasonBadChar, Char: 'ａ', Pos: 1}}, // full-width a
		// Characters are checked before length: the bad character is named.
		{ProductCoupon, strings.Repeat("x", 50) + "#", Problem{Reason: ReasonBadChar, Char: '#', Pos: 51}},
		{MerchantStock, `azAZ09 -*\/=|`, Problem{}},
		{MerchantStock, " a ", Problem{}},
		{MerchantStock, strings.Repeat("x", 32), Problem{}},
		{MerchantStock, strings.Repeat("x", 33), Problem{Reason: ReasonTooLong}},
		{MerchantStock, strings.Repeat(" ", 33), Problem{Reason: ReasonEmpty}},
		{MerchantStock, "   ", Problem{Reason: ReasonEmpty}},
		{MerchantStock, "", Problem{Reason: ReasonEmpty}},
		{MerchantStock, "a_b", Problem{Reason: ReasonBadChar, Char: '_', Pos: 2}},
		{MerchantStock, "a\tb", Problem{Reason: ReasonBadChar, Char: '\t', Pos: 2}},
		{MerchantStock, "é", Problem{Reason: ReasonBadChar, Char: 'é', Pos: 1}},
		{MerchantStock, "x\xff", Problem{Reason: ReasonBadChar, Char: '\uFFFD', Pos: 2}},
		{Kind(0), "A", Problem{Reason: ReasonBadChar, Char: 'A', Pos: 1}},
	}
	for _, tt := range tests {
		if got := tt.kind.Validate(tt.code); got != tt.want {
			t.Errorf("%v.Validate(%q) = %+v, want %+v", tt.kind, tt.code, got, tt.want)
		}
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		kind       Kind
		code, want string
	}{
		{ProductCoupon, " \tA1 \t", "A1"},
		{ProductCoupon, "A 1", "A 1"},
		{MerchantStock, " A1\t", " A1\t"},
	}
	for _, tt := range tests {
		if got := tt.kind.Normalize(tt.code); got != tt.want {
			t.Errorf("%v.Normalize(%q) = %q, want %q", tt.kind, tt.code, got, tt.want)
		}
	}
}

func TestKindMisc(t *testing.T) {
	if ProductCoupon.MaxLen() != 40 || MerchantStock.MaxLen() != 32 {
		t.Errorf("MaxLen = %d, %d", ProductCoupon.MaxLen(), MerchantStock.MaxLen())
	}
	for k, want := range map[Kind]string{ProductCoupon: "ProductCoupon", MerchantStock: "MerchantStock", 7: "Kind(7)"} {
		if got := k.String(); got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
	}
}
