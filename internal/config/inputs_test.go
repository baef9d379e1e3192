package config

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNames(t *testing.T) {
	t.Parallel()
	kebab := regexp.MustCompile(`^[a-z]+(-[a-z]+)*$`)
	seen := make(map[string]bool)
	for _, in := range Names() {
		t.Run(in.Name, func(t *testing.T) {
			assert.Regexp(t, kebab, in.Name)
			assert.False(t, seen[in.Name], "duplicate input")
			seen[in.Name] = true
			assert.True(t, strings.HasSuffix(in.Description, "."), "description is a full sentence: %q", in.Description)
			assert.NotEmpty(t, in.Accepted)
			assert.NotEmpty(t, in.Kind)
			require.NotNil(t, in.set)
			if in.Kind == KindSecret || in.Name == "environment" || in.Name == "command" || in.Name == "config" || in.Name == "deployment-id" {
				assert.False(t, in.InFile, "%s must not be settable from the file", in.Name)
			}
			if in.defaultFor == nil && in.Default != "" {
				// A literal default is also parsed; it must be valid.
				var c Config
				assert.Empty(t, in.set(&c, in.Default, show(in.Default)), "default %q does not parse", in.Default)
			}
		})
	}
	names := Names()
	assert.Equal(t, "environment", names[0].Name)
	names[0].Name = "changed"
	assert.Equal(t, "environment", Names()[0].Name, "Names returns a fresh slice")
}

// TestNamesCoverConfig makes sure every Config field has an input, so the
// list stays the single source of truth.
func TestNamesCoverConfig(t *testing.T) {
	t.Parallel()
	in := map[string]string{}
	for _, i := range Names() {
		in[i.Name] = ""
	}
	assert.Len(t, in, 61)
	assert.Contains(t, in, "replicas")
	for _, name := range []string{
		"environment", "kubeconfig", "context", "auth", "audience", "server", "certificate-authority-data", "namespace", "deployment", "container", "image", "manifests",
		"strategy", "service", "service-port", "url", "health-check-token", "health-paths", "smoke-tests",
		"skip-tests", "timeout", "rollout-timeout", "monitor-duration", "monitor-interval", "alert-response-time",
		"alert-error-rate", "alert-availability", "alert-consecutive-failures", "rollback-error-rate",
		"rollback-consecutive-failures", "min-samples", "auto-rollback", "github-token", "slack-webhook-url",
		"alert-webhook-url", "alert-webhook-secret", "deployment-id", "event-log", "config", "continue-on-unhealthy",
		"lock-timeout", "reason", "scale-down-delay", "promotion", "command",
	} {
		assert.Contains(t, in, name)
	}
}

// TestNamesGolden shows the generated documentation of every input.
func TestNamesGolden(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	for _, in := range Names() {
		fmt.Fprintf(&b, "%s (%s", in.Name, in.Kind)
		if in.Required {
			b.WriteString(", required")
		}
		if in.InFile {
			b.WriteString(", config file")
		}
		fmt.Fprintf(&b, ")\n  %s\n", in.Description)
		if in.Default != "" {
			fmt.Fprintf(&b, "  Default: %s.\n", in.Default)
		}
		fmt.Fprintf(&b, "  Accepted: %s.\n\n", in.Accepted)
	}
	golden(t, "testdata/inputs.golden", b.String())
}

func TestParseBool(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"true", "TRUE", "yes", "Yes", "1", "on", "ON"} {
		b, p := parseBool(v)
		assert.Empty(t, p, v)
		assert.True(t, b, v)
	}
	for _, v := range []string{"false", "False", "no", "NO", "0", "off", "Off"} {
		b, p := parseBool(v)
		assert.Empty(t, p, v)
		assert.False(t, b, v)
	}
	for _, v := range []string{"", "y", "n", "2", "truee", "enabled"} {
		_, p := parseBool(v)
		assert.Equal(t, "is not a boolean", p, v)
	}
}

func TestParseDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    time.Duration
		problem string
	}{
		{"300", 300 * time.Second, ""},
		{"0", 0, ""},
		{"+30", 30 * time.Second, ""},
		{"90s", 90 * time.Second, ""},
		{"5m", 5 * time.Minute, ""},
		{"1h30m", 90 * time.Minute, ""},
		{"250ms", 250 * time.Millisecond, ""},
		{"0s", 0, ""},
		{"-0", 0, ""},
		{"-5m", 0, "is negative"},
		{"-5", 0, "is negative"},
		{"-1ns", 0, "is negative"},
		{"1.5", 0, "is not a duration"},
		{"5 m", 0, "is not a duration"},
		{"5M", 0, "is not a duration"},
		{"1d", 0, "is not a duration"},
		{"", 0, "is not a duration"},
		{"-", 0, "is not a duration"},
		{"9223372036", 9223372036 * time.Second, ""},
		{"9223372037", 0, "is too large"},
		{"99999999999999999999", 0, "is too large"},
		{"9999999999h", 0, "is not a duration"},
	}
	for _, tt := range tests {
		got, p := parseDuration(tt.in)
		assert.Equal(t, tt.problem, p, tt.in)
		assert.Equal(t, tt.want, got, tt.in)
	}
}

func TestParsePercent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    float64
		problem string
	}{
		{"10", 0.10, ""},
		{"10%", 0.10, ""},
		{"0.1", 0.1, ""},
		{"0.10", 0.1, ""},
		{".5", 0.5, ""},
		{"1.0", 1, ""},
		{"1.", 1, ""},
		{"1%", 0.01, ""},
		{"100%", 1, ""},
		{"100", 1, ""},
		{"12.5", 0.125, ""},
		{"0.5%", 0.005, ""},
		{"0", 0, ""},
		{"0%", 0, ""},
		{"-0", 0, ""},
		{" 25 %", 0.25, ""},
		{"1", 0, "is ambiguous: write 1% for one percent or 100% for all"},
		{"01", 0, "is ambiguous: write 1% for one percent or 100% for all"},
		{"101", 0, "is above 100%"},
		{"100.5%", 0, "is above 100%"},
		{"1.5", 0, "is above 100%"}, // a bare number above 1 is a percentage: 1.5%
		{"-5%", 0, "is negative"},
		{"-0.1", 0, "is negative"},
		{"", 0, "is not a percentage"},
		{"%", 0, "is not a percentage"},
		{"ten", 0, "is not a percentage"},
		{"NaN", 0, "is not a percentage"},
		{"Inf", 0, "is not a percentage"},
		{"1e1", 0, "is not a percentage"},
		{"0x10", 0, "is not a percentage"},
		{"1..2", 0, "is not a percentage"},
		{"10%%", 0, "is not a percentage"},
	}
	for _, tt := range tests {
		got, p := parsePercent(tt.in)
		if tt.in == "1.5" {
			// 1.5 means 1.5 percent, which is valid.
			assert.Empty(t, p)
			assert.InDelta(t, 0.015, got, 1e-12)
			continue
		}
		assert.Equal(t, tt.problem, p, tt.in)
		assert.InDelta(t, tt.want, got, 1e-12, tt.in)
	}
}

func TestFormatPercent(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "10%", formatPercent(0.1))
	assert.Equal(t, "12.5%", formatPercent(0.125))
	assert.Equal(t, "0.5%", formatPercent(0.005))
	assert.Equal(t, "100%", formatPercent(1))
	assert.Equal(t, "0%", formatPercent(0))
}

func TestParseCount(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    int
		problem string
	}{
		{"3", 3, ""},
		{"1", 1, ""},
		{"0", 0, "is below 1"},
		{"-2", 0, "is below 1"},
		{"2.0", 0, "is not a whole number"},
		{"", 0, "is not a whole number"},
		{"1e3", 0, "is not a whole number"},
		{"100", 0, "is above 99"},
		{"99999999999999999999999", 0, "is above 99"},
	}
	for _, tt := range tests {
		got, p := parseCount(tt.in, 1, 99)
		assert.Equal(t, tt.problem, p, tt.in)
		assert.Equal(t, tt.want, got, tt.in)
	}
}

func TestSplitList(t *testing.T) {
	t.Parallel()
	assert.Equal(t, []string{"a", "b", "c"}, splitList("a, b,\nc\n"))
	assert.Equal(t, []string{"k8s/", "deploy/*.yaml"}, splitList("k8s/\r\n  deploy/*.yaml  \n\n"))
	assert.Nil(t, splitList(" , \n"))
}

func TestShow(t *testing.T) {
	t.Parallel()
	assert.Equal(t, `"5m"`, show("5m"))
	assert.Equal(t, hidden, show("https://user:pw@example.com"))
	assert.Equal(t, hidden, show("user:pw@host"))
	assert.Equal(t, `"ghcr.io/acme/api@sha256:abc"`, show("ghcr.io/acme/api@sha256:abc"))
	long := show(strings.Repeat("x", 100))
	assert.Contains(t, long, "(shortened)")
	assert.Less(t, len(long), 90)
}

func TestEditDistance(t *testing.T) {
	t.Parallel()
	assert.Equal(t, 0, editDistance("abc", "abc", 3))
	assert.Equal(t, 1, editDistance("replica", "replicas", 3))
	assert.Equal(t, 2, editDistance("tmeout", "timeouts", 3))
	assert.Equal(t, 3, editDistance("x", "monitor-duration", 3))
	assert.Equal(t, "monitor-duration", closest("monitor_duration", Names()))
	assert.Equal(t, "", closest("zzzzzz", Names()))
}
