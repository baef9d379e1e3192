package pipeline

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ebeautything/greenlight/internal/monitor"
	"github.com/ebeautything/greenlight/internal/promsource"
)

func TestPrometheusServingSince(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)
	started := metav1.NewTime(created.Add(2 * time.Second))
	ready := metav1.NewTime(created.Add(7 * time.Second))
	for _, tc := range []struct {
		name string
		pod  corev1.Pod
		want time.Time
	}{
		{"ready", corev1.Pod{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(created)}, Status: corev1.PodStatus{
			StartTime:  &started,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: ready}},
		}}, ready.Time},
		{"started, not ready", corev1.Pod{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(created)}, Status: corev1.PodStatus{
			StartTime:  &started,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse, LastTransitionTime: ready}},
		}}, started.Time},
		{"only created", corev1.Pod{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(created)}}, created},
	} {
		assert.Equal(t, tc.want, servingSince(tc.pod), tc.name)
	}
}

func TestPrometheusFindingsOfEverySource(t *testing.T) {
	t.Parallel()
	w := PrometheusWindowOf(promsource.Window{Unread: true, Findings: []string{"unreachable at http://127.0.0.1:9: connection refused"}})
	assert.True(t, w.Unread)
	assert.Equal(t, []string{"unreachable at http://127.0.0.1:9: connection refused"}, w.Findings)

	assert.Equal(t, "; prometheus: not read (4 windows unread)", trafficFinding(&monitor.Traffic{Source: monitor.SourcePrometheus, Unread: 4}))
	assert.Equal(t, "; pod metrics: 300 requests, 30.0 req/s, 5xx 2.0%, p95 50ms",
		trafficFinding(&monitor.Traffic{Source: monitor.SourcePodMetrics, Windows: 1, Judged: 1, Requests: 300, Throughput: 30, ErrorRate: 0.02, HasLatency: true, P95: 50 * time.Millisecond}))
	assert.Equal(t, "; prometheus: 300 requests, 30.0 req/s, 5xx 2.0%, 2 windows unread",
		trafficFinding(&monitor.Traffic{Source: monitor.SourcePrometheus, Windows: 1, Judged: 1, Requests: 300, Throughput: 30, ErrorRate: 0.02, Unread: 2}))
}
