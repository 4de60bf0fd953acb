package codefile

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"unicode/utf8"
)

// FuzzRead checks that Read never panics and that what it reports is
// consistent, whatever the input.
func FuzzRead(f *testing.F) {
	seeds := []string{
		"A1\nB2\nA1\n",
		"\uFEFFcode,remark\r\n\"A1\",\"x,y\"\r\n\"B\"\"2\",z\r\n\r\n",
		gb("券码,备注\r\nA1,中文\r\nA1,重复\r\n"),
		"x,coupon_code\n1,\n2\n,,\n\"3\",\" A B \"\n",
		"a,b\n",
		"A1\n\x00\n",
		"\"unterminated\nA\"B\n\"A\"B\n",
		"  \t\n" + string(bytes.Repeat([]byte("x"), MaxLineBytes+1)) + "\nA1",
	}
	for i, s := range seeds {
		f.Add([]byte(s), i%2 == 0)
	}
	f.Fuzz(func(t *testing.T, data []byte, merchant bool) {
		kind := ProductCoupon
		if merchant {
			kind = MerchantStock
		}
		var (
			rows      []Row
			validLine = map[string]int{}
			counts    = map[Reason]int{}
		)
		sum, err := Read(context.Background(), bytes.NewReader(data), kind, func(r Row) error {
			if n := len(rows); n > 0 && r.Line <= rows[n-1].Line || r.Line < 1 {
				t.Fatalf("row line %d out of order after %+v", r.Line, rows)
			}
			rows = append(rows, r)
			counts[r.Reason]++
			switch r.Reason {
			case "":
				if p := kind.Validate(r.Code); p.Reason != "" {
					t.Fatalf("valid row %+v fails Validate: %+v", r, p)
				}
				if first, seen := validLine[r.Code]; seen {
					t.Fatalf("valid code %q reported on lines %d and %d", r.Code, first, r.Line)
				}
				validLine[r.Code] = r.Line
			case ReasonDuplicate:
				if first, seen := validLine[r.Code]; !seen || first != r.FirstLine {
					t.Fatalf("duplicate %+v: first valid occurrence is line %d", r, first)
				}
			case ReasonBadChar:
				rs := []rune(r.Code)
				if r.Pos < 1 || r.Pos > len(rs) || rs[r.Pos-1] != r.Char {
					t.Fatalf("bad char %+v does not point into the code", r)
				}
			case ReasonEmpty, ReasonTooLong, ReasonUnterminatedQuote, ReasonBadQuote, ReasonLineTooLong:
			default:
				t.Fatalf("unknown reason in %+v", r)
			}
			return nil
		})
		if sum.Rows != sum.Valid+sum.Invalid+sum.Duplicate || sum.Rows != len(rows) {
			t.Fatalf("summary %+v for %d rows", sum, len(rows))
		}
		if sum.Valid != counts[""] || sum.Duplicate != counts[ReasonDuplicate] {
			t.Fatalf("summary %+v, counted %v", sum, counts)
		}
		if err != nil {
			var le *LineError
			if !errors.As(err, &le) || le.Line < 1 ||
				!errors.Is(err, ErrNotText) && !errors.Is(err, ErrNoCodeColumn) && !errors.Is(err, ErrAmbiguousCodeColumn) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		// A file read without error is text in the reported encoding, and
		// every physical line is accounted for.
		content := data
		if sum.Encoding == EncodingUTF8BOM {
			content = bytes.TrimPrefix(data, utf8BOM)
		}
		if sum.Encoding != EncodingGB18030 && !utf8.Valid(content) {
			t.Fatalf("invalid UTF-8 read as %s", sum.Encoding)
		}
		lines := bytes.Count(content, []byte{'\n'})
		if len(content) > 0 && content[len(content)-1] != '\n' {
			lines++
		}
		header := 0
		if sum.HasHeader {
			header = 1
		}
		if lines != sum.Rows+sum.Blank+header {
			t.Fatalf("%d lines, summary %+v", lines, sum)
		}
	})
}
