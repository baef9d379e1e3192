package kube

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
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

// Labels the StatefulSet, DaemonSet and Job controllers put on their pods.
const (
	controllerRevisionLabel = appsv1.ControllerRevisionHashLabelKey
	daemonSetGenerationKey  = appsv1.DeprecatedTemplateGeneration
	jobNameLabel            = "batch.kubernetes.io/job-name"
)

// WorkloadDeleted is the reason of a RolloutFailure whose workload went away
// during the wait.
const WorkloadDeleted = "Deleted"

// WaitWorkload waits until one workload is rolled out by its kind's rule
// (see WorkloadStatus): a Deployment as WaitRollout does; a StatefulSet,
// DaemonSet or Job by watching it and its pods, failing fast — not at the
// timeout — when a pod of the new revision cannot start (image pull
// back-off, crash loop, bad configuration, unschedulable past the grace),
// since a StatefulSet has no progress deadline to tell; a CronJob at once.
// kind is "Deployment", "StatefulSet", "DaemonSet", "Job" or "CronJob".
// Failures are *RolloutFailure values naming the workload, with its failing
// pods and their log tails (a failed Job's last pod's log).
func WaitWorkload(ctx context.Context, client kubernetes.Interface, namespace, kind, name string, opts WaitOptions) (WorkloadState, error) {
	object := kind + "/" + name
	switch kind {
	case "Deployment":
		st, err := WaitRollout(ctx, client, namespace, name, opts)
		if rf := (*RolloutFailure)(nil); errors.As(err, &rf) && rf.Object == "" {
			rf.Object = object
		}
		return WorkloadState{Object: object, Done: st.Done, Message: st.Message}, err
	case "StatefulSet", "DaemonSet", "Job":
	case "CronJob":
		c, err := client.BatchV1().CronJobs(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return WorkloadState{Object: object}, fmt.Errorf("get cronjob %s/%s: %w", namespace, name, ClassifyAPIError(err))
		}
		return CronJobStatus(c), nil
	default:
		return WorkloadState{Object: object, Done: true, Message: object + " applied"}, nil
	}
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
	selector, err := workloadSelector(ctx, client, namespace, kind, name)
	if err != nil {
		return WorkloadState{Object: object}, err
	}

	watchCtx, stopWatch := context.WithCancel(ctx)
	changed := make(chan struct{}, 1)
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { notifyOnce(changed) },
		UpdateFunc: func(any, any) { notifyOnce(changed) },
		DeleteFunc: func(any) { notifyOnce(changed) },
	}
	byName := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
		}))
	bySelector := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = selector.String() }))
	pods := bySelector.Core().V1().Pods()

	// read returns the workload's state, whether it is gone, and which of
	// the pods belong to the revision being rolled out.
	var read func() (WorkloadState, bool, func(*corev1.Pod) bool, error)
	var informer cache.SharedIndexInformer
	switch kind {
	case "StatefulSet":
		inf := byName.Apps().V1().StatefulSets()
		informer = inf.Informer()
		read = func() (WorkloadState, bool, func(*corev1.Pod) bool, error) {
			s, err := inf.Lister().StatefulSets(namespace).Get(name)
			if err != nil {
				return WorkloadState{Object: object}, apierrors.IsNotFound(err), nil, err
			}
			observed := s.Status.ObservedGeneration >= s.Generation
			return StatefulSetStatus(s), false, func(p *corev1.Pod) bool {
				return observed && metav1.IsControlledBy(p, s) && p.Labels[controllerRevisionLabel] == s.Status.UpdateRevision
			}, nil
		}
	case "DaemonSet":
		inf := byName.Apps().V1().DaemonSets()
		informer = inf.Informer()
		read = func() (WorkloadState, bool, func(*corev1.Pod) bool, error) {
			d, err := inf.Lister().DaemonSets(namespace).Get(name)
			if err != nil {
				return WorkloadState{Object: object}, apierrors.IsNotFound(err), nil, err
			}
			observed := d.Status.ObservedGeneration >= d.Generation
			return DaemonSetStatus(d), false, func(p *corev1.Pod) bool {
				return observed && metav1.IsControlledBy(p, d) && p.Labels[daemonSetGenerationKey] == fmt.Sprint(d.Generation)
			}, nil
		}
	case "Job":
		inf := byName.Batch().V1().Jobs()
		informer = inf.Informer()
		read = func() (WorkloadState, bool, func(*corev1.Pod) bool, error) {
			j, err := inf.Lister().Jobs(namespace).Get(name)
			if err != nil {
				return WorkloadState{Object: object}, apierrors.IsNotFound(err), nil, err
			}
			st, err := JobStatus(j)
			return st, false, func(p *corev1.Pod) bool { return metav1.IsControlledBy(p, j) }, err
		}
	}
	for _, inf := range []cache.SharedIndexInformer{informer, pods.Informer()} {
		if _, err := inf.AddEventHandler(handler); err != nil {
			stopWatch()
			return WorkloadState{Object: object}, fmt.Errorf("watch %s in %s: %w", object, namespace, err)
		}
	}
	byName.Start(watchCtx.Done())
	bySelector.Start(watchCtx.Done())
	defer byName.Shutdown()
	defer bySelector.Shutdown()
	defer stopWatch() // runs before Shutdown: stop the informers first
	byName.WaitForCacheSync(watchCtx.Done())
	bySelector.WaitForCacheSync(watchCtx.Done())

	listPods := func(of func(*corev1.Pod) bool) []corev1.Pod {
		all, _ := pods.Lister().Pods(namespace).List(labels.Everything())
		var out []corev1.Pod
		for _, p := range all {
			if of != nil && of(p) {
				out = append(out, *p)
			}
		}
		return out
	}
	var last WorkloadState
	for {
		state, gone, of, err := read()
		switch {
		case gone:
			if ctx.Err() == nil {
				return last, &RolloutFailure{Object: object, Deployment: name, Reason: WorkloadDeleted, Message: "the " + kind + " was deleted during the rollout"}
			}
		case err != nil:
			var wf *WorkloadFailure
			if errors.As(err, &wf) {
				rf := &RolloutFailure{Object: object, Deployment: name, Reason: wf.Reason, Message: wf.Message}
				owned := listPods(of)
				rf.Pods = PodFailures(owned)
				rf.Logs = Diagnoser{Client: client}.logs(ctx, namespace, lastPodLog(owned))
				return state, rf
			}
			return last, fmt.Errorf("read %s in %s: %w", object, namespace, err)
		default:
			if state != last && opts.OnProgress != nil {
				opts.OnProgress(RolloutState{Done: state.Done, Message: state.Message})
			}
			last = state
			if state.Done {
				return state, nil
			}
			var failing []Failure
			for _, p := range listPods(of) {
				if f := PodFailure(&p); f != nil && decisive(f, &p, opts.Now(), opts.UnschedulableGrace) {
					failing = append(failing, *f)
				}
			}
			if len(failing) > 0 {
				return state, &RolloutFailure{Object: object, Deployment: name, Reason: PodsFailing, Pods: failing,
					Logs: Diagnoser{Client: client}.Logs(ctx, namespace, failing)}
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) && opts.Timeout > 0 {
				// Never ready within the bound: the pods say why, when they can.
				owned := listPods(func(p *corev1.Pod) bool { return true })
				rf := &RolloutFailure{Object: object, Deployment: name, Reason: RolloutTimeout,
					Message: fmt.Sprintf("not finished within %s: %s", opts.Timeout, last.Message), Pods: PodFailures(owned)}
				rf.Logs = Diagnoser{Client: client}.logs(ctx, namespace, LogTargets(owned, DefaultLogContainers))
				return last, rf
			}
			return last, fmt.Errorf("wait for %s in %s: %w", object, namespace, ctx.Err())
		}
	}
}

func notifyOnce(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// workloadSelector reads a workload's pod selector; a Job's pods carry its
// name as a label.
func workloadSelector(ctx context.Context, client kubernetes.Interface, namespace, kind, name string) (labels.Selector, error) {
	var sel *metav1.LabelSelector
	var err error
	switch kind {
	case "StatefulSet":
		var s *appsv1.StatefulSet
		if s, err = client.AppsV1().StatefulSets(namespace).Get(ctx, name, metav1.GetOptions{}); err == nil {
			sel = s.Spec.Selector
		}
	case "DaemonSet":
		var d *appsv1.DaemonSet
		if d, err = client.AppsV1().DaemonSets(namespace).Get(ctx, name, metav1.GetOptions{}); err == nil {
			sel = d.Spec.Selector
		}
	case "Job":
		return labels.SelectorFromSet(labels.Set{jobNameLabel: name}), nil
	}
	if err != nil {
		return nil, fmt.Errorf("get %s/%s in %s: %w", kind, name, namespace, ClassifyAPIError(err))
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return nil, fmt.Errorf("%s/%s in %s has an invalid selector: %w", kind, name, namespace, err)
	}
	return s, nil
}

// lastPodLog picks the log that explains a failed Job: the first container
// of its newest pod, from its previous instance when it restarted. Pure.
func lastPodLog(pods []corev1.Pod) []LogTarget {
	if len(pods) == 0 {
		return nil
	}
	newest := slices.MaxFunc(pods, func(a, b corev1.Pod) int {
		return cmp.Or(a.CreationTimestamp.Time.Compare(b.CreationTimestamp.Time), cmp.Compare(a.Name, b.Name))
	})
	if len(newest.Spec.Containers) == 0 {
		return nil
	}
	c := newest.Spec.Containers[0].Name
	previous := false
	for _, cs := range newest.Status.ContainerStatuses {
		if cs.Name == c && cs.RestartCount > 0 && cs.State.Terminated == nil {
			previous = true
		}
	}
	return []LogTarget{{Pod: newest.Name, Container: c, Previous: previous}}
}
