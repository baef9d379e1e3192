package proof

import (
	"fmt"
	"strings"
	"time"
)

// boundSlack is the time a rollback has, after the probe that decides it,
// to put the old version back in front of every user.
const boundSlack = time.Second

// SafetyBound is the longest time to safety greenlight promises, computed
// from its inputs alone: the failure streak that rolls back
// (rollback-consecutive-failures) plus the probe that may just have missed
// the first failure, each one monitor interval apart, and one second for
// the rollback itself. Nothing measured in a trial enters it, so a slow
// rollback breaks it instead of stretching it.
func SafetyBound(consecutiveFailures int, interval time.Duration) time.Duration {
	return time.Duration(consecutiveFailures+1)*interval + boundSlack
}

// CheckBound fails when any trial's time to safety is above bound, naming
// every such trial by its position among trials.
func CheckBound(trials []time.Duration, bound time.Duration) error {
	var broken []string
	for i, tts := range trials {
		if tts > bound {
			broken = append(broken, fmt.Sprintf("trial %d took %s", i+1, tts.Round(time.Millisecond)))
		}
	}
	if len(broken) == 0 {
		return nil
	}
	return fmt.Errorf("time to safety above its bound %s in %d of %d trials: %s", bound, len(broken), len(trials), strings.Join(broken, ", "))
}
