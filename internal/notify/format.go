package notify

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"time"
)

// marshal encodes v without HTML escaping, so "<" and "&" reach the
// receiver as written (Slack's own link syntax uses "<" and ">").
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// formatSeconds renders a latency in seconds for people: "120ms", "3.2s".
func formatSeconds(s float64) string {
	if math.IsNaN(s) || math.IsInf(s, 0) {
		return "n/a"
	}
	return formatDuration(time.Duration(s * float64(time.Second)))
}

// formatDuration rounds d to what people read: milliseconds below a
// minute, seconds above.
func formatDuration(d time.Duration) string {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second).String()
	case d >= time.Millisecond:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Microsecond).String()
}

// formatPercent renders a fraction as a percentage with at most two
// decimals and no trailing zeros: "25%", "99.5%".
func formatPercent(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "n/a"
	}
	return strconv.FormatFloat(math.Round(f*100*100)/100, 'f', -1, 64) + "%"
}

// formatFigure renders a rule's figure in its unit.
func formatFigure(v float64, unit string) string {
	switch unit {
	case "seconds":
		return formatSeconds(v)
	case "ratio":
		return formatPercent(v)
	case "probes":
		return strconv.FormatFloat(v, 'f', -1, 64) + " in a row"
	}
	return strconv.FormatFloat(v, 'g', 6, 64)
}
