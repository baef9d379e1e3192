package strategy

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"

	"github.com/ebeautything/greenlight/internal/kube"
)

// Rolling updates a Deployment in place and, on failure or when asked,
// undoes it to the revision that ran before, like `kubectl rollout undo`.
type Rolling struct {
	Client  kubernetes.Interface
	Applier *kube.Applier
	Wait    kube.WaitOptions
	OnStep  func(Step)
}

// Deploy sets the image (or applies the manifests) and waits for the
// rollout. A failed or cancelled rollout is undone before Deploy returns.
func (r *Rolling) Deploy(ctx context.Context, t Target) (Deployed, error) {
	d := Deployed{Strategy: NameRolling, Deployment: t.Deployment}
	rec := stepRecorder{d: &d, onStep: r.OnStep}
	var before *appsv1.Deployment
	err := kube.Retry(ctx, kube.RetryPolicy{}, func(ctx context.Context) error {
		var gerr error
		before, gerr = r.Client.AppsV1().Deployments(t.Namespace).Get(ctx, t.Deployment, metav1.GetOptions{})
		return gerr
	})
	if err != nil && len(t.Manifests) == 0 {
		return d, fmt.Errorf("get deployment %s/%s: %w", t.Namespace, t.Deployment, kube.ClassifyAPIError(err))
	}
	if err == nil {
		d.PreviousRevision = revisionOf(before.Annotations)
		d.PreviousImage, _ = kube.CurrentImage(before, t.Container, t.Image)
	}

	scaled, err := autoscalers(ctx, r.Client, t, &d)
	if err != nil {
		return d, err
	}
	d.Autoscaler = scaled[t.Deployment]
	if d.Autoscaler != "" && t.Replicas > 0 {
		d.Warnings = append(d.Warnings, replicasWarning(t, d.Autoscaler, t.Deployment))
	}
	w := workloads{client: r.Client, applier: r.Applier, wait: r.Wait, rec: rec}
	if len(t.Manifests) > 0 {
		// Migrations run first; when one fails nothing else is applied.
		pre, rest := splitPreDeploy(t.Manifests)
		if err := w.runPreDeploy(ctx, t, &d, pre); err != nil {
			return d, err
		}
		t.Manifests = rest
	}
	target := "Deployment/" + t.Deployment
	err = rec.run("apply", func() (string, error) {
		if len(t.Manifests) > 0 {
			objs, err := r.replicasSet(ctx, t, scaled)
			if err != nil {
				return "", err
			}
			if objs, err = w.prepare(ctx, t, &d, objs, func(o *unstructured.Unstructured) bool { return isApp(o, t) }); err != nil {
				return "", err
			}
			results, err := r.Applier.Apply(ctx, objs, t.Namespace, false)
			d.applied(results)
			if err != nil {
				return "", err
			}
			changed := 0
			for _, res := range results {
				if res.Action != "unchanged" {
					changed++
				}
			}
			d.Unchanged = changed == 0
			return fmt.Sprintf("%d objects applied, %d changed", len(results), changed), nil
		}
		replicas := t.Replicas
		if d.Autoscaler != "" {
			replicas = 0
			if err := kube.HandOverReplicas(ctx, r.Client, t.Namespace, t.Deployment); err != nil {
				return "", err
			}
		}
		change, err := kube.SetImageAndReplicas(ctx, r.Client, t.Namespace, t.Deployment, t.Container, t.Image, replicas, t.Annotations)
		if err != nil {
			return "", err
		}
		d.Unchanged = change.Unchanged
		if change.Unchanged {
			return fmt.Sprintf("%s already runs %s: nothing to roll out", t.Deployment, t.Image), nil
		}
		return fmt.Sprintf("image %s → %s", change.Previous, t.Image), nil
	})
	if err != nil {
		// Part of the manifests may have been applied: put back what was.
		cctx, cancel := detached(ctx)
		defer cancel()
		if uerr := w.undo(cctx, &d); uerr != nil {
			return d, errors.Join(err, fmt.Errorf("undo failed, the previous version may not be serving: %w", uerr))
		}
		return d, err
	}
	// The other workloads roll beside the application's Deployment.
	err = w.rollOut(ctx, &d, "rollout", target, func(ctx context.Context) (string, error) {
		state, err := kube.WaitRollout(ctx, r.Client, t.Namespace, t.Deployment, r.Wait)
		return state.Message, err
	})
	if after, gerr := r.Client.AppsV1().Deployments(t.Namespace).Get(context.WithoutCancel(ctx), t.Deployment, metav1.GetOptions{}); gerr == nil {
		d.Revision = revisionOf(after.Annotations)
	}
	if err == nil {
		return d, nil
	}
	cctx, cancel := detached(ctx)
	defer cancel()
	if uerr := r.undoAll(cctx, t, &d, rec); uerr != nil {
		return d, errors.Join(err, fmt.Errorf("undo failed, the previous version may not be serving: %w", uerr))
	}
	return d, err
}

// isApp tells the application's own Deployment among the manifests.
func isApp(o *unstructured.Unstructured, t Target) bool {
	return kube.WorkloadKind(o) == "Deployment" && o.GetName() == t.Deployment && namespaceOf(o, t.Namespace) == t.Namespace
}

// undoAll undoes the other workloads and, when this deploy rolled it, the
// application's Deployment.
func (r *Rolling) undoAll(ctx context.Context, t Target, d *Deployed, rec stepRecorder) error {
	w := workloads{client: r.Client, applier: r.Applier, wait: r.Wait, rec: rec}
	var errs []error
	if err := w.undo(ctx, d); err != nil {
		errs = append(errs, err)
	}
	if d.PreviousRevision != 0 && d.Revision != d.PreviousRevision && !d.Unchanged {
		err := r.undo(ctx, t, d, rec)
		if err != nil {
			errs = append(errs, err)
		}
		if len(d.Objects) > 0 {
			wl := d.workload("Deployment/" + t.Deployment)
			if err != nil {
				wl.Result, wl.Detail = ResultUndoFailed, err.Error()
			} else {
				wl.Result, wl.Detail = ResultUndone, fmt.Sprintf("back to revision %d", d.PreviousRevision)
			}
		}
	}
	return errors.Join(errs...)
}

// replicasSet returns the manifests to apply: a Deployment that an
// autoscaler scales carries no replicas (its count handed over first, so
// dropping the field never resets it), and the target Deployment carries the
// replicas input when one is given.
func (r *Rolling) replicasSet(ctx context.Context, t Target, scaled map[string]string) ([]*unstructured.Unstructured, error) {
	out := make([]*unstructured.Unstructured, len(t.Manifests))
	for i, obj := range t.Manifests {
		out[i] = obj
		if obj.GetKind() != "Deployment" || obj.GroupVersionKind().Group != "apps" {
			continue
		}
		switch {
		case scaled[obj.GetName()] != "":
			if err := kube.HandOverReplicas(ctx, r.Client, namespaceOf(obj, t.Namespace), obj.GetName()); err != nil {
				return nil, err
			}
			out[i] = obj.DeepCopy()
			unstructured.RemoveNestedField(out[i].Object, "spec", "replicas")
		case obj.GetName() == t.Deployment && t.Replicas > 0:
			out[i] = obj.DeepCopy()
			if err := unstructured.SetNestedField(out[i].Object, int64(t.Replicas), "spec", "replicas"); err != nil {
				return nil, fmt.Errorf("set replicas of deployment %s: %w", obj.GetName(), err)
			}
		}
	}
	return out, nil
}

func namespaceOf(obj *unstructured.Unstructured, namespace string) string {
	if ns := obj.GetNamespace(); ns != "" {
		return ns
	}
	return namespace
}

// Finish has nothing to do for a rolling update.
func (r *Rolling) Finish(context.Context, Target, *Deployed) error { return nil }

// Rollback undoes the deploy to the revision that ran before it and waits
// until that revision is rolled out.
func (r *Rolling) Rollback(ctx context.Context, t Target, d *Deployed) error {
	if d.PreviousRevision == 0 {
		return fmt.Errorf("roll back deployment %s/%s: no revision ran before this deploy", t.Namespace, t.Deployment)
	}
	return r.undoAll(ctx, t, d, stepRecorder{d: d, onStep: r.OnStep})
}

func (r *Rolling) undo(ctx context.Context, t Target, d *Deployed, rec stepRecorder) error {
	return rec.run("undo", func() (string, error) {
		// The previous revision must come back even through an API outage:
		// retry patiently, within the caller's deadline.
		var res kube.UndoResult
		err := kube.Retry(ctx, kube.PatientRetry, func(ctx context.Context) error {
			var uerr error
			res, uerr = kube.Undo(ctx, r.Client, t.Namespace, t.Deployment, d.PreviousRevision)
			return uerr
		})
		if err != nil {
			return "", err
		}
		wait := r.Wait
		wait.OnProgress = nil
		if err := kube.Retry(ctx, kube.PatientRetry, func(ctx context.Context) error {
			_, werr := kube.WaitRollout(ctx, r.Client, t.Namespace, t.Deployment, wait)
			return werr
		}); err != nil {
			return "", fmt.Errorf("the rollback to revision %d did not become ready: %w", res.To.Number, err)
		}
		return fmt.Sprintf("back to revision %d (%v)", res.To.Number, res.To.Images), nil
	})
}

func revisionOf(annotations map[string]string) int64 {
	n, _ := strconv.ParseInt(annotations["deployment.kubernetes.io/revision"], 10, 64)
	return n
}
