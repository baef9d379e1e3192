package kube

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	coordinationclient "k8s.io/client-go/kubernetes/typed/coordination/v1"
)

// Lock defaults: a crashed run blocks others for at most a minute, and a
// renewal may fail twice before the lease runs out.
const (
	defaultLeaseDuration = 60 * time.Second
	defaultLockWait      = 5 * time.Minute
	defaultLockPoll      = 2 * time.Second
	// lockReleaseTimeout bounds Release, which runs after the run's own
	// context may be gone.
	lockReleaseTimeout = 30 * time.Second
)

// Lease annotations that describe the run holding the lock, beside
// AnnotationRunURL and AnnotationActor.
const (
	// AnnotationRepository names the repository the holding run deploys.
	AnnotationRepository = "greenlight.dev/repository"
	// AnnotationEnvironment names the environment the holding run deploys to.
	AnnotationEnvironment = "greenlight.dev/environment"
	// AnnotationStartedAt is when the holding run took the lock, in RFC 3339
	// UTC.
	AnnotationStartedAt = "greenlight.dev/started-at"
)

// lockAnnotations are the annotations a holder owns on its Lease; releasing
// the lock removes them.
var lockAnnotations = []string{AnnotationRepository, AnnotationRunURL, AnnotationActor, AnnotationEnvironment, AnnotationStartedAt}

// errLockLost means the Lease no longer names this run as its holder.
var errLockLost = errors.New("deploy lock was taken by another run or deleted")

// LockName is the Lease name that serialises deployments of a Deployment.
func LockName(deployment string) string { return "greenlight-" + deployment }

// Holder identifies the run that holds a deploy lock.
type Holder struct {
	// ID is unique per run; it is the Lease's holderIdentity.
	ID string
	// Repository is the repository being deployed, such as "acme/shop".
	Repository string
	// RunURL links to the workflow run; credentials and query are dropped
	// before it is stored.
	RunURL string
	// Actor is who started the run.
	Actor string
	// Environment is the environment being deployed to.
	Environment string
}

// String reads "run https://github.com/acme/shop/actions/runs/42 (octocat,
// acme/shop)", falling back to the ID when there is no run URL.
func (h Holder) String() string {
	run := h.RunURL
	if run == "" {
		run = h.ID
	}
	var who []string
	for _, s := range []string{h.Actor, h.Repository} {
		if s != "" {
			who = append(who, s)
		}
	}
	if len(who) == 0 {
		return "run " + run
	}
	return fmt.Sprintf("run %s (%s)", run, strings.Join(who, ", "))
}

// LockOptions configure AcquireLock. Zero durations take the defaults.
type LockOptions struct {
	// Namespace holds the Lease, normally the application's namespace.
	Namespace string
	// Deployment names the Lease "greenlight-<Deployment>" when Name is
	// empty.
	Deployment string
	// Name is the Lease's name; it overrides Deployment.
	Name string
	// Holder identifies this run; an empty ID is replaced with a random one.
	Holder Holder
	// LeaseDuration is how long the lock outlives its last renewal; default
	// 60s, rounded up to whole seconds as the Lease stores it.
	LeaseDuration time.Duration
	// RenewEvery is how often the lock is renewed; default a third of
	// LeaseDuration. It must be shorter than LeaseDuration.
	RenewEvery time.Duration
	// Wait is how long to wait for a lock another run holds; default 5m. A
	// negative Wait fails at once.
	Wait time.Duration
	// PollEvery is how often a held lock is checked while waiting; default 2s.
	PollEvery time.Duration
	// Waiting, when set, is called once if the lock is held by another run
	// and AcquireLock starts to wait, so the caller can say who it waits for.
	Waiting func(held *LockHeldError)
}

func (o LockOptions) withDefaults() (LockOptions, error) {
	if o.Name == "" && o.Deployment != "" {
		o.Name = LockName(o.Deployment)
	}
	switch {
	case o.Namespace == "":
		return o, errors.New("deploy lock: no namespace given")
	case o.Name == "":
		return o, errors.New("deploy lock: no lease name or deployment given")
	}
	if o.Holder.ID == "" {
		id := make([]byte, 8)
		_, _ = rand.Read(id)
		o.Holder.ID = "greenlight-run-" + hex.EncodeToString(id)
	}
	o.Holder.RunURL = publicURL(o.Holder.RunURL)
	if o.LeaseDuration <= 0 {
		o.LeaseDuration = defaultLeaseDuration
	}
	o.LeaseDuration = time.Duration(leaseSeconds(o.LeaseDuration)) * time.Second
	if o.RenewEvery <= 0 {
		o.RenewEvery = o.LeaseDuration / 3
	}
	if o.RenewEvery >= o.LeaseDuration {
		return o, fmt.Errorf("deploy lock: renewing every %s cannot keep a %s lease alive", o.RenewEvery, o.LeaseDuration)
	}
	if o.Wait == 0 {
		o.Wait = defaultLockWait
	}
	if o.PollEvery <= 0 {
		o.PollEvery = defaultLockPoll
	}
	return o, nil
}

// leaseSeconds rounds d up to the whole seconds a Lease stores, at least one.
func leaseSeconds(d time.Duration) int32 {
	s := math.Ceil(d.Seconds())
	return int32(min(max(s, 1), math.MaxInt32))
}

// LockHeldError means another run holds the deploy lock and did not let go
// within the wait.
type LockHeldError struct {
	// Namespace and Name locate the Lease.
	Namespace, Name string
	// Holder is the run holding the lock.
	Holder Holder
	// Since is when that run took the lock.
	Since time.Time
	// RenewedAt is when that run last renewed it.
	RenewedAt time.Time
}

// Error reads "deploy lock payments/greenlight-payments is held by run
// https://github.com/acme/shop/actions/runs/42 (octocat, acme/shop) since
// 12:00:01 UTC".
func (e *LockHeldError) Error() string {
	msg := fmt.Sprintf("deploy lock %s/%s is held by %s", e.Namespace, e.Name, e.Holder)
	if !e.Since.IsZero() {
		msg += " since " + e.Since.UTC().Format("15:04:05 UTC")
	}
	return msg
}

// Lock is a held deploy lock. It renews itself in the background until
// Release; Lost tells when it could not.
type Lock struct {
	// Namespace and Name locate the Lease.
	Namespace, Name string
	// Holder is this run, with its ID filled in.
	Holder Holder
	// TookOverFrom is the run whose expired lock this one replaced, nil when
	// the lock was free.
	TookOverFrom *Holder

	leases coordinationclient.LeaseInterface
	opts   LockOptions
	lease  *coordinationv1.Lease // owned by the renewal goroutine until it ends

	lost, stop, done chan struct{}
	releaseOnce      sync.Once
	releaseErr       error
}

// lockState is what a Lease means to a run that wants it.
type lockState int

const (
	lockFree lockState = iota
	lockOurs
	lockExpired
	lockHeld
)

// decideLock says whether the run id may take a Lease with this spec at now.
// unchanged is how long this run has seen the Lease unmodified: a lease not
// renewed for its duration has expired, whether its renew time says so
// (crashed runs) or this run's own observation does (a holder whose clock is
// ahead). fallback is the duration of a lease that states none.
func decideLock(spec coordinationv1.LeaseSpec, id string, now time.Time, unchanged, fallback time.Duration) lockState {
	holder := ""
	if spec.HolderIdentity != nil {
		holder = *spec.HolderIdentity
	}
	switch {
	case holder == "":
		return lockFree
	case holder == id:
		return lockOurs
	}
	duration := fallback
	if spec.LeaseDurationSeconds != nil && *spec.LeaseDurationSeconds > 0 {
		duration = time.Duration(*spec.LeaseDurationSeconds) * time.Second
	}
	if unchanged > duration {
		return lockExpired
	}
	if renewed := lastRenewed(spec); !renewed.IsZero() && now.Sub(renewed) > duration {
		return lockExpired
	}
	return lockHeld
}

func lastRenewed(spec coordinationv1.LeaseSpec) time.Time {
	switch {
	case spec.RenewTime != nil:
		return spec.RenewTime.Time
	case spec.AcquireTime != nil:
		return spec.AcquireTime.Time
	}
	return time.Time{}
}

// holderOf reads the run holding a Lease from its spec and annotations.
func holderOf(lease *coordinationv1.Lease) Holder {
	h := Holder{
		Repository:  lease.Annotations[AnnotationRepository],
		RunURL:      lease.Annotations[AnnotationRunURL],
		Actor:       lease.Annotations[AnnotationActor],
		Environment: lease.Annotations[AnnotationEnvironment],
	}
	if lease.Spec.HolderIdentity != nil {
		h.ID = *lease.Spec.HolderIdentity
	}
	return h
}

func heldError(lease *coordinationv1.Lease) *LockHeldError {
	e := &LockHeldError{Namespace: lease.Namespace, Name: lease.Name, Holder: holderOf(lease), RenewedAt: lastRenewed(lease.Spec)}
	if lease.Spec.AcquireTime != nil {
		e.Since = lease.Spec.AcquireTime.Time
	}
	return e
}

// takeLease returns lease held by h from now on, counting a transition when
// an existing lease changes hands, as client-go's leader election does.
func takeLease(lease *coordinationv1.Lease, h Holder, duration time.Duration, now time.Time) *coordinationv1.Lease {
	next := lease.DeepCopy()
	previous := ""
	if next.Spec.HolderIdentity != nil {
		previous = *next.Spec.HolderIdentity
	}
	if previous != h.ID {
		transitions := int32(0)
		if next.Spec.LeaseTransitions != nil {
			transitions = *next.Spec.LeaseTransitions
		}
		if next.ResourceVersion != "" {
			transitions++ // an existing lease changes hands; a new one starts at 0
		}
		next.Spec.LeaseTransitions = &transitions
	}
	at := metav1.NewMicroTime(now)
	seconds := leaseSeconds(duration)
	next.Spec.HolderIdentity = &h.ID
	next.Spec.LeaseDurationSeconds = &seconds
	next.Spec.AcquireTime = &at
	next.Spec.RenewTime = &at
	if next.Labels == nil {
		next.Labels = map[string]string{}
	}
	next.Labels["app.kubernetes.io/managed-by"] = "greenlight"
	if next.Annotations == nil {
		next.Annotations = map[string]string{}
	}
	for _, key := range lockAnnotations {
		delete(next.Annotations, key)
	}
	for key, value := range map[string]string{
		AnnotationRepository:  h.Repository,
		AnnotationRunURL:      h.RunURL,
		AnnotationActor:       h.Actor,
		AnnotationEnvironment: h.Environment,
		AnnotationStartedAt:   now.UTC().Format(time.RFC3339),
	} {
		if value != "" {
			next.Annotations[key] = value
		}
	}
	return next
}

// clearedLease returns lease with no holder, so the next run takes it at
// once; clearing rather than deleting needs only the update permission.
func clearedLease(lease *coordinationv1.Lease) *coordinationv1.Lease {
	next := lease.DeepCopy()
	next.Spec.HolderIdentity = nil
	next.Spec.AcquireTime = nil
	next.Spec.RenewTime = nil
	for _, key := range lockAnnotations {
		delete(next.Annotations, key)
	}
	return next
}

// AcquireLock takes the deploy lock: the Lease opts names, created when
// missing. A lock another run holds is waited for, up to opts.Wait, and
// then refused with a *LockHeldError; a lock whose holder stopped renewing
// it for its duration is taken over and the old holder reported in
// Lock.TookOverFrom. Every write is guarded by the Lease's resourceVersion,
// so of two runs racing for it exactly one wins. The lock then renews
// itself, even after ctx is cancelled, until Release.
func AcquireLock(ctx context.Context, client kubernetes.Interface, opts LockOptions) (*Lock, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	leases := client.CoordinationV1().Leases(o.Namespace)
	where := o.Namespace + "/" + o.Name
	deadline := time.Now().Add(o.Wait)
	var (
		seenVersion string
		seenAt      time.Time
		notified    bool
		// previous survives a retried takeover that finds the lease already ours.
		previous *Holder
	)
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("acquire deploy lock %s: %w", where, err)
		}
		var lease *coordinationv1.Lease
		err := Retry(ctx, RetryPolicy{}, func(ctx context.Context) (err error) {
			lease, err = leases.Get(ctx, o.Name, metav1.GetOptions{})
			return err
		})
		if apierrors.IsNotFound(err) {
			fresh := takeLease(&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: o.Name, Namespace: o.Namespace}}, o.Holder, o.LeaseDuration, time.Now())
			var created *coordinationv1.Lease
			err := Retry(ctx, RetryPolicy{}, func(ctx context.Context) (err error) {
				created, err = leases.Create(ctx, fresh, metav1.CreateOptions{})
				return err
			})
			if apierrors.IsAlreadyExists(err) {
				continue // another run created it first, or a retried create did: re-read
			}
			if err != nil {
				return nil, fmt.Errorf("create deploy lock %s: %w", where, ClassifyAPIError(err))
			}
			return startLock(o, leases, created, nil), nil
		}
		if err != nil {
			return nil, fmt.Errorf("read deploy lock %s: %w", where, ClassifyAPIError(err))
		}

		now := time.Now()
		if lease.ResourceVersion != seenVersion {
			seenVersion, seenAt = lease.ResourceVersion, now
		}
		state := decideLock(lease.Spec, o.Holder.ID, now, now.Sub(seenAt), o.LeaseDuration)
		if state == lockHeld {
			held := heldError(lease)
			remaining := time.Until(deadline)
			if remaining <= 0 {
				return nil, held
			}
			if !notified && o.Waiting != nil {
				notified = true
				o.Waiting(held)
			}
			timer := time.NewTimer(min(o.PollEvery, remaining))
			select {
			case <-ctx.Done():
				timer.Stop()
				return nil, fmt.Errorf("stopped waiting: %w: %w", held, ctx.Err())
			case <-timer.C:
			}
			continue
		}

		switch state {
		case lockExpired:
			h := holderOf(lease)
			previous = &h
		case lockFree:
			previous = nil
		}
		next := takeLease(lease, o.Holder, o.LeaseDuration, now)
		var updated *coordinationv1.Lease
		err = Retry(ctx, RetryPolicy{}, func(ctx context.Context) (err error) {
			updated, err = leases.Update(ctx, next, metav1.UpdateOptions{})
			return err
		})
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			continue // changed under us: decide again on what is there now
		}
		if err != nil {
			return nil, fmt.Errorf("take deploy lock %s: %w", where, ClassifyAPIError(err))
		}
		return startLock(o, leases, updated, previous), nil
	}
}

func startLock(o LockOptions, leases coordinationclient.LeaseInterface, lease *coordinationv1.Lease, previous *Holder) *Lock {
	l := &Lock{
		Namespace:    o.Namespace,
		Name:         o.Name,
		Holder:       o.Holder,
		TookOverFrom: previous,
		leases:       leases,
		opts:         o,
		lease:        lease,
		lost:         make(chan struct{}),
		stop:         make(chan struct{}),
		done:         make(chan struct{}),
	}
	go l.renew()
	return l
}

// Lost is closed when the lock could not be renewed for its whole duration,
// or another run took it: from then on another deployment may start.
func (l *Lock) Lost() <-chan struct{} { return l.lost }

// renew keeps the lease fresh until Release. It is not tied to the run's
// context: a cancelled run still holds the lock while it puts the old
// version back, and Release ends the renewal.
func (l *Lock) renew() {
	defer close(l.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-l.stop:
			cancel()
		case <-ctx.Done():
		}
	}()

	ticker := time.NewTicker(l.opts.RenewEvery)
	defer ticker.Stop()
	renewed := time.Now()
	for {
		select {
		case <-l.stop:
			return
		case <-ticker.C:
		}
		// A call may take no longer than the lease has left, so a hanging
		// API server is noticed when the lease runs out, not later.
		callCtx, callCancel := context.WithDeadline(ctx, renewed.Add(l.opts.LeaseDuration))
		err := l.renewOnce(callCtx)
		callCancel()
		switch {
		case err == nil:
			renewed = time.Now()
		case errors.Is(err, errLockLost), time.Since(renewed) >= l.opts.LeaseDuration:
			select {
			case <-l.stop: // released meanwhile: not lost
			default:
				close(l.lost)
			}
			return
		}
	}
}

// renewOnce moves the lease's renew time to now. A conflict is re-read: the
// lease may have been touched by a retried write of this run, but if another
// run holds it now, the lock is lost.
func (l *Lock) renewOnce(ctx context.Context) error {
	for range 3 {
		next := l.lease.DeepCopy()
		at := metav1.NewMicroTime(time.Now())
		next.Spec.RenewTime = &at
		updated, err := l.leases.Update(ctx, next, metav1.UpdateOptions{})
		if err == nil {
			l.lease = updated
			return nil
		}
		if apierrors.IsNotFound(err) {
			return errLockLost
		}
		if !apierrors.IsConflict(err) {
			return err
		}
		current, err := l.leases.Get(ctx, l.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return errLockLost
		}
		if err != nil {
			return err
		}
		if current.Spec.HolderIdentity == nil || *current.Spec.HolderIdentity != l.Holder.ID {
			return errLockLost
		}
		l.lease = current
	}
	return fmt.Errorf("renew deploy lock %s/%s: the lease keeps changing", l.Namespace, l.Name)
}

// Release stops renewing and clears the lock so the next run may take it at
// once. It may be called more than once and after ctx is cancelled: it uses
// a short context of its own. A lock another run took meanwhile is left
// alone.
func (l *Lock) Release(ctx context.Context) error {
	l.releaseOnce.Do(func() {
		close(l.stop)
		<-l.done
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lockReleaseTimeout)
		defer cancel()
		l.releaseErr = l.clear(rctx)
	})
	return l.releaseErr
}

func (l *Lock) clear(ctx context.Context) error {
	where := l.Namespace + "/" + l.Name
	for range 5 {
		if l.lease.Spec.HolderIdentity == nil || *l.lease.Spec.HolderIdentity != l.Holder.ID {
			return nil
		}
		next := clearedLease(l.lease)
		err := Retry(ctx, PatientRetry, func(ctx context.Context) error {
			_, err := l.leases.Update(ctx, next, metav1.UpdateOptions{})
			return err
		})
		switch {
		case err == nil, apierrors.IsNotFound(err):
			return nil
		case !apierrors.IsConflict(err):
			return fmt.Errorf("release deploy lock %s: %w", where, ClassifyAPIError(err))
		}
		var current *coordinationv1.Lease
		err = Retry(ctx, PatientRetry, func(ctx context.Context) (err error) {
			current, err = l.leases.Get(ctx, l.Name, metav1.GetOptions{})
			return err
		})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("release deploy lock %s: %w", where, ClassifyAPIError(err))
		}
		l.lease = current
	}
	return fmt.Errorf("release deploy lock %s: the lease keeps changing", where)
}

// ReadLock tells who holds the deploy lock in the Lease namespace/name, and
// since when, for status commands. It returns a nil Holder when the lock is
// free: missing, released, or expired (the next AcquireLock takes it over).
func ReadLock(ctx context.Context, client kubernetes.Interface, namespace, name string) (*Holder, time.Time, error) {
	var lease *coordinationv1.Lease
	err := Retry(ctx, RetryPolicy{}, func(ctx context.Context) (err error) {
		lease, err = client.CoordinationV1().Leases(namespace).Get(ctx, name, metav1.GetOptions{})
		return err
	})
	if apierrors.IsNotFound(err) {
		return nil, time.Time{}, nil
	}
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("read deploy lock %s/%s: %w", namespace, name, ClassifyAPIError(err))
	}
	if decideLock(lease.Spec, "", time.Now(), 0, defaultLeaseDuration) != lockHeld {
		return nil, time.Time{}, nil
	}
	held := heldError(lease)
	return &held.Holder, held.Since, nil
}
