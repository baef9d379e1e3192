package health

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestParseSmokeTestsGolden parses every testdata/smoke/*.yaml and compares
// the suite (as JSON) or the error with the .golden file beside it.
func TestParseSmokeTestsGolden(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("testdata", "smoke", "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(file)
			require.NoError(t, err)
			suite, err := ParseSmokeTests(data)
			var got string
			if err != nil {
				got = "error:\n" + err.Error() + "\n"
			} else {
				b, merr := json.MarshalIndent(suite, "", "  ")
				require.NoError(t, merr)
				got = string(b) + "\n"
			}
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			if *update {
				require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test -update to create %s", golden)
			assert.Equal(t, string(want), got)
		})
	}
}

func TestParseSmokeTestsDefaults(t *testing.T) {
	t.Parallel()
	suite, err := ParseSmokeTests([]byte("- name: a\n  path: /a\n"))
	require.NoError(t, err)
	require.Len(t, suite.Tests, 1)
	assert.Equal(t, SmokeTest{
		Name: "a", Method: http.MethodGet, Path: "/a", Timeout: DefaultSmokeTimeout,
		Expect: SmokeExpect{Status: http.StatusOK},
	}, suite.Tests[0])
}

func TestLookupJSON(t *testing.T) {
	t.Parallel()
	var doc any
	require.NoError(t, json.Unmarshal([]byte(`{"data":{"items":[{"id":42,"tags":["x"]}],"n":null,"s":"t"}}`), &doc))
	tests := []struct {
		path    string
		want    any
		wantErr string
	}{
		{path: "data.items.0.id", want: 42.0},
		{path: "data.items.0.tags.0", want: "x"},
		{path: "data.n", want: nil},
		{path: "data.items", want: []any{map[string]any{"id": 42.0, "tags": []any{"x"}}}},
		{path: "data.missing", wantErr: `not found: data has no key "missing"`},
		{path: "data.items.1.id", wantErr: "not found: data.items has 1 elements, no index 1"},
		{path: "data.items.first", wantErr: `not found: data.items is a list, and "first" is not an index`},
		{path: "data.s.x", wantErr: `not found: data.s is "t", not an object or list`},
		{path: "nope", wantErr: `not found: $ has no key "nope"`},
	}
	for _, tt := range tests {
		got, err := LookupJSON(doc, tt.path)
		if tt.wantErr != "" {
			assert.EqualError(t, err, tt.wantErr, tt.path)
			continue
		}
		require.NoError(t, err, tt.path)
		assert.Equal(t, tt.want, got, tt.path)
	}
}

func TestSmokeProblems(t *testing.T) {
	t.Parallel()
	body := []byte(`{"data":{"items":[{"id":42,"name":"widget"}],"total":1}}`)
	tests := []struct {
		name   string
		exp    SmokeExpect
		resp   response
		expect []string
	}{
		{
			name: "all met",
			exp:  SmokeExpect{Status: 200, Contains: "widget", JSON: map[string]any{"data.items.0.id": 42.0, "data.total": 1}, MaxLatency: time.Second},
			resp: response{statusCode: 200, body: body, timing: Timing{Total: time.Millisecond}},
		},
		{
			name: "everything wrong",
			exp:  SmokeExpect{Status: 201, Contains: "gadget", JSON: map[string]any{"data.items.0.id": "42", "data.items.3.id": 1, "data.total": 1}, MaxLatency: time.Millisecond},
			resp: response{statusCode: 200, body: body, timing: Timing{Total: 1500 * time.Millisecond}},
			expect: []string{
				"status 200 OK, want 201",
				`body does not contain "gadget"`,
				`json data.items.0.id is 42, want "42"`,
				"json data.items.3.id: not found: data.items has 1 elements, no index 3",
				"latency 1.5s exceeds max-latency 1ms",
			},
		},
		{
			name:   "json expectations on a text body",
			exp:    SmokeExpect{Status: 200, JSON: map[string]any{"a": 1}},
			resp:   response{statusCode: 200, body: []byte("OK")},
			expect: []string{"body is not JSON, so the json expectations cannot be checked"},
		},
		{
			name:   "objects compared as JSON values",
			exp:    SmokeExpect{Status: 200, JSON: map[string]any{"data.items.0": map[string]any{"name": "widget", "id": 42}}},
			resp:   response{statusCode: 200, body: body},
			expect: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.expect, smokeProblems(tt.exp, tt.resp))
		})
	}
}

func TestRunSmokeTests(t *testing.T) {
	t.Parallel()
	type seen struct {
		method, uri, body, contentType, auth, requestID string
	}
	var mu sync.Mutex
	var requests []seen
	mux := http.NewServeMux()
	record := func(r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		requests = append(requests, seen{r.Method, r.URL.RequestURI(), string(b), r.Header.Get("Content-Type"), r.Header.Get("Authorization"), r.Header.Get("X-Request-Id")})
	}
	mux.HandleFunc("GET /api/items", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"data":{"items":[{"id":42,"name":"widget"},{"id":43,"name":"gadget"}],"total":2,"next":null}}`)
	})
	mux.HandleFunc("POST /api/items", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		w.WriteHeader(http.StatusCreated)
	})
	mux.HandleFunc("PUT /api/raw", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		w.WriteHeader(http.StatusInternalServerError)
	})
	target, _ := serve(t, mux)

	data, err := os.ReadFile(filepath.Join("testdata", "smoke", "valid.yaml"))
	require.NoError(t, err)
	suite, err := ParseSmokeTests(data)
	require.NoError(t, err)

	results := RunSmokeTests(context.Background(), target, suite, "smoke-token-789")
	require.Len(t, results, 3)

	assert.True(t, results[0].Passed, results[0].Failure)
	assert.Equal(t, "/api/items", results[0].Path, "the query is not reported")
	assert.Equal(t, 200, results[0].StatusCode)
	assert.Positive(t, results[0].Latency)

	assert.True(t, results[1].Passed, results[1].Failure)
	assert.Equal(t, http.MethodPost, results[1].Method)

	assert.False(t, results[2].Passed)
	assert.Equal(t, "status 500 Internal Server Error, want 200", results[2].Failure)

	require.Len(t, requests, 3)
	assert.Equal(t, seen{"GET", "/api/items?limit=2", "", "", "Bearer smoke-token-789", ""}, requests[0])
	assert.Equal(t, seen{"POST", "/api/items", `{"name":"gadget","tags":["a","b"]}`, "application/json", "Bearer smoke-token-789", "smoke-1"}, requests[1])
	assert.Equal(t, seen{"PUT", "/api/raw", "hello", "text/plain", "Bearer smoke-token-789", ""}, requests[2])
	assert.NotContains(t, fmt.Sprintf("%+v", results), "smoke-token-789")
}

func TestRunSmokeTestsOwnAuthorizationWins(t *testing.T) {
	t.Parallel()
	var got string
	target, _ := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("Authorization")
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, "denied for Basic own-credential-1")
	}))
	suite := SmokeSuite{Tests: []SmokeTest{{
		Name: "own auth", Method: "GET", Path: "/", Headers: map[string]string{"Authorization": "Basic own-credential-1"},
		Expect: SmokeExpect{Status: 200, Contains: "own-credential-1 granted"},
	}}}
	results := RunSmokeTests(context.Background(), target, suite, "smoke-token-789")
	assert.Equal(t, "Basic own-credential-1", got)
	require.Len(t, results, 1)
	assert.False(t, results[0].Passed)
	assert.Contains(t, results[0].Failure, "status 403 Forbidden, want 200")
	assert.NotContains(t, results[0].Failure, "own-credential-1", "a credential from the test's own headers is redacted")
}

func TestRunSmokeTestsTransportError(t *testing.T) {
	t.Parallel()
	_, srv := serve(t, http.NotFoundHandler())
	srv.Close()
	target, err := NewURLTarget(srv.URL, TLSOptions{})
	require.NoError(t, err)
	results := RunSmokeTests(context.Background(), target, SmokeSuite{Tests: []SmokeTest{{Name: "t", Method: "GET", Path: "/x?key=abcdef"}}}, "")
	require.Len(t, results, 1)
	assert.False(t, results[0].Passed)
	assert.Contains(t, results[0].Failure, "GET "+srv.URL+"/x: ")
	assert.NotContains(t, results[0].Failure, "abcdef")
}
