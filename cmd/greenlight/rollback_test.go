package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ebeautything/greenlight/internal/kube"
)

// prodArgs are a production command's flags, as an operator types them.
func (e *env) prodArgs(command string, extra ...string) []string {
	return append([]string{command, "--environment=production", "--namespace=" + e.ns, "--deployment=shop",
		"--url=" + e.c.ServiceURL(e.ns, "shop"), "--timeout=10", "--config=/dev/null"}, extra...)
}

// cliResult is one CLI run started from a hook.
type cliResult struct {
	code        int
	out, errOut string
}

// replicasOf reads a Deployment's desired replicas.
func (e *env) replicasOf(t *testing.T, name string) int32 {
	t.Helper()
	d, err := e.client.AppsV1().Deployments(e.ns).Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err)
	return *d.Spec.Replicas
}

// watchScaleDowns records every Deployment of the namespace that is
// scaled to zero while it runs, with the color the Service selected then.
func (e *env) watchScaleDowns(t *testing.T) func() map[string]string {
	ctx, cancel := context.WithCancel(context.Background())
	seen := map[string]string{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			list, err := e.client.AppsV1().Deployments(e.ns).List(ctx, metav1.ListOptions{})
			svc, serr := e.client.CoreV1().Services(e.ns).Get(ctx, "shop", metav1.GetOptions{})
			if err == nil && serr == nil {
				for _, d := range list.Items {
					if d.Spec.Replicas != nil && *d.Spec.Replicas == 0 && "shop-"+kube.ActiveColor(svc) == d.Name {
						seen[d.Name] = "scaled to zero while the service selected it"
					}
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	return func() map[string]string { cancel(); <-done; return seen }
}

// TestRollbackDuringMonitoringIsDoneByTheDeploy reproduces the incident: a
// person rolls back while a blue-green deploy monitors. The rollback asks
// the deploy (through the lock) and the deploy rolls back itself: the old
// version serves, the deploy reports rolled-back, the serving color is
// never scaled down, and both runs, the history and Slack say so.
func TestRollbackDuringMonitoringIsDoneByTheDeploy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sampleapp:v1")
	in := e.inputs("production", "sampleapp:v2")
	require.Equal(t, 0, e.runAction(t, in, "").code)

	in["image"] = "sampleapp:v3"
	in["monitor-duration"] = "120s"
	in["monitor-interval"] = "200ms"
	stop := e.watchScaleDowns(t)
	rb := make(chan cliResult, 1)
	var asked time.Time
	start := time.Now()
	res := e.runHooked(t, in, stdoutHook{at: "::group::monitor", do: func(liveRun) {
		asked = time.Now()
		go func() {
			code, out, errOut := e.opsCLI(t, e.prodArgs("rollback", "--reason=checkout errors since the release", "--slack-webhook-url="+e.slack.srv.URL+"/services/"+secretSlack)...)
			rb <- cliResult{code, out, errOut}
		}()
	}})
	r := <-rb
	t.Logf("deploy %s; rollback asked %s after start\n%s", res.stdout, asked.Sub(start), res.stderr)
	assert.Empty(t, stop(), "no color is scaled down while it serves")

	assert.Equal(t, 0, r.code, r.errOut)
	assert.Contains(t, r.out+r.errOut, "rolled back on request")
	assert.Contains(t, r.out, "verified: v2 answers")

	assert.Equal(t, 1, res.code)
	assert.Equal(t, "rolled-back", res.outputs["status"])
	assert.Contains(t, res.stdout, "a rollback was requested by alice@")
	assert.Contains(t, res.stdout, "checkout errors since the release")
	assert.Less(t, time.Since(asked), 90*time.Second, "the deploy did not monitor on to its end")

	assert.JSONEq(t, `{"v2": 20}`, mustJSON(e.serving(t, 20)), "the old version serves")
	assert.Equal(t, int32(2), e.replicasOf(t, "shop-blue"), "the serving color keeps its replicas")
	assert.Zero(t, e.replicasOf(t, "shop-green"), "the rolled-back color is scaled down")
	assert.False(t, e.lockHeld(t))

	h := e.historyJSON(t, "--environment=production")
	require.NotEmpty(t, h)
	assert.Equal(t, "rolled-back", h[0].Result, "the deploy records its rollback: %+v", h[0])
	assert.Contains(t, h[0].Reason, "requested by alice@")
	assert.Contains(t, h[0].Reason, "checkout errors since the release")
	slack := strings.Join(e.slack.requests(), "\n")
	assert.Contains(t, slack, "Rolling back in production", "Slack hears the rollback start")
}

// TestRollbackDuringMonitoringByHandIsNotUndone covers a selector switched
// back by hand (kubectl patch, no lock) while a deploy monitors: the probes
// keep passing because the old color answers, and the deploy must neither
// scale that color down nor report success.
func TestRollbackDuringMonitoringByHandIsNotUndone(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sampleapp:v1")
	in := e.inputs("production", "sampleapp:v2")
	require.Equal(t, 0, e.runAction(t, in, "").code)

	in["image"] = "sampleapp:v3"
	in["monitor-duration"] = "6s"
	in["monitor-interval"] = "200ms"
	stop := e.watchScaleDowns(t)
	res := e.runHooked(t, in, stdoutHook{at: "::group::monitor", do: func(liveRun) {
		svc, err := e.client.CoreV1().Services(e.ns).Get(context.Background(), "shop", metav1.GetOptions{})
		if err == nil {
			sel := map[string]string{}
			for k, v := range svc.Spec.Selector {
				sel[k] = v
			}
			sel[kube.ColorLabel] = "blue"
			_, err = kube.SwitchSelector(context.Background(), e.client, e.ns, "shop", sel)
		}
		if err != nil {
			t.Errorf("switch back by hand: %v", err)
		}
	}})
	assert.Empty(t, stop(), "no color is scaled down while it serves")
	assert.Equal(t, 1, res.code)
	assert.Equal(t, "rolled-back", res.outputs["status"])
	assert.Contains(t, res.stdout, "not scaled down")
	assert.JSONEq(t, `{"v2": 20}`, mustJSON(e.serving(t, 20)))
	assert.Equal(t, int32(2), e.replicasOf(t, "shop-blue"))
}

// TestRollbackWaitsForAHungHolderThenForce: a holder that renews its lock
// but never answers is named; without --force nothing changes, with it the
// lock is taken over (the holder learns it) and the rollback is done.
func TestRollbackWaitsForAHungHolderThenForce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sampleapp:v1")
	in := e.inputs("production", "sampleapp:v2")
	require.Equal(t, 0, e.runAction(t, in, "").code)
	in["image"] = "sampleapp:v3"
	require.Equal(t, 0, e.runAction(t, in, "").code)
	require.JSONEq(t, `{"v3": 10}`, mustJSON(e.serving(t, 10)))

	hung, err := kube.AcquireLock(context.Background(), e.client, kube.LockOptions{Namespace: e.ns, Deployment: "shop",
		Holder: kube.Holder{ID: "hung-run", RunURL: "https://github.com/acme/shop/actions/runs/7", Actor: "octocat"}, RenewEvery: time.Second, LeaseDuration: 30 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = hung.Release(context.Background()) })

	code, out, errOut := e.opsCLI(t, e.prodArgs("rollback", "--wait=2s", "--reason=bad release")...)
	assert.Equal(t, 1, code)
	assert.Contains(t, out+errOut, "runs/7 (octocat)")
	assert.Contains(t, out+errOut, "did not answer the rollback request within 2s")
	assert.Contains(t, out+errOut, "--force")
	assert.JSONEq(t, `{"v3": 10}`, mustJSON(e.serving(t, 10)), "nothing changed")

	code, out, errOut = e.opsCLI(t, e.prodArgs("rollback", "--wait=2s", "--force", "--reason=bad release", "--actor=carol")...)
	assert.Equal(t, 0, code, errOut)
	assert.Contains(t, out+errOut, "took the deploy lock over from run https://github.com/acme/shop/actions/runs/7")
	assert.JSONEq(t, `{"v2": 10}`, mustJSON(e.serving(t, 10)))
	select {
	case <-hung.Lost():
	case <-time.After(10 * time.Second):
		t.Error("the hung holder never learned it lost the lock")
	}
	state, err := kube.ReadLease(context.Background(), e.client, e.ns, kube.LockName("shop"))
	require.NoError(t, err)
	require.NotNil(t, state.TakenOver)
	assert.Equal(t, "hung-run", state.TakenOver.From)
	assert.Equal(t, "carol", state.TakenOver.Actor)

	// Once more: it is already rolled back, so traffic does not flip back.
	code, out, _ = e.opsCLI(t, e.prodArgs("rollback")...)
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "already rolled back")
	assert.JSONEq(t, `{"v2": 10}`, mustJSON(e.serving(t, 10)))
}

// TestUnlockForceDuringHeldLock: scale waits and names the holder; unlock
// needs --force and a reason; it clears the lock, the holder learns it,
// and the history records who and why. command: unlock does the same
// from a workflow step.
func TestUnlockForceDuringHeldLock(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sampleapp:v1")
	take := func(id string) *kube.Lock {
		l, err := kube.AcquireLock(context.Background(), e.client, kube.LockOptions{Namespace: e.ns, Deployment: "shop",
			Holder: kube.Holder{ID: id, RunURL: "https://github.com/acme/shop/actions/runs/9", Actor: "octocat"}, RenewEvery: time.Second, LeaseDuration: 30 * time.Second})
		require.NoError(t, err)
		t.Cleanup(func() { _ = l.Release(context.Background()) })
		return l
	}
	held := take("dead-run")

	code, _, errOut := e.opsCLI(t, e.cliArgs("scale", "--replicas=3", "--lock-timeout=1s")...)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "runs/9 (octocat) since ")
	assert.Contains(t, errOut, "unlock --force")

	code, _, errOut = e.opsCLI(t, e.cliArgs("unlock", "--reason=runner died")...)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, `"force"`)
	code, _, errOut = e.opsCLI(t, e.cliArgs("unlock", "--force")...)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, `"reason"`)
	assert.True(t, e.lockHeld(t), "bad input changes nothing")

	code, out, _ := e.opsCLI(t, e.cliArgs("unlock", "--force", "--reason=runner died mid deploy")...)
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "cleared: it was held by run https://github.com/acme/shop/actions/runs/9 (octocat)")
	assert.False(t, e.lockHeld(t))
	select {
	case <-held.Lost():
	case <-time.After(10 * time.Second):
		t.Error("the holder never learned it lost the lock")
	}
	h := e.historyJSON(t)
	require.NotEmpty(t, h)
	assert.Contains(t, h[0].Reason, "runner died mid deploy")
	assert.Contains(t, h[0].Actor, "alice@")

	take("another-dead-run")
	in := e.inputs("staging", "")
	delete(in, "image")
	in["command"] = "unlock"
	in["reason"] = "stuck lock after a cancelled workflow"
	res := e.runAction(t, in, "")
	assert.Equal(t, 0, res.code)
	assert.False(t, e.lockHeld(t))
	assert.Contains(t, res.summary, "stuck lock after a cancelled workflow")
}

// TestCLIDeployRecordsTheActor: a deploy from a laptop says who ran it, in
// the history and on the lock.
func TestCLIDeployRecordsTheActor(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sampleapp:v1")
	code, _, _ := e.opsCLI(t, e.cliArgs("deploy", "--image=sampleapp:v2", "--monitor-duration=1s", "--monitor-interval=100ms", "--deployment-id=cli-actor")...)
	require.Equal(t, 0, code)
	code, _, _ = e.opsCLI(t, e.cliArgs("deploy", "--image=sampleapp:v3", "--monitor-duration=1s", "--monitor-interval=100ms", "--deployment-id=cli-actor-2", "--actor=bob")...)
	require.Equal(t, 0, code)
	h := e.historyJSON(t)
	require.Len(t, h, 2)
	assert.Equal(t, "bob", h[0].Actor)
	assert.True(t, strings.HasPrefix(h[1].Actor, "alice@"), h[1].Actor)
	raw, _ := json.Marshal(h)
	assert.NotContains(t, string(raw), `"actor":""`)
}

// untilOnly measures from start until answers through the router come
// only from version: the first of ten answers in a row from it.
func (e *env) untilOnly(t *testing.T, version string, start time.Time, bound time.Duration) (time.Duration, bool) {
	t.Helper()
	run, first := 0, time.Time{}
	for time.Since(start) < bound {
		at := time.Now()
		resp, err := http.Get(e.c.ServiceURL(e.ns, "shop") + "/health")
		got := ""
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				got = resp.Header.Get("X-App-Version")
			}
		}
		if got != version {
			run = 0
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if run == 0 {
			first = at
		}
		if run++; run == 10 {
			return first.Sub(start), true
		}
	}
	return 0, false
}

// TestRollbackInsideWindowIsASwitch keeps the previous color warm after a
// deploy (scale-down-delay), shows the window in status, and times
// `greenlight rollback` from the command's start until only the old
// version answers, over 10 trials. A closed window is then scaled down by
// `greenlight cleanup`.
func TestRollbackInsideWindowIsASwitch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sampleapp:v1")
	in := e.inputs("production", "sampleapp:v2")
	in["monitor-duration"] = "1s"
	require.Equal(t, 0, e.runAction(t, in, "").code)

	const trials = 10
	var took []time.Duration
	for i := range trials {
		in["image"] = fmt.Sprintf("sampleapp:v%d", 3+i)
		in["scale-down-delay"] = "10m"
		res := e.runAction(t, in, "")
		require.Equal(t, 0, res.code)
		const old = "v2" // every trial rolls back to it
		if i == 0 {
			assert.Contains(t, res.summary, "stays warm without traffic until")
			code, out, _ := e.opsCLI(t, e.prodArgs("status")...)
			require.Equal(t, 0, code)
			assert.Contains(t, out, "rollback window: shop-")
		}
		start := time.Now()
		rb := make(chan int, 1)
		go func() {
			code, _, _ := e.opsCLI(t, e.prodArgs("rollback", "--reason=window trial")...)
			rb <- code
		}()
		d, ok := e.untilOnly(t, old, start, time.Minute)
		require.Equal(t, 0, <-rb)
		require.True(t, ok, "only %s answers within a minute of the command", old)
		took = append(took, d)
	}
	sorted := append([]time.Duration(nil), took...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	median, p95 := sorted[trials/2], sorted[int(float64(trials)*0.95+0.5)-1]
	t.Logf("rollback inside the window, command start → only the old version answers (10 in a row), %d trials: median %s, p95 %s, min %s, max %s; all %v",
		trials, median.Round(time.Millisecond), p95.Round(time.Millisecond), sorted[0].Round(time.Millisecond), sorted[trials-1].Round(time.Millisecond), took)
	assert.Less(t, median, 15*time.Second, "a switch, not a rollout (target 1s; loaded machine)")

	// A window that closed: status reports it, cleanup scales it down.
	in["image"] = "sampleapp:v99"
	in["scale-down-delay"] = "1s"
	require.Equal(t, 0, e.runAction(t, in, "").code)
	time.Sleep(2 * time.Second)
	code, out, _ := e.opsCLI(t, e.prodArgs("status")...)
	require.Equal(t, 0, code)
	assert.Contains(t, out, "closed at")
	svc, err := e.client.CoreV1().Services(e.ns).Get(context.Background(), "shop", metav1.GetOptions{})
	require.NoError(t, err)
	idle := "shop-" + map[string]string{"blue": "green", "green": "blue"}[kube.ActiveColor(svc)]
	require.Positive(t, e.replicasOf(t, idle), "status changes nothing")
	code, out, _ = e.opsCLI(t, e.prodArgs("cleanup")...)
	require.Equal(t, 0, code)
	assert.Contains(t, out, idle+" scaled down")
	assert.Zero(t, e.replicasOf(t, idle))
	assert.JSONEq(t, `{"v99": 10}`, mustJSON(e.serving(t, 10)))
}
