package report

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/ebeautything/greenlight/internal/monitor"
)

// rollbackMark is appended to the x-axis label of the point where the
// rollback started.
const rollbackMark = "⟲"

// chartData is a series laid out for Mermaid: one label and one value per
// point, at most monitor.MaxSeriesPoints of them.
type chartData struct {
	labels    []string
	latencyMS []float64
	errors    []int64
	width     time.Duration
	// start is the time the x axis begins at.
	start time.Time
	// marked is the index of the rollback point, or -1.
	marked int
}

// maxChartPoints is how many points a chart draws: every point has an
// x-axis label, and more than this many labels overlap at GitHub's width.
const maxChartPoints = 60

// mergePoints halves the series by merging neighbours until it has at most
// n points, keeping counts, errors, extremes and the weighted average.
func mergePoints(series []monitor.SeriesPoint, n int) []monitor.SeriesPoint {
	for len(series) > n {
		merged := make([]monitor.SeriesPoint, 0, (len(series)+1)/2)
		for i := 0; i < len(series); i += 2 {
			a := series[i]
			if i+1 < len(series) {
				b := series[i+1]
				total := a.Count + b.Count
				if total > 0 {
					a.Avg = time.Duration((float64(a.Avg)*float64(a.Count) + float64(b.Avg)*float64(b.Count)) / float64(total))
				}
				a.Count = total
				a.Errors += b.Errors
				a.Min = min(a.Min, b.Min)
				a.Max = max(a.Max, b.Max)
			}
			a.Width *= 2
			merged = append(merged, a)
		}
		series = merged
	}
	return series
}

// newChartData lays out series, marking the point in which rollbackAt
// falls (or the last one, if it falls after the series ends).
func newChartData(series []monitor.SeriesPoint, rollbackAt time.Time) chartData {
	if len(series) > monitor.MaxSeriesPoints {
		series = series[len(series)-monitor.MaxSeriesPoints:]
	}
	series = mergePoints(series, maxChartPoints)
	c := chartData{marked: -1}
	if len(series) == 0 {
		return c
	}
	origin := series[0].Start
	c.width = series[0].Width
	c.start = origin
	for i, p := range series {
		c.labels = append(c.labels, fmtTick(p.Start.Sub(origin), c.width))
		c.latencyMS = append(c.latencyMS, roundMS(p.Avg))
		c.errors = append(c.errors, p.Errors)
		if !rollbackAt.IsZero() && !rollbackAt.Before(p.Start) {
			c.marked = i
		}
	}
	if c.marked >= 0 {
		c.labels[c.marked] += " " + rollbackMark
	}
	return c
}

// fmtTick labels a point by its start: whole seconds as fmtElapsed writes
// them, unless points are narrower than a second, when two points would
// share a label; then with the tenths (1.5s, 2m03.5s).
func fmtTick(d, width time.Duration) string {
	if width >= time.Second || width <= 0 {
		return fmtElapsed(d)
	}
	d = d.Round(100 * time.Millisecond)
	tenths := int(d%time.Second) / int(100*time.Millisecond)
	return strings.TrimSuffix(fmtElapsed(d.Truncate(time.Second)), "s") + "." + strconv.Itoa(tenths) + "s"
}

// fmtWidth is the width of one point: 500ms, 1s, 2m.
func fmtWidth(d time.Duration) string {
	if d > 0 && d < time.Second {
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
	return fmtElapsed(d)
}

// thresholdOffScale is how far above the data an alert threshold may be
// and still be drawn: beyond it, drawing the threshold would press the
// data flat against the x axis, so it is named in the title instead.
const thresholdOffScale = 4

// roundMS converts d to milliseconds with one decimal.
func roundMS(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Millisecond)*10) / 10
}

// niceCeil rounds v up to a round step of its power of ten, so the y axis
// ends on a round number without wasting half the chart.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func fmtNum(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// quoted renders labels as a Mermaid list of double-quoted strings; labels
// are made here, never taken from the app, and hold no quotes.
func quoted(labels []string) string {
	q := make([]string, len(labels))
	for i, l := range labels {
		q[i] = strconv.Quote(strings.ReplaceAll(l, `"`, "'"))
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// Plot colours: the default palette draws the first line in a pale
// lavender that is hard to see on white.
const (
	latencyColor   = "#0969da"
	thresholdColor = "#cf222e"
	errorColor     = "#cf222e"
)

// chartConfig is the Mermaid front matter every chart starts with: wide
// enough for GitHub's summary column, labels turned upright so that up to
// maxChartPoints of them fit, and visible plot colours.
func chartConfig(colors ...string) string {
	return "---\n" +
		"config:\n" +
		"  xyChart:\n" +
		"    width: 900\n" +
		"    height: 420\n" +
		"    xAxis:\n" +
		"      labelFontSize: 11\n" +
		"      labelRotation: -90\n" +
		"  themeVariables:\n" +
		"    xyChart:\n" +
		"      plotColorPalette: \"" + strings.Join(colors, ", ") + "\"\n" +
		"---\n"
}

// thresholdDrawn reports whether the latency chart draws the alert
// threshold as its second line: not when there is none, nor when it is so
// far above the data that the line would flatten it.
func thresholdDrawn(c chartData, threshold time.Duration) bool {
	if threshold <= 0 {
		return false
	}
	top := 0.0
	for _, v := range c.latencyMS {
		top = max(top, v)
	}
	return top == 0 || roundMS(threshold) <= thresholdOffScale*top
}

// latencyChart renders the latency line and the alert threshold as a
// Mermaid xychart; without a threshold the second line is left out.
func latencyChart(c chartData, threshold time.Duration) string {
	values := make([]string, len(c.latencyMS))
	top := 0.0
	for i, v := range c.latencyMS {
		values[i] = fmtNum(v)
		top = max(top, v)
	}
	thresholdMS := roundMS(threshold)
	title := fmt.Sprintf("Latency, ms (average per %s)", fmtWidth(c.width))
	drawThreshold := thresholdDrawn(c, threshold)
	if threshold > 0 && !drawThreshold {
		title += fmt.Sprintf("; alert threshold %s ms, far above", fmtNum(thresholdMS))
	}
	if drawThreshold {
		top = max(top, thresholdMS)
	}
	top = niceCeil(top * 1.1)

	var b strings.Builder
	if drawThreshold {
		b.WriteString(chartConfig(latencyColor, thresholdColor))
	} else {
		b.WriteString(chartConfig(latencyColor))
	}
	b.WriteString("xychart-beta\n")
	fmt.Fprintf(&b, "    title \"%s\"\n", title)
	fmt.Fprintf(&b, "    x-axis %s\n", quoted(c.labels))
	fmt.Fprintf(&b, "    y-axis \"ms\" 0 --> %s\n", fmtNum(top))
	fmt.Fprintf(&b, "    line [%s]\n", strings.Join(values, ", "))
	if drawThreshold {
		th := make([]string, len(c.latencyMS))
		for i := range th {
			th[i] = fmtNum(thresholdMS)
		}
		fmt.Fprintf(&b, "    line [%s]\n", strings.Join(th, ", "))
	}
	return codeBlock("mermaid", b.String())
}

// errorChart renders failed probes per point as a Mermaid bar chart.
func errorChart(c chartData) string {
	values := make([]string, len(c.errors))
	var top int64
	for i, v := range c.errors {
		values[i] = strconv.FormatInt(v, 10)
		top = max(top, v)
	}
	var b strings.Builder
	b.WriteString(chartConfig(errorColor))
	b.WriteString("xychart-beta\n")
	fmt.Fprintf(&b, "    title \"Failed probes (per %s)\"\n", fmtWidth(c.width))
	fmt.Fprintf(&b, "    x-axis %s\n", quoted(c.labels))
	// At least 10, so the axis ticks are whole probes.
	fmt.Fprintf(&b, "    y-axis \"failed probes\" 0 --> %s\n", fmtNum(niceCeil(float64(max(top, 10)))))
	fmt.Fprintf(&b, "    bar [%s]\n", strings.Join(values, ", "))
	return codeBlock("mermaid", b.String())
}
