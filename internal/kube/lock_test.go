package kube

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// runHolder is the run numbered n of the acme/shop repository.
func runHolder(n int) Holder {
	return Holder{
		ID:          fmt.Sprintf("run-%d", n),
		Repository:  "acme/shop",
		RunURL:      fmt.Sprintf("https://github.com/acme/shop/actions/runs/%d", n),
		Actor:       "octocat",
		Environment: "production",
	}
}

// shortLock returns options with durations short enough for tests: a lease
// of 2s renewed every 500ms.
func shortLock(ns string, h Holder) LockOptions {
	return LockOptions{
		Namespace:     ns,
		Deployment:    "payments",
		Holder:        h,
		LeaseDuration: 2 * time.Second,
		RenewEvery:    500 * time.Millisecond,
		PollEvery:     100 * time.Millisecond,
		Wait:          -1,
	}
}

func acquire(t *testing.T, client kubernetes.Interface, opts LockOptions) *Lock {
	t.Helper()
	lock, err := AcquireLock(t.Context(), client, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = lock.Release(context.Background()) })
	return lock
}

func getLease(t *testing.T, client kubernetes.Interface, ns, name string) *coordinationv1.Lease {
	t.Helper()
	lease, err := client.CoordinationV1().Leases(ns).Get(t.Context(), name, metav1.GetOptions{})
	require.NoError(t, err)
	return lease
}

// assertNotLost fails if the lock was reported lost.
func assertNotLost(t *testing.T, l *Lock) {
	t.Helper()
	select {
	case <-l.Lost():
		t.Error("lock reported lost")
	default:
	}
}

// waitLost waits for the lock to be reported lost, failing after a
// generous bound so a broken renewal cannot hang the test.
func waitLost(t *testing.T, l *Lock) {
	t.Helper()
	select {
	case <-l.Lost():
	case <-time.After(30 * time.Second):
		t.Fatal("lock never reported lost")
	}
}

func TestDecideLock(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *metav1.MicroTime { m := metav1.NewMicroTime(now.Add(d)); return &m }
	tests := []struct {
		name      string
		spec      coordinationv1.LeaseSpec
		unchanged time.Duration
		want      lockState
	}{
		{"no holder", coordinationv1.LeaseSpec{}, 0, lockFree},
		{"empty holder", coordinationv1.LeaseSpec{HolderIdentity: ptr.To("")}, 0, lockFree},
		{"ours", coordinationv1.LeaseSpec{HolderIdentity: ptr.To("me"), RenewTime: at(-time.Hour)}, 0, lockOurs},
		{"held, renewed recently", coordinationv1.LeaseSpec{HolderIdentity: ptr.To("other"), LeaseDurationSeconds: ptr.To[int32](10), RenewTime: at(-5 * time.Second)}, 0, lockHeld},
		{"expired by renew time", coordinationv1.LeaseSpec{HolderIdentity: ptr.To("other"), LeaseDurationSeconds: ptr.To[int32](10), RenewTime: at(-11 * time.Second)}, 0, lockExpired},
		{"expired by acquire time when never renewed", coordinationv1.LeaseSpec{HolderIdentity: ptr.To("other"), LeaseDurationSeconds: ptr.To[int32](10), AcquireTime: at(-time.Minute)}, 0, lockExpired},
		{"renew time ahead, seen unchanged too long", coordinationv1.LeaseSpec{HolderIdentity: ptr.To("other"), LeaseDurationSeconds: ptr.To[int32](10), RenewTime: at(time.Hour)}, 11 * time.Second, lockExpired},
		{"renew time ahead, seen briefly", coordinationv1.LeaseSpec{HolderIdentity: ptr.To("other"), LeaseDurationSeconds: ptr.To[int32](10), RenewTime: at(time.Hour)}, 5 * time.Second, lockHeld},
		{"no duration uses the fallback", coordinationv1.LeaseSpec{HolderIdentity: ptr.To("other"), RenewTime: at(-30 * time.Second)}, 0, lockHeld},
		{"no duration, past the fallback", coordinationv1.LeaseSpec{HolderIdentity: ptr.To("other"), RenewTime: at(-2 * time.Minute)}, 0, lockExpired},
		{"no times at all", coordinationv1.LeaseSpec{HolderIdentity: ptr.To("other")}, 0, lockHeld},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, decideLock(tt.spec, "me", now, tt.unchanged, time.Minute))
		})
	}
}

func TestLockHeldErrorMessage(t *testing.T) {
	t.Parallel()
	since := time.Date(2025, 1, 1, 13, 0, 1, 0, time.FixedZone("CET", 3600))
	tests := []struct {
		name string
		err  LockHeldError
		want string
	}{
		{
			name: "full holder",
			err:  LockHeldError{Namespace: "payments", Name: "greenlight-payments", Holder: runHolder(42), Since: since},
			want: "deploy lock payments/greenlight-payments is held by run https://github.com/acme/shop/actions/runs/42 (octocat, acme/shop) since 12:00:01 UTC",
		},
		{
			name: "only an id",
			err:  LockHeldError{Namespace: "ns", Name: "lock", Holder: Holder{ID: "laptop-7"}},
			want: "deploy lock ns/lock is held by run laptop-7",
		},
		{
			name: "actor without repository",
			err:  LockHeldError{Namespace: "ns", Name: "lock", Holder: Holder{ID: "x", Actor: "hubot"}, Since: since},
			want: "deploy lock ns/lock is held by run x (hubot) since 12:00:01 UTC",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, tt.err.Error())
		})
	}
}

func TestLockOptionsRejected(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts LockOptions
		want string
	}{
		{"no namespace", LockOptions{Deployment: "web"}, "no namespace"},
		{"no name", LockOptions{Namespace: "ns"}, "no lease name or deployment"},
		{"renewal too slow", LockOptions{Namespace: "ns", Name: "l", LeaseDuration: 10 * time.Second, RenewEvery: 10 * time.Second}, "cannot keep a 10s lease alive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := AcquireLock(t.Context(), nil, tt.opts)
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestLockOptionsDefaults(t *testing.T) {
	t.Parallel()
	o, err := LockOptions{Namespace: "ns", Deployment: "web", LeaseDuration: 1500 * time.Millisecond}.withDefaults()
	require.NoError(t, err)
	assert.Equal(t, "greenlight-web", o.Name)
	assert.Equal(t, 2*time.Second, o.LeaseDuration, "rounded up to whole seconds")
	assert.Equal(t, 2*time.Second/3, o.RenewEvery)
	assert.Equal(t, 5*time.Minute, o.Wait)
	assert.Equal(t, 2*time.Second, o.PollEvery)
	assert.Regexp(t, `^greenlight-run-[0-9a-f]{16}$`, o.Holder.ID)

	o, err = LockOptions{Namespace: "ns", Name: "custom", Deployment: "web"}.withDefaults()
	require.NoError(t, err)
	assert.Equal(t, "custom", o.Name)
	assert.Equal(t, time.Minute, o.LeaseDuration)
	assert.Equal(t, 20*time.Second, o.RenewEvery)
}

func TestLockAcquireRelease(t *testing.T) {
	t.Parallel()
	c := cluster.Get(t)
	ns := c.NewNamespace(t)
	client := c.Client()

	h := runHolder(1)
	h.RunURL = "https://x-access-token:ghs_secret@github.com/acme/shop/actions/runs/1?token=ghs_secret2"
	lock := acquire(t, client, shortLock(ns, h))
	assert.Equal(t, "greenlight-payments", lock.Name)
	assert.Nil(t, lock.TookOverFrom)
	assert.Equal(t, "https://github.com/acme/shop/actions/runs/1", lock.Holder.RunURL)

	lease := getLease(t, client, ns, "greenlight-payments")
	assert.Equal(t, "run-1", ptr.Deref(lease.Spec.HolderIdentity, ""))
	assert.Equal(t, int32(2), ptr.Deref(lease.Spec.LeaseDurationSeconds, 0))
	assert.Equal(t, "acme/shop", lease.Annotations["greenlight.dev/repository"])
	assert.Equal(t, "https://github.com/acme/shop/actions/runs/1", lease.Annotations["greenlight.dev/run-url"])
	assert.Equal(t, "octocat", lease.Annotations["greenlight.dev/actor"])
	assert.Equal(t, "production", lease.Annotations["greenlight.dev/environment"])
	startedAt, err := time.Parse(time.RFC3339, lease.Annotations["greenlight.dev/started-at"])
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), startedAt, time.Minute)
	assert.Equal(t, "greenlight", lease.Labels["app.kubernetes.io/managed-by"])
	for k, v := range lease.Annotations {
		assert.NotContains(t, v, "ghs_secret", "annotation %s", k)
	}

	holder, since, err := ReadLock(t.Context(), client, ns, "greenlight-payments")
	require.NoError(t, err)
	require.NotNil(t, holder)
	assert.Equal(t, lock.Holder, *holder)
	assert.WithinDuration(t, time.Now(), since, time.Minute)

	require.NoError(t, lock.Release(t.Context()))
	require.NoError(t, lock.Release(t.Context()), "a second release does nothing")
	assertNotLost(t, lock)

	lease = getLease(t, client, ns, "greenlight-payments")
	assert.Nil(t, lease.Spec.HolderIdentity)
	assert.NotContains(t, lease.Annotations, "greenlight.dev/run-url")
	assert.NotContains(t, lease.Annotations, "greenlight.dev/started-at")
	holder, _, err = ReadLock(t.Context(), client, ns, "greenlight-payments")
	require.NoError(t, err)
	assert.Nil(t, holder)

	// Released, it is taken at once.
	next := acquire(t, client, shortLock(ns, runHolder(2)))
	assert.Nil(t, next.TookOverFrom)
	assert.Equal(t, int32(1), ptr.Deref(getLease(t, client, ns, "greenlight-payments").Spec.LeaseTransitions, 0))
}

func TestReadLockMissing(t *testing.T) {
	t.Parallel()
	c := cluster.Get(t)
	holder, since, err := ReadLock(t.Context(), c.Client(), c.NewNamespace(t), "greenlight-nothing")
	require.NoError(t, err)
	assert.Nil(t, holder)
	assert.True(t, since.IsZero())
}

func TestLockHeldFailsNamingTheHolder(t *testing.T) {
	t.Parallel()
	c := cluster.Get(t)
	ns := c.NewNamespace(t)
	client := c.Client()
	first := acquire(t, client, shortLock(ns, runHolder(42)))

	var waited []*LockHeldError
	opts := shortLock(ns, runHolder(43))
	opts.Wait = 1500 * time.Millisecond
	opts.Waiting = func(held *LockHeldError) { waited = append(waited, held) }
	_, err := AcquireLock(t.Context(), client, opts)

	var held *LockHeldError
	require.ErrorAs(t, err, &held)
	assert.Equal(t, first.Holder, held.Holder)
	assert.Equal(t, ns, held.Namespace)
	assert.Equal(t, "greenlight-payments", held.Name)
	assert.False(t, held.Since.IsZero())
	assert.False(t, held.RenewedAt.Before(held.Since))
	assert.Contains(t, err.Error(), fmt.Sprintf(
		"deploy lock %s/greenlight-payments is held by run https://github.com/acme/shop/actions/runs/42 (octocat, acme/shop) since ", ns))
	assert.Len(t, waited, 1, "Waiting is called once")

	// With no wait it fails at once, and Waiting is not called.
	opts.Wait, waited = -1, nil
	_, err = AcquireLock(t.Context(), client, opts)
	require.ErrorAs(t, err, &held)
	assert.Empty(t, waited)
	assertNotLost(t, first)
}

func TestLockWaiterGetsReleasedLock(t *testing.T) {
	t.Parallel()
	c := cluster.Get(t)
	ns := c.NewNamespace(t)
	client := c.Client()
	first := acquire(t, client, shortLock(ns, runHolder(1)))

	opts := shortLock(ns, runHolder(2))
	opts.Wait = time.Minute
	opts.Waiting = func(held *LockHeldError) {
		// The first run finishes while the second waits.
		assert.Equal(t, "run-1", held.Holder.ID)
		assert.NoError(t, first.Release(context.Background()))
	}
	second := acquire(t, client, opts)
	assert.Nil(t, second.TookOverFrom, "a released lock is not a takeover")
	assert.Equal(t, "run-2", ptr.Deref(getLease(t, client, ns, "greenlight-payments").Spec.HolderIdentity, ""))
}

func TestLockWaitStopsWhenCancelled(t *testing.T) {
	t.Parallel()
	c := cluster.Get(t)
	ns := c.NewNamespace(t)
	client := c.Client()
	acquire(t, client, shortLock(ns, runHolder(1)))

	ctx, cancel := context.WithCancel(t.Context())
	opts := shortLock(ns, runHolder(2))
	opts.Wait = time.Hour
	opts.Waiting = func(*LockHeldError) { cancel() }
	_, err := AcquireLock(ctx, client, opts)
	require.ErrorIs(t, err, context.Canceled)
	var held *LockHeldError
	require.ErrorAs(t, err, &held)
	assert.Equal(t, "run-1", held.Holder.ID)
}

// createLease writes a Lease as a run of another process would have left it.
func createLease(t *testing.T, client kubernetes.Interface, ns, name string, h Holder, seconds int32, renewed time.Time) {
	t.Helper()
	at := metav1.NewMicroTime(renewed)
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{
			"greenlight.dev/repository":  h.Repository,
			"greenlight.dev/run-url":     h.RunURL,
			"greenlight.dev/actor":       h.Actor,
			"greenlight.dev/environment": h.Environment,
		}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &h.ID, LeaseDurationSeconds: &seconds, AcquireTime: &at, RenewTime: &at},
	}
	_, err := client.CoordinationV1().Leases(ns).Create(t.Context(), lease, metav1.CreateOptions{})
	require.NoError(t, err)
}

func TestLockTakesOverExpiredLease(t *testing.T) {
	t.Parallel()
	c := cluster.Get(t)
	ns := c.NewNamespace(t)
	client := c.Client()
	crashed := runHolder(7)
	createLease(t, client, ns, "greenlight-payments", crashed, 2, time.Now().Add(-time.Minute))

	holder, _, err := ReadLock(t.Context(), client, ns, "greenlight-payments")
	require.NoError(t, err)
	assert.Nil(t, holder, "an expired lock reads as free")

	// No wait allowed: an expired lease is taken at once.
	lock := acquire(t, client, shortLock(ns, runHolder(8)))
	require.NotNil(t, lock.TookOverFrom)
	assert.Equal(t, crashed, *lock.TookOverFrom)
	lease := getLease(t, client, ns, "greenlight-payments")
	assert.Equal(t, "run-8", ptr.Deref(lease.Spec.HolderIdentity, ""))
	assert.Equal(t, int32(1), ptr.Deref(lease.Spec.LeaseTransitions, 0))
	assert.Equal(t, "https://github.com/acme/shop/actions/runs/8", lease.Annotations["greenlight.dev/run-url"])
}

func TestLockTakesOverLeaseStuckInTheFuture(t *testing.T) {
	t.Parallel()
	c := cluster.Get(t)
	ns := c.NewNamespace(t)
	client := c.Client()
	// Its holder's clock ran an hour ahead, then the holder died: only
	// watching the lease go unrenewed tells it expired.
	skewed := runHolder(9)
	createLease(t, client, ns, "greenlight-payments", skewed, 1, time.Now().Add(time.Hour))

	waited := false
	opts := shortLock(ns, runHolder(10))
	opts.Wait = time.Minute
	opts.Waiting = func(*LockHeldError) { waited = true }
	lock := acquire(t, client, opts)
	assert.True(t, waited, "the lease looked held at first")
	require.NotNil(t, lock.TookOverFrom)
	assert.Equal(t, skewed, *lock.TookOverFrom)
}

func TestLockRenewalOutlivesLeaseAndContext(t *testing.T) {
	t.Parallel()
	c := cluster.Get(t)
	ns := c.NewNamespace(t)
	client := c.Client()

	ctx, cancel := context.WithCancel(t.Context())
	first, err := AcquireLock(ctx, client, shortLock(ns, runHolder(1)))
	require.NoError(t, err)
	acquiredRenew := getLease(t, client, ns, "greenlight-payments").Spec.RenewTime.Time
	// The run is cancelled (SIGTERM): the lock must stay held until Release.
	cancel()

	// Waiting twice the lease duration finds it still held: renewed.
	opts := shortLock(ns, runHolder(2))
	opts.Wait = 4 * time.Second
	_, err = AcquireLock(t.Context(), client, opts)
	var held *LockHeldError
	require.ErrorAs(t, err, &held)
	assert.Equal(t, "run-1", held.Holder.ID)
	assert.True(t, held.RenewedAt.After(acquiredRenew), "renewed since it was acquired")
	assertNotLost(t, first)

	// Release works with the run's cancelled context.
	require.NoError(t, first.Release(ctx))
	assert.Nil(t, getLease(t, client, ns, "greenlight-payments").Spec.HolderIdentity)
	second := acquire(t, client, shortLock(ns, runHolder(2)))
	assert.Nil(t, second.TookOverFrom)
}

func TestLockRacersOneWins(t *testing.T) {
	t.Parallel()
	c := cluster.Get(t)
	ns := c.NewNamespace(t)
	client := c.Client()

	const racers = 5
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		won   []*Lock
		held  int
		other []error
	)
	for i := range racers {
		wg.Go(func() {
			lock, err := AcquireLock(t.Context(), client, shortLock(ns, runHolder(i)))
			mu.Lock()
			defer mu.Unlock()
			var he *LockHeldError
			switch {
			case err == nil:
				won = append(won, lock)
			case errors.As(err, &he):
				held++
			default:
				other = append(other, err)
			}
		})
	}
	wg.Wait()
	for _, l := range won {
		t.Cleanup(func() { _ = l.Release(context.Background()) })
	}
	require.Empty(t, other)
	require.Len(t, won, 1, "exactly one run holds the lock")
	assert.Equal(t, racers-1, held)
	assert.Equal(t, won[0].Holder.ID, ptr.Deref(getLease(t, client, ns, "greenlight-payments").Spec.HolderIdentity, ""))
}

func TestLockLostWhenTakenOver(t *testing.T) {
	t.Parallel()
	c := cluster.Get(t)
	ns := c.NewNamespace(t)
	client := c.Client()
	lock := acquire(t, client, shortLock(ns, runHolder(1)))

	// Someone breaks the lock by hand.
	lease := getLease(t, client, ns, "greenlight-payments")
	lease.Spec.HolderIdentity = ptr.To("intruder")
	_, err := client.CoordinationV1().Leases(ns).Update(t.Context(), lease, metav1.UpdateOptions{})
	require.NoError(t, err)

	waitLost(t, lock)
	require.NoError(t, lock.Release(t.Context()))
	assert.Equal(t, "intruder", ptr.Deref(getLease(t, client, ns, "greenlight-payments").Spec.HolderIdentity, ""),
		"releasing a lost lock leaves the new holder alone")
}

func TestLockLostWhenAPIServerUnreachable(t *testing.T) {
	t.Parallel()
	c := cluster.Get(t)
	ns := c.NewNamespace(t)
	fp, cfg := newFaultProxy(t, c.Config())
	client, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	lock := acquire(t, client, shortLock(ns, runHolder(1)))

	fp.fail(faultUnavailable, 1<<30)
	waitLost(t, lock)

	// Back up, nobody took it: Release clears it.
	fp.fail(faultUnavailable, 0)
	require.NoError(t, lock.Release(t.Context()))
	assert.Nil(t, getLease(t, c.Client(), ns, "greenlight-payments").Spec.HolderIdentity)
}

func TestLockForbidden(t *testing.T) {
	t.Parallel()
	c := cluster.Get(t)
	ns := c.NewNamespace(t)
	kubeconfig, err := c.AddUser("lock-nobody")
	require.NoError(t, err)
	kc, err := LoadKubeconfig(string(kubeconfig), "")
	require.NoError(t, err)
	client, err := kubernetes.NewForConfig(kc.REST)
	require.NoError(t, err)

	opts := shortLock(ns, runHolder(1))
	opts.Wait = time.Hour
	_, err = AcquireLock(t.Context(), client, opts)
	require.ErrorIs(t, err, ErrForbidden)
	var held *LockHeldError
	assert.False(t, errors.As(err, &held))
	assert.Contains(t, err.Error(), "read deploy lock "+ns+"/greenlight-payments")

	_, _, err = ReadLock(t.Context(), client, ns, "greenlight-payments")
	require.ErrorIs(t, err, ErrForbidden)
}
