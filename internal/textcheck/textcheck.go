// Package textcheck is the one rule for text a person enters: valid UTF-8,
// no NUL or other control characters, no bidirectional overrides, and a
// bound on its length. Every form field and search box is checked with it,
// so nothing malformed is stored, logged or sent to WeChat Pay (PostgreSQL
// refuses NUL in text, and a stray control character breaks exports).
package textcheck

import (
	"errors"
	"unicode/utf8"
)

// Sentinel errors; handlers map them to a field error in the user's
// language.
var (
	ErrInvalidUTF8 = errors.New("text is not valid UTF-8")
	ErrControl     = errors.New("text contains a control character")
	ErrTooLong     = errors.New("text is too long")
)

// Line checks one line of text: no control character at all (tab and line
// breaks included). max bounds its length in characters; 0 leaves it
// unbounded.
func Line(s string, max int) error { return check(s, max, false) }

// Text checks text that may span lines (a text area): tab, CR and LF are
// allowed, every other control character is not.
func Text(s string, max int) error { return check(s, max, true) }

func check(s string, max int, multiline bool) error {
	if !utf8.ValidString(s) {
		return ErrInvalidUTF8
	}
	n := 0
	for _, r := range s {
		n++
		if Forbidden(r, multiline) {
			return ErrControl
		}
	}
	if max > 0 && n > max {
		return ErrTooLong
	}
	return nil
}

// Forbidden reports whether r may not appear in entered text: C0 controls
// (except tab, CR and LF in multi-line text), DEL, C1 controls, and the
// bidirectional embedding, override and isolate characters, which make
// text read differently from what it is.
func Forbidden(r rune, multiline bool) bool {
	switch {
	case r == '\t' || r == '\n' || r == '\r':
		return !multiline
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// Clean returns s as valid UTF-8 without NUL or other forbidden characters
// (line breaks kept), for text the console records but did not let a person
// enter through a form: a user agent, a header. Invalid bytes become U+FFFD.
func Clean(s string) string {
	ok := utf8.ValidString(s)
	if ok {
		for _, r := range s {
			if Forbidden(r, true) {
				ok = false
				break
			}
		}
	}
	if ok {
		return s
	}
	out := make([]rune, 0, len(s))
	for _, r := range s { // ranging over invalid bytes yields U+FFFD
		if !Forbidden(r, true) {
			out = append(out, r)
		}
	}
	return string(out)
}

// Clip cuts s to at most max bytes on a character boundary.
func Clip(s string, max int) string {
	if len(s) <= max {
		return s
	}
	n := max
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
