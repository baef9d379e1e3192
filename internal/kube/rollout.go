package kube

import (
	"context"
	"errors"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// revisionAnnotation is where the deployment controller numbers revisions,
// on the Deployment and on each of its ReplicaSets.
const revisionAnnotation = "deployment.kubernetes.io/revision"

// Reasons of a RolloutFailure besides those of the pods and the controller.
const (
	// RolloutTimeout: the rollout did not finish within the wait's bound.
	RolloutTimeout = "Timeout"
	// DeploymentDeleted: the Deployment went away during the wait.
	DeploymentDeleted = "DeploymentDeleted"
)

// WaitOptions bound and observe a rollout wait.
type WaitOptions struct {
	// Timeout bounds the whole wait; zero means only ctx bounds it.
	Timeout time.Duration
	// UnschedulableGrace is how long a new pod may stay unschedulable (a
	// cluster autoscaler may be adding a node) before the rollout fails;
	// default 60s.
	UnschedulableGrace time.Duration
	// OnProgress, when set, is called with every new state.
	OnProgress func(RolloutState)
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// WaitRollout watches a Deployment, its ReplicaSets and pods until kubectl's
// readiness rules say the rollout is done, and fails fast — not at a
// timeout — when a pod of the new ReplicaSet cannot start: image pull
// back-off, crash loop, bad container configuration, or unschedulable past
// the grace. Failures are *RolloutFailure values with the failing pods and
// the latest events. Watches that break are re-established from the last
// resource version by the informers' reflectors.
func WaitRollout(ctx context.Context, client kubernetes.Interface, namespace, name string, opts WaitOptions) (RolloutState, error) {
	if opts.UnschedulableGrace == 0 {
		opts.UnschedulableGrace = 60 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	d, err := client.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return RolloutState{}, fmt.Errorf("get deployment %s/%s: %w", namespace, name, ClassifyAPIError(err))
	}
	selector, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return RolloutState{}, fmt.Errorf("deployment %s/%s has an invalid selector: %w", namespace, name, err)
	}

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	changed := make(chan struct{}, 1)
	notify := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	byName := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
		}))
	bySelector := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = selector.String() }))
	deployments := byName.Apps().V1().Deployments()
	replicaSets := bySelector.Apps().V1().ReplicaSets()
	pods := bySelector.Core().V1().Pods()
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { notify() },
		UpdateFunc: func(any, any) { notify() },
		DeleteFunc: func(any) { notify() },
	}
	for _, inf := range []cache.SharedIndexInformer{deployments.Informer(), replicaSets.Informer(), pods.Informer()} {
		if _, err := inf.AddEventHandler(handler); err != nil {
			return RolloutState{}, fmt.Errorf("watch deployment %s/%s: %w", namespace, name, err)
		}
	}
	byName.Start(watchCtx.Done())
	bySelector.Start(watchCtx.Done())
	defer byName.Shutdown()
	defer bySelector.Shutdown()
	defer stopWatch() // runs before Shutdown: stop the informers first
	byName.WaitForCacheSync(watchCtx.Done())
	bySelector.WaitForCacheSync(watchCtx.Done())

	var last RolloutState
	for {
		d, err := deployments.Lister().Deployments(namespace).Get(name)
		switch {
		case apierrors.IsNotFound(err):
			if ctx.Err() == nil {
				return last, &RolloutFailure{Deployment: name, Reason: DeploymentDeleted, Message: "the Deployment was deleted during the rollout"}
			}
		case err != nil:
			return last, fmt.Errorf("read deployment %s/%s: %w", namespace, name, err)
		default:
			state, err := RolloutStatus(d)
			if err != nil {
				var rf *RolloutFailure
				if errors.As(err, &rf) {
					rf.Pods = newReplicaSetFailures(d, replicaSets.Lister().ReplicaSets(namespace), pods.Lister().Pods(namespace), opts.Now(), 0)
					rf.Events = relatedEvents(ctx, client, namespace, d, rf.Pods)
					addDiagnosis(ctx, client, namespace, name, rf)
				}
				return state, err
			}
			if state != last && opts.OnProgress != nil {
				opts.OnProgress(state)
			}
			last = state
			if state.Done {
				return state, nil
			}
			if d.Status.ObservedGeneration >= d.Generation {
				if failing := newReplicaSetFailures(d, replicaSets.Lister().ReplicaSets(namespace), pods.Lister().Pods(namespace), opts.Now(), opts.UnschedulableGrace); len(failing) > 0 {
					rf := &RolloutFailure{
						Deployment: name, Reason: PodsFailing, Pods: failing,
						Events: relatedEvents(ctx, client, namespace, d, failing),
					}
					addDiagnosis(ctx, client, namespace, name, rf)
					return state, rf
				}
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) && opts.Timeout > 0 {
				rf := &RolloutFailure{Deployment: name, Reason: RolloutTimeout,
					Message: fmt.Sprintf("not finished within %s: %s", opts.Timeout, last.Message)}
				addDiagnosis(ctx, client, namespace, name, rf)
				return last, rf
			}
			return last, fmt.Errorf("wait for deployment %s/%s: %w", namespace, name, ctx.Err())
		}
	}
}

// addDiagnosis adds what the new version's pods say to a rollout failure:
// their logs, and their failures and events when the failure had none (a
// timeout). It reads them now, before anything undoes the rollout and the
// pods with their logs are gone; best effort.
func addDiagnosis(ctx context.Context, client kubernetes.Interface, namespace, deployment string, rf *RolloutFailure) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	sel, _, err := CurrentPodSelector(ctx, client, namespace, deployment)
	if err != nil {
		return
	}
	diag, err := Diagnoser{Client: client}.Diagnose(ctx, namespace, sel)
	if err != nil {
		return
	}
	rf.Logs = diag.Logs
	if len(rf.Pods) == 0 {
		rf.Pods = diag.Pods
	}
	if len(rf.Events) == 0 {
		rf.Events = diag.Events
	}
}

// newReplicaSetFailures lists the failing pods of the Deployment's current
// ReplicaSet (the one carrying its revision). Old pods are not the
// rollout's concern. An unschedulable pod counts once it has been so for
// longer than grace.
func newReplicaSetFailures(d *appsv1.Deployment, rsLister interface {
	List(labels.Selector) ([]*appsv1.ReplicaSet, error)
}, podLister interface {
	List(labels.Selector) ([]*corev1.Pod, error)
}, now time.Time, grace time.Duration) []Failure {
	revision := d.Annotations[revisionAnnotation]
	if revision == "" {
		return nil
	}
	sets, _ := rsLister.List(labels.Everything())
	var current *appsv1.ReplicaSet
	for _, rs := range sets {
		if metav1.IsControlledBy(rs, d) && rs.Annotations[revisionAnnotation] == revision {
			current = rs
		}
	}
	if current == nil {
		return nil
	}
	all, _ := podLister.List(labels.Everything())
	var failing []Failure
	for _, p := range all {
		if !metav1.IsControlledBy(p, current) {
			continue
		}
		f := PodFailure(p)
		if f == nil || !decisive(f, p, now, grace) {
			continue
		}
		failing = append(failing, *f)
	}
	return failing
}

// decisive tells a failure that will not fix itself from one that may: a
// first ErrImagePull may be a registry hiccup, the back-off that follows is
// not; an unschedulable pod may get a node from an autoscaler within grace.
func decisive(f *Failure, p *corev1.Pod, now time.Time, grace time.Duration) bool {
	switch {
	case f.Reason == "ErrImagePull":
		return false
	case f.Kind == FailureUnschedulable:
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled {
				return now.Sub(c.LastTransitionTime.Time) >= grace
			}
		}
		return false
	}
	return true
}

// relatedEvents reads the latest events of the Deployment, its ReplicaSets
// and the failing pods, best effort: the failure is reported without them
// when they cannot be read.
func relatedEvents(ctx context.Context, client kubernetes.Interface, namespace string, d *appsv1.Deployment, failing []Failure) []EventLine {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	list, err := client.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil
	}
	names := map[string]bool{d.Name: true}
	for _, f := range failing {
		names[f.Pod] = true
	}
	var related []corev1.Event
	for _, e := range list.Items {
		o := e.InvolvedObject
		if names[o.Name] || (o.Kind == "ReplicaSet" && len(o.Name) > len(d.Name) && o.Name[:len(d.Name)+1] == d.Name+"-") {
			related = append(related, e)
		}
	}
	return LatestEvents(related, 10)
}
