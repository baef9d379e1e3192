package monitor

import (
	"cmp"
	"slices"
	"strconv"
)

// maxFailureKinds bounds Result.Failures: a probe that fails a new way
// every time (a changing address in its error) cannot grow the result.
const maxFailureKinds = 5

// FailureCount is how many failed probes gave one answer.
type FailureCount struct {
	// Reason is the probe's error, or "HTTP <status>" when the app
	// answered with a status that is not 2xx.
	Reason string `json:"reason"`
	Count  int    `json:"count"`
}

// failureReason names what a failed sample answered.
func failureReason(s Sample) string {
	if s.Err != "" {
		return s.Err
	}
	if s.StatusCode != 0 {
		return "HTTP " + strconv.Itoa(s.StatusCode)
	}
	return "no answer"
}

// failureTally counts failed probes by reason, the first maxFailureKinds
// reasons by name and the rest together.
type failureTally struct {
	kinds []FailureCount
	other int
}

// add counts one failed sample.
func (t *failureTally) add(s Sample) {
	reason := failureReason(s)
	for i := range t.kinds {
		if t.kinds[i].Reason == reason {
			t.kinds[i].Count++
			return
		}
	}
	if len(t.kinds) == maxFailureKinds {
		t.other++
		return
	}
	t.kinds = append(t.kinds, FailureCount{Reason: reason, Count: 1})
}

// counts returns the reasons, the most frequent first (first seen first
// among equals), and how many failures had none of them.
func (t *failureTally) counts() ([]FailureCount, int) {
	out := slices.Clone(t.kinds)
	slices.SortStableFunc(out, func(a, b FailureCount) int { return cmp.Compare(b.Count, a.Count) })
	return out, t.other
}
