package kube

import (
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestLogTargets(t *testing.T) {
	t.Parallel()
	pod := func(name string, phase corev1.PodPhase, statuses ...corev1.ContainerStatus) corev1.Pod {
		return corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}, {Name: "sidecar"}}},
			Status:     corev1.PodStatus{Phase: phase, ContainerStatuses: statuses},
		}
	}
	crashLoop := corev1.ContainerStatus{Name: "app", RestartCount: 4,
		State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
		LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1}}}
	imagePull := corev1.ContainerStatus{Name: "app", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff"}}}
	restartedSidecar := corev1.ContainerStatus{Name: "sidecar", RestartCount: 1, Ready: true,
		State:                corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
		LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "OOMKilled"}}}
	running := corev1.ContainerStatus{Name: "app", Ready: false, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}
	terminating := pod("c", corev1.PodRunning, running)
	terminating.DeletionTimestamp = &metav1.Time{}

	for _, tc := range []struct {
		name string
		pods []corev1.Pod
		max  int
		want []LogTarget
	}{
		{"a crash loop is read from its previous instance",
			[]corev1.Pod{pod("a", corev1.PodRunning, crashLoop)}, 4,
			[]LogTarget{{Pod: "a", Container: "app", Previous: true}}},
		{"an image that never pulled has no log; the restarted sidecar of another pod has",
			[]corev1.Pod{pod("a", corev1.PodPending, imagePull), pod("b", corev1.PodRunning, running, restartedSidecar)}, 4,
			[]LogTarget{{Pod: "b", Container: "sidecar", Previous: true}}},
		{"failing before restarted, each container once",
			[]corev1.Pod{pod("a", corev1.PodRunning, restartedSidecar), pod("b", corev1.PodRunning, crashLoop)}, 4,
			[]LogTarget{{Pod: "b", Container: "app", Previous: true}, {Pod: "a", Container: "sidecar", Previous: true}}},
		{"running pods that failed checks: each first container, not terminating ones",
			[]corev1.Pod{pod("a", corev1.PodRunning, running), pod("b", corev1.PodRunning, running), terminating}, 4,
			[]LogTarget{{Pod: "a", Container: "app"}, {Pod: "b", Container: "app"}}},
		{"bounded",
			[]corev1.Pod{pod("a", corev1.PodRunning, running), pod("b", corev1.PodRunning, running)}, 1,
			[]LogTarget{{Pod: "a", Container: "app"}}},
		{"pending pods only: nothing to read",
			[]corev1.Pod{pod("a", corev1.PodPending, imagePull)}, 4, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tc.want, LogTargets(tc.pods, tc.max))
		})
	}
}

func TestLastLines(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		text string
		n    int
		want string
	}{
		{"", 50, ""},
		{"one\n", 50, "one"},
		{"a\nb\nc\n", 2, "b\nc"},
		{"a\nb\nc", 3, "a\nb\nc"},
		{"a\n\n\n", 5, "a"},
		{"a\nb", 0, ""},
	} {
		assert.Equal(t, tc.want, LastLines(tc.text, tc.n), "%q, %d", tc.text, tc.n)
	}
}
