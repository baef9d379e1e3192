package monitor

import "time"

// AlertState says whether an alert episode began or ended.
type AlertState string

const (
	// AlertRaised marks the first evaluation on which a rule fired.
	AlertRaised AlertState = "raised"
	// AlertResolved marks the first evaluation on which it no longer fired.
	AlertResolved AlertState = "resolved"
)

// AlertChange is the start or end of an alert episode for one rule.
type AlertChange struct {
	// State is AlertRaised or AlertResolved.
	State AlertState `json:"state"`
	// Rule is the rule whose episode changed.
	Rule RuleID `json:"rule"`
	// Time is when the change was observed.
	Time time.Time `json:"time"`
	// Verdict is the verdict that raised the alert, or for a resolution the
	// last verdict seen while it was firing.
	Verdict Verdict `json:"verdict"`
}

// Tracker turns the verdicts of successive evaluations into alert episodes:
// a rule that keeps firing is raised once, and resolved once when it stops,
// so sinks are not told the same thing on every tick. It is a plain state
// machine with no clock or I/O; the zero value is ready to use.
type Tracker struct {
	// active holds the latest verdict of each firing rule, in raise order.
	active []Verdict
}

// Update feeds the verdicts of one evaluation, observed at time at, and
// returns the episode changes they cause: resolutions first, in the order
// the alerts were raised, then new alerts in verdict order.
func (t *Tracker) Update(at time.Time, verdicts []Verdict) []AlertChange {
	var changes []AlertChange
	next := make([]Verdict, 0, max(len(t.active), len(verdicts)))
	for _, a := range t.active {
		if v, ok := findRule(verdicts, a.Rule, a.Source); ok {
			next = append(next, v)
			continue
		}
		changes = append(changes, AlertChange{State: AlertResolved, Rule: a.Rule, Time: at, Verdict: a})
	}
	for _, v := range verdicts {
		if _, ok := findRule(next, v.Rule, v.Source); ok {
			continue
		}
		next = append(next, v)
		changes = append(changes, AlertChange{State: AlertRaised, Rule: v.Rule, Time: at, Verdict: v})
	}
	t.active = next
	return changes
}

// Active returns the latest verdict of every rule currently firing.
func (t *Tracker) Active() []Verdict {
	return append([]Verdict(nil), t.active...)
}

// findRule returns the first verdict for rule from source: the same rule
// fed by two sources is two episodes.
func findRule(vs []Verdict, rule RuleID, source Source) (Verdict, bool) {
	for _, v := range vs {
		if v.Rule == rule && v.Source == source {
			return v, true
		}
	}
	return Verdict{}, false
}
