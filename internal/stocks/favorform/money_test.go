package favorform

import (
	"errors"
	"math"
	"testing"
)

func TestParseYuan(t *testing.T) {
	for _, tc := range []struct {
		in   string
		fen  int64
		err  error
		note string
	}{
		{in: "0.1", fen: 10, note: "one decimal is tenths of a yuan, not a float 0.1"},
		{in: "19.99", fen: 1999, note: "float64(19.99)*100 is 1998.9999…"},
		{in: "100000000.00", fen: 10000000000},
		{in: "0.01", fen: 1},
		{in: "0.29", fen: 29, note: "float64(0.29)*100 is 28.999…"},
		{in: "1.10", fen: 110},
		{in: "7", fen: 700},
		{in: "007.5", fen: 750},
		{in: "0", fen: 0},
		{in: "0.00", fen: 0},
		{in: " 19.99\t", fen: 1999, note: "surrounding white space is trimmed"},
		{in: "\u300019.99", fen: 1999, note: "an ideographic space too"},
		{in: "92233720368547758.07", fen: math.MaxInt64},

		{in: "", err: ErrAmountEmpty},
		{in: "   ", err: ErrAmountEmpty},
		{in: "1.000", err: ErrAmountPrecision, note: "three decimals even when zero"},
		{in: "19.999", err: ErrAmountPrecision},
		{in: "0.001", err: ErrAmountPrecision},
		{in: "-1", err: ErrAmountNegative},
		{in: "-0.5", err: ErrAmountNegative},
		{in: "-19.99", err: ErrAmountNegative},
		{in: "+1", err: ErrAmountSign},
		{in: "--1", err: ErrAmountSyntax},
		{in: "-abc", err: ErrAmountSyntax},
		{in: "1e3", err: ErrAmountSyntax},
		{in: "1E-2", err: ErrAmountSyntax},
		{in: "0x10", err: ErrAmountSyntax},
		{in: "1,000", err: ErrAmountSyntax},
		{in: "1 000", err: ErrAmountSyntax},
		{in: ".5", err: ErrAmountSyntax},
		{in: "5.", err: ErrAmountSyntax},
		{in: "1.2.3", err: ErrAmountSyntax},
		{in: "abc", err: ErrAmountSyntax},
		{in: "NaN", err: ErrAmountSyntax},
		{in: "Inf", err: ErrAmountSyntax},
		{in: "¥19.99", err: ErrAmountSyntax},
		{in: "19.99元", err: ErrAmountSyntax},
		{in: "１９.９９", err: ErrAmountSyntax, note: "full-width digits"},
		{in: "19,99", err: ErrAmountSyntax, note: "decimal comma"},
		{in: "92233720368547758.08", err: ErrAmountRange},
		{in: "99999999999999999999", err: ErrAmountRange},
		{in: "999999999999999999999999999999.99", err: ErrAmountRange},
	} {
		fen, err := ParseYuan(tc.in)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("ParseYuan(%q) = %d, %v; want error %v", tc.in, fen, err, tc.err)
			}
			if fen != 0 {
				t.Errorf("ParseYuan(%q) returned %d with an error", tc.in, fen)
			}
			if _, ok := MessageFor(err); !ok {
				t.Errorf("ParseYuan(%q): error %v has no catalogue message", tc.in, err)
			}
			continue
		}
		if err != nil || fen != tc.fen {
			t.Errorf("ParseYuan(%q) = %d, %v; want %d (%s)", tc.in, fen, err, tc.fen, tc.note)
		}
	}
}

// Every amount of up to two decimals survives ParseYuan(FormatFen(x)).
func TestFormatFenRoundTrip(t *testing.T) {
	for _, fen := range []int64{0, 1, 9, 10, 99, 100, 1999, 10000000000, math.MaxInt64} {
		s := FormatFen(fen)
		back, err := ParseYuan(s)
		if err != nil || back != fen {
			t.Errorf("FormatFen(%d) = %q, parsed back as %d, %v", fen, s, back, err)
		}
	}
	for fen, want := range map[int64]string{0: "0.00", 5: "0.05", 1999: "19.99", -1: "-0.01", math.MinInt64: "-92233720368547758.08"} {
		if got := FormatFen(fen); got != want {
			t.Errorf("FormatFen(%d) = %q, want %q", fen, got, want)
		}
	}
}

func FuzzParseYuan(f *testing.F) {
	for _, s := range []string{"0.1", "19.99", "-1", "1.000", "1e3", "92233720368547758.07"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fen, err := ParseYuan(s)
		if err != nil {
			if _, ok := MessageFor(err); !ok {
				t.Fatalf("ParseYuan(%q): error %v has no message", s, err)
			}
			return
		}
		if fen < 0 {
			t.Fatalf("ParseYuan(%q) = %d, negative", s, fen)
		}
		if back, err := ParseYuan(FormatFen(fen)); err != nil || back != fen {
			t.Fatalf("ParseYuan(%q) = %d does not round-trip: %d, %v", s, fen, back, err)
		}
	})
}
