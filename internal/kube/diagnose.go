package kube

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
)

// Defaults of a Diagnoser.
const (
	// DefaultLogTailLines is how many lines of a container's log a diagnosis
	// keeps: enough for a stack trace, short enough to read in a summary.
	DefaultLogTailLines = 50
	// DefaultLogContainers bounds how many container logs one diagnosis reads.
	DefaultLogContainers = 4
	// logLimitBytes caps one log read, so a container that logs megabytes
	// on one line cannot fill the report.
	logLimitBytes = 64 << 10
)

// LogTail is the end of one container's log.
type LogTail struct {
	// Pod and Container name the container.
	Pod       string
	Container string
	// Previous is true for the log of the container's previous instance:
	// the one that crashed or was restarted.
	Previous bool
	// Text is the log's last lines.
	Text string
	// Err says why the log could not be read; Text is empty then.
	Err string
}

// Diagnosis is the evidence about the pods of one version after it failed:
// the pods that fail, the latest events about them and the last lines of
// the logs of the containers that failed, restarted or answered the checks.
type Diagnosis struct {
	Pods   []Failure
	Events []EventLine
	Logs   []LogTail
}

// Diagnoser reads a Diagnosis from the cluster. Every read is best effort:
// a diagnosis explains a failure and must never cause one.
type Diagnoser struct {
	Client kubernetes.Interface
	// TailLines is how many lines of each log to keep; DefaultLogTailLines
	// when zero.
	TailLines int64
	// Containers bounds how many container logs are read;
	// DefaultLogContainers when zero.
	Containers int
}

// Diagnose reads the pods that selector matches in namespace, the latest
// events about them and the logs of the containers that explain a failure.
func (d Diagnoser) Diagnose(ctx context.Context, namespace string, selector map[string]string) (Diagnosis, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	list, err := d.Client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(selector).String()})
	if err != nil {
		return Diagnosis{}, fmt.Errorf("list pods %s in %s for a diagnosis: %w", labels.SelectorFromSet(selector), namespace, ClassifyAPIError(err))
	}
	pods := list.Items
	slices.SortFunc(pods, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	diag := Diagnosis{Pods: PodFailures(pods)}
	diag.Events = d.podEvents(ctx, namespace, pods)
	diag.Logs = d.logs(ctx, namespace, LogTargets(pods, d.containers()))
	return diag, nil
}

// Logs reads the logs of the containers of failures, as a rollout failure
// names them; pods that no longer exist get an Err.
func (d Diagnoser) Logs(ctx context.Context, namespace string, failures []Failure) []LogTail {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	var targets []LogTarget
	for _, f := range failures {
		if f.Container == "" || !ranContainer(f.Kind) || len(targets) == d.containers() {
			continue
		}
		targets = append(targets, LogTarget{Pod: f.Pod, Container: f.Container, Previous: f.RestartCount > 0})
	}
	return d.logs(ctx, namespace, targets)
}

func (d Diagnoser) containers() int {
	if d.Containers > 0 {
		return d.Containers
	}
	return DefaultLogContainers
}

func (d Diagnoser) tailLines() int64 {
	if d.TailLines > 0 {
		return d.TailLines
	}
	return DefaultLogTailLines
}

func (d Diagnoser) logs(ctx context.Context, namespace string, targets []LogTarget) []LogTail {
	out := make([]LogTail, 0, len(targets))
	for _, t := range targets {
		tail := LogTail{Pod: t.Pod, Container: t.Container, Previous: t.Previous}
		opts := &corev1.PodLogOptions{Container: t.Container, Previous: t.Previous, TailLines: new(d.tailLines()), LimitBytes: new(int64(logLimitBytes))}
		raw, err := readLog(ctx, d.Client, namespace, t.Pod, opts)
		if err != nil {
			tail.Err = fmt.Sprintf("read the log of %s/%s: %v", t.Pod, t.Container, ClassifyAPIError(err))
		} else {
			tail.Text = LastLines(string(raw), int(d.tailLines()))
		}
		out = append(out, tail)
	}
	return out
}

// readLog streams a container's log as kubectl logs does, whose errors
// carry the kubelet's explanation.
func readLog(ctx context.Context, client kubernetes.Interface, namespace, pod string, opts *corev1.PodLogOptions) ([]byte, error) {
	stream, err := client.CoreV1().Pods(namespace).GetLogs(pod, opts).Stream(ctx)
	if err != nil {
		return nil, err
	}
	defer stream.Close()
	return io.ReadAll(io.LimitReader(stream, logLimitBytes))
}

// podEvents are the latest events about the pods, newest first.
func (d Diagnoser) podEvents(ctx context.Context, namespace string, pods []corev1.Pod) []EventLine {
	if len(pods) == 0 {
		return nil
	}
	list, err := d.Client.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil
	}
	names := map[string]bool{}
	for _, p := range pods {
		names[p.Name] = true
	}
	var related []corev1.Event
	for _, e := range list.Items {
		if e.InvolvedObject.Kind == "Pod" && names[e.InvolvedObject.Name] {
			related = append(related, e)
		}
	}
	return LatestEvents(related, 10)
}

// LogTarget is one container log to read.
type LogTarget struct {
	Pod, Container string
	Previous       bool
}

// LogTargets picks the containers whose logs explain a failure of pods, at
// most max: first the failing containers that ran, then the containers
// that restarted, and only when there are neither, each pod's first
// container — the ones that answered the checks that failed. A container
// that ran before (a crash loop, a restart) is read from its previous
// instance, whose last words are the crash. Pure.
func LogTargets(pods []corev1.Pod, max int) []LogTarget {
	var out []LogTarget
	seen := map[[2]string]bool{}
	add := func(t LogTarget) {
		key := [2]string{t.Pod, t.Container}
		if len(out) < max && !seen[key] {
			seen[key] = true
			out = append(out, t)
		}
	}
	for i := range pods {
		if f := PodFailure(&pods[i]); f != nil && f.Container != "" && ranContainer(f.Kind) {
			add(LogTarget{Pod: f.Pod, Container: f.Container, Previous: f.RestartCount > 0})
		}
	}
	for _, p := range pods {
		for _, cs := range append(slices.Clone(p.Status.InitContainerStatuses), p.Status.ContainerStatuses...) {
			if cs.RestartCount > 0 && cs.LastTerminationState.Terminated != nil {
				add(LogTarget{Pod: p.Name, Container: cs.Name, Previous: true})
			}
		}
	}
	if len(out) > 0 {
		return out
	}
	for _, p := range pods {
		if p.DeletionTimestamp == nil && len(p.Spec.Containers) > 0 && p.Status.Phase == corev1.PodRunning {
			add(LogTarget{Pod: p.Name, Container: p.Spec.Containers[0].Name})
		}
	}
	return out
}

// ranContainer is false for failures whose container never started, so it
// has no log to read.
func ranContainer(kind FailureKind) bool {
	switch kind {
	case FailureImagePull, FailureContainerConfig, FailureContainerCreate, FailureUnschedulable:
		return false
	default:
		return true
	}
}

// LastLines keeps the last n lines of text, without a trailing newline. Pure.
func LastLines(text string, n int) string {
	text = strings.TrimRight(text, "\n")
	if text == "" || n <= 0 {
		return ""
	}
	lines := strings.Split(text, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
