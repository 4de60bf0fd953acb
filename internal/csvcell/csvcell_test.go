package csvcell

import (
	"encoding/csv"
	"strings"
	"testing"
)

func TestWriterEscapesFormulas(t *testing.T) {
	in := []string{"=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)", "\tcmd", "\rx", "plain", "", "a=b", "券码,\"quoted\"\nline"}
	want := []string{"'=HYPERLINK(\"http://x\")", "'+1", "'-2", "'@SUM(A1)", "'\tcmd", "'\rx", "plain", "", "a=b", "券码,\"quoted\"\nline"}
	var b strings.Builder
	w := NewWriter(&b)
	if err := w.Write(in); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	if err := w.Error(); err != nil {
		t.Fatal(err)
	}
	got, err := csv.NewReader(strings.NewReader(b.String())).Read()
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		// encoding/csv turns a quoted \r\n into \n; compare what a reader sees.
		if w := strings.ReplaceAll(want[i], "\r", "\n"); got[i] != want[i] && got[i] != w {
			t.Errorf("cell %d: got %q, want %q", i, got[i], want[i])
		}
	}
}
