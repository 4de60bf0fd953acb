package textcheck

import (
	"errors"
	"strings"
	"testing"
)

func TestLineAndText(t *testing.T) {
	for _, tc := range []struct {
		name      string
		in        string
		max       int
		line, txt error
	}{
		{"plain", "春季满减 spring", 20, nil, nil},
		{"empty", "", 5, nil, nil},
		{"html is text", `<script>alert(1)</script>`, 0, nil, nil},
		{"invalid utf-8", "ab\xffcd", 0, ErrInvalidUTF8, ErrInvalidUTF8},
		{"truncated rune", "券\xe5\x88", 0, ErrInvalidUTF8, ErrInvalidUTF8},
		{"nul", "a\x00b", 0, ErrControl, ErrControl},
		{"bell", "a\x07", 0, ErrControl, ErrControl},
		{"escape", "\x1b[31m", 0, ErrControl, ErrControl},
		{"del", "a\x7f", 0, ErrControl, ErrControl},
		{"c1", "a\u0085b", 0, ErrControl, ErrControl},
		{"bidi override", "abc\u202edcba", 0, ErrControl, ErrControl},
		{"bidi isolate", "\u2066x", 0, ErrControl, ErrControl},
		{"newline", "a\nb", 0, ErrControl, nil},
		{"crlf", "a\r\nb", 0, ErrControl, nil},
		{"tab", "a\tb", 0, ErrControl, nil},
		{"too long in characters", strings.Repeat("券", 21), 20, ErrTooLong, ErrTooLong},
		{"at the bound", strings.Repeat("券", 20), 20, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := Line(tc.in, tc.max); !errors.Is(err, tc.line) || (tc.line == nil && err != nil) {
				t.Errorf("Line(%q) = %v, want %v", tc.in, err, tc.line)
			}
			if err := Text(tc.in, tc.max); !errors.Is(err, tc.txt) || (tc.txt == nil && err != nil) {
				t.Errorf("Text(%q) = %v, want %v", tc.in, err, tc.txt)
			}
		})
	}
}

func TestCleanAndClip(t *testing.T) {
	for in, want := range map[string]string{
		"Mozilla/5.0":       "Mozilla/5.0",
		"a\x00b\xffc\u202e": "ab\ufffdc",
		"line\nbreak":       "line\nbreak",
	} {
		if got := Clean(in); got != want {
			t.Errorf("Clean(%q) = %q, want %q", in, got, want)
		}
		if err := Text(Clean(in), 0); err != nil {
			t.Errorf("Clean(%q) still fails Text: %v", in, err)
		}
	}
	if got := Clip("券券券", 7); got != "券券" {
		t.Errorf("Clip cut inside a character: %q", got)
	}
	if got := Clip("abc", 10); got != "abc" {
		t.Errorf("Clip changed a short string: %q", got)
	}
}
