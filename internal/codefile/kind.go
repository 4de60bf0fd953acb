package codefile

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Kind is the kind of voucher stock a code file is uploaded for. It decides
// which codes are valid. The zero Kind is not a valid kind, so a caller that
// forgets to set it gets an error from Read instead of silently accepting
// codes under the wrong rules.
type Kind int

const (
	// ProductCoupon is a 商品券 stock: a code is 1–40 characters of
	// 0-9, A-Z, a-z, '_' and '-'. Read trims spaces and tabs around it.
	ProductCoupon Kind = iota + 1
	// MerchantStock is a 商家券 (busifavor) stock: a code is 1–32 characters
	// of 0-9, A-Z, a-z, space and - * \ / = |. Spaces are part of the
	// alphabet, so Read keeps them as they are; a code of only spaces is
	// empty.
	MerchantStock
)

// Reason is a stable, machine-readable ID for why a row is not a valid code.
// The caller translates it for the user; the values never change.
type Reason string

// Reasons reported in Row.Reason. The empty Reason means the row is valid.
const (
	// ReasonEmpty: the code cell is empty, only spaces, or missing from a
	// row that has fewer cells than the header.
	ReasonEmpty Reason = "empty"
	// ReasonTooLong: the code has more characters than Kind.MaxLen.
	ReasonTooLong Reason = "too_long"
	// ReasonBadChar: the code contains a character outside the kind's
	// alphabet; Problem.Char and Problem.Pos say which and where.
	ReasonBadChar Reason = "bad_char"
	// ReasonDuplicate: the same code already appeared in a valid row of the
	// file; Row.FirstLine is that row's line.
	ReasonDuplicate Reason = "duplicate"
	// ReasonUnterminatedQuote: a quoted cell is not closed before the end of
	// the line (quoted cells may not span lines in a code file).
	ReasonUnterminatedQuote Reason = "unterminated_quote"
	// ReasonBadQuote: a quote appears inside an unquoted cell, or text
	// follows the closing quote of a quoted cell (RFC 4180 forbids both).
	ReasonBadQuote Reason = "bad_quote"
	// ReasonLineTooLong: the line is longer than MaxLineBytes; it was
	// skipped without being parsed and Row.Code is empty.
	ReasonLineTooLong Reason = "line_too_long"
)

// Problem says why a code is invalid. The zero Problem means valid.
type Problem struct {
	Reason Reason
	// Char is the offending character for ReasonBadChar.
	Char rune
	// Pos is the 1-based character (not byte) position of Char in the code
	// for ReasonBadChar, so it matches what a person counts in Excel.
	Pos int
}

// kindSpec holds a kind's rules. Alphabets are ASCII, so a 256-entry table
// indexed by byte answers "allowed?" without decoding; any byte >= 0x80 is
// outside every alphabet.
type kindSpec struct {
	allowed [256]bool
	maxLen  int
	trim    bool // trim spaces and tabs around the code (alphabet has no space)
}

var specs = func() (s [3]kindSpec) {
	letters := func(t *[256]bool, extra string) {
		for c := '0'; c <= '9'; c++ {
			t[c] = true
		}
		for c := 'a'; c <= 'z'; c++ {
			t[c] = true
			t[c-'a'+'A'] = true
		}
		for i := 0; i < len(extra); i++ {
			t[extra[i]] = true
		}
	}
	letters(&s[ProductCoupon].allowed, "_-")
	s[ProductCoupon].maxLen = 40
	s[ProductCoupon].trim = true
	letters(&s[MerchantStock].allowed, ` -*\/=|`)
	s[MerchantStock].maxLen = 32
	return s
}()

// spec returns the rules of k; an undefined Kind gets an empty alphabet, so
// it rejects every code rather than accepting any.
func (k Kind) spec() *kindSpec {
	if k == ProductCoupon || k == MerchantStock {
		return &specs[k]
	}
	return &specs[0]
}

func (k Kind) valid() bool { return k == ProductCoupon || k == MerchantStock }

// String returns the Go name of the kind, for logs.
func (k Kind) String() string {
	switch k {
	case ProductCoupon:
		return "ProductCoupon"
	case MerchantStock:
		return "MerchantStock"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// MaxLen is the maximum length of a code of kind k, in characters.
func (k Kind) MaxLen() int { return k.spec().maxLen }

// Normalize returns code as Read would validate it: for ProductCoupon with
// surrounding spaces and tabs removed (they cannot be part of such a code and
// are a common copy-and-paste artefact); for MerchantStock unchanged, because
// space is part of its alphabet.
func (k Kind) Normalize(code string) string {
	if k.spec().trim {
		return strings.Trim(code, " \t")
	}
	return code
}

// Validate checks code, as given (see Normalize), against the rules of k.
// Checks run in this order: characters (the first offending character is
// reported), then emptiness, then length. Checking characters first means a
// stray comma or quote is named even in a long value; an all-space
// MerchantStock code is ReasonEmpty. Length is counted in characters, which
// equals bytes once every character is in the (ASCII) alphabet.
func (k Kind) Validate(code string) Problem {
	s := k.spec()
	empty := true
	for i := 0; i < len(code); i++ {
		c := code[i]
		if !s.allowed[c] {
			r, _ := utf8.DecodeRuneInString(code[i:])
			return Problem{Reason: ReasonBadChar, Char: r, Pos: utf8.RuneCountInString(code[:i]) + 1}
		}
		if c != ' ' {
			empty = false
		}
	}
	switch {
	case empty:
		return Problem{Reason: ReasonEmpty}
	case len(code) > s.maxLen:
		return Problem{Reason: ReasonTooLong}
	}
	return Problem{}
}

// isCode reports whether b is a valid code as it stands, without decoding
// or trimming: every byte in the alphabet, not all spaces, not too long.
// It is the reader's fast path; Validate is the general check.
func (s *kindSpec) isCode(b []byte) bool {
	if len(b) == 0 || len(b) > s.maxLen {
		return false
	}
	allSpace := true
	for _, c := range b {
		if !s.allowed[c] {
			return false
		}
		allSpace = allSpace && c == ' '
	}
	return !allSpace
}
