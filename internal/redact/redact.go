// Package redact keeps secrets out of text that people or other systems
// will see: it replaces known secret values and strips credentials from URLs.
package redact

import (
	"net/url"
	"strings"
)

// MinSecret is the shortest secret Secrets replaces; shorter strings would
// mangle ordinary words.
const MinSecret = 4

// Secrets replaces every occurrence of each secret in s with "***".
func Secrets(s string, secrets []string) string {
	for _, sec := range secrets {
		if len(sec) >= MinSecret && strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, "***")
		}
	}
	return s
}

// PublicURL returns raw if it is an http(s) URL, without userinfo, query or
// fragment, which may hold credentials; anything else yields "".
func PublicURL(raw string) string {
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
