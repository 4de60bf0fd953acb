// Package codefile reads the CSV files of coupon codes that operators upload
// for a voucher stock, streaming: memory use does not grow with the file
// except for duplicate detection, which keeps a 128-bit fingerprint and a
// line number, in a 20-byte table slot, per distinct valid code: about
// 40 MB for 1,000,000 codes (see dedup.go).
//
// A file is either one code per line, or has a header row naming the code
// column `code`, `coupon_code` or `券码` (other columns are ignored). It may
// be UTF-8 (with or without BOM) or GB18030/GBK, with CRLF or LF line ends.
// Every data row is reported to a callback as valid, invalid (with a stable
// Reason) or a duplicate of an earlier valid row; rows are identified by
// their physical 1-based line number so an operator can find them in Excel.
//
// Input that is not text (binary data, UTF-16, bytes valid in neither
// encoding) is refused with ErrNotText rather than guessed at.
package codefile

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// MaxLineBytes is the longest line, in bytes without its line terminator,
// that is parsed. Longer lines are reported as ReasonLineTooLong and skipped
// in bounded memory. A valid row needs far less (a 40-character code plus
// whatever other columns a spreadsheet has).
const MaxLineBytes = 4096

const (
	// bufSize is the read buffer, and so also the largest encoding-detection
	// sample and the chunk in which over-long lines are skipped.
	bufSize = 64 << 10
	// maxLines keeps line numbers within the uint32 the duplicate table stores
	// (and within int on 32-bit platforms). Reaching it needs a >2 GB file.
	maxLines = 1<<31 - 1
	// ctxEvery is how many lines are read between context checks.
	ctxEvery = 1024
)

var (
	// ErrNotText means the input is not a text file in a supported encoding:
	// it has NUL or other control bytes (other than tab, CR, LF), or bytes
	// that are valid neither in UTF-8 nor in GB18030, or, after the encoding
	// was detected, a line that is not valid in it. Read returns it wrapped
	// in a *LineError.
	ErrNotText = errors.New("codefile: not a text file in UTF-8 or GB18030")
	// ErrNoCodeColumn means the first row has several cells but none is
	// named code, coupon_code or 券码. Read returns it wrapped in a
	// *LineError.
	ErrNoCodeColumn = errors.New("codefile: header has no code column (code, coupon_code or 券码)")
	// ErrAmbiguousCodeColumn means the header names more than one code
	// column, so it is unclear which one to import. Read returns it wrapped
	// in a *LineError.
	ErrAmbiguousCodeColumn = errors.New("codefile: header has more than one code column")
)

// LineError is an error that makes the whole file unusable, with the
// 1-based line where it was found. Use errors.Is on it for the sentinel
// (ErrNotText, ErrNoCodeColumn, ErrAmbiguousCodeColumn) and errors.As for
// the line.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("%v (line %d)", e.Err, e.Line) }
func (e *LineError) Unwrap() error { return e.Err }

// Row is one data row of the file: a header row and blank rows are not
// reported.
type Row struct {
	// Line is the 1-based physical line number (the header, if any,
	// counts).
	Line int
	// Code is the code cell, decoded to UTF-8 and normalized for the kind
	// (see Kind.Normalize). For a one-code-per-line file with a line that
	// has several cells, and for a row that is not well-formed CSV, it is
	// the whole line. It is empty for ReasonLineTooLong.
	Code string
	// Problem is zero for a valid row; Problem.Reason is "" then.
	Problem
	// FirstLine is, for ReasonDuplicate, the line of the valid row where
	// Code first appeared.
	FirstLine int
}

// Summary describes a file after reading it, or as far as it was read.
type Summary struct {
	// Encoding is the detected encoding; UTF-8 for a file that has no
	// non-ASCII byte (or no byte at all) and no BOM.
	Encoding  Encoding
	HasHeader bool
	// Rows is the number of data rows: Valid + Invalid + Duplicate.
	Rows int
	// Blank is the number of lines skipped because they are empty or all
	// their cells are (only spaces and tabs). They are not in Rows.
	Blank     int
	Valid     int
	Invalid   int
	Duplicate int
}

// Read reads a code file from r and calls fn, if not nil, once per data row
// in file order: valid, invalid and duplicate rows alike, so a caller can
// stream valid codes to a database and problems to a report. fn is called
// on Read's goroutine, for batches of up to a few hundred rows at a time
// (see reader.flush), so reading runs that far ahead of fn.
//
// Reading stops at the first error: an error returned by fn (returned as
// is), ctx's error when ctx is done, a read error from r, or a *LineError
// wrapping ErrNotText, ErrNoCodeColumn or ErrAmbiguousCodeColumn for a file
// that cannot be used at all. The Summary then covers the rows passed to fn
// so far: all rows before the failing line for a *LineError or read error,
// possibly fewer for ctx's error (rows read ahead are dropped) or fn's.
//
// Format rules, beyond those in the package documentation:
//   - The first non-blank row is a header if one of its cells, trimmed of
//     spaces, equals code, coupon_code or 券码, ignoring case. Otherwise, if
//     it has one cell the file has no header and that row is data; if it has
//     several the file is refused with ErrNoCodeColumn.
//   - Without a header, a row with several cells is invalid: its whole line
//     is the code, which has a ReasonBadChar at the first comma if not
//     before, as no alphabet allows commas.
//   - A row with fewer cells than the header's code column is ReasonEmpty.
//   - Quoted cells follow RFC 4180 but may not span lines.
//   - A first row that is longer than MaxLineBytes or is not well-formed CSV
//     cannot be a header; it is reported as an invalid data row and the file
//     is read as having no header.
//
// Encoding detection: a BOM means UTF-8 with BOM. Otherwise the encoding is
// decided at the first line with a non-ASCII byte, from that line and the
// following 64 KiB: valid UTF-8 wins, then valid GB18030; invalid in both is
// ErrNotText. Deciding there rather than on the file's first 64 KiB means a
// GBK file whose first thousands of rows are ASCII is still read correctly.
// A later line invalid in the detected encoding is also ErrNotText.
// Files in UTF-16 (Excel's "Unicode text") contain NUL bytes and are refused.
// Lines ending in a lone CR (classic Mac OS) are not supported.
//
// If r reports its size (a Size() int64 method, as bytes.Reader,
// strings.Reader, io.SectionReader and in-memory multipart files have, or a
// Stat method, as *os.File has), the size is used to pre-size the duplicate
// table, which saves about a fifth of the time for a big file.
func Read(ctx context.Context, r io.Reader, kind Kind, fn func(Row) error) (Summary, error) {
	if !kind.valid() {
		return Summary{}, fmt.Errorf("codefile: invalid kind %v", kind)
	}
	rd := &reader{
		size: sizeOf(r),
		ctx:  ctx,
		br:   bufio.NewReaderSize(r, bufSize),
		kind: kind,
		spec: kind.spec(),
		fn:   fn,
		seen: newDedup(),
	}
	err := rd.run()
	// Rows read before a file error are still reported, as if reading were
	// row by row. An error from fn takes precedence: it concerns an earlier
	// row.
	if ferr := rd.flush(); ferr != nil {
		err = ferr
	}
	rd.sum.Encoding = rd.enc
	if rd.sum.Encoding == "" {
		rd.sum.Encoding = EncodingUTF8
	}
	return rd.sum, err
}

type reader struct {
	size int64 // of the input, if known, else 0
	ctx  context.Context
	br   *bufio.Reader
	kind Kind
	spec *kindSpec
	fn   func(Row) error
	sum  Summary
	seen *dedup

	// enc is the detected encoding, "" while only ASCII has been seen.
	enc   Encoding
	valid validator // of enc, once set

	line    int  // current physical line
	started bool // first non-blank row seen (header decided)
	col     int  // code column when sum.HasHeader
	fast    bool // header decided, and a one-cell line would be the code

	// batch holds rows read but not yet passed to fn; see flush.
	batch []pending

	split  splitter
	sample []byte // encoding-detection sample, or an over-long line's tail
	gb     *encoding.Decoder
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// sizeOf returns the size of r's data if r can tell it cheaply, else 0. It
// is only a hint for sizing the duplicate table.
func sizeOf(r io.Reader) int64 {
	switch r := r.(type) {
	case interface{ Size() int64 }: // bytes.Reader, strings.Reader, io.SectionReader, in-memory multipart.File
		return r.Size()
	case interface{ Stat() (fs.FileInfo, error) }: // *os.File, including on-disk multipart.File
		if fi, err := r.Stat(); err == nil && fi.Mode().IsRegular() {
			return fi.Size()
		}
	}
	return 0
}

func (r *reader) run() error {
	if err := r.ctx.Err(); err != nil {
		return err
	}
	b, err := r.br.Peek(len(utf8BOM))
	if err != nil && err != io.EOF {
		return err
	}
	if bytes.Equal(b, utf8BOM) {
		_, _ = r.br.Discard(len(utf8BOM)) // cannot fail: the bytes are buffered
		r.setEncoding(EncodingUTF8BOM)
	}
	if r.size > 0 {
		// Estimate the number of codes from the input's size and the line
		// length in the first buffer, to size the duplicate table once.
		b, err := r.br.Peek(bufSize)
		if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
			return err
		}
		if nl := bytes.Count(b, []byte{'\n'}); nl > 0 {
			r.seen.reserve(r.size * int64(nl) / int64(len(b)))
		}
	}
	for {
		if r.line%ctxEvery == 0 && r.line > 0 {
			if err := r.ctx.Err(); err != nil {
				r.batch = r.batch[:0] // stop now: report no more rows
				return err
			}
		}
		// ReadSlice returns a view of the buffer: lines are not copied.
		b, err := r.br.ReadSlice('\n')
		switch err {
		case nil, io.EOF, bufio.ErrBufferFull:
		default:
			return err
		}
		if len(b) == 0 && err == io.EOF {
			return nil
		}
		if r.line++; r.line >= maxLines {
			return fmt.Errorf("codefile: more than %d lines", maxLines-1)
		}
		if err == bufio.ErrBufferFull {
			if err := r.skipLongLine(b); err != nil {
				return err
			}
			if err := r.tooLong(); err != nil {
				return err
			}
			continue
		}
		// Fast path for the bulk of a clean file: a line that is exactly one
		// valid code. Its bytes are all in the kind's ASCII alphabet, which
		// has no control character, comma or quote, so it is valid text in
		// any encoding and a single unquoted cell; none of the general
		// checks below could say otherwise.
		if line := trimEOL(b); r.fast && r.spec.isCode(line) {
			if err := r.addValid(string(line)); err != nil {
				return err
			}
			continue
		}
		if b, err = r.checkLine(b); err != nil {
			return err
		}
		if err := r.row(trimEOL(b)); err != nil {
			return err
		}
	}
}

func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b
}

func (r *reader) setEncoding(e Encoding) {
	r.enc = e
	r.valid = validatorFor(e)
}

func (r *reader) notText(line int) error { return &LineError{Line: line, Err: ErrNotText} }

// checkLine checks that the whole line b (with its terminator, if any) is
// text. It may detect the encoding, which reads ahead and so moves the
// buffer: it returns b, possibly at a new place.
func (r *reader) checkLine(b []byte) ([]byte, error) {
	if r.enc == "" {
		i, ok := scanASCII(b)
		if !ok {
			return nil, r.notText(r.line)
		}
		if i == len(b) {
			return b, nil
		}
		// First non-ASCII byte: detect from this line and what follows.
		// Peek may slide the buffer under b, so copy b first.
		r.sample = append(r.sample[:0], b...)
		n := len(b)
		ahead, err := r.br.Peek(bufSize)
		atEOF := false
		switch err {
		case nil, bufio.ErrBufferFull:
		case io.EOF:
			atEOF = true
		default:
			return nil, err
		}
		r.sample = append(r.sample, ahead...)
		if err := r.detect(r.sample, atEOF); err != nil {
			return nil, err
		}
		b = r.sample[:n]
	}
	if _, ok := r.valid(b, true); !ok {
		return nil, r.notText(r.line)
	}
	return b, nil
}

// detect decides the encoding from sample, which starts at the current line.
// atEOF says whether the file ends with sample; if not, an incomplete
// character at its end is fine.
func (r *reader) detect(sample []byte, atEOF bool) error {
	nu, ok := validUTF8(sample, atEOF)
	if ok {
		r.setEncoding(EncodingUTF8)
		return nil
	}
	ng, ok := validGB18030(sample, atEOF)
	if ok {
		r.setEncoding(EncodingGB18030)
		return nil
	}
	// Invalid in both: blame the line where the encoding that got further
	// failed. For a GBK file with one corrupt byte, UTF-8 fails at the first
	// Chinese character but GB18030 at the corrupt byte, and vice versa.
	bad := max(nu, ng)
	return r.notText(r.line + bytes.Count(sample[:bad], []byte{'\n'}))
}

// skipLongLine consumes the rest of a line whose first bufSize bytes, first,
// have been read without finding its end. It still checks that the line is
// text, chunk by chunk, carrying an incomplete character from one chunk to
// the next, so it never holds more than a buffer and a few bytes.
func (r *reader) skipLongLine(first []byte) error {
	chunk, final := first, false
	var carry [4]byte
	nc := 0
	for {
		buf := chunk
		if nc > 0 {
			r.sample = append(append(r.sample[:0], carry[:nc]...), chunk...)
			buf = r.sample
		}
		n, err := r.checkChunk(buf, final)
		if err != nil {
			return err
		}
		nc = copy(carry[:], buf[n:])
		if final {
			return nil
		}
		if err := r.ctx.Err(); err != nil {
			r.batch = r.batch[:0]
			return err
		}
		chunk, err = r.br.ReadSlice('\n')
		switch err {
		case nil, io.EOF:
			final = true
		case bufio.ErrBufferFull:
		default:
			return err
		}
	}
}

// checkChunk checks a piece of an over-long line; final says whether the
// line ends with it. It returns how much of buf is complete characters.
func (r *reader) checkChunk(buf []byte, final bool) (int, error) {
	if r.enc == "" {
		i, ok := scanASCII(buf)
		if !ok {
			return 0, r.notText(r.line)
		}
		if i == len(buf) {
			return i, nil
		}
		// The chunk is at least as large as a detection sample would be.
		if err := r.detect(buf, final); err != nil {
			return 0, err
		}
	}
	n, ok := r.valid(buf, final)
	if !ok {
		return 0, r.notText(r.line)
	}
	return n, nil
}

// tooLong reports the current line as too long to parse.
func (r *reader) tooLong() error {
	if !r.started { // cannot be a header: the file has none
		r.started, r.fast = true, true
	}
	return r.emit(Row{Line: r.line, Problem: Problem{Reason: ReasonLineTooLong}})
}

// row handles one complete line, already checked to be text.
func (r *reader) row(line []byte) error {
	if len(line) > MaxLineBytes {
		return r.tooLong()
	}
	cells, bad := r.split.split(line)
	if bad == "" && blank(cells) {
		r.sum.Blank++
		return nil
	}
	if !r.started {
		r.started = true
		if bad == "" {
			if header, err := r.header(cells); header || err != nil {
				return err
			}
		}
		r.fast = true // no header
	}
	if bad != "" {
		return r.emit(Row{Line: r.line, Code: r.text(r.normalize(line)), Problem: Problem{Reason: bad}})
	}
	var raw []byte
	switch {
	case r.sum.HasHeader:
		if r.col < len(cells) {
			raw = cells[r.col]
		}
	case len(cells) == 1:
		raw = cells[0]
	default:
		raw = line // reported as a bad character: the first comma
	}
	code := r.text(r.normalize(raw))
	p := r.kind.Validate(code)
	if p.Reason != "" {
		return r.emit(Row{Line: r.line, Code: code, Problem: p})
	}
	return r.addValid(code)
}

// addValid queues the current line's valid code; flush decides whether it
// is a duplicate.
func (r *reader) addValid(code string) error {
	h1, h2 := r.seen.fingerprint(code)
	r.batch = append(r.batch, pending{Row{Line: r.line, Code: code}, h1, h2})
	if len(r.batch) == batchSize {
		return r.flush()
	}
	return nil
}

// header decides whether cells, the first non-blank row, is a header.
func (r *reader) header(cells [][]byte) (bool, error) {
	col, found := 0, 0
	for i, c := range cells {
		switch strings.ToLower(strings.TrimSpace(r.text(c))) {
		case "code", "coupon_code", "券码":
			if found == 0 {
				col = i
			}
			found++
		}
	}
	switch {
	case found > 1:
		return false, &LineError{Line: r.line, Err: ErrAmbiguousCodeColumn}
	case found == 1:
		r.sum.HasHeader, r.col = true, col
		// With a one-column header, a line without commas is the code
		// cell. (With more columns the fast path would rarely apply.)
		r.fast = len(cells) == 1
		return true, nil
	case len(cells) > 1:
		return false, &LineError{Line: r.line, Err: ErrNoCodeColumn}
	}
	return false, nil
}

// normalize is Kind.Normalize on raw bytes. Space and tab never occur
// inside a multi-byte character in either encoding, so trimming raw bytes is
// safe.
func (r *reader) normalize(b []byte) []byte {
	if r.spec.trim {
		// Hand-written: bytes.Trim builds its cutset table on every call,
		// which showed up in profiles at a million rows.
		for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
			b = b[1:]
		}
		for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
			b = b[:len(b)-1]
		}
	}
	return b
}

// text decodes raw bytes, already validated, to a UTF-8 string.
func (r *reader) text(b []byte) string {
	if r.enc == EncodingGB18030 {
		if i, _ := scanASCII(b); i < len(b) {
			if r.gb == nil {
				r.gb = simplifiedchinese.GB18030.NewDecoder()
			}
			if s, err := r.gb.Bytes(b); err == nil {
				return string(s)
			}
		}
	}
	return string(b)
}

// pending is a row waiting in the batch, with its code's fingerprint if it
// is valid.
type pending struct {
	row    Row
	h1, h2 uint64
}

// batchSize is the number of rows handled per flush.
const batchSize = 256

// emit queues a row to be passed to fn in file order.
func (r *reader) emit(row Row) error {
	r.batch = append(r.batch, pending{row: row})
	if len(r.batch) == batchSize {
		return r.flush()
	}
	return nil
}

// flush looks up the batch's valid codes in the duplicate table, then passes
// the batch's rows to fn.
//
// Why batches: with a million distinct codes the table is tens of MB, so
// nearly every lookup misses the CPU caches. Done one row at a time, each
// miss stalls the whole parse; done back to back for a batch, the lookups
// are independent and the CPU keeps many misses in flight. This cut the
// time of a 1,000,000-code read by about a quarter.
func (r *reader) flush() error {
	r.seen.touch(r.batch)
	for i := range r.batch {
		p := &r.batch[i]
		if p.row.Reason == "" {
			if first, dup := r.seen.insert(p.h1, p.h2, p.row.Line); dup {
				p.row.Reason, p.row.FirstLine = ReasonDuplicate, first
			}
		}
	}
	for i := range r.batch {
		row := r.batch[i].row
		r.sum.Rows++
		switch row.Reason {
		case "":
			r.sum.Valid++
		case ReasonDuplicate:
			r.sum.Duplicate++
		default:
			r.sum.Invalid++
		}
		if r.fn != nil {
			if err := r.fn(row); err != nil {
				r.batch = r.batch[:0]
				return err
			}
		}
	}
	r.batch = r.batch[:0]
	return nil
}
