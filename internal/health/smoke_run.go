package health

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// SmokeResult is the outcome of one smoke test.
type SmokeResult struct {
	Name   string `json:"name"`
	Method string `json:"method"`
	// Path is the request path without its query.
	Path   string `json:"path"`
	Passed bool   `json:"passed"`
	// StatusCode is zero when no answer arrived.
	StatusCode int           `json:"statusCode,omitempty"`
	Latency    time.Duration `json:"latency"`
	Timing     Timing        `json:"timing"`
	// Failure lists every unmet expectation, or the transport error.
	Failure string `json:"failure,omitempty"`
}

// RunSmokeTests runs the suite's tests in order and reports each. A
// non-empty token is sent as a bearer token to tests that set no
// Authorization header themselves, except through the service proxy, which
// does not forward it. ctx bounds the whole run.
func RunSmokeTests(ctx context.Context, target Target, suite SmokeSuite, token string) []SmokeResult {
	out := make([]SmokeResult, 0, len(suite.Tests))
	for _, t := range suite.Tests {
		out = append(out, runSmokeTest(ctx, target, t, token))
	}
	return out
}

func runSmokeTest(ctx context.Context, target Target, t SmokeTest, token string) SmokeResult {
	secrets := secretsOf(target, token)
	header := http.Header{}
	for k, v := range t.Headers {
		header.Set(k, v)
		if sensitiveHeader(k) {
			secrets = append(secrets, v)
			// "Basic xyz", "Bearer xyz": the credential alone is secret too.
			if _, cred, ok := strings.Cut(v, " "); ok {
				secrets = append(secrets, strings.TrimSpace(cred))
			}
		}
	}
	auth := authNone
	if token != "" && header.Get("Authorization") == "" {
		if target.proxied {
			auth = authNotForwarded
		} else {
			auth = authSent
			header.Set("Authorization", "Bearer "+token)
		}
	}
	var body []byte
	if t.Body != "" {
		body = []byte(t.Body)
	}
	timeout := t.Timeout
	if timeout <= 0 {
		timeout = DefaultSmokeTimeout
	}
	resp, err := target.do(ctx, request{method: t.Method, path: t.Path, header: header, body: body, timeout: timeout, limit: smokeBodyLimit})
	res := SmokeResult{
		Name:       t.Name,
		Method:     t.Method,
		Path:       redactPath(t.Path),
		StatusCode: resp.statusCode,
		Latency:    resp.timing.Total,
		Timing:     resp.timing,
	}
	if err != nil {
		res.Failure = scrub(err.Error(), secrets)
		return res
	}
	problems := smokeProblems(t.Expect, resp)
	if len(problems) > 0 && auth == authNotForwarded &&
		(resp.statusCode == http.StatusUnauthorized || resp.statusCode == http.StatusForbidden) {
		problems = append(problems, "the API server's service proxy does not forward the bearer token")
	}
	res.Passed = len(problems) == 0
	res.Failure = scrub(strings.Join(problems, "; "), secrets)
	return res
}

// smokeProblems lists the expectations an answer does not meet; it is pure.
func smokeProblems(exp SmokeExpect, resp response) []string {
	var problems []string
	if resp.statusCode != exp.Status {
		problems = append(problems, fmt.Sprintf("status %d %s, want %d", resp.statusCode, http.StatusText(resp.statusCode), exp.Status))
	}
	if exp.Contains != "" && !strings.Contains(string(resp.body), exp.Contains) {
		msg := fmt.Sprintf("body does not contain %q", clip(exp.Contains, 100))
		if resp.truncated {
			msg += " (only the first 4 MiB were read)"
		}
		problems = append(problems, msg)
	}
	if len(exp.JSON) > 0 {
		var doc any
		if err := json.Unmarshal(resp.body, &doc); err != nil {
			problems = append(problems, "body is not JSON, so the json expectations cannot be checked")
		} else {
			for _, p := range sortedKeys(exp.JSON) {
				got, err := LookupJSON(doc, p)
				switch {
				case err != nil:
					problems = append(problems, fmt.Sprintf("json %s: %v", p, err))
				case !reflect.DeepEqual(normalizeJSON(got), normalizeJSON(exp.JSON[p])):
					problems = append(problems, fmt.Sprintf("json %s is %s, want %s", p, jsonText(got), jsonText(exp.JSON[p])))
				}
			}
		}
	}
	if exp.MaxLatency > 0 && resp.timing.Total > exp.MaxLatency {
		problems = append(problems, fmt.Sprintf("latency %s exceeds max-latency %s", roundDuration(resp.timing.Total), exp.MaxLatency))
	}
	return problems
}

// LookupJSON follows a dotted path such as "data.items.0.id" through a
// value decoded by encoding/json: object keys by name, array elements by
// index.
func LookupJSON(doc any, path string) (any, error) {
	cur := doc
	walked := "$"
	for _, seg := range strings.Split(path, ".") {
		switch v := cur.(type) {
		case map[string]any:
			next, ok := v[seg]
			if !ok {
				return nil, fmt.Errorf("not found: %s has no key %q", walked, seg)
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil {
				return nil, fmt.Errorf("not found: %s is a list, and %q is not an index", walked, seg)
			}
			if i < 0 || i >= len(v) {
				return nil, fmt.Errorf("not found: %s has %d elements, no index %d", walked, len(v), i)
			}
			cur = v[i]
		default:
			return nil, fmt.Errorf("not found: %s is %s, not an object or list", walked, jsonText(cur))
		}
		if walked == "$" {
			walked = seg
		} else {
			walked += "." + seg
		}
	}
	return cur, nil
}

// normalizeJSON makes values from different decoders comparable by
// round-tripping them through encoding/json.
func normalizeJSON(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return v
	}
	return out
}

// jsonText renders a value as short compact JSON for messages.
func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return clip(string(b), 100)
}

// sensitiveHeader reports whether a header's value is likely a credential
// and must be kept out of results.
func sensitiveHeader(name string) bool {
	n := strings.ToLower(name)
	if n == "authorization" || n == "proxy-authorization" || n == "cookie" {
		return true
	}
	for _, w := range [...]string{"token", "key", "secret", "password", "auth"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}
