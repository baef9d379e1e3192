package monitor

import (
	"net/url"
	"strings"
)

// redacted replaces credentials wherever an endpoint is shown.
const redacted = "xxxxx"

// target is one endpoint to probe: raw is what the prober gets, shown is
// what samples, events and results carry.
type target struct {
	raw     string
	shown   string
	secrets []string
}

// newTarget prepares an endpoint for display with any user info in its URL
// replaced, since a monitor's output ends up in job summaries and chat.
func newTarget(raw string) target {
	t := target{raw: raw, shown: raw}
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return t
	}
	if name := u.User.Username(); name != "" {
		t.secrets = append(t.secrets, name, url.QueryEscape(name), url.PathEscape(name))
	}
	if pw, ok := u.User.Password(); ok && pw != "" {
		t.secrets = append(t.secrets, pw, url.QueryEscape(pw), url.PathEscape(pw))
	}
	u.User = url.User(redacted)
	t.shown = u.String()
	return t
}

// scrub removes the endpoint's credentials from text a prober produced,
// such as an error that quotes the URL it failed to reach.
func (t target) scrub(text string) string {
	if len(t.secrets) == 0 || text == "" {
		return text
	}
	text = strings.ReplaceAll(text, t.raw, t.shown)
	for _, s := range t.secrets {
		if s != redacted {
			text = strings.ReplaceAll(text, s, redacted)
		}
	}
	return text
}
