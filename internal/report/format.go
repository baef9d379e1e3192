package report

import (
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ebeautything/greenlight/internal/event"
)

// oneLine folds s onto one line and drops control and bidirectional
// formatting characters, so text from a pod or an app can neither break
// the layout nor disguise itself.
func oneLine(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		switch {
		case r == '\n' || r == '\r' || r == '\t' || r == ' ':
			space = true
			continue
		case r == utf8.RuneError, unicode.IsControl(r), isBidi(r):
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}

// isBidi reports the Unicode characters that reorder text when displayed.
func isBidi(r rune) bool {
	return (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069) || r == 0x200E || r == 0x200F || r == 0x061C
}

// truncate cuts s to at most n runes, marking the cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i := 0
	for pos := range s {
		if i == n-1 {
			return s[:pos] + "…"
		}
		i++
	}
	return s
}

// md escapes text from the app, the cluster or configuration for use in
// Markdown, inside or outside a table cell: HTML cannot open a tag, and
// Markdown syntax, emphasis, links, code, math or a table cell break, is
// shown as typed, and a URL is not turned into a link. The result is one
// line of at most limit runes.
func md(s string, limit int) string {
	s = truncate(oneLine(s), limit)
	var b strings.Builder
	b.Grow(len(s) + 8)
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '\\', '`', '*', '_', '[', ']', '|', '~', '$', '!', '#', '{', '}':
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	return breakAutolinks(b.String())
}

// breakAutolinks escapes what would start a GFM extended autolink ("://"
// and a word-initial "www."), since GitHub turns bare URLs into links and a
// pod message must not plant one.
func breakAutolinks(s string) string {
	s = strings.ReplaceAll(s, "://", `\://`)
	if !strings.Contains(strings.ToLower(s), "www.") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 4)
	for i := 0; i < len(s); i++ {
		if i+4 <= len(s) && strings.EqualFold(s[i:i+4], "www.") && (i == 0 || !isWordByte(s[i-1])) {
			b.WriteString(s[i : i+3])
			b.WriteString(`\.`)
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isWordByte(c byte) bool {
	return c == '_' || ('0' <= c && c <= '9') || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

// code renders s as an inline code span, which shows HTML literally. In a
// table cell a pipe must still be escaped, since GitHub splits cells before
// it parses code spans.
func code(s string, limit int, cell bool) string {
	s = truncate(oneLine(s), limit)
	if s == "" {
		return ""
	}
	if cell {
		s = strings.ReplaceAll(s, "|", `\|`)
	}
	longest, run := 0, 0
	for _, r := range s {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	fence := strings.Repeat("`", longest+1)
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		s = " " + s + " "
	}
	return fence + s + fence
}

// codeBlock renders s as a fenced code block whose fence no line of s can
// close.
func codeBlock(lang, s string) string {
	longest := 0
	for line := range strings.SplitSeq(s, "\n") {
		trimmed := strings.TrimLeft(line, " ")
		run := len(trimmed) - len(strings.TrimLeft(trimmed, "`"))
		longest = max(longest, run)
	}
	fence := strings.Repeat("`", max(3, longest+1))
	clean := strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' {
			return r
		}
		if unicode.IsControl(r) || isBidi(r) {
			return -1
		}
		return r
	}, strings.TrimRight(s, "\n"))
	return fence + lang + "\n" + clean + "\n" + fence + "\n"
}

// safeURL returns u if it is an http or https URL, without any user
// information (a URL with credentials must never reach a report), escaped
// so it cannot end a Markdown link early; "" otherwise.
func safeURL(u string) string {
	p, err := url.Parse(strings.TrimSpace(u))
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return ""
	}
	p.User = nil
	s := p.String()
	return strings.NewReplacer("(", "%28", ")", "%29", "<", "%3C", ">", "%3E", " ", "%20", `"`, "%22", "`", "%60", "|", "%7C").Replace(s)
}

// link renders a Markdown link whose text is escaped; without a usable URL
// it is the text alone.
func link(text, u string) string {
	if su := safeURL(u); su != "" {
		return "[" + text + "](" + su + ")"
	}
	return text
}

// fmtDuration renders d compactly for people: 850µs, 4.2ms, 123ms, 2.1s,
// 31m12s, 1h02m.
func fmtDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < 10*time.Millisecond:
		return trimZero(fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond))) + "ms"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Round(time.Millisecond).Milliseconds())
	case d < time.Minute:
		return trimZero(fmt.Sprintf("%.1f", d.Seconds())) + "s"
	case d < time.Hour:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		d = d.Round(time.Minute)
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
}

// fmtElapsed renders an offset on a chart axis: 0s, 20s, 1m, 1m20s, 1h05m.
func fmtElapsed(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d <= 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		m, s := int(d.Minutes()), int(d.Seconds())%60
		if s == 0 {
			return fmt.Sprintf("%dm", m)
		}
		return fmt.Sprintf("%dm%02ds", m, s)
	default:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
}

// fmtOffset renders when something happened relative to base: +2m10s.
func fmtOffset(t, base time.Time) string {
	if t.IsZero() {
		return ""
	}
	if base.IsZero() || t.Before(base) {
		return t.UTC().Format("15:04:05Z")
	}
	return "+" + fmtElapsed(t.Sub(base))
}

func trimZero(s string) string {
	return strings.TrimSuffix(s, ".0")
}

// fmtPercent renders a fraction as a percentage with up to two decimals.
func fmtPercent(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "n/a"
	}
	s := strconv.FormatFloat(math.Round(f*10000)/100, 'f', 2, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s + "%"
}

// fmtObserved renders a verdict figure in its unit.
func fmtObserved(v float64, unit string) string {
	switch unit {
	case "seconds":
		return fmtDuration(time.Duration(v * float64(time.Second)))
	case "ratio":
		return fmtPercent(v)
	case "probes":
		return strconv.FormatFloat(v, 'f', -1, 64) + " probes"
	default:
		return strconv.FormatFloat(v, 'f', -1, 64) + " " + unit
	}
}

// statusTitle is the headline of a run's status with its emoji.
func statusTitle(s event.Status) (emoji, title string) {
	switch s {
	case event.StatusSucceeded:
		return "✅", "Deploy succeeded"
	case event.StatusFailed:
		return "❌", "Deploy failed"
	case event.StatusRolledBack:
		return "↩️", "Rolled back"
	case event.StatusRollbackFailed:
		return "🚨", "Rollback failed"
	case event.StatusAwaitingPromotion:
		return "⏸️", "Awaiting promotion"
	case event.StatusRejected:
		return "🚫", "Rejected"
	case "":
		return "⏳", "Deploy in progress"
	default:
		return "❔", "Deploy ended: " + string(s)
	}
}

// outcomeEmoji marks a stage outcome.
func outcomeEmoji(o event.Outcome) string {
	switch o {
	case event.Succeeded:
		return "✅"
	case event.Failed:
		return "❌"
	case event.Skipped:
		return "⏭️"
	case event.Cancelled:
		return "⏹️"
	default:
		return "⏳"
	}
}

// outcomeMark is outcomeEmoji for terminals that may lack emoji fonts.
func outcomeMark(o event.Outcome) string {
	switch o {
	case event.Succeeded:
		return "ok"
	case event.Failed:
		return "FAILED"
	case event.Skipped:
		return "skipped"
	case event.Cancelled:
		return "cancelled"
	default:
		return "running"
	}
}
