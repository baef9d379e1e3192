package health

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// DefaultSmokeTimeout bounds one smoke test request unless the test sets
// its own timeout.
const DefaultSmokeTimeout = 10 * time.Second

// SmokeSuite is a parsed smoke test file.
type SmokeSuite struct {
	Tests []SmokeTest `json:"tests"`
}

// SmokeTest is one request and what its answer must look like.
type SmokeTest struct {
	Name   string `json:"name"`
	Method string `json:"method"`
	// Path is the request path, with an optional query.
	Path string `json:"path"`
	// Headers are sent as written; nothing in them is expanded.
	Headers map[string]string `json:"headers,omitempty"`
	// Body is sent as is. A YAML mapping or list in the file is sent as
	// JSON, with Content-Type application/json unless Headers set one.
	Body    string        `json:"body,omitempty"`
	Timeout time.Duration `json:"timeout"`
	Expect  SmokeExpect   `json:"expect"`
}

// SmokeExpect is what a smoke test's answer must satisfy.
type SmokeExpect struct {
	// Status is the expected status code.
	Status int `json:"status"`
	// Contains must be a substring of the body when set.
	Contains string `json:"contains,omitempty"`
	// JSON maps dotted paths into the JSON body, like "data.items.0.id",
	// to the expected value, compared as JSON values (so 42 equals 42.0 but
	// not "42"). Path segments are object keys or array indexes; keys that
	// contain dots cannot be addressed.
	JSON map[string]any `json:"json,omitempty"`
	// MaxLatency fails the test when the exchange took longer; zero means
	// no limit.
	MaxLatency time.Duration `json:"maxLatency,omitempty"`
}

// Fields a smoke test file may use; anything else is a typo worth reporting.
var (
	smokeTestFields   = []string{"name", "method", "path", "headers", "body", "timeout", "expect"}
	smokeExpectFields = []string{"status", "contains", "json", "max-latency"}
)

// ParseSmokeTests reads a YAML smoke test file: either a list of tests or a
// mapping with a "tests" list. Each test has name, method (default GET),
// path, headers, body, timeout and expect (status (default 200), contains,
// json, max-latency). All problems are reported at once, each naming the
// test and the field.
func ParseSmokeTests(data []byte) (SmokeSuite, error) {
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return SmokeSuite{}, fmt.Errorf("parse smoke tests: %w", yamlError(err))
	}
	var rawTests []json.RawMessage
	switch trimmed := bytes.TrimSpace(js); {
	case bytes.HasPrefix(trimmed, []byte("[")):
		err = json.Unmarshal(trimmed, &rawTests)
	case bytes.HasPrefix(trimmed, []byte("{")):
		var top map[string]json.RawMessage
		if err = json.Unmarshal(trimmed, &top); err == nil {
			for k := range top {
				if k != "tests" {
					return SmokeSuite{}, fmt.Errorf("parse smoke tests: unknown top-level field %q (want \"tests\")", k)
				}
			}
			if raw, ok := top["tests"]; ok && !isNull(raw) {
				if err = json.Unmarshal(raw, &rawTests); err != nil {
					err = errors.New("tests: must be a list")
				}
			}
		}
	case bytes.Equal(trimmed, []byte("null")):
		// An empty file; reported below as "no tests".
	default:
		err = errors.New("want a list of tests or a mapping with \"tests\"")
	}
	if err != nil {
		return SmokeSuite{}, fmt.Errorf("parse smoke tests: %w", err)
	}
	if len(rawTests) == 0 {
		return SmokeSuite{}, errors.New("parse smoke tests: the file has no tests")
	}

	var suite SmokeSuite
	var errs []error
	seen := map[string]int{}
	for i, raw := range rawTests {
		t, problems := parseSmokeTest(raw)
		label := fmt.Sprintf("smoke test #%d", i+1)
		if t.Name != "" {
			label = fmt.Sprintf("smoke test %q", t.Name)
			if first, dup := seen[t.Name]; dup {
				problems = append(problems, fmt.Sprintf("name: duplicate of test #%d", first))
			} else {
				seen[t.Name] = i + 1
			}
		}
		for _, p := range problems {
			errs = append(errs, fmt.Errorf("%s: %s", label, p))
		}
		suite.Tests = append(suite.Tests, t)
	}
	if len(errs) > 0 {
		return SmokeSuite{}, errors.Join(errs...)
	}
	return suite, nil
}

// yamlError keeps a YAML error unless it quotes file content: a mapping
// key that is null, a list or a mapping is reported with its whole entry,
// which may hold a header value.
func yamlError(err error) error {
	if strings.Contains(err.Error(), "map key") {
		return errors.New("a mapping key is null, a list or a mapping; keys must be plain text")
	}
	return err
}

// parseSmokeTest reads one test and lists its problems as "field: what".
func parseSmokeTest(raw json.RawMessage) (SmokeTest, []string) {
	var t SmokeTest
	var problems []string
	fields, err := objectFields(raw)
	if err != nil {
		return t, []string{"must be a mapping"}
	}
	problems = append(problems, unknownFields("", fields, smokeTestFields)...)

	get := func(key string, into any, want string) bool {
		v, ok := fields[key]
		if !ok || isNull(v) {
			return false
		}
		if err := json.Unmarshal(v, into); err != nil {
			problems = append(problems, fmt.Sprintf("%s: must be %s", key, want))
			return false
		}
		return true
	}

	get("name", &t.Name, "a string")
	t.Name = strings.TrimSpace(t.Name)
	if t.Name == "" {
		problems = append(problems, "name: required")
	}

	t.Method = http.MethodGet
	if get("method", &t.Method, "a string") {
		t.Method = strings.ToUpper(strings.TrimSpace(t.Method))
		if !validMethod(t.Method) {
			problems = append(problems, fmt.Sprintf("method: %q is not an HTTP method", t.Method))
		}
	}

	if get("path", &t.Path, "a string") {
		if ref, err := url.Parse(t.Path); t.Path != "" && (err != nil || !strings.HasPrefix(t.Path, "/") || ref.Host != "") {
			// A full URL may carry a password; print only its redacted form.
			problems = append(problems, fmt.Sprintf("path: %q must be an absolute path such as /api/items", redactURL(t.Path)))
		}
	}
	if v, ok := fields["path"]; !ok || isNull(v) || string(bytes.TrimSpace(v)) == `""` {
		problems = append(problems, "path: required")
	}

	var headers map[string]any
	if get("headers", &headers, "a mapping of header names to values") {
		t.Headers = map[string]string{}
		for _, k := range sortedKeys(headers) {
			if !validToken(k) {
				problems = append(problems, fmt.Sprintf("headers: %q is not a valid header name", k))
				continue
			}
			switch v := headers[k].(type) {
			case string:
				t.Headers[k] = v
			case float64, bool:
				t.Headers[k] = fmt.Sprint(v)
			default:
				problems = append(problems, fmt.Sprintf("headers.%s: must be a string", k))
			}
		}
	}

	if v, ok := fields["body"]; ok && !isNull(v) {
		var s string
		if json.Unmarshal(v, &s) == nil {
			t.Body = s
		} else {
			var buf bytes.Buffer
			_ = json.Compact(&buf, v)
			t.Body = buf.String()
			if !hasHeader(t.Headers, "Content-Type") {
				if t.Headers == nil {
					t.Headers = map[string]string{}
				}
				t.Headers["Content-Type"] = "application/json"
			}
		}
	}

	t.Timeout = DefaultSmokeTimeout
	var timeout string
	if get("timeout", &timeout, "a duration such as 5s") {
		if d, err := time.ParseDuration(timeout); err != nil || d <= 0 {
			problems = append(problems, fmt.Sprintf("timeout: %q is not a positive duration such as 5s", timeout))
		} else {
			t.Timeout = d
		}
	}

	t.Expect.Status = http.StatusOK
	if v, ok := fields["expect"]; ok && !isNull(v) {
		exp, more := parseSmokeExpect(v)
		t.Expect = exp
		problems = append(problems, more...)
	}
	return t, problems
}

// parseSmokeExpect reads the expect block of a test.
func parseSmokeExpect(raw json.RawMessage) (SmokeExpect, []string) {
	e := SmokeExpect{Status: http.StatusOK}
	fields, err := objectFields(raw)
	if err != nil {
		return e, []string{"expect: must be a mapping"}
	}
	problems := unknownFields("expect.", fields, smokeExpectFields)

	if v, ok := fields["status"]; ok && !isNull(v) {
		var n json.Number
		if err := json.Unmarshal(v, &n); err != nil {
			problems = append(problems, "expect.status: must be a number")
		} else if code, err := strconv.Atoi(n.String()); err != nil || code < 100 || code > 599 {
			problems = append(problems, fmt.Sprintf("expect.status: %s is not an HTTP status code", n))
		} else {
			e.Status = code
		}
	}
	if v, ok := fields["contains"]; ok && !isNull(v) {
		if err := json.Unmarshal(v, &e.Contains); err != nil {
			problems = append(problems, "expect.contains: must be a string")
		}
	}
	if v, ok := fields["json"]; ok && !isNull(v) {
		if err := json.Unmarshal(v, &e.JSON); err != nil {
			problems = append(problems, "expect.json: must be a mapping of JSON paths to values")
		}
		for _, k := range sortedKeys(e.JSON) {
			if err := validJSONPath(k); err != nil {
				problems = append(problems, fmt.Sprintf("expect.json: path %q: %v", k, err))
			}
		}
	}
	if v, ok := fields["max-latency"]; ok && !isNull(v) {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			problems = append(problems, "expect.max-latency: must be a duration such as 500ms")
		} else if d, err := time.ParseDuration(s); err != nil || d <= 0 {
			problems = append(problems, fmt.Sprintf("expect.max-latency: %q is not a positive duration such as 500ms", s))
		} else {
			e.MaxLatency = d
		}
	}
	return e, problems
}

// objectFields splits a JSON object into its raw fields.
func objectFields(raw json.RawMessage) (map[string]json.RawMessage, error) {
	if !bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
		return nil, errors.New("not an object")
	}
	var fields map[string]json.RawMessage
	err := json.Unmarshal(raw, &fields)
	return fields, err
}

// unknownFields reports fields outside allowed, sorted for stable messages.
func unknownFields(prefix string, fields map[string]json.RawMessage, allowed []string) []string {
	var out []string
	for _, k := range sortedKeys(fields) {
		if !slices.Contains(allowed, k) {
			out = append(out, fmt.Sprintf("%s%s: unknown field (want one of %s)", prefix, k, strings.Join(allowed, ", ")))
		}
	}
	return out
}

// validJSONPath accepts dotted paths with non-empty segments.
func validJSONPath(p string) error {
	if p == "" {
		return errors.New("empty")
	}
	for _, seg := range strings.Split(p, ".") {
		if seg == "" {
			return errors.New("has an empty segment")
		}
	}
	return nil
}

// validMethod accepts the methods a smoke test can sensibly send.
func validMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return true
	}
	return false
}

// validToken reports whether s is an RFC 9110 token, the syntax of a
// header name.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("!#$%&'*+-.^_`|~", r):
		default:
			return false
		}
	}
	return true
}

func hasHeader(h map[string]string, name string) bool {
	for k := range h {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

func isNull(raw json.RawMessage) bool {
	return bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
