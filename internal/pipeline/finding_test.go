package pipeline

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/ebeautything/greenlight/internal/monitor"
)

func TestFailuresFinding(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		kinds []monitor.FailureCount
		other int
		want  string
	}{
		{"no failure says nothing", nil, 0, ""},
		{"one reason", []monitor.FailureCount{{Reason: "HTTP 502", Count: 2}}, 0, " (2× HTTP 502)"},
		{"in the order given, the rest last",
			[]monitor.FailureCount{{Reason: "HTTP 502", Count: 2}, {Reason: "EOF", Count: 1}}, 3,
			" (2× HTTP 502, 1× EOF, 3× other reasons)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tc.want, failuresFinding(tc.kinds, tc.other))
		})
	}
}

func TestNotJudgedRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ids  []monitor.RuleID
		want string
	}{
		{"all judged says nothing", nil, ""},
		{"one", []monitor.RuleID{monitor.RuleAvailability}, "availability"},
		{"two", []monitor.RuleID{monitor.RuleResponseTime, monitor.RuleErrorRate}, "response time and error rate"},
		{"three", []monitor.RuleID{monitor.RuleResponseTime, monitor.RuleErrorRate, monitor.RuleAvailability}, "response time, error rate and availability"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tc.want, notJudgedRules(tc.ids))
		})
	}
}
