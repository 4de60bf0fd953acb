package handlers

import (
	"testing"
	"time"
)

func TestParseAuditTime(t *testing.T) {
	sh, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Skip("no time zone database")
	}
	utc := func(s string) time.Time {
		v, _ := time.Parse(time.RFC3339, s)
		return v
	}
	for _, tc := range []struct {
		in   string
		end  bool
		want time.Time
		ok   bool
	}{
		{"2026-03-01T10:00", false, utc("2026-03-01T02:00:00Z"), true}, // datetime-local
		{"2026-03-01T10:00:30", false, utc("2026-03-01T02:00:30Z"), true},
		{" 2026-03-01 10:00 ", false, utc("2026-03-01T02:00:00Z"), true}, // typed
		{"2026-03-01", false, utc("2026-02-28T16:00:00Z"), true},         // a day starts at midnight in Shanghai
		{"2026-03-01", true, utc("2026-03-01T16:00:00Z"), true},          // and an end date includes that day
		{"2026-03-01T10:00", true, utc("2026-03-01T02:00:00Z"), true},
		{"yesterday", false, time.Time{}, false},
		{"2026-02-30", false, time.Time{}, false},
		{"2026-03-01T25:00", false, time.Time{}, false},
	} {
		got, ok := parseAuditTime(tc.in, sh, tc.end)
		if ok != tc.ok || !got.Equal(tc.want) {
			t.Errorf("parseAuditTime(%q, end=%v) = %v, %v; want %v, %v", tc.in, tc.end, got, ok, tc.want, tc.ok)
		}
	}
	if got := inputTime(utc("2026-03-01T02:00:00Z").In(sh)); got != "2026-03-01T10:00" {
		t.Errorf("inputTime = %q", got)
	}
	if got := zoneLabel(sh, utc("2026-03-01T02:00:00Z")); got != "Asia/Shanghai (UTC+08:00)" {
		t.Errorf("zoneLabel = %q", got)
	}
}
