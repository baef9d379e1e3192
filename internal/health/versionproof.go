package health

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// Proofs that traffic reaches a version.
const (
	// ProofVersion: every answer reported the expected version.
	ProofVersion = "version"
	// ProofEndpoints: the Service's EndpointSlices list only ready pods of
	// the version, and answers in a row were healthy.
	ProofEndpoints = "endpoints"
)

// VersionSource says where an answer reports its version: a header, a
// top-level JSON field, or (both empty) ServedVersion's conventions.
type VersionSource struct {
	Header    string `json:"header,omitempty"`
	JSONField string `json:"jsonField,omitempty"`
	// Path is the path asked; empty means the basic endpoint.
	Path string `json:"path,omitempty"`
}

// Read is the version an answer reports according to s.
func (s VersionSource) Read(header http.Header, body []byte) string {
	switch {
	case s.Header != "":
		return versionText(header.Get(s.Header))
	case s.JSONField != "":
		return bodyField(body, s.JSONField)
	}
	return ServedVersion(header, body)
}

// ServedVersionNow asks the basic endpoint (or src.Path) once and returns
// the version the answer reports; "" when it reports none or fails.
func ServedVersionNow(ctx context.Context, target Target, src VersionSource, opts CheckOptions) string {
	opts = opts.withDefaults()
	path := src.Path
	if path == "" {
		path = opts.Paths.For(EndpointBasic)
	}
	p := probe(ctx, target, path, opts.RequestTimeout, src)
	if !p.OK {
		return ""
	}
	return p.Version
}

// VerifyHealthyAnswers is the answers half of the endpoints proof: n
// answers in a row from the basic endpoint (n <= 0 means
// DefaultTrafficAnswers) must all be healthy. The sequence is repeated with
// backoff until it passes or opts.Timeout passes.
func VerifyHealthyAnswers(ctx context.Context, target Target, n int, opts CheckOptions) TrafficResult {
	opts = opts.withDefaults()
	if n <= 0 {
		n = DefaultTrafficAnswers
	}
	start := time.Now()
	res := TrafficResult{Mode: opts.Mode, Target: target.Name(), Proof: ProofEndpoints}
	if !target.set() {
		res.Reason = "Not checked: " + errUnsetTarget.Error() + "."
		return res
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	path := opts.Paths.For(EndpointBasic)
	var last []ProbeResult
	for attempt := 1; ; attempt++ {
		answers := make([]ProbeResult, 0, n)
		for range n {
			answers = append(answers, Probe(ctx, target, path, opts.RequestTimeout))
		}
		res.Attempts = attempt
		if ctx.Err() != nil && last != nil {
			break
		}
		last = answers
		if healthyAnswers(answers) == len(answers) {
			break
		}
		if !sleep(ctx, opts.Backoff.Delay(attempt)) {
			break
		}
	}
	res.Duration = time.Since(start)
	res.Answers = len(last)
	ok := healthyAnswers(last)
	res.Failed = len(last) - ok
	for _, a := range last {
		if !a.OK {
			res.LastError = a.Err
			if res.LastError == "" {
				res.LastError = fmt.Sprintf("%s answered %d", a.Path, a.StatusCode)
			}
		}
	}
	res.Passed = len(last) > 0 && ok == len(last)
	res.Summary = fmt.Sprintf("%d of %d answers in a row healthy", ok, len(last))
	if res.Failed > 0 {
		res.Summary += fmt.Sprintf(" (last failure: %s)", res.LastError)
	}
	if !res.Passed {
		res.Reason = fmt.Sprintf("Answers are not healthy after %s in %s: %s.", plural(res.Attempts, "attempt"), roundDuration(res.Duration), res.Summary)
	}
	return res
}

func healthyAnswers(answers []ProbeResult) int {
	n := 0
	for _, a := range answers {
		if a.OK {
			n++
		}
	}
	return n
}
