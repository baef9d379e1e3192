package github

import (
	"net/url"
	"strings"
	"unicode/utf8"
)

// MaxDescription is the longest description GitHub accepts on a commit
// status or deployment status, in characters.
const MaxDescription = 140

// minSecret is the shortest secret redact replaces; shorter strings would
// mangle ordinary words.
const minSecret = 4

// description makes s fit GitHub's description field: one line, secrets
// replaced, at most MaxDescription characters, cut on a rune boundary and
// marked with an ellipsis.
func description(s string, secrets []string) string {
	s = strings.Join(strings.Fields(redact(s, secrets)), " ")
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

// redact replaces every secret in s.
func redact(s string, secrets []string) string {
	for _, sec := range secrets {
		if len(sec) >= minSecret && strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, "***")
		}
	}
	return s
}

// publicURL returns raw if it is an http(s) URL, without userinfo, query or
// fragment, which may hold credentials and must not be published on a
// commit; anything else yields "".
func publicURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ""
	}
	u.User = nil
	u.RawQuery = ""
	u.ForceQuery = false
	u.Fragment = ""
	u.RawFragment = ""
	return u.String()
}
