package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// ColorLabel marks the Deployments and pods of each blue-green color, and
// selects the active one in the Service.
const ColorLabel = "greenlight.dev/color"

// previousSelectorAnnotation keeps the Service's selector before the last
// switch, so a rollback restores it exactly (also after adopting a plain
// Deployment that had no color).
const previousSelectorAnnotation = "greenlight.dev/previous-selector"

// ActiveColor reads which color a Service sends traffic to: its selector's
// color, or "" when it selects no color (a plain Deployment, not yet adopted).
func ActiveColor(svc *corev1.Service) string {
	return svc.Spec.Selector[ColorLabel]
}

// SwitchSelector points a Service at a new selector in one write, recording
// the selector it replaces for a rollback.
func SwitchSelector(ctx context.Context, client kubernetes.Interface, namespace, service string, selector map[string]string) (previous map[string]string, err error) {
	err = Retry(ctx, RetryPolicy{}, func(ctx context.Context) error {
		var serr error
		previous, serr = switchSelectorOnce(ctx, client, namespace, service, selector)
		return serr
	})
	return previous, err
}

func switchSelectorOnce(ctx context.Context, client kubernetes.Interface, namespace, service string, selector map[string]string) (previous map[string]string, err error) {
	svc, err := client.CoreV1().Services(namespace).Get(ctx, service, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("get service %s/%s: %w", namespace, service, ClassifyAPIError(err))
	}
	previous = svc.Spec.Selector
	prevJSON, err := json.Marshal(previous)
	if err != nil {
		return nil, fmt.Errorf("switch service %s/%s: encode selector: %w", namespace, service, err)
	}
	svc.Spec.Selector = selector
	if svc.Annotations == nil {
		svc.Annotations = map[string]string{}
	}
	svc.Annotations[previousSelectorAnnotation] = string(prevJSON)
	// An update (not a patch) carries the resourceVersion we read: a
	// concurrent change fails instead of being overwritten.
	if _, err := client.CoreV1().Services(namespace).Update(ctx, svc, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
		return nil, fmt.Errorf("switch service %s/%s to %s: %w", namespace, service, labels.Set(selector), ClassifyAPIError(err))
	}
	return previous, nil
}

// PreviousSelector is the selector a Service had before its last switch.
func PreviousSelector(svc *corev1.Service) (map[string]string, bool) {
	raw, ok := svc.Annotations[previousSelectorAnnotation]
	if !ok {
		return nil, false
	}
	var sel map[string]string
	if err := json.Unmarshal([]byte(raw), &sel); err != nil {
		return nil, false
	}
	return sel, true
}

// EndpointState is what a Service's EndpointSlices list.
type EndpointState struct {
	// Ready are the ready endpoints' pod names.
	Ready []string
	// Unexpected are ready endpoints whose pod the wanted selector does not
	// select (say, the old color still listed).
	Unexpected []string
}

// WaitEndpoints watches a Service's EndpointSlices until every ready
// endpoint is a pod matching want and at least minReady are ready. It is
// the proof that a selector switch took effect where traffic is routed.
func WaitEndpoints(ctx context.Context, client kubernetes.Interface, namespace, service string, want map[string]string, minReady int, timeout time.Duration) (EndpointState, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	wanted := labels.SelectorFromSet(want)
	watchCtx, stop := context.WithCancel(ctx)
	changed := make(chan struct{}, 1)
	notify := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	slicesFactory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.LabelSelector = discoveryv1.LabelServiceName + "=" + service
		}))
	podsFactory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(namespace))
	slices := slicesFactory.Discovery().V1().EndpointSlices()
	pods := podsFactory.Core().V1().Pods()
	h := cache.ResourceEventHandlerFuncs{AddFunc: func(any) { notify() }, UpdateFunc: func(any, any) { notify() }, DeleteFunc: func(any) { notify() }}
	for _, inf := range []cache.SharedIndexInformer{slices.Informer(), pods.Informer()} {
		if _, err := inf.AddEventHandler(h); err != nil {
			stop()
			return EndpointState{}, fmt.Errorf("watch endpoints of service %s/%s: %w", namespace, service, err)
		}
	}
	slicesFactory.Start(watchCtx.Done())
	podsFactory.Start(watchCtx.Done())
	defer podsFactory.Shutdown()
	defer slicesFactory.Shutdown()
	defer stop()
	slicesFactory.WaitForCacheSync(watchCtx.Done())
	podsFactory.WaitForCacheSync(watchCtx.Done())

	var state EndpointState
	for {
		list, _ := slices.Lister().EndpointSlices(namespace).List(labels.Everything())
		state = readyEndpoints(list, func(name string) (map[string]string, bool) {
			p, err := pods.Lister().Pods(namespace).Get(name)
			if err != nil {
				return nil, false
			}
			return p.Labels, true
		}, wanted)
		if len(state.Unexpected) == 0 && len(state.Ready) >= minReady {
			return state, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return state, fmt.Errorf("service %s/%s: endpoints did not settle on %s (ready: %v; not expected: %v): %w",
				namespace, service, labels.Set(want), state.Ready, state.Unexpected, ctx.Err())
		}
	}
}

// readyEndpoints sorts a Service's ready endpoints into those whose pod
// matches the wanted selector and those that do not. Pure.
func readyEndpoints(slices []*discoveryv1.EndpointSlice, podLabels func(name string) (map[string]string, bool), wanted labels.Selector) EndpointState {
	var s EndpointState
	for _, slice := range slices {
		for _, ep := range slice.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			name := strings.Join(ep.Addresses, ",")
			if ep.TargetRef != nil && ep.TargetRef.Kind == "Pod" {
				name = ep.TargetRef.Name
			}
			lbls, ok := podLabels(name)
			if ok && wanted.Matches(labels.Set(lbls)) {
				s.Ready = append(s.Ready, name)
			} else {
				s.Unexpected = append(s.Unexpected, name)
			}
		}
	}
	sort.Strings(s.Ready)
	sort.Strings(s.Unexpected)
	return s
}

// ScaleDeployment sets a Deployment's replicas through the scale subresource.
func ScaleDeployment(ctx context.Context, client kubernetes.Interface, namespace, name string, replicas int32) error {
	patch := fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, replicas)
	err := Retry(ctx, RetryPolicy{}, func(ctx context.Context) error {
		_, perr := client.AppsV1().Deployments(namespace).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager}, "scale")
		return perr
	})
	if err != nil {
		return fmt.Errorf("scale deployment %s/%s to %d: %w", namespace, name, replicas, ClassifyAPIError(err))
	}
	return nil
}

// ServicePort names a Service's first port the way the API server's service
// proxy wants it: by name when it has one (a named port must be named), else
// by number.
func ServicePort(ctx context.Context, client kubernetes.Interface, namespace, service string) (string, error) {
	var svc *corev1.Service
	err := Retry(ctx, RetryPolicy{}, func(ctx context.Context) error {
		var gerr error
		svc, gerr = client.CoreV1().Services(namespace).Get(ctx, service, metav1.GetOptions{})
		return gerr
	})
	if err != nil {
		return "", fmt.Errorf("get service %s/%s: %w", namespace, service, ClassifyAPIError(err))
	}
	if len(svc.Spec.Ports) == 0 {
		return "", fmt.Errorf("service %s/%s has no ports", namespace, service)
	}
	if p := svc.Spec.Ports[0]; p.Name != "" {
		return p.Name, nil
	}
	return fmt.Sprint(svc.Spec.Ports[0].Port), nil
}
