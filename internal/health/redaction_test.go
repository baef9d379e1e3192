package health

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSecretsNeverAppear drives every entry point against a URL carrying a
// password and an API key in its query, with a bearer token configured, and
// searches everything returned for the secrets. The server echoes what it
// received into its answers, as a confused service might.
func TestSecretsNeverAppear(t *testing.T) {
	t.Parallel()
	const (
		password = "url-pass-31337"
		apiKey   = "query-key-4242"
		token    = "bearer-tok-9000"
	)
	secrets := []string{password, apiKey, token}

	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, _ := r.BasicAuth()
		msg := fmt.Sprintf("saw %s %s %s %s", user, pass, r.URL.RawQuery, r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"status":  "down",
			"version": "v1",
			"checks":  map[string]any{"db": map[string]any{"status": "down", "message": msg}},
		})
	})
	// A proxy's plain-text error page is quoted in failures; it must be
	// scrubbed too.
	echoText := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, _ := r.BasicAuth()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = fmt.Fprintf(w, "saw %s %s %s %s\n", user, pass, r.URL.RawQuery, r.Header.Get("Authorization"))
	})
	_, live := serve(t, echo)
	_, liveText := serve(t, echoText)
	_, dead := serve(t, http.NotFoundHandler())
	dead.Close()

	for name, base := range map[string]string{"answering": live.URL, "answering in text": liveText.URL, "refusing": dead.URL} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			u := strings.Replace(base, "http://", "http://admin:"+password+"@", 1) + "/?api_key=" + apiKey
			target, err := NewURLTarget(u, TLSOptions{})
			require.NoError(t, err)
			opts := CheckOptions{Token: token, Timeout: 100 * time.Millisecond, Backoff: fastRetry}
			ctx := context.Background()

			var outputs []any
			check := Check(ctx, target, opts)
			require.False(t, check.Healthy)
			outputs = append(outputs, check, VerifyTraffic(ctx, target, "v2", 3, opts), VerifyRollback(ctx, target, "v2", 3, opts),
				Probe(ctx, target, "/health", time.Second), target)
			suite, err := ParseSmokeTests([]byte("- name: echo\n  path: /health?x=" + apiKey + "\n  expect:\n    contains: nothing\n"))
			require.NoError(t, err)
			outputs = append(outputs, RunSmokeTests(ctx, target, suite, token))

			for _, out := range outputs {
				text := fmt.Sprintf("%v %+v %#v", out, out, out)
				js, err := json.Marshal(out)
				require.NoError(t, err)
				text += string(js)
				for _, s := range secrets {
					assert.NotContains(t, text, s, "%T", out)
				}
			}
			if name != "refusing" {
				assert.Contains(t, check.Reason, "[redacted]", "the echoed secrets were scrubbed, not lost by accident")
			}
		})
	}
}
