package templates

import (
	"strconv"
	"strings"
)

// ChartView is a line chart of codes available and sent over time, drawn
// as SVG on the server (no script), with the same figures as a table for
// screen readers and for anyone who would rather read them.
type ChartView struct {
	ID         string
	Title      string
	Available  string // SVG polyline points
	Sent       string
	YMax       string // the top of the scale, formatted
	XStart     string
	XEnd       string
	LegendAvl  string
	LegendSent string
	ColTime    string
	TableLabel string
	Rows       []ChartRow
}

// ChartRow is one point of a chart, formatted.
type ChartRow struct {
	Time, Available, Sent string
}

// Chart drawing area, in SVG user units.
const (
	chartW   = 600
	chartH   = 160
	chartPad = 4
)

// NewChart lays out a chart: times are the formatted bucket ends, one per
// value; format renders counts.
func NewChart(id, title string, times []string, avail, sent []int64, format func(int64) string, legendAvl, legendSent, colTime, tableLabel string) ChartView {
	v := ChartView{ID: id, Title: title, LegendAvl: legendAvl, LegendSent: legendSent, ColTime: colTime, TableLabel: tableLabel}
	var top int64 = 1
	for i := range times {
		top = max(top, avail[i], sent[i])
	}
	v.YMax = format(top)
	if len(times) > 0 {
		v.XStart, v.XEnd = times[0], times[len(times)-1]
	}
	v.Available, v.Sent = points(avail, top), points(sent, top)
	for i := range times {
		v.Rows = append(v.Rows, ChartRow{Time: times[i], Available: format(avail[i]), Sent: format(sent[i])})
	}
	return v
}

func points(vals []int64, top int64) string {
	if len(vals) == 1 { // one snapshot so far: a level line across, not an invisible dot
		vals = []int64{vals[0], vals[0]}
	}
	var b strings.Builder
	n := len(vals)
	for i, val := range vals {
		x := float64(chartW) / 2
		if n > 1 {
			x = float64(i) * chartW / float64(n-1)
		}
		y := chartPad + (chartH-2*chartPad)*(1-float64(val)/float64(top))
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatFloat(x, 'f', 1, 64))
		b.WriteByte(',')
		b.WriteString(strconv.FormatFloat(y, 'f', 1, 64))
	}
	return b.String()
}
