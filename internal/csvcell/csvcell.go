// Package csvcell writes the console's CSV downloads. Every cell passes
// through Escape, so a value a spreadsheet would evaluate as a formula (a
// typed username, an invalid code from an upload, a user agent) is shown as
// text instead: OWASP's "CSV injection" advice. Quoting of commas, quotes and
// line breaks is encoding/csv's.
package csvcell

import (
	"encoding/csv"
	"io"
)

// Escape returns s as a cell a spreadsheet shows as text: a value starting
// with =, +, -, @, a tab or a carriage return is prefixed with an
// apostrophe, which spreadsheets hide and treat as "this is text".
func Escape(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}

// Writer is an encoding/csv writer that escapes every cell it writes.
type Writer struct {
	w   *csv.Writer
	buf []string
}

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: csv.NewWriter(w)} }

// Write writes one record, each cell escaped.
func (w *Writer) Write(record []string) error {
	w.buf = w.buf[:0]
	for _, c := range record {
		w.buf = append(w.buf, Escape(c))
	}
	return w.w.Write(w.buf)
}

// UseCRLF ends lines with \r\n (what Excel writes and expects) instead of \n.
func (w *Writer) UseCRLF(on bool) { w.w.UseCRLF = on }

// Flush writes buffered data to the underlying writer.
func (w *Writer) Flush() { w.w.Flush() }

// Error reports any error of a previous Write or Flush.
func (w *Writer) Error() error { return w.w.Error() }
