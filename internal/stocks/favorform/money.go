package favorform

import (
	"errors"
	"math"
	"strconv"
	"strings"
)

// ParseYuan's errors. Each has a catalogue message (see MessageFor).
var (
	ErrAmountEmpty     = errors.New("favorform: amount is empty")
	ErrAmountSyntax    = errors.New("favorform: amount is not a number of yuan such as 19.99")
	ErrAmountPrecision = errors.New("favorform: amount has more than two decimal places")
	ErrAmountNegative  = errors.New("favorform: amount is negative")
	ErrAmountSign      = errors.New("favorform: amount has a sign")
	ErrAmountRange     = errors.New("favorform: amount is too large")
)

// ParseYuan converts an amount in yuan, as typed, to fen, exactly: it reads
// the decimal digits, never a floating-point number, so "0.1" is 10,
// "19.99" is 1999 and "100000000.00" is 10000000000.
//
// Accepted: digits, optionally a point and one or two more digits, with
// surrounding white space ("7", "07", "0.5", " 19.99 "). Refused, each with
// its sentinel error: the empty string (ErrAmountEmpty); three or more
// decimals, even zeros as in "1.000" (ErrAmountPrecision); a leading "-"
// (ErrAmountNegative) or "+" (ErrAmountSign); exponents, thousands
// separators, currency signs, full-width digits, ".5", "5." and anything else
// (ErrAmountSyntax); more fen than an int64 holds (ErrAmountRange).
func ParseYuan(s string) (fen int64, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, ErrAmountEmpty
	}
	switch s[0] {
	case '-', '+':
		if _, err := parseUnsignedYuan(s[1:]); err != nil {
			return 0, err
		}
		if s[0] == '-' {
			return 0, ErrAmountNegative
		}
		return 0, ErrAmountSign
	}
	return parseUnsignedYuan(s)
}

func parseUnsignedYuan(s string) (int64, error) {
	whole, frac, hasPoint := strings.Cut(s, ".")
	if !allDigits(whole) || (hasPoint && !allDigits(frac)) {
		return 0, ErrAmountSyntax
	}
	if len(frac) > 2 {
		return 0, ErrAmountPrecision
	}
	var fen int64
	for _, c := range whole {
		d := int64(c - '0')
		if fen > (math.MaxInt64-d)/10 {
			return 0, ErrAmountRange
		}
		fen = fen*10 + d
	}
	cents := int64(0)
	for i := range 2 {
		cents *= 10
		if i < len(frac) {
			cents += int64(frac[i] - '0')
		}
	}
	if fen > (math.MaxInt64-cents)/100 {
		return 0, ErrAmountRange
	}
	return fen*100 + cents, nil
}

// allDigits reports whether s is one or more ASCII digits.
func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// FormatFen renders fen as yuan with two decimals ("1999" → "19.99"), the
// inverse of ParseYuan, for showing amounts and refilling a form.
func FormatFen(fen int64) string {
	sign := ""
	u := uint64(fen)
	if fen < 0 {
		sign = "-"
		u = uint64(-(fen + 1)) + 1 // no overflow for math.MinInt64
	}
	cents := u % 100
	s := strconv.FormatUint(u/100, 10) + "."
	if cents < 10 {
		s += "0"
	}
	return sign + s + strconv.FormatUint(cents, 10)
}
