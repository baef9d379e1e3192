// Package pipeline runs a deploy: validate → deploy → verify → monitor, and
// rolls back when verification fails or monitoring says so. It decides; it
// never formats output or talks to GitHub or Slack: everything it learns
// leaves as events.
package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/ebeautything/greenlight/internal/config"
	"github.com/ebeautything/greenlight/internal/event"
	"github.com/ebeautything/greenlight/internal/health"
	"github.com/ebeautything/greenlight/internal/kube"
	"github.com/ebeautything/greenlight/internal/monitor"
	"github.com/ebeautything/greenlight/internal/redact"
	"github.com/ebeautything/greenlight/internal/strategy"
)

// Deps are the pipeline's connections to the world, injected so tests use
// a real cluster and real servers without globals.
type Deps struct {
	Client  kubernetes.Interface
	REST    *rest.Config
	Applier *kube.Applier
	Files   kube.ManifestFiles
	// ReadFile reads the smoke-test file.
	ReadFile func(string) ([]byte, error)
	// Sink receives every event; it must not block.
	Sink event.Sink
	// Run is the identity known before the run: repository, run URL,
	// actor, SHA. The pipeline fills in the rest.
	Run event.Run
	// Lock takes the environment's deploy lock, telling warn about waits and
	// takeovers; nil runs without one.
	Lock func(ctx context.Context, warn func(string)) (release func(), err error)
	// RollbackRequested, when set, tells whether another command asked this
	// run (through its lock) to roll back; it is asked once per probe
	// interval from the deploy's end until monitoring ends. AnswerRollback
	// replies, so the asking command can report what this run did.
	RollbackRequested func(ctx context.Context) (*kube.RollbackRequest, error)
	AnswerRollback    func(ctx context.Context, a kube.RollbackAnswer) error
	// History records a finished run in the cluster; nil keeps none.
	History func(ctx context.Context, o *Outcome) error
	// TLS adds a CA bundle for the environment URL.
	TLS health.TLSOptions
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// StageResult is how one stage went.
type StageResult struct {
	Stage    event.Stage   `json:"stage"`
	Outcome  event.Outcome `json:"outcome"`
	Started  time.Time     `json:"started"`
	Finished time.Time     `json:"finished"`
	Finding  string        `json:"finding,omitempty"`
}

// Outcome is the whole run's result.
type Outcome struct {
	Run      event.Run         `json:"run"`
	Result   event.Result      `json:"result"`
	Stages   []StageResult     `json:"stages"`
	Deployed strategy.Deployed `json:"deployed"`
	// EnvSecret names the Secret holding this deploy's app-env, if any.
	EnvSecret string          `json:"env_secret,omitempty"`
	Monitor   *monitor.Result `json:"-"`
	// Err is the cause of a failure, for the log.
	Err error `json:"-"`
}

// ExitCode is the process exit code for the outcome: 0 succeeded (or
// awaiting promotion, or rejected as asked), 1 anything else.
func (o *Outcome) ExitCode() int {
	switch o.Result.Status {
	case event.StatusSucceeded, event.StatusAwaitingPromotion, event.StatusRejected:
		return 0
	}
	return 1
}

type run struct {
	cfg      config.Config
	deps     Deps
	out      *Outcome
	strategy strategy.Strategy
	target   strategy.Target
	public   health.Target
	// publicReady is set once public was built (see publicTarget).
	publicReady bool
	objs        []*unstructured.Unstructured
	version     string
	// before is what the version serving before the deploy said of itself.
	before Before
	// deployStarted is set once the cluster may have been changed.
	deployStarted bool
	// requested is the rollback another command asked for, once seen.
	requested *kube.RollbackRequest
	// previewDiagnosis is what the new color's pods said when a check
	// before traffic failed, read before the strategy removed them.
	previewDiagnosis *kube.Diagnosis
	// op is the operation: deploy, promote or reject.
	op config.Command
	// appEnv is the deploy's app-env Secret, named in validate.
	appEnv *appEnv
	// subs are the containers validate set the image of.
	subs []kube.Substitution
}

// Run executes a deploy and returns its outcome; it never panics on a
// cluster or network failure, and it always emits RunFinished.
func Run(ctx context.Context, cfg config.Config, deps Deps) *Outcome {
	return operate(ctx, cfg, deps, config.CommandDeploy)
}

// operate runs one of the operations that go through the stages: deploy,
// promote or reject.
func operate(ctx context.Context, cfg config.Config, deps Deps, op config.Command) *Outcome {
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Sink == nil {
		deps.Sink = event.SinkFunc(func(event.Event) {})
	}
	r := &run{cfg: cfg, deps: deps, out: &Outcome{}, op: op}
	r.out.Run = r.identity()
	r.version = VersionOf(cfg.Image)
	if op != config.CommandDeploy && cfg.Image == "" && deps.Client != nil {
		// Best effort, so the run's start names the image that waits;
		// validate reports a cluster that cannot be reached.
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if p, _, err := strategy.FindPending(pctx, deps.Client, cfg.Namespace, cfg.Deployment); err == nil && p != nil {
			r.adopt(p.Image)
		}
		cancel()
	}
	r.emit(event.Event{Kind: event.RunStarted, Run: &r.out.Run})
	switch op {
	case config.CommandPromote:
		r.execute(ctx, r.promote)
	case config.CommandReject:
		r.execute(ctx, r.reject)
	default:
		r.execute(ctx, r.deploy)
	}
	r.out.Result.FinishedAt = deps.Now()
	r.emit(event.Event{Kind: event.RunFinished, Run: &r.out.Run, Result: &r.out.Result, Message: r.out.Result.Reason})
	// Recorded after RunFinished, so the stored report has the result; a run
	// that stopped in validate changed nothing and leaves no record.
	if r.deps.History != nil && r.deployStarted {
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		if err := r.deps.History(hctx, r.out); err != nil {
			r.warn("record the deploy in the cluster's history: %v", err)
		}
		cancel()
	}
	return r.out
}

func (r *run) identity() event.Run {
	run := r.deps.Run
	run.Environment = r.cfg.Environment
	run.Strategy = string(r.cfg.Strategy)
	run.Namespace = r.cfg.Namespace
	run.Deployment = r.cfg.Deployment
	run.Service = r.serviceName()
	run.Image = r.cfg.Image
	run.DeploymentID = r.cfg.DeploymentID
	run.EnvironmentURL = r.cfg.URL
	run.SkipTests = r.cfg.SkipTests
	run.Production = strings.EqualFold(r.cfg.Environment, "production")
	run.StartedAt = r.deps.Now()
	return run
}

func (r *run) serviceName() string {
	if r.cfg.Service != "" {
		return r.cfg.Service
	}
	return r.cfg.Deployment
}

// execute runs the stages; op is the deploy stage's work, which either
// moves traffic (deploy, promote) or ends the run with its own status
// (awaiting promotion, rejected).
func (r *run) execute(ctx context.Context, op func(ctx context.Context) (string, error)) {
	fail := func(err error) {
		r.out.Result.Status = event.StatusFailed
		r.out.Result.Reason = oneSentence(err)
		r.out.Err = err
	}
	var release func()
	if err := r.stage(ctx, event.Validate, func(ctx context.Context) (string, error) {
		var err error
		release, err = r.validate(ctx)
		return "inputs, cluster, permissions, manifests and current version checked", err
	}); err != nil {
		fail(err)
		return
	}
	if release != nil {
		defer release()
	}
	// Before the lock is released: see pruneAppEnv.
	defer r.pruneAppEnv(ctx)

	// A deploy takes the idle color: a rollback window still open on it
	// ends now, and one that closed is scaled down, as any writer does.
	r.closeWindows(ctx, r.deps.Now(), true)

	r.deployStarted = true
	if err := r.stage(ctx, event.Deploy, op); err != nil {
		fail(err)
		switch {
		case r.out.Deployed.Switched:
			r.rollback(ctx, err)
		case undoneByStrategy(r.out.Deployed):
			// The rolling update undid itself: the previous revision serves.
			r.out.Result.RolledBack = true
			r.out.Result.Status = event.StatusRolledBack
			r.out.Result.Reason = fmt.Sprintf("rolled back to %s because %s", r.out.Deployed.PreviousImage, oneSentence(err))
			r.out.Result.ManualCommand = r.rollForwardCommand()
		case undoFailedInStrategy(r.out.Deployed):
			// Nothing healthy may be serving: the same status as a
			// rollback that failed after the switch.
			undo := r.out.Deployed.Steps[len(r.out.Deployed.Steps)-1]
			cause := err
			if joined, ok := err.(interface{ Unwrap() []error }); ok && len(joined.Unwrap()) > 0 {
				cause = joined.Unwrap()[0]
			}
			r.out.Result.Status = event.StatusRollbackFailed
			r.out.Result.Reason = "the rollback failed: " + oneSentence(errors.New(undo.Err)) + "; it was started because " + oneSentence(cause)
		}
		return
	}
	if r.out.Result.Status != "" {
		return // awaiting promotion, or rejected
	}
	r.out.Run.PreviousImage = r.out.Deployed.PreviousImage

	// From here a rollback asked for through the lock stops the run within
	// one probe interval, and this run, the lock's holder, rolls back.
	wctx, stopWatch := r.watchRequests(ctx)
	defer stopWatch()
	defer r.answerRequest(ctx)
	if err := r.stage(wctx, event.Verify, r.verify); err != nil {
		err = requestedOr(wctx, err)
		fail(err)
		r.rollback(ctx, err)
		return
	}
	var verdict *monitor.Verdict
	if err := r.stage(wctx, event.Monitor, func(ctx context.Context) (string, error) {
		res, err := r.monitor(ctx)
		if err != nil {
			return "", err
		}
		r.emit(event.Event{Kind: event.MonitorProgress, Stage: event.Monitor, Snapshot: &res.Snapshot, Series: res.Series})
		if res.Unjudged > 0 {
			r.warn("%d of %d probes not counted: the Kubernetes API server in front of the app failed on its own, after retries (last: %s)",
				res.Unjudged, int64(res.Unjudged)+res.Snapshot.Count, res.LastUnjudged)
		}
		for i, f := range res.Findings {
			if i == maxMetricsWarnings {
				r.warn("request sources: %d more findings in the report", len(res.Findings)-i+res.FindingsDropped)
				break
			}
			r.warn("%s", f)
		}
		r.out.Monitor = &res
		r.out.Result.Monitor = &res.Snapshot
		if res.Rollback != nil {
			verdict = res.Rollback
			return "", fmt.Errorf("monitoring: %s", res.Rollback.Message)
		}
		if ctx.Err() != nil {
			return "", requestedOr(ctx, fmt.Errorf("monitoring cancelled: %w", ctx.Err()))
		}
		if res.Ticks == 0 {
			return "monitoring is off for this environment", nil
		}
		s := res.Snapshot
		finding := fmt.Sprintf("%d probes over %s: p95 %s, errors %.1f%%%s, availability %.1f%%", s.Count, res.Duration.Round(time.Second), s.Latency.P95.Round(time.Millisecond), s.ErrorRate*100, failuresFinding(res.Failures, res.FailuresOther), s.Availability*100)
		for _, t := range res.Sources {
			finding += trafficFinding(&t)
		}
		if rules := notJudgedRules(res.NotJudged); rules != "" {
			finding += fmt.Sprintf("; %s not judged (%d of the %d probes min-samples asks for)", rules, s.Count, res.MinSamples)
			r.warn("monitoring ended after %d probes, fewer than the %d min-samples asks for, so %s were never judged: lengthen monitor-duration, shorten monitor-interval or lower min-samples",
				s.Count, res.MinSamples, rules)
		}
		return finding, nil
	}); err != nil {
		fail(err)
		r.rollback(ctx, err, verdict)
		return
	}
	stopWatch()
	if err := r.lastRequest(ctx); err != nil {
		fail(err)
		r.rollback(ctx, err)
		return
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	if err := r.strategy.Finish(fctx, r.target, &r.out.Deployed); err != nil {
		var serving *strategy.ServingError
		if errors.As(err, &serving) {
			// Traffic was moved back while this run monitored: the version
			// it replaced serves, and stays.
			r.warn("%v: traffic was switched back while this run monitored", err)
			r.out.Result.Status = event.StatusRolledBack
			r.out.Result.RolledBack = true
			r.out.Result.ActiveColor = r.out.Deployed.PreviousColor
			r.out.Result.Reason = fmt.Sprintf("rolled back to %s outside this run while it monitored (%s kept serving, nothing scaled down)", orImage(r.out.Deployed.PreviousImage), serving.Deployment)
			return
		}
		r.warn("finish the deploy: %v", err)
	}
	if w := r.out.Deployed.WarmUntil; !w.IsZero() {
		r.warn("%s stays warm without traffic until %s (scale-down-delay): `greenlight rollback --environment=%s` until then is a selector switch; the next deploy, rollback, scale, maintenance or cleanup after it scales it down",
			r.out.Deployed.PreviousDeployment, w.UTC().Format("2006-01-02 15:04:05 UTC"), r.cfg.Environment)
	}
	r.out.Result.Status = event.StatusSucceeded
	r.out.Result.Reason = fmt.Sprintf("%s is serving in %s", r.cfg.Image, r.cfg.Environment)
}

// deploy is the deploy stage of a deploy: the strategy rolls the new
// version out (blue-green: verified before traffic, and with promotion
// manual stopped there).
func (r *run) deploy(ctx context.Context) (string, error) {
	envNote := ""
	if r.appEnv != nil {
		if err := r.storeAppEnv(ctx); err != nil {
			return "", err
		}
		envNote = "; " + r.appEnv.summary()
	}
	deployed, err := r.strategy.Deploy(ctx, r.target)
	r.deployed(deployed)
	if err != nil {
		return "", err
	}
	if deployed.Unchanged {
		r.warn("%s already runs %s: nothing was rolled out", r.cfg.Deployment, r.cfg.Image)
		return "already running " + r.cfg.Image + ": nothing rolled out" + envNote, nil
	}
	if deployed.Awaiting {
		r.awaitPromotion()
		return fmt.Sprintf("%s rolled out to %s and verified without traffic; awaiting promotion%s", r.cfg.Image, deployed.Deployment, envNote), nil
	}
	return fmt.Sprintf("%s rolled out to %s%s", r.cfg.Image, deployed.Deployment, envNote), nil
}

// deployed takes in what the strategy left.
func (r *run) deployed(d strategy.Deployed) {
	r.out.Deployed = d
	r.out.Run.PreviousImage = d.PreviousImage
	r.out.Result.Revision = revisionText(d)
	r.out.Result.ActiveColor = d.Color
	for _, w := range d.Warnings {
		r.warn("%s", w)
	}
	r.emitObjects(event.Deploy)
}

// emitObjects reports each object of the manifests with what the deploy
// changed and how it ended, secrets masked (a failure's detail may quote
// a log).
func (r *run) emitObjects(stage event.Stage) {
	objs := r.out.Deployed.Objects
	if len(objs) == 0 {
		return
	}
	secrets := r.cfg.Secrets()
	out := make([]event.ObjectChange, 0, len(objs))
	for _, o := range objs {
		out = append(out, event.ObjectChange{Object: o.Object, Change: o.Change, Result: o.Result, Detail: redact.Secrets(o.Detail, secrets)})
	}
	r.emit(event.Event{Kind: event.ObjectsChanged, Stage: stage, Objects: out})
}

// maxMetricsWarnings bounds the warnings one run gives about the pods'
// metrics endpoints.
const maxMetricsWarnings = 10

// failuresFinding says why probes failed, the commonest reason first:
// " (2× HTTP 502, 1× context deadline exceeded)", or nothing when none did.
func failuresFinding(kinds []monitor.FailureCount, other int) string {
	if len(kinds) == 0 {
		return ""
	}
	parts := make([]string, 0, len(kinds)+1)
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%d× %s", k.Count, k.Reason))
	}
	if other > 0 {
		parts = append(parts, fmt.Sprintf("%d× other reasons", other))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// notJudgedRules names the probe rules a monitor run never had enough
// samples to judge, for a sentence: "response time and error rate", or ""
// when it judged them all. Pure.
func notJudgedRules(ids []monitor.RuleID) string {
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i] = strings.ReplaceAll(string(id), "-", " ")
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// trafficFinding is a request source's figures for the monitor stage's
// finding, or "" when they were not read. Pure.
func trafficFinding(t *monitor.Traffic) string {
	if t == nil {
		return ""
	}
	name := cmp.Or(string(t.Source), string(monitor.SourcePodMetrics))
	if t.Windows == 0 {
		if t.Unread > 0 {
			return fmt.Sprintf("; %s: not read (%d windows unread)", name, t.Unread)
		}
		return "; " + name + ": no window read after the baseline"
	}
	out := fmt.Sprintf("; %s: %.0f requests, %.1f req/s, 5xx %.1f%%", name, t.Requests, t.Throughput, t.ErrorRate*100)
	if t.HasLatency {
		out += fmt.Sprintf(", p95 %s", t.P95.Round(time.Millisecond))
	}
	if t.TooLittle > 0 {
		out += fmt.Sprintf(", %d of %d windows too little traffic to judge", t.TooLittle, t.Windows)
	}
	if t.Unread > 0 {
		out += fmt.Sprintf(", %d windows unread", t.Unread)
	}
	return out
}

// stage runs one stage between its started and finished events.
func (r *run) stage(ctx context.Context, s event.Stage, f func(ctx context.Context) (string, error)) error {
	res := StageResult{Stage: s, Started: r.deps.Now()}
	r.emit(event.Event{Kind: event.StageStarted, Stage: s})
	finding, err := f(ctx)
	res.Finished = r.deps.Now()
	res.Outcome = event.Succeeded
	res.Finding = finding
	if err != nil {
		res.Outcome = event.Failed
		if ctx.Err() != nil {
			res.Outcome = event.Cancelled
		}
		res.Finding = oneSentence(err)
	}
	r.out.Stages = append(r.out.Stages, res)
	findings := findingsOf(err)
	if res.Outcome == event.Failed {
		findings = append(findings, r.diagnosis(ctx, s, err)...)
	}
	r.emit(event.Event{Kind: event.StageFinished, Stage: s, Outcome: res.Outcome, Message: res.Finding, Findings: r.redacted(findings)})
	return err
}

// rollback returns traffic to the previous version when the policy allows,
// verifies it, and sets the run's status.
func (r *run) rollback(ctx context.Context, cause error, verdict ...*monitor.Verdict) {
	r.out.Result.ManualCommand = r.manualCommand()
	if r.out.Deployed.Unchanged || (r.out.Deployed.Strategy == strategy.NameBlueGreen && !r.out.Deployed.Switched) ||
		(r.out.Deployed.Strategy == strategy.NameRolling && r.out.Deployed.PreviousRevision == 0) {
		return
	}
	if !r.cfg.AutoRollback && ctx.Err() == nil && r.requested == nil {
		r.warn("auto-rollback is off: %s stays deployed although %s", r.cfg.Image, oneSentence(cause))
		return
	}
	ev := event.Event{Kind: event.RollbackStarted, Stage: event.Rollback, Message: oneSentence(cause)}
	if len(verdict) > 0 && verdict[0] != nil {
		ev.Verdict = verdict[0]
		if r.out.Monitor != nil {
			ev.Evidence = r.out.Monitor.Evidence
		}
	}
	r.emit(ev)
	// The rollback must happen even when the run was cancelled.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.RolloutTimeout+2*r.cfg.Timeout+time.Minute)
	defer cancel()
	err := r.stage(rctx, event.Rollback, func(ctx context.Context) (string, error) {
		if err := r.strategy.Rollback(ctx, r.target, &r.out.Deployed); err != nil {
			return "", err
		}
		target, err := r.publicTarget(ctx)
		if err != nil || r.out.Deployed.PreviousImage == "" {
			return "previous version restored", nil
		}
		res := health.Check(ctx, target, r.checkOptions(health.ModeVerifyRollback))
		r.emit(event.Event{Kind: event.HealthChecked, Stage: event.Rollback, Health: &res})
		if !res.Healthy {
			return "", fmt.Errorf("the rolled-back version is not serving: %s", res.Reason)
		}
		// The version rolled back to is the one that served before: the same
		// proof as verify's, with its own tag.
		plan := TellsApart(PlanProof(r.cfg.VersionCheck, "", VersionOf(r.out.Deployed.PreviousImage), r.beforeWithTag()), r.version, "the version rolled back from")
		deployment := r.cfg.Deployment
		if r.out.Deployed.Strategy == strategy.NameBlueGreen && r.out.Deployed.PreviousDeployment != "" {
			deployment = r.out.Deployed.PreviousDeployment
		}
		tr := r.proveTraffic(ctx, target, plan, deployment, health.ModeVerifyRollback, event.Rollback)
		r.out.Result.RollbackProof = plan.Proof
		if !tr.Passed {
			return "", fmt.Errorf("the rolled-back version is not serving: %s", tr.Reason)
		}
		return fmt.Sprintf("%s serving again and healthy (%s proof)", r.out.Deployed.PreviousImage, plan.Proof), nil
	})
	r.emitObjects(event.Rollback)
	r.emit(event.Event{Kind: event.RollbackFinished, Stage: event.Rollback, Outcome: outcomeOf(err), Message: errText(err)})
	r.out.Result.RolledBack = err == nil
	if err != nil {
		r.out.Result.Status = event.StatusRollbackFailed
		r.out.Result.Reason = "the rollback failed: " + oneSentence(err) + "; it was started because " + oneSentence(cause)
		r.out.Err = errors.Join(cause, err)
		return
	}
	r.out.Result.Status = event.StatusRolledBack
	r.out.Result.Reason = fmt.Sprintf("rolled back to %s because %s", r.out.Deployed.PreviousImage, oneSentence(cause))
	r.out.Result.ActiveColor = r.out.Deployed.PreviousColor
	r.out.Result.ManualCommand = r.rollForwardCommand()
}

// rollForwardCommand is what the person on call runs to put the rolled-back
// image back anyway. Blue-green scaled the new color to zero and pointed the
// Service at the previous one, so the new color is scaled back to the
// previous color's size, waited for, and switched to; a rolling update goes
// back to the new version's revision.
func (r *run) rollForwardCommand() string {
	ns, d := r.cfg.Namespace, r.out.Deployed
	if othersUndone(d, r.cfg.Deployment) {
		// Rolling the application's Deployment forward alone would leave
		// the workloads beside it on the old version: deploy the unit.
		return r.redeployCommand()
	}
	if d.Strategy == strategy.NameBlueGreen && d.Color != "" && d.Deployment != "" {
		replicas := fmt.Sprint(r.cfg.Replicas)
		if r.cfg.Replicas == 0 && d.PreviousDeployment != "" {
			replicas = fmt.Sprintf(`"$(kubectl -n %s get deployment/%s -o jsonpath='{.spec.replicas}')"`, ns, d.PreviousDeployment)
		}
		return fmt.Sprintf("kubectl -n %s scale deployment/%s --replicas=%s\n", ns, d.Deployment, replicas) +
			fmt.Sprintf("kubectl -n %s rollout status deployment/%s --timeout=%s\n", ns, d.Deployment, r.cfg.RolloutTimeout) +
			fmt.Sprintf("kubectl -n %s patch service %s -p '{\"spec\":{\"selector\":{\"%s\":\"%s\"}}}'", ns, r.serviceName(), kube.ColorLabel, d.Color)
	}
	if d.Revision > 0 {
		return fmt.Sprintf("kubectl -n %s rollout undo deployment/%s --to-revision=%d", ns, r.cfg.Deployment, d.Revision)
	}
	return r.manualCommand()
}

// othersUndone reports whether the rollback put back a workload beside
// the application's Deployment (its colors' Deployments in blue-green).
func othersUndone(d strategy.Deployed, app string) bool {
	own := map[string]bool{"Deployment/" + app: true}
	for _, name := range []string{d.Deployment, d.PreviousDeployment} {
		if name != "" {
			own["Deployment/"+name] = true
		}
	}
	for _, o := range d.Objects {
		if o.Result == strategy.ResultUndone && !own[o.Object] {
			return true
		}
	}
	return false
}

// redeployCommand deploys this run's image and manifests again from a
// checkout of the same commit, every workload of the unit together.
func (r *run) redeployCommand() string {
	args := []string{"greenlight", "deploy",
		"--environment=" + shellWord(r.cfg.Environment),
		"--namespace=" + shellWord(r.cfg.Namespace),
		"--deployment=" + shellWord(r.cfg.Deployment),
		"--image=" + shellWord(r.cfg.Image),
	}
	if len(r.cfg.Manifests) > 0 {
		args = append(args, "--manifests="+shellWord(strings.Join(r.cfg.Manifests, ",")))
	}
	return strings.Join(args, " ")
}

// shellWord quotes s for a POSIX shell when it holds anything but the
// characters a path, name or image reference is made of.
func shellWord(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@,=+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func (r *run) manualCommand() string {
	ns, d := r.cfg.Namespace, r.out.Deployed
	if d.Strategy == strategy.NameBlueGreen && d.PreviousColor != "" {
		return fmt.Sprintf("kubectl -n %s patch service %s -p '{\"spec\":{\"selector\":{\"%s\":\"%s\"}}}'", ns, r.serviceName(), kube.ColorLabel, d.PreviousColor)
	}
	if d.PreviousRevision > 0 {
		return fmt.Sprintf("kubectl -n %s rollout undo deployment/%s --to-revision=%d", ns, r.cfg.Deployment, d.PreviousRevision)
	}
	return fmt.Sprintf("greenlight rollback --environment=%s", r.cfg.Environment)
}

func (r *run) emit(e event.Event) {
	if e.Time.IsZero() {
		e.Time = r.deps.Now()
	}
	r.deps.Sink.Handle(e)
}

func (r *run) warn(format string, args ...any) {
	r.emit(event.Event{Kind: event.Warning, Message: fmt.Sprintf(format, args...)})
}

// VersionOf is the version an image should report: its tag ("app:v2" →
// "v2"); empty for a digest-only reference.
func VersionOf(image string) string {
	ref, err := kube.ParseImage(image)
	if err != nil {
		return ""
	}
	return ref.Tag
}

// undoneByStrategy tells whether a failed deploy's last step undid it.
func undoneByStrategy(d strategy.Deployed) bool {
	if len(d.Steps) == 0 {
		return false
	}
	last := d.Steps[len(d.Steps)-1]
	return last.Name == "undo" && last.Err == ""
}

// undoFailedInStrategy reports whether the rolling update tried to undo
// itself and could not.
func undoFailedInStrategy(d strategy.Deployed) bool {
	if len(d.Steps) == 0 {
		return false
	}
	last := d.Steps[len(d.Steps)-1]
	return last.Name == "undo" && last.Err != ""
}

func revisionText(d strategy.Deployed) string {
	if d.Strategy == strategy.NameBlueGreen {
		return d.Color
	}
	if d.Revision > 0 {
		return fmt.Sprint(d.Revision)
	}
	return ""
}

func outcomeOf(err error) event.Outcome {
	if err != nil {
		return event.Failed
	}
	return event.Succeeded
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return oneSentence(err)
}

// oneSentence folds an error onto one line.
func oneSentence(err error) string {
	if err == nil {
		return ""
	}
	return strings.Join(strings.Fields(err.Error()), " ")
}

// findingsOf turns typed failures into report evidence.
func findingsOf(err error) []event.Finding {
	var out []event.Finding
	var rf *kube.RolloutFailure
	if errors.As(err, &rf) {
		for _, p := range rf.Pods {
			out = append(out, event.Finding{Kind: "pod", Subject: p.Pod, Reason: p.Reason, Message: p.Summary()})
		}
		for _, e := range rf.Events {
			out = append(out, event.Finding{Kind: "event", Subject: e.Object, Reason: e.Reason, Message: e.Message})
		}
		out = append(out, logFindings(rf.Logs)...)
	}
	var pe *permissionError
	if errors.As(err, &pe) {
		for _, p := range pe.missing {
			out = append(out, event.Finding{Kind: "permission", Subject: p.String(), Message: "missing"})
		}
		out = append(out, event.Finding{Kind: "fix", Message: pe.rule})
	}
	return out
}

// kindsOf lists the kinds of the manifests, for the permission check.
func kindsOf(objs []*unstructured.Unstructured) []schema.GroupVersionKind {
	var out []schema.GroupVersionKind
	for _, o := range objs {
		out = append(out, o.GroupVersionKind())
	}
	return out
}
