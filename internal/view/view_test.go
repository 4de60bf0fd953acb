package view

import (
	"testing"
	"time"
)

func TestFormats(t *testing.T) {
	sh, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
	n := int64(1000)
	for _, tc := range []struct{ got, want string }{
		{Int(0), "0"},
		{Int(999), "999"},
		{Int(1000), "1,000"},
		{Int(1234567), "1,234,567"},
		{Int(-20002), "-20,002"},
		{Int(-999), "-999"},
		{IntOr(nil), "—"},
		{IntOr(&n), "1,000"},
		{Money(0), "0.00"},
		{Money(5), "0.05"},
		{Money(123456789), "1,234,567.89"},
		{Money(-1050), "-10.50"},
		{Bytes(512), "512 B"},
		{Bytes(2048), "2 KB"},
		{Bytes(200000), "195.3 KB"},
		{Bytes(100 << 20), "100 MB"},
		{Bytes(3 << 30), "3 GB"},
		{Time(at, sh), "2026-03-01 10:00:00 UTC+08:00"},
		{Time(at, time.UTC), "2026-03-01 02:00:00 UTC+00:00"},
		{Time(time.Time{}, sh), "—"},
		{TimeOr(nil, sh), "—"},
		{Zone(sh, at), "Asia/Shanghai (UTC+08:00)"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
