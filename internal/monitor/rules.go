package monitor

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// RuleID names a threshold rule with a stable id that reports, alerts and
// configuration can rely on.
type RuleID string

// The rules Evaluate knows, in the order it reports them.
const (
	// RuleResponseTime compares the window's p95 latency with a limit.
	RuleResponseTime RuleID = "response-time"
	// RuleErrorRate compares the window's error rate with a limit.
	RuleErrorRate RuleID = "error-rate"
	// RuleAvailability compares the whole run's availability with a floor.
	RuleAvailability RuleID = "availability"
	// RuleConsecutiveFailures compares the current failure streak with a limit.
	RuleConsecutiveFailures RuleID = "consecutive-failures"
)

// Action is what a verdict asks for.
type Action string

const (
	// Alert asks for attention but keeps the new version.
	Alert Action = "alert"
	// Rollback asks for the previous version to be restored now.
	Rollback Action = "rollback"
)

// Rules holds the thresholds Evaluate applies. A zero threshold disables
// that check, so a rule can alert without ever rolling back (or the reverse).
// Rates are fractions in 0..1. Every comparison is strict: a figure exactly
// at its threshold does not fire.
type Rules struct {
	// Window is how many recent samples the windowed figures cover.
	Window int `json:"window"`
	// MinSamples is how many samples a rate rule needs in its window before
	// it may fire, so one early failure is not read as 100% errors.
	MinSamples int `json:"min_samples"`
	// MinRequests is how many requests a window of the pods' own metrics
	// needs before its rules may fire (DefaultMinRequests when zero).
	MinRequests int `json:"min_requests,omitempty"`

	// AlertResponseTime fires when the window's p95 latency is above it.
	AlertResponseTime time.Duration `json:"alert_response_time_ns"`
	// AlertErrorRate fires when the window's error rate is above it.
	AlertErrorRate float64 `json:"alert_error_rate"`
	// AlertAvailability fires when the run's availability is below it.
	AlertAvailability float64 `json:"alert_availability"`
	// AlertConsecutiveFailures fires when more probes than this failed in a row.
	AlertConsecutiveFailures int `json:"alert_consecutive_failures"`

	// RollbackResponseTime rolls back when the window's p95 latency is above it.
	RollbackResponseTime time.Duration `json:"rollback_response_time_ns"`
	// RollbackErrorRate rolls back when the window's error rate is above it.
	RollbackErrorRate float64 `json:"rollback_error_rate"`
	// RollbackAvailability rolls back when the run's availability is below it.
	RollbackAvailability float64 `json:"rollback_availability"`
	// RollbackConsecutiveFailures rolls back when more probes than this
	// failed in a row.
	RollbackConsecutiveFailures int `json:"rollback_consecutive_failures"`
}

// DefaultRules returns the thresholds used when none are configured: alert
// on p95 above 3s, error rate above 10%, availability below 95% or more than
// 3 failures in a row; roll back on error rate above 25% or more than 5
// failures in a row; rates need 10 samples in a window of 20.
func DefaultRules() Rules {
	return Rules{
		Window:                      DefaultWindow,
		MinSamples:                  10,
		MinRequests:                 DefaultMinRequests,
		AlertResponseTime:           3 * time.Second,
		AlertErrorRate:              0.10,
		AlertAvailability:           0.95,
		AlertConsecutiveFailures:    3,
		RollbackErrorRate:           0.25,
		RollbackConsecutiveFailures: 5,
	}
}

// Validate reports every threshold that cannot mean anything, naming the
// field, so configuration errors can be shown to the user.
func (r Rules) Validate() error {
	var errs []error
	if r.Window < 1 {
		errs = append(errs, fmt.Errorf("window must be at least 1, got %d", r.Window))
	}
	if r.MinRequests < 0 {
		errs = append(errs, fmt.Errorf("min requests must not be negative, got %d", r.MinRequests))
	}
	if r.MinSamples < 0 || r.MinSamples > max(r.Window, 1) {
		errs = append(errs, fmt.Errorf("min samples must be between 0 and the window %d, got %d", r.Window, r.MinSamples))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"alert response time", r.AlertResponseTime}, {"rollback response time", r.RollbackResponseTime}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative, got %s", d.name, d.v))
		}
	}
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"alert error rate", r.AlertErrorRate}, {"rollback error rate", r.RollbackErrorRate},
		{"alert availability", r.AlertAvailability}, {"rollback availability", r.RollbackAvailability},
	} {
		if math.IsNaN(f.v) || f.v < 0 || f.v > 1 {
			errs = append(errs, fmt.Errorf("%s must be a fraction between 0 and 1, got %v", f.name, f.v))
		}
	}
	for _, n := range []struct {
		name string
		v    int
	}{{"alert consecutive failures", r.AlertConsecutiveFailures}, {"rollback consecutive failures", r.RollbackConsecutiveFailures}} {
		if n.v < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative, got %d", n.name, n.v))
		}
	}
	return errors.Join(errs...)
}

// Verdict is one rule firing on one snapshot.
type Verdict struct {
	// Rule is the stable id of the rule that fired.
	Rule RuleID `json:"rule"`
	// Source says whose figures tripped it: the probes or the pods' own
	// request metrics.
	Source Source `json:"source,omitempty"`
	// Action is Rollback when the rollback threshold was crossed, else Alert.
	Action Action `json:"action"`
	// Observed is the figure that crossed Threshold, in Unit.
	Observed  float64 `json:"observed"`
	Threshold float64 `json:"threshold"`
	// Unit is "seconds", "ratio" (a fraction in 0..1) or "probes".
	Unit string `json:"unit"`
	// Samples is how many probes the observed figure is based on.
	Samples int `json:"samples"`
	// Message explains the verdict in one sentence for humans.
	Message string `json:"message"`
}

// Evaluate applies the rules to a snapshot of the probes and returns at
// most one verdict per rule (Rollback when both thresholds are crossed), in
// a fixed order, each naming SourceProbes.
func Evaluate(s Snapshot, r Rules) []Verdict {
	out := evaluateProbes(s, r)
	for i := range out {
		out[i].Source = SourceProbes
	}
	return out
}

func evaluateProbes(s Snapshot, r Rules) []Verdict {
	var out []Verdict
	need := max(r.MinSamples, 1)

	if s.Window.Count >= need {
		p95 := s.Window.P95
		if a, thr, ok := aboveDuration(p95, r.AlertResponseTime, r.RollbackResponseTime); ok {
			out = append(out, Verdict{
				Rule: RuleResponseTime, Action: a,
				Observed: p95.Seconds(), Threshold: thr.Seconds(), Unit: "seconds", Samples: s.Window.Count,
				Message: fmt.Sprintf("p95 response time %s over the last %d probes is above the %s threshold %s",
					readableAbove(p95, thr), s.Window.Count, a, roundDuration(thr)),
			})
		}
		rate := s.Window.ErrorRate
		if a, thr, ok := aboveFloat(rate, r.AlertErrorRate, r.RollbackErrorRate); ok {
			out = append(out, Verdict{
				Rule: RuleErrorRate, Action: a,
				Observed: rate, Threshold: thr, Unit: "ratio", Samples: s.Window.Count,
				Message: fmt.Sprintf("error rate %s over the last %d probes is above the %s threshold %s",
					observedPercent(rate, thr), s.Window.Count, a, percent(thr)),
			})
		}
	}

	if s.Count >= int64(need) {
		avail := s.Availability
		if a, thr, ok := belowFloat(avail, r.AlertAvailability, r.RollbackAvailability); ok {
			out = append(out, Verdict{
				Rule: RuleAvailability, Action: a,
				Observed: avail, Threshold: thr, Unit: "ratio", Samples: int(s.Count),
				Message: fmt.Sprintf("availability %s over %d probes is below the %s threshold %s",
					observedPercent(avail, thr), s.Count, a, percent(thr)),
			})
		}
	}

	streak := s.ConsecutiveFailures
	if a, thr, ok := aboveFloat(float64(streak), float64(r.AlertConsecutiveFailures), float64(r.RollbackConsecutiveFailures)); ok {
		out = append(out, Verdict{
			Rule: RuleConsecutiveFailures, Action: a,
			Observed: float64(streak), Threshold: thr, Unit: "probes", Samples: streak,
			Message: fmt.Sprintf("%d consecutive probes failed, above the %s threshold %d", streak, a, int(thr)),
		})
	}
	return out
}

// NotJudged lists, in Evaluate's order, the enabled probe rules that s has
// too few samples for: whatever its figures say, a rule listed here could
// not have fired. The consecutive-failures rule needs no minimum and is
// never listed.
func NotJudged(s Snapshot, r Rules) []RuleID {
	need := max(r.MinSamples, 1)
	var out []RuleID
	if s.Window.Count < need {
		if r.AlertResponseTime > 0 || r.RollbackResponseTime > 0 {
			out = append(out, RuleResponseTime)
		}
		if r.AlertErrorRate > 0 || r.RollbackErrorRate > 0 {
			out = append(out, RuleErrorRate)
		}
	}
	if s.Count < int64(need) && (r.AlertAvailability > 0 || r.RollbackAvailability > 0) {
		out = append(out, RuleAvailability)
	}
	return out
}

// aboveFloat picks the strongest enabled threshold that v is strictly above.
func aboveFloat(v, alert, rollback float64) (Action, float64, bool) {
	switch {
	case rollback > 0 && v > rollback:
		return Rollback, rollback, true
	case alert > 0 && v > alert:
		return Alert, alert, true
	}
	return "", 0, false
}

// belowFloat picks the strongest enabled floor that v is strictly below.
func belowFloat(v, alert, rollback float64) (Action, float64, bool) {
	switch {
	case rollback > 0 && v < rollback:
		return Rollback, rollback, true
	case alert > 0 && v < alert:
		return Alert, alert, true
	}
	return "", 0, false
}

// aboveDuration is aboveFloat for durations, compared exactly.
func aboveDuration(v, alert, rollback time.Duration) (Action, time.Duration, bool) {
	switch {
	case rollback > 0 && v > rollback:
		return Rollback, rollback, true
	case alert > 0 && v > alert:
		return Alert, alert, true
	}
	return "", 0, false
}

// percent formats a fraction as a percentage without trailing zeros, so
// configured thresholds read as written ("25%", "99.9%").
func percent(f float64) string {
	return strconv.FormatFloat(math.Round(f*100*1e6)/1e6, 'f', -1, 64) + "%"
}

// observedPercent formats an observed fraction with one decimal, or more
// when one would make it read the same as the threshold it crossed.
func observedPercent(v, thr float64) string {
	for prec := 1; prec < 6; prec++ {
		if got := strconv.FormatFloat(v*100, 'f', prec, 64); got != strconv.FormatFloat(thr*100, 'f', prec, 64) {
			return got + "%"
		}
	}
	return strconv.FormatFloat(v*100, 'f', -1, 64) + "%"
}

// readableAbove rounds v for a message unless rounding would make it look
// equal to the threshold it is above.
func readableAbove(v, thr time.Duration) time.Duration {
	if r := roundDuration(v); r > roundDuration(thr) {
		return r
	}
	return v
}

// roundDuration keeps messages readable: milliseconds are enough for people.
func roundDuration(d time.Duration) time.Duration {
	if d >= time.Millisecond {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Microsecond)
}
