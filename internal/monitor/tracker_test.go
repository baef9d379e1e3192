package monitor

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestTrackerEpisodes(t *testing.T) {
	t.Parallel()
	errAlert := Verdict{Rule: RuleErrorRate, Action: Alert, Observed: 0.15}
	errWorse := Verdict{Rule: RuleErrorRate, Action: Alert, Observed: 0.20}
	errRollback := Verdict{Rule: RuleErrorRate, Action: Rollback, Observed: 0.30}
	slow := Verdict{Rule: RuleResponseTime, Action: Alert, Observed: 4}
	streak := Verdict{Rule: RuleConsecutiveFailures, Action: Alert, Observed: 4}

	tests := []struct {
		name  string
		ticks [][]Verdict
		want  [][]string // per tick: "raised:rule" or "resolved:rule"
	}{
		{
			name:  "healthy throughout",
			ticks: [][]Verdict{nil, nil, nil},
			want:  [][]string{nil, nil, nil},
		},
		{
			name:  "raised once while firing, resolved once",
			ticks: [][]Verdict{nil, {errAlert}, {errWorse}, {errAlert}, nil, nil},
			want:  [][]string{nil, {"raised:error-rate"}, nil, nil, {"resolved:error-rate"}, nil},
		},
		{
			name:  "flapping makes two episodes",
			ticks: [][]Verdict{nil, {errAlert}, nil, {errAlert}},
			want:  [][]string{nil, {"raised:error-rate"}, {"resolved:error-rate"}, {"raised:error-rate"}},
		},
		{
			name:  "escalating to rollback stays one episode",
			ticks: [][]Verdict{{errAlert}, {errRollback}, nil},
			want:  [][]string{{"raised:error-rate"}, nil, {"resolved:error-rate"}},
		},
		{
			name:  "rules have their own episodes",
			ticks: [][]Verdict{{slow}, {slow, errAlert}, {errAlert, streak}, {streak}, nil},
			want: [][]string{
				{"raised:response-time"},
				{"raised:error-rate"},
				{"resolved:response-time", "raised:consecutive-failures"},
				{"resolved:error-rate"},
				{"resolved:consecutive-failures"},
			},
		},
		{
			name:  "several resolve in raise order",
			ticks: [][]Verdict{{streak, slow}, nil},
			want:  [][]string{{"raised:consecutive-failures", "raised:response-time"}, {"resolved:consecutive-failures", "resolved:response-time"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var tr Tracker
			raised, resolved := map[RuleID]int{}, map[RuleID]int{}
			for i, vs := range tt.ticks {
				at := t0.Add(time.Duration(i) * time.Second)
				var got []string
				for _, ch := range tr.Update(at, vs) {
					got = append(got, string(ch.State)+":"+string(ch.Rule))
					assert.Equal(t, at, ch.Time)
					if ch.State == AlertRaised {
						raised[ch.Rule]++
					} else {
						resolved[ch.Rule]++
					}
				}
				assert.Equal(t, tt.want[i], got, "tick %d", i)
				assert.Len(t, tr.Active(), len(vs), "tick %d", i)
			}
			for rule, n := range resolved {
				assert.LessOrEqual(t, n, raised[rule], "a rule cannot resolve more often than it was raised")
			}
		})
	}
}

func TestTrackerKeepsLatestVerdict(t *testing.T) {
	t.Parallel()
	var tr Tracker
	tr.Update(t0, []Verdict{{Rule: RuleErrorRate, Action: Alert, Observed: 0.15}})
	tr.Update(t0.Add(time.Second), []Verdict{{Rule: RuleErrorRate, Action: Alert, Observed: 0.20}})
	changes := tr.Update(t0.Add(2*time.Second), nil)
	if assert.Len(t, changes, 1) {
		assert.Equal(t, 0.20, changes[0].Verdict.Observed, "a resolution reports the last firing figure")
	}
}
