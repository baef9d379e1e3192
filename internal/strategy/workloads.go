package strategy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"

	"github.com/ebeautything/greenlight/internal/kube"
)

// What a deploy did to a workload (ObjectResult.Change) and how it ended
// (ObjectResult.Result).
const (
	ChangeCreated    = "created"
	ChangeConfigured = "configured"
	ChangeUnchanged  = "unchanged"
	// ChangeReplaced is a Job of the same name deleted and run again: a
	// Job's pod template cannot change.
	ChangeReplaced   = "replaced"
	ChangeNotApplied = "not applied"

	ResultReady      = "ready"
	ResultCompleted  = "completed"
	ResultFailed     = "failed"
	ResultUndone     = "undone"
	ResultDeleted    = "deleted"
	ResultKept       = "kept"
	ResultUndoFailed = "undo failed"
	// ResultApplied ends an object that is not a workload: nothing rolls out.
	ResultApplied = "applied"
)

// ObjectResult is what a deploy did to one object of the manifests and how
// it ended, for the report.
type ObjectResult struct {
	// Object is "Kind/name".
	Object string `json:"object"`
	// Change is created, configured, unchanged, replaced or not applied.
	Change string `json:"change"`
	// Result is ready, completed, failed, undone, deleted, kept (a
	// completed Job, which cannot be undone) or undo failed; empty while
	// the deploy runs.
	Result string `json:"result,omitempty"`
	// Detail is the rollout's last message or the failure.
	Detail string `json:"detail,omitempty"`
}

// workloads runs the workloads of the manifests beside the application's
// Deployment as one unit: pre-deploy Jobs first, then every other
// workload waited on by its kind's rule, and all of them undone together.
type workloads struct {
	client  kubernetes.Interface
	applier *kube.Applier
	wait    kube.WaitOptions
	rec     stepRecorder
}

// splitPreDeploy separates the pre-deploy Jobs from the other objects,
// keeping the order of each. Pure.
func splitPreDeploy(objs []*unstructured.Unstructured) (pre, rest []*unstructured.Unstructured) {
	for _, o := range objs {
		if kube.IsPreDeployJob(o) {
			pre = append(pre, o)
		} else {
			rest = append(rest, o)
		}
	}
	return pre, rest
}

func (d *Deployed) workload(object string) *ObjectResult {
	for i := range d.Objects {
		if d.Objects[i].Object == object {
			return &d.Objects[i]
		}
	}
	d.Objects = append(d.Objects, ObjectResult{Object: object})
	return &d.Objects[len(d.Objects)-1]
}

// runPreDeploy runs each pre-deploy Job to completion, in order, before
// anything else is applied. A Job that already completed with the same
// containers is not run again. A failed Job is kept for `kubectl logs`
// (its log tail is in the error); one that did not finish is deleted.
func (w workloads) runPreDeploy(ctx context.Context, t Target, d *Deployed, jobs []*unstructured.Unstructured) error {
	for _, job := range jobs {
		ns, name := namespaceOf(job, t.Namespace), job.GetName()
		wl := d.workload("Job/" + name)
		err := w.rec.run("pre-deploy Job/"+name, func() (string, error) {
			change, err := w.replaceJob(ctx, ns, job)
			if err != nil {
				return "", err
			}
			wl.Change = change
			if change == ChangeUnchanged {
				wl.Result = ResultCompleted
				return "already completed with these containers", nil
			}
			if _, err := w.applier.Apply(ctx, []*unstructured.Unstructured{job}, t.Namespace, false); err != nil {
				return "", err
			}
			wait := w.wait
			wait.OnProgress = nil
			st, err := kube.WaitWorkload(ctx, w.client, ns, "Job", name, wait)
			if err != nil {
				wl.Result, wl.Detail = ResultFailed, err.Error()
				var rf *kube.RolloutFailure
				if !errors.As(err, &rf) || rf.Reason == kube.RolloutTimeout || rf.Reason == kube.PodsFailing {
					cctx, cancel := detached(ctx)
					defer cancel()
					if derr := kube.DeleteJob(cctx, w.client, ns, name); derr != nil {
						err = errors.Join(err, derr)
					}
				}
				return "", fmt.Errorf("pre-deploy %w; nothing else was applied", err)
			}
			wl.Result, wl.Detail = ResultCompleted, st.Message
			return st.Message, nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// replaceJob makes room for a Job of the manifests: a live Job that ran the
// same containers and completed stays (unchanged); any other is deleted,
// since a Job's template cannot change.
func (w workloads) replaceJob(ctx context.Context, ns string, job *unstructured.Unstructured) (string, error) {
	live, err := w.client.BatchV1().Jobs(ns).Get(ctx, job.GetName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return ChangeCreated, nil
	}
	if err != nil {
		return "", fmt.Errorf("read job %s/%s: %w", ns, job.GetName(), kube.ClassifyAPIError(err))
	}
	if st, _ := kube.JobStatus(live); st.Done && kube.JobRunsSame(live, job) {
		return ChangeUnchanged, nil
	}
	if err := kube.DeleteJob(ctx, w.client, ns, job.GetName()); err != nil {
		return "", err
	}
	return ChangeReplaced, nil
}

// prepare snapshots every workload among objs except those skip names (the
// strategy's own Deployment), and makes room for changed Jobs. It returns
// the objects to apply: a completed Job that runs the same containers is
// left out.
func (w workloads) prepare(ctx context.Context, t Target, d *Deployed, objs []*unstructured.Unstructured, skip func(*unstructured.Unstructured) bool) ([]*unstructured.Unstructured, error) {
	out := make([]*unstructured.Unstructured, 0, len(objs))
	for _, obj := range objs {
		kind := kube.WorkloadKind(obj)
		if kind == "" || skip(obj) {
			out = append(out, obj)
			continue
		}
		ns := namespaceOf(obj, t.Namespace)
		snap, err := kube.SnapshotWorkload(ctx, w.client, ns, kind, obj.GetName())
		if err != nil {
			return nil, err
		}
		if kind == "Job" && snap.Existed {
			change, err := w.replaceJob(ctx, ns, obj)
			if err != nil {
				return nil, err
			}
			if change == ChangeUnchanged {
				*d.workload(snap.Object()) = ObjectResult{Object: snap.Object(), Change: ChangeUnchanged, Result: ResultCompleted}
				continue
			}
			d.workload(snap.Object()).Change = ChangeReplaced
		}
		d.unit = append(d.unit, snap)
		out = append(out, obj)
	}
	return out, nil
}

// applied records what the apply did to each object; objects that are
// not workloads are done once applied.
func (d *Deployed) applied(results []kube.ApplyResult) {
	for _, r := range results {
		wl := d.workload(r.Object)
		if wl.Change != ChangeReplaced {
			wl.Change = r.Action
		}
		if wl.Result == "" && !d.inUnit(r.Object) {
			wl.Result = ResultApplied
		}
	}
}

func (d *Deployed) inUnit(object string) bool {
	for _, s := range d.unit {
		if s.Object() == object {
			return true
		}
	}
	return false
}

// restoreUnit takes in the snapshots of the workloads an earlier run
// changed (a deploy that awaited promotion), to undo them from this one.
func (d *Deployed) restoreUnit(snaps []kube.WorkloadSnapshot) {
	for _, s := range snaps {
		d.unit = append(d.unit, s)
		change := ChangeConfigured
		switch {
		case s.Kind == "Job" && s.Existed:
			change = ChangeReplaced
		case !s.Existed:
			change = ChangeCreated
		}
		d.workload(s.Object()).Change = change
	}
}

// changed lists the snapshots of the workloads the apply changed.
func (d *Deployed) changed() []kube.WorkloadSnapshot {
	var out []kube.WorkloadSnapshot
	for _, s := range d.unit {
		if c := d.workload(s.Object()).Change; c != ChangeUnchanged && c != "" {
			out = append(out, s)
		}
	}
	return out
}

// rollOut waits for the application's Deployment (waitApp, recorded as
// step) and, beside it, every other workload the deploy changed, all
// within the rollout timeout; the first failure stops the other waits.
// app is the Deployment's object ("Deployment/name") in d.Objects. It
// returns the unit's failure, if any: when the application's wait was
// stopped by another workload's failure, that failure is the cause.
func (w workloads) rollOut(ctx context.Context, d *Deployed, step, app string, waitApp func(context.Context) (string, error)) error {
	waitCtx, stopWaits := context.WithCancel(ctx)
	defer stopWaits()
	appCtx, stopApp := context.WithCancel(ctx)
	defer stopApp()
	collect := w.startWaits(waitCtx, d, stopApp)
	err := w.rec.run(step, func() (string, error) { return waitApp(appCtx) })
	stopped := err != nil && appCtx.Err() != nil && ctx.Err() == nil
	if len(d.Objects) > 0 {
		wl := d.workload(app)
		wl.Result, wl.Detail = ResultReady, ""
		switch {
		case stopped:
			wl.Result, wl.Detail = "", "stopped: another workload failed"
			err = nil // collect returns that failure
		case err != nil:
			wl.Result, wl.Detail = ResultFailed, err.Error()
			stopWaits() // the unit failed: its other workloads are undone anyway
		}
	}
	if len(d.changed()) > 0 {
		werr := w.rec.run("workloads", func() (string, error) {
			if err := collect(); err != nil {
				return "", err
			}
			return fmt.Sprintf("%d workloads rolled out", len(d.changed())), nil
		})
		if err == nil {
			err = werr
		}
	}
	return err
}

// startWaits waits, in the background, on every changed workload by its
// kind's rule, all within the rollout timeout from now; the first failure
// stops the other waits and calls failed (the unit is undone anyway, so
// waiting on the rest would only delay it). The returned function collects
// the outcome.
func (w workloads) startWaits(ctx context.Context, d *Deployed, failed func()) func() error {
	changed := d.changed()
	type outcome struct {
		st  kube.WorkloadState
		err error
	}
	results := make([]outcome, len(changed))
	parent := ctx
	ctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wait := w.wait
	wait.OnProgress = nil // progress events come from the application's Deployment
	for i, s := range changed {
		wg.Go(func() {
			st, err := kube.WaitWorkload(ctx, w.client, s.Namespace, s.Kind, s.Name, wait)
			results[i] = outcome{st, err}
			if err != nil && !errors.Is(err, context.Canceled) {
				stop()
				failed()
			}
		})
	}
	return func() error {
		wg.Wait()
		stop()
		var errs []error
		for i, s := range changed {
			wl := d.workload(s.Object())
			switch err := results[i].err; {
			case err != nil && errors.Is(err, context.Canceled):
				wl.Result, wl.Detail = "", "stopped: "+results[i].st.Message
			case err != nil:
				wl.Result, wl.Detail = ResultFailed, err.Error()
				errs = append(errs, err)
			case s.Kind == "Job":
				wl.Result, wl.Detail = ResultCompleted, results[i].st.Message
			default:
				wl.Result, wl.Detail = ResultReady, results[i].st.Message
			}
		}
		if len(errs) == 0 && parent.Err() != nil {
			errs = append(errs, fmt.Errorf("waiting for the workloads stopped: %w", parent.Err()))
		}
		return errors.Join(errs...)
	}
}

// undo puts back every workload the deploy changed (except the strategy's
// own Deployment, which it undoes itself) and waits until each is rolled
// out again. A completed Job is kept and said to be.
func (w workloads) undo(ctx context.Context, d *Deployed) error {
	for i, o := range d.Objects {
		// A migration that ran stays done; the report says so.
		if strings.HasPrefix(o.Object, "Job/") && o.Result == ResultCompleted && o.Change != ChangeUnchanged && !d.inUnit(o.Object) {
			d.Objects[i].Result, d.Objects[i].Detail = ResultKept, "completed before the other workloads: what it did cannot be undone"
		}
	}
	changed := d.changed()
	if len(changed) == 0 {
		return nil
	}
	return w.rec.run("undo workloads", func() (string, error) {
		var errs []error
		undone, kept := 0, 0
		wait := w.wait
		wait.OnProgress = nil
		for _, s := range changed {
			wl := d.workload(s.Object())
			var out kube.UndoOutcome
			// The previous version must come back even through an API
			// outage: retry patiently, within the caller's deadline.
			err := kube.Retry(ctx, kube.PatientRetry, func(ctx context.Context) error {
				var uerr error
				out, uerr = kube.UndoWorkload(ctx, w.client, s)
				return uerr
			})
			if err == nil && s.Existed && s.Kind != "Job" {
				_, err = kube.WaitWorkload(ctx, w.client, s.Namespace, s.Kind, s.Name, wait)
				if err != nil {
					err = fmt.Errorf("%s did not become ready on its previous template: %w", s.Object(), err)
				}
			}
			note := out.Detail
			if wl.Result == ResultFailed && wl.Detail != "" {
				note = out.Detail + " (it had failed: " + wl.Detail + ")"
			}
			switch {
			case err != nil:
				wl.Result, wl.Detail = ResultUndoFailed, err.Error()
				errs = append(errs, err)
			case out.Kept:
				wl.Result, wl.Detail = ResultKept, note
				kept++
			case !s.Existed:
				wl.Result, wl.Detail = ResultDeleted, note
				undone++
			default:
				wl.Result, wl.Detail = ResultUndone, note
				undone++
			}
		}
		msg := fmt.Sprintf("%d of %d workloads put back", undone, len(changed))
		if kept > 0 {
			msg += fmt.Sprintf("; %d completed Job(s) cannot be undone", kept)
		}
		return msg, errors.Join(errs...)
	})
}
