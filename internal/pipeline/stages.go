package pipeline

import (
	"context"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ebeautything/greenlight/internal/config"
	"github.com/ebeautything/greenlight/internal/event"
	"github.com/ebeautything/greenlight/internal/health"
	"github.com/ebeautything/greenlight/internal/kube"
	"github.com/ebeautything/greenlight/internal/monitor"
	"github.com/ebeautything/greenlight/internal/podmetrics"
	"github.com/ebeautything/greenlight/internal/promsource"
	"github.com/ebeautything/greenlight/internal/strategy"
)

// permissionError lists what the credential may not do, with the rule to add.
type permissionError struct {
	missing []kube.Permission
	rule    string
	// who is the user the API server mapped the credential to; empty when
	// it could not say.
	who string
}

func (e *permissionError) Error() string {
	if e.who != "" {
		return fmt.Sprintf("the credential, which the API server maps to %s, lacks %d permission(s) the %s strategy needs (first: %s); nothing was changed", e.who, len(e.missing), "deploy", e.missing[0])
	}
	return fmt.Sprintf("the kubeconfig's credential lacks %d permission(s) the %s strategy needs (first: %s); nothing was changed", len(e.missing), "deploy", e.missing[0])
}

// validate changes nothing in the cluster: it checks reachability,
// permissions and manifests, takes the lock and checks the current version.
func (r *run) validate(ctx context.Context) (unlock func(), err error) {
	cfg := r.cfg
	if _, err := r.deps.Client.Discovery().ServerVersion(); err != nil {
		return nil, fmt.Errorf("reach the cluster: %w", kube.ClassifyAPIError(err))
	}
	// A reject acts only on what a deploy left in the cluster; a promote
	// that creates the Service (a first deploy) takes it from the manifests.
	if len(cfg.Manifests) > 0 && r.op != config.CommandReject {
		objs, err := kube.LoadManifests(r.deps.Files, cfg.Manifests)
		if err != nil {
			return nil, &config.InputError{Input: "manifests", Problem: err.Error(), Accepted: "files, directories or globs of Kubernetes YAML or JSON"}
		}
		if cfg.Image != "" {
			if r.subs, err = kube.SubstituteImage(objs, cfg.Container, cfg.Image); err != nil {
				input := "image"
				if cfg.Container != "" {
					input = "container"
				}
				return nil, &config.InputError{Input: input, Problem: err.Error(), Accepted: "a container of the manifests' workloads, by name (container) or by the image's repository"}
			}
		}
		kube.SortForApply(objs) // what workloads depend on exists before them
		r.objs = objs
	}
	plan := kube.Plan{Strategy: string(cfg.Strategy), Namespace: cfg.Namespace, ManifestKinds: kindsOf(r.objs), UsesLease: r.deps.Lock != nil, ChecksThroughAPIServer: cfg.URL == "", ChecksPodsBeforeTraffic: r.checksPodsBeforeTraffic(), ReadsPodMetrics: cfg.MetricsPath != "", WritesAppEnv: r.usesAppEnv()}
	missing, err := kube.CheckPermissions(ctx, r.deps.Client, kube.RequiredPermissions(plan))
	if err != nil {
		return nil, fmt.Errorf("check permissions: %w", kube.ClassifyAPIError(err))
	}
	if len(missing) > 0 {
		// Best effort: servers before 1.28 have no SelfSubjectReview.
		who, _ := kube.WhoAmI(ctx, r.deps.Client)
		return nil, &permissionError{missing: missing, rule: kube.FormatRBACRule(missing), who: who}
	}
	if r.usesAppEnv() {
		if err := r.prepareAppEnv(ctx, r.subs); err != nil {
			return nil, err
		}
	}
	if len(r.objs) > 0 {
		if _, err := r.deps.Applier.Apply(ctx, kube.WithoutLiveJobs(ctx, r.deps.Client, cfg.Namespace, r.objs), cfg.Namespace, true); err != nil {
			return nil, err
		}
	}

	r.target = strategy.Target{
		Namespace: cfg.Namespace, Deployment: cfg.Deployment, Service: r.serviceName(),
		Container: cfg.Container, Image: cfg.Image, Manifests: r.objs,
		Annotations: changeAnnotations(cfg, r.out.Run, r.deps.Now()),
		Replicas:    int32(cfg.Replicas),
	}
	wait := kube.WaitOptions{Timeout: cfg.RolloutTimeout, OnProgress: func(s kube.RolloutState) {
		r.emit(event.Event{Kind: event.RolloutProgress, Stage: event.Deploy, Message: s.Message})
	}}
	onStep := func(s strategy.Step) {
		msg := s.Name
		if s.Detail != "" {
			msg += ": " + s.Detail
		}
		if s.Err != "" {
			msg += ": " + s.Err
		}
		r.emit(event.Event{Kind: event.StepFinished, Message: msg})
	}
	switch cfg.Strategy {
	case config.BlueGreen:
		r.strategy = &strategy.BlueGreen{Client: r.deps.Client, Applier: r.deps.Applier, Wait: wait, OnStep: onStep, Verify: r.verifyPreview, ScaleDownDelay: cfg.ScaleDownDelay,
			Manual:   cfg.Promotion == config.PromotionManual && r.op == config.CommandDeploy,
			Awaiting: strategy.Pending{DeploymentID: cfg.DeploymentID, Actor: r.out.Run.Actor, RunURL: r.out.Run.RunURL}}
	default:
		r.strategy = &strategy.Rolling{Client: r.deps.Client, Applier: r.deps.Applier, Wait: wait, OnStep: onStep}
	}

	if cfg.URL != "" {
		if _, err := r.publicTarget(ctx); err != nil {
			return nil, err
		}
	}

	if r.deps.Lock != nil {
		if unlock, err = r.deps.Lock(ctx, func(msg string) { r.warn("%s", msg) }); err != nil {
			return nil, err
		}
	}
	if err := r.preDeploymentCheck(ctx); err != nil {
		if unlock != nil {
			unlock()
		}
		return nil, err
	}
	return unlock, nil
}

// preDeploymentCheck requires the version serving now to be healthy before
// anything changes, or a rollback would have nothing healthy to return to.
func (r *run) preDeploymentCheck(ctx context.Context) error {
	// A reject only removes a color that never got traffic: it must work
	// whatever state the serving version is in.
	if r.op == config.CommandReject || !r.currentlyServing(ctx) {
		return nil
	}
	target, err := r.publicTarget(ctx)
	if err != nil {
		return err
	}
	res := health.Check(ctx, target, r.checkOptions(health.ModePreDeployment))
	r.emit(event.Event{Kind: event.HealthChecked, Stage: event.Validate, Health: &res})
	r.before.Served = true
	r.before.Reported, r.before.Path = VersionAnswer(res, r.paths())
	if m := r.cfg.VersionCheck.Mode; m == config.VersionCheckJSON || m == config.VersionCheckHeader {
		r.before.Reported = health.ServedVersionNow(ctx, target, r.versionSource(), r.checkOptions(health.ModePreDeployment))
	}
	if res.Healthy {
		return nil
	}
	if !r.cfg.ContinueOnUnhealthy {
		return unhealthyRefusal(res.Reason)
	}
	r.warn("the version serving now is unhealthy (%s); deploying anyway as continue-on-unhealthy is set", res.Reason)
	return nil
}

// unhealthyRefusal is validate's answer when the version serving now is
// unhealthy: an emergency fix over a broken production must be asked for
// explicitly, so it says how.
func unhealthyRefusal(reason string) error {
	return fmt.Errorf("the version serving now is unhealthy, so a rollback would have nothing to return to: %s; "+
		"to deploy a fix anyway set the continue-on-unhealthy input: in the example pipeline, Run workflow with continue_on_unhealthy ticked "+
		"(gh workflow run deployment-pipeline.yml -f environment=production -f continue_on_unhealthy=true), or --continue-on-unhealthy on the command line", reason)
}

// publicTarget is where the environment's traffic is checked: its URL, or
// the Service through the API server's service proxy, on the service-port
// input or else the Service's first port (read once the Service exists: a
// first blue-green deploy creates it).
func (r *run) publicTarget(ctx context.Context) (health.Target, error) {
	if r.publicReady {
		return r.public, nil
	}
	var target health.Target
	var err error
	if r.cfg.URL != "" {
		target, err = health.NewURLTarget(r.cfg.URL, r.deps.TLS)
	} else {
		port := strconv.Itoa(r.cfg.ServicePort)
		if r.cfg.ServicePort == 0 {
			if port, err = kube.ServicePort(ctx, r.deps.Client, r.cfg.Namespace, r.serviceName()); err != nil {
				return health.Target{}, fmt.Errorf("health check target: %w", err)
			}
		}
		target, err = health.NewServiceProxyTarget(r.deps.REST, r.cfg.Namespace, r.serviceName(), port)
	}
	if err != nil {
		return health.Target{}, fmt.Errorf("health check target: %w", err)
	}
	r.public, r.publicReady = target, true
	return target, nil
}

// currentlyServing tells whether something serves now (not a first deploy).
func (r *run) currentlyServing(ctx context.Context) bool {
	_, err := r.deps.Client.CoreV1().Services(r.cfg.Namespace).Get(ctx, r.serviceName(), metav1.GetOptions{})
	return err == nil
}

// verifyPreview checks the idle blue-green color through its preview
// Service, before it gets any traffic. It first waits until the preview's
// EndpointSlices list only ready pods of the new color: a preview Service
// kept from an earlier deploy still lists the old color for a moment, and
// an answer from it is no check of the new one.
func (r *run) verifyPreview(ctx context.Context, p strategy.Preview) error {
	err := r.checkPreview(ctx, p)
	if err != nil && r.deps.Client != nil && len(p.Selector) > 0 {
		// Read now: a failed check makes the strategy scale the color down.
		if d, derr := (kube.Diagnoser{Client: r.deps.Client}).Diagnose(ctx, p.Namespace, p.Selector); derr == nil {
			r.previewDiagnosis = &d
		}
	}
	return err
}

// checkPreview runs the checks before traffic against the new color:
// through the preview Service on the API server's service proxy, or, when
// the checks carry a token or smoke-test headers the proxy would drop, to
// each ready pod of the color through a port-forward.
func (r *run) checkPreview(ctx context.Context, p strategy.Preview) error {
	if len(p.Selector) > 0 {
		if _, err := kube.WaitEndpoints(ctx, r.deps.Client, p.Namespace, p.Service, p.Selector, max(1, p.Replicas), r.cfg.Timeout); err != nil {
			return fmt.Errorf("%s cannot be checked before getting traffic: %w", p.Color, err)
		}
	}
	if r.checksPodsBeforeTraffic() && len(p.Selector) > 0 {
		return r.checkPreviewPods(ctx, p)
	}
	target, err := health.NewServiceProxyTarget(r.deps.REST, p.Namespace, p.Service, p.Port)
	if err != nil {
		return fmt.Errorf("preview target: %w", err)
	}
	return r.checkPreviewTarget(ctx, p, target, true)
}

// checksPodsBeforeTraffic is true when the checks before traffic carry
// what the API server's service proxy does not forward: the bearer token
// of the detailed health check, or smoke tests' headers.
func (r *run) checksPodsBeforeTraffic() bool {
	return r.cfg.HealthCheckToken != "" || (r.cfg.SmokeTests != "" && !r.cfg.SkipTests)
}

// checkPreviewPods checks each ready pod of the new color through its own
// port-forward, with the token and headers the public URL would get.
func (r *run) checkPreviewPods(ctx context.Context, p strategy.Preview) error {
	pods, port, err := kube.ReadyPodsBehind(ctx, r.deps.Client, p.Namespace, p.Service, p.Port, p.Selector)
	if err != nil {
		return fmt.Errorf("%s cannot be checked before getting traffic: %w", p.Color, err)
	}
	for _, pod := range pods {
		pf, err := kube.ForwardPort(ctx, r.deps.REST, r.deps.Client, p.Namespace, pod.Name, pod.Port)
		if err != nil {
			return fmt.Errorf("%s cannot be checked before getting traffic: %w", p.Color, err)
		}
		target, err := health.NewURLTarget("http://"+pf.Local, health.TLSOptions{})
		if err == nil {
			err = r.checkPreviewTarget(ctx, p, target.Named(fmt.Sprintf("pod %s/%s:%d (%s, port-forward)", p.Namespace, pod.Name, pod.Port, port)), false)
		}
		pf.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// checkPreviewTarget runs health, version and smoke checks on one target
// of the new color; proxied drops the detailed check, whose token the
// service proxy would not pass on.
func (r *run) checkPreviewTarget(ctx context.Context, p strategy.Preview, target health.Target, proxied bool) error {
	opts := r.checkOptions(health.ModePostDeployment)
	if proxied && r.cfg.HealthCheckToken != "" {
		// The API server's proxy does not forward a bearer token.
		opts.Endpoints = withoutDetailed(opts.Endpoints)
	}
	res := health.Check(ctx, target, opts)
	r.emit(event.Event{Kind: event.HealthChecked, Stage: event.Deploy, Health: &res, Message: "preview of " + p.Color})
	if !res.Healthy {
		return fmt.Errorf("%s failed its health check before getting traffic: %s", p.Color, res.Reason)
	}
	before := r.before
	before.Tag = VersionOf(p.PreviousImage)
	plan := PlanProof(r.cfg.VersionCheck, r.cfg.ExpectedVersion, r.version, before)
	if plan.Proof == health.ProofVersion {
		if err := otherVersion(res, plan.Want); err != nil {
			return fmt.Errorf("%s failed its check before getting traffic: %w", p.Color, err)
		}
		opts.Version = r.versionSource()
		tr := health.VerifyTraffic(ctx, target, plan.Want, 5, opts)
		if !tr.Passed {
			return fmt.Errorf("%s does not serve %s: %s", p.Color, plan.Want, tr.Reason)
		}
	}
	return r.smoke(ctx, target, event.Deploy)
}

// otherVersion fails a pre-traffic check that any other version answered.
// Pure.
func otherVersion(res health.Result, want string) error {
	for _, e := range res.Endpoints {
		if e.Version != "" && !health.SameVersion(want, e.Version) {
			return fmt.Errorf("%s was answered by version %s, not %s", e.Path, e.Version, want)
		}
	}
	return nil
}

// verify checks the new version where its traffic arrives: health, smoke
// tests and proof that answers come from it.
func (r *run) verify(ctx context.Context) (string, error) {
	target, err := r.publicTarget(ctx)
	if err != nil {
		return "", err
	}
	res := health.Check(ctx, target, r.checkOptions(health.ModePostDeployment))
	r.emit(event.Event{Kind: event.HealthChecked, Stage: event.Verify, Health: &res})
	if !res.Healthy {
		return "", fmt.Errorf("health check failed: %s", res.Reason)
	}
	if err := r.requiredComponents(res); err != nil {
		return "", err
	}
	if err := r.smoke(ctx, target, event.Verify); err != nil {
		return "", err
	}
	before := r.beforeWithTag()
	plan := TellsApart(PlanProof(r.cfg.VersionCheck, r.cfg.ExpectedVersion, r.version, before), before.Reported, "the version serving before the deploy")
	r.out.Result.TrafficProof = plan.Proof
	tr := r.proveTraffic(ctx, target, plan, r.out.Deployed.Deployment, health.ModeVerifyTraffic, event.Verify)
	if !tr.Passed {
		return "", fmt.Errorf("traffic verification failed (%s proof, as %s): %s", plan.Proof, plan.Reason, tr.Reason)
	}
	return fmt.Sprintf("healthy; %s proof (%s): %s", plan.Proof, plan.Reason, tr.Summary), nil
}

// requiredComponents fails verify when a required component of the
// detailed answer is missing or failing, and warns when one is degraded.
func (r *run) requiredComponents(res health.Result) error {
	if len(r.cfg.RequiredComponents) == 0 {
		return nil
	}
	var detailed *health.Detailed
	for _, e := range res.Endpoints {
		if e.Endpoint == health.EndpointDetailed {
			detailed = e.Detailed
		}
	}
	v := health.CheckRequired(detailed, r.cfg.RequiredComponents)
	for _, c := range v.Warned {
		r.warn("required component %s reports %q", c.Name, c.Status)
	}
	if p := v.Problem(); p != "" {
		return fmt.Errorf("%s", p)
	}
	return nil
}

// beforeWithTag is what served before, with the tag of its image.
func (r *run) beforeWithTag() Before {
	b := r.before
	b.Tag = VersionOf(r.out.Deployed.PreviousImage)
	return b
}

func (r *run) smoke(ctx context.Context, target health.Target, stage event.Stage) error {
	if r.cfg.SmokeTests == "" {
		return nil
	}
	if r.cfg.SkipTests {
		if stage == event.Verify {
			r.warn("smoke tests skipped (skip-tests) in %s", r.cfg.Environment)
		}
		return nil
	}
	data, err := r.deps.ReadFile(r.cfg.SmokeTests)
	if err != nil {
		return fmt.Errorf("read smoke tests %s: %w", r.cfg.SmokeTests, err)
	}
	suite, err := health.ParseSmokeTests(data)
	if err != nil {
		return fmt.Errorf("smoke tests %s: %w", r.cfg.SmokeTests, err)
	}
	token := r.cfg.HealthCheckToken.Reveal()
	results := health.RunSmokeTests(ctx, target, suite, token)
	r.emit(event.Event{Kind: event.SmokeTested, Stage: stage, Smoke: results})
	for _, res := range results {
		if !res.Passed {
			return fmt.Errorf("smoke test %q failed: %s", res.Name, res.Failure)
		}
	}
	return nil
}

// monitor watches the new version for the environment's duration.
func (r *run) monitor(ctx context.Context) (monitor.Result, error) {
	cfg := r.cfg
	paths := r.paths()
	opts := monitor.Options{
		Endpoints: []string{paths.Basic},
		Interval:  cfg.MonitorInterval,
		Duration:  cfg.MonitorDuration,
		Timeout:   min(cfg.Timeout, max(cfg.MonitorInterval, time.Second)),
		Rules: monitor.Rules{
			Window: monitor.DefaultWindow, MinSamples: cfg.MinSamples,
			AlertResponseTime: cfg.AlertResponseTime, AlertErrorRate: cfg.AlertErrorRate,
			AlertAvailability: cfg.AlertAvailability, AlertConsecutiveFailures: cfg.AlertConsecutiveFailures,
			RollbackErrorRate: cfg.RollbackErrorRate, RollbackConsecutiveFailures: cfg.RollbackConsecutiveFailures,
			MinRequests: cfg.MinRequests,
		},
	}
	target, err := r.publicTarget(ctx)
	if err != nil {
		return monitor.Result{}, err
	}
	if cfg.MetricsPath != "" && cfg.MonitorDuration > 0 {
		if src := r.podMetrics(ctx, opts.Timeout); src != nil {
			opts.Sources = append(opts.Sources, monitor.NamedSource{Name: monitor.SourcePodMetrics, Read: src})
		}
	}
	if cfg.PrometheusURL != "" && cfg.MonitorDuration > 0 {
		if src := r.prometheus(ctx, opts.Timeout); src != nil {
			opts.Sources = append(opts.Sources, monitor.NamedSource{Name: monitor.SourcePrometheus, Read: src})
		}
	}
	probe := func(ctx context.Context, endpoint string) monitor.Sample {
		return SampleOf(health.Probe(ctx, target, endpoint, opts.Timeout))
	}
	return monitor.Run(ctx, opts, probe, func(e monitor.Event) {
		switch e.Kind {
		case monitor.EventAlertRaised:
			r.emit(event.Event{Kind: event.AlertRaised, Stage: event.Monitor, Alert: e.Alert, Message: e.Alert.Verdict.Message})
		case monitor.EventAlertResolved:
			r.emit(event.Event{Kind: event.AlertResolved, Stage: event.Monitor, Alert: e.Alert, Message: e.Alert.Verdict.Message})
		case monitor.EventProgress:
			r.emit(event.Event{Kind: event.MonitorProgress, Stage: event.Monitor, Snapshot: e.Snapshot})
		}
	}), nil

}

// podMetrics is the source that reads the new version's pods' own request
// metrics through the API server, or nil (with a warning) when their pods
// cannot be told: the probes still judge the release.
func (r *run) podMetrics(ctx context.Context, timeout time.Duration) monitor.RequestSource {
	if r.deps.Client == nil || r.out.Deployed.Deployment == "" {
		return nil
	}
	sel, _, err := kube.CurrentPodSelector(ctx, r.deps.Client, r.cfg.Namespace, r.out.Deployed.Deployment)
	if err != nil {
		r.warn("pod metrics are not read, the probes judge alone: find the new version's pods: %v", err)
		return nil
	}
	names := podmetrics.Names{Requests: r.cfg.MetricsRequests, Duration: r.cfg.MetricsDuration, StatusLabel: r.cfg.MetricsStatusLabel}
	src := &podmetrics.Source{
		Scraper: &podmetrics.Scraper{
			Client: r.deps.Client, Namespace: r.cfg.Namespace, Selector: sel,
			Port: r.cfg.MetricsPort, Path: r.cfg.MetricsPath, Names: names, Timeout: timeout,
		},
		Tracker: podmetrics.Tracker{Requests: names.Requests},
		Now:     r.deps.Now,
	}
	return func(ctx context.Context) monitor.RequestWindow { return RequestWindowOf(src.Next(ctx)) }
}

// MinPrometheusWindow is the shortest range the Prometheus queries cover:
// rate() needs two scrapes in its range, and teams scrape every 15 to 30 s.
const MinPrometheusWindow = time.Minute

// prometheus is the source that asks the team's Prometheus about the new
// version's pods, or nil (with a warning) when their pods cannot be told.
func (r *run) prometheus(ctx context.Context, timeout time.Duration) monitor.RequestSource {
	if r.deps.Client == nil || r.out.Deployed.Deployment == "" {
		return nil
	}
	sel, _, err := kube.CurrentPodSelector(ctx, r.deps.Client, r.cfg.Namespace, r.out.Deployed.Deployment)
	if err != nil {
		r.warn("Prometheus is not queried, the probes judge alone: find the new version's pods: %v", err)
		return nil
	}
	q := promsource.DefaultQueries(r.cfg.MetricsRequests, r.cfg.MetricsStatusLabel, r.cfg.MetricsDuration)
	if r.cfg.PrometheusErrorQuery != "" {
		q.ErrorShare = r.cfg.PrometheusErrorQuery
	}
	if r.cfg.PrometheusLatencyQuery != "" {
		q.Latency = r.cfg.PrometheusLatencyQuery
	}
	client, ns := r.deps.Client, r.cfg.Namespace
	src := &promsource.Source{
		URL: r.cfg.PrometheusURL, Token: r.cfg.PrometheusToken.Reveal(), Queries: q,
		Window: max(r.cfg.MonitorInterval, MinPrometheusWindow), Timeout: timeout, Now: r.deps.Now,
		Pods: func(ctx context.Context) ([]promsource.Pod, error) {
			pods, err := kube.ListPods(ctx, client, ns, sel)
			if err != nil {
				return nil, err
			}
			out := make([]promsource.Pod, len(pods))
			for i, p := range pods {
				out[i] = promsource.Pod{Name: p.Name, Started: servingSince(p)}
			}
			return out, nil
		},
	}
	return func(ctx context.Context) monitor.RequestWindow { return PrometheusWindowOf(src.Next(ctx)) }
}

// servingSince is when a pod could first have served traffic: when it
// turned ready, else when it started. Pure.
func servingSince(p corev1.Pod) time.Time {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue && !c.LastTransitionTime.IsZero() {
			return c.LastTransitionTime.Time
		}
	}
	if p.Status.StartTime != nil {
		return p.Status.StartTime.Time
	}
	return p.CreationTimestamp.Time
}

// PrometheusWindowOf is a window of Prometheus's figures as the monitor
// judges it. Pure.
func PrometheusWindowOf(w promsource.Window) monitor.RequestWindow {
	return monitor.RequestWindow{
		Start: w.Start, End: w.End, Pods: w.Pods, Requests: w.Requests, Errors: w.Errors,
		P95: w.P95, HasLatency: w.HasLatency, Unread: w.Unread, Findings: w.Findings,
	}
}

// RequestWindowOf is a window of the pods' metrics as the monitor judges
// it. Pure.
func RequestWindowOf(w podmetrics.Window) monitor.RequestWindow {
	out := monitor.RequestWindow{
		Start: w.Start, End: w.End, Pods: w.Pods, Requests: w.Requests, Errors: w.Errors,
		P95: w.P95, HasLatency: w.HasLatency, Baseline: w.Baseline,
	}
	for _, f := range w.Findings {
		out.Findings = append(out.Findings, f.Message)
	}
	return out
}

// SampleOf is a probe's answer as the monitor counts it. Pure.
func SampleOf(p health.ProbeResult) monitor.Sample {
	return monitor.Sample{Time: p.Time, Endpoint: p.Path, Latency: p.Latency, StatusCode: p.StatusCode, OK: p.OK, Err: p.Err, Unjudged: p.Unjudged != ""}
}

func (r *run) paths() health.Paths {
	p := health.DefaultPaths()
	hp := r.cfg.HealthPaths
	if len(hp) > 0 {
		p.Basic = hp[0]
	}
	if len(hp) > 1 {
		p.Ready = hp[1]
	}
	if len(hp) > 2 {
		p.Detailed = hp[2]
	}
	return p
}

func (r *run) checkOptions(mode health.Mode) health.CheckOptions {
	endpoints := health.AllEndpoints()[:min(len(health.AllEndpoints()), max(1, len(r.cfg.HealthPaths)))]
	return health.CheckOptions{
		Mode: mode, Paths: r.paths(), Endpoints: endpoints,
		Token: r.cfg.HealthCheckToken.Reveal(), Timeout: r.cfg.Timeout,
	}
}

func withoutDetailed(eps []health.Endpoint) []health.Endpoint {
	var out []health.Endpoint
	for _, e := range eps {
		if e != health.EndpointDetailed {
			out = append(out, e)
		}
	}
	return out
}

// changeAnnotations records who changed what on each object greenlight
// changes, so `kubectl rollout history` and a later run can tell.
func changeAnnotations(cfg config.Config, run event.Run, now time.Time) map[string]string {
	a := map[string]string{
		"greenlight.dev/deployment-id": cfg.DeploymentID,
		"greenlight.dev/image":         cfg.Image,
		"greenlight.dev/deployed-at":   now.UTC().Format(time.RFC3339),
		"kubernetes.io/change-cause":   fmt.Sprintf("greenlight deploy %s (%s)", cfg.Image, cfg.DeploymentID),
	}
	if run.RunURL != "" {
		a["greenlight.dev/run-url"] = run.RunURL
	}
	if run.Actor != "" {
		a["greenlight.dev/actor"] = run.Actor
	}
	return a
}
