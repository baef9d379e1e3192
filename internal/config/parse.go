package config

import (
	"crypto/x509"
	"encoding/base64"
	"math"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// The parsers below are pure: they take a trimmed value and return either
// the typed value or a problem phrase such as "is negative". The phrase
// never repeats the value, so the caller decides whether the value may be
// shown (plain inputs) or not (secrets).

// parseBool accepts true/false, yes/no, on/off and 1/0 in any case.
func parseBool(v string) (bool, string) {
	switch strings.ToLower(v) {
	case "true", "yes", "on", "1":
		return true, ""
	case "false", "no", "off", "0":
		return false, ""
	}
	return false, "is not a boolean"
}

// maxSeconds is the largest whole number of seconds a time.Duration holds.
const maxSeconds = math.MaxInt64 / int64(time.Second)

// parseDuration accepts a Go duration ("90s", "5m", "1h30m") or a plain
// non-negative integer meaning seconds ("300"); negative values are an error.
func parseDuration(v string) (time.Duration, string) {
	body, negative := strings.CutPrefix(v, "-")
	if !negative {
		body = strings.TrimPrefix(body, "+")
	}
	if body != "" && isDigits(body) {
		n, err := strconv.ParseInt(body, 10, 64)
		if err != nil || n > maxSeconds {
			return 0, "is too large"
		}
		if negative && n != 0 {
			return 0, "is negative"
		}
		return time.Duration(n) * time.Second, ""
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, "is not a duration"
	}
	if d < 0 {
		return 0, "is negative"
	}
	return d, ""
}

// parsePercent returns a fraction 0..1. The rules keep "10" and "10%"
// equal while still allowing fractions:
//   - a value ending in % is a percentage ("10%", "0.5%");
//   - a bare number above 1 is a percentage ("10", "12.5");
//   - a bare number from 0 to 1 written with a decimal point is a fraction
//     ("0.1" is ten percent, "1.0" is a hundred);
//   - a bare "1" could mean either, so it is refused; "0" is zero.
//
// Anything above 100% is out of range.
func parsePercent(v string) (float64, string) {
	body, percent := strings.CutSuffix(v, "%")
	body = strings.TrimSpace(body)
	body, negative := strings.CutPrefix(body, "-")
	if !isDecimal(body) {
		return 0, "is not a percentage"
	}
	n, err := strconv.ParseFloat(body, 64)
	if err != nil || math.IsInf(n, 0) || math.IsNaN(n) {
		return 0, "is not a percentage"
	}
	if negative && n != 0 {
		return 0, "is negative"
	}
	var f float64
	switch {
	case percent:
		f = n / 100
	case n > 1:
		f = n / 100
	case strings.Contains(body, "."):
		f = n
	case n == 1:
		return 0, "is ambiguous: write 1% for one percent or 100% for all"
	default: // a bare 0
		f = 0
	}
	if f > 1 {
		return 0, "is above 100%"
	}
	return f, ""
}

// formatPercent shows a fraction the way a user writes it: 0.1 → "10%".
func formatPercent(f float64) string {
	return strconv.FormatFloat(math.Round(f*100*1e6)/1e6, 'f', -1, 64) + "%"
}

// parseCount accepts a whole number from lowest to highest.
func parseCount(v string, lowest, highest int) (int, string) {
	body, negative := strings.CutPrefix(v, "-")
	if !isDigits(body) {
		return 0, "is not a whole number"
	}
	n, err := strconv.Atoi(body)
	if err != nil || n > highest {
		return 0, "is above " + strconv.Itoa(highest)
	}
	if negative {
		n = -n
	}
	if n < lowest {
		return 0, "is below " + strconv.Itoa(lowest)
	}
	return n, ""
}

// splitList splits on commas and new lines, trims each item and drops
// empty ones, so both YAML block scalars and "a,b" work.
func splitList(v string) []string {
	var out []string
	for item := range strings.FieldsFuncSeq(v, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' }) {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// checkManifest refuses paths that no file could match.
func checkManifest(p string) string {
	if hasControl(p) {
		return "contains a control character"
	}
	if _, err := filepath.Match(p, ""); err != nil {
		return "is not a valid glob pattern"
	}
	return ""
}

// checkHealthPath requires an absolute URL path without spaces.
func checkHealthPath(p string) string {
	if !strings.HasPrefix(p, "/") {
		return "does not start with /"
	}
	if strings.ContainsFunc(p, unicode.IsSpace) || hasControl(p) {
		return "contains a space or control character"
	}
	if strings.Contains(p, "#") {
		return "contains a fragment (#)"
	}
	return ""
}

// parseEnvironmentURL accepts an absolute http(s) URL without credentials,
// query or fragment and returns it without a trailing slash, so health
// paths can be appended as they are.
func parseEnvironmentURL(v string) (string, string) {
	u, problem := parseHTTPURL(v)
	if problem != "" {
		return "", problem
	}
	if u.User != nil {
		return "", "contains a user name or password"
	}
	if u.RawQuery != "" || u.ForceQuery {
		return "", "has a query string"
	}
	if u.Fragment != "" {
		return "", "has a fragment"
	}
	return strings.TrimRight(u.String(), "/"), ""
}

// parseHTTPURL accepts an absolute http:// or https:// URL with a host.
// url.Parse's own error text is dropped because it quotes the whole value.
func parseHTTPURL(v string) (*url.URL, string) {
	if hasControl(v) || strings.ContainsFunc(v, unicode.IsSpace) {
		return nil, "is not a URL: it contains a space or control character"
	}
	u, err := url.Parse(v)
	if err != nil {
		return nil, "is not a URL"
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, "is not an http:// or https:// URL"
	}
	if u.Opaque != "" || u.Host == "" || u.Hostname() == "" {
		return nil, "has no host"
	}
	return u, ""
}

// checkDNSLabel applies Kubernetes' RFC 1123 label rule (namespaces,
// container names); letterFirst adds RFC 1035's rule for Service names.
func checkDNSLabel(v string, letterFirst bool) string {
	if v == "" {
		return "is empty"
	}
	if len(v) > 63 {
		return "is longer than 63 characters"
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return "may only contain lowercase letters, digits and '-'"
		}
	}
	if v[0] == '-' || v[len(v)-1] == '-' {
		return "must start and end with a letter or digit"
	}
	if letterFirst && !(v[0] >= 'a' && v[0] <= 'z') {
		return "must start with a letter"
	}
	return ""
}

// checkDNSSubdomain applies Kubernetes' RFC 1123 subdomain rule (Deployment
// names): dot-separated labels, at most 253 characters.
func checkDNSSubdomain(v string) string {
	if len(v) > 253 {
		return "is longer than 253 characters"
	}
	for label := range strings.SplitSeq(v, ".") {
		if label == "" {
			return "has an empty part between dots"
		}
		if p := checkDNSLabel(label, false); p != "" {
			return p
		}
	}
	return ""
}

// checkImage refuses references that no registry could resolve; the full
// grammar is left to the container runtime, which reports it better.
func checkImage(v string) string {
	if strings.ContainsFunc(v, unicode.IsSpace) || hasControl(v) {
		return "contains a space or control character"
	}
	if strings.HasPrefix(v, "-") || strings.HasPrefix(v, ":") || strings.HasPrefix(v, "@") || strings.HasSuffix(v, ":") || strings.HasSuffix(v, "@") {
		return "is not an image reference"
	}
	return ""
}

// checkText refuses control characters, which break status contexts,
// annotations and the job summary.
func checkText(v string) string {
	if !utf8.ValidString(v) {
		return "is not valid UTF-8"
	}
	if hasControl(v) {
		return "contains a control character"
	}
	return ""
}

// checkRelativePath accepts a path inside the directory it is relative to:
// a container action shares only the workspace with the runner.
func checkRelativePath(v string) string {
	if p := checkText(v); p != "" {
		return p
	}
	if v == "" {
		return ""
	}
	if filepath.IsAbs(v) || !filepath.IsLocal(v) {
		return "is not a path inside the workspace"
	}
	return ""
}

func hasControl(v string) bool { return strings.ContainsFunc(v, unicode.IsControl) }

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isDecimal accepts "12", "12.5", "12." and ".5" and nothing else, so
// strconv.ParseFloat never sees "Inf", "NaN", hex or exponents.
func isDecimal(s string) bool {
	whole, frac, dot := strings.Cut(s, ".")
	if dot && strings.Contains(frac, ".") {
		return false
	}
	if whole == "" && frac == "" {
		return false
	}
	return (whole == "" || isDigits(whole)) && (frac == "" || isDigits(frac))
}

// show is how a plain (non-secret) value appears in a message: quoted and
// shortened. A value shaped like "user:password@host" may hold credentials
// (a URL with user info), so it is not shown at all.
func show(v string) string {
	if at := strings.LastIndex(v, "@"); at >= 0 && strings.Contains(v[:at], ":") {
		return hidden
	}
	const limit = 64
	if utf8.RuneCountInString(v) > limit {
		r := []rune(v)
		return strconv.Quote(string(r[:limit])+"…") + " (shortened)"
	}
	return strconv.Quote(v)
}

// parseCertificateAuthority decodes base64 of PEM certificates, as a
// kubeconfig's certificate-authority-data holds them.
func parseCertificateAuthority(v string) ([]byte, string) {
	compact := strings.Join(strings.Fields(v), "")
	data, err := base64.StdEncoding.DecodeString(compact)
	if err != nil {
		if strings.Contains(v, "-----BEGIN") {
			return nil, "is PEM, not base64 of the PEM; encode it with base64 -w0"
		}
		return nil, "is not valid base64"
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, "does not decode to a PEM certificate"
	}
	return data, ""
}

// checkOptionalPath accepts an empty value or a path as health paths are.
func checkOptionalPath(p string) string {
	if p == "" {
		return ""
	}
	if strings.Contains(p, "?") {
		return "contains a query (?)"
	}
	return checkHealthPath(p)
}

// checkPort accepts an empty value, a port number or a Kubernetes port name
// (IANA_SVC_NAME: up to 15 lowercase letters, digits and inner hyphens,
// with a letter).
func checkPort(v string) string {
	if v == "" {
		return ""
	}
	if isDigits(v) {
		if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 65535 {
			return "is not a port number from 1 to 65535"
		}
		return ""
	}
	if !portName.MatchString(v) || strings.Contains(v, "--") || len(v) > 15 || !strings.ContainsFunc(v, unicode.IsLetter) {
		return "is not a container port name (up to 15 lowercase letters, digits and hyphens) or number"
	}
	return ""
}

// The classic Prometheus name rules and Kubernetes' port names.
var (
	metricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelName  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	portName   = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
)

func checkMetricName(v string) string {
	if !metricName.MatchString(v) {
		return "is not a Prometheus metric name (letters, digits, _ and :, not starting with a digit)"
	}
	return ""
}

func checkLabelName(v string) string {
	if !labelName.MatchString(v) || strings.HasPrefix(v, "__") {
		return "is not a Prometheus label name (letters, digits and _, not starting with a digit or __)"
	}
	return ""
}
