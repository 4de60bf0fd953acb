package codefile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// gb encodes s in GB18030, as Excel in a Chinese locale saves CSV.
func gb(s string) string {
	out, err := simplifiedchinese.GB18030.NewEncoder().String(s)
	if err != nil {
		panic(err)
	}
	return out
}

// readAll reads input and collects every reported row.
func readAll(t testing.TB, r io.Reader, kind Kind) (Summary, []Row, error) {
	t.Helper()
	var rows []Row
	sum, err := Read(context.Background(), r, kind, func(row Row) error {
		rows = append(rows, row)
		return nil
	})
	return sum, rows, err
}

// ok is a valid row, for brevity in tables.
func ok(line int, code string) Row { return Row{Line: line, Code: code} }

func bad(line int, code string, reason Reason) Row {
	return Row{Line: line, Code: code, Problem: Problem{Reason: reason}}
}

func badChar(line int, code string, c rune, pos int) Row {
	return Row{Line: line, Code: code, Problem: Problem{Reason: ReasonBadChar, Char: c, Pos: pos}}
}

func dup(line int, code string, first int) Row {
	return Row{Line: line, Code: code, Problem: Problem{Reason: ReasonDuplicate}, FirstLine: first}
}

func TestRead(t *testing.T) {
	long40, long41 := strings.Repeat("a", 40), strings.Repeat("a", 41)
	long32, long33 := strings.Repeat("b", 32), strings.Repeat("b", 33)
	tests := []struct {
		name string
		kind Kind
		in   string
		enc  Encoding
		hdr  bool
		blnk int
		rows []Row
	}{
		{name: "empty file", in: "", enc: EncodingUTF8},
		{name: "only BOM", in: "\uFEFF", enc: EncodingUTF8BOM},
		{name: "only newlines", in: "\n\r\n\n", enc: EncodingUTF8, blnk: 3},
		{name: "only header", in: "code\r\n", enc: EncodingUTF8, hdr: true},
		{name: "only header no newline", in: "券码", enc: EncodingUTF8, hdr: true},
		{
			name: "LF one per line", in: "A1\nB2\n", enc: EncodingUTF8,
			rows: []Row{ok(1, "A1"), ok(2, "B2")},
		},
		{
			name: "CRLF no final newline", in: "A1\r\nB2", enc: EncodingUTF8,
			rows: []Row{ok(1, "A1"), ok(2, "B2")},
		},
		{
			name: "final CR without LF", in: "A1\r\nB2\r", enc: EncodingUTF8,
			rows: []Row{ok(1, "A1"), ok(2, "B2")},
		},
		{
			name: "BOM header code with other columns", in: "\uFEFFname,Code,n\r\nx,A1,1\r\ny,B2,2\r\n",
			enc: EncodingUTF8BOM, hdr: true,
			rows: []Row{ok(2, "A1"), ok(3, "B2")},
		},
		{
			name: "header coupon_code spaced mixed case UTF-8 Chinese", in: " Coupon_Code ,备注\nA1,第一\nB2,第二\n",
			enc: EncodingUTF8, hdr: true,
			rows: []Row{ok(2, "A1"), ok(3, "B2")},
		},
		{
			name: "header 券码 UTF-8", in: "序号,券码\n1,A1\n", enc: EncodingUTF8, hdr: true,
			rows: []Row{ok(2, "A1")},
		},
		{
			name: "header quoted", in: "\"x,y\",\"code\"\n\"1,2\",\"A1\"\n", enc: EncodingUTF8, hdr: true,
			rows: []Row{ok(2, "A1")},
		},
		{
			name: "GB18030 header 券码", in: gb("券码,备注\r\nA1,中文\r\nB2,\r\n"), enc: EncodingGB18030, hdr: true,
			rows: []Row{ok(2, "A1"), ok(3, "B2")},
		},
		{
			name: "GB18030 bad char decoded", in: gb("券码\nAB中\n"), enc: EncodingGB18030, hdr: true,
			rows: []Row{badChar(2, "AB中", '中', 3)},
		},
		{
			name: "GB18030 headerless codes then Chinese", in: "A1\n" + gb("B2中\n") + "C3\n", enc: EncodingGB18030,
			rows: []Row{ok(1, "A1"), badChar(2, "B2中", '中', 3), ok(3, "C3")},
		},
		{
			name: "header line number after blank lines", in: "\n\ncode\nA1\n", enc: EncodingUTF8, hdr: true, blnk: 2,
			rows: []Row{ok(4, "A1")},
		},
		{
			name: "quoted fields", in: "code,remark\n\"A1\",\"x,y\"\n\"B\"\"2\",z\nC3,\"say \"\"hi\"\"\"\n",
			enc: EncodingUTF8, hdr: true,
			rows: []Row{ok(2, "A1"), badChar(3, `B"2`, '"', 2), ok(4, "C3")},
		},
		{
			name: "quoted code with comma headerless", in: "\"A,1\"\n", enc: EncodingUTF8,
			rows: []Row{badChar(1, "A,1", ',', 2)},
		},
		{
			name: "quote errors", in: "code\n\"A1\nA\"2\n\"A3\"x\nB4\n", enc: EncodingUTF8, hdr: true,
			rows: []Row{
				bad(2, `"A1`, ReasonUnterminatedQuote), bad(3, `A"2`, ReasonBadQuote),
				bad(4, `"A3"x`, ReasonBadQuote), ok(5, "B4"),
			},
		},
		{
			name: "first row malformed is data", in: "\"code\nA1\n", enc: EncodingUTF8,
			rows: []Row{bad(1, `"code`, ReasonUnterminatedQuote), ok(2, "A1")},
		},
		{
			name: "blank lines", in: "\nA1\n\n  \n,,\n\t, \r\nB2\n\n", enc: EncodingUTF8, blnk: 6,
			rows: []Row{ok(2, "A1"), ok(7, "B2")},
		},
		{
			name: "blank rows in header file", in: "code,x\n,\n\"\",\"\"\nA1,y\n", enc: EncodingUTF8, hdr: true, blnk: 2,
			rows: []Row{ok(4, "A1")},
		},
		{
			name: "trim ProductCoupon", in: "  A1\t\ncode\n", enc: EncodingUTF8,
			rows: []Row{ok(1, "A1"), ok(2, "code")}, // no header: "code" on line 2 is data
		},
		{
			name: "trim in header cell", in: "code,x\n  A1 ,y\n\" B2\t\",z\n", enc: EncodingUTF8, hdr: true,
			rows: []Row{ok(2, "A1"), ok(3, "B2")},
		},
		{
			name: "MerchantStock keeps spaces", kind: MerchantStock, in: "code,x\n A1 ,y\n   ,z\nA\t1,w\n",
			enc: EncodingUTF8, hdr: true,
			rows: []Row{ok(2, " A1 "), bad(3, "   ", ReasonEmpty), badChar(4, "A\t1", '\t', 2)},
		},
		{
			name: "empty and missing code cell", in: "x,code\nfoo,\nbar\n,A1\n", enc: EncodingUTF8, hdr: true,
			rows: []Row{bad(2, "", ReasonEmpty), bad(3, "", ReasonEmpty), ok(4, "A1")},
		},
		{
			name: "headerless row with several cells", in: "A1\nB2,C3\n", enc: EncodingUTF8,
			rows: []Row{ok(1, "A1"), badChar(2, "B2,C3", ',', 3)},
		},
		{
			name: "ProductCoupon alphabet and length", in: "code\nazAZ09_-\na*b\n" + long40 + "\n" + long41 + "\nA 1\n",
			enc: EncodingUTF8, hdr: true,
			rows: []Row{
				ok(2, "azAZ09_-"), badChar(3, "a*b", '*', 2), ok(4, long40),
				bad(5, long41, ReasonTooLong), badChar(6, "A 1", ' ', 2),
			},
		},
		{
			name: "MerchantStock alphabet and length", kind: MerchantStock,
			in:  "code\n" + `a-*\/=|b c` + "\na_b\n" + long32 + "\n" + long33 + "\n",
			enc: EncodingUTF8, hdr: true,
			rows: []Row{
				ok(2, `a-*\/=|b c`), badChar(3, "a_b", '_', 2), ok(4, long32), bad(5, long33, ReasonTooLong),
			},
		},
		{
			name: "duplicates", in: "A1\nB2\nA1\n\nA1\n a*\na*\nB2\n", enc: EncodingUTF8, blnk: 1,
			rows: []Row{
				ok(1, "A1"), ok(2, "B2"), dup(3, "A1", 1), dup(5, "A1", 1),
				badChar(6, "a*", '*', 2), badChar(7, "a*", '*', 2), dup(8, "B2", 2),
			},
		},
		{
			name: "duplicate after trimming", in: "A1\n A1\n", enc: EncodingUTF8,
			rows: []Row{ok(1, "A1"), dup(2, "A1", 1)},
		},
		{
			name: "duplicates are case-sensitive", in: "a1\nA1\n", enc: EncodingUTF8,
			rows: []Row{ok(1, "a1"), ok(2, "A1")},
		},
		{
			name: "line just at MaxLineBytes", in: "code,x\nA1," + strings.Repeat("x", MaxLineBytes-3) + "\n",
			enc: EncodingUTF8, hdr: true, rows: []Row{ok(2, "A1")},
		},
		{
			name: "line one byte over MaxLineBytes", in: "code,x\nA1," + strings.Repeat("x", MaxLineBytes-2) + "\r\nB2,y\n",
			enc: EncodingUTF8, hdr: true, rows: []Row{bad(2, "", ReasonLineTooLong), ok(3, "B2")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind := tt.kind
			if kind == 0 {
				kind = ProductCoupon
			}
			sum, rows, err := readAll(t, strings.NewReader(tt.in), kind)
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if len(rows) != len(tt.rows) {
				t.Fatalf("got %d rows %+v, want %d %+v", len(rows), rows, len(tt.rows), tt.rows)
			}
			for i := range rows {
				if rows[i] != tt.rows[i] {
					t.Errorf("row %d = %+v, want %+v", i, rows[i], tt.rows[i])
				}
			}
			want := Summary{Encoding: tt.enc, HasHeader: tt.hdr, Rows: len(tt.rows), Blank: tt.blnk}
			for _, r := range tt.rows {
				switch r.Reason {
				case "":
					want.Valid++
				case ReasonDuplicate:
					want.Duplicate++
				default:
					want.Invalid++
				}
			}
			if sum != want {
				t.Errorf("summary = %+v, want %+v", sum, want)
			}
		})
	}
}

func TestReadFileErrors(t *testing.T) {
	// asciiLines is more than a detection sample of ASCII rows.
	asciiLines := strings.Repeat("ABCDEFGHIJ0123456789\n", 5000)
	tests := []struct {
		name string
		in   string
		err  error
		line int
	}{
		{"no code column", "a,b\nA1,B1\n", ErrNoCodeColumn, 1},
		{"no code column after blanks", "\n ,\na,b\n", ErrNoCodeColumn, 3},
		{"ambiguous code column", "code,券码\nA1,A2\n", ErrAmbiguousCodeColumn, 1},
		{"NUL", "A1\nB\x002\n", ErrNotText, 2},
		{"control", "A1\nB2\x1b\n", ErrNotText, 2},
		{"UTF-16LE with BOM", "\xff\xfeA\x001\x00\n\x00", ErrNotText, 1},
		{"UTF-16BE", "\x00A\x001", ErrNotText, 1},
		{"neither encoding", "A1\nB2\n\xff\xfe\n", ErrNotText, 3},
		{"GB with corrupt byte", gb("券码\n中文1\n中文2\n") + "A\xff\n", ErrNotText, 4},
		{"UTF-8 with corrupt byte", "券码\n中文1\n中文2\nA\xff\n", ErrNotText, 4},
		{"BOM then invalid UTF-8", "\uFEFFcode\n" + gb("中\n"), ErrNotText, 2},
		{
			// UTF-8 is detected from the first 64 KiB; GB18030 bytes after
			// that are refused at their line.
			"UTF-8 then GB18030 later", "券码\n" + asciiLines + gb("中\n"), ErrNotText, 5002,
		},
		{"control in a long line", "A1\n" + strings.Repeat("x", 200000) + "\x01\n", ErrNotText, 2},
		{"invalid UTF-8 in a long line", "券\n" + strings.Repeat("x", 200000) + "\xff\n", ErrNotText, 2},
		{"truncated character ends a long line", "券\n" + strings.Repeat("x", 200000) + "\xe5\x88", ErrNotText, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := readAll(t, strings.NewReader(tt.in), ProductCoupon)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			var le *LineError
			if !errors.As(err, &le) || le.Line != tt.line {
				t.Fatalf("err = %v, want line %d", err, tt.line)
			}
		})
	}
}

func TestReadLateGB18030(t *testing.T) {
	// A GBK file whose first 100 KiB are ASCII is still detected as GB18030,
	// because detection waits for the first non-ASCII line.
	in := "code,remark\n" + strings.Repeat("ABCDEFGHIJ0123456789,x\n", 5000) + gb("LAST,备注\n")
	sum, rows, err := readAll(t, strings.NewReader(in), ProductCoupon)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Encoding != EncodingGB18030 || sum.Valid != 2 || sum.Duplicate != 4999 {
		t.Fatalf("summary = %+v", sum)
	}
	if last := rows[len(rows)-1]; last != ok(5002, "LAST") {
		t.Fatalf("last row = %+v", last)
	}
}

func TestReadRandomBytes(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 1))
		b := make([]byte, 64<<10)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		sum, _, err := readAll(t, bytes.NewReader(b), ProductCoupon)
		var le *LineError
		if !errors.Is(err, ErrNotText) || !errors.As(err, &le) || le.Line < 1 {
			t.Fatalf("seed %d: err = %v (summary %+v), want ErrNotText with line", seed, err, sum)
		}
	}
}

func TestReadInvalidKind(t *testing.T) {
	if _, err := Read(context.Background(), strings.NewReader("A1\n"), Kind(0), nil); err == nil {
		t.Fatal("Read with zero Kind succeeded")
	}
}

func TestReadStops(t *testing.T) {
	in := strings.Repeat("A1\n", 10000)
	stop := errors.New("stop")
	n := 0
	sum, err := Read(context.Background(), strings.NewReader(in), ProductCoupon, func(Row) error {
		if n++; n == 3 {
			return stop
		}
		return nil
	})
	if err != stop || sum.Rows != 3 {
		t.Fatalf("fn error: err = %v, rows = %d", err, sum.Rows)
	}

	ctx, cancel := context.WithCancel(context.Background())
	sum, err = Read(ctx, strings.NewReader(in), ProductCoupon, func(Row) error {
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) || sum.Rows > ctxEvery {
		t.Fatalf("cancel: err = %v, rows = %d", err, sum.Rows)
	}
	if _, err := Read(ctx, strings.NewReader(in), ProductCoupon, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled before start: err = %v", err)
	}
}

func TestReadError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("A1\nB2\n"), &errReader{boom})
	if _, err := Read(context.Background(), r, ProductCoupon, nil); err != boom {
		t.Fatalf("err = %v, want %v", err, boom)
	}
}

type errReader struct{ err error }

func (e *errReader) Read([]byte) (int, error) { return 0, e.err }

// genReader produces a file line by line, so tests and benchmarks can read
// big files without building them in memory.
type genReader struct {
	n, i int                          // lines to produce, lines produced
	line func(i int, b []byte) []byte // appends line i (0-based), terminator included
	buf  []byte                       // produced, not yet read
	off  int                          // read position in buf
	hdr  string                       // written before line 0
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.off == len(g.buf) {
		g.buf, g.off = g.buf[:0], 0
		if g.hdr != "" {
			g.buf, g.hdr = append(g.buf, g.hdr...), ""
		}
		for ; g.i < g.n && len(g.buf) < 32<<10; g.i++ {
			g.buf = g.line(g.i, g.buf)
		}
		if len(g.buf) == 0 {
			return 0, io.EOF
		}
	}
	n := copy(p, g.buf[g.off:])
	g.off += n
	return n, nil
}

// appendCode appends a 20-character code unique to i: "WX2026" and i in 14
// zero-padded digits.
func appendCode(b []byte, i int) []byte {
	b = append(b, "WX2026"...)
	var d [20]byte
	s := strconv.AppendInt(d[:0], int64(i), 10)
	for range 14 - len(s) {
		b = append(b, '0')
	}
	return append(b, s...)
}

// sizedReader is a reader that claims a size, as bytes.Reader and
// multipart files do, which Read uses to size its duplicate table.
type sizedReader struct {
	io.Reader
	size int64
}

func (s sizedReader) Size() int64 { return s.size }

func TestRead1M(t *testing.T) {
	const n = 1_000_000
	// Header, n unique codes with a remark column, then every 100,000th
	// code again.
	newGen := func() *genReader {
		return &genReader{n: n + 10, hdr: "coupon_code,remark\r\n", line: func(i int, b []byte) []byte {
			if i >= n {
				i = (i - n) * 100_000
			}
			b = appendCode(b, i)
			return append(b, ",batch\r\n"...)
		}}
	}
	size := int64(len("coupon_code,remark\r\n") + (n+10)*len("WX202600000000000000,batch\r\n"))
	for _, tt := range []struct {
		name string
		r    io.Reader
	}{
		{"streamed", newGen()},                 // the table grows as it goes
		{"sized", sizedReader{newGen(), size}}, // the table is sized up front
	} {
		t.Run(tt.name, func(t *testing.T) {
			valid, dups, lastLine := 0, 0, 1 // line 1 is the header
			sum, err := Read(context.Background(), tt.r, ProductCoupon, func(r Row) error {
				if r.Line != lastLine+1 {
					return fmt.Errorf("line %d after %d", r.Line, lastLine)
				}
				lastLine = r.Line
				switch r.Reason {
				case "":
					valid++
				case ReasonDuplicate:
					if want := (r.Line-2-n)*100_000 + 2; r.FirstLine != want {
						return fmt.Errorf("line %d: first line %d, want %d", r.Line, r.FirstLine, want)
					}
					dups++
				default:
					return fmt.Errorf("line %d: %+v", r.Line, r)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			want := Summary{Encoding: EncodingUTF8, HasHeader: true, Rows: n + 10, Valid: n, Duplicate: 10}
			if sum != want || valid != n || dups != 10 {
				t.Fatalf("summary = %+v, want %+v (counted %d valid, %d duplicates)", sum, want, valid, dups)
			}
		})
	}
}

// TestReadSizeHint checks that a wrong size hint changes nothing but the
// table's initial size.
func TestReadSizeHint(t *testing.T) {
	in := "A1\nB2\nA1\n"
	want := []Row{ok(1, "A1"), ok(2, "B2"), dup(3, "A1", 1)}
	for _, size := range []int64{1 << 40, 1, -5} {
		_, rows, err := readAll(t, sizedReader{strings.NewReader(in), size}, ProductCoupon)
		if err != nil || len(rows) != len(want) {
			t.Fatalf("size %d: %+v, %v", size, rows, err)
		}
		for i := range rows {
			if rows[i] != want[i] {
				t.Errorf("size %d: row %d = %+v, want %+v", size, i, rows[i], want[i])
			}
		}
	}
	d := newDedup()
	d.reserve(1 << 40)
	if len(d.slots) != maxReserve {
		t.Errorf("reserve(1<<40) made %d slots, want the cap %d", len(d.slots), maxReserve)
	}
}

// TestReadLongLines reads lines of megabytes and checks that they are
// reported as too long, that reading goes on after them, and that memory
// use does not grow with them.
func TestReadLongLines(t *testing.T) {
	const size = 8 << 20
	tests := []struct {
		name string
		head string // before the long line
		unit string // repeated to make the long line
		tail string // after the long line
		enc  Encoding
		rows []Row
	}{
		{
			name: "ASCII after header", head: "code,x\nA1,", unit: "x", tail: "\nB2,y\nC3,z",
			enc:  EncodingUTF8,
			rows: []Row{bad(2, "", ReasonLineTooLong), ok(3, "B2"), ok(4, "C3")},
		},
		{
			// The line is the first thing with non-ASCII: the encoding is
			// detected from its first chunk. 3-byte characters straddle
			// chunk boundaries.
			name: "first line UTF-8", head: "", unit: "中", tail: "\r\nA1\n",
			enc:  EncodingUTF8,
			rows: []Row{bad(1, "", ReasonLineTooLong), ok(2, "A1")},
		},
		{
			name: "GB18030 straddling chunks", head: gb("券码\n") + "x", unit: gb("中"), tail: "\nA1\n",
			enc:  EncodingGB18030,
			rows: []Row{bad(2, "", ReasonLineTooLong), ok(3, "A1")},
		},
		{
			name: "GB18030 four-byte characters", head: gb("券码\n") + "xy", unit: gb("€\U0001F600"), tail: "\nA1\n",
			enc:  EncodingGB18030,
			rows: []Row{bad(2, "", ReasonLineTooLong), ok(3, "A1")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reps := size / len(tt.unit)
			g := &genReader{n: reps, hdr: tt.head, line: func(_ int, b []byte) []byte { return append(b, tt.unit...) }}
			r := io.MultiReader(g, strings.NewReader(tt.tail))
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			sum, rows, err := readAll(t, r, ProductCoupon)
			runtime.ReadMemStats(&after)
			if err != nil {
				t.Fatal(err)
			}
			if sum.Encoding != tt.enc || len(rows) != len(tt.rows) {
				t.Fatalf("summary %+v, rows %+v", sum, rows)
			}
			for i := range rows {
				if rows[i] != tt.rows[i] {
					t.Errorf("row %d = %+v, want %+v", i, rows[i], tt.rows[i])
				}
			}
			// Buffers of 64 KiB plus small change; an implementation that
			// held the line would allocate over 8 MiB.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
				t.Errorf("allocated %d bytes for an %d-byte line", alloc, size)
			}
		})
	}
}
