package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ebeautything/greenlight/internal/config"
	"github.com/ebeautything/greenlight/internal/github"
	"github.com/ebeautything/greenlight/internal/health"
	"github.com/ebeautything/greenlight/internal/kube"
	"github.com/ebeautything/greenlight/internal/ops"
	"github.com/ebeautything/greenlight/internal/strategy"
)

// Extras of the operator commands, beyond the inputs. None of them is an
// action input, so from a workflow step they take their defaults.
const (
	// extraState holds maintenance's positional argument: on, off or status.
	extraState = "state"
	// extraScaleToZero marks a confirmed `scale --replicas=0 --force`: the
	// replicas input takes only 1 or more, so 0 travels beside it.
	extraScaleToZero = "scale-to-zero"
)

// opsValueFlags are the operator commands' extra flags that take a value;
// the others are switches.
var opsValueFlags = map[string]bool{"output": true, "limit": true, "configmap": true, "key": true, "wait": true, "actor": true}

// defaultHistoryLimit is how many records history shows without --limit.
const defaultHistoryLimit = 20

// statusProbeBound keeps status quick when the environment does not answer.
const statusProbeBound = 10 * time.Second

// maintenanceState reads maintenance's positional argument into extras.
func maintenanceState(positional []string, extras map[string]string) error {
	const accepted = "on, off or status, as in: greenlight maintenance on --environment=production"
	switch {
	case len(positional) == 0:
		return &config.InputError{Input: "maintenance state", Problem: "is missing", Accepted: accepted}
	case len(positional) > 1:
		return &config.InputError{Input: "maintenance state", Problem: fmt.Sprintf("unexpected argument %q after %q; every other value is a --flag", positional[1], positional[0]), Accepted: accepted}
	}
	switch s := strings.ToLower(positional[0]); s {
	case "on", "off", "status":
		extras[extraState] = s
		return nil
	}
	return &config.InputError{Input: "maintenance state", Problem: fmt.Sprintf("%q is not a state", positional[0]), Accepted: accepted}
}

// prepareOps adjusts a command's flags before config.Load: scale to zero
// replicas needs --force, and the replicas input cannot hold 0 itself.
func prepareOps(command string, values, extras map[string]string) error {
	if command != string(config.CommandScale) {
		return nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(values["replicas"]))
	if err != nil || n != 0 {
		return nil // config.Load judges every other value
	}
	if extras["force"] != "true" {
		return &config.InputError{Input: "replicas", Problem: "0 stops every pod of the environment, so it needs --force",
			Accepted: "a whole number of 1 or more, or 0 with --force"}
	}
	values["replicas"] = "1" // a placeholder that passes validation; the zero is in extras
	extras[extraScaleToZero] = "true"
	return nil
}

// opsTarget is the workload of the operator commands.
func (a *app) opsTarget() (ops.Target, error) {
	if a.cfg.Deployment == "" {
		return ops.Target{}, &config.InputError{Input: "deployment", Problem: fmt.Sprintf("is not set; the %s command needs the Deployment's name", a.cfg.Command),
			Accepted: "a Deployment name: lowercase letters, digits, '-' and '.', at most 253 characters"}
	}
	return ops.Target{Namespace: a.cfg.Namespace, Deployment: a.cfg.Deployment, Service: a.cfg.Service, Container: a.cfg.Container}, nil
}

// actor is who runs the command: the workflow's actor, else the local user.
func (a *app) actor() string {
	for _, v := range []string{a.run.Actor, a.getenv("USER"), a.getenv("LOGNAME")} {
		if v != "" {
			return v
		}
	}
	return "unknown"
}

// colors tells whether tables may be colored: on a terminal, unless
// NO_COLOR is set (https://no-color.org).
func (a *app) colors() bool { return a.terminal && a.getenv("NO_COLOR") == "" }

// healthProbe asks the environment's basic health endpoint once.
func (a *app) healthProbe(bound time.Duration) func(ctx context.Context) *ops.HealthAnswer {
	path := a.checkOptions("").Paths.Basic
	return func(ctx context.Context) *ops.HealthAnswer {
		target, err := a.target(ctx)
		if err != nil {
			return &ops.HealthAnswer{Path: path, Err: err.Error()}
		}
		return ops.AnswerOf(target.Name(), health.Probe(ctx, target, path, bound))
	}
}

// summary appends markdown to the job summary when running in a workflow.
func (a *app) summary(markdown string) {
	if a.getenv("GITHUB_STEP_SUMMARY") == "" {
		return
	}
	if err := github.NewAction(a.getenv, a.stdout).AppendSummary(markdown); err != nil {
		fmt.Fprintf(a.stderr, "greenlight: write the job summary: %v\n", err)
	}
}

// progress returns a printer of rollout progress while a command waits;
// it prints each message once.
func (a *app) progress() func(kube.RolloutState) {
	last := ""
	return func(s kube.RolloutState) {
		if s.Done || s.Message == last {
			return
		}
		last = s.Message
		fmt.Fprintf(a.stdout, "  … %s\n", s.Message)
	}
}

// outputFormat checks --output.
func outputFormat(v string) (string, error) {
	switch v {
	case "", "table":
		return "table", nil
	case "json":
		return "json", nil
	}
	return "", &config.InputError{Input: "output", Problem: fmt.Sprintf("%q is not an output format", v), Accepted: "table or json"}
}

// badInput prints input errors and returns the bad-input exit code.
func (a *app) badInput(err error) int {
	printInputErrors(a.stderr, err)
	return exitBadInput
}

// failed prints err for command and returns the failure exit code.
func (a *app) failed(command string, err error) int {
	if len(config.InputErrors(err)) > 0 {
		return a.badInput(err)
	}
	fmt.Fprintf(a.stderr, "greenlight %s: %v\n", command, err)
	return exitFailed
}

// status shows what serves the environment now. It takes no lock: it
// changes nothing, and it must work while a deploy holds the lock.
func (a *app) status(ctx context.Context) int {
	format, err := outputFormat(a.extras["output"])
	if err != nil {
		return a.badInput(err)
	}
	target, err := a.opsTarget()
	if err != nil {
		return a.badInput(err)
	}
	s, err := ops.GatherStatus(ctx, a.client, ops.StatusOptions{
		Target: target, Environment: a.cfg.Environment, Strategy: string(a.cfg.Strategy),
		Probe: a.healthProbe(min(a.cfg.Timeout, statusProbeBound)),
	})
	if err != nil {
		return a.failed("status", err)
	}
	if format == "json" {
		if err := ops.WriteStatusJSON(a.stdout, s); err != nil {
			return a.failed("status", err)
		}
	} else {
		ops.WriteStatusTable(a.stdout, s, a.colors())
		for _, l := range a.windowLines(ctx) {
			fmt.Fprintln(a.stdout, l)
		}
	}
	a.summary(ops.StatusMarkdown(s))
	return exitOK
}

// history lists the deployment history kept in the cluster. Like status,
// it reads only and takes no lock.
func (a *app) history(ctx context.Context) int {
	format, err := outputFormat(a.extras["output"])
	if err != nil {
		return a.badInput(err)
	}
	limit := defaultHistoryLimit
	if v := a.extras["limit"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return a.badInput(&config.InputError{Input: "limit", Problem: fmt.Sprintf("%q is not a whole number of 1 or more", v),
				Accepted: fmt.Sprintf("a whole number of 1 or more; the cluster keeps the last %d", kube.HistoryLimit)})
		}
		limit = n
	}
	target, err := a.opsTarget()
	if err != nil {
		return a.badInput(err)
	}
	records, err := kube.ReadHistory(ctx, a.client, target.Namespace, target.Deployment)
	if err != nil {
		return a.failed("history", err)
	}
	entries := ops.Entries(records, limit)
	if format == "json" {
		if err := ops.WriteHistoryJSON(a.stdout, entries); err != nil {
			return a.failed("history", err)
		}
	} else {
		ops.WriteHistoryTable(a.stdout, entries, a.colors())
		for _, l := range a.windowLines(ctx) {
			fmt.Fprintln(a.stdout, l)
		}
	}
	a.summary(ops.HistoryMarkdown(a.cfg.Environment, entries, time.Now()))
	return exitOK
}

// takeLock takes the deploy lock for an operator command, so it cannot
// race a deploy or another operator. The returned context ends if the
// lock is lost; release gives it back.
func (a *app) takeLock(ctx context.Context, command string) (context.Context, func(), error) {
	lock, err := kube.AcquireLock(ctx, a.client, kube.LockOptions{
		Namespace: a.cfg.Namespace, Deployment: a.cfg.Deployment, Wait: lockWait(a.cfg.LockTimeout),
		Holder: kube.Holder{ID: command + "-" + randomID(), Repository: a.run.Repository, RunURL: a.run.RunURL, Actor: a.actor(), Environment: a.cfg.Environment},
		Waiting: func(held *kube.LockHeldError) {
			fmt.Fprintf(a.stderr, "greenlight %s: waiting up to %s (lock-timeout): %s\n", command, a.cfg.LockTimeout, heldFor(held, time.Now()))
		},
	})
	if err != nil {
		var held *kube.LockHeldError
		if errors.As(err, &held) {
			return nil, nil, fmt.Errorf("%w; nothing was changed: try again once it is released, or raise --lock-timeout", err)
		}
		return nil, nil, err
	}
	a.closeWindows(ctx, command)
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-lock.Lost():
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		cancel()
		rctx, done := context.WithTimeout(context.Background(), 10*time.Second)
		defer done()
		if err := lock.Release(rctx); err != nil {
			fmt.Fprintf(a.stderr, "greenlight %s: %v\n", command, err)
		}
	}, nil
}

// heldFor says who holds a lock, since when and for how long, and how to
// clear it if that run is dead.
func heldFor(held *kube.LockHeldError, now time.Time) string {
	msg := held.Error()
	if !held.Since.IsZero() {
		msg += fmt.Sprintf(" (%s ago)", now.Sub(held.Since).Round(time.Second))
	}
	return msg + "; if that run is dead: greenlight unlock --force --reason=..."
}

// audit describes an operator action for its history record.
func (a *app) audit(kind string, started time.Time) ops.Audit {
	return ops.Audit{ID: kind + "-" + randomID()[:7], Environment: a.cfg.Environment, Strategy: string(a.cfg.Strategy),
		Actor: a.actor(), RunURL: a.run.RunURL, StartedAt: started, FinishedAt: time.Now()}
}

// record appends an operator action to the history, even when ctx was
// cancelled: the audit trail must show what was done.
func (a *app) record(ctx context.Context, command string, rec kube.Record) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if err := kube.AppendHistory(rctx, a.client, a.cfg.Namespace, a.cfg.Deployment, rec); err != nil {
		fmt.Fprintf(a.stderr, "greenlight %s: warning: record it in the history: %v\n", command, err)
		return
	}
	fmt.Fprintf(a.stdout, "recorded as %s in %s/%s\n", rec.ID, a.cfg.Namespace, kube.HistoryName(a.cfg.Deployment))
}

// scale sets the replicas of the serving Deployment.
func (a *app) scale(ctx context.Context) int {
	target, err := a.opsTarget()
	if err != nil {
		return a.badInput(err)
	}
	replicas := int32(a.cfg.Replicas)
	if a.extras[extraScaleToZero] == "true" {
		replicas = 0
	}
	ctx, release, err := a.takeLock(ctx, "scale")
	if err != nil {
		return a.failed("scale", err)
	}
	defer release()
	started := time.Now()
	res, err := ops.Scale(ctx, a.client, ops.ScaleOptions{Target: target, Replicas: replicas, Timeout: a.cfg.RolloutTimeout, OnProgress: a.progress()})
	switch {
	case err != nil:
	case res.Unchanged:
		fmt.Fprintf(a.stdout, "deployment %s already has %d replicas; %d ready\n", res.Active.Deployment, res.To, res.Ready.Ready)
	default:
		ready := ""
		if res.Endpoints > 0 {
			ready = fmt.Sprintf(": %d ready, %d endpoints serving", res.Ready.Ready, res.Endpoints)
		}
		fmt.Fprintf(a.stdout, "scaled deployment %s from %d to %d replicas%s in %s\n", res.Active.Deployment, res.From, res.To, ready, res.Took.Round(time.Millisecond))
	}
	if res.Changed {
		a.record(ctx, "scale", ops.ScaleRecord(a.audit("scale", started), res, err))
	}
	a.summary(ops.ScaleMarkdown(a.cfg.Environment, res, err))
	if err != nil {
		return a.failed("scale", err)
	}
	return exitOK
}

// maintenance tells or switches the environment's maintenance mode.
func (a *app) maintenance(ctx context.Context) int {
	target, err := a.opsTarget()
	if err != nil {
		return a.badInput(err)
	}
	opts := ops.MaintenanceOptions{
		Target: target, ConfigMap: a.extras["configmap"], Key: a.extras["key"], Timeout: a.cfg.RolloutTimeout,
		Probe: a.healthProbe(min(a.cfg.Timeout, statusProbeBound)), HealthTimeout: a.cfg.Timeout, OnProgress: a.progress(),
	}
	if opts.Key == "" {
		opts.Key = ops.DefaultMaintenanceKey
	}
	if err := ops.CheckConfigMapOptions(opts.ConfigMap, opts.Key); err != nil {
		return a.badInput(err)
	}
	state := a.extras[extraState]
	if state == "" {
		// A workflow step has no input for the state: it reports it.
		state = "status"
		fmt.Fprintln(a.stdout, "the action reports maintenance mode; switching it is the CLI's `greenlight maintenance on|off`")
	}
	// Read first: a ConfigMap that cannot be found is bad input, reported
	// before the lock is touched.
	current, err := ops.ReadMaintenance(ctx, a.client, opts)
	if err != nil {
		return a.failed("maintenance", err)
	}
	if state == "status" {
		fmt.Fprintln(a.stdout, ops.MaintenanceText(current))
		a.summary(fmt.Sprintf("### greenlight maintenance: %s\n\n%s\n", a.cfg.Environment, ops.MaintenanceText(current)))
		return exitOK
	}
	opts.ConfigMap = current.ConfigMap
	ctx, release, err := a.takeLock(ctx, "maintenance")
	if err != nil {
		return a.failed("maintenance", err)
	}
	defer release()
	started := time.Now()
	on := state == "on"
	res, err := ops.SetMaintenance(ctx, a.client, opts, on)
	if res.Wrote {
		was := fmt.Sprintf("was %q", res.Before.Value)
		switch {
		case res.Created:
			was = "created the configmap"
		case !res.Before.KeySet:
			was = "added the key"
		}
		fmt.Fprintf(a.stdout, "configmap %s: %s=%s (%s)\n", res.Before.ConfigMap, res.Before.Key, res.Value, was)
	}
	switch {
	case err != nil:
	case res.Unchanged:
		fmt.Fprintf(a.stdout, "maintenance is already %s; nothing changed (%s)\n", state, ops.MaintenanceText(res.Before))
	default:
		fmt.Fprintf(a.stdout, "restarted deployment %s (revision %d → %d): %d/%d ready\n", res.Before.Active.Deployment, res.FromRevision, res.ToRevision, res.Ready.Ready, res.Ready.Desired)
		if h := res.Health; h != nil {
			version := ""
			if h.Version != "" {
				version = " (version " + h.Version + ")"
			}
			fmt.Fprintf(a.stdout, "health answered %d%s in %s\n", h.StatusCode, version, h.Latency.Round(time.Millisecond))
		}
		fmt.Fprintf(a.stdout, "maintenance is %s for %s in %s\n", state, a.cfg.Environment, res.Took.Round(time.Millisecond))
	}
	if res.Changed {
		a.record(ctx, "maintenance", ops.MaintenanceRecord(a.audit("maintenance-"+state, started), res, err))
	}
	a.summary(ops.MaintenanceMarkdown(a.cfg.Environment, res, err))
	if err != nil {
		return a.failed("maintenance", err)
	}
	return exitOK
}

// unlock clears the environment's deploy lock left by a dead run.
func (a *app) unlock(ctx context.Context) int {
	target, err := a.opsTarget()
	if err != nil {
		return a.badInput(err)
	}
	if err := ops.CheckUnlock(a.extras["force"] == "true", a.cfg.Reason); err != nil {
		return a.badInput(err)
	}
	started := time.Now()
	res, err := ops.Unlock(ctx, a.client, target, a.holder("unlock"), a.cfg.Reason)
	if err == nil {
		fmt.Fprintln(a.stdout, ops.UnlockText(res, time.Now()))
	}
	if res.Held != nil || err != nil {
		a.record(ctx, "unlock", ops.UnlockRecord(a.audit("unlock", started), res, a.cfg.Reason, err))
	}
	if err != nil {
		a.summary(fmt.Sprintf("### greenlight unlock: %s\n\n❌ %s\n", a.cfg.Environment, err))
		return a.failed("unlock", err)
	}
	a.summary(fmt.Sprintf("### greenlight unlock: %s\n\n✅ %s (by %s: %s)\n", a.cfg.Environment, ops.UnlockText(res, time.Now()), a.actor(), a.cfg.Reason))
	return exitOK
}

// closeWindows is the first work of a command that holds the lock: a
// previous color whose rollback window closed is scaled down.
func (a *app) closeWindows(ctx context.Context, command string) {
	if a.cfg.Strategy != config.BlueGreen || a.cfg.Deployment == "" {
		return
	}
	closed, err := strategy.CloseExpiredWindows(ctx, a.client, a.strategyTarget(), time.Now(), false)
	for _, c := range closed {
		fmt.Fprintln(a.stdout, c)
	}
	if err != nil {
		fmt.Fprintf(a.stderr, "greenlight %s: warning: %v\n", command, err)
	}
}

func (a *app) strategyTarget() strategy.Target {
	svc := a.cfg.Service
	if svc == "" {
		svc = a.cfg.Deployment
	}
	return strategy.Target{Namespace: a.cfg.Namespace, Deployment: a.cfg.Deployment, Service: svc}
}

// windowLines says which rollback windows are open, for read-only
// commands; they never close one.
func (a *app) windowLines(ctx context.Context) []string {
	if a.cfg.Deployment == "" {
		return nil
	}
	windows, err := strategy.Windows(ctx, a.client, a.cfg.Namespace, a.cfg.Deployment)
	if err != nil {
		return []string{fmt.Sprintf("rollback window: %v", err)}
	}
	var out []string
	now := time.Now()
	for _, w := range windows {
		if w.Open(now) {
			out = append(out, fmt.Sprintf("rollback window: %s stays warm (%d replicas, no traffic) until %s (%s left); greenlight rollback is a selector switch until then",
				w.Deployment, w.Replicas, w.Until.UTC().Format("15:04:05 UTC"), w.Until.Sub(now).Round(time.Second)))
		} else {
			out = append(out, fmt.Sprintf("rollback window: %s closed at %s; the next deploy, rollback, scale, maintenance or cleanup scales it down",
				w.Deployment, w.Until.UTC().Format("15:04:05 UTC")))
		}
	}
	return out
}

// cleanup scales down previous colors whose rollback window has closed; a
// team may schedule it.
func (a *app) cleanup(ctx context.Context) int {
	if _, err := a.opsTarget(); err != nil {
		return a.badInput(err)
	}
	before := a.windowLines(ctx)
	_, release, err := a.takeLock(ctx, "cleanup") // closes the expired windows
	if err != nil {
		return a.failed("cleanup", err)
	}
	release()
	after := a.windowLines(ctx)
	if len(before) == 0 {
		fmt.Fprintln(a.stdout, "no rollback window recorded; nothing to clean up")
	}
	for _, l := range after {
		fmt.Fprintln(a.stdout, l)
	}
	a.summary(fmt.Sprintf("### greenlight cleanup: %s\n\n%d rollback window(s) before, %d open after.\n", a.cfg.Environment, len(before), len(after)))
	return exitOK
}
