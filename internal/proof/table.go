package proof

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Judgement says how a figure's ratio is read.
type Judgement int

const (
	// Informational figures have a reference, not a rival: latency during a
	// switch against before it, a long monitor against a short one.
	Informational Judgement = iota
	// AgainstPeer figures compare greenlight with another tool (kubectl):
	// a ratio above 1 means greenlight is slower or heavier.
	AgainstPeer
	// AgainstBound figures compare greenlight with a limit it promises:
	// a ratio above 1 means the promise was broken.
	AgainstBound
	// AgainstTarget figures have an absolute target (zero failed requests)
	// that a ratio cannot express: any value above the target is behind.
	AgainstTarget
)

// Figure is one line of the suite's table: greenlight's value beside its
// peer's, both in Unit.
type Figure struct {
	// Order sorts the table; figures from one section share its tens.
	Order int
	// Name says what was measured, such as "rollout detection, median".
	Name string
	// Unit is what both values are in ("ms", "requests", "MiB"); it is
	// printed after each value.
	Unit string
	// Ours is greenlight's value.
	Ours float64
	// Peer names what Ours is compared with ("kubectl rollout status",
	// "bound", "before the switch"); empty when nothing is.
	Peer string
	// PeerValue is the peer's value in Unit.
	PeerValue float64
	// Judgement says whether a ratio above 1 means greenlight is behind.
	Judgement Judgement
	// Why explains in one line why greenlight is behind, printed under the
	// table when it is.
	Why string
}

// Ratio is Ours divided by PeerValue, and false when there is no peer or
// the division means nothing (a zero or negative peer value).
func (f Figure) Ratio() (float64, bool) {
	if f.Peer == "" || f.Judgement == AgainstTarget || f.PeerValue <= 0 || math.IsNaN(f.Ours) || math.IsNaN(f.PeerValue) {
		return 0, false
	}
	return f.Ours / f.PeerValue, true
}

// Behind reports whether greenlight did worse than its peer, bound or
// target on this figure, so the table owes the reader a why.
func (f Figure) Behind() bool {
	switch f.Judgement {
	case AgainstPeer, AgainstBound:
		r, ok := f.Ratio()
		return ok && r > 1
	case AgainstTarget:
		return f.Ours > f.PeerValue
	}
	return false
}

// Table renders figures as one markdown table sorted by Order, with a why
// line under it for every figure on which greenlight is behind. title is
// printed above the table; notes (one per line) below the whys.
func Table(title string, figures []Figure, notes ...string) string {
	sorted := slices.Clone(figures)
	slices.SortStableFunc(sorted, func(a, b Figure) int { return a.Order - b.Order })
	var b strings.Builder
	if title != "" {
		b.WriteString(title)
		b.WriteString("\n\n")
	}
	b.WriteString("| # | figure | greenlight | compared with | their figure | ratio |\n")
	b.WriteString("|---:|---|---:|---|---:|---:|\n")
	for _, f := range sorted {
		peer, theirs := "—", "—"
		if f.Peer != "" {
			peer, theirs = f.Peer, formatValue(f.PeerValue, f.Unit)
		}
		ratio := "—"
		if r, ok := f.Ratio(); ok {
			ratio = formatRatio(r)
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s |\n", f.Order, cell(f.Name), formatValue(f.Ours, f.Unit), cell(peer), theirs, ratio)
	}
	var whys []string
	for _, f := range sorted {
		if !f.Behind() {
			continue
		}
		why := f.Why
		if why == "" {
			why = "not explained"
		}
		whys = append(whys, fmt.Sprintf("- why #%d (%s) is behind %s: %s", f.Order, f.Name, f.Peer, oneLine(why)))
	}
	if len(whys) > 0 {
		b.WriteString("\n")
		b.WriteString(strings.Join(whys, "\n"))
		b.WriteString("\n")
	}
	if len(notes) > 0 {
		b.WriteString("\n")
		for _, n := range notes {
			b.WriteString(oneLine(n))
			b.WriteString("\n")
		}
	}
	return b.String()
}

// formatValue prints a value with as many decimals as its size needs, so
// 0.42 ms and 1234 ms both read naturally.
func formatValue(v float64, unit string) string {
	var s string
	switch a := math.Abs(v); {
	case math.IsNaN(v):
		return "n/a"
	case v == math.Trunc(v) && a < 1e9:
		s = strconv.FormatFloat(v, 'f', 0, 64)
	case a < 10:
		s = strconv.FormatFloat(v, 'f', 2, 64)
	case a < 100:
		s = strconv.FormatFloat(v, 'f', 1, 64)
	default:
		s = strconv.FormatFloat(v, 'f', 0, 64)
	}
	if unit == "" {
		return s
	}
	return s + " " + unit
}

func formatRatio(r float64) string {
	if r < 0.1 {
		return strconv.FormatFloat(r, 'f', 3, 64) + "×"
	}
	return strconv.FormatFloat(r, 'f', 2, 64) + "×"
}

// cell keeps a value from breaking the markdown table.
func cell(s string) string { return strings.ReplaceAll(oneLine(s), "|", "\\|") }

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// Percentile is the nearest-rank p-th percentile (0 < p ≤ 1) of samples,
// NaN when there are none, so an empty window cannot pass for a zero.
func Percentile(samples []float64, p float64) float64 {
	if len(samples) == 0 {
		return math.NaN()
	}
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	rank := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// The README marks the proof table it carries with these two lines.
const (
	ReadmeTableStart = "<!-- proof table: regenerated by the proof run, do not edit -->"
	ReadmeTableEnd   = "<!-- end of proof table -->"
)

// SpliceReadme replaces what lies between ReadmeTableStart and
// ReadmeTableEnd in readme with table, so one proof run regenerates the
// README's figures; it fails when the markers are missing or out of order.
func SpliceReadme(readme, table string) (string, error) {
	start := strings.Index(readme, ReadmeTableStart)
	end := strings.Index(readme, ReadmeTableEnd)
	if start < 0 || end < start {
		return "", fmt.Errorf("the README has no %q … %q section to replace", ReadmeTableStart, ReadmeTableEnd)
	}
	head := readme[:start+len(ReadmeTableStart)]
	return head + "\n" + strings.TrimSpace(table) + "\n" + readme[end:], nil
}
