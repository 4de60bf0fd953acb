package codefile

import (
	"encoding/csv"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/transform"
)

// decodeGB decodes one complete GB18030 sequence with x/text and reports the
// first rune and how many bytes it took.
func decodeGB(tr transform.Transformer, seq []byte) (rune, int) {
	var dst [16]byte
	tr.Reset()
	n, _, err := tr.Transform(dst[:], seq, true)
	if err != nil {
		panic(err)
	}
	r, _ := utf8.DecodeRune(dst[:n])
	// The decoder consumes the whole sequence only if it is valid; an
	// invalid one yields U+FFFD and then more runes for the rest.
	if utf8.RuneCount(dst[:n]) != 1 {
		return utf8.RuneError, 1
	}
	return r, len(seq)
}

// TestValidGB18030MatchesXText checks validGB18030 against the x/text
// decoder for every two-byte sequence and every structurally valid
// four-byte sequence: valid exactly when the decoder yields one character
// that is not U+FFFD (unless U+FFFD itself was encoded) nor a C1 control.
func TestValidGB18030MatchesXText(t *testing.T) {
	tr := simplifiedchinese.GB18030.NewDecoder()
	check := func(seq []byte) {
		r, size := decodeGB(tr, seq)
		want := size == len(seq) && r != utf8.RuneError && !(r >= 0x80 && r < 0xA0)
		if string(seq) == "\x84\x31\xA4\x37" { // the GB18030 encoding of U+FFFD
			want = true
		}
		n, ok := validGB18030(seq, true)
		if got := ok && n == len(seq); got != want {
			t.Fatalf("validGB18030(% X) = %v, decoder gives %U (%d bytes)", seq, got, r, size)
		}
	}
	valid2 := 0
	for c0 := 0x81; c0 <= 0xFE; c0++ {
		for c1 := 0x40; c1 <= 0xFE; c1++ {
			if c1 == 0x7F {
				continue
			}
			check([]byte{byte(c0), byte(c1)})
			if gb2Valid(byte(c0), byte(c1)) {
				valid2++
			}
		}
		for c1 := 0x30; c1 <= 0x39; c1++ {
			for c2 := 0x81; c2 <= 0xFE; c2++ {
				for c3 := 0x30; c3 <= 0x39; c3++ {
					check([]byte{byte(c0), byte(c1), byte(c2), byte(c3)})
				}
			}
		}
	}
	if valid2 < 20000 {
		t.Errorf("only %d valid two-byte sequences; table broken?", valid2)
	}
	for _, b := range []byte{0x80, 0xFF} {
		check([]byte{b})
	}
}

func TestValidators(t *testing.T) {
	type result struct {
		n  int
		ok bool
	}
	tests := []struct {
		name  string
		v     validator
		in    string
		final bool
		want  result
	}{
		{"utf8 ascii", validUTF8, "abc\t\r\n", true, result{6, true}},
		{"utf8 chinese", validUTF8, "a券码", true, result{7, true}},
		{"utf8 NUL", validUTF8, "ab\x00", true, result{2, false}},
		{"utf8 DEL", validUTF8, "ab\x7f", true, result{2, false}},
		{"utf8 ESC", validUTF8, "\x1b", true, result{0, false}},
		{"utf8 C1", validUTF8, "a\u0085", true, result{1, false}},
		{"utf8 NBSP ok", validUTF8, "a\u00a0", true, result{3, true}},
		{"utf8 U+FFFD ok", validUTF8, "\uFFFD", true, result{3, true}},
		{"utf8 bad byte", validUTF8, "a\xffb", true, result{1, false}},
		{"utf8 surrogate", validUTF8, "\xed\xa0\x80", true, result{0, false}},
		{"utf8 truncated final", validUTF8, "a\xe5\x88", true, result{1, false}},
		{"utf8 truncated more", validUTF8, "a\xe5\x88", false, result{1, true}},
		{"utf8 bad prefix not final", validUTF8, "a\xe0\x80", false, result{1, false}},
		{"gb chinese", validGB18030, "a\xc8\xaf\xc2\xeb", true, result{5, true}},
		{"gb euro", validGB18030, "\x80", true, result{1, true}},
		{"gb FF", validGB18030, "a\xff", true, result{1, false}},
		{"gb lead then comma", validGB18030, "\xc8,", true, result{0, false}},
		{"gb truncated final", validGB18030, "a\xc8", true, result{1, false}},
		{"gb truncated more", validGB18030, "a\xc8", false, result{1, true}},
		{"gb 4-byte truncated more", validGB18030, "a\x81\x30\x81", false, result{1, true}},
		{"gb 4-byte bad third not final", validGB18030, "a\x81\x30\x20", false, result{1, false}},
		{"gb 4-byte C1", validGB18030, "\x81\x30\x81\x30", true, result{0, false}},
		{"gb 4-byte U+00A0", validGB18030, "\x81\x30\x84\x36", true, result{4, true}},
		{"gb U+10000", validGB18030, "\x90\x30\x81\x30", true, result{4, true}},
		{"gb beyond U+10FFFF", validGB18030, "\xe3\x32\x9a\x36", true, result{0, false}},
		{"gb NUL", validGB18030, "\x00", true, result{0, false}},
	}
	for _, tt := range tests {
		n, ok := tt.v([]byte(tt.in), tt.final)
		if got := (result{n, ok}); got != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestSplit(t *testing.T) {
	tests := []struct {
		in    string
		cells []string
		bad   Reason
	}{
		{"", []string{""}, ""},
		{"a", []string{"a"}, ""},
		{"a,b,,", []string{"a", "b", "", ""}, ""},
		{` a , b `, []string{" a ", " b "}, ""},
		{`"a,b",c`, []string{"a,b", "c"}, ""},
		{`"a""b"`, []string{`a"b`}, ""},
		{`""`, []string{""}, ""},
		{`"",""`, []string{"", ""}, ""},
		{`x,"a",`, []string{"x", "a", ""}, ""},
		{`"""",""""""`, []string{`"`, `""`}, ""},
		{`"a`, nil, ReasonUnterminatedQuote},
		{`a,"b""`, nil, ReasonUnterminatedQuote},
		{`a"b`, nil, ReasonBadQuote},
		{`"a"b`, nil, ReasonBadQuote},
		{`"a" ,b`, nil, ReasonBadQuote},
		{` "a"`, nil, ReasonBadQuote},
	}
	var s splitter
	for _, tt := range tests {
		cells, bad := s.split([]byte(tt.in))
		var got []string
		for _, c := range cells {
			got = append(got, string(c))
		}
		if bad != tt.bad || !slices.Equal(got, tt.cells) {
			t.Errorf("split(%q) = %q, %q; want %q, %q", tt.in, got, bad, tt.cells, tt.bad)
		}
	}
}

// FuzzSplit checks the splitter against encoding/csv on single lines: same
// cells, and an error exactly when encoding/csv (without LazyQuotes) fails.
func FuzzSplit(f *testing.F) {
	for _, s := range []string{"a,b", `"a,b",c`, `"a""b"`, `a"b`, `"a`, `"a"b`, `,,`, `"",x`} {
		f.Add(s)
	}
	var s splitter
	f.Fuzz(func(t *testing.T, line string) {
		if strings.ContainsAny(line, "\r\n") || line == "" {
			return // a line never contains them; csv skips empty lines
		}
		cells, bad := s.split([]byte(line))
		r := csv.NewReader(strings.NewReader(line))
		r.FieldsPerRecord = -1
		want, err := r.Read()
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) || bad == "" {
				t.Fatalf("split(%q) = %q, %q; encoding/csv: %v", line, cells, bad, err)
			}
			return
		}
		if _, err := r.Read(); err != io.EOF {
			t.Fatalf("encoding/csv read more than one record from %q", line)
		}
		var got []string
		for _, c := range cells {
			got = append(got, string(c))
		}
		if bad != "" || !slices.Equal(got, want) {
			t.Fatalf("split(%q) = %q, %q; encoding/csv: %q", line, got, bad, want)
		}
	})
}

// TestPrintablePrefix checks the word-at-a-time scan against byte by byte
// classification, for every byte value at every position of a buffer.
func TestPrintablePrefix(t *testing.T) {
	for n := 0; n <= 24; n++ {
		for pos := 0; pos < n; pos++ {
			for c := 0; c < 256; c++ {
				b := []byte(strings.Repeat("a~ Z", 6)[:n])
				b[pos] = byte(c)
				p := printablePrefix(b)
				printable := c >= 0x20 && c < 0x7F
				want := n / 8 * 8
				if !printable && pos < want {
					want = pos / 8 * 8
				}
				if p != want {
					t.Fatalf("printablePrefix(%q) = %d, want %d", b, p, want)
				}
				i, ok := scanASCII(b)
				wantI, wantOK := n, true
				if !printable && c != '\t' && c != '\r' && c != '\n' {
					wantI, wantOK = pos, c >= 0x80
				}
				if i != wantI || ok != wantOK {
					t.Fatalf("scanASCII(%q) = %d, %v; want %d, %v", b, i, ok, wantI, wantOK)
				}
			}
		}
	}
}
