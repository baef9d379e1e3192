package proof

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/client-go/kubernetes"

	"github.com/ebeautything/greenlight/internal/kube"
	"github.com/ebeautything/greenlight/internal/strategy"
)

// loadDeploys is how many deploys of each kind figure 2 counts; requests
// per deploy barely vary, so a few give a stable median.
const loadDeploys = 3

// monitoredFor is the monitoring of the deploy whose extra requests give
// the per-minute figure.
const monitoredFor = 30 * time.Second

// deployCount is what one counted deploy cost.
type deployCount struct {
	requests []Request
	maxRSS   int64
}

// counted runs deploy between a Reset of the proxy and a read of what it
// recorded.
func counted(b *testing.B, p *APIProxy, deploy func() int64) deployCount {
	b.Helper()
	p.Reset()
	rss := deploy()
	// A watch a waiter just closed may still be on its way out: let the
	// proxy see the last requests before reading them.
	time.Sleep(200 * time.Millisecond)
	reqs, dropped := p.Requests()
	require.Zero(b, dropped)
	return deployCount{requests: reqs, maxRSS: rss}
}

// medianRun is the deploy whose request count is the median: its requests
// explain the figure.
func medianRun(runs []deployCount) deployCount {
	counts := make([]float64, len(runs))
	for i, r := range runs {
		counts[i] = float64(len(r.requests))
	}
	m := median(counts)
	for _, r := range runs {
		if float64(len(r.requests)) == m {
			return r
		}
	}
	return runs[0]
}

// describeKinds lists kinds as "3× create selfsubjectaccessreviews, …".
func describeKinds(kinds []Kind, limit int) string {
	var parts []string
	for i, k := range kinds {
		if i == limit {
			rest := 0
			for _, r := range kinds[i:] {
				rest += r.Count
			}
			parts = append(parts, fmt.Sprintf("%d others", rest))
			break
		}
		parts = append(parts, fmt.Sprintf("%d× %s", k.Count, k.Name))
	}
	return strings.Join(parts, ", ")
}

// wholeWhy explains the whole deploy's extra requests from what the proxy
// saw, and what would remove most of them.
func wholeWhy(ours, kubectl []Request) string {
	reviews := 0
	for _, k := range Kinds(ours) {
		if k.Name == "create selfsubjectaccessreviews" {
			reviews = k.Count
		}
	}
	why := "it checks before it changes anything and records what it did; the requests kubectl does not make: " + describeKinds(ExtraKinds(ours, kubectl), 5)
	if reviews > 1 {
		after := len(ours) - reviews + 1
		why += fmt.Sprintf("; one SelfSubjectRulesReview for the namespace instead of %d per-verb SelfSubjectAccessReviews would bring it to %d requests (%.1f× kubectl)",
			reviews, after, float64(after)/float64(max(len(kubectl), 1)))
	}
	return why
}

// BenchmarkAPILoad is figure 2: requests to the API server per deploy,
// counted by one proxy in front of the API server for every client, and
// the peak memory of the deploying processes. kubectl apply + rollout
// status is the peer of greenlight's rolling deploy, both as the whole
// `greenlight deploy` (validate, lock, deploy, verify, history; monitoring
// off) and as the strategy's apply-and-wait alone; blue-green has no peer.
func BenchmarkAPILoad(b *testing.B) {
	e := newEnv(b)
	bins := built.get(b)
	p, err := NewAPIProxy(e.c.Config())
	require.NoError(b, err)
	defer p.Close()
	kcData, err := p.Kubeconfig()
	require.NoError(b, err)
	proxyKC := filepath.Join(e.dir, "proxy.kubeconfig")
	require.NoError(b, os.WriteFile(proxyKC, kcData, 0o600))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	version := func(i int) string { return fmt.Sprintf("sampleapp:v%d", i+2) }

	// greenlight runs `greenlight deploy`; extra flags override the
	// defaults (a url, monitoring off).
	greenlight := func(ns, manifest, image, strategyName string, extra ...string) int64 {
		args := []string{"deploy",
			"--environment=staging", "--kubeconfig=" + proxyKC, "--namespace=" + ns, "--deployment=shop",
			"--image=" + image, "--manifests=" + manifest, "--strategy=" + strategyName,
			"--url=" + e.c.ServiceURL(ns, "shop"), "--monitor-duration=0", "--timeout=60", "--rollout-timeout=2m",
			"--deployment-id=proof-" + strings.TrimPrefix(image, "sampleapp:")}
		res := run(ctx, e.dir, []string{"HOME=" + e.dir}, bins.greenlight, append(args, extra...)...)
		require.NoError(b, res.err, "greenlight deploy %s: %s", image, res.out)
		return res.maxRSS
	}

	var kubectlRuns, wholeRuns, strategyRuns, blueGreenRuns, noURLRuns []deployCount
	var monitored deployCount
	for range b.N {
		// kubectl: a client-side apply of the manifests, then rollout status.
		nsK := e.namespace(b)
		manifest := e.writeManifest(b, "kubectl-v1.json", "shop", "sampleapp:v1")
		initial := e.kubectl(ctx, proxyKC, b.TempDir(), "apply", "-f", manifest, "-n", nsK)
		require.NoError(b, initial.err, initial.out)
		initial = e.kubectl(ctx, proxyKC, b.TempDir(), "rollout", "status", "deployment/shop", "-n", nsK, "--timeout=2m")
		require.NoError(b, initial.err, initial.out)
		for i := range loadDeploys {
			manifest := e.writeManifest(b, fmt.Sprintf("kubectl-%d.json", i), "shop", version(i))
			kubectlRuns = append(kubectlRuns, counted(b, p, func() int64 {
				cache := b.TempDir()
				apply := e.kubectl(ctx, proxyKC, cache, "apply", "-f", manifest, "-n", nsK)
				require.NoError(b, apply.err, apply.out)
				status := e.kubectl(ctx, proxyKC, cache, "rollout", "status", "deployment/shop", "-n", nsK, "--timeout=2m")
				require.NoError(b, status.err, status.out)
				return max(apply.maxRSS, status.maxRSS)
			}))
		}

		// greenlight deploy, the whole command, rolling.
		nsG := e.namespace(b)
		greenlight(nsG, e.writeManifest(b, "greenlight-v1.json", "shop", "sampleapp:v1"), "sampleapp:v1", "rolling")
		for i := range loadDeploys {
			manifest := e.writeManifest(b, fmt.Sprintf("greenlight-%d.json", i), "shop", version(i))
			wholeRuns = append(wholeRuns, counted(b, p, func() int64 { return greenlight(nsG, manifest, version(i), "rolling") }))
		}

		// As users run it without a url: every check goes through the API
		// server's service proxy. Then once with monitoring on, for the
		// monitoring's own requests.
		nsU := e.namespace(b)
		greenlight(nsU, e.writeManifest(b, "nourl-v1.json", "shop", "sampleapp:v1"), "sampleapp:v1", "rolling", "--url=")
		for i := range loadDeploys {
			manifest := e.writeManifest(b, fmt.Sprintf("nourl-%d.json", i), "shop", version(i))
			noURLRuns = append(noURLRuns, counted(b, p, func() int64 { return greenlight(nsU, manifest, version(i), "rolling", "--url=") }))
		}
		manifest = e.writeManifest(b, "monitored.json", "shop", version(loadDeploys))
		monitored = counted(b, p, func() int64 {
			return greenlight(nsU, manifest, version(loadDeploys), "rolling", "--url=", "--monitor-duration="+monitoredFor.String())
		})

		// The rolling strategy alone: server-side apply and the rollout wait,
		// with clients as cold as kubectl's.
		nsS := e.namespace(b)
		e.createApp(b, nsS, "shop", "sampleapp:v1")
		for i := range loadDeploys {
			data, err := os.ReadFile(e.writeManifest(b, fmt.Sprintf("strategy-%d.json", i), "shop", version(i)))
			require.NoError(b, err)
			objs, err := kube.DecodeManifests("strategy.json", data)
			require.NoError(b, err)
			strategyRuns = append(strategyRuns, counted(b, p, func() int64 {
				client, err := kubernetes.NewForConfig(p.Config())
				require.NoError(b, err)
				applier, err := kube.NewApplier(p.Config())
				require.NoError(b, err)
				r := &strategy.Rolling{Client: client, Applier: applier, Wait: kube.WaitOptions{Timeout: 2 * time.Minute}}
				_, err = r.Deploy(ctx, strategy.Target{Namespace: nsS, Deployment: "shop", Service: "shop", Image: version(i), Manifests: objs})
				require.NoError(b, err)
				return 0
			}))
		}

		// greenlight deploy, blue-green: no kubectl command does this.
		nsB := e.namespace(b)
		greenlight(nsB, e.writeManifest(b, "bluegreen-v1.json", "shop", "sampleapp:v1"), "sampleapp:v1", "blue-green")
		for i := range loadDeploys {
			manifest := e.writeManifest(b, fmt.Sprintf("bluegreen-%d.json", i), "shop", version(i))
			blueGreenRuns = append(blueGreenRuns, counted(b, p, func() int64 { return greenlight(nsB, manifest, version(i), "blue-green") }))
		}
	}
	b.StopTimer()

	count := func(runs []deployCount) float64 { return float64(len(medianRun(runs).requests)) }
	peakRSS := func(runs []deployCount) float64 {
		var v []float64
		for _, r := range runs {
			v = append(v, float64(r.maxRSS)/mib)
		}
		return median(v)
	}
	k, whole, strat, bg := medianRun(kubectlRuns), medianRun(wholeRuns), medianRun(strategyRuns), medianRun(blueGreenRuns)
	perMinute := (float64(len(monitored.requests)) - count(noURLRuns)) * float64(time.Minute) / float64(monitoredFor)
	b.Logf("greenlight deploy without url, monitored %s (%d requests): %s", monitoredFor, len(monitored.requests), describeKinds(Kinds(monitored.requests), 20))
	b.ReportMetric(count(wholeRuns), "greenlight-requests/deploy")
	b.ReportMetric(count(kubectlRuns), "kubectl-requests/deploy")
	peer := "kubectl apply + rollout status"
	book.add(
		Figure{Order: 21, Name: "API requests per rolling deploy: `greenlight deploy` (validate, lock, deploy, verify, history)", Unit: "requests",
			Ours: count(wholeRuns), Peer: peer, PeerValue: count(kubectlRuns), Judgement: AgainstPeer,
			Why: wholeWhy(whole.requests, k.requests)},
		Figure{Order: 22, Name: "API requests per rolling deploy: apply and rollout wait alone (strategy.Rolling)", Unit: "requests",
			Ours: count(strategyRuns), Peer: peer, PeerValue: count(kubectlRuns), Judgement: AgainstPeer,
			Why: "the requests kubectl does not make: " + describeKinds(ExtraKinds(strat.requests, k.requests), 4) +
				" (kubectl makes more of: " + describeKinds(ExtraKinds(k.requests, strat.requests), 3) + "); the rollout wait also watches ReplicaSets and pods to fail fast on stuck pods, " +
				"and a server-side apply sends the unchanged Service too; what would close it: drop the strategy's own reads of the Deployment before the apply (which reads it again) and after the wait (whose cache holds it)"},
		Figure{Order: 23, Name: "API requests per blue-green deploy: `greenlight deploy --strategy=blue-green`", Unit: "requests",
			Ours: count(blueGreenRuns)},
		Figure{Order: 24, Name: "API requests per rolling deploy without `url` (checks through the API server's service proxy), monitoring off", Unit: "requests",
			Ours: count(noURLRuns), Peer: peer, PeerValue: count(kubectlRuns), Judgement: AgainstPeer,
			Why: "every health check of verify is a request through the API server's service proxy; kubectl checks nothing: " + describeKinds(ExtraKinds(medianRun(noURLRuns).requests, k.requests), 5)},
		Figure{Order: 25, Name: fmt.Sprintf("API requests per minute of monitoring without `url` (default monitor-interval 10 s; measured over %s beyond the deploy above)", monitoredFor), Unit: "requests/min",
			Ours: perMinute},
		Figure{Order: 51, Name: "peak memory of one rolling deploy (max RSS of the process)", Unit: "MiB",
			Ours: peakRSS(wholeRuns), Peer: "kubectl apply, rollout status (larger of the two)", PeerValue: peakRSS(kubectlRuns), Judgement: AgainstPeer,
			Why: "one greenlight process runs the whole deploy, so its peak holds the REST mapper, the rollout wait's informer caches and the report at once, where kubectl's two processes each hold part"},
	)
	b.Logf("kubectl apply + rollout status (%d requests): %s", len(k.requests), describeKinds(Kinds(k.requests), 20))
	b.Logf("greenlight deploy, rolling (%d requests): %s", len(whole.requests), describeKinds(Kinds(whole.requests), 30))
	b.Logf("strategy.Rolling (%d requests): %s", len(strat.requests), describeKinds(Kinds(strat.requests), 20))
	b.Logf("greenlight deploy, blue-green (%d requests): %s", len(bg.requests), describeKinds(Kinds(bg.requests), 30))
}
