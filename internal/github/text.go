package github

import (
	"github.com/ebeautything/greenlight/internal/redact"
	"strings"
	"unicode/utf8"
)

// MaxDescription is the longest description GitHub accepts on a commit
// status or deployment status, in characters.
const MaxDescription = 140

// description makes s fit GitHub's description field: one line, secrets
// replaced, at most MaxDescription characters, cut on a rune boundary and
// marked with an ellipsis.
func description(s string, secrets []string) string {
	s = strings.Join(strings.Fields(redact.Secrets(s, secrets)), " ")
	return truncate(s, MaxDescription)
}

// truncate returns s cut to at most n runes, ending in "…" when cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	i, count := 0, 0
	for i = range s {
		if count == n-1 {
			break
		}
		count++
	}
	return strings.TrimRightFunc(s[:i], func(r rune) bool { return r == ' ' }) + "…"
}
