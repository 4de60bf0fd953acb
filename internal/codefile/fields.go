package codefile

import "bytes"

// splitter splits one CSV line into cells, following RFC 4180 as strictly as
// encoding/csv does without LazyQuotes, except that a quoted cell cannot
// span lines: a line is the unit of error recovery, so that one stray quote
// makes one row invalid instead of swallowing the rest of the file.
//
// It works on raw bytes in either supported encoding (see text.go) and
// reuses its buffers, so splitting allocates nothing in the steady state.
type splitter struct {
	cells [][]byte
	buf   []byte // unescaped contents of quoted cells
}

// split returns the cells of line (without its line terminator). The cells
// alias line or s's buffer and are valid until the next call. A non-empty
// Reason means the line is not well-formed CSV.
func (s *splitter) split(line []byte) ([][]byte, Reason) {
	s.cells = s.cells[:0]
	if bytes.IndexByte(line, '"') < 0 {
		// Fast path, by far the most common: no quotes at all.
		for {
			i := bytes.IndexByte(line, ',')
			if i < 0 {
				s.cells = append(s.cells, line)
				return s.cells, ""
			}
			s.cells = append(s.cells, line[:i])
			line = line[i+1:]
		}
	}
	// Unescaped cell contents are never longer than the line, so with this
	// capacity appending never reallocates and earlier cells stay valid.
	if cap(s.buf) < len(line) {
		s.buf = make([]byte, 0, len(line))
	}
	s.buf = s.buf[:0]
	for {
		if len(line) > 0 && line[0] == '"' {
			line = line[1:]
			start := len(s.buf)
			for {
				i := bytes.IndexByte(line, '"')
				if i < 0 {
					return nil, ReasonUnterminatedQuote
				}
				s.buf = append(s.buf, line[:i]...)
				line = line[i+1:]
				if len(line) > 0 && line[0] == '"' { // "" is an escaped quote
					s.buf = append(s.buf, '"')
					line = line[1:]
					continue
				}
				break
			}
			s.cells = append(s.cells, s.buf[start:len(s.buf):len(s.buf)])
			if len(line) == 0 {
				return s.cells, ""
			}
			if line[0] != ',' {
				return nil, ReasonBadQuote
			}
			line = line[1:]
			continue
		}
		i := bytes.IndexByte(line, ',')
		cell := line
		if i >= 0 {
			cell = line[:i]
		}
		if bytes.IndexByte(cell, '"') >= 0 {
			return nil, ReasonBadQuote
		}
		s.cells = append(s.cells, cell)
		if i < 0 {
			return s.cells, ""
		}
		line = line[i+1:]
	}
}

// blank reports whether every cell holds only spaces and tabs. Such rows
// (including ",,," rows that Excel writes for formatted but empty rows) are
// skipped like empty lines.
func blank(cells [][]byte) bool {
	for _, c := range cells {
		for _, b := range c {
			if b != ' ' && b != '\t' {
				return false
			}
		}
	}
	return true
}
