package proof

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ebeautything/greenlight/internal/kube"
	"github.com/ebeautything/greenlight/internal/strategy"
)

const (
	// switchLoadRequests at switchLoadRate bounds the load run at 60 s, room
	// on a busy machine for a quiet start, a blue-green deploy and its
	// rollback; the run stops sending afterTail after the rollback's switch
	// window closes.
	switchLoadRequests = 12000
	switchLoadRate     = 200
	afterTail          = 2 * time.Second
	// drainAllowance extends a switch window past its last step by the time
	// a deleted pod may keep serving, so answers from draining pods count
	// as the switch's.
	drainAllowance = time.Second
)

// window is the part of a load run a switch could disturb: from its first
// step's start to drainAllowance after its last step's end.
func window(steps []strategy.Step, from string) (time.Time, time.Time, error) {
	var start, end time.Time
	for _, s := range steps {
		if s.Name == from && start.IsZero() {
			start = s.Started
		}
		if !start.IsZero() {
			end = s.Started.Add(s.Duration)
		}
	}
	if start.IsZero() {
		return start, end, fmt.Errorf("no step %q among %d steps", from, len(steps))
	}
	return start, end.Add(drainAllowance), nil
}

// BenchmarkZeroDowntimeSwitch is figure 4: a bounded load (at most 12000
// requests at 200/s, loopback only) through the strict router (one
// endpoint per request, endpoint changes applied 1 s late, as kube-proxy
// does) while greenlight
// deploys a new color and then rolls it back: failed requests, and latency
// during each switch against the latency before any of it.
func BenchmarkZeroDowntimeSwitch(b *testing.B) {
	e := newEnv(b)
	var shots []Shot
	var loadStart, deployStart time.Time
	var deployed strategy.Deployed
	var deployWindow, rollbackWindow [2]time.Time
	for range b.N {
		ns := e.namespace(b)
		e.createApp(b, ns, "shop", "sampleapp:v1")
		applier, err := kube.NewApplier(e.c.Config())
		require.NoError(b, err)
		bg := &strategy.BlueGreen{Client: e.client, Applier: applier, Wait: kube.WaitOptions{Timeout: 2 * time.Minute}}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		loadCtx, stopLoad := context.WithCancel(ctx)
		target := strategy.Target{Namespace: ns, Deployment: "shop", Service: "shop", Image: "sampleapp:v2"}
		// The first blue-green deploy adopts the plain Deployment; the
		// switches under load are the ones every later deploy makes.
		first, err := bg.Deploy(ctx, target)
		require.NoError(b, err)
		require.NoError(b, bg.Finish(ctx, target, &first))

		// The strict router learns endpoints a second late: wait until it
		// serves the app, so the baseline is not its start-up.
		require.Eventually(b, func() bool {
			for range 10 {
				if v, ok := answers(e.c.StrictServiceURL(ns, "shop") + "/health"); !ok || v == "" {
					return false
				}
			}
			return true
		}, time.Minute, 100*time.Millisecond, "the strict router serves the app")

		loaded := make(chan []Shot, 1)
		loadStart = time.Now()
		go func() {
			s, err := Load(loadCtx, LoadOptions{URL: e.c.StrictServiceURL(ns, "shop") + "/api/payments", Requests: switchLoadRequests, Rate: switchLoadRate, Concurrency: 16})
			if err != nil {
				b.Error(err)
			}
			loaded <- s
		}()
		time.Sleep(3 * time.Second) // the baseline: answers before anything changes
		target.Image = "sampleapp:v3"
		deployStart = time.Now()
		deployed, err = bg.Deploy(ctx, target)
		require.NoError(b, err)
		deployWindow[0], deployWindow[1], err = window(deployed.Steps, "switch")
		require.NoError(b, err)
		time.Sleep(2 * time.Second)
		steps := len(deployed.Steps)
		require.NoError(b, bg.Rollback(ctx, target, &deployed))
		rollbackWindow[0], rollbackWindow[1], err = window(deployed.Steps[steps:], "switch back")
		require.NoError(b, err)
		time.Sleep(time.Until(rollbackWindow[1].Add(afterTail)))
		stopLoad()
		shots = <-loaded
		cancel()
		// The load must cover the whole deploy and rollback, not stop early.
		require.NotEmpty(b, shots)
		require.True(b, shots[0].Start.Before(deployStart), "the load started before the deploy")
		require.True(b, shots[len(shots)-1].Start.After(rollbackWindow[1]), "the load ran past the rollback's switch window (%d of at most %d requests sent)", len(shots), switchLoadRequests)
		require.Less(b, len(shots), switchLoadRequests, "the load was stopped by the test, not by running out of requests")
	}
	b.StopTimer()

	all := Summarize(shots, loadStart, time.Now())
	before := Summarize(shots, loadStart, deployStart)
	during := Summarize(shots, deployWindow[0], deployWindow[1])
	back := Summarize(shots, rollbackWindow[0], rollbackWindow[1])
	b.ReportMetric(float64(all.Failed), "failed-requests")
	why := failureCauses(shots)
	b.Logf("failed requests by cause: %s", why)
	b.Logf("before: %+v", before)
	b.Logf("deploy switch %s: %+v", deployWindow[1].Sub(deployWindow[0]).Round(time.Millisecond), during)
	b.Logf("rollback switch %s: %+v", rollbackWindow[1].Sub(rollbackWindow[0]).Round(time.Millisecond), back)
	before1 := fmt.Sprintf("before the deploy (%d requests)", before.Count)
	book.add(
		Figure{Order: 41, Name: fmt.Sprintf("failed requests of %d across a blue-green deploy and its rollback, through a router like kube-proxy (no retries, endpoint changes 1 s late)", all.Count),
			Unit: "requests", Ours: float64(all.Failed), Peer: "target", PeerValue: 0, Judgement: AgainstTarget,
			Why: fmt.Sprintf("%d failed during the deploy's switch, %d during the rollback's; by cause: %s", during.Failed, back.Failed, why)},
		Figure{Order: 42, Name: fmt.Sprintf("latency p50 during the deploy's switch (%d requests in %s)", during.Count, deployWindow[1].Sub(deployWindow[0]).Round(time.Millisecond)),
			Unit: "ms", Ours: during.P50, Peer: before1, PeerValue: before.P50},
		Figure{Order: 43, Name: "latency p95 during the deploy's switch", Unit: "ms", Ours: during.P95, Peer: before1, PeerValue: before.P95},
		Figure{Order: 44, Name: "latency p99 during the deploy's switch", Unit: "ms", Ours: during.P99, Peer: before1, PeerValue: before.P99},
		Figure{Order: 45, Name: fmt.Sprintf("latency p50 during the rollback's switch (%d requests in %s)", back.Count, rollbackWindow[1].Sub(rollbackWindow[0]).Round(time.Millisecond)),
			Unit: "ms", Ours: back.P50, Peer: before1, PeerValue: before.P50},
		Figure{Order: 46, Name: "latency p95 during the rollback's switch", Unit: "ms", Ours: back.P95, Peer: before1, PeerValue: before.P95},
		Figure{Order: 47, Name: "latency p99 during the rollback's switch", Unit: "ms", Ours: back.P99, Peer: before1, PeerValue: before.P99},
	)
}

// failureCauses groups the failed requests by what came back, so the table
// says whether they were refused connections (a pod gone before the router
// dropped it), 502s or 503s.
func failureCauses(shots []Shot) string {
	causes := map[string]int{}
	for _, s := range shots {
		switch {
		case s.OK():
			continue
		case s.Err != "":
			causes["transport error"]++
		default:
			causes[fmt.Sprintf("HTTP %d from %s", s.Status, cmp.Or(s.Version, "the router"))]++
		}
	}
	if len(causes) == 0 {
		return "none"
	}
	var parts []string
	for _, c := range slices.Sorted(maps.Keys(causes)) {
		parts = append(parts, fmt.Sprintf("%d× %s", causes[c], c))
	}
	return strings.Join(parts, ", ")
}

// answers asks url once and returns the version that answered, and
// whether the answer was healthy.
func answers(url string) (string, bool) {
	resp, err := http.Get(url)
	if err != nil {
		return "", false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Header.Get("X-App-Version"), resp.StatusCode == http.StatusOK
}
