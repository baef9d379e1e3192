package ops

import (
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// ANSI colors, used only when the caller says the output is a terminal.
const (
	colorRed    = "31"
	colorGreen  = "32"
	colorYellow = "33"
	colorDim    = "2"
	colorBold   = "1"
)

// painter colors text on a terminal and leaves it alone elsewhere.
type painter bool

func (p painter) paint(s, code string) string {
	if !p || code == "" || s == "" {
		return s
	}
	return "\033[" + code + "m" + s + "\033[0m"
}

// cell is one table cell: its text and its color on a terminal.
type cell struct {
	text, color string
}

// writeTable writes rows under a header, columns padded by the plain
// text's width so colors do not shift them. The last column is not padded.
func writeTable(w io.Writer, p painter, indent string, header []string, rows [][]cell) {
	widths := make([]int, len(header))
	for i, h := range header {
		widths[i] = utf8.RuneCountInString(h)
	}
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(c.text))
		}
	}
	line := func(cells []cell) {
		var b strings.Builder
		b.WriteString(indent)
		for i, c := range cells {
			if i == len(cells)-1 {
				b.WriteString(p.paint(c.text, c.color))
				break
			}
			b.WriteString(p.paint(c.text, c.color))
			b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c.text)+2))
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	head := make([]cell, len(header))
	for i, h := range header {
		head[i] = cell{h, colorDim}
	}
	line(head)
	for _, r := range rows {
		line(r)
	}
}

// resultColor colors a history result.
func resultColor(result string) string {
	switch result {
	case "succeeded":
		return colorGreen
	case "rolled-back":
		return colorYellow
	case "failed", "rollback-failed":
		return colorRed
	}
	return ""
}

// formatAge reads "45s ago", "12m ago", "5h ago" or "3d ago"; a time after
// now (a skewed clock) reads "just now".
func formatAge(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
}

// formatDuration reads "850ms", "12s" or "4m12s"; zero reads "-".
func formatDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// formatLatency reads "12ms" or "1.25s".
func formatLatency(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(10 * time.Millisecond).String()
}

// orDash stands a dash in for an empty value.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// truncate cuts s to at most n characters, marking the cut.
func truncate(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// shortID shows a commit SHA as git does, seven characters; other ids whole.
func shortID(id string) string {
	if len(id) == 40 && strings.Trim(id, "0123456789abcdef") == "" {
		return id[:7]
	}
	return id
}

// mdCell makes text safe inside a markdown table cell.
func mdCell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	s = strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;").Replace(s)
	if s == "" {
		return "–"
	}
	return s
}

// mdCode shows a name or image as code in markdown; empty reads "–".
func mdCode(s string) string {
	if s == "" {
		return "–"
	}
	return "`" + strings.ReplaceAll(s, "`", "") + "`"
}
