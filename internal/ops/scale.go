package ops

import (
	"context"
	"fmt"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/ebeautything/greenlight/internal/kube"
)

// ScaleOptions say how to scale an environment.
type ScaleOptions struct {
	// Target names the workload; the active Deployment is scaled.
	Target Target
	// Replicas is the wanted count; zero stops every pod, which the caller
	// must have confirmed.
	Replicas int32
	// Timeout bounds the wait until the replicas are ready; zero means
	// only ctx bounds it.
	Timeout time.Duration
	// OnProgress, when set, sees each new rollout state while waiting.
	OnProgress func(kube.RolloutState)
}

// ScaleResult says what a scale did.
type ScaleResult struct {
	// Active is the Deployment that was scaled.
	Active Active
	// From and To are the replica counts before and after.
	From, To int32
	// Image is what the Deployment runs.
	Image string
	// Revision is the Deployment's revision, unchanged by a scale.
	Revision int64
	// Unchanged is true when it already had To replicas.
	Unchanged bool
	// Changed is true once the new count was written.
	Changed bool
	// Ready is the rollout state the wait ended with.
	Ready kube.RolloutState
	// Endpoints counts the Service's ready endpoints after a scale up,
	// once they were as many as the replicas; zero when not waited for.
	Endpoints int
	// Took is how long scaling and waiting took.
	Took time.Duration
}

// Scale sets the replicas of the Deployment serving traffic (the active
// color for blue-green) through the scale subresource, as `kubectl scale`
// does, and waits until kubectl's readiness rules say it is done and,
// after a scale up, until the Service lists as many ready endpoints: only
// then do the new pods take traffic. The result is filled in as far as it
// got, also on error.
func Scale(ctx context.Context, client kubernetes.Interface, o ScaleOptions) (ScaleResult, error) {
	start := time.Now()
	var r ScaleResult
	active, svc, err := ResolveActive(ctx, client, o.Target)
	if err != nil {
		return r, err
	}
	r.Active, r.To = active, o.Replicas
	d, err := getDeployment(ctx, client, o.Target.Namespace, active.Deployment)
	if err != nil {
		return r, err
	}
	w := WorkloadOf(d, active.Color, o.Target.Container)
	r.From, r.Image, r.Revision = w.Desired, w.Image, w.Revision
	r.Unchanged = r.From == r.To
	if !r.Unchanged {
		if err := kube.ScaleDeployment(ctx, client, o.Target.Namespace, active.Deployment, o.Replicas); err != nil {
			return r, err
		}
		r.Changed = true
	}
	waitStart := time.Now()
	r.Ready, err = kube.WaitRollout(ctx, client, o.Target.Namespace, active.Deployment, kube.WaitOptions{Timeout: o.Timeout, OnProgress: o.OnProgress})
	if err != nil {
		r.Took = time.Since(start)
		return r, fmt.Errorf("deployment %s/%s did not become ready with %d replicas: %w", o.Target.Namespace, active.Deployment, o.Replicas, err)
	}
	if svc != nil && r.To > r.From && len(svc.Spec.Selector) > 0 {
		left := time.Duration(0)
		if o.Timeout > 0 {
			left = max(o.Timeout-time.Since(waitStart), time.Second)
		}
		eps, err := kube.WaitEndpoints(ctx, client, o.Target.Namespace, svc.Name, svc.Spec.Selector, int(r.To), left)
		r.Endpoints = len(eps.Ready)
		if err != nil {
			r.Took = time.Since(start)
			return r, fmt.Errorf("service %s/%s did not list %d ready endpoints: %w", o.Target.Namespace, svc.Name, r.To, err)
		}
	}
	r.Took = time.Since(start)
	return r, nil
}
