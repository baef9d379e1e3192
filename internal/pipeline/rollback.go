package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ebeautything/greenlight/internal/config"
	"github.com/ebeautything/greenlight/internal/event"
	"github.com/ebeautything/greenlight/internal/health"
	"github.com/ebeautything/greenlight/internal/kube"
	"github.com/ebeautything/greenlight/internal/strategy"
)

// DefaultRollbackWait is how long a rollback waits for a running deploy to
// answer its request before it says so.
const DefaultRollbackWait = 30 * time.Second

// RollbackOptions say who asks for a rollback, why, and how hard.
type RollbackOptions struct {
	// Holder identifies this command on the lock; its Actor is who asked.
	Holder kube.Holder
	// Reason is why, for the history, the summary and the notifications.
	Reason string
	// Wait bounds the wait for a running deploy to answer; default
	// DefaultRollbackWait.
	Wait time.Duration
	// Force takes the lock over from a holder that did not answer.
	Force bool
	// ToRevision picks the revision of a rolling Deployment; 0 is the
	// previous one.
	ToRevision int64
	// Poll is how often the Lease is read while waiting; default 250ms.
	Poll time.Duration
}

// RollbackOutcome is how a rollback asked for by a person went.
type RollbackOutcome struct {
	Run    event.Run
	Result event.Result
	// From is the image that served before; To the one serving after.
	From, To string
	// AnsweredBy is the running deploy that rolled back on this request,
	// empty when this command did it.
	AnsweredBy string
	// TookOverFrom is the lock holder that did not answer and lost the
	// lock to --force.
	TookOverFrom *kube.Holder
	// Switch is how long from the command's start until the previous
	// version's endpoints alone were confirmed (blue-green).
	Switch time.Duration
	// Verified says how the previous version was proven to serve.
	Verified string
	// RecordID is the history record written, if any.
	RecordID string
	// Steps are the strategy's steps, when this command did the rollback.
	Steps []strategy.Step
	// Err is the cause of a failure.
	Err error
}

// ExitCode is 0 when the previous version serves, 1 otherwise.
func (o *RollbackOutcome) ExitCode() int {
	if o.Result.Status == event.StatusRolledBack {
		return 0
	}
	return 1
}

// errNoAnswer means the lock's holder did not answer within the wait.
type errNoAnswer struct {
	held *kube.LockHeldError
	wait time.Duration
}

func (e *errNoAnswer) Error() string {
	return fmt.Sprintf("%v and did not answer the rollback request within %s (a dead or hung run?); nothing was changed: rerun with --force to take the lock over and roll back", e.held, e.wait)
}

// Rollback returns an environment to the version that served before, one
// writer at a time: it takes the environment's lock; when a deploy holds
// it, it asks that deploy (on the Lease) to roll back itself and waits up
// to Wait for its answer, taking the lock over only with Force. The
// previous version is proven to serve, the rollback is recorded in the
// history, and events tell the sinks (Slack, webhook, summary).
func Rollback(ctx context.Context, cfg config.Config, deps Deps, opts RollbackOptions) *RollbackOutcome {
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Sink == nil {
		deps.Sink = event.SinkFunc(func(event.Event) {})
	}
	if opts.Wait <= 0 {
		opts.Wait = DefaultRollbackWait
	}
	if opts.Poll <= 0 {
		opts.Poll = 250 * time.Millisecond
	}
	r := &run{cfg: cfg, deps: deps, out: &Outcome{}}
	r.out.Run = r.identity()
	r.out.Run.Actor = opts.Holder.Actor
	r.out.Run.Image = ""
	o := &RollbackOutcome{Run: r.out.Run}
	start := deps.Now()
	m := &manual{r: r, o: o, opts: opts, start: start}
	m.execute(ctx)
	o.Result.FinishedAt = deps.Now()
	o.Run.Image, o.Run.PreviousImage = o.From, o.To
	r.emit(event.Event{Kind: event.RunFinished, Run: &o.Run, Result: &o.Result, Message: o.Result.Reason})
	// A deploy that rolled back on request records the rollback itself.
	if o.AnsweredBy == "" && (o.From != "" || o.Result.Status == event.StatusRollbackFailed) {
		m.record(ctx)
	}
	return o
}

// manual is one rollback asked for by a person.
type manual struct {
	r     *run
	o     *RollbackOutcome
	opts  RollbackOptions
	start time.Time
	lock  *kube.Lock
}

func (m *manual) fail(err error) {
	m.o.Err = err
	m.o.Result.Reason = oneSentence(err)
	if m.o.Result.Status == "" {
		m.o.Result.Status = event.StatusFailed
	}
}

func (m *manual) execute(ctx context.Context) {
	if _, err := m.r.deps.Client.Discovery().ServerVersion(); err != nil {
		m.fail(fmt.Errorf("reach the cluster: %w", kube.ClassifyAPIError(err)))
		return
	}
	lockOpts := kube.LockOptions{Namespace: m.r.cfg.Namespace, Deployment: m.r.cfg.Deployment, Holder: m.opts.Holder, Wait: -1}
	for attempt := 0; m.lock == nil; attempt++ {
		lock, err := kube.AcquireLock(ctx, m.r.deps.Client, lockOpts)
		var held *kube.LockHeldError
		switch {
		case err == nil:
			m.lock = lock
			continue
		case !errors.As(err, &held) || attempt > 3:
			m.fail(fmt.Errorf("take the deploy lock: %w", err))
			return
		}
		answered, err := m.ask(ctx)
		if err != nil {
			m.fail(err)
			return
		}
		if answered {
			return
		}
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = kube.ClearRollbackRequest(rctx, m.r.deps.Client, m.r.cfg.Namespace, m.lock.Name)
		if err := m.lock.Release(rctx); err != nil {
			m.r.warn("release the deploy lock: %v; it expires by itself after its lease", err)
		}
	}()
	m.rollBack(ctx)
}

// ask records a rollback request for the lock's holder and waits for its
// answer. It returns true when the holder handled the request (the outcome
// is filled in), false when the lock is free now or was taken over.
func (m *manual) ask(ctx context.Context) (bool, error) {
	c, ns, name := m.r.deps.Client, m.r.cfg.Namespace, kube.LockName(m.r.cfg.Deployment)
	req := kube.RollbackRequest{ID: "rollback-" + randomHex(), Actor: m.opts.Holder.Actor, Reason: m.opts.Reason, At: m.r.deps.Now()}
	held, err := kube.RequestRollback(ctx, c, ns, name, req)
	if err != nil || held == nil {
		return false, err
	}
	m.r.warn("%v: asked it to roll back; waiting up to %s for its answer", held, m.opts.Wait)
	deadline := time.Now().Add(m.opts.Wait)
	accepted := false
	// Once accepted, the holder's rollback may take as long as a rollout.
	finalDeadline := time.Now().Add(m.opts.Wait + m.r.cfg.RolloutTimeout + m.r.cfg.Timeout + time.Minute)
	for {
		s, err := kube.ReadLease(ctx, c, ns, name)
		if err != nil {
			return false, err
		}
		if a := s.Answer; a != nil && a.ID == req.ID {
			if !accepted {
				accepted = true
				m.r.warn("%s accepted the request: %s", a.By, a.Message)
			}
			if a.Final() {
				m.answered(ctx, *a)
				return true, nil
			}
		}
		if s.Held == nil || s.Held.Holder.ID != held.Holder.ID {
			return false, nil // the holder finished without answering: do it here
		}
		now := time.Now()
		if (!accepted && now.After(deadline)) || now.After(finalDeadline) {
			if !m.opts.Force {
				return false, &errNoAnswer{held: held, wait: m.opts.Wait}
			}
			lock, prev, err := kube.ForceTakeLock(ctx, c, kube.LockOptions{Namespace: ns, Name: name, Holder: m.opts.Holder}, m.opts.Holder.Actor, "rollback --force: "+m.opts.Reason)
			if err != nil {
				return false, err
			}
			m.lock, m.o.TookOverFrom = lock, prev
			if prev != nil {
				m.r.warn("took the deploy lock over from %s (--force)", prev)
			}
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("stopped waiting for %v: %w", held, ctx.Err())
		case <-time.After(m.opts.Poll):
		}
	}
}

// answered fills the outcome from the running deploy's answer and proves
// that the previous version serves.
func (m *manual) answered(ctx context.Context, a kube.RollbackAnswer) {
	m.o.AnsweredBy = a.By
	m.o.To = a.Image
	m.o.Switch = m.r.deps.Now().Sub(m.start)
	switch a.State {
	case kube.AnswerRolledBack:
		m.o.Result.Status = event.StatusRolledBack
		m.o.Result.RolledBack = true
		m.o.Result.Reason = fmt.Sprintf("the running deploy %s rolled back on request: %s", a.By, a.Message)
		m.verify(ctx)
	case kube.AnswerFailed:
		m.o.Result.Status = event.StatusRollbackFailed
		m.fail(fmt.Errorf("the running deploy %s tried to roll back and failed: %s", a.By, a.Message))
	default:
		m.o.Result.Status = event.StatusRolledBack
		m.o.Result.Reason = fmt.Sprintf("the running deploy %s stopped before moving traffic; the previous version kept serving: %s", a.By, a.Message)
		m.verify(ctx)
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	_ = kube.ClearRollbackRequest(cctx, m.r.deps.Client, m.r.cfg.Namespace, kube.LockName(m.r.cfg.Deployment))
}

// rollBack does the rollback while holding the lock.
func (m *manual) rollBack(ctx context.Context) {
	if already, rec := m.alreadyRolledBack(ctx); already {
		m.o.Result.Status = event.StatusRolledBack
		m.o.Result.RolledBack = true
		m.o.To = rec.PreviousImage
		m.o.Result.Reason = fmt.Sprintf("already rolled back by %s (%s); nothing changed", rec.ID, oneSentence(errors.New(rec.Reason)))
		m.o.Result.ActiveColor = rec.ActiveColor
		m.verify(ctx)
		m.o.From = "" // nothing was changed, so nothing is recorded
		return
	}
	ev := event.Event{Kind: event.RollbackStarted, Stage: event.Rollback, Run: &m.o.Run, Message: m.why()}
	var err error
	if m.r.cfg.Strategy == config.BlueGreen {
		err = m.blueGreen(ctx, func() { m.r.emit(ev) })
	} else {
		err = m.rolling(ctx, func() { m.r.emit(ev) })
	}
	if err != nil {
		if m.o.From != "" {
			m.o.Result.Status = event.StatusRollbackFailed
		}
		m.fail(err)
		m.r.emit(event.Event{Kind: event.RollbackFinished, Stage: event.Rollback, Outcome: event.Failed, Message: oneSentence(err)})
		return
	}
	// The color serving again keeps no window; others that closed go.
	m.r.closeWindows(ctx, time.Now(), false)
	m.o.Result.Status = event.StatusRolledBack
	m.o.Result.RolledBack = true
	to := m.o.To
	switch {
	case m.o.Result.ActiveColor != "":
		to = fmt.Sprintf("%s (%s)", m.o.Result.ActiveColor, m.o.To)
	case m.o.Result.Revision != "":
		to = fmt.Sprintf("revision %s (%s)", m.o.Result.Revision, m.o.To)
	}
	m.o.Result.Reason = fmt.Sprintf("rolled back to %s from %s %s", to, m.o.From, m.why())
	m.verify(ctx)
	m.r.emit(event.Event{Kind: event.RollbackFinished, Stage: event.Rollback, Outcome: outcomeOf(m.o.Err), Message: errText(m.o.Err)})
}

// why reads "by octocat: checkout errors".
func (m *manual) why() string {
	s := "by " + orDefault(m.opts.Holder.Actor, "an operator")
	if m.opts.Reason != "" {
		s += ": " + m.opts.Reason
	}
	return s
}

// alreadyRolledBack tells whether the newest record is a rollback that left
// the color serving now, so a repeated command does not flip traffic back
// to the version it rolled away from.
func (m *manual) alreadyRolledBack(ctx context.Context) (bool, kube.Record) {
	if m.r.cfg.Strategy != config.BlueGreen {
		return false, kube.Record{}
	}
	records, err := kube.ReadHistory(ctx, m.r.deps.Client, m.r.cfg.Namespace, m.r.cfg.Deployment)
	if err != nil || len(records) == 0 {
		return false, kube.Record{}
	}
	svc, err := m.r.deps.Client.CoreV1().Services(m.r.cfg.Namespace).Get(ctx, m.r.serviceName(), metav1.GetOptions{})
	if err != nil {
		return false, kube.Record{}
	}
	last := records[0]
	return last.Status == kube.RecordRolledBack && last.ActiveColor != "" && last.ActiveColor == kube.ActiveColor(svc), last
}

func (m *manual) target() strategy.Target {
	return strategy.Target{Namespace: m.r.cfg.Namespace, Deployment: m.r.cfg.Deployment, Service: m.r.serviceName(), Container: m.r.cfg.Container}
}

// blueGreen switches the Service back to the color it selected before,
// scaling that color up first when it was scaled down.
func (m *manual) blueGreen(ctx context.Context, started func()) error {
	cfg, c := m.r.cfg, m.r.deps.Client
	if m.opts.ToRevision > 0 {
		return &config.InputError{Input: "to-revision", Problem: "picks a revision of a rolling Deployment; a blue-green environment switches back to its previous color",
			Accepted: "no --to-revision for blue-green; to return to an older image, deploy it (it goes to the idle color with every check before the switch)"}
	}
	svc, err := c.CoreV1().Services(cfg.Namespace).Get(ctx, m.r.serviceName(), metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get service %s/%s: %w", cfg.Namespace, m.r.serviceName(), kube.ClassifyAPIError(err))
	}
	active := kube.ActiveColor(svc)
	prev, ok := kube.PreviousSelector(svc)
	if active == "" || !ok {
		return fmt.Errorf("service %s/%s has no blue-green switch to undo", cfg.Namespace, svc.Name)
	}
	activeDep := strategy.ColorDeployment(cfg.Deployment, active)
	prevDep := cfg.Deployment
	if pc := prev[kube.ColorLabel]; pc != "" {
		prevDep = strategy.ColorDeployment(cfg.Deployment, pc)
	}
	if prevDep == activeDep {
		return fmt.Errorf("service %s/%s selected %s before its last switch too: nothing to switch back to", cfg.Namespace, svc.Name, activeDep)
	}
	act, err := c.AppsV1().Deployments(cfg.Namespace).Get(ctx, activeDep, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get deployment %s/%s: %w", cfg.Namespace, activeDep, kube.ClassifyAPIError(err))
	}
	old, err := c.AppsV1().Deployments(cfg.Namespace).Get(ctx, prevDep, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get deployment %s/%s: %w", cfg.Namespace, prevDep, kube.ClassifyAPIError(err))
	}
	if _, waiting := old.Annotations[strategy.AnnotationAwaitingPromotion]; waiting {
		// Switching "back" would give traffic to a version nobody promoted.
		return fmt.Errorf("%s holds a version awaiting promotion, not the one that served before %s; %s keeps serving: reject it first (greenlight reject, or command: reject), then roll back", prevDep, activeDep, activeDep)
	}
	m.o.From, _ = kube.CurrentImage(act, cfg.Container, "")
	m.o.To, _ = kube.CurrentImage(old, cfg.Container, "")
	m.o.Run.Image, m.o.Run.PreviousImage = m.o.From, m.o.To
	started()
	want := int32(1)
	if act.Spec.Replicas != nil {
		want = max(*act.Spec.Replicas, 1)
	}
	if old.Spec.Replicas == nil || *old.Spec.Replicas < want || old.Status.ReadyReplicas < want {
		// The rollback window has closed: warm the old color up first.
		if old.Spec.Replicas == nil || *old.Spec.Replicas < want {
			if err := kube.ScaleDeployment(ctx, c, cfg.Namespace, prevDep, want); err != nil {
				return err
			}
		}
		if _, err := kube.WaitRollout(ctx, c, cfg.Namespace, prevDep, kube.WaitOptions{Timeout: cfg.RolloutTimeout}); err != nil {
			return fmt.Errorf("%s did not become ready, so traffic stays on %s: %w", prevDep, activeDep, err)
		}
	}
	d := &strategy.Deployed{Strategy: strategy.NameBlueGreen, Deployment: activeDep, Color: active,
		PreviousColor: prev[kube.ColorLabel], PreviousDeployment: prevDep, PreviousSelector: prev, Switched: true}
	bg := &strategy.BlueGreen{Client: c, OnStep: m.onStep}
	err = bg.Rollback(ctx, m.target(), d)
	m.o.Steps = d.Steps
	if err == nil {
		if werr := strategy.DropWindow(ctx, c, cfg.Namespace, prevDep); werr != nil {
			m.r.warn("%v", werr)
		}
	}
	if !d.Switched || err == nil {
		m.o.Switch = m.r.deps.Now().Sub(m.start)
		m.o.Result.ActiveColor = d.PreviousColor
	}
	return err
}

// rolling undoes the rolling Deployment to the previous (or the given)
// revision and waits until it is ready.
func (m *manual) rolling(ctx context.Context, started func()) error {
	cfg, c := m.r.cfg, m.r.deps.Client
	if d, err := c.AppsV1().Deployments(cfg.Namespace).Get(ctx, cfg.Deployment, metav1.GetOptions{}); err == nil {
		m.o.From, _ = kube.CurrentImage(d, cfg.Container, "")
		m.o.Run.Image = m.o.From
	}
	started()
	res, err := kube.Undo(ctx, c, cfg.Namespace, cfg.Deployment, m.opts.ToRevision)
	if err != nil {
		return err
	}
	m.o.To = strings.Join(res.To.Images, ", ")
	m.o.Run.PreviousImage = m.o.To
	m.o.Result.Revision = fmt.Sprint(res.To.Number)
	if res.Skipped {
		m.r.warn("deployment %s already runs revision %d", cfg.Deployment, res.To.Number)
		m.o.From = ""
		return nil
	}
	if _, err := kube.WaitRollout(ctx, c, cfg.Namespace, cfg.Deployment, kube.WaitOptions{Timeout: cfg.RolloutTimeout}); err != nil {
		return fmt.Errorf("the rollback to revision %d did not become ready: %w", res.To.Number, err)
	}
	m.o.Switch = m.r.deps.Now().Sub(m.start)
	return nil
}

func (m *manual) onStep(s strategy.Step) {
	msg := s.Name
	if s.Detail != "" {
		msg += ": " + s.Detail
	}
	if s.Err != "" {
		msg += ": " + s.Err
	}
	m.r.emit(event.Event{Kind: event.StepFinished, Stage: event.Rollback, Message: msg})
}

// verify proves the restored version serves and is healthy. As verify's
// auto mode does, its answers prove it only when it reports its own tag;
// an app that reports no version (podinfo, most apps) is proven by the
// cluster: the Service's endpoints are the restored pods, answering.
func (m *manual) verify(ctx context.Context) {
	target, err := m.r.publicTarget(ctx)
	if err != nil {
		m.o.Verified = "not verified: " + oneSentence(err)
		return
	}
	version := ""
	if len(m.o.To) > 0 && !strings.Contains(m.o.To, ",") {
		version = VersionOf(m.o.To)
	}
	opts := m.r.checkOptions(health.ModeVerifyRollback)
	hctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	res := health.Check(hctx, target, opts)
	if !res.Healthy {
		m.notServing(res.Reason)
		return
	}
	// The restored version is the one serving now: what it reported, and
	// where, is what the proof asks again. A version it shares with the
	// version rolled back from cannot show which of the two answered.
	restored := Before{Served: true, Tag: version}
	restored.Reported, restored.Path = VersionAnswer(res, m.r.paths())
	m.r.before.Path = restored.Path
	from := ""
	if !strings.Contains(m.o.From, ",") {
		from = VersionOf(m.o.From)
	}
	plan := TellsApart(PlanProof(m.r.cfg.VersionCheck, "", version, restored), from, "the version rolled back from")
	deployment := m.r.cfg.Deployment
	if m.o.Result.ActiveColor != "" {
		deployment = strategy.ColorDeployment(m.r.cfg.Deployment, m.o.Result.ActiveColor)
	}
	tr := m.r.proveTraffic(ctx, target, plan, deployment, health.ModeVerifyRollback, event.Rollback)
	if !tr.Passed {
		m.notServing(tr.Reason)
		return
	}
	m.o.Verified = firstOf(tr.Reason, "healthy")
	if plan.Proof == health.ProofVersion {
		m.o.Verified = version + " answers and is healthy"
	}
}

func (m *manual) notServing(reason string) {
	m.o.Result.Status = event.StatusRollbackFailed
	m.o.Result.RolledBack = false
	m.fail(fmt.Errorf("the previous version is not serving: %s", reason))
}

// record writes the rollback into the environment's history.
func (m *manual) record(ctx context.Context) {
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	status := kube.RecordStatus(m.o.Result.Status)
	if m.o.Result.Status == event.StatusFailed {
		status = kube.RecordFailed
	}
	rec := kube.Record{
		ID: "rollback-" + randomHex()[:7], Environment: m.r.cfg.Environment, Image: m.o.From, PreviousImage: m.o.To,
		Strategy: string(m.r.cfg.Strategy), Status: status, Reason: "manual rollback " + m.why() + ": " + m.o.Result.Reason,
		ActiveColor: m.o.Result.ActiveColor, Actor: m.opts.Holder.Actor, RunURL: m.r.deps.Run.RunURL,
		StartedAt: m.start, FinishedAt: m.o.Result.FinishedAt,
	}
	if err := kube.AppendHistory(hctx, m.r.deps.Client, m.r.cfg.Namespace, m.r.cfg.Deployment, rec); err != nil {
		m.r.warn("record the rollback in the cluster's history: %v", err)
		return
	}
	m.o.RecordID = rec.ID
}

func randomHex() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
