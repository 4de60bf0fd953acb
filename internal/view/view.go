// Package view formats values for pages, in one place: counts with
// thousands separators, amounts of money, sizes, and times in the console's
// time zone with that zone named. Handlers and templates call these instead
// of formatting on their own, so a number or a time looks the same on every
// page.
package view

import (
	"strconv"
	"strings"
	"time"
)

// None is what a page shows for a value that is not known.
const None = "—"

// Int formats a count with thousands separators: 1234567 → "1,234,567".
func Int(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// IntOr formats *n as Int, or None when n is nil (not read yet).
func IntOr(n *int64) string {
	if n == nil {
		return None
	}
	return Int(*n)
}

// Money formats an amount in fen (分) as yuan with two decimals and
// thousands separators: 123456789 → "1,234,567.89".
func Money(fen int64) string {
	sign := ""
	if fen < 0 {
		sign, fen = "-", -fen
	}
	return sign + Int(fen/100) + "." + strconv.FormatInt(100+fen%100, 10)[1:]
}

// Bytes formats a size in B, KB, MB or GB (binary multiples, one decimal
// at most): 200000 → "195.3 KB".
func Bytes(n int64) string {
	switch {
	case n >= 1<<30:
		return oneDecimal(float64(n)/(1<<30)) + " GB"
	case n >= 1<<20:
		return oneDecimal(float64(n)/(1<<20)) + " MB"
	case n >= 1<<10:
		return oneDecimal(float64(n)/(1<<10)) + " KB"
	}
	return Int(n) + " B"
}

func oneDecimal(f float64) string {
	return strings.TrimSuffix(strings.TrimRight(strconv.FormatFloat(f, 'f', 1, 64), "0"), ".")
}

// timeLayout is a time on a page: to the second, then the zone's offset.
const timeLayout = "2006-01-02 15:04:05"

// Time formats t in loc with the zone's offset named, e.g.
// "2026-03-01 10:00:00 UTC+08:00"; the zero time is None.
func Time(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return None
	}
	t = t.In(loc)
	return t.Format(timeLayout) + " UTC" + t.Format("-07:00")
}

// TimeOr formats *t as Time, or None when t is nil.
func TimeOr(t *time.Time, loc *time.Location) string {
	if t == nil {
		return None
	}
	return Time(*t, loc)
}

// Zone names a time zone with its offset at now, e.g.
// "Asia/Shanghai (UTC+08:00)", for a page that says in which zone times
// are entered.
func Zone(loc *time.Location, now time.Time) string {
	return loc.String() + " (UTC" + now.In(loc).Format("-07:00") + ")"
}
