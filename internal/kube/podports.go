package kube

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
)

// PodPort is a ready pod and the container port a Service's port reaches
// on it.
type PodPort struct {
	Name string
	Port int
}

// ReadyPodsBehind lists the ready pods selector matches, each with the
// container port that port of service (its name or number; the only port
// when empty) targets on it, and describes that Service port.
func ReadyPodsBehind(ctx context.Context, client kubernetes.Interface, namespace, service, port string, selector map[string]string) ([]PodPort, string, error) {
	svc, err := client.CoreV1().Services(namespace).Get(ctx, service, metav1.GetOptions{})
	if err != nil {
		return nil, "", fmt.Errorf("get service %s/%s: %w", namespace, service, ClassifyAPIError(err))
	}
	sp, err := ServicePortOf(svc, port)
	if err != nil {
		return nil, "", err
	}
	list, err := client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(selector).String()})
	if err != nil {
		return nil, "", fmt.Errorf("list pods %s in %s: %w", labels.SelectorFromSet(selector), namespace, ClassifyAPIError(err))
	}
	pods := list.Items
	slices.SortFunc(pods, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	var out []PodPort
	for i := range pods {
		pod := &pods[i]
		if pod.DeletionTimestamp != nil || !podReady(pod) {
			continue
		}
		n, err := TargetContainerPort(sp, pod)
		if err != nil {
			return nil, "", err
		}
		out = append(out, PodPort{Name: pod.Name, Port: n})
	}
	if len(out) == 0 {
		return nil, "", fmt.Errorf("no ready pod matches %s in %s", labels.SelectorFromSet(selector), namespace)
	}
	return out, fmt.Sprintf("service %s port %s", service, servicePortName(sp)), nil
}

// servicePortName is a Service port as people name it: its name, or its
// number when it has none.
func servicePortName(sp corev1.ServicePort) string {
	if sp.Name != "" {
		return sp.Name
	}
	return strconv.Itoa(int(sp.Port))
}

// ServicePortOf picks the Service port named or numbered port; with port
// empty, the Service must have exactly one. Pure.
func ServicePortOf(svc *corev1.Service, port string) (corev1.ServicePort, error) {
	if port == "" {
		if len(svc.Spec.Ports) != 1 {
			return corev1.ServicePort{}, fmt.Errorf("service %s has %d ports: name the one to check (service-port)", svc.Name, len(svc.Spec.Ports))
		}
		return svc.Spec.Ports[0], nil
	}
	for _, sp := range svc.Spec.Ports {
		if sp.Name == port || strconv.Itoa(int(sp.Port)) == port {
			return sp, nil
		}
	}
	return corev1.ServicePort{}, fmt.Errorf("service %s has no port %q", svc.Name, port)
}

// TargetContainerPort is the container port of pod that sp sends traffic
// to: its targetPort's number, the container port of that name, or, with
// no targetPort, the Service port's own number, as kube-proxy resolves it.
// Pure.
func TargetContainerPort(sp corev1.ServicePort, pod *corev1.Pod) (int, error) {
	tp := sp.TargetPort
	switch {
	case tp.Type == intstr.String && tp.StrVal != "":
		for _, c := range pod.Spec.Containers {
			for _, p := range c.Ports {
				if p.Name == tp.StrVal {
					return int(p.ContainerPort), nil
				}
			}
		}
		return 0, fmt.Errorf("pod %s has no container port named %q, the target of service port %s", pod.Name, tp.StrVal, servicePortName(sp))
	case tp.Type == intstr.Int && tp.IntVal != 0:
		return int(tp.IntVal), nil
	default:
		return int(sp.Port), nil
	}
}

// podReady reports the pod's Ready condition.
func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
