package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/ebeautything/greenlight/internal/config"
	"github.com/ebeautything/greenlight/internal/credential"
	"github.com/ebeautything/greenlight/internal/event"
	"github.com/ebeautything/greenlight/internal/health"
	"github.com/ebeautything/greenlight/internal/kube"
	"github.com/ebeautything/greenlight/internal/monitor"
	"github.com/ebeautything/greenlight/internal/ops"
	"github.com/ebeautything/greenlight/internal/pipeline"
	"github.com/ebeautything/greenlight/internal/report"
)

// app runs one command with a loaded configuration.
type app struct {
	cfg      config.Config
	getenv   func(string) string
	stdout   io.Writer
	stderr   io.Writer
	extras   map[string]string
	terminal bool
	// identity of the run, from the GitHub context when there is one.
	run event.Run
	// sinks beyond the terminal and the report (GitHub, Slack, webhook).
	sinks []event.Sink
	// recorder builds the report of a deploy.
	recorder *report.Recorder
	// outcome of a deploy, for the action's outputs.
	outcome *pipeline.Outcome
	// reportPath is where the JSON report was written.
	reportPath string
	// rolledBack is the outcome of a rollback command, for the outputs.
	rolledBack *pipeline.RollbackOutcome

	client kubernetes.Interface
	rest   *rest.Config
	// tokenAuth names the token-based credential in use ("GitHub OIDC",
	// an exec plugin); empty for the kubeconfig's own user.
	tokenAuth string
	// idToken gives the GitHub OIDC token in use, for the claims of a
	// refused token; through the refresher, so a new one is masked too.
	idToken *credential.Refresher
	// mask has the runner hide secrets from the log; nil outside the action.
	mask func(values ...string)
}

// connect builds the clients from the kubeconfig or the OIDC inputs; a
// configuration that cannot be used is bad input.
func (a *app) connect(ctx context.Context) error {
	cfg, err := a.restConfig(ctx)
	if err != nil {
		return err
	}
	a.rest = cfg
	a.rest.UserAgent = "greenlight"
	a.client, err = kubernetes.NewForConfig(a.rest)
	if err != nil {
		return fmt.Errorf("create Kubernetes client: %w", err)
	}
	return nil
}

func (a *app) execute(ctx context.Context) int {
	if err := a.connect(ctx); err != nil {
		printInputErrors(a.stderr, err)
		return exitBadInput
	}
	if err := a.checkIdentity(ctx); err != nil {
		fmt.Fprintf(a.stderr, "greenlight: %v\n", err)
		return exitFailed
	}
	switch a.cfg.Command {
	case config.CommandDeploy:
		return a.deploy(ctx, pipeline.Run)
	case config.CommandPromote:
		return a.deploy(ctx, pipeline.Promote)
	case config.CommandReject:
		return a.deploy(ctx, pipeline.Reject)
	case config.CommandHealthCheck:
		return a.healthCheck(ctx)
	case config.CommandMonitor:
		return a.monitor(ctx)
	case config.CommandRollback:
		return a.rollback(ctx)
	case config.CommandReport:
		return a.report(ctx)
	case config.CommandStatus:
		return a.status(ctx)
	case config.CommandHistory:
		return a.history(ctx)
	case config.CommandScale:
		return a.scale(ctx)
	case config.CommandMaintenance:
		return a.maintenance(ctx)
	case config.CommandUnlock:
		return a.unlock(ctx)
	case config.CommandCleanup:
		return a.cleanup(ctx)
	default:
		fmt.Fprintf(a.stderr, "greenlight: command %q is not available in this version; accepted: %s\n", a.cfg.Command, commandNames())
		return exitBadInput
	}
}

// deploy runs one of the staged operations (deploy, promote, reject)
// with the lock, the history and the sinks.
func (a *app) deploy(ctx context.Context, operation func(context.Context, config.Config, pipeline.Deps) *pipeline.Outcome) int {
	applier, err := kube.NewApplier(a.rest)
	if err != nil {
		fmt.Fprintf(a.stderr, "greenlight: %v\n", err)
		return exitFailed
	}
	a.recorder = report.NewRecorder(report.WithRules(rulesOf(a.cfg)))
	term := newTerminalSink(a.stdout, a.terminal, a.run.RunURL != "")
	sinks := append([]event.Sink{a.recorder, term}, a.sinks...)
	if a.cfg.EventLog != "" {
		closeLog, err := a.openEventLog(&sinks)
		if err != nil {
			fmt.Fprintf(a.stderr, "greenlight: %v\n", err)
			return exitFailed
		}
		defer closeLog()
	}
	runID := randomID()
	var held *kube.Lock
	deps := pipeline.Deps{
		Client: a.client, REST: a.rest, Applier: applier, Files: kube.OSFiles{}, ReadFile: os.ReadFile,
		Sink: fanOut(sinks), Run: a.run,
		Lock: func(ctx context.Context, warn func(string)) (func(), error) {
			lock, err := kube.AcquireLock(ctx, a.client, kube.LockOptions{
				Namespace: a.cfg.Namespace, Deployment: a.cfg.Deployment, Wait: lockWait(a.cfg.LockTimeout),
				Holder: kube.Holder{ID: runID, Repository: a.run.Repository, RunURL: a.run.RunURL, Actor: a.actor(), Environment: a.cfg.Environment},
				Waiting: func(held *kube.LockHeldError) {
					warn(fmt.Sprintf("waiting up to %s (lock-timeout): %v", a.cfg.LockTimeout, held))
				},
			})
			if err != nil {
				return nil, err
			}
			held = lock
			if prev := lock.TookOverFrom; prev != nil {
				warn(fmt.Sprintf("took over the deploy lock of %s, which stopped renewing it; the cluster may hold its half-finished work, which this run repairs", prev))
			}
			return func() {
				// A short API outage must not leave the lock held for its
				// whole lease: try for longer, and say so when it fails.
				rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if t := lock.TakenOverBy(rctx); t != nil {
					warn(fmt.Sprintf("the deploy lock was taken over by %s (%s) at %s: %s", t.By, t.Actor, t.At.UTC().Format("15:04:05 UTC"), t.Reason))
				}
				if err := lock.Release(rctx); err != nil {
					warn(fmt.Sprintf("release the deploy lock: %v; it expires by itself after its lease", err))
				}
			}, nil
		},
		RollbackRequested: func(ctx context.Context) (*kube.RollbackRequest, error) {
			if held == nil {
				return nil, nil
			}
			return held.RollbackRequested(ctx)
		},
		AnswerRollback: func(ctx context.Context, ans kube.RollbackAnswer) error {
			if held == nil {
				return nil
			}
			return held.Answer(ctx, ans)
		},
		History: func(ctx context.Context, o *pipeline.Outcome) error {
			doc, _ := json.Marshal(a.recorder.Document())
			return kube.AppendHistory(ctx, a.client, a.cfg.Namespace, a.cfg.Deployment, kube.Record{
				ID: a.cfg.DeploymentID, Environment: a.cfg.Environment, Image: o.Run.Image, PreviousImage: o.Run.PreviousImage,
				Strategy: string(a.cfg.Strategy), Status: kube.RecordStatus(o.Result.Status), Reason: o.Result.Reason,
				Revision: o.Deployed.Revision, EnvSecret: o.EnvSecret, ActiveColor: o.Result.ActiveColor, Actor: a.actor(), RunURL: a.run.RunURL,
				StartedAt: o.Run.StartedAt, FinishedAt: o.Result.FinishedAt, Report: doc,
			})
		},
	}
	a.outcome = operation(ctx, a.cfg, deps)
	term.flush()
	a.writeReport()
	if a.outcome.Err != nil {
		if errs := config.InputErrors(a.outcome.Err); len(errs) > 0 {
			return exitBadInput
		}
	}
	return a.outcome.ExitCode()
}

// workspacePath is name inside the workspace, the only directory a
// container action shares with the runner (the working directory on the
// command line).
func (a *app) workspacePath(name string) string {
	dir := a.getenv("GITHUB_WORKSPACE")
	if dir == "" {
		dir = "."
	}
	return filepath.Join(dir, name)
}

// openEventLog starts the event-log input's file and adds its sink; the
// closer reports what could not be written.
func (a *app) openEventLog(sinks *[]event.Sink) (func(), error) {
	path := a.workspacePath(a.cfg.EventLog)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("input \"event-log\": create the directory of %s: %w", a.cfg.EventLog, err)
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("input \"event-log\": create %s: %w", a.cfg.EventLog, err)
	}
	w := bufio.NewWriter(f)
	log := report.NewEventLog(w)
	*sinks = append(*sinks, log)
	return func() {
		err := log.Err()
		if ferr := w.Flush(); err == nil && ferr != nil {
			err = ferr
		}
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			fmt.Fprintf(a.stderr, "greenlight: the event log %s is incomplete: %v\n", a.cfg.EventLog, err)
		}
	}, nil
}

// writeReport writes the JSON report into the workspace (in a container
// action the only directory the runner shares) and remembers its path,
// relative to the workspace, for the report-path output.
func (a *app) writeReport() {
	name := fmt.Sprintf("greenlight-report-%s-%s.json", a.cfg.Environment, shortID(a.cfg.DeploymentID))
	var buf bytes.Buffer
	if err := report.WriteJSON(&buf, a.recorder.Document()); err == nil {
		if err := os.WriteFile(a.workspacePath(name), buf.Bytes(), 0o644); err == nil {
			a.reportPath = name
			return
		}
	}
	fmt.Fprintf(a.stderr, "greenlight: could not write the JSON report %s in %s\n", name, filepath.Dir(a.workspacePath(name)))
}

func (a *app) target(ctx context.Context) (health.Target, error) {
	if a.cfg.URL != "" {
		return health.NewURLTarget(a.cfg.URL, health.TLSOptions{})
	}
	svc := a.cfg.Service
	if svc == "" {
		svc = a.cfg.Deployment
	}
	port := strconv.Itoa(a.cfg.ServicePort)
	if a.cfg.ServicePort == 0 {
		var err error
		if port, err = kube.ServicePort(ctx, a.client, a.cfg.Namespace, svc); err != nil {
			return health.Target{}, err
		}
	}
	return health.NewServiceProxyTarget(a.rest, a.cfg.Namespace, svc, port)
}

func (a *app) checkOptions(mode health.Mode) health.CheckOptions {
	p := health.DefaultPaths()
	if hp := a.cfg.HealthPaths; len(hp) > 0 {
		p.Basic = hp[0]
		if len(hp) > 1 {
			p.Ready = hp[1]
		}
		if len(hp) > 2 {
			p.Detailed = hp[2]
		}
	}
	return health.CheckOptions{Mode: mode, Paths: p, Token: a.cfg.HealthCheckToken.Reveal(), Timeout: a.cfg.Timeout}
}

// healthCheck is the guide's health-check script: the modes are flags.
func (a *app) healthCheck(ctx context.Context) int {
	target, err := a.target(ctx)
	if err != nil {
		fmt.Fprintf(a.stderr, "greenlight health-check: %v\n", err)
		return exitBadInput
	}
	switch {
	case a.extras["verify-traffic"] == "true":
		want := pipeline.VersionOf(a.cfg.Image)
		if want == "" {
			fmt.Fprintln(a.stderr, "greenlight health-check: input \"image\": --verify-traffic needs the deployed image (with a tag) to know which version must answer")
			return exitBadInput
		}
		res := health.VerifyTraffic(ctx, target, want, 10, a.checkOptions(health.ModeVerifyTraffic))
		fmt.Fprintf(a.stdout, "traffic %s: %s\n", passFail(res.Passed), firstNonEmpty(res.Reason, res.Summary))
		return exitFor(res.Passed)
	case a.extras["verify-rollback"] == "true":
		prev, err := a.previousImage(ctx)
		if err != nil {
			fmt.Fprintf(a.stderr, "greenlight health-check: %v\n", err)
			return exitFailed
		}
		res := health.VerifyRollback(ctx, target, pipeline.VersionOf(prev), 10, a.checkOptions(health.ModeVerifyRollback))
		fmt.Fprintf(a.stdout, "rollback to %s %s: %s\n", prev, passFail(res.Passed), res.Reason)
		return exitFor(res.Passed)
	}
	mode := health.ModePostDeployment
	if a.extras["pre-deployment"] == "true" {
		mode = health.ModePreDeployment
	}
	res := health.Check(ctx, target, a.checkOptions(mode))
	for _, ep := range res.Endpoints {
		fmt.Fprintf(a.stdout, "%-18s %3d  %8s  %-10s %s\n", ep.Path, ep.StatusCode, ep.Timing.Total.Round(time.Millisecond), ep.Version, ep.Failure)
	}
	fmt.Fprintf(a.stdout, "%s (%s, %d attempts): %s\n", passFail(res.Healthy), mode, res.Attempts, firstNonEmpty(res.Reason, "all endpoints healthy"))
	return exitFor(res.Healthy)
}

// previousImage reads the image the last recorded deploy replaced.
func (a *app) previousImage(ctx context.Context) (string, error) {
	records, err := kube.ReadHistory(ctx, a.client, a.cfg.Namespace, a.cfg.Deployment)
	if err != nil {
		return "", err
	}
	for _, r := range records {
		if r.Status == kube.RecordRolledBack && r.PreviousImage != "" {
			return r.PreviousImage, nil
		}
	}
	return "", fmt.Errorf("no rolled-back deploy of %s/%s in the history to verify", a.cfg.Namespace, a.cfg.Deployment)
}

func (a *app) monitor(ctx context.Context) int {
	target, err := a.target(ctx)
	if err != nil {
		fmt.Fprintf(a.stderr, "greenlight monitor: %v\n", err)
		return exitBadInput
	}
	duration := a.cfg.MonitorDuration
	if a.extras["extended"] == "true" {
		duration *= 2
	}
	opts := monitor.Options{Endpoints: []string{a.checkOptions("").Paths.Basic}, Interval: a.cfg.MonitorInterval, Duration: duration, Rules: rulesOf(a.cfg)}
	probe := func(ctx context.Context, endpoint string) monitor.Sample {
		return pipeline.SampleOf(health.Probe(ctx, target, endpoint, min(a.cfg.Timeout, max(a.cfg.MonitorInterval, time.Second))))
	}
	fmt.Fprintf(a.stdout, "monitoring %s for %s every %s\n", target.Name(), duration, a.cfg.MonitorInterval)
	res := monitor.Run(ctx, opts, probe, func(e monitor.Event) {
		switch e.Kind {
		case monitor.EventAlertRaised:
			fmt.Fprintf(a.stdout, "ALERT    %s\n", e.Alert.Verdict.Message)
		case monitor.EventAlertResolved:
			fmt.Fprintf(a.stdout, "RESOLVED %s\n", e.Alert.Rule)
		case monitor.EventProgress:
			s := e.Snapshot
			line := fmt.Sprintf("probes %d  p95 %s  errors %.1f%%  availability %.1f%%", s.Count, s.Latency.P95.Round(time.Millisecond), s.ErrorRate*100, s.Availability*100)
			if a.terminal {
				fmt.Fprintf(a.stdout, "\r%-80s", line)
			}
		}
	})
	s := res.Snapshot
	fmt.Fprintf(a.stdout, "\n%d probes: p50 %s p95 %s p99 %s max %s, errors %.2f%%, availability %.2f%%\n", s.Count,
		s.Latency.P50.Round(time.Millisecond), s.Latency.P95.Round(time.Millisecond), s.Latency.P99.Round(time.Millisecond), s.Latency.Max.Round(time.Millisecond), s.ErrorRate*100, s.Availability*100)
	if res.Unjudged > 0 {
		fmt.Fprintf(a.stdout, "%d more probes not counted: the Kubernetes API server failed on its own (last: %s)\n", res.Unjudged, res.LastUnjudged)
	}
	if res.Rollback != nil {
		fmt.Fprintf(a.stdout, "ROLLBACK recommended: %s\n", res.Rollback.Message)
		return exitFailed
	}
	return exitOK
}

// rollback returns the environment to the previous version by hand, one
// writer at a time (see pipeline.Rollback).
func (a *app) rollback(ctx context.Context) int {
	var toRevision int64
	if v := a.extras["to-revision"]; v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			fmt.Fprintf(a.stderr, "greenlight rollback: --to-revision %q: want a revision number from `kubectl rollout history`, 1 or more\n", v)
			return exitBadInput
		}
		toRevision = n
	}
	wait := pipeline.DefaultRollbackWait
	if v := a.extras["wait"]; v != "" {
		d, err := time.ParseDuration(v)
		if n, nerr := strconv.Atoi(v); nerr == nil {
			d, err = time.Duration(n)*time.Second, nil
		}
		if err != nil || d <= 0 {
			return a.badInput(&config.InputError{Input: "wait", Problem: fmt.Sprintf("%q is not a duration above zero", v), Accepted: "a duration such as 30s or 2m, or seconds"})
		}
		wait = d
	}
	term := newTerminalSink(a.stdout, a.terminal, a.run.RunURL != "")
	sinks := append([]event.Sink{term}, a.sinks...)
	o := pipeline.Rollback(ctx, a.cfg, pipeline.Deps{Client: a.client, REST: a.rest, Sink: fanOut(sinks), Run: a.run}, pipeline.RollbackOptions{
		Holder: a.holder("rollback"), Reason: a.cfg.Reason, Wait: wait, Force: a.extras["force"] == "true", ToRevision: toRevision,
	})
	term.flush()
	a.rolledBack = o
	sum := ops.RollbackSummary{Environment: a.cfg.Environment, Status: string(o.Result.Status), Result: o.Result.Reason, From: o.From, To: o.To,
		Actor: o.Run.Actor, Reason: a.cfg.Reason, AnsweredBy: o.AnsweredBy, Switch: o.Switch, Verified: o.Verified, RecordID: o.RecordID}
	if o.TookOverFrom != nil {
		sum.TookOverFrom = o.TookOverFrom.String()
	}
	for _, st := range o.Steps {
		sum.Steps = append(sum.Steps, strings.TrimSpace(st.Name+" "+st.Detail+" "+st.Err))
	}
	if o.RecordID != "" {
		fmt.Fprintf(a.stdout, "recorded as %s in %s/%s\n", o.RecordID, a.cfg.Namespace, kube.HistoryName(a.cfg.Deployment))
	}
	if o.Verified != "" {
		fmt.Fprintf(a.stdout, "verified: %s\n", o.Verified)
	}
	a.summary(ops.RollbackMarkdown(sum))
	if o.Err != nil && len(config.InputErrors(o.Err)) > 0 {
		return a.badInput(o.Err)
	}
	return o.ExitCode()
}

// holder identifies this command on the deploy lock.
func (a *app) holder(command string) kube.Holder {
	return kube.Holder{ID: command + "-" + randomID(), Repository: a.run.Repository, RunURL: a.run.RunURL, Actor: a.actor(), Environment: a.cfg.Environment}
}

// report rebuilds a past deploy's report from the cluster's history.
func (a *app) report(ctx context.Context) int {
	records, err := kube.ReadHistory(ctx, a.client, a.cfg.Namespace, a.cfg.Deployment)
	if err != nil {
		fmt.Fprintf(a.stderr, "greenlight report: %v\n", err)
		return exitFailed
	}
	id := a.cfg.DeploymentID
	rec, ok := kube.FindRecord(records, id)
	if !ok {
		fmt.Fprintf(a.stderr, "greenlight report: input \"deployment-id\": no deploy %q of %s/%s in the cluster's history (%d records)\n", id, a.cfg.Namespace, a.cfg.Deployment, len(records))
		return exitBadInput
	}
	format := a.extras["format"]
	if format == "" {
		format = "text"
	}
	var doc report.Document
	if len(rec.Report) > 0 {
		if doc, err = report.ReadJSON(bytes.NewReader(rec.Report)); err != nil {
			fmt.Fprintf(a.stderr, "greenlight report: the recorded report of %s is unreadable: %v\n", id, err)
			return exitFailed
		}
	}
	switch format {
	case "json":
		if len(rec.Report) == 0 {
			_ = json.NewEncoder(a.stdout).Encode(rec)
			return exitOK
		}
		_ = report.WriteJSON(a.stdout, doc)
	case "markdown":
		fmt.Fprint(a.stdout, report.Markdown(doc))
	case "text":
		if len(rec.Report) == 0 {
			fmt.Fprintf(a.stdout, "%s %s %s → %s (%s)\n", rec.ID, rec.Status, rec.PreviousImage, rec.Image, rec.Reason)
			return exitOK
		}
		fmt.Fprint(a.stdout, report.Text(doc))
	default:
		fmt.Fprintf(a.stderr, "greenlight report: --format %q; accepted: markdown, json, text\n", format)
		return exitBadInput
	}
	return exitOK
}

func rulesOf(cfg config.Config) monitor.Rules {
	return monitor.Rules{
		Window: monitor.DefaultWindow, MinSamples: cfg.MinSamples,
		AlertResponseTime: cfg.AlertResponseTime, AlertErrorRate: cfg.AlertErrorRate,
		AlertAvailability: cfg.AlertAvailability, AlertConsecutiveFailures: cfg.AlertConsecutiveFailures,
		RollbackErrorRate: cfg.RollbackErrorRate, RollbackConsecutiveFailures: cfg.RollbackConsecutiveFailures,
		MinRequests: cfg.MinRequests,
	}
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

func exitFor(ok bool) int {
	if ok {
		return exitOK
	}
	return exitFailed
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func randomID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	if id == "" {
		return "local"
	}
	return id
}

// lockWait turns the lock-timeout input into the lock's wait: 0 means fail
// at once, which the lock spells as a negative wait (its zero is a default).
func lockWait(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}
