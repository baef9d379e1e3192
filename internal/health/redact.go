package health

import (
	"net/url"
	"strings"
)

// minSecretLen is the shortest secret that scrub replaces; replacing shorter
// strings would mangle ordinary words in messages.
const minSecretLen = 4

// redactURL returns raw without userinfo, query and fragment, which is the
// only form of a URL this package prints. An unparseable URL is not printed
// at all because it may still hold credentials.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err == nil && u.Opaque == "" {
		return redacted(u)
	}
	// Without a scheme, "user:pass@host" parses as scheme "user" with opaque
	// data, and "host:port" does not parse; read both as an authority.
	if strings.Contains(raw, "//") {
		return "[unparseable URL]"
	}
	u, err = url.Parse("//" + raw)
	if err != nil || u.Opaque != "" || strings.Contains(u.Path, "@") {
		return "[unparseable URL]"
	}
	return strings.TrimPrefix(redacted(u), "//")
}

// redacted is redactURL for a parsed URL.
func redacted(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	c.User = nil
	c.RawQuery = ""
	c.ForceQuery = false
	c.Fragment = ""
	c.RawFragment = ""
	return c.String()
}

// redactPath drops the query of a request path before it is printed, since
// queries are where API keys tend to travel.
func redactPath(p string) string {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		return p[:i]
	}
	return p
}

// urlSecrets lists the parts of u that must never be printed: the password,
// the whole userinfo and every query value.
func urlSecrets(u *url.URL) []string {
	if u == nil {
		return nil
	}
	var s []string
	if u.User != nil {
		if p, ok := u.User.Password(); ok {
			s = append(s, p, url.QueryEscape(p), url.PathEscape(p))
		}
		s = append(s, u.User.String())
	}
	if u.RawQuery != "" {
		s = append(s, u.RawQuery)
		for _, vs := range u.Query() {
			s = append(s, vs...)
		}
	}
	return s
}

// scrub replaces every secret in msg, a last line of defence for text that
// came from elsewhere (error chains, response bodies).
func scrub(msg string, secrets []string) string {
	for _, s := range secrets {
		if len(s) >= minSecretLen && strings.Contains(msg, s) {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	return msg
}
