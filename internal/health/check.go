package health

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"
)

// Defaults for CheckOptions.
const (
	// DefaultTimeout bounds a whole check, retries included.
	DefaultTimeout = 60 * time.Second
	// DefaultRequestTimeout bounds one request.
	DefaultRequestTimeout = 10 * time.Second
)

// Mode labels why a check ran. It changes nothing in how the check runs; the
// caller decides what a result means for its mode.
type Mode string

// The modes greenlight runs checks in.
const (
	ModePreDeployment  Mode = "pre-deployment"
	ModePostDeployment Mode = "post-deployment"
	ModeVerifyTraffic  Mode = "verify-traffic"
	ModeVerifyRollback Mode = "verify-rollback"
)

// Endpoint names one of the three health endpoints.
type Endpoint string

// The health endpoints, in the order Check queries them.
const (
	EndpointBasic    Endpoint = "basic"
	EndpointReady    Endpoint = "ready"
	EndpointDetailed Endpoint = "detailed"
)

// AllEndpoints is the default set Check queries.
func AllEndpoints() []Endpoint {
	return []Endpoint{EndpointBasic, EndpointReady, EndpointDetailed}
}

// Paths are the request paths of the health endpoints; an empty field means
// its default from DefaultPaths.
type Paths struct {
	Basic    string
	Ready    string
	Detailed string
}

// DefaultPaths returns /health, /health/ready and /health/detailed.
func DefaultPaths() Paths {
	return Paths{Basic: "/health", Ready: "/health/ready", Detailed: "/health/detailed"}
}

// For returns the path of endpoint e, falling back to the default.
func (p Paths) For(e Endpoint) string {
	def := DefaultPaths()
	pick := func(v, d string) string {
		if v != "" {
			return v
		}
		return d
	}
	switch e {
	case EndpointReady:
		return pick(p.Ready, def.Ready)
	case EndpointDetailed:
		return pick(p.Detailed, def.Detailed)
	default:
		return pick(p.Basic, def.Basic)
	}
}

// CheckOptions configure Check, VerifyTraffic and VerifyRollback. The zero
// value checks all three default endpoints for DefaultTimeout.
type CheckOptions struct {
	// Mode labels the result.
	Mode Mode
	// Paths of the endpoints.
	Paths Paths
	// Endpoints to query; nil means AllEndpoints.
	Endpoints []Endpoint
	// Token is sent as "Authorization: Bearer <token>" to the detailed
	// endpoint. It never appears in a result.
	Token string
	// Timeout bounds the whole check, retries included.
	Timeout time.Duration
	// RequestTimeout bounds each request.
	RequestTimeout time.Duration
	// Backoff is the wait between attempts.
	Backoff Backoff
	// Version says where VerifyTraffic reads the served version; the zero
	// value reads ServedVersion at the basic endpoint.
	Version VersionSource
}

func (o CheckOptions) withDefaults() CheckOptions {
	if len(o.Endpoints) == 0 {
		o.Endpoints = AllEndpoints()
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	o.Backoff = o.Backoff.withDefaults()
	return o
}

// EndpointResult is what one endpoint answered in one attempt.
type EndpointResult struct {
	Endpoint Endpoint `json:"endpoint"`
	// Path is the request path without its query.
	Path string `json:"path"`
	// StatusCode is zero when no answer arrived.
	StatusCode int    `json:"statusCode,omitempty"`
	Timing     Timing `json:"timing"`
	// Version is the served version the answer reported, if any.
	Version string `json:"version,omitempty"`
	Healthy bool   `json:"healthy"`
	// Failure says why the endpoint is not healthy.
	Failure string `json:"failure,omitempty"`
	// Detailed holds the components of the detailed endpoint's answer.
	Detailed *Detailed `json:"detailed,omitempty"`
	// Note is something worth knowing that does not fail the check, such as
	// a detailed body that is not JSON.
	Note string `json:"note,omitempty"`
}

// Result is the outcome of Check.
type Result struct {
	Mode Mode `json:"mode,omitempty"`
	// Target is the target's Name.
	Target  string `json:"target"`
	Healthy bool   `json:"healthy"`
	// Reason is one sentence on why the check failed; empty when healthy.
	Reason string `json:"reason,omitempty"`
	// Attempts counts every attempt started, including one cut short by the
	// timeout.
	Attempts int           `json:"attempts"`
	Duration time.Duration `json:"duration"`
	// Version is the first served version any endpoint reported.
	Version string `json:"version,omitempty"`
	// Endpoints are the results of the last complete attempt.
	Endpoints []EndpointResult `json:"endpoints"`
}

// Check queries the health endpoints until all are healthy or
// opts.Timeout passes, waiting opts.Backoff between attempts, and reports
// the last complete attempt.
func Check(ctx context.Context, target Target, opts CheckOptions) Result {
	opts = opts.withDefaults()
	start := time.Now()
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()

	res := Result{Mode: opts.Mode, Target: target.Name()}
	if !target.set() {
		// Retrying cannot help; say so at once instead of after the timeout.
		res.Reason = "Not checked: " + errUnsetTarget.Error() + "."
		return res
	}
	var last []EndpointResult
	for attempt := 1; ; attempt++ {
		results := checkOnce(ctx, target, opts)
		res.Attempts = attempt
		if ctx.Err() != nil && last != nil {
			// The deadline cut this attempt short; the previous one says
			// more about the service than "no answer before the timeout".
			break
		}
		last = results
		if allHealthy(results) {
			res.Healthy = true
			break
		}
		if !sleep(ctx, opts.Backoff.Delay(attempt)) {
			break
		}
	}
	res.Endpoints = last
	res.Duration = time.Since(start)
	for _, r := range last {
		if r.Version != "" {
			res.Version = r.Version
			break
		}
	}
	if !res.Healthy {
		res.Reason = scrub(checkReason(res, errors.Is(parent.Err(), context.Canceled)), secretsOf(target, opts.Token))
	}
	return res
}

// checkOnce queries each endpoint once, in order.
func checkOnce(ctx context.Context, target Target, opts CheckOptions) []EndpointResult {
	secrets := secretsOf(target, opts.Token)
	out := make([]EndpointResult, 0, len(opts.Endpoints))
	for _, e := range opts.Endpoints {
		p := opts.Paths.For(e)
		req := request{method: http.MethodGet, path: p, timeout: opts.RequestTimeout, limit: healthBodyLimit}
		auth := authNone
		if e == EndpointDetailed && opts.Token != "" {
			if target.proxied {
				auth = authNotForwarded
			} else {
				auth = authSent
				req.header = http.Header{"Authorization": {"Bearer " + opts.Token}}
			}
		}
		resp, err := target.do(ctx, req)
		r := evaluate(e, p, resp, err, auth)
		if target.portOmitted && r.StatusCode == http.StatusServiceUnavailable && strings.Contains(r.Failure, "no endpoints available") {
			r.Failure += " (a Service port that has a name is only reached through the service proxy when the target names it)"
		}
		r.Failure = scrub(r.Failure, secrets)
		r.Note = scrub(r.Note, secrets)
		if r.Detailed != nil {
			for i := range r.Detailed.Components {
				r.Detailed.Components[i].Message = scrub(r.Detailed.Components[i].Message, secrets)
			}
		}
		out = append(out, r)
	}
	return out
}

// authState is what happened to the bearer token on a request.
type authState int

const (
	authNone         authState = iota // no token configured
	authSent                          // token sent in Authorization
	authNotForwarded                  // token configured, but the service proxy cannot pass it on
)

// evaluate decides whether one answer is healthy. It is pure: the request
// has already happened.
func evaluate(e Endpoint, path string, resp response, err error, auth authState) EndpointResult {
	r := EndpointResult{Endpoint: e, Path: redactPath(path), StatusCode: resp.statusCode, Timing: resp.timing}
	if err != nil {
		r.Failure = err.Error()
		return r
	}
	r.Version = ServedVersion(resp.header, resp.body)

	// Each problem is a phrase completing "<path> …".
	var problems []string
	code := resp.statusCode
	if code < 200 || code > 299 {
		msg := fmt.Sprintf("answered %d %s", code, http.StatusText(code))
		if m, ok := apiServerStatus(resp.body); ok {
			// The service proxy itself refused: the service never saw the
			// request, so its body says nothing about the service's health
			// and a 401/403 is about the API server credentials.
			r.Failure = fmt.Sprintf("%s %s from the Kubernetes API server: %s", r.Path, msg, clip(m, 300))
			return r
		}
		if e == EndpointDetailed && (code == http.StatusUnauthorized || code == http.StatusForbidden) {
			msg += ": " + authProblem(auth)
		} else if detail := textDetail(resp.header, resp.body); detail != "" {
			msg += ": " + detail
		}
		problems = append(problems, msg)
	}

	d, perr := ParseDetailed(resp.header.Get("Content-Type"), resp.body)
	switch {
	case perr != nil && e == EndpointDetailed && code >= 200 && code <= 299:
		r.Note = "components not read: " + strings.TrimPrefix(perr.Error(), "parse detailed health: ")
	case perr != nil:
		// A plain-text "OK" from /health is fine; only the status code counts.
	case e == EndpointDetailed:
		r.Detailed = &d
		if failing := d.Failing(); len(failing) > 0 {
			problems = append(problems, componentProblem(failing))
		} else if StatusFailing(d.Status) {
			problems = append(problems, fmt.Sprintf("reports status %q", d.Status))
		}
	case StatusFailing(d.Status):
		problems = append(problems, fmt.Sprintf("reports status %q", d.Status))
	}
	if resp.truncated {
		r.Note = strings.TrimPrefix(r.Note+"; body cut at 1 MiB", "; ")
	}
	if len(problems) > 0 {
		r.Failure = r.Path + " " + strings.Join(problems, " and ")
	}
	r.Healthy = len(problems) == 0
	return r
}

// apiServerStatus returns the message of a Kubernetes Status object, which
// is what the API server's service proxy answers with when it cannot reach
// the service (no ready endpoints, no such port, no permission).
func apiServerStatus(body []byte) (string, bool) {
	if !bytes.Contains(body, []byte(`"Status"`)) {
		return "", false
	}
	// A map, not a struct: only the exact keys of a Status object count.
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil || doc["kind"] != "Status" || doc["apiVersion"] != "v1" {
		return "", false
	}
	msg, _ := doc["message"].(string)
	if msg = strings.TrimSpace(msg); msg == "" {
		msg, _ = doc["reason"].(string)
	}
	if msg == "" {
		msg = "no message"
	}
	return msg, true
}

// textDetail returns the first line of a plain-text answer, such as a
// proxy's "no healthy upstream", so a failure says who refused and why.
func textDetail(header http.Header, body []byte) string {
	mt, _, err := mime.ParseMediaType(header.Get("Content-Type"))
	if err != nil || mt != "text/plain" {
		return ""
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
	return clip(strings.TrimSpace(line), 200)
}

// authProblem explains a 401/403 from the detailed endpoint without the token.
func authProblem(auth authState) string {
	switch auth {
	case authSent:
		return "the bearer token was rejected"
	case authNotForwarded:
		return "the bearer token was missing because the API server's service proxy does not forward it; check this endpoint through the public URL"
	default:
		return "the bearer token was missing (no health-check token is configured)"
	}
}

// componentProblem names the failing components, with their messages.
func componentProblem(failing []Component) string {
	parts := make([]string, 0, len(failing))
	for _, c := range failing {
		s := fmt.Sprintf("%s as %q", c.Name, c.Status)
		if c.Message != "" {
			s += " (" + clip(c.Message, 200) + ")"
		}
		parts = append(parts, s)
	}
	word := "reports component "
	if len(parts) > 1 {
		word = "reports components "
	}
	return word + strings.Join(parts, ", ")
}

func allHealthy(rs []EndpointResult) bool {
	for _, r := range rs {
		if !r.Healthy {
			return false
		}
	}
	return len(rs) > 0
}

// checkReason is the one-sentence summary of an unhealthy result.
func checkReason(res Result, canceled bool) string {
	var failures []string
	for _, r := range res.Endpoints {
		if !r.Healthy {
			failures = append(failures, r.Failure)
		}
	}
	lead := "Not healthy"
	if canceled {
		lead = "Check canceled"
	}
	return fmt.Sprintf("%s after %s in %s: %s.", lead, plural(res.Attempts, "attempt"), roundDuration(res.Duration), strings.Join(failures, "; "))
}

// secretsOf lists everything that must not be printed for a target and token.
func secretsOf(t Target, token string) []string {
	s := append([]string(nil), t.secrets...)
	if token != "" {
		s = append(s, token, "Bearer "+token)
	}
	return s
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// roundDuration keeps printed durations readable: 1.2s, 340ms.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(time.Millisecond)
	default:
		return d
	}
}
