package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ebeautything/greenlight/internal/event"
	"github.com/ebeautything/greenlight/internal/health"
	"github.com/ebeautything/greenlight/internal/kube"
	"github.com/ebeautything/greenlight/internal/monitor"
)

// The recorded streams under testdata/streams are written by this file's
// scenarios so they stay consistent (monitor figures come from the real
// monitor statistics and rules); rewrite them with
// go test ./internal/report -run TestWriteStreams -update-streams.
var updateStreams = flag.Bool("update-streams", false, "rewrite testdata/streams/*.jsonl from the scenarios")

// streamRules are the thresholds every scenario monitors with: tighter
// latency limits than the defaults, so the chart's threshold line is near
// the data.
func streamRules() monitor.Rules {
	r := monitor.DefaultRules()
	r.AlertResponseTime = 500 * time.Millisecond
	r.RollbackResponseTime = 2 * time.Second
	return r
}

// scenario is one recorded run.
type scenario struct {
	name  string
	write func(*stream)
}

func scenarios() []scenario {
	return []scenario{
		{"success", writeSuccess},
		{"fail-validate", writeFailValidate},
		{"fail-deploy", writeFailDeploy},
		{"fail-verify", writeFailVerify},
		{"rollback-monitor", writeRollbackMonitor},
		{"rollback-failed", writeRollbackFailed},
		{"fail-workload", writeFailWorkload},
		{"fail-predeploy", writeFailPreDeploy},
	}
}

func TestWriteStreams(t *testing.T) {
	if !*updateStreams {
		t.Skip("streams are only rewritten with -update-streams")
	}
	for _, sc := range scenarios() {
		s := &stream{now: time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC), rnd: rand.New(rand.NewPCG(42, uint64(len(sc.name))))}
		sc.write(s)
		var buf bytes.Buffer
		for _, e := range s.events {
			line, err := json.Marshal(e)
			require.NoError(t, err)
			buf.Write(line)
			buf.WriteByte('\n')
		}
		require.NoError(t, os.WriteFile(filepath.Join("testdata", "streams", sc.name+".jsonl"), buf.Bytes(), 0o644))
	}
}

// stream builds an event stream on a virtual clock.
type stream struct {
	now    time.Time
	rnd    *rand.Rand
	events []event.Event
}

func (s *stream) advance(d time.Duration) { s.now = s.now.Add(d) }

func (s *stream) emit(e event.Event) {
	e.Time = s.now
	s.events = append(s.events, e)
}

func (s *stream) start(st event.Stage) { s.emit(event.Event{Kind: event.StageStarted, Stage: st}) }

func (s *stream) finish(st event.Stage, o event.Outcome, msg string, findings ...event.Finding) {
	s.emit(event.Event{Kind: event.StageFinished, Stage: st, Outcome: o, Message: msg, Findings: findings})
}

// jitter returns d varied by up to ±frac.
func (s *stream) jitter(d time.Duration, frac float64) time.Duration {
	return time.Duration(float64(d) * (1 + frac*(2*s.rnd.Float64()-1)))
}

func productionRun(t0 time.Time) event.Run {
	return event.Run{
		Environment:    "production",
		Strategy:       "blue-green",
		Namespace:      "shop",
		Deployment:     "storefront",
		Service:        "storefront",
		Image:          "ghcr.io/acme/storefront:2.8.0",
		PreviousImage:  "ghcr.io/acme/storefront:2.7.3",
		DeploymentID:   "gl-storefront-20260314-0930",
		SHA:            "4f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39",
		Repository:     "acme/storefront",
		ServerURL:      "https://github.com",
		RunURL:         "https://github.com/acme/storefront/actions/runs/8123456789",
		Actor:          "mona",
		EnvironmentURL: "https://shop.acme.example",
		Production:     true,
		StartedAt:      t0,
	}
}

func stagingRun(t0 time.Time) event.Run {
	r := productionRun(t0)
	r.Environment = "staging"
	r.Strategy = "rolling"
	r.Namespace = "shop-staging"
	r.Production = false
	r.EnvironmentURL = "https://staging.shop.acme.example"
	r.RunURL = "https://github.com/acme/storefront/actions/runs/8123455120"
	r.DeploymentID = "gl-storefront-20260314-0930-stg"
	return r
}

// timing makes a plausible httptrace split over TLS to a public URL.
func (s *stream) timing(total time.Duration) health.Timing {
	dns := s.jitter(3*time.Millisecond, 0.5)
	conn := s.jitter(9*time.Millisecond, 0.4)
	tlsH := s.jitter(22*time.Millisecond, 0.3)
	fb := dns + conn + tlsH + total
	return health.Timing{DNS: dns, Connect: conn, TLSHandshake: tlsH, FirstByte: fb, Total: fb + s.jitter(400*time.Microsecond, 0.5)}
}

func components(dbStatus, dbMsg string, dbLatency time.Duration) *health.Detailed {
	status := "pass"
	if health.StatusFailing(dbStatus) {
		status = "fail"
	}
	return &health.Detailed{
		Format: health.FormatHealthJSON,
		Status: status,
		Components: []health.Component{
			{Name: "cache:responseTime", Status: "pass", Latency: 2 * time.Millisecond, ObservedValue: "2", ObservedUnit: "ms"},
			{Name: "db:connections", Status: "pass", ObservedValue: "17", ObservedUnit: "connections"},
			{Name: "db:responseTime", Status: dbStatus, Latency: dbLatency, Message: dbMsg},
			{Name: "payments-api:responseTime", Status: "warn", Latency: 840 * time.Millisecond, Message: "slow answers from the payment provider sandbox"},
			{Name: "uptime", Status: "pass", ObservedValue: "38", ObservedUnit: "s"},
		},
	}
}

// healthyCheck is a passing health check of all three endpoints.
func (s *stream) healthyCheck(mode health.Mode, target, version string) health.Result {
	res := health.Result{Mode: mode, Target: target, Healthy: true, Attempts: 1, Version: version}
	for _, ep := range []struct {
		e    health.Endpoint
		path string
		base time.Duration
	}{{health.EndpointBasic, "/health", 8 * time.Millisecond}, {health.EndpointReady, "/health/ready", 11 * time.Millisecond}, {health.EndpointDetailed, "/health/detailed", 46 * time.Millisecond}} {
		r := health.EndpointResult{Endpoint: ep.e, Path: ep.path, StatusCode: 200, Timing: s.timing(s.jitter(ep.base, 0.3)), Version: version, Healthy: true}
		if ep.e == health.EndpointDetailed {
			r.Detailed = components("pass", "", 4*time.Millisecond)
		}
		res.Endpoints = append(res.Endpoints, r)
		res.Duration += r.Timing.Total
	}
	return res
}

// traffic tallies n answers with the given versions (a "" entry is a
// failed answer) the way health.VerifyTraffic does.
func traffic(mode health.Mode, target, want string, attempts int, dur time.Duration, answers []string) health.TrafficResult {
	probes := make([]health.ProbeResult, len(answers))
	for i, v := range answers {
		if v == "" {
			probes[i] = health.ProbeResult{Path: "/health", StatusCode: 503}
			continue
		}
		probes[i] = health.ProbeResult{Path: "/health", StatusCode: 200, OK: true, Version: v}
	}
	t := health.TallyVersions(want, probes)
	res := health.TrafficResult{
		Mode: mode, Target: target, Want: want, Passed: t.Passed, Summary: t.Summary,
		Attempts: attempts, Duration: dur, Answers: len(answers), Versions: t.Versions, Failed: t.Failed, LastError: t.LastError,
	}
	if !t.Passed {
		res.Reason = "Traffic did not reach " + want + " within " + dur.String() + ": " + t.Summary + "."
	}
	return res
}

func repeat(v string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// probe describes the service's behaviour at an offset into monitoring.
type probe func(s *stream, at time.Duration, endpoint string) monitor.Sample

// monitorOutcome is what simulate learned.
type monitorOutcome struct {
	snapshot monitor.Snapshot
	series   []monitor.SeriesPoint
	rollback *monitor.Verdict
	evidence []monitor.Sample
}

// simulate runs the monitor's statistics, rules and alert tracker over
// probes every interval for dur, emitting progress every minute (with the
// chart series every five) and alert changes as they happen, and stops at
// a rollback verdict.
func (s *stream) simulate(dur, interval time.Duration, endpoints []string, p probe) monitorOutcome {
	rules := streamRules()
	stats := monitor.NewStats(rules.Window, interval)
	var tracker monitor.Tracker
	start := s.now
	var out monitorOutcome
	for at := time.Duration(0); at < dur; at += interval {
		s.now = start.Add(at)
		for _, ep := range endpoints {
			sm := p(s, at, ep)
			sm.Time = s.now
			sm.Endpoint = ep
			stats.Add(sm)
		}
		verdicts := monitor.Evaluate(stats.Snapshot(), rules)
		for _, ch := range tracker.Update(s.now, verdicts) {
			kind := event.AlertRaised
			if ch.State == monitor.AlertResolved {
				kind = event.AlertResolved
			}
			msg := ch.Verdict.Message
			if ch.State == monitor.AlertResolved {
				msg = string(ch.Rule) + " is back within its alert threshold"
			}
			s.emit(event.Event{Kind: kind, Stage: event.Monitor, Message: msg, Alert: &ch})
		}
		for _, v := range verdicts {
			if v.Action == monitor.Rollback {
				out.rollback = &v
				break
			}
		}
		last := at+interval >= dur || out.rollback != nil
		if (at+interval)%time.Minute == 0 || last {
			snap := stats.Snapshot()
			e := event.Event{Kind: event.MonitorProgress, Stage: event.Monitor, Snapshot: &snap}
			if (at+interval)%(5*time.Minute) == 0 || last {
				e.Series = stats.Series()
			}
			s.emit(e)
		}
		if out.rollback != nil {
			out.evidence = stats.Window()
			break
		}
	}
	s.now = s.now.Add(interval)
	out.snapshot = stats.Snapshot()
	out.series = stats.Series()
	return out
}

var monitorEndpoints = []string{"https://shop.acme.example/health", "https://shop.acme.example/health/ready"}

// steady is a healthy service with rare slow answers.
func steady(s *stream, _ time.Duration, _ string) monitor.Sample {
	lat := s.jitter(42*time.Millisecond, 0.35)
	if s.rnd.IntN(60) == 0 {
		lat = s.jitter(180*time.Millisecond, 0.3)
	}
	return monitor.Sample{Latency: lat, StatusCode: 200, OK: true}
}

func writeSuccess(s *stream) {
	t0 := s.now
	run := productionRun(t0)
	s.emit(event.Event{Kind: event.RunStarted, Run: &run})

	s.start(event.Validate)
	s.advance(300 * time.Millisecond)
	pre := s.healthyCheck(health.ModePreDeployment, "https://shop.acme.example", "2.7.3")
	s.emit(event.Event{Kind: event.HealthChecked, Stage: event.Validate, Health: &pre})
	s.advance(1700 * time.Millisecond)
	s.finish(event.Validate, event.Succeeded, "inputs valid, 11 permissions granted, lease shop/storefront-deploy acquired, blue (2.7.3) healthy")

	s.start(event.Deploy)
	s.advance(47 * time.Second)
	s.finish(event.Deploy, event.Succeeded, "storefront-green rolled out: 3 of 3 updated replicas are available; Service storefront now selects green")

	s.start(event.Verify)
	s.advance(4 * time.Second)
	post := s.healthyCheck(health.ModePostDeployment, "https://shop.acme.example", "2.8.0")
	s.emit(event.Event{Kind: event.HealthChecked, Stage: event.Verify, Health: &post})
	s.advance(3 * time.Second)
	smoke := []health.SmokeResult{
		{Name: "home page", Method: "GET", Path: "/", Passed: true, StatusCode: 200, Latency: 64 * time.Millisecond},
		{Name: "product search", Method: "GET", Path: "/api/products?q=lamp", Passed: true, StatusCode: 200, Latency: 118 * time.Millisecond},
		{Name: "cart add", Method: "POST", Path: "/api/cart/items", Passed: true, StatusCode: 201, Latency: 92 * time.Millisecond},
		{Name: "checkout quote", Method: "POST", Path: "/api/checkout/quote", Passed: true, StatusCode: 200, Latency: 240 * time.Millisecond},
	}
	s.emit(event.Event{Kind: event.SmokeTested, Stage: event.Verify, Smoke: smoke})
	s.advance(2 * time.Second)
	tr := traffic(health.ModeVerifyTraffic, "https://shop.acme.example", "2.8.0", 1, 1900*time.Millisecond, repeat("2.8.0", 10))
	s.emit(event.Event{Kind: event.TrafficVerified, Stage: event.Verify, Traffic: &tr})
	s.finish(event.Verify, event.Succeeded, "3 endpoints healthy, 4 of 4 smoke tests passed, 10 of 10 answers from 2.8.0")

	s.start(event.Monitor)
	out := s.simulate(30*time.Minute, 10*time.Second, monitorEndpoints, func(s *stream, at time.Duration, ep string) monitor.Sample {
		// A cache warm-up slows answers for two minutes and then recovers.
		if at >= 11*time.Minute && at < 13*time.Minute {
			return monitor.Sample{Latency: s.jitter(640*time.Millisecond, 0.25), StatusCode: 200, OK: true}
		}
		if at == 21*time.Minute+40*time.Second && ep == monitorEndpoints[1] {
			return monitor.Sample{Latency: 5 * time.Second, Err: "context deadline exceeded (Client.Timeout exceeded while awaiting headers)"}
		}
		return steady(s, at, ep)
	})
	s.finish(event.Monitor, event.Succeeded, fmt.Sprintf("30m watched: p95 %s, availability %s, 1 alert raised and resolved",
		fmtDuration(out.snapshot.Latency.P95), fmtPercent(out.snapshot.Availability)))

	s.emit(event.Event{Kind: event.RunFinished, Result: &event.Result{
		Status: event.StatusSucceeded, Revision: "14", ActiveColor: "green", FinishedAt: s.now, Monitor: &out.snapshot,
		ManualCommand: `kubectl --namespace shop patch service storefront --type merge --patch '{"spec":{"selector":{"app":"storefront","color":"blue"}}}'`,
	}})
}

func writeFailValidate(s *stream) {
	run := stagingRun(s.now)
	s.emit(event.Event{Kind: event.RunStarted, Run: &run})
	s.start(event.Validate)
	s.advance(1400 * time.Millisecond)
	// The findings the pipeline derives from kube's permission check.
	missing := []kube.Permission{
		{Group: "apps", Resource: "deployments", Verb: "patch", Namespace: "shop-staging"},
		{Group: "coordination.k8s.io", Resource: "leases", Verb: "create", Namespace: "shop-staging"},
	}
	var findings []event.Finding
	for _, p := range missing {
		findings = append(findings, event.Finding{Kind: "permission", Subject: p.String(), Reason: "Forbidden",
			Message: `User "system:serviceaccount:ci:greenlight-deployer" cannot ` + p.Verb + ` resource "` + p.Resource + `" in API group "` + p.Group + `" in the namespace "shop-staging"`})
	}
	findings = append(findings, event.Finding{Kind: "fix", Message: kube.FormatRBACRule(missing)})
	s.finish(event.Validate, event.Failed, "service account ci/greenlight-deployer is missing 2 permissions in namespace shop-staging", findings...)
	s.emit(event.Event{Kind: event.RunFinished, Result: &event.Result{
		Status: event.StatusFailed, FinishedAt: s.now,
		Reason: "Validation failed: service account ci/greenlight-deployer cannot patch deployments.apps or create leases.coordination.k8s.io in namespace shop-staging; nothing in the cluster was changed.",
	}})
}

func writeFailDeploy(s *stream) {
	run := stagingRun(s.now)
	run.Strategy = "blue-green"
	run.Image = "ghcr.io/acme/storefront:2.8.0-rc.1"
	s.emit(event.Event{Kind: event.RunStarted, Run: &run})
	s.start(event.Validate)
	s.advance(1800 * time.Millisecond)
	s.finish(event.Validate, event.Succeeded, "inputs valid, 11 permissions granted, lease shop-staging/storefront-deploy acquired")
	s.start(event.Deploy)
	s.advance(5*time.Minute + 2*time.Second)
	const pullMsg = `Back-off pulling image "ghcr.io/acme/storefront:2.8.0-rc.1"`
	const errMsg = `failed to pull and unpack image "ghcr.io/acme/storefront:2.8.0-rc.1": failed to resolve reference "ghcr.io/acme/storefront:2.8.0-rc.1": ghcr.io/acme/storefront:2.8.0-rc.1: not found`
	s.finish(event.Deploy, event.Failed, "storefront-green did not become ready within 5m0s (ProgressDeadlineExceeded): 3 pods cannot pull their image",
		event.Finding{Kind: "pod", Subject: "storefront-green-7c9d5b6f4-2xkqp", Reason: "ImagePullBackOff", Message: pullMsg},
		event.Finding{Kind: "pod", Subject: "storefront-green-7c9d5b6f4-9hj7w", Reason: "ImagePullBackOff", Message: pullMsg},
		event.Finding{Kind: "pod", Subject: "storefront-green-7c9d5b6f4-tl4zm", Reason: "ErrImagePull", Message: "rpc error: code = NotFound desc = " + errMsg},
		event.Finding{Kind: "event", Subject: "Pod/storefront-green-7c9d5b6f4-2xkqp", Reason: "Failed", Message: "Failed to pull image \"ghcr.io/acme/storefront:2.8.0-rc.1\": " + errMsg},
		event.Finding{Kind: "event", Subject: "Pod/storefront-green-7c9d5b6f4-2xkqp", Reason: "BackOff", Message: pullMsg + " (x14 over 4m51s)"},
		event.Finding{Kind: "event", Subject: "Deployment/storefront-green", Reason: "ProgressDeadlineExceeded", Message: `ReplicaSet "storefront-green-7c9d5b6f4" has timed out progressing.`},
	)
	s.emit(event.Event{Kind: event.RunFinished, Result: &event.Result{
		Status: event.StatusFailed, FinishedAt: s.now, ActiveColor: "blue",
		Reason:        "Deploy failed: storefront-green never became ready because image ghcr.io/acme/storefront:2.8.0-rc.1 does not exist; the Service still selects blue, so 2.7.3 kept serving.",
		ManualCommand: "kubectl --namespace shop-staging scale deployment/storefront-green --replicas=0",
	}})
}

// writeFailWorkload: five workloads deployed as one unit; the worker
// crash-loops, so every workload is put back, except the migration that
// already ran.
func writeFailWorkload(s *stream) {
	run := stagingRun(s.now)
	run.Image = "ghcr.io/acme/storefront:2.9.0"
	s.emit(event.Event{Kind: event.RunStarted, Run: &run})
	s.start(event.Validate)
	s.advance(1500 * time.Millisecond)
	s.finish(event.Validate, event.Succeeded, "inputs valid, 31 permissions granted")
	s.start(event.Deploy)
	s.advance(41 * time.Second)
	s.emit(event.Event{Kind: event.ObjectsChanged, Stage: event.Deploy, Objects: []event.ObjectChange{
		{Object: "Job/migrate", Change: "replaced", Result: "kept", Detail: "completed before the other workloads: what it did cannot be undone"},
		{Object: "Service/storefront", Change: "unchanged", Result: "applied"},
		{Object: "Deployment/storefront", Change: "configured", Result: "undone", Detail: "back to revision 7"},
		{Object: "Deployment/worker", Change: "configured", Result: "undone", Detail: `previous template restored (it had failed: Deployment/worker rollout failed: pods are failing: pod worker-6b6d6b4c6-xkwtb: container "worker" keeps crashing (restarted once; last exit code 2 Error))`},
		{Object: "StatefulSet/cache", Change: "configured", Result: "undone", Detail: "previous template restored (revision cache-5d8f7c9b6)"},
		{Object: "CronJob/report", Change: "configured", Result: "undone", Detail: "previous template restored"},
	}})
	s.finish(event.Deploy, event.Failed, `Deployment/worker rollout failed: pods are failing: pod worker-6b6d6b4c6-xkwtb: container "worker" keeps crashing (restarted once; last exit code 2 Error)`,
		event.Finding{Kind: "pod", Subject: "worker-6b6d6b4c6-xkwtb", Reason: "CrashLoopBackOff", Message: `pod worker-6b6d6b4c6-xkwtb: container "worker" keeps crashing (restarted once; last exit code 2 Error)`},
		event.Finding{Kind: "log", Subject: "worker-6b6d6b4c6-xkwtb/worker", Reason: "previous", Message: "Error: unknown flag: --no-such-flag"},
	)
	s.emit(event.Event{Kind: event.RunFinished, Result: &event.Result{
		Status: event.StatusFailed, FinishedAt: s.now,
		Reason: "Deploy failed: the worker crash-loops; every workload was put back on 2.8.4, except the migration, which completed and cannot be undone.",
	}})
}

// writeFailPreDeploy: the pre-deploy migration fails, so nothing else is
// applied; its log tail explains why.
func writeFailPreDeploy(s *stream) {
	run := stagingRun(s.now)
	run.Image = "ghcr.io/acme/storefront:2.9.1"
	s.emit(event.Event{Kind: event.RunStarted, Run: &run})
	s.start(event.Validate)
	s.advance(1400 * time.Millisecond)
	s.finish(event.Validate, event.Succeeded, "inputs valid, 31 permissions granted")
	s.start(event.Deploy)
	s.advance(9 * time.Second)
	s.emit(event.Event{Kind: event.ObjectsChanged, Stage: event.Deploy, Objects: []event.ObjectChange{
		{Object: "Job/migrate", Change: "replaced", Result: "failed", Detail: "pre-deploy Job/migrate rollout failed: BackoffLimitExceeded (Job has reached the specified backoff limit)"},
	}})
	s.finish(event.Deploy, event.Failed, "pre-deploy Job/migrate rollout failed: BackoffLimitExceeded (Job has reached the specified backoff limit); nothing else was applied",
		event.Finding{Kind: "log", Subject: "migrate-x7k2p/migrate", Reason: "current", Message: "applying 0042_add_orders_index\nERROR: relation \"orders\" does not exist\nmigration failed, rolled back transaction"},
	)
	s.emit(event.Event{Kind: event.RunFinished, Result: &event.Result{
		Status: event.StatusFailed, FinishedAt: s.now,
		Reason: "Deploy failed: the pre-deploy migration failed; nothing else was changed and 2.8.4 kept serving.",
	}})
}

func writeFailVerify(s *stream) {
	run := stagingRun(s.now)
	s.emit(event.Event{Kind: event.RunStarted, Run: &run})
	s.start(event.Validate)
	s.advance(1600 * time.Millisecond)
	s.finish(event.Validate, event.Succeeded, "inputs valid, 9 permissions granted, lease shop-staging/storefront-deploy acquired")
	s.start(event.Deploy)
	s.advance(52 * time.Second)
	s.finish(event.Deploy, event.Succeeded, "deployment storefront rolled out revision 14: 3 of 3 updated replicas are available")

	s.start(event.Verify)
	s.advance(60 * time.Second)
	target := "https://staging.shop.acme.example"
	res := health.Result{Mode: health.ModePostDeployment, Target: target, Attempts: 7, Duration: 60 * time.Second, Version: "2.8.0"}
	res.Endpoints = []health.EndpointResult{
		{Endpoint: health.EndpointBasic, Path: "/health", StatusCode: 200, Timing: s.timing(9 * time.Millisecond), Version: "2.8.0", Healthy: true},
		{Endpoint: health.EndpointReady, Path: "/health/ready", StatusCode: 503, Timing: s.timing(14 * time.Millisecond), Failure: "/health/ready answered 503 Service Unavailable"},
		{Endpoint: health.EndpointDetailed, Path: "/health/detailed", StatusCode: 503, Timing: s.timing(3012 * time.Millisecond),
			Detailed: components("fail", "dial tcp 10.96.14.7:5432: connect: connection refused", 3*time.Second),
			Failure:  `/health/detailed answered 503 Service Unavailable and reports component db:responseTime as "fail" (dial tcp 10.96.14.7:5432: connect: connection refused)`},
	}
	res.Reason = "Unhealthy after 7 attempts in 1m0s: /health/ready answered 503 Service Unavailable; /health/detailed answered 503 Service Unavailable and reports component db:responseTime as \"fail\"."
	s.emit(event.Event{Kind: event.HealthChecked, Stage: event.Verify, Health: &res})
	s.advance(30 * time.Second)
	answers := append(append(repeat("2.7.3", 4), repeat("2.8.0", 3)...), repeat("", 3)...)
	tr := traffic(health.ModeVerifyTraffic, target, "2.8.0", 5, 30*time.Second, answers)
	s.emit(event.Event{Kind: event.TrafficVerified, Stage: event.Verify, Traffic: &tr})
	s.finish(event.Verify, event.Failed, "/health/ready answered 503 and only 3 of 10 answers came from 2.8.0")
	s.emit(event.Event{Kind: event.Warning, Stage: event.Rollback, Message: "automatic rollback is off for staging (rollback-on-failure: false); revision 14 is still serving"})
	s.emit(event.Event{Kind: event.RunFinished, Result: &event.Result{
		Status: event.StatusFailed, FinishedAt: s.now, Revision: "14",
		Reason:        "Verification failed: /health/ready answered 503 because the database at 10.96.14.7:5432 refused connections, and only 3 of 10 answers came from 2.8.0.",
		ManualCommand: "kubectl --namespace shop-staging rollout undo deployment/storefront --to-revision=13",
	}})
}

func writeRollbackMonitor(s *stream) {
	run := productionRun(s.now)
	s.emit(event.Event{Kind: event.RunStarted, Run: &run})
	s.start(event.Validate)
	s.advance(2100 * time.Millisecond)
	s.finish(event.Validate, event.Succeeded, "inputs valid, 11 permissions granted, lease shop/storefront-deploy acquired")
	s.start(event.Deploy)
	s.advance(44 * time.Second)
	s.finish(event.Deploy, event.Succeeded, "storefront-green rolled out: 3 of 3 updated replicas are available; Service storefront now selects green")
	s.start(event.Verify)
	s.advance(5 * time.Second)
	post := s.healthyCheck(health.ModePostDeployment, "https://shop.acme.example", "2.8.0")
	s.emit(event.Event{Kind: event.HealthChecked, Stage: event.Verify, Health: &post})
	s.advance(2 * time.Second)
	tr := traffic(health.ModeVerifyTraffic, "https://shop.acme.example", "2.8.0", 1, 1800*time.Millisecond, repeat("2.8.0", 10))
	s.emit(event.Event{Kind: event.TrafficVerified, Stage: event.Verify, Traffic: &tr})
	s.finish(event.Verify, event.Succeeded, "3 endpoints healthy, 10 of 10 answers from 2.8.0")

	s.start(event.Monitor)
	out := s.simulate(30*time.Minute, 10*time.Second, monitorEndpoints, func(s *stream, at time.Duration, ep string) monitor.Sample {
		// A memory leak: from minute 11 answers slow down and pods start
		// failing with 503 while they restart.
		if at >= 11*time.Minute {
			if s.rnd.IntN(10) < 4 {
				return monitor.Sample{Latency: s.jitter(30*time.Millisecond, 0.5), StatusCode: 503, Err: ep + " answered 503 Service Unavailable"}
			}
			return monitor.Sample{Latency: s.jitter(380*time.Millisecond, 0.4), StatusCode: 200, OK: true}
		}
		return steady(s, at, ep)
	})
	reason := fmt.Sprintf("Monitoring asked for a rollback: %s", out.rollback.Message)
	s.emit(event.Event{Kind: event.StageFinished, Stage: event.Monitor, Outcome: event.Failed, Message: out.rollback.Message,
		Findings: []event.Finding{
			{Kind: "pod", Subject: "storefront-green-5f7c8d9b6-4mzqv", Reason: "OOMKilled", Message: "container app restarted 3 times; last exit code 137 after 2m11s"},
			{Kind: "pod", Subject: "storefront-green-5f7c8d9b6-q8r2d", Reason: "CrashLoopBackOff", Message: "back-off 40s restarting failed container=app pod=storefront-green-5f7c8d9b6-q8r2d_shop"},
			{Kind: "event", Subject: "Pod/storefront-green-5f7c8d9b6-4mzqv", Reason: "OOMKilling", Message: "Memory cgroup out of memory: Killed process 2231 (storefront) total-vm:1846520kB, anon-rss:524288kB"},
			{Kind: "event", Subject: "Pod/storefront-green-5f7c8d9b6-q8r2d", Reason: "Unhealthy", Message: "Readiness probe failed: HTTP probe failed with statuscode: 503"},
			{Kind: "log", Subject: "storefront-green-5f7c8d9b6-4mzqv/app", Reason: "previous", Message: "{\"level\":\"info\",\"msg\":\"storefront 2.8.0 listening on :8080\"}\n{\"level\":\"warn\",\"msg\":\"catalog cache at 498MiB of 512MiB\"}"},
			{Kind: "log", Subject: "storefront-green-5f7c8d9b6-q8r2d/app", Reason: "previous", Message: "{\"level\":\"info\",\"msg\":\"storefront 2.8.0 listening on :8080\"}\n{\"level\":\"error\",\"msg\":\"catalog warm-up: context deadline exceeded\"}"},
		},
	})
	s.start(event.Rollback)
	s.emit(event.Event{Kind: event.RollbackStarted, Stage: event.Rollback, Message: reason, Verdict: out.rollback, Evidence: out.evidence})
	s.advance(3 * time.Second)
	back := s.healthyCheck(health.ModeVerifyRollback, "https://shop.acme.example", "2.7.3")
	s.emit(event.Event{Kind: event.HealthChecked, Stage: event.Rollback, Health: &back})
	s.advance(2 * time.Second)
	btr := traffic(health.ModeVerifyRollback, "https://shop.acme.example", "2.7.3", 1, 1700*time.Millisecond, repeat("2.7.3", 10))
	s.emit(event.Event{Kind: event.TrafficVerified, Stage: event.Rollback, Traffic: &btr})
	s.emit(event.Event{Kind: event.RollbackFinished, Stage: event.Rollback, Outcome: event.Succeeded, Message: "Service storefront selects blue again; 10 of 10 answers from 2.7.3"})
	s.finish(event.Rollback, event.Succeeded, "Service storefront selects blue again; 10 of 10 answers from 2.7.3")
	s.emit(event.Event{Kind: event.RunFinished, Result: &event.Result{
		Status: event.StatusRolledBack, RolledBack: true, FinishedAt: s.now, ActiveColor: "blue", Monitor: &out.snapshot,
		Reason:        reason,
		ManualCommand: `kubectl --namespace shop patch service storefront --type merge --patch '{"spec":{"selector":{"app":"storefront","color":"green"}}}'`,
	}})
}

func writeRollbackFailed(s *stream) {
	run := stagingRun(s.now)
	s.emit(event.Event{Kind: event.RunStarted, Run: &run})
	s.start(event.Validate)
	s.advance(1500 * time.Millisecond)
	s.finish(event.Validate, event.Succeeded, "inputs valid, 9 permissions granted, lease shop-staging/storefront-deploy acquired")
	s.start(event.Deploy)
	s.advance(3*time.Minute + 10*time.Second)
	s.finish(event.Deploy, event.Failed, "deployment storefront did not become ready: 3 pods in CrashLoopBackOff",
		event.Finding{Kind: "pod", Subject: "storefront-6d8c7b9f5-x2k4q", Reason: "CrashLoopBackOff", Message: "panic: config: STOREFRONT_PAYMENTS_URL is not set"},
		event.Finding{Kind: "pod", Subject: "storefront-6d8c7b9f5-p7n3s", Reason: "CrashLoopBackOff", Message: "panic: config: STOREFRONT_PAYMENTS_URL is not set"},
	)
	s.start(event.Rollback)
	s.emit(event.Event{Kind: event.RollbackStarted, Stage: event.Rollback, Message: "Deploy failed: deployment storefront did not become ready (3 pods in CrashLoopBackOff); undoing to revision 13."})
	s.advance(5*time.Minute + 1*time.Second)
	rbFindings := []event.Finding{
		{Kind: "pod", Subject: "storefront-84b6f7d9c-9fd2k", Reason: "CreateContainerConfigError", Message: `secret "storefront-db-v1" not found`},
		{Kind: "pod", Subject: "storefront-84b6f7d9c-mb5wx", Reason: "CreateContainerConfigError", Message: `secret "storefront-db-v1" not found`},
		{Kind: "event", Subject: "Pod/storefront-84b6f7d9c-9fd2k", Reason: "Failed", Message: `Error: secret "storefront-db-v1" not found`},
		{Kind: "event", Subject: "Deployment/storefront", Reason: "ProgressDeadlineExceeded", Message: `ReplicaSet "storefront-84b6f7d9c" has timed out progressing.`},
	}
	s.emit(event.Event{Kind: event.RollbackFinished, Stage: event.Rollback, Outcome: event.Failed,
		Message: "revision 13 did not become ready within 5m0s: its pods need secret storefront-db-v1, which no longer exists", Findings: rbFindings})
	s.finish(event.Rollback, event.Failed, "revision 13 did not become ready within 5m0s")
	s.emit(event.Event{Kind: event.Warning, Stage: event.Rollback, Message: "no ready pods behind Service storefront in shop-staging; staging is down"})
	s.emit(event.Event{Kind: event.RunFinished, Result: &event.Result{
		Status: event.StatusRollbackFailed, FinishedAt: s.now, Revision: "15",
		Reason:        `Rollback failed: revision 13 did not become ready within 5m0s because its pods need secret "storefront-db-v1", which no longer exists; the new revision crashes on start.`,
		ManualCommand: "kubectl --namespace shop-staging get events --sort-by=.lastTimestamp | tail -20\nkubectl --namespace shop-staging rollout undo deployment/storefront --to-revision=12\nkubectl --namespace shop-staging rollout status deployment/storefront --timeout=5m",
	}})
}
