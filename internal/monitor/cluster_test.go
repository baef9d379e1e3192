package monitor_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/ebeautything/greenlight/internal/health"
	"github.com/ebeautything/greenlight/internal/monitor"
	"github.com/ebeautything/greenlight/internal/testcluster"
)

// The tests in this file watch versions of the sample app running in the
// real test cluster, through the cluster's router, with health.Probe as the
// prober: the same pieces the pipeline puts together.

// prober adapts health.Probe to a monitor.Prober. The adaptation lives with
// the caller so that monitor does not depend on health.
func prober(target health.Target) monitor.Prober {
	return func(ctx context.Context, endpoint string) monitor.Sample {
		r := health.Probe(ctx, target, endpoint, 0)
		s := monitor.Sample{Time: r.Time, Endpoint: endpoint, Latency: r.Latency, StatusCode: r.StatusCode, OK: r.OK, Err: r.Err}
		if !r.OK && s.Err == "" {
			s.Err = fmt.Sprintf("%s answered %d %s", r.Path, r.StatusCode, http.StatusText(r.StatusCode))
		}
		return s
	}
}

// pacedClock is real time whose next tick comes one interval after the
// previous round's sample was recorded. On a loaded machine a probe may
// outlast the interval and Run rightly skips that round; pacing keeps the
// tick count a function of the samples, so tests can assert on it.
type pacedClock struct{ recorded chan struct{} }

func newPacedClock() *pacedClock { return &pacedClock{recorded: make(chan struct{}, 1)} }

func (*pacedClock) Now() time.Time { return time.Now() }

func (c *pacedClock) NewTicker(d time.Duration) monitor.Ticker {
	t := &pacedTicker{c: make(chan time.Time), stop: make(chan struct{})}
	go func() {
		for {
			select {
			case <-c.recorded:
			case <-t.stop:
				return
			}
			select {
			case <-time.After(d):
			case <-t.stop:
				return
			}
			select {
			case t.c <- time.Now():
			case <-t.stop:
				return
			}
		}
	}()
	return t
}

// sampled tells the clock that a round's sample was recorded; call it from
// Run's onEvent.
func (c *pacedClock) sampled() {
	select {
	case c.recorded <- struct{}{}:
	default:
	}
}

type pacedTicker struct {
	c    chan time.Time
	stop chan struct{}
	once sync.Once
}

func (t *pacedTicker) C() <-chan time.Time { return t.c }
func (t *pacedTicker) Stop()               { t.once.Do(func() { close(t.stop) }) }

// sampleDeployment is the test cluster's sample Deployment at version.
// Without readiness its pods are ready at once, so the app's request counter
// (which spreads SAMPLEAPP_ERROR_RATE) sees only the test's requests.
func sampleDeployment(name, version string, replicas int32, labels map[string]string, readiness bool, env ...corev1.EnvVar) *appsv1.Deployment {
	d := testcluster.SampleDeployment(name, "sampleapp:"+version, labels, env...)
	d.Spec.Replicas = &replicas
	if !readiness {
		d.Spec.Template.Spec.Containers[0].ReadinessProbe = nil
	}
	return d
}

func createApp(t *testing.T, client kubernetes.Interface, ns string, d *appsv1.Deployment) {
	t.Helper()
	_, err := client.AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{})
	require.NoError(t, err, "create deployment %s", d.Name)
}

// createService creates a Service on port 80 in front of the pods matching
// selector.
func createService(t *testing.T, client kubernetes.Interface, ns, name string, selector map[string]string) {
	t.Helper()
	_, err := client.CoreV1().Services(ns).Create(context.Background(), testcluster.SampleService(name, selector), metav1.CreateOptions{})
	require.NoError(t, err, "create service %s", name)
}

// waitFor polls cond every 100ms until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// waitAnswering waits until the app at version answers url's /health,
// whatever its status: a version with an error rate answers 500 at times.
func waitAnswering(t *testing.T, url, version string) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	waitFor(t, 60*time.Second, url+" to be answered by "+version, func(context.Context) (bool, error) {
		resp, err := client.Get(url + "/health")
		if err != nil {
			return false, nil
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.Header.Get("X-App-Version") == version, nil
	})
}

// waitAvailable waits until every replica of a Deployment is available.
func waitAvailable(t *testing.T, client kubernetes.Interface, ns, name string) {
	t.Helper()
	waitFor(t, 60*time.Second, "deployment "+name+" to be available", func(ctx context.Context) (bool, error) {
		d, err := client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return d.Status.ObservedGeneration >= d.Generation && d.Status.AvailableReplicas == *d.Spec.Replicas, nil
	})
}

// samplesOf returns the sample events in the order Run recorded them.
func samplesOf(events []monitor.Event) []monitor.Event {
	var out []monitor.Event
	for _, e := range events {
		if e.Kind == monitor.EventSample {
			out = append(out, e)
		}
	}
	return out
}

func TestClusterErrorRateRollsBack(t *testing.T) {
	t.Parallel()
	c := cluster.Get(t)
	ns := c.NewNamespace(t)
	client := c.Client()

	// One pod and no readiness probe: every request of the run reaches the
	// same app counter, which fails exactly 2 of every 5.
	labels := map[string]string{"app": "flaky"}
	createApp(t, client, ns, sampleDeployment("flaky", "v2", 1, labels, false, corev1.EnvVar{Name: "SAMPLEAPP_ERROR_RATE", Value: "0.4"}))
	createService(t, client, ns, "flaky", labels)
	url := c.ServiceURL(ns, "flaky")
	waitAnswering(t, url, "v2")
	target, err := health.NewURLTarget(url, health.TLSOptions{})
	require.NoError(t, err)

	rules := monitor.DefaultRules()
	clock := newPacedClock()
	var events []monitor.Event
	res := monitor.Run(context.Background(), monitor.Options{
		Endpoints: []string{"/health"},
		Interval:  100 * time.Millisecond,
		Duration:  time.Minute,
		Timeout:   10 * time.Second,
		Rules:     rules,
		Clock:     clock,
	}, prober(target), func(e monitor.Event) {
		events = append(events, e)
		if e.Kind == monitor.EventSample {
			clock.sampled()
		}
	})

	require.NotNil(t, res.Rollback, "a version failing 40%% of requests is rolled back; verdicts %+v", res.Verdicts)
	// A 40% spread never fails more than twice in a row, so the streak rule
	// cannot decide; the error rate decides as soon as it may.
	assert.Equal(t, monitor.RuleErrorRate, res.Rollback.Rule)
	assert.Equal(t, monitor.Rollback, res.Rollback.Action)
	assert.Equal(t, 0.4, res.Rollback.Observed)
	assert.Equal(t, rules.RollbackErrorRate, res.Rollback.Threshold)
	assert.Equal(t, rules.MinSamples, res.Rollback.Samples)
	assert.Equal(t, "error rate 40.0% over the last 10 probes is above the rollback threshold 25%", res.Rollback.Message)
	assert.True(t, res.StoppedEarly)
	assert.LessOrEqual(t, res.Ticks, rules.MinSamples+1)

	samples := samplesOf(events)
	require.Len(t, samples, rules.MinSamples, "the verdict comes with the first sample the rule may judge")
	assert.Equal(t, rules.MinSamples, samples[len(samples)-1].Tick)
	failed := 0
	for _, e := range samples {
		assert.Equal(t, "/health", e.Sample.Endpoint)
		if e.Sample.OK {
			assert.Equal(t, http.StatusOK, e.Sample.StatusCode)
			continue
		}
		failed++
		assert.Equal(t, http.StatusInternalServerError, e.Sample.StatusCode)
		assert.Equal(t, "/health answered 500 Internal Server Error", e.Sample.Err)
	}
	assert.Equal(t, 4, failed)
	assert.Equal(t, int64(4), res.Snapshot.Errors)
	assert.LessOrEqual(t, res.Snapshot.MaxConsecutiveFailures, 2)
	assert.Len(t, res.Evidence, rules.MinSamples, "a rate verdict's evidence is its window")
}

func TestClusterLateFailureRollsBackOnConsecutiveFailures(t *testing.T) {
	t.Parallel()
	c := cluster.Get(t)
	ns := c.NewNamespace(t)
	client := c.Client()

	// Healthy long enough for the pod to become ready and the run to see it
	// healthy, then failing every request.
	const failAfter = "5s"
	labels := map[string]string{"app": "late-failure"}
	createApp(t, client, ns, sampleDeployment("late-failure", "v2", 1, labels, true, corev1.EnvVar{Name: "SAMPLEAPP_FAIL_AFTER", Value: failAfter}))
	createService(t, client, ns, "late-failure", labels)
	url := c.ServiceURL(ns, "late-failure")
	waitAnswering(t, url, "v2")
	target, err := health.NewURLTarget(url, health.TLSOptions{})
	require.NoError(t, err)

	// With a full window of successes the default error-rate rule fires on
	// the same sixth failure; without it the streak rule is seen to decide.
	rules := monitor.DefaultRules()
	rules.RollbackErrorRate = 0
	clock := newPacedClock()
	var events []monitor.Event
	res := monitor.Run(context.Background(), monitor.Options{
		Endpoints: []string{"/health"},
		Interval:  100 * time.Millisecond,
		Duration:  time.Minute,
		Timeout:   10 * time.Second,
		Rules:     rules,
		Clock:     clock,
	}, prober(target), func(e monitor.Event) {
		events = append(events, e)
		if e.Kind == monitor.EventSample {
			clock.sampled()
		}
	})

	require.NotNil(t, res.Rollback, "verdicts %+v", res.Verdicts)
	assert.Equal(t, monitor.RuleConsecutiveFailures, res.Rollback.Rule)
	assert.Equal(t, monitor.Rollback, res.Rollback.Action)
	assert.Equal(t, float64(rules.RollbackConsecutiveFailures+1), res.Rollback.Observed)
	assert.True(t, res.StoppedEarly)

	samples := samplesOf(events)
	first := -1
	for i, e := range samples {
		if !e.Sample.OK {
			first = i
			break
		}
	}
	require.Positive(t, first, "the version was healthy at first")
	t.Logf("%d healthy samples, then failures from tick %d", first, samples[first].Tick)
	streak := samples[first:]
	require.Len(t, streak, rules.RollbackConsecutiveFailures+1, "rolled back on the sixth failure in a row")
	for _, e := range streak {
		assert.False(t, e.Sample.OK)
	}
	assert.LessOrEqual(t, streak[len(streak)-1].Tick-streak[0].Tick+1, rules.RollbackConsecutiveFailures+1,
		"within (rollback threshold + 1) ticks of the first failure")
	require.Len(t, res.Evidence, len(streak), "a streak verdict's evidence is the streak")
	for i, s := range res.Evidence {
		assert.Equal(t, *streak[i].Sample, s)
	}

	// The streak alerted on its fourth failure, before rolling back.
	var raised []monitor.AlertChange
	for _, a := range res.Alerts {
		if a.Rule == monitor.RuleConsecutiveFailures && a.State == monitor.AlertRaised {
			raised = append(raised, a)
		}
	}
	require.Len(t, raised, 1)
	assert.Equal(t, monitor.Alert, raised[0].Verdict.Action)
	assert.Equal(t, float64(rules.AlertConsecutiveFailures+1), raised[0].Verdict.Observed)
}

func TestClusterFlappingAlertsOncePerEpisode(t *testing.T) {
	t.Parallel()
	c := cluster.Get(t)
	ns := c.NewNamespace(t)
	client := c.Client()

	// The Service flips between a healthy Deployment and one that fails
	// every request, so each failure episode starts and ends cleanly.
	good := map[string]string{"app": "flap", "role": "good"}
	bad := map[string]string{"app": "flap", "role": "bad"}
	createApp(t, client, ns, sampleDeployment("flap-good", "v2", 2, good, true))
	createApp(t, client, ns, sampleDeployment("flap-bad", "v2", 2, bad, false, corev1.EnvVar{Name: "SAMPLEAPP_ERROR_RATE", Value: "1"}))
	createService(t, client, ns, "flap", good)
	waitAvailable(t, client, ns, "flap-good")
	waitAvailable(t, client, ns, "flap-bad")
	url := c.ServiceURL(ns, "flap")
	waitAnswering(t, url, "v2")
	target, err := health.NewURLTarget(url, health.TLSOptions{})
	require.NoError(t, err)

	// Alert from the third failure in a row; roll back only on much more
	// than an episode brings.
	rules := monitor.Rules{
		Window:                      20,
		MinSamples:                  10,
		AlertConsecutiveFailures:    2,
		RollbackConsecutiveFailures: 20,
		RollbackErrorRate:           0.75,
	}
	require.NoError(t, rules.Validate())
	const (
		episodes  = 3
		recovered = 10 // successes in a row before the next episode
	)
	selectRole := func(role string) error {
		patch := fmt.Appendf(nil, `{"spec":{"selector":{"app":"flap","role":%q}}}`, role)
		_, err := client.CoreV1().Services(ns).Patch(context.Background(), "flap", types.MergePatchType, patch, metav1.PatchOptions{})
		return err
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clock := newPacedClock()
	events := make(chan monitor.Event, 10_000)
	type outcome struct {
		events  []monitor.Event
		started int
		errs    []error
	}
	done := make(chan outcome, 1)
	// The conductor flips the selector as the run reports: to the failing
	// pods after a recovery, back to the healthy ones once an alert is up.
	go func() {
		var o outcome
		failing, okStreak := false, 0
		for e := range events {
			o.events = append(o.events, e)
			switch e.Kind {
			case monitor.EventAlertRaised:
				if failing {
					if err := selectRole("good"); err != nil {
						o.errs = append(o.errs, err)
					}
					failing, okStreak = false, 0
				}
			case monitor.EventSample:
				if !e.Sample.OK {
					okStreak = 0
					continue
				}
				okStreak++
				if failing || okStreak < recovered {
					continue
				}
				if o.started == episodes {
					cancel()
					continue
				}
				if err := selectRole("bad"); err != nil {
					o.errs = append(o.errs, err)
				}
				failing, okStreak = true, 0
				o.started++
			}
		}
		done <- o
	}()

	res := monitor.Run(ctx, monitor.Options{
		Endpoints: []string{"/health"},
		Interval:  100 * time.Millisecond,
		Duration:  2 * time.Minute,
		Timeout:   10 * time.Second,
		Rules:     rules,
		Clock:     clock,
	}, prober(target), func(e monitor.Event) {
		events <- e
		if e.Kind == monitor.EventSample {
			clock.sampled()
		}
	})
	close(events)
	o := <-done
	require.Empty(t, o.errs, "switch the Service selector")
	require.Equal(t, episodes, o.started)

	t.Logf("%d samples in %d ticks, longest failure streak %d", res.Snapshot.Count, res.Ticks, res.Snapshot.MaxConsecutiveFailures)
	assert.Nil(t, res.Rollback, "failures stayed under the rollback rules; verdicts %+v", res.Verdicts)
	assert.True(t, res.StoppedEarly, "the run was ended after the last episode")
	assert.Greater(t, res.Snapshot.MaxConsecutiveFailures, rules.AlertConsecutiveFailures)
	assert.LessOrEqual(t, res.Snapshot.MaxConsecutiveFailures, rules.RollbackConsecutiveFailures)

	// One raise and one resolution per episode, alternating, all for the
	// streak rule, and every sample inside an episode a failure.
	var raised, resolved int
	require.Len(t, res.Alerts, 2*episodes)
	for i, a := range res.Alerts {
		assert.Equal(t, monitor.RuleConsecutiveFailures, a.Rule)
		want := monitor.AlertRaised
		if i%2 == 1 {
			want = monitor.AlertResolved
		}
		assert.Equal(t, want, a.State, "alert change %d", i)
	}
	open := false
	for i, e := range o.events {
		switch e.Kind {
		case monitor.EventAlertRaised:
			raised++
			open = true
		case monitor.EventAlertResolved:
			resolved++
			open = false
		case monitor.EventSample:
			if open && e.Sample.OK {
				require.Less(t, i+1, len(o.events))
				assert.Equal(t, monitor.EventAlertResolved, o.events[i+1].Kind, "the first success of an episode resolves it at once")
			}
		}
	}
	assert.Equal(t, episodes, raised)
	assert.Equal(t, episodes, resolved)
}
