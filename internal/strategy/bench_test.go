package strategy

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"

	"github.com/ebeautything/greenlight/internal/kube"
	"github.com/ebeautything/greenlight/internal/proof"
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

// BenchmarkFiveWorkloadRequests counts the API requests of one deploy of
// five workloads (API and worker Deployments, a StatefulSet, a pre-deploy
// migration Job and a CronJob) on a real node, at one proxy in front of the
// API server, the way the proof package's API-load figures count: Reset
// before the deploy, read after. greenlight is strategy.Rolling with cold
// clients; its peer is what a kubectl user runs for the same outcome:
// delete the old migration Job (a Job's template cannot change), apply it,
// `kubectl wait --for=condition=complete` it, apply the rest, then one
// `kubectl rollout status` per Deployment and StatefulSet (a CronJob has
// none). Each kubectl command is a fresh process with a cold discovery
// cache, as in a CI job. Neither side's figure includes the first deploy.
func BenchmarkFiveWorkloadRequests(b *testing.B) {
	e := realNodeEnv(b)
	p, err := proof.NewAPIProxy(e.c.Config())
	require.NoError(b, err)
	defer p.Close()
	kc, err := p.Kubeconfig()
	require.NoError(b, err)
	dir := b.TempDir()
	kubeconfig := filepath.Join(dir, "proxy.kubeconfig")
	require.NoError(b, os.WriteFile(kubeconfig, kc, 0o600))
	kubectlBin := e.c.Binaries().Kubectl
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()

	kubectl := func(ns string, args ...string) {
		cmd := exec.CommandContext(ctx, kubectlBin, append(args, "-n", ns, "--kubeconfig="+kubeconfig, "--cache-dir="+b.TempDir())...)
		cmd.Env = []string{"HOME=" + dir}
		out, err := cmd.CombinedOutput()
		require.NoError(b, err, "kubectl %v: %s", args, out)
	}
	writeList := func(name string, objs []*unstructured.Unstructured) string {
		items := make([]any, 0, len(objs))
		for _, o := range objs {
			items = append(items, o.Object)
		}
		data, err := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "List", "items": items})
		require.NoError(b, err)
		path := filepath.Join(dir, name)
		require.NoError(b, os.WriteFile(path, data, 0o644))
		return path
	}
	kubectlDeploy := func(ns, tag string) {
		pre, rest := splitPreDeploy(unitManifests(b, tag, testcluster.UnitFaults{}))
		kubectl(ns, "delete", "job", "migrate", "--ignore-not-found", "--wait=true")
		kubectl(ns, "apply", "-f", writeList("pre-"+tag+".json", pre))
		kubectl(ns, "wait", "--for=condition=complete", "job/migrate", "--timeout=2m")
		kubectl(ns, "apply", "-f", writeList("rest-"+tag+".json", rest))
		for _, w := range []string{"deployment/api", "deployment/worker", "statefulset/cache"} {
			kubectl(ns, "rollout", "status", w, "--timeout=2m")
		}
	}
	greenlightDeploy := func(ns, tag string) {
		client, err := kubernetes.NewForConfig(p.Config())
		require.NoError(b, err)
		applier, err := kube.NewApplier(p.Config())
		require.NoError(b, err)
		r := &Rolling{Client: client, Applier: applier, Wait: kube.WaitOptions{Timeout: 2 * time.Minute}}
		d, err := r.Deploy(ctx, Target{Namespace: ns, Deployment: "api", Service: "api", Image: "ghcr.io/stefanprodan/podinfo:" + tag, Manifests: unitManifests(b, tag, testcluster.UnitFaults{})})
		require.NoError(b, err, "steps: %+v", d.Steps)
	}
	counted := func(deploy func()) []proof.Request {
		p.Reset()
		deploy()
		// A watch a waiter just closed may still be on its way out.
		time.Sleep(200 * time.Millisecond)
		reqs, dropped := p.Requests()
		require.Zero(b, dropped)
		return reqs
	}

	const deploys = 3
	var ours, theirs []float64
	var lastOurs, lastTheirs []proof.Request
	nsK, nsG := e.ns, e.c.NewNamespace(b)
	kubectlDeploy(nsK, "1.0.0")
	greenlightDeploy(nsG, "1.0.0")
	b.ResetTimer()
	for n := range b.N {
		for i := range deploys {
			tag := fmt.Sprintf("1.%d.%d", n+1, i)
			lastTheirs = counted(func() { kubectlDeploy(nsK, tag) })
			lastOurs = counted(func() { greenlightDeploy(nsG, tag) })
			theirs = append(theirs, float64(len(lastTheirs)))
			ours = append(ours, float64(len(lastOurs)))
		}
	}
	b.StopTimer()
	b.ReportMetric(percentile(ours, 0.5), "greenlight-requests/deploy")
	b.ReportMetric(percentile(theirs, 0.5), "kubectl-requests/deploy")
	b.Logf("five-workload deploy, %d trials each: greenlight median %.0f (min %.0f, max %.0f); kubectl median %.0f (min %.0f, max %.0f)",
		len(ours), percentile(ours, 0.5), percentile(ours, 0), percentile(ours, 1), percentile(theirs, 0.5), percentile(theirs, 0), percentile(theirs, 1))
	b.Logf("greenlight (last, %d): %v", len(lastOurs), proof.Kinds(lastOurs))
	b.Logf("kubectl (last, %d): %v", len(lastTheirs), proof.Kinds(lastTheirs))
}
