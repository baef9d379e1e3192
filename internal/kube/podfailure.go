package kube

import (
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// FailureKind names a way a pod can fail that will not fix itself by waiting.
type FailureKind string

// The kinds of pod failure PodFailure recognises.
const (
	// FailureImagePull means the image cannot be pulled (wrong name or tag,
	// missing credentials, unreachable registry).
	FailureImagePull FailureKind = "ImagePull"
	// FailureCrashLoop means the container starts and exits again and again.
	FailureCrashLoop FailureKind = "CrashLoop"
	// FailureContainerConfig means the container's configuration refers to
	// something missing, typically a Secret or ConfigMap.
	FailureContainerConfig FailureKind = "ContainerConfig"
	// FailureContainerCreate means the runtime refused to create or start the
	// container.
	FailureContainerCreate FailureKind = "ContainerCreate"
	// FailureUnschedulable means no node can take the pod.
	FailureUnschedulable FailureKind = "Unschedulable"
)

// The RolloutFailure reasons.
const (
	// DeadlineExceeded means the Deployment's Progressing condition reports
	// ProgressDeadlineExceeded.
	DeadlineExceeded = "ProgressDeadlineExceeded"
	// PodsFailing means pods of the new version fail in a way that will not
	// resolve by waiting.
	PodsFailing = "PodsFailing"
)

// summaryMessageLimit keeps a Summary on one readable line; the full text
// stays in Message.
const summaryMessageLimit = 200

// waitingFailureKind maps the kubelet's container waiting reasons that do
// not resolve by waiting to a kind; ok is false for every other reason.
func waitingFailureKind(reason string) (kind FailureKind, ok bool) {
	switch reason {
	case "ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull":
		return FailureImagePull, true
	case "CrashLoopBackOff":
		return FailureCrashLoop, true
	case "CreateContainerConfigError":
		return FailureContainerConfig, true
	case "CreateContainerError", "RunContainerError":
		return FailureContainerCreate, true
	default:
		return "", false
	}
}

// Failure describes one pod that is stuck and why.
type Failure struct {
	// Kind is the class of failure.
	Kind FailureKind
	// Pod is the pod's name.
	Pod string
	// Container is the failing container's name; empty for Unschedulable.
	Container string
	// InitContainer is true when Container is an init container.
	InitContainer bool
	// Image is the failing container's image; empty for Unschedulable.
	Image string
	// Reason is Kubernetes' reason, such as "ImagePullBackOff".
	Reason string
	// Message is the detail: the kubelet's or scheduler's message, or for a
	// crash loop the last termination message when the container left one.
	Message string
	// RestartCount is how often the container has restarted.
	RestartCount int32
	// ExitCode is the last exit code of a crash-looping container.
	ExitCode int32
	// TerminationReason is why a crash-looping container last stopped,
	// such as "Error" or "OOMKilled".
	TerminationReason string
}

// Error reports the failure with Kubernetes' reason and full message.
func (f Failure) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "pod %q", f.Pod)
	if f.Container != "" {
		fmt.Fprintf(&b, " container %q", f.Container)
	}
	b.WriteString(": ")
	b.WriteString(f.Reason)
	if f.Kind == FailureCrashLoop {
		fmt.Fprintf(&b, " (restarted %s, last exit code %d", times(f.RestartCount), f.ExitCode)
		if f.TerminationReason != "" {
			fmt.Fprintf(&b, ", %s", f.TerminationReason)
		}
		b.WriteString(")")
	}
	if f.Message != "" {
		b.WriteString(": ")
		b.WriteString(f.Message)
	}
	return b.String()
}

// Summary describes the failure in one line for a report or a log, with the
// message folded onto that line and shortened.
func (f Failure) Summary() string {
	container := fmt.Sprintf("container %q", f.Container)
	if f.InitContainer {
		container = "init " + container
	}
	detail := f.Reason
	if msg := oneLine(f.Message, summaryMessageLimit); msg != "" {
		detail += ": " + msg
	}
	switch f.Kind {
	case FailureImagePull:
		return fmt.Sprintf("pod %s: %s cannot pull image %q (%s)", f.Pod, container, f.Image, detail)
	case FailureCrashLoop:
		last := fmt.Sprintf("exit code %d", f.ExitCode)
		if f.TerminationReason != "" {
			last += " " + f.TerminationReason
		}
		if msg := oneLine(f.Message, summaryMessageLimit); msg != "" {
			last += ": " + msg
		}
		return fmt.Sprintf("pod %s: %s keeps crashing (restarted %s; last %s)", f.Pod, container, times(f.RestartCount), last)
	case FailureContainerConfig:
		return fmt.Sprintf("pod %s: %s cannot be configured (%s)", f.Pod, container, detail)
	case FailureContainerCreate:
		return fmt.Sprintf("pod %s: %s cannot be started (%s)", f.Pod, container, detail)
	case FailureUnschedulable:
		return fmt.Sprintf("pod %s cannot be scheduled (%s)", f.Pod, detail)
	default:
		return fmt.Sprintf("pod %s: %s (%s)", f.Pod, container, detail)
	}
}

// PodFailure reports why a pod is stuck, or nil when it is running, starting
// normally or on its way out. Unschedulable is checked first because such a
// pod has no container statuses; then init containers, which block the
// others; then the app containers in order.
func PodFailure(pod *corev1.Pod) *Failure {
	if pod == nil || pod.DeletionTimestamp != nil {
		// A terminating pod belongs to a version being replaced.
		return nil
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return &Failure{
				Kind:    FailureUnschedulable,
				Pod:     pod.Name,
				Reason:  c.Reason,
				Message: c.Message,
			}
		}
	}
	if f := containerFailure(pod.Name, pod.Status.InitContainerStatuses, true); f != nil {
		return f
	}
	return containerFailure(pod.Name, pod.Status.ContainerStatuses, false)
}

// PodFailures returns the failures among pods, in the order given.
func PodFailures(pods []corev1.Pod) []Failure {
	var out []Failure
	for i := range pods {
		if f := PodFailure(&pods[i]); f != nil {
			out = append(out, *f)
		}
	}
	return out
}

func containerFailure(pod string, statuses []corev1.ContainerStatus, init bool) *Failure {
	for _, cs := range statuses {
		w := cs.State.Waiting
		if w == nil {
			continue
		}
		kind, ok := waitingFailureKind(w.Reason)
		if !ok {
			continue
		}
		f := &Failure{
			Kind:          kind,
			Pod:           pod,
			Container:     cs.Name,
			InitContainer: init,
			Image:         cs.Image,
			Reason:        w.Reason,
			Message:       w.Message,
			RestartCount:  cs.RestartCount,
		}
		if last := cs.LastTerminationState.Terminated; kind == FailureCrashLoop && last != nil {
			f.ExitCode = last.ExitCode
			f.TerminationReason = last.Reason
			// The container's own last words explain more than the
			// kubelet's "back-off restarting failed container".
			if strings.TrimSpace(last.Message) != "" {
				f.Message = last.Message
			}
		}
		return f
	}
	return nil
}

// RolloutFailure is a rollout that cannot succeed, with the evidence a
// reviewer needs: the failing pods and the latest events.
type RolloutFailure struct {
	// Deployment is the Deployment's name (the workload's name for other
	// kinds).
	Deployment string
	// Object is "Kind/name" when the workload is not a Deployment, or was
	// waited on as one of several.
	Object string
	// Reason is DeadlineExceeded, PodsFailing or another short cause.
	Reason string
	// Message is the controller's explanation, when there is one.
	Message string
	// Pods lists the failing pods.
	Pods []Failure
	// Events are the latest related events, newest first.
	Events []EventLine
	// Logs are the last lines of the new version's failing, restarted or
	// not-ready containers, read when the failure was found.
	Logs []LogTail
}

// Error names the deployment, the reason and the first failing pod.
func (f *RolloutFailure) Error() string {
	var b strings.Builder
	if f.Object != "" {
		fmt.Fprintf(&b, "%s rollout failed: ", f.Object)
	} else {
		fmt.Fprintf(&b, "deployment %q rollout failed: ", f.Deployment)
	}
	switch f.Reason {
	case DeadlineExceeded:
		b.WriteString("exceeded its progress deadline")
	case PodsFailing:
		b.WriteString("pods are failing")
	default:
		b.WriteString(f.Reason)
	}
	if msg := oneLine(f.Message, 0); msg != "" {
		b.WriteString(" (")
		b.WriteString(msg)
		b.WriteString(")")
	}
	if len(f.Pods) > 0 {
		b.WriteString(": ")
		b.WriteString(f.Pods[0].Summary())
		if more := len(f.Pods) - 1; more > 0 {
			fmt.Fprintf(&b, " (and %d more failing pod", more)
			if more > 1 {
				b.WriteString("s")
			}
			b.WriteString(")")
		}
	}
	return b.String()
}

// EventLine is one Kubernetes event as a report shows it.
type EventLine struct {
	// Time is when the event was last seen.
	Time time.Time
	// Object is "Kind/name" of the object the event is about.
	Object string
	// Type is "Normal" or "Warning".
	Type string
	// Reason is the event's short reason, such as "BackOff".
	Reason string
	// Message is the event's text.
	Message string
	// Count is how many times the event was seen (at least 1).
	Count int32
}

// LatestEvents returns the n most recent events, newest first; n <= 0 means
// all of them. Time comes from the event series, lastTimestamp or eventTime,
// as kubectl events sorts them, with firstTimestamp and the creation time as
// fallbacks; events seen at the same time keep their input order.
func LatestEvents(events []corev1.Event, n int) []EventLine {
	lines := make([]EventLine, 0, len(events))
	for i := range events {
		e := &events[i]
		count := e.Count
		if e.Series != nil {
			count = e.Series.Count
		}
		lines = append(lines, EventLine{
			Time:    eventTime(e),
			Object:  e.InvolvedObject.Kind + "/" + e.InvolvedObject.Name,
			Type:    e.Type,
			Reason:  e.Reason,
			Message: strings.TrimSpace(e.Message),
			Count:   max(count, 1),
		})
	}
	slices.SortStableFunc(lines, func(a, b EventLine) int { return b.Time.Compare(a.Time) })
	if n > 0 && len(lines) > n {
		lines = lines[:n]
	}
	return lines
}

func eventTime(e *corev1.Event) time.Time {
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.FirstTimestamp.IsZero():
		return e.FirstTimestamp.Time
	default:
		return e.CreationTimestamp.Time
	}
}

func times(n int32) string {
	if n == 1 {
		return "once"
	}
	return fmt.Sprintf("%d times", n)
}

// oneLine folds whitespace runs (newlines included) into single spaces and,
// when limit > 0, cuts the text to limit runes with an ellipsis.
func oneLine(s string, limit int) string {
	s = strings.Join(strings.Fields(s), " ")
	if limit > 0 {
		if r := []rune(s); len(r) > limit {
			s = string(r[:limit-1]) + "…"
		}
	}
	return s
}
