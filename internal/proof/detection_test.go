package proof

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ebeautything/greenlight/internal/kube"
	"github.com/ebeautything/greenlight/internal/testcluster"
)

// detectionRollouts is how many rollouts figure 1 times: enough for a
// nearest-rank p95 that is not the maximum.
const detectionRollouts = 20

// detectionWhy is printed if greenlight's wait ever trails kubectl's.
const detectionWhy = "both react to the same Deployment watch event, but greenlight's wait also receives the ReplicaSet and pod events of the same moment (three informers, to fail fast on stuck pods) and evaluates after each, which can put the Deployment's event behind them"

// BenchmarkRolloutDetection is figure 1: on the same rollouts, how long
// after the Deployment's status became complete (seen by a watch of its
// own) kube.WaitRollout returns, and how long `kubectl rollout status`
// takes to exit. Both wait on every rollout at once, from its start.
func BenchmarkRolloutDetection(b *testing.B) {
	e := newEnv(b)
	ns := e.namespace(b)
	e.createApp(b, ns, "shop", "sampleapp:v1")
	images := []string{"sampleapp:v2", "sampleapp:v1"}
	var ours, theirs []float64

	for range b.N {
		ours, theirs = ours[:0], theirs[:0]
		for i := range detectionRollouts {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			change, err := kube.SetImage(ctx, e.client, ns, "shop", "", images[i%2], nil)
			require.NoError(b, err)
			require.False(b, change.Unchanged)

			type seen struct {
				at  time.Time
				err error
			}
			complete := make(chan seen, 1)
			go func() {
				at, err := testcluster.WatchRolloutComplete(ctx, e.client, ns, "shop", change.Generation)
				complete <- seen{at, err}
			}()
			exited := make(chan proc, 1)
			go func() {
				exited <- e.kubectl(ctx, e.kubeconfig, b.TempDir(), "rollout", "status", "deployment/shop", "-n", ns, "--timeout=2m")
			}()
			_, err = kube.WaitRollout(ctx, e.client, ns, "shop", kube.WaitOptions{})
			returned := time.Now()
			require.NoError(b, err)
			s := <-complete
			k := <-exited
			cancel()
			require.NoError(b, s.err)
			require.NoError(b, k.err, "kubectl rollout status: %s", k.out)
			ours = append(ours, ms(returned.Sub(s.at)))
			theirs = append(theirs, ms(k.end.Sub(s.at)))
		}
	}
	b.StopTimer()
	b.ReportMetric(median(ours), "ours-p50-ms")
	b.ReportMetric(median(theirs), "kubectl-p50-ms")
	peer := "kubectl rollout status"
	book.add(
		Figure{Order: 11, Name: fmt.Sprintf("rollout detection after the status is complete, median of %d rollouts", len(ours)), Unit: "ms",
			Ours: median(ours), Peer: peer, PeerValue: median(theirs), Judgement: AgainstPeer,
			Why: detectionWhy},
		Figure{Order: 12, Name: fmt.Sprintf("rollout detection after the status is complete, p95 of %d rollouts", len(ours)), Unit: "ms",
			Ours: Percentile(ours, 0.95), Peer: peer, PeerValue: Percentile(theirs, 0.95), Judgement: AgainstPeer,
			Why: detectionWhy},
	)
	b.Logf("detection lag ms, greenlight: %v", ours)
	b.Logf("detection lag ms, kubectl:    %v", theirs)
}
