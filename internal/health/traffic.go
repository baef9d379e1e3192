package health

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// DefaultTrafficAnswers is how many consecutive answers VerifyTraffic
// wants from the expected version.
const DefaultTrafficAnswers = 10

// VersionCount is how many answers in a sequence reported one version.
type VersionCount struct {
	// Version is "" for answers that reported no version.
	Version string `json:"version"`
	Count   int    `json:"count"`
}

// TrafficResult is the outcome of VerifyTraffic.
type TrafficResult struct {
	Mode Mode `json:"mode,omitempty"`
	// Target is the target's Name.
	Target string `json:"target"`
	// Want is the version every answer had to report.
	Want   string `json:"want"`
	Passed bool   `json:"passed"`
	// Summary describes the last sequence, e.g. "2 of 10 answers came from
	// v1, 8 from v2; want v2".
	Summary string `json:"summary"`
	// Reason is one sentence on why verification failed; empty when passed.
	Reason string `json:"reason,omitempty"`
	// Attempts counts the sequences started.
	Attempts int           `json:"attempts"`
	Duration time.Duration `json:"duration"`
	// Answers is the length of the last sequence.
	Answers int `json:"answers"`
	// Versions counts the last sequence's successful answers by version,
	// most frequent wrong version first and the wanted version last.
	Versions []VersionCount `json:"versions,omitempty"`
	// Failed counts answers in the last sequence that were not 2xx or did
	// not arrive.
	Failed int `json:"failed,omitempty"`
	// LastError describes the last failed answer, redacted.
	LastError string `json:"lastError,omitempty"`
	// Proof is how traffic was proven to reach the version: ProofVersion
	// (answers report it) or ProofEndpoints (the cluster routes only to its
	// ready pods and the answers are healthy).
	Proof string `json:"proof,omitempty"`
	// ProofReason says why that proof was used.
	ProofReason string `json:"proofReason,omitempty"`
	// Endpoints describes the EndpointSlices of an endpoints proof.
	Endpoints string `json:"endpoints,omitempty"`
}

// VerifyTraffic proves that traffic reaches version want: n consecutive
// answers from the basic endpoint (n <= 0 means DefaultTrafficAnswers) must
// all report it. Traffic may take a moment to move, so the whole sequence is
// repeated with backoff until it passes or opts.Timeout passes; the result
// describes the last complete sequence.
func VerifyTraffic(ctx context.Context, target Target, want string, n int, opts CheckOptions) TrafficResult {
	opts = opts.withDefaults()
	if n <= 0 {
		n = DefaultTrafficAnswers
	}
	start := time.Now()
	res := TrafficResult{Mode: opts.Mode, Target: target.Name(), Want: strings.TrimSpace(want)}
	if res.Want == "" {
		res.Reason = "No version to verify traffic against."
		return res
	}
	if !target.set() {
		res.Reason = "Not checked: " + errUnsetTarget.Error() + "."
		return res
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()

	path := cmp.Or(opts.Version.Path, opts.Paths.For(EndpointBasic))
	res.Proof = ProofVersion
	var last []ProbeResult
	for attempt := 1; ; attempt++ {
		answers := make([]ProbeResult, 0, n)
		for range n {
			answers = append(answers, probe(ctx, target, path, opts.RequestTimeout, opts.Version))
		}
		res.Attempts = attempt
		if ctx.Err() != nil && last != nil {
			break
		}
		last = answers
		if t := TallyVersions(res.Want, answers); t.Passed {
			break
		}
		if !sleep(ctx, opts.Backoff.Delay(attempt)) {
			break
		}
	}
	t := TallyVersions(res.Want, last)
	res.Duration = time.Since(start)
	res.Passed = t.Passed
	res.Summary = t.Summary
	res.Answers = len(last)
	res.Versions = t.Versions
	res.Failed = t.Failed
	res.LastError = t.LastError
	if !res.Passed {
		res.Reason = fmt.Sprintf("Traffic does not reach %s after %s in %s: %s.",
			res.Want, plural(res.Attempts, "attempt"), roundDuration(res.Duration), t.Summary)
	}
	return res
}

// Tally is the verdict on one sequence of answers.
type Tally struct {
	// Passed is true when every answer reported the wanted version.
	Passed bool
	// Summary is e.g. "2 of 10 answers came from v1, 8 from v2; want v2".
	Summary string
	// Versions counts successful answers by version, wrong versions first.
	Versions []VersionCount
	// Failed counts answers that were not 2xx or did not arrive.
	Failed int
	// LastError describes the last failed answer.
	LastError string
}

// TallyVersions decides whether every answer reported want and describes
// the mix. A version matches want exactly or with a leading "v" added or
// dropped (image tag v1.2.3, app reporting 1.2.3). Failed answers (transport
// errors, non-2xx) count against the sequence.
func TallyVersions(want string, answers []ProbeResult) Tally {
	var t Tally
	counts := map[string]int{}
	for _, a := range answers {
		if !a.OK {
			t.Failed++
			t.LastError = a.Err
			if t.LastError == "" {
				t.LastError = fmt.Sprintf("%s answered %d", a.Path, a.StatusCode)
			}
			continue
		}
		v := a.Version
		if SameVersion(want, v) {
			v = want
		}
		counts[v]++
	}
	for v, c := range counts {
		t.Versions = append(t.Versions, VersionCount{Version: v, Count: c})
	}
	// Wrong versions first, most frequent first; then no version; want last.
	rank := func(v string) int {
		switch v {
		case want:
			return 2
		case "":
			return 1
		}
		return 0
	}
	slices.SortFunc(t.Versions, func(a, b VersionCount) int {
		return cmp.Or(cmp.Compare(rank(a.Version), rank(b.Version)), cmp.Compare(b.Count, a.Count), cmp.Compare(a.Version, b.Version))
	})
	t.Passed = len(answers) > 0 && counts[want] == len(answers)
	t.Summary = tallySummary(want, len(answers), t)
	return t
}

// tallySummary renders e.g. "2 of 10 answers came from v1, 8 from v2; want v2".
func tallySummary(want string, n int, t Tally) string {
	if n == 0 {
		return "no answers; want " + want
	}
	var parts []string
	for i, vc := range t.Versions {
		label := "from " + vc.Version
		if vc.Version == "" {
			label = "without a version"
		}
		if i == 0 {
			parts = append(parts, fmt.Sprintf("%d of %d answers came %s", vc.Count, n, label))
		} else {
			parts = append(parts, fmt.Sprintf("%d %s", vc.Count, label))
		}
	}
	if t.Failed > 0 {
		if len(parts) == 0 {
			parts = append(parts, fmt.Sprintf("all %d requests failed (last: %s)", n, t.LastError))
		} else {
			parts = append(parts, fmt.Sprintf("%d failed (last: %s)", t.Failed, t.LastError))
		}
	}
	return strings.Join(parts, ", ") + "; want " + want
}

// SameVersion reports whether a served version is the wanted one, allowing
// for a "v" prefix on either side.
func SameVersion(want, got string) bool {
	want, got = strings.TrimSpace(want), strings.TrimSpace(got)
	if want == "" || got == "" {
		return want == got
	}
	return want == got || strings.TrimPrefix(want, "v") == strings.TrimPrefix(got, "v")
}

// RollbackResult is the outcome of VerifyRollback.
type RollbackResult struct {
	Health  Result        `json:"health"`
	Traffic TrafficResult `json:"traffic"`
	Passed  bool          `json:"passed"`
	// Reason is one sentence on why verification failed; empty when passed.
	Reason string `json:"reason,omitempty"`
}

// VerifyRollback checks that the version rolled back to is healthy and that
// traffic reaches it, both within one opts.Timeout. Traffic is not checked
// when the service is not healthy.
func VerifyRollback(ctx context.Context, target Target, version string, n int, opts CheckOptions) RollbackResult {
	opts = opts.withDefaults()
	opts.Mode = ModeVerifyRollback
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()

	var res RollbackResult
	res.Health = Check(ctx, target, opts)
	if !res.Health.Healthy {
		res.Traffic = TrafficResult{Mode: opts.Mode, Target: target.Name(), Want: version,
			Reason: "Traffic not checked because the service is not healthy."}
		res.Reason = res.Health.Reason
		return res
	}
	res.Traffic = VerifyTraffic(ctx, target, version, n, opts)
	res.Passed = res.Traffic.Passed
	res.Reason = res.Traffic.Reason
	return res
}
