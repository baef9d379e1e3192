package monitor

import (
	"strings"
	"testing"
	"time"

	"github.com/ebeautything/greenlight/internal/goldenfile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// healthy is a snapshot on which no default rule fires; cases change one figure.
func healthy() Snapshot {
	return Snapshot{
		Count:        20,
		Availability: 1,
		Latency:      Latency{P95: 100 * time.Millisecond},
		Window:       WindowStats{Size: 20, Count: 20, Availability: 1, P95: 100 * time.Millisecond},
	}
}

func TestEvaluateThresholds(t *testing.T) {
	t.Parallel()
	withRollbackLatency := DefaultRules()
	withRollbackLatency.RollbackResponseTime = 5 * time.Second
	withRollbackAvailability := DefaultRules()
	withRollbackAvailability.RollbackAvailability = 0.90

	type want struct {
		rule      RuleID
		action    Action
		threshold float64
	}
	tests := []struct {
		name  string
		rules Rules
		edit  func(*Snapshot)
		want  []want
	}{
		{"healthy", DefaultRules(), func(*Snapshot) {}, nil},

		{"p95 just below alert", DefaultRules(), func(s *Snapshot) { s.Window.P95 = 3*time.Second - time.Millisecond }, nil},
		{"p95 at alert", DefaultRules(), func(s *Snapshot) { s.Window.P95 = 3 * time.Second }, nil},
		{"p95 just above alert", DefaultRules(), func(s *Snapshot) { s.Window.P95 = 3*time.Second + time.Millisecond }, []want{{RuleResponseTime, Alert, 3}}},
		{"p95 far above, no rollback threshold by default", DefaultRules(), func(s *Snapshot) { s.Window.P95 = time.Minute }, []want{{RuleResponseTime, Alert, 3}}},
		{"p95 just below rollback", withRollbackLatency, func(s *Snapshot) { s.Window.P95 = 5*time.Second - time.Millisecond }, []want{{RuleResponseTime, Alert, 3}}},
		{"p95 at rollback", withRollbackLatency, func(s *Snapshot) { s.Window.P95 = 5 * time.Second }, []want{{RuleResponseTime, Alert, 3}}},
		{"p95 just above rollback", withRollbackLatency, func(s *Snapshot) { s.Window.P95 = 5*time.Second + time.Millisecond }, []want{{RuleResponseTime, Rollback, 5}}},
		{"overall p95 is not the rule", DefaultRules(), func(s *Snapshot) { s.Latency.P95 = time.Minute }, nil},

		{"error rate just below alert", DefaultRules(), func(s *Snapshot) { s.Window.ErrorRate = 0.0999 }, nil},
		{"error rate at alert", DefaultRules(), func(s *Snapshot) { s.Window.Errors, s.Window.ErrorRate = 2, 2.0/20 }, nil},
		{"error rate just above alert", DefaultRules(), func(s *Snapshot) { s.Window.ErrorRate = 0.1001 }, []want{{RuleErrorRate, Alert, 0.10}}},
		{"error rate just below rollback", DefaultRules(), func(s *Snapshot) { s.Window.ErrorRate = 0.2499 }, []want{{RuleErrorRate, Alert, 0.10}}},
		{"error rate at rollback", DefaultRules(), func(s *Snapshot) { s.Window.Errors, s.Window.ErrorRate = 5, 5.0/20 }, []want{{RuleErrorRate, Alert, 0.10}}},
		{"error rate just above rollback", DefaultRules(), func(s *Snapshot) { s.Window.ErrorRate = 0.2501 }, []want{{RuleErrorRate, Rollback, 0.25}}},

		{"availability just above alert", DefaultRules(), func(s *Snapshot) { s.Availability = 0.9501 }, nil},
		{"availability at alert", DefaultRules(), func(s *Snapshot) { s.Availability = 19.0 / 20 }, nil},
		{"availability just below alert", DefaultRules(), func(s *Snapshot) { s.Availability = 0.9499 }, []want{{RuleAvailability, Alert, 0.95}}},
		{"availability zero, no rollback floor by default", DefaultRules(), func(s *Snapshot) { s.Availability = 0 }, []want{{RuleAvailability, Alert, 0.95}}},
		{"availability just above rollback", withRollbackAvailability, func(s *Snapshot) { s.Availability = 0.9001 }, []want{{RuleAvailability, Alert, 0.95}}},
		{"availability at rollback", withRollbackAvailability, func(s *Snapshot) { s.Availability = 0.90 }, []want{{RuleAvailability, Alert, 0.95}}},
		{"availability just below rollback", withRollbackAvailability, func(s *Snapshot) { s.Availability = 0.8999 }, []want{{RuleAvailability, Rollback, 0.90}}},
		{"window availability is not the rule", DefaultRules(), func(s *Snapshot) { s.Window.Availability = 0 }, nil},

		{"streak just below alert", DefaultRules(), func(s *Snapshot) { s.ConsecutiveFailures = 2 }, nil},
		{"streak at alert", DefaultRules(), func(s *Snapshot) { s.ConsecutiveFailures = 3 }, nil},
		{"streak just above alert", DefaultRules(), func(s *Snapshot) { s.ConsecutiveFailures = 4 }, []want{{RuleConsecutiveFailures, Alert, 3}}},
		{"streak at rollback", DefaultRules(), func(s *Snapshot) { s.ConsecutiveFailures = 5 }, []want{{RuleConsecutiveFailures, Alert, 3}}},
		{"streak just above rollback", DefaultRules(), func(s *Snapshot) { s.ConsecutiveFailures = 6 }, []want{{RuleConsecutiveFailures, Rollback, 5}}},
		{"longest streak is history, not the rule", DefaultRules(), func(s *Snapshot) { s.MaxConsecutiveFailures = 50 }, nil},

		{"everything at once, in a fixed order", DefaultRules(), func(s *Snapshot) {
			s.Window.P95, s.Window.ErrorRate, s.Availability, s.ConsecutiveFailures = 4*time.Second, 0.5, 0.5, 10
		}, []want{{RuleResponseTime, Alert, 3}, {RuleErrorRate, Rollback, 0.25}, {RuleAvailability, Alert, 0.95}, {RuleConsecutiveFailures, Rollback, 5}}},

		{"zero thresholds are disabled", Rules{Window: 20, MinSamples: 10}, func(s *Snapshot) {
			s.Window.P95, s.Window.ErrorRate, s.Availability, s.ConsecutiveFailures = time.Hour, 1, 0, 100
		}, nil},
		{"alert only, no rollback", Rules{Window: 20, MinSamples: 10, AlertErrorRate: 0.1}, func(s *Snapshot) { s.Window.ErrorRate = 1 }, []want{{RuleErrorRate, Alert, 0.1}}},
		{"rollback only, no alert", Rules{Window: 20, MinSamples: 10, RollbackConsecutiveFailures: 2}, func(s *Snapshot) { s.ConsecutiveFailures = 3 }, []want{{RuleConsecutiveFailures, Rollback, 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			snap := healthy()
			tt.edit(&snap)
			got := Evaluate(snap, tt.rules)
			var gotWant []want
			for _, v := range got {
				gotWant = append(gotWant, want{v.Rule, v.Action, v.Threshold})
				assert.NotEmpty(t, v.Message)
				assert.False(t, strings.Contains(v.Message, "\n"), "one sentence, one line")
			}
			assert.Equal(t, tt.want, gotWant)
		})
	}
}

func TestEvaluateMinSamples(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		count   int
		edit    func(*Snapshot)
		rule    RuleID
		minimum int
		fires   bool
	}{
		{"one early failure is not 100% errors", 1, func(s *Snapshot) { s.Window.ErrorRate = 1 }, RuleErrorRate, 10, false},
		{"error rate one short", 9, func(s *Snapshot) { s.Window.ErrorRate = 1 }, RuleErrorRate, 10, false},
		{"error rate at the minimum", 10, func(s *Snapshot) { s.Window.ErrorRate = 1 }, RuleErrorRate, 10, true},
		{"p95 one short", 9, func(s *Snapshot) { s.Window.P95 = time.Minute }, RuleResponseTime, 10, false},
		{"p95 at the minimum", 10, func(s *Snapshot) { s.Window.P95 = time.Minute }, RuleResponseTime, 10, true},
		{"availability one short", 9, func(s *Snapshot) { s.Availability = 0 }, RuleAvailability, 10, false},
		{"availability at the minimum", 10, func(s *Snapshot) { s.Availability = 0 }, RuleAvailability, 10, true},
		{"streaks are not rates", 6, func(s *Snapshot) { s.ConsecutiveFailures = 6 }, RuleConsecutiveFailures, 10, true},
		{"minimum zero still needs a sample", 0, func(s *Snapshot) { s.Window.ErrorRate, s.Availability = 1, 0 }, RuleErrorRate, 0, false},
		{"minimum zero, one sample", 1, func(s *Snapshot) { s.Window.ErrorRate = 1 }, RuleErrorRate, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rules := DefaultRules()
			rules.MinSamples = tt.minimum
			snap := healthy()
			snap.Count, snap.Window.Count = int64(tt.count), tt.count
			tt.edit(&snap)
			var fired []RuleID
			for _, v := range Evaluate(snap, rules) {
				fired = append(fired, v.Rule)
			}
			if tt.fires {
				assert.Contains(t, fired, tt.rule)
			} else {
				assert.NotContains(t, fired, tt.rule)
			}
		})
	}
}

func TestNotJudged(t *testing.T) {
	t.Parallel()
	noAvailability := DefaultRules()
	noAvailability.AlertAvailability = 0
	noRates := DefaultRules()
	noRates.AlertErrorRate, noRates.RollbackErrorRate, noRates.AlertResponseTime = 0, 0, 0
	tests := []struct {
		name  string
		count int
		rules Rules
		want  []RuleID
	}{
		{"no sample judges nothing", 0, DefaultRules(), []RuleID{RuleResponseTime, RuleErrorRate, RuleAvailability}},
		{"one short of the minimum", 9, DefaultRules(), []RuleID{RuleResponseTime, RuleErrorRate, RuleAvailability}},
		{"at the minimum every rule is judged", 10, DefaultRules(), nil},
		{"a disabled rule is not listed", 3, noAvailability, []RuleID{RuleResponseTime, RuleErrorRate}},
		{"only availability on", 3, noRates, []RuleID{RuleAvailability}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			snap := healthy()
			snap.Count, snap.Window.Count = int64(tt.count), tt.count
			assert.Equal(t, tt.want, NotJudged(snap, tt.rules))
			// Whatever the figures, a rule listed cannot fire.
			snap.Window.ErrorRate, snap.Window.P95, snap.Availability = 1, time.Hour, 0
			for _, v := range Evaluate(snap, tt.rules) {
				assert.NotContains(t, tt.want, v.Rule, "%s fired though not judged", v.Rule)
			}
		})
	}
}

func TestVerdictMessagesGolden(t *testing.T) {
	t.Parallel()
	rules := DefaultRules()
	rules.RollbackResponseTime = 10 * time.Second
	rules.RollbackAvailability = 0.999
	snaps := []func(*Snapshot){
		func(s *Snapshot) { s.Window.ErrorRate = 8.0 / 20 },
		func(s *Snapshot) { s.Window.ErrorRate = 3.0 / 20 },
		func(s *Snapshot) { s.Window.P95 = 3200 * time.Millisecond },
		func(s *Snapshot) { s.Window.P95 = 3*time.Second + 400*time.Microsecond },
		func(s *Snapshot) { s.Window.P95 = 12 * time.Second },
		func(s *Snapshot) { s.Count, s.Availability = 150, 140.0/150 },
		func(s *Snapshot) { s.Count, s.Availability = 5000, 0.9985 },
		func(s *Snapshot) { s.ConsecutiveFailures = 4 },
		func(s *Snapshot) { s.ConsecutiveFailures = 6 },
	}
	var b strings.Builder
	for _, edit := range snaps {
		snap := healthy()
		edit(&snap)
		got := Evaluate(snap, rules)
		require.NotEmpty(t, got)
		for _, v := range got {
			b.WriteString(string(v.Rule) + " " + string(v.Action) + ": " + v.Message + "\n")
		}
	}
	goldenfile.Assert(t, "verdicts.golden", []byte(b.String()))
}

func TestRulesValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		edit    func(*Rules)
		wantErr []string
	}{
		{"defaults", func(*Rules) {}, nil},
		{"no window", func(r *Rules) { r.Window = 0 }, []string{"window must be at least 1"}},
		{"minimum beyond window", func(r *Rules) { r.MinSamples = 21 }, []string{"min samples must be between 0 and the window 20, got 21"}},
		{"negative latency", func(r *Rules) { r.AlertResponseTime = -time.Second }, []string{"alert response time must not be negative"}},
		{"percent instead of fraction", func(r *Rules) { r.AlertErrorRate, r.RollbackAvailability = 10, 99.9 },
			[]string{"alert error rate must be a fraction between 0 and 1, got 10", "rollback availability must be a fraction between 0 and 1, got 99.9"}},
		{"negative streak", func(r *Rules) { r.RollbackConsecutiveFailures = -1 }, []string{"rollback consecutive failures must not be negative"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := DefaultRules()
			tt.edit(&r)
			err := r.Validate()
			if tt.wantErr == nil {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tt.wantErr {
				assert.ErrorContains(t, err, w)
			}
		})
	}
}
