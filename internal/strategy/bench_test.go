package strategy

import (
	"context"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ebeautything/greenlight/internal/kube"
	"github.com/ebeautything/greenlight/internal/testcluster"
)

// benchIterationTimeout bounds one iteration's cluster work, so a stuck
// rollout fails the benchmark instead of hanging it.
const benchIterationTimeout = time.Minute

// percentile is the nearest-rank p-th percentile (0 < p ≤ 1) of samples,
// 0 when there are none.
func percentile(samples []float64, p float64) float64 {
	if len(samples) == 0 {
		return 0
	}
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	rank := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkRolloutDetection measures how long after a Deployment's status
// becomes complete kube.WaitRollout returns: the lag a deploy adds on top of
// the rollout itself. Negative samples mean WaitRollout saw the status first.
func BenchmarkRolloutDetection(b *testing.B) {
	e := newEnv(b)
	e.createApp(b, "sampleapp:v1")
	images := []string{"sampleapp:v2", "sampleapp:v1"}
	var lags []float64

	b.ResetTimer()
	for i := range b.N {
		ctx, cancel := context.WithTimeout(context.Background(), benchIterationTimeout)
		change, err := kube.SetImage(ctx, e.client, e.ns, "shop", "", images[i%2], nil)
		require.NoError(b, err)
		require.False(b, change.Unchanged)

		type seen struct {
			at  time.Time
			err error
		}
		complete := make(chan seen, 1)
		go func() {
			at, err := testcluster.WatchRolloutComplete(ctx, e.client, e.ns, "shop", change.Generation)
			complete <- seen{at, err}
		}()
		_, err = kube.WaitRollout(ctx, e.client, e.ns, "shop", kube.WaitOptions{})
		returned := time.Now()
		require.NoError(b, err)
		s := <-complete
		cancel()
		require.NoError(b, s.err)
		lags = append(lags, ms(returned.Sub(s.at)))
	}
	b.StopTimer()
	b.ReportMetric(percentile(lags, 0.5), "detect-p50-ms")
	b.ReportMetric(percentile(lags, 0.95), "detect-p95-ms")
}

// BenchmarkBlueGreenRollbackSwitch measures a blue-green rollback's switch
// with both colors running: one selector write plus the confirmation that
// the Service's endpoints list only the previous color.
func BenchmarkBlueGreenRollbackSwitch(b *testing.B) {
	e := newEnv(b)
	e.createApp(b, "sampleapp:v1")
	a, err := kube.NewApplier(e.c.Config())
	require.NoError(b, err)
	bg := &BlueGreen{Client: e.client, Applier: a, Wait: kube.WaitOptions{Timeout: time.Minute}}
	ctx := context.Background()
	target := Target{Namespace: e.ns, Deployment: "shop", Service: "shop", Image: "sampleapp:v2"}

	// Adopt the plain Deployment as blue, then deploy green: the rollback
	// under test is green → blue, as every one after the first deploy is.
	first, err := bg.Deploy(ctx, target)
	require.NoError(b, err)
	require.NoError(b, bg.Finish(ctx, target, &first))
	target.Image = "sampleapp:v3"
	d, err := bg.Deploy(ctx, target)
	require.NoError(b, err)
	require.Equal(b, Green, d.Color)
	svc, err := e.client.CoreV1().Services(e.ns).Get(ctx, "shop", metav1.GetOptions{})
	require.NoError(b, err)
	forward := svc.Spec.Selector
	var switches []float64

	b.ResetTimer()
	for range b.N {
		iter, cancel := context.WithTimeout(ctx, benchIterationTimeout)
		require.NoError(b, bg.Rollback(iter, target, &d))
		b.StopTimer()
		switches = append(switches, ms(d.SwitchTime))

		// Bring green back and switch to it again, untimed: Rollback scaled it to zero.
		require.NoError(b, kube.ScaleDeployment(iter, e.client, e.ns, d.Deployment, 2))
		_, err := kube.WaitRollout(iter, e.client, e.ns, d.Deployment, kube.WaitOptions{})
		require.NoError(b, err)
		_, err = kube.SwitchSelector(iter, e.client, e.ns, "shop", forward)
		require.NoError(b, err)
		_, err = kube.WaitEndpoints(iter, e.client, e.ns, "shop", forward, 2, 0)
		require.NoError(b, err)
		d.Switched = true
		cancel()
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(percentile(switches, 0.5), "switch-p50-ms")
	b.ReportMetric(percentile(switches, 0.95), "switch-p95-ms")
}
