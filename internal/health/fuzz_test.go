package health

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"sigs.k8s.io/yaml"
)

// FuzzParseDetailed checks that ParseDetailed never panics, fails only on
// an empty or non-JSON body and then without quoting it, records the
// format from the Content-Type, sorts components by name, and returns
// text that grows at most linearly with the body, so a report built from
// it cannot be made to explode by a hostile service.
func FuzzParseDetailed(f *testing.F) {
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		d, err := ParseDetailed(contentType, body)

		wantFormat := FormatJSON
		if mt, _, perr := mime.ParseMediaType(contentType); perr == nil && mt == "application/health+json" {
			wantFormat = FormatHealthJSON
		}
		if d.Format != wantFormat {
			t.Fatalf("format %q for Content-Type %q, want %q", d.Format, contentType, wantFormat)
		}
		trimmed := bytes.TrimSpace(body)
		if err != nil {
			if json.Valid(trimmed) {
				t.Fatalf("valid JSON rejected: %v", err)
			}
			// A syntax error names one character; anything longer is the
			// body coming back, which may carry a component's secrets.
			if msg := err.Error(); len(msg) > 160 {
				t.Fatalf("error of %d bytes quotes the body: %s", len(msg), msg)
			}
			if d.Status != "" || len(d.Components) != 0 {
				t.Fatalf("failed parse returned data: %+v", d)
			}
			return
		}
		if len(trimmed) == 0 {
			t.Fatal("empty body accepted")
		}
		if !slices.IsSortedFunc(d.Components, func(a, b Component) int { return strings.Compare(a.Name, b.Name) }) {
			t.Fatalf("components not sorted by name: %+v", d.Components)
		}
		for _, c := range d.Components {
			if c.Latency < 0 {
				t.Fatalf("negative latency: %+v", c)
			}
			if c.Failing() != StatusFailing(c.Status) {
				t.Fatalf("Failing disagrees with StatusFailing: %+v", c)
			}
		}
		if n := detailedSize(d); n > 64*len(body)+1024 {
			t.Fatalf("%d bytes of body gave %d bytes of components", len(body), n)
		}
	})
}

// detailedSize is the text a report could print for d.
func detailedSize(d Detailed) int {
	n := len(d.Status)
	for _, c := range d.Components {
		n += len(c.Name) + len(c.Status) + len(c.Message) + len(c.ObservedValue) + len(c.ObservedUnit)
	}
	return n
}

// FuzzServedVersion checks that ServedVersion never panics and returns a
// trimmed, bounded, valid UTF-8 version, and nothing when neither the body
// nor the headers offer one.
func FuzzServedVersion(f *testing.F) {
	f.Fuzz(func(t *testing.T, appHeader, versionHeader string, body []byte) {
		h := http.Header{}
		h.Set("X-App-Version", appHeader)
		h.Set("X-Version", versionHeader)
		v := ServedVersion(h, body)

		if len(v) > maxVersionLen+len("…") {
			t.Fatalf("version of %d bytes", len(v))
		}
		if v != strings.TrimSpace(v) {
			t.Fatalf("version %q is not trimmed", v)
		}
		if !utf8.ValidString(v) {
			t.Fatalf("version %q is not valid UTF-8", v)
		}
		if v == "" || bytes.Contains(body, []byte(`"version"`)) {
			return
		}
		if strings.TrimSpace(h.Get("X-App-Version")) == "" && strings.TrimSpace(h.Get("X-Version")) == "" {
			t.Fatalf("version %q from nowhere", v)
		}
	})
}

// Markers start every secret FuzzParseSmokeTests writes: a header value,
// a query value and a password in the path.
const (
	fuzzHeaderMarker   = "gl-fuzz-header-"
	fuzzQueryMarker    = "gl-fuzz-query-"
	fuzzUserinfoMarker = "gl-fuzz-userinfo-"
)

// Ways FuzzParseSmokeTests lays out the smoke test file.
const (
	smokeMapping = iota
	smokeList
	smokeURLPath
	smokeNoiseInserted
	smokeTruncated
	smokeNoiseOnly
	smokeShapes
)

// fuzzSmokeTemplate is a smoke test file with room for fuzzed pieces,
// written raw so the fuzzer can break the YAML as well as the values.
const fuzzSmokeTemplate = `  - name: %s
    method: %s
    path: %s?limit=2&api_key=%s
    headers:
      %s: Bearer %s
      X-Request-Id: smoke-1
    body: %s
    timeout: %s
    expect:
      status: %s
      contains: '"items"'
      json:
        %s: 42
      max-latency: 500ms
  - name: second
    path: /health
`

// fuzzSmoke is one input FuzzParseSmokeTests builds.
type fuzzSmoke struct {
	name, method, path, header, secretTail, body, timeout, status, jsonPath string
}

// buildFuzzSmoke fills the template and lays it out as shape chooses; pos
// places noise or the cut.
func buildFuzzSmoke(shape uint8, pos uint16, p fuzzSmoke, noise []byte) []byte {
	path := p.path
	if shape%smokeShapes == smokeURLPath {
		path = "https://ops:" + fuzzUserinfoMarker + p.secretTail + "@" + path
	}
	doc := "tests:\n" + fmt.Sprintf(fuzzSmokeTemplate, p.name, p.method, path, fuzzQueryMarker+p.secretTail,
		p.header, fuzzHeaderMarker+p.secretTail, p.body, p.timeout, p.status, p.jsonPath)
	at := int(pos) % (len(doc) + 1)
	switch shape % smokeShapes {
	case smokeList:
		doc = strings.TrimPrefix(doc, "tests:\n")
	case smokeNoiseInserted:
		doc = doc[:at] + string(noise) + doc[at:]
	case smokeTruncated:
		doc = doc[:at]
	case smokeNoiseOnly:
		doc = string(noise)
	}
	return []byte(doc)
}

// FuzzParseSmokeTests builds smoke test files from a template with fuzzed
// pieces and random bytes and checks that ParseSmokeTests never panics,
// never quotes a header value, a query value or a password from a path in
// an error, and that every suite it accepts is one RunSmokeTests can send.
func FuzzParseSmokeTests(f *testing.F) {
	f.Fuzz(func(t *testing.T, shape uint8, pos uint16, name, method, path, header, secretTail, body, timeout, status, jsonPath string, noise []byte) {
		data := buildFuzzSmoke(shape, pos, fuzzSmoke{
			name: name, method: method, path: path, header: header, secretTail: secretTail,
			body: body, timeout: timeout, status: status, jsonPath: jsonPath,
		}, noise)

		suite, err := ParseSmokeTests(data)
		if err != nil {
			if len(suite.Tests) != 0 {
				t.Fatalf("failed parse returned tests: %+v", suite)
			}
			msg := err.Error()
			for _, s := range fuzzSmokeSecrets(data) {
				if strings.Contains(msg, s) {
					t.Fatalf("error quotes secret %q: %s", s, msg)
				}
			}
			return
		}
		checkSmokeSuite(t, suite)
	})
}

// fuzzSmokeSecrets returns the markers that, in data, still start only
// secrets: each appears once, and not in a test's name, method, timeout,
// status, max-latency or any key, which messages may rightly quote.
func fuzzSmokeSecrets(data []byte) []string {
	var public []string
	var doc any
	if yaml.Unmarshal(data, &doc) == nil {
		public = publicSmokeText(doc, "", public)
	}
	var out []string
	for _, m := range []string{fuzzHeaderMarker, fuzzQueryMarker, fuzzUserinfoMarker} {
		if bytes.Count(data, []byte(m)) == 1 && !slices.ContainsFunc(public, func(p string) bool { return strings.Contains(p, m) }) {
			out = append(out, m)
		}
	}
	return out
}

// publicSmokeText collects the text of a decoded smoke test file that
// error messages may quote.
func publicSmokeText(v any, key string, out []string) []string {
	switch v := v.(type) {
	case map[string]any:
		for k, val := range v {
			out = publicSmokeText(val, k, append(out, k))
		}
	case []any:
		for _, val := range v {
			out = publicSmokeText(val, key, out)
		}
	default:
		switch key {
		case "name", "method", "timeout", "status", "max-latency":
			out = append(out, fmt.Sprint(v))
		}
	}
	return out
}

// checkSmokeSuite asserts what RunSmokeTests relies on.
func checkSmokeSuite(t *testing.T, suite SmokeSuite) {
	t.Helper()
	if len(suite.Tests) == 0 {
		t.Fatal("accepted a suite without tests")
	}
	target, err := NewTarget("http://127.0.0.1:1/base", &http.Client{})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, st := range suite.Tests {
		if st.Name == "" || st.Name != strings.TrimSpace(st.Name) || names[st.Name] {
			t.Fatalf("name %q empty, untrimmed or repeated", st.Name)
		}
		names[st.Name] = true
		if !validMethod(st.Method) {
			t.Fatalf("test %q: method %q", st.Name, st.Method)
		}
		if !strings.HasPrefix(st.Path, "/") {
			t.Fatalf("test %q: path %q", st.Name, st.Path)
		}
		if st.Timeout <= 0 || st.Expect.MaxLatency < 0 {
			t.Fatalf("test %q: timeout %v, max latency %v", st.Name, st.Timeout, st.Expect.MaxLatency)
		}
		if st.Expect.Status < 100 || st.Expect.Status > 599 {
			t.Fatalf("test %q: status %d", st.Name, st.Expect.Status)
		}
		for k := range st.Headers {
			if !validToken(k) {
				t.Fatalf("test %q: header name %q", st.Name, k)
			}
		}
		for p := range st.Expect.JSON {
			if validJSONPath(p) != nil {
				t.Fatalf("test %q: JSON path %q", st.Name, p)
			}
		}
		if _, err := target.resolve(st.Path); err != nil {
			t.Fatalf("test %q cannot be sent: %v", st.Name, err)
		}
	}
}
