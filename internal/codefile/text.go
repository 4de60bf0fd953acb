package codefile

import (
	"encoding/binary"
	"sync"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// Encoding is the text encoding a file was read in.
type Encoding string

// Encodings reported in Summary.Encoding.
const (
	// EncodingUTF8 is UTF-8 without a byte order mark. A file of pure ASCII
	// is reported as UTF-8.
	EncodingUTF8 Encoding = "UTF-8"
	// EncodingUTF8BOM is UTF-8 starting with the byte order mark EF BB BF,
	// as Excel writes "CSV UTF-8".
	EncodingUTF8BOM Encoding = "UTF-8 with BOM"
	// EncodingGB18030 is GB18030, a superset of GBK/CP936, as Excel writes
	// plain "CSV" in a Chinese locale.
	EncodingGB18030 Encoding = "GB18030"
)

// Why the checks below work on raw bytes: in both UTF-8 and GB18030 every
// byte below 0x30 stands for itself and never occurs inside a multi-byte
// character (UTF-8 continuation bytes are >= 0x80; GB18030 trail bytes are
// 0x30–0x39, 0x40–0x7E and 0x80–0xFE). So LF, CR, tab, space, comma and
// quote can be found, and lines and cells split, without decoding first.

// Byte classes for the ASCII range. Control characters other than tab, CR
// and LF mean the input is not a text file (a NUL is the classic sign of
// binary data or UTF-16), and are refused rather than guessed at.
const (
	clsText = iota
	clsCtrl
	clsHigh // >= 0x80: part of a multi-byte character, or invalid
)

var byteClass = func() (t [256]uint8) {
	for c := 0; c < 0x20; c++ {
		t[c] = clsCtrl
	}
	t['\t'], t['\n'], t['\r'] = clsText, clsText, clsText
	t[0x7f] = clsCtrl
	for c := 0x80; c < 0x100; c++ {
		t[c] = clsHigh
	}
	return t
}()

// scanASCII returns the index of the first byte of b that is not allowed
// ASCII text: ok is false if it is a forbidden control character, true if it
// is a non-ASCII byte (or i == len(b) if there is none).
func scanASCII(b []byte) (i int, ok bool) {
	for i = printablePrefix(b); i < len(b); i++ {
		switch byteClass[b[i]] {
		case clsCtrl:
			return i, false
		case clsHigh:
			return i, true
		}
	}
	return len(b), true
}

// printablePrefix returns a length, a multiple of 8, of a prefix of b that
// is all printable ASCII (0x20–0x7E); the bytes after it are unchecked.
// Most of a code file is such text, and checking it a word at a time is
// several times faster than byte by byte. The bit tricks flag bytes >= 0x80,
// < 0x20 and == 0x7F; a flagged word (including tab, CR and LF) ends the
// prefix, and callers check it byte by byte.
func printablePrefix(b []byte) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		del := w ^ (0x7F * ones)
		if (w|(w-0x20*ones)|(del-ones)&^del)&highs != 0 {
			break
		}
	}
	return i
}

// A validator reports how much of b is valid text in one encoding: n is the
// length of the valid prefix. If ok is false, b[n] starts an invalid
// character (or a forbidden control character). If final is false, b may be
// followed by more bytes, so an incomplete but so far valid character at its
// end is not an error: ok is true and n < len(b) (by at most 3 bytes).
type validator func(b []byte, final bool) (n int, ok bool)

// validUTF8 validates UTF-8 text. C1 control characters (U+0080–U+009F) are
// refused like C0 ones.
func validUTF8(b []byte, final bool) (int, bool) {
	for i := printablePrefix(b); i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if byteClass[c] == clsCtrl {
				return i, false
			}
			i++
			continue
		}
		if !final && !utf8.FullRune(b[i:]) {
			return i, true
		}
		r, size := utf8.DecodeRune(b[i:])
		if size == 1 || r < 0xA0 { // invalid, or a C1 control
			return i, false
		}
		i += size
	}
	return len(b), true
}

// validGB18030 validates GB18030 text with exactly the rules of the decoder
// in golang.org/x/text/encoding/simplifiedchinese (which replaces what it
// cannot decode with U+FFFD instead of failing, so it cannot be used to
// detect invalid input by itself): single byte 0x80 is the euro sign (CP936),
// a lead byte 0x81–0xFE takes a trail 0x40–0x7E or 0x80–0xFE (and must map
// to a character), or 0x30–0x39 then 0x81–0xFE then 0x30–0x39 for a
// four-byte sequence, which must fall in the BMP or the supplementary range.
// Four-byte sequences for C1 controls are refused.
func validGB18030(b []byte, final bool) (int, bool) {
	for i := printablePrefix(b); i < len(b); {
		c := b[i]
		switch {
		case c < 0x80:
			if byteClass[c] == clsCtrl {
				return i, false
			}
			i++
			continue
		case c == 0x80:
			i++
			continue
		case c == 0xFF:
			return i, false
		}
		if i+1 >= len(b) {
			return i, !final
		}
		c1 := b[i+1]
		switch {
		case 0x40 <= c1 && c1 <= 0x7E || 0x80 <= c1 && c1 <= 0xFE:
			if !gb2Valid(c, c1) {
				return i, false
			}
			i += 2
		case 0x30 <= c1 && c1 <= 0x39:
			if i+3 >= len(b) {
				if final || i+2 < len(b) && (b[i+2] < 0x81 || b[i+2] == 0xFF) {
					return i, false
				}
				return i, true
			}
			c2, c3 := b[i+2], b[i+3]
			if c2 < 0x81 || c2 == 0xFF || c3 < 0x30 || c3 > 0x39 {
				return i, false
			}
			lin := ((int(c-0x81)*10+int(c1-0x30))*126+int(c2-0x81))*10 + int(c3-0x30)
			switch {
			case lin < gbC1End: // U+0080–U+009F
				return i, false
			case lin < gbBMPEnd:
			case lin < gbSuppStart || lin-gbSuppStart >= 0x100000:
				return i, false
			}
			i += 4
		default:
			return i, false
		}
	}
	return len(b), true
}

// Linear indexes of GB18030 four-byte sequences (see validGB18030).
const (
	gbC1End     = 0x20   // indexes 0–31 are U+0080–U+009F
	gbBMPEnd    = 39420  // indexes below map into the BMP
	gbSuppStart = 189000 // index of U+10000 (0x90308130)
)

// Two-byte GB18030 sequences: 126 lead bytes times 190 trail bytes.
const gb2Count = 126 * 190

// gb2Table is a bitmap of the two-byte sequences the x/text decoder maps to
// a character. It is built lazily, once, by decoding all of them with that
// decoder, so it agrees with it by construction and costs nothing for the
// (usual) files that never need it.
var gb2Table = sync.OnceValue(func() *[(gb2Count + 63) / 64]uint64 {
	buf := make([]byte, 0, 2*gb2Count)
	for c0 := 0x81; c0 <= 0xFE; c0++ {
		for c1 := 0x40; c1 <= 0xFE; c1++ {
			if c1 != 0x7F {
				buf = append(buf, byte(c0), byte(c1))
			}
		}
	}
	out, err := simplifiedchinese.GB18030.NewDecoder().Bytes(buf)
	if err != nil {
		panic("codefile: building GB18030 table: " + err.Error())
	}
	t := new([(gb2Count + 63) / 64]uint64)
	i := 0
	for _, r := range string(out) {
		// U+FFFD has only a four-byte encoding, so here it always means
		// "unmapped".
		if r != utf8.RuneError {
			t[i/64] |= 1 << (i % 64)
		}
		i++
	}
	if i != gb2Count {
		panic("codefile: GB18030 decoder did not yield one character per two-byte sequence")
	}
	return t
})

// gb2Valid reports whether lead byte c0 (0x81–0xFE) followed by trail byte
// c1 (0x40–0x7E or 0x80–0xFE) is a mapped GB18030 character.
func gb2Valid(c0, c1 byte) bool {
	t := int(c1) - 0x40
	if c1 > 0x7F {
		t--
	}
	i := int(c0-0x81)*190 + t
	return gb2Table()[i/64]&(1<<(i%64)) != 0
}

// validatorFor returns the validator of a detected encoding.
func validatorFor(e Encoding) validator {
	if e == EncodingGB18030 {
		return validGB18030
	}
	return validUTF8
}
