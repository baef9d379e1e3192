package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/ebeautything/greenlight/internal/config"
	"github.com/ebeautything/greenlight/internal/event"
	"github.com/ebeautything/greenlight/internal/kube"
	"github.com/ebeautything/greenlight/internal/testcluster"
)

// These tests run pipeline.Run in the test's own process against the real
// test cluster, so `go test -race` sees the orchestrator's goroutines (event
// sinks, the lock's renewal, the monitor, cancellation) racing for real.

var cluster testcluster.Shared

func TestMain(m *testing.M) { os.Exit(testcluster.Main(m, &cluster)) }

// recorder is a sink that keeps every event and may act on one.
type recorder struct {
	mu     sync.Mutex
	events []event.Event
	// on, when set, sees each event as it arrives; it must not block.
	on func(event.Event)
}

func (r *recorder) Handle(e event.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	on := r.on
	r.mu.Unlock()
	if on != nil {
		on(e)
	}
}

func (r *recorder) kinds() []event.Kind {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []event.Kind
	for _, e := range r.events {
		out = append(out, e.Kind)
	}
	return out
}

// world is one test's namespace with the sample app "shop" at v1.
type world struct {
	c      *testcluster.Cluster
	ns     string
	dir    string
	labels map[string]string
}

func newWorld(t *testing.T) world {
	t.Helper()
	c := cluster.Get(t)
	w := world{c: c, ns: c.NewNamespace(t), dir: t.TempDir(), labels: map[string]string{"app": "shop"}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err := c.Client().AppsV1().Deployments(w.ns).Create(ctx, testcluster.SampleDeployment("shop", "sampleapp:v1", w.labels), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = c.Client().CoreV1().Services(w.ns).Create(ctx, testcluster.SampleService("shop", w.labels), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = kube.WaitRollout(ctx, c.Client(), w.ns, "shop", kube.WaitOptions{})
	require.NoError(t, err)
	w.waitServing(t, "v1")
	return w
}

// inputs are the deploy's inputs as a user writes them; extra overrides.
func (w world) inputs(t *testing.T, strategyName, image string, extra map[string]string, env ...corev1.EnvVar) config.Config {
	t.Helper()
	data, err := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "List", "items": []any{
		testcluster.SampleDeployment("shop", "sampleapp:placeholder", w.labels, env...), testcluster.SampleService("shop", w.labels)}})
	require.NoError(t, err)
	manifest := filepath.Join(w.dir, "shop.json")
	require.NoError(t, os.WriteFile(manifest, data, 0o600))
	in := map[string]string{
		"environment": "staging", "strategy": strategyName, "kubeconfig": string(w.c.Kubeconfig()),
		"namespace": w.ns, "deployment": "shop", "image": image, "manifests": manifest,
		"monitor-duration": "3s", "monitor-interval": "200ms", "timeout": "30", "rollout-timeout": "2m",
		"deployment-id": "run-" + w.ns, "config": os.DevNull,
	}
	for k, v := range extra {
		in[k] = v
	}
	cfg, err := config.Load(config.MapLookup(in), os.ReadFile, "")
	require.NoError(t, err)
	return cfg
}

// lockOptions are the Lease timings of the run; short, so renewal shows.
type lockOptions struct{ lease, renew time.Duration }

// run runs the pipeline in-process with the lock the CLI takes and a
// recorder as its sink.
func (w world) run(ctx context.Context, t *testing.T, cfg config.Config, rec *recorder, lo lockOptions) *Outcome {
	t.Helper()
	kc, err := kube.LoadKubeconfig(cfg.Kubeconfig.Reveal(), "")
	require.NoError(t, err)
	applier, err := kube.NewApplier(kc.REST)
	require.NoError(t, err)
	client := w.c.Client()
	return Run(ctx, cfg, Deps{
		Client: client, REST: kc.REST, Applier: applier, Files: kube.OSFiles{}, ReadFile: os.ReadFile, Sink: rec,
		Lock: func(ctx context.Context, warn func(string)) (func(), error) {
			lock, err := kube.AcquireLock(ctx, client, kube.LockOptions{Namespace: cfg.Namespace, Deployment: cfg.Deployment,
				Holder: kube.Holder{ID: "test-" + w.ns}, LeaseDuration: lo.lease, RenewEvery: lo.renew, Wait: -1})
			if err != nil {
				return nil, err
			}
			return func() {
				rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if err := lock.Release(rctx); err != nil {
					warn("release the deploy lock: " + err.Error())
				}
			}, nil
		},
	})
}

// waitServing waits until ten answers in a row through the router are
// healthy and come from version.
func (w world) waitServing(t *testing.T, version string) {
	t.Helper()
	url := w.c.ServiceURL(w.ns, "shop") + "/health"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var last string
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		for range 10 {
			v, code := get(ctx, url)
			last = v
			if v != version || code != http.StatusOK {
				return false, nil
			}
		}
		return true, nil
	})
	require.NoError(t, err, "waiting for %s to serve alone; last answer from %q", version, last)
}

// get asks the sample app which version answered.
func get(ctx context.Context, url string) (string, int) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", 0
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", 0
	}
	defer resp.Body.Close()
	var body struct{ Version string }
	data, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(data, &body)
	return body.Version, resp.StatusCode
}

// assertUnlocked checks the run let go of its deploy lock.
func (w world) assertUnlocked(t *testing.T) {
	t.Helper()
	holder, _, err := kube.ReadLock(context.Background(), w.c.Client(), w.ns, kube.LockName("shop"))
	require.NoError(t, err)
	assert.Nil(t, holder, "the deploy lock is free after the run")
}

func stageOutcome(o *Outcome, s event.Stage) event.Outcome {
	for _, r := range o.Stages {
		if r.Stage == s {
			return r.Outcome
		}
	}
	return ""
}

// TestRunInProcess deploys and rolls back with both strategies: a healthy
// v2 ends serving, a v2 that starts failing under monitoring is rolled
// back and v1 serves alone again. The blue-green runs leave url unset, so
// their checks go through the API server's service proxy.
func TestRunInProcess(t *testing.T) {
	t.Parallel()
	failing := corev1.EnvVar{Name: "SAMPLEAPP_FAIL_AFTER", Value: "4s"}
	tests := []struct {
		name, strategy string
		env            []corev1.EnvVar
		url            bool
		status         event.Status
		serving        string
	}{
		{"rolling succeeds", "rolling", nil, true, event.StatusSucceeded, "v2"},
		{"blue-green succeeds through the service proxy", "blue-green", nil, false, event.StatusSucceeded, "v2"},
		{"rolling rolls back", "rolling", []corev1.EnvVar{failing}, true, event.StatusRolledBack, "v1"},
		{"blue-green rolls back", "blue-green", []corev1.EnvVar{failing}, false, event.StatusRolledBack, "v1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			extra := map[string]string{"monitor-duration": "20s"}
			if tt.status == event.StatusSucceeded {
				extra["monitor-duration"] = "3s"
			}
			if tt.url {
				extra["url"] = w.c.ServiceURL(w.ns, "shop")
			}
			cfg := w.inputs(t, tt.strategy, "sampleapp:v2", extra, tt.env...)
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			rec := &recorder{}
			out := w.run(ctx, t, cfg, rec, lockOptions{})
			require.Equal(t, tt.status, out.Result.Status, "%s", out.Result.Reason)
			w.waitServing(t, tt.serving)
			w.assertUnlocked(t)
			kinds := rec.kinds()
			require.NotEmpty(t, kinds)
			assert.Equal(t, event.RunStarted, kinds[0])
			assert.Equal(t, event.RunFinished, kinds[len(kinds)-1])
			if tt.status == event.StatusRolledBack {
				assert.Contains(t, kinds, event.RollbackStarted)
				assert.Equal(t, event.Succeeded, stageOutcome(out, event.Rollback))
			}
		})
	}
}

// TestRunCancelledAtEachStage cancels the run (as SIGTERM does) as each
// stage starts: the run never claims success, the cancelled stage says
// so, v1 serves alone afterwards, and the lock is free.
func TestRunCancelledAtEachStage(t *testing.T) {
	t.Parallel()
	for _, stage := range []event.Stage{event.Validate, event.Deploy, event.Verify, event.Monitor} {
		for _, strategyName := range []string{"rolling", "blue-green"} {
			t.Run(string(stage)+"/"+strategyName, func(t *testing.T) {
				t.Parallel()
				w := newWorld(t)
				cfg := w.inputs(t, strategyName, "sampleapp:v2", map[string]string{"monitor-duration": "30s", "url": w.c.ServiceURL(w.ns, "shop")})
				ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
				defer cancel()
				rec := &recorder{on: func(e event.Event) {
					if e.Kind == event.StageStarted && e.Stage == stage {
						cancel()
					}
				}}
				out := w.run(ctx, t, cfg, rec, lockOptions{})
				assert.NotEqual(t, event.StatusSucceeded, out.Result.Status, "%s", out.Result.Reason)
				assert.Equal(t, event.Cancelled, stageOutcome(out, stage), "stage %s: %+v", stage, out.Stages)
				w.waitServing(t, "v1")
				w.assertUnlocked(t)
				dep, err := w.c.Client().AppsV1().Deployments(w.ns).Get(context.Background(), "shop", metav1.GetOptions{})
				require.NoError(t, err)
				if stage == event.Validate {
					assert.Equal(t, "sampleapp:v1", dep.Spec.Template.Spec.Containers[0].Image, "a run cancelled in validate changed nothing")
				}
			})
		}
	}
}

// TestRunRenewsItsLock runs a deploy that lasts several lease durations:
// the Lease is renewed throughout (its renew time moves and it never
// lapses, so another run is refused all along), and it is free at the end.
func TestRunRenewsItsLock(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	cfg := w.inputs(t, "rolling", "sampleapp:v2", map[string]string{"monitor-duration": "8s", "url": w.c.ServiceURL(w.ns, "shop")})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const lease = 2 * time.Second

	monitoring := make(chan struct{})
	var once sync.Once
	rec := &recorder{on: func(e event.Event) {
		if e.Kind == event.StageStarted && e.Stage == event.Monitor {
			once.Do(func() { close(monitoring) })
		}
	}}
	type look struct {
		renewed time.Time
		refused bool
	}
	looks := make(chan []look, 1)
	go func() {
		var seen []look
		defer func() { looks <- seen }()
		select {
		case <-monitoring:
		case <-ctx.Done():
			return
		}
		// Monitoring lasts 8 s, four lease durations: look every half lease.
		for range 12 {
			l, err := w.c.Client().CoordinationV1().Leases(w.ns).Get(ctx, kube.LockName("shop"), metav1.GetOptions{})
			if err != nil || l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" || l.Spec.RenewTime == nil {
				return
			}
			renewed := l.Spec.RenewTime.Time
			_, err = kube.AcquireLock(ctx, w.c.Client(), kube.LockOptions{Namespace: w.ns, Deployment: "shop", Holder: kube.Holder{ID: "intruder"}, Wait: -1})
			var held *kube.LockHeldError
			seen = append(seen, look{renewed: renewed, refused: err != nil && errors.As(err, &held)})
			time.Sleep(lease / 2)
		}
	}()
	out := w.run(ctx, t, cfg, rec, lockOptions{lease: lease, renew: 500 * time.Millisecond})
	require.Equal(t, event.StatusSucceeded, out.Result.Status, "%s", out.Result.Reason)
	seen := <-looks
	require.GreaterOrEqual(t, len(seen), 6, "the lock was looked at while the run held it")
	renewals := map[time.Time]bool{}
	for i, l := range seen {
		assert.True(t, l.refused, "look %d: another run was refused the lock", i)
		renewals[l.renewed] = true
	}
	assert.GreaterOrEqual(t, len(renewals), 4, "the Lease's renew time moved while the run held it: %v", seen)
	w.assertUnlocked(t)
}
