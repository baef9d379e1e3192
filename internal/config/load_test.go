package config

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// Secret values used across tests; none may ever appear in an error.
const (
	kubeSecret   = "apiVersion: v1\nkind: Config\nusers:\n- name: ci\n  user:\n    token: kube-canary-7d1f"
	ghSecret     = "ghp_canaryTokenA1b2C3d4"
	hcSecret     = "hc-canary-9f8e7d"
	slackSecret  = "https://hooks.slack.com/services/T000/B000/slackcanary55"
	alertSecret  = "https://alerts.example.com/hook/alertcanary66"
	signSecret   = "hmac-canary-key-77"
	testSHA      = "0123456789abcdef0123456789abcdef01234567"
	exampleFile  = "testdata/greenlight.yml"
	explicitFile = "deploy/greenlight.yml"
)

var allSecrets = []string{kubeSecret, ghSecret, hcSecret, slackSecret, alertSecret, signSecret, "kube-canary-7d1f"}

// validInputs is a complete, valid staging deploy.
func validInputs() map[string]string {
	return map[string]string{
		"environment":          "staging",
		"kubeconfig":           kubeSecret,
		"deployment":           "api",
		"image":                "ghcr.io/acme/api:1.2.3",
		"github-token":         ghSecret,
		"health-check-token":   hcSecret,
		"slack-webhook-url":    slackSecret,
		"alert-webhook-url":    alertSecret,
		"alert-webhook-secret": signSecret,
	}
}

// files returns a readFile over an in-memory file system.
func files(m map[string]string) func(string) ([]byte, error) {
	return func(path string) ([]byte, error) {
		if s, ok := m[path]; ok {
			return []byte(s), nil
		}
		return nil, &fs.PathError{Op: "open", Path: path, Err: fs.ErrNotExist}
	}
}

func with(base map[string]string, kv ...string) map[string]string {
	m := maps.Clone(base)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func acceptedOf(t *testing.T, name string) string {
	t.Helper()
	for _, in := range Names() {
		if in.Name == name {
			return in.Accepted
		}
	}
	t.Fatalf("no input %q", name)
	return ""
}

type badCase struct {
	name    string
	inputs  map[string]string
	files   map[string]string
	input   string // the input the error must name
	problem string // a part of the problem
	// accepted is a part of the accepted forms; empty means the input's
	// own Accepted text from Names.
	accepted string
}

func badCases() []badCase {
	v := validInputs()
	const example = `defaults:
  namespace: payments
  deployment: payment-api
environments:
  staging:
    url: https://staging.example.com
    monitor-duration: 5m
  production:
    url: https://example.com
    strategy: blue-green
    replicas: 3
`
	return []badCase{
		{name: "environment empty", inputs: with(v, "environment", ""), input: "environment", problem: "is required but not set"},
		{name: "environment blank", inputs: with(v, "environment", "  \n"), input: "environment", problem: "is required but not set"},
		{name: "environment control character", inputs: with(v, "environment", "prod\x1b[31m"), input: "environment", problem: "contains a control character"},
		{name: "kubeconfig empty", inputs: with(v, "kubeconfig", ""), input: "kubeconfig", problem: "is required but not set"},
		{name: "auth unknown", inputs: with(v, "auth", "aws"), input: "auth", problem: `"aws" is not an authentication method`},
		{name: "audience with a control character", inputs: with(v, "audience", "a\x01b"), input: "audience", problem: "control"},
		{name: "server not https", inputs: with(v, "server", "http://k8s.example.com"), input: "server", problem: "is not an https:// URL"},
		{name: "github-oidc without server", inputs: with(with(v, "kubeconfig", ""), "auth", "github-oidc"), input: "server", problem: "auth github-oidc needs the API server's address"},
		{name: "certificate-authority-data as PEM", inputs: with(v, "certificate-authority-data", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"), input: "certificate-authority-data", problem: "is PEM, not base64 of the PEM"},
		{name: "certificate-authority-data not a certificate", inputs: with(v, "certificate-authority-data", "aGVsbG8="), input: "certificate-authority-data", problem: "does not decode to a PEM certificate"},
		{name: "context control character", inputs: with(v, "context", "ci\x00ctx"), input: "context", problem: "control character"},
		{name: "namespace upper case", inputs: with(v, "namespace", "Payments"), input: "namespace", problem: `"Payments" may only contain lowercase letters`},
		{name: "namespace too long", inputs: with(v, "namespace", strings.Repeat("n", 64)), input: "namespace", problem: "longer than 63"},
		{name: "deployment underscore", inputs: with(v, "deployment", "api_v2"), input: "deployment", problem: `"api_v2" may only contain`},
		{name: "deployment empty part", inputs: with(v, "deployment", "api..v2"), input: "deployment", problem: "empty part"},
		{name: "container leading dash", inputs: with(v, "container", "-app"), input: "container", problem: "must start and end with a letter or digit"},
		{name: "image with space", inputs: with(v, "image", "ghcr.io/acme/api :1"), input: "image", problem: "contains a space"},
		{name: "image trailing colon", inputs: with(v, "image", "ghcr.io/acme/api:"), input: "image", problem: "is not an image reference"},
		{name: "manifests bad glob", inputs: with(v, "manifests", "k8s/*.yaml,k8s/[.yaml"), input: "manifests", problem: `item 2 "k8s/[.yaml" is not a valid glob pattern`},
		{name: "manifests only separators", inputs: with(v, "manifests", ", ,\n"), input: "manifests", problem: "has no items"},
		{name: "strategy unknown", inputs: with(v, "strategy", "canary"), input: "strategy", problem: `"canary" is not a known strategy`, accepted: "rolling or blue-green"},
		{name: "service starts with digit", inputs: with(v, "service", "1api"), input: "service", problem: "must start with a letter"},
		{name: "service default not a service name", inputs: with(v, "deployment", "api.v2"), input: "service", problem: `deployment name "api.v2" cannot be a Service name`},
		{name: "service-port too large", inputs: with(v, "service-port", "70000"), input: "service-port", problem: `"70000" is above 65535`},
		{name: "service-port zero", inputs: with(v, "service-port", "0"), input: "service-port", problem: "is below 1"},
		{name: "replicas zero", inputs: with(v, "replicas", "0"), input: "replicas", problem: `"0" is below 1`},
		{name: "replicas fraction", inputs: with(v, "replicas", "2.5"), input: "replicas", problem: "is not a whole number"},
		{name: "url not http", inputs: with(v, "url", "ftp://example.com"), input: "url", problem: "is not an http:// or https:// URL"},
		{name: "url relative", inputs: with(v, "url", "example.com/app"), input: "url", problem: "is not an http:// or https:// URL"},
		{name: "url with credentials", inputs: with(v, "url", "https://deploy:hunter2pass@example.com"), input: "url", problem: "the value contains a user name or password"},
		{name: "url with query", inputs: with(v, "url", "https://example.com/?x=1"), input: "url", problem: "has a query string"},
		{name: "url with space", inputs: with(v, "url", "https://exa mple.com"), input: "url", problem: "contains a space"},
		{name: "url without host", inputs: with(v, "url", "https:///path"), input: "url", problem: "has no host"},
		{name: "app-env line without =", inputs: with(v, "app-env", "DATABASE_URL=postgres://u:envcanary1@db/x\nenvcanary2-stray"), input: "app-env", problem: "line 2 has no '='"},
		{name: "app-env bad name", inputs: with(v, "app-env", "envcanary3 x=1"), input: "app-env", problem: "line 1 does not start with a variable name"},
		{name: "app-env name twice", inputs: with(v, "app-env", "A=envcanary4\n\nA=envcanary5"), input: "app-env", problem: "line 3 sets A again (first on line 1)"},
		{name: "app-env only comments", inputs: with(v, "app-env", "# nothing\n"), input: "app-env", problem: "sets no variable"},
		{name: "file app-env", inputs: v, files: map[string]string{DefaultConfigPath: "defaults:\n  app-env: A=envcanary6\n"}, input: "config", problem: `key "app-env" in .github/greenlight.yml under defaults is a secret`, accepted: "from a GitHub secret"},
		{name: "health-check-token with space", inputs: with(v, "health-check-token", "hc canary secret"), input: "health-check-token", problem: "the value contains a space"},
		{name: "required-components with space", inputs: with(v, "required-components", "data base"), input: "required-components", problem: `item 1 "data base" contains a space`},
		{name: "version-check unknown", inputs: with(v, "version-check", "body"), input: "version-check", problem: "is not auto, off, json:<field>[@<path>] or header:<name>[@<path>]"},
		{name: "version-check without field", inputs: with(v, "version-check", "json:@/version"), input: "version-check", problem: "names no JSON field"},
		{name: "version-check path without slash", inputs: with(v, "version-check", "header:X-Version@version"), input: "version-check", problem: "path does not start with /"},
		{name: "expected-version with space", inputs: with(v, "expected-version", "6.9 .2"), input: "expected-version", problem: "contains a space"},
		{name: "health-paths without slash", inputs: with(v, "health-paths", "/health,ready"), input: "health-paths", problem: `item 2 "ready" does not start with /`},
		{name: "smoke-tests control character", inputs: with(v, "smoke-tests", "tests\x07.yml"), input: "smoke-tests", problem: "control character"},
		{name: "skip-tests not a boolean", inputs: with(v, "skip-tests", "maybe"), input: "skip-tests", problem: `"maybe" is not a boolean`},
		{name: "github-deployment not create or off", inputs: with(v, "github-deployment", "twice"), input: "github-deployment", problem: `"twice" is not create or off`},
		{name: "timeout zero", inputs: with(v, "timeout", "0"), input: "timeout", problem: `"0" must be more than zero`},
		{name: "timeout negative seconds", inputs: with(v, "timeout", "-5"), input: "timeout", problem: `"-5" is negative`},
		{name: "rollout-timeout words", inputs: with(v, "rollout-timeout", "ten minutes"), input: "rollout-timeout", problem: `"ten minutes" is not a duration`},
		{name: "rollout-timeout days", inputs: with(v, "rollout-timeout", "1d"), input: "rollout-timeout", problem: "is not a duration"},
		{name: "monitor-duration negative", inputs: with(v, "monitor-duration", "-5m"), input: "monitor-duration", problem: `"-5m" is negative`},
		{name: "monitor-interval below minimum", inputs: with(v, "monitor-interval", "50ms"), input: "monitor-interval", problem: `"50ms" is below the minimum of 100ms`},
		{name: "monitor-interval longer than duration", inputs: with(v, "monitor-duration", "30s", "monitor-interval", "1m"), input: "monitor-interval", problem: "1m0s is longer than monitor-duration 30s", accepted: "at most monitor-duration (30s)"},
		{name: "alert-response-time huge", inputs: with(v, "alert-response-time", "99999999999999999999"), input: "alert-response-time", problem: "is too large"},
		{name: "alert-error-rate ambiguous 1", inputs: with(v, "alert-error-rate", "1"), input: "alert-error-rate", problem: `"1" is ambiguous: write 1% for one percent or 100% for all`},
		{name: "alert-error-rate above 100", inputs: with(v, "alert-error-rate", "150%"), input: "alert-error-rate", problem: `"150%" is above 100%`},
		{name: "alert-error-rate bare above 100", inputs: with(v, "alert-error-rate", "101"), input: "alert-error-rate", problem: "is above 100%"},
		{name: "alert-availability negative", inputs: with(v, "alert-availability", "-5%"), input: "alert-availability", problem: `"-5%" is negative`},
		{name: "alert-availability not a number", inputs: with(v, "alert-availability", "NaN"), input: "alert-availability", problem: "is not a percentage"},
		{name: "alert-consecutive-failures zero", inputs: with(v, "alert-consecutive-failures", "0"), input: "alert-consecutive-failures", problem: "is below 1"},
		{name: "rollback-error-rate below alert", inputs: with(v, "rollback-error-rate", "5%"), input: "rollback-error-rate", problem: "5% is below alert-error-rate 10%", accepted: "at or above alert-error-rate (10%)"},
		{name: "rollback-error-rate out of range", inputs: with(v, "rollback-error-rate", "250"), input: "rollback-error-rate", problem: "is above 100%"},
		{name: "rollback-consecutive-failures below alert", inputs: with(v, "rollback-consecutive-failures", "2"), input: "rollback-consecutive-failures", problem: "2 is below alert-consecutive-failures 3", accepted: "at or above alert-consecutive-failures (3)"},
		{name: "min-samples words", inputs: with(v, "min-samples", "ten"), input: "min-samples", problem: `"ten" is not a whole number`},
		{name: "metrics-path without slash", inputs: with(v, "metrics-path", "metrics"), input: "metrics-path", problem: "does not start with /"},
		{name: "metrics-path with query", inputs: with(v, "metrics-path", "/metrics?x=1"), input: "metrics-path", problem: "contains a query"},
		{name: "metrics-port too large", inputs: with(v, "metrics-port", "70000"), input: "metrics-port", problem: "is not a port number from 1 to 65535"},
		{name: "metrics-port upper case name", inputs: with(v, "metrics-port", "HTTP-Metrics"), input: "metrics-port", problem: "is not a container port name"},
		{name: "metrics-requests with a dash", inputs: with(v, "metrics-requests", "http-requests"), input: "metrics-requests", problem: "is not a Prometheus metric name"},
		{name: "metrics-duration starts with a digit", inputs: with(v, "metrics-duration", "9seconds"), input: "metrics-duration", problem: "is not a Prometheus metric name"},
		{name: "metrics-status-label reserved", inputs: with(v, "metrics-status-label", "__name__"), input: "metrics-status-label", problem: "is not a Prometheus label name"},
		{name: "min-requests zero", inputs: with(v, "min-requests", "0"), input: "min-requests", problem: `"0" is below 1`},
		{name: "prometheus-url not http", inputs: with(v, "prometheus-url", "prometheus:9090"), input: "prometheus-url", problem: `"prometheus:9090" is not an http:// or https:// URL`},
		{name: "prometheus-url with query", inputs: with(v, "prometheus-url", "https://prom.example.com/?x=1"), input: "prometheus-url", problem: `has a query string`},
		{name: "prometheus-token in the clear", inputs: with(v, "prometheus-url", "http://prom.example.com", "prometheus-token", "t0ken"), input: "prometheus-url", problem: `is an http:// URL of a host other than this machine, and a bearer token is never sent in the clear`, accepted: "an https:// URL when prometheus-token is set"},
		{name: "prometheus-token with new line", inputs: with(v, "prometheus-url", "https://prom.example.com", "prometheus-token", "ab\ncd"), input: "prometheus-token", problem: `the value contains a space or control character`},
		{name: "prometheus-error-query without pods", inputs: with(v, "prometheus-error-query", `sum(rate(x[1m]))`), input: "prometheus-error-query", problem: `does not contain {{pods}}`},
		{name: "prometheus-latency-query without pods", inputs: with(v, "prometheus-latency-query", `histogram_quantile(0.95, x)`), input: "prometheus-latency-query", problem: `does not contain {{pods}}`},
		{name: "auto-rollback not a boolean", inputs: with(v, "auto-rollback", "sometimes"), input: "auto-rollback", problem: "is not a boolean"},
		{name: "github-token with new line", inputs: with(v, "github-token", "ghp_canary\nTokenX"), input: "github-token", problem: "the value contains a space or control character"},
		{name: "slack-webhook-url not a URL", inputs: with(v, "slack-webhook-url", "slack canary webhook"), input: "slack-webhook-url", problem: "the value is not a URL"},
		{name: "alert-webhook-url not http", inputs: with(v, "alert-webhook-url", "ftp://alerts.example.com/alertcanary"), input: "alert-webhook-url", problem: "the value is not an http:// or https:// URL"},
		{name: "deployment-id new line", inputs: with(v, "deployment-id", "run\n42"), input: "deployment-id", problem: "control character"},
		{name: "event-log absolute", inputs: with(v, "event-log", "/tmp/events.jsonl"), input: "event-log", problem: "is not a path inside the workspace"},
		{name: "event-log outside the workspace", inputs: with(v, "event-log", "../events.jsonl"), input: "event-log", problem: "is not a path inside the workspace"},
		{name: "config missing", inputs: with(v, "config", explicitFile), input: "config", problem: `file "deploy/greenlight.yml" does not exist`},
		{name: "continue-on-unhealthy not a boolean", inputs: with(v, "continue-on-unhealthy", "perhaps"), input: "continue-on-unhealthy", problem: "is not a boolean"},
		{name: "lock-timeout negative", inputs: with(v, "lock-timeout", "-1m"), input: "lock-timeout", problem: `"-1m" is negative`},
		{name: "scale-down-delay negative", inputs: with(v, "scale-down-delay", "-10m"), input: "scale-down-delay", problem: `"-10m" is negative`},
		{name: "promotion unknown", inputs: with(v, "promotion", "approval"), input: "promotion", problem: `"approval" is not a known promotion`, accepted: "auto or manual"},
		{name: "reason new line", inputs: with(v, "reason", "broken\ncheckout"), input: "reason", problem: "control character"},
		{name: "command unknown", inputs: with(v, "command", "destroy"), input: "command", problem: `"destroy" is not a known command`, accepted: "deploy, health-check, monitor"},

		// Rules across inputs.
		{name: "app-env without manifests", inputs: with(v, "app-env", "TOSS_PAYMENTS_SECRET_KEY=envcanary7"), input: "app-env", problem: "no manifests are given"},
		{name: "deploy without image or manifests", inputs: with(v, "image", ""), input: "image", problem: "a deploy needs an image, manifests or both", accepted: "or set manifests"},
		{name: "no deployment and no manifests", inputs: with(v, "deployment", ""), input: "deployment", problem: "the deploy command needs one of them", accepted: "or set manifests"},
		{name: "rollback without deployment", inputs: with(v, "command", "rollback", "deployment", ""), input: "deployment", problem: "the rollback command needs one of them"},
		{name: "blue-green without service", inputs: with(v, "deployment", "", "manifests", "k8s/", "strategy", "blue-green"), input: "service", problem: "blue-green switches this Service's selector"},
		{name: "health-check without target", inputs: with(v, "command", "health-check", "deployment", ""), input: "url", problem: "no service or deployment", accepted: "or set service or deployment"},
		{name: "manual promotion of a rolling update", inputs: with(v, "promotion", "manual"), input: "promotion", problem: "manual needs the blue-green strategy", accepted: "or manual with strategy blue-green"},
		{name: "promote with the rolling strategy", inputs: with(v, "command", "promote"), input: "strategy", problem: "promote acts on a blue-green color left waiting", accepted: "blue-green"},
		{name: "scale without replicas", inputs: with(v, "command", "scale"), input: "replicas", problem: "the scale command needs it"},

		// The config file.
		{name: "file unknown environment", inputs: with(v, "environment", "qa"), files: map[string]string{DefaultConfigPath: example}, input: "environment", problem: `"qa" is not in the environments of .github/greenlight.yml`, accepted: "production, staging"},
		{name: "file secret in defaults", inputs: v, files: map[string]string{DefaultConfigPath: "defaults:\n  github-token: ghp_fileCanary99\n"}, input: "config", problem: `key "github-token" in .github/greenlight.yml under defaults is a secret`, accepted: "from a GitHub secret"},
		{name: "file secret in environment", inputs: v, files: map[string]string{DefaultConfigPath: "environments:\n  staging:\n    alert-webhook-secret: filecanary-hmac\n"}, input: "config", problem: `key "alert-webhook-secret" in .github/greenlight.yml under environments.staging is a secret`, accepted: "pass alert-webhook-secret as an input from a GitHub secret"},
		{name: "file kubeconfig", inputs: v, files: map[string]string{DefaultConfigPath: "defaults:\n  kubeconfig: |\n    apiVersion: v1\n    token: filecanary-kube\n"}, input: "config", problem: `key "kubeconfig"`, accepted: "pass kubeconfig as an input from a GitHub secret"},
		{name: "file unknown key", inputs: v, files: map[string]string{DefaultConfigPath: "environments:\n  production:\n    replica: 3\n  staging: {}\n"}, input: "config", problem: `unknown key "replica" in .github/greenlight.yml under environments.production (did you mean "replicas"?)`, accepted: "namespace, deployment"},
		{name: "file snake case key", inputs: v, files: map[string]string{DefaultConfigPath: "defaults:\n  monitor_duration: 5m\n"}, input: "config", problem: `did you mean "monitor-duration"?`, accepted: "one of these keys: context, auth, audience"},
		{name: "file unknown top-level key", inputs: v, files: map[string]string{DefaultConfigPath: "default:\n  namespace: payments\n"}, input: "config", problem: `unknown key "default" at the top of .github/greenlight.yml`, accepted: "defaults and environments"},
		{name: "file per-run key", inputs: v, files: map[string]string{DefaultConfigPath: "defaults:\n  environment: production\n"}, input: "config", problem: `key "environment" in .github/greenlight.yml under defaults cannot be set in the file`, accepted: "pass environment as an input or flag"},
		{name: "file not YAML", inputs: v, files: map[string]string{DefaultConfigPath: "defaults: [\n"}, input: "config", problem: "is not valid YAML", accepted: "defaults and environments"},
		{name: "file duplicate key", inputs: v, files: map[string]string{DefaultConfigPath: "defaults:\n  namespace: a\n  namespace: b\n"}, input: "config", problem: "is not valid YAML", accepted: "defaults and environments"},
		{name: "file a list", inputs: v, files: map[string]string{DefaultConfigPath: "- namespace\n"}, input: "config", problem: "is not a mapping", accepted: "defaults and environments"},
		{name: "file environment not a mapping", inputs: v, files: map[string]string{DefaultConfigPath: "environments:\n  staging: yes\n"}, input: "config", problem: "environments.staging in .github/greenlight.yml is not a mapping", accepted: "environments: followed by"},
		{name: "file list for a plain key", inputs: v, files: map[string]string{DefaultConfigPath: "defaults:\n  namespace: [a, b]\n"}, input: "namespace", problem: "the value is a list in .github/greenlight.yml under defaults"},
		{name: "file bad value names its source", inputs: v, files: map[string]string{DefaultConfigPath: "environments:\n  staging:\n    monitor-duration: -5m\n"}, input: "monitor-duration", problem: `"-5m" is negative (set in .github/greenlight.yml under environments.staging)`},
		{name: "file ambiguous number", inputs: v, files: map[string]string{DefaultConfigPath: "defaults:\n  alert-error-rate: 1\n"}, input: "alert-error-rate", problem: `"1" is ambiguous`},
		{name: "explicit config file unreadable", inputs: with(v, "config", "secret-dir/g.yml"), files: map[string]string{}, input: "config", problem: "does not exist"},
	}
}

func TestLoadBadInputs(t *testing.T) {
	t.Parallel()
	cases := badCases()
	covered := make(map[string]bool)
	for _, tc := range cases {
		covered[tc.input] = true
		if _, after, ok := strings.Cut(tc.problem, `key "`); ok {
			key, _, _ := strings.Cut(after, `"`)
			covered[key] = true // a secret named in the file
		}
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := Load(MapLookup(tc.inputs), files(tc.files), testSHA)
			require.Error(t, err)
			assert.Zero(t, cfg, "a failed Load returns no Config")

			var ie *InputError
			require.ErrorAs(t, err, &ie, "callers detect bad input with errors.As")
			all := InputErrors(err)
			require.NotEmpty(t, all)
			var got *InputError
			for _, e := range all {
				if e.Input == tc.input && strings.Contains(e.Problem, tc.problem) {
					got = e
				}
			}
			require.NotNil(t, got, "want an error on %q containing %q, got:\n%v", tc.input, tc.problem, err)

			msg := got.Error()
			assert.Contains(t, msg, fmt.Sprintf("input %q: ", tc.input))
			accepted := tc.accepted
			if accepted == "" {
				accepted = acceptedOf(t, tc.input)
			}
			assert.Contains(t, got.Accepted, accepted)
			assert.Contains(t, msg, "; accepted: "+got.Accepted)

			full := err.Error()
			for _, s := range append(allSecrets, secretValues(tc.inputs)...) {
				assert.NotContains(t, full, s, "an error shows a secret")
			}
			for _, s := range []string{"hunter2pass", "ghp_fileCanary99", "filecanary", "alertcanary", "slack canary", "envcanary"} {
				assert.NotContains(t, full, s, "an error shows a secret")
			}
		})
	}

	for _, in := range Names() {
		assert.True(t, covered[in.Name], "no bad-input case covers %q", in.Name)
	}
}

// secretValues returns the secret inputs' values in m.
func secretValues(m map[string]string) []string {
	var out []string
	for _, in := range Names() {
		if in.Kind == KindSecret && m[in.Name] != "" {
			out = append(out, m[in.Name])
		}
	}
	return out
}

// TestErrorMessagesGolden keeps every message a user can see in one file,
// so a change in wording shows up in review.
func TestErrorMessagesGolden(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	for _, tc := range badCases() {
		_, err := Load(MapLookup(tc.inputs), files(tc.files), testSHA)
		require.Error(t, err)
		fmt.Fprintf(&b, "## %s\n%s\n\n", tc.name, err)
	}
	golden(t, "testdata/errors.golden", b.String())
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create it")
	assert.Equal(t, string(want), got)
}

func TestLoadMessageFormat(t *testing.T) {
	t.Parallel()
	_, err := Load(MapLookup(with(validInputs(), "monitor-duration", "-5m")), nil, testSHA)
	require.EqualError(t, err, `input "monitor-duration": "-5m" is negative; accepted: a Go duration such as 90s or 5m, or whole seconds such as 300`)
}

func TestLoadReportsEveryMistake(t *testing.T) {
	t.Parallel()
	in := map[string]string{
		"strategy":    "canary",
		"timeout":     "-1s",
		"min-samples": "0",
		"url":         "example.com",
	}
	_, err := Load(MapLookup(in), nil, testSHA)
	require.Error(t, err)
	var names []string
	for _, e := range InputErrors(err) {
		names = append(names, e.Input)
	}
	assert.Equal(t, []string{"environment", "strategy", "url", "timeout", "min-samples", "kubeconfig", "deployment", "image"}, names)
}

func TestLoadDefaultsPerEnvironment(t *testing.T) {
	t.Parallel()
	base := Config{
		Command:                     CommandDeploy,
		Kubeconfig:                  Secret(kubeSecret),
		Namespace:                   "default",
		Deployment:                  "api",
		Image:                       "ghcr.io/acme/api:1.2.3",
		Service:                     "api",
		HealthPaths:                 []string{"/health", "/health/ready", "/health/detailed"},
		VersionCheck:                VersionCheck{Mode: VersionCheckAuto},
		Timeout:                     300 * time.Second,
		RolloutTimeout:              10 * time.Minute,
		MonitorInterval:             10 * time.Second,
		AlertResponseTime:           3 * time.Second,
		AlertErrorRate:              0.10,
		AlertAvailability:           0.95,
		AlertConsecutiveFailures:    3,
		RollbackErrorRate:           0.25,
		RollbackConsecutiveFailures: 5,
		MinSamples:                  10,
		MetricsRequests:             "http_requests_total",
		MetricsDuration:             "http_request_duration_seconds",
		MetricsStatusLabel:          "status",
		MinRequests:                 20,
		AutoRollback:                true,
		GitHubDeployment:            true,
		DeploymentID:                testSHA,
		LockTimeout:                 5 * time.Minute,
		Promotion:                   PromotionAuto,
		Auth:                        AuthKubeconfig,
	}
	tests := []struct {
		env      string
		strategy Strategy
		monitor  time.Duration
	}{
		{"staging", Rolling, 5 * time.Minute},
		{"production", BlueGreen, 30 * time.Minute},
		{"Production", BlueGreen, 30 * time.Minute},
		{"qa", Rolling, 5 * time.Minute},
		{"preview-42", Rolling, 5 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			t.Parallel()
			in := map[string]string{
				"environment": tt.env,
				"kubeconfig":  kubeSecret,
				"deployment":  "api",
				"image":       "ghcr.io/acme/api:1.2.3",
			}
			cfg, err := Load(MapLookup(in), files(nil), testSHA)
			require.NoError(t, err)
			want := base
			want.Environment = tt.env
			want.Strategy = tt.strategy
			want.MonitorDuration = tt.monitor
			if tt.strategy == BlueGreen {
				want.ScaleDownDelay = 10 * time.Minute // production keeps the old color warm
			}
			assert.Equal(t, want, cfg)
		})
	}
}

// readExample returns testdata/greenlight.yml, the annotated example file.
func readExample(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(exampleFile)
	require.NoError(t, err)
	return string(b)
}

func TestLoadPrecedence(t *testing.T) {
	t.Parallel()
	example := readExample(t)
	base := map[string]string{"kubeconfig": kubeSecret, "image": "ghcr.io/acme/api:2"}
	tests := []struct {
		name   string
		inputs map[string]string
		check  func(t *testing.T, c Config)
	}{
		{
			name:   "defaults section beats built-in defaults",
			inputs: with(base, "environment", "staging"),
			check: func(t *testing.T, c Config) {
				assert.Equal(t, "payments", c.Namespace)
				assert.Equal(t, "payment-api", c.Deployment)
				assert.Equal(t, "payment-api", c.Service, "service defaults to the deployment name")
			},
		},
		{
			name:   "environment section beats defaults section",
			inputs: with(base, "environment", "production"),
			check: func(t *testing.T, c Config) {
				assert.Equal(t, "https://example.com", c.URL)
				assert.Equal(t, 3, c.Replicas)
				assert.Equal(t, BlueGreen, c.Strategy)
				assert.Equal(t, 0.02, c.AlertErrorRate, "2% in the production section")
				assert.Equal(t, 0.20, c.RollbackErrorRate, "0.20 in the defaults section")
				assert.Equal(t, 45*time.Minute, c.MonitorDuration)
				assert.Equal(t, []string{"/healthz", "/readyz"}, c.HealthPaths)
			},
		},
		{
			name:   "environment section beats built-in per-environment default",
			inputs: with(base, "environment", "staging"),
			check: func(t *testing.T, c Config) {
				assert.Equal(t, 2*time.Minute, c.MonitorDuration)
				assert.Equal(t, Rolling, c.Strategy)
				assert.Equal(t, "https://staging.example.com", c.URL)
				assert.Equal(t, 0, c.Replicas)
			},
		},
		{
			name: "explicit input beats everything",
			inputs: with(base, "environment", "production",
				"url", "https://canary.example.com/", "strategy", "rolling", "namespace", "payments-canary",
				"monitor-duration", "0", "health-paths", "/ping", "alert-error-rate", "0.05"),
			check: func(t *testing.T, c Config) {
				assert.Equal(t, "https://canary.example.com", c.URL, "trailing slash removed")
				assert.Equal(t, Rolling, c.Strategy)
				assert.Equal(t, "payments-canary", c.Namespace)
				assert.Equal(t, time.Duration(0), c.MonitorDuration)
				assert.Equal(t, []string{"/ping"}, c.HealthPaths)
				assert.Equal(t, 0.05, c.AlertErrorRate)
			},
		},
		{
			name:   "blank explicit input falls through to the file",
			inputs: with(base, "environment", "production", "url", "  ", "namespace", ""),
			check: func(t *testing.T, c Config) {
				assert.Equal(t, "https://example.com", c.URL)
				assert.Equal(t, "payments", c.Namespace)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := Load(MapLookup(tt.inputs), files(map[string]string{DefaultConfigPath: example}), testSHA)
			require.NoError(t, err)
			assert.Equal(t, DefaultConfigPath, cfg.ConfigFile)
			tt.check(t, cfg)
		})
	}
}

func TestLoadConfigFileChoice(t *testing.T) {
	t.Parallel()
	in := validInputs()
	t.Run("default path missing is fine", func(t *testing.T) {
		t.Parallel()
		cfg, err := Load(MapLookup(in), files(nil), testSHA)
		require.NoError(t, err)
		assert.Empty(t, cfg.ConfigFile)
	})
	t.Run("nil readFile means no file", func(t *testing.T) {
		t.Parallel()
		cfg, err := Load(MapLookup(in), nil, testSHA)
		require.NoError(t, err)
		assert.Empty(t, cfg.ConfigFile)
	})
	t.Run("explicit path is read instead of the default", func(t *testing.T) {
		t.Parallel()
		fsys := files(map[string]string{
			DefaultConfigPath: "defaults:\n  namespace: from-default\n",
			explicitFile:      "defaults:\n  namespace: from-explicit\n",
		})
		cfg, err := Load(MapLookup(with(in, "config", explicitFile)), fsys, testSHA)
		require.NoError(t, err)
		assert.Equal(t, "from-explicit", cfg.Namespace)
		assert.Equal(t, explicitFile, cfg.ConfigFile)
	})
	t.Run("read failure other than missing is reported", func(t *testing.T) {
		t.Parallel()
		readFile := func(string) ([]byte, error) { return nil, fs.ErrPermission }
		_, err := Load(MapLookup(in), readFile, testSHA)
		require.ErrorContains(t, err, `input "config": read config file ".github/greenlight.yml": permission denied`)
	})
	t.Run("file without environments accepts any environment", func(t *testing.T) {
		t.Parallel()
		fsys := files(map[string]string{DefaultConfigPath: "defaults:\n  namespace: payments\n"})
		cfg, err := Load(MapLookup(with(in, "environment", "preview-7")), fsys, testSHA)
		require.NoError(t, err)
		assert.Equal(t, "payments", cfg.Namespace)
	})
	t.Run("environment listed without settings is known", func(t *testing.T) {
		t.Parallel()
		fsys := files(map[string]string{DefaultConfigPath: "environments:\n  staging:\n  production:\n    url: https://example.com\n"})
		cfg, err := Load(MapLookup(in), fsys, testSHA)
		require.NoError(t, err)
		assert.Empty(t, cfg.URL)
	})
	t.Run("empty file is fine", func(t *testing.T) {
		t.Parallel()
		cfg, err := Load(MapLookup(in), files(map[string]string{DefaultConfigPath: ""}), testSHA)
		require.NoError(t, err)
		assert.Equal(t, DefaultConfigPath, cfg.ConfigFile)
	})
	t.Run("YAML types become input text", func(t *testing.T) {
		t.Parallel()
		file := `defaults:
  skip-tests: yes
  auto-rollback: false
  timeout: 90
  alert-error-rate: 0.10
  alert-availability: 99.5
  min-samples: 20
  manifests:
    - k8s/base
    - k8s/overlays/staging/*.yaml
  health-paths: /health, /ready
`
		cfg, err := Load(MapLookup(in), files(map[string]string{DefaultConfigPath: file}), testSHA)
		require.NoError(t, err)
		assert.True(t, cfg.SkipTests)
		assert.False(t, cfg.AutoRollback)
		assert.Equal(t, 90*time.Second, cfg.Timeout)
		assert.InDelta(t, 0.10, cfg.AlertErrorRate, 1e-12)
		assert.InDelta(t, 0.995, cfg.AlertAvailability, 1e-12)
		assert.Equal(t, 20, cfg.MinSamples)
		assert.Equal(t, []string{"k8s/base", "k8s/overlays/staging/*.yaml"}, cfg.Manifests)
		assert.Equal(t, []string{"/health", "/ready"}, cfg.HealthPaths)
	})
}

func TestLoadCommands(t *testing.T) {
	t.Parallel()
	minimal := map[string]string{"environment": "staging", "kubeconfig": kubeSecret}
	tests := []struct {
		name   string
		inputs map[string]string
		want   Command
	}{
		{"deploy with manifests only", with(minimal, "manifests", "k8s/\ndeploy/*.yaml"), CommandDeploy},
		{"health-check with a url only", with(minimal, "command", "health-check", "url", "https://staging.example.com"), CommandHealthCheck},
		{"monitor through the service proxy", with(minimal, "command", "monitor", "service", "api"), CommandMonitor},
		{"rollback by deployment name", with(minimal, "command", "ROLLBACK", "deployment", "api"), CommandRollback},
		{"scale with replicas", with(minimal, "command", "scale", "deployment", "api", "replicas", "4"), CommandScale},
		{"status", with(minimal, "command", "status", "deployment", "api"), CommandStatus},
		{"history", with(minimal, "command", "history", "deployment", "api"), CommandHistory},
		{"report", with(minimal, "command", "report", "deployment", "api"), CommandReport},
		{"maintenance", with(minimal, "command", "maintenance", "deployment", "api"), CommandMaintenance},
		{"blue-green with manifests and a service", with(minimal, "manifests", "k8s/", "strategy", "Blue-Green", "service", "web"), CommandDeploy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := Load(MapLookup(tt.inputs), nil, "")
			require.NoError(t, err)
			assert.Equal(t, tt.want, cfg.Command)
		})
	}
}

func TestActionLookup(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"INPUT_ENVIRONMENT":           "production",
		"INPUT_KUBECONFIG":            kubeSecret,
		"INPUT_DEPLOYMENT":            "api",
		"INPUT_IMAGE":                 "ghcr.io/acme/api:3",
		"INPUT_SKIP-TESTS":            "TRUE",
		"INPUT_HEALTH-CHECK-TOKEN":    hcSecret,
		"INPUT_ROLLBACK-ERROR-RATE":   "30%",
		"INPUT_MONITOR-DURATION":      "",
		"INPUT_SKIP_TESTS":            "false",
		"INPUT_WITH SPACE":            "wrong",
		"INPUT_WITH_SPACE":            "right",
		"INPUT_CONTINUE-ON-UNHEALTHY": "on",
	}
	getenv := func(k string) string { return env[k] }
	lookup := ActionLookup(getenv)

	v, ok := lookup("skip-tests")
	assert.True(t, ok)
	assert.Equal(t, "TRUE", v, "hyphens are kept: INPUT_SKIP-TESTS")
	_, ok = lookup("monitor-duration")
	assert.False(t, ok, "an empty variable is unset")
	_, ok = lookup("namespace")
	assert.False(t, ok)
	v, ok = lookup("with space")
	assert.True(t, ok)
	assert.Equal(t, "right", v, "spaces become underscores")

	cfg, err := Load(lookup, nil, testSHA)
	require.NoError(t, err)
	assert.True(t, cfg.SkipTests)
	assert.True(t, cfg.ContinueOnUnhealthy)
	assert.Equal(t, Secret(hcSecret), cfg.HealthCheckToken)
	assert.Equal(t, 0.30, cfg.RollbackErrorRate)
	assert.Equal(t, 30*time.Minute, cfg.MonitorDuration, "unset input falls back to the production default")
}

func TestMapLookup(t *testing.T) {
	t.Parallel()
	l := MapLookup(map[string]string{"a": "1", "b": ""})
	v, ok := l("a")
	assert.True(t, ok)
	assert.Equal(t, "1", v)
	_, ok = l("b")
	assert.False(t, ok)
	_, ok = l("c")
	assert.False(t, ok)
}

func TestLoadNilLookup(t *testing.T) {
	t.Parallel()
	_, err := Load(nil, nil, "")
	var names []string
	for _, e := range InputErrors(err) {
		names = append(names, e.Input)
	}
	assert.Equal(t, []string{"environment", "kubeconfig", "deployment", "image"}, names)
}

func TestSecretsInPlainInputsAreHidden(t *testing.T) {
	t.Parallel()
	// A token pasted into the wrong input must not come back in a message,
	// not even shortened.
	long := strings.Repeat("k", 80) + "-kubecanary"
	in := with(validInputs(), "kubeconfig", long, "context", "ctx\x00"+long, "manifests", "ok.yaml,"+ghSecret+"[")
	_, err := Load(MapLookup(in), nil, testSHA)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "kkkkkkkk")
	assert.NotContains(t, err.Error(), ghSecret)
	assert.Contains(t, err.Error(), `input "context": the value contains a control character`)
	assert.Contains(t, err.Error(), `input "manifests": item 2 is not a valid glob pattern`)
}

func TestInputErrors(t *testing.T) {
	t.Parallel()
	a := &InputError{Input: "a", Problem: "p"}
	b := &InputError{Input: "b", Problem: "q", Accepted: "x"}
	err := fmt.Errorf("load: %w", errors.Join(a, errors.New("other"), fmt.Errorf("wrapped: %w", b)))
	assert.Equal(t, []*InputError{a, b}, InputErrors(err))
	assert.Nil(t, InputErrors(nil))
	assert.Equal(t, `input "a": p`, a.Error())
	assert.Equal(t, `input "b": q; accepted: x`, b.Error())
}

func TestLoadCapsFileErrors(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("defaults:\n")
	for i := range 25 {
		fmt.Fprintf(&b, "  unknown-%02d: 1\n", i)
	}
	_, err := Load(MapLookup(validInputs()), files(map[string]string{DefaultConfigPath: b.String()}), testSHA)
	all := InputErrors(err)
	require.Len(t, all, maxFileErrors+1)
	assert.Equal(t, "5 more problems in .github/greenlight.yml are not shown", all[maxFileErrors].Problem)
}

func BenchmarkLoad(b *testing.B) {
	example, err := os.ReadFile(exampleFile)
	require.NoError(b, err)
	fsys := files(map[string]string{DefaultConfigPath: string(example)})
	in := MapLookup(with(validInputs(), "environment", "production"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(in, fsys, testSHA); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLoadWithoutFile(b *testing.B) {
	in := MapLookup(validInputs())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(in, nil, testSHA); err != nil {
			b.Fatal(err)
		}
	}
}

// A secret pasted under a non-text key of the config file must not be
// quoted by the YAML parser's message.
func TestConfigFileNonTextKeyDoesNotLeak(t *testing.T) {
	t.Parallel()
	const secret = "https://hooks.slack.com/services/T0/B0/FILEsecret123"
	file := "defaults:\n  ~:\n    slack-webhook-url: " + secret + "\n"
	_, err := Load(MapLookup(map[string]string{"environment": "staging", "kubeconfig": "apiVersion: v1", "image": "app:v1", "deployment": "app", "config": "g.yml"}),
		func(string) ([]byte, error) { return []byte(file), nil }, "")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "FILEsecret123")
	assert.Contains(t, err.Error(), "keys must be plain text")
}

func TestParseVersionCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want VersionCheck
	}{
		{"", VersionCheck{Mode: VersionCheckAuto}},
		{"auto", VersionCheck{Mode: VersionCheckAuto}},
		{"off", VersionCheck{Mode: VersionCheckOff}},
		{"json:version@/version", VersionCheck{Mode: VersionCheckJSON, Name: "version", Path: "/version"}},
		{"json:version", VersionCheck{Mode: VersionCheckJSON, Name: "version"}},
		{"header:X-App-Version@/healthz", VersionCheck{Mode: VersionCheckHeader, Name: "X-App-Version", Path: "/healthz"}},
	}
	for _, tt := range tests {
		got, problem := ParseVersionCheck(tt.in)
		assert.Empty(t, problem, tt.in)
		assert.Equal(t, tt.want, got, tt.in)
		if tt.in != "" {
			assert.Equal(t, tt.in, got.String())
		}
	}
}
