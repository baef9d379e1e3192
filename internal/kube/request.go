package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	coordinationclient "k8s.io/client-go/kubernetes/typed/coordination/v1"
)

// Lease annotations through which a command asks the run holding the lock
// to roll back, and that run answers: one writer at a time, so the run that
// holds the lock does the rollback itself.
const (
	// AnnotationRollbackRequest holds a RollbackRequest as JSON.
	AnnotationRollbackRequest = "greenlight.dev/rollback-request"
	// AnnotationRollbackAnswer holds the holder's RollbackAnswer as JSON.
	AnnotationRollbackAnswer = "greenlight.dev/rollback-answer"
	// AnnotationTakenOver records the last forced takeover of the lock as
	// JSON (a Takeover), so the run that lost it can say who took it.
	AnnotationTakenOver = "greenlight.dev/taken-over"
)

// RollbackRequest asks the run holding a deploy lock to roll back.
type RollbackRequest struct {
	// ID identifies the request; the answer repeats it.
	ID string `json:"id"`
	// Holder is the holderIdentity the request is addressed to: a later
	// run taking the lock ignores a request that was not for it.
	Holder string `json:"holder"`
	// Actor is who asked; Reason is why.
	Actor  string `json:"actor,omitempty"`
	Reason string `json:"reason,omitempty"`
	// At is when the request was made.
	At time.Time `json:"at"`
}

// String reads "octocat (checkout errors)".
func (r RollbackRequest) String() string {
	who := r.Actor
	if who == "" {
		who = "someone"
	}
	if r.Reason != "" {
		return fmt.Sprintf("%s (%s)", who, r.Reason)
	}
	return who
}

// Answer states of a RollbackAnswer.
const (
	// AnswerAccepted: the holder stopped what it did and is rolling back.
	AnswerAccepted = "accepted"
	// AnswerRolledBack: the previous version serves again.
	AnswerRolledBack = "rolled-back"
	// AnswerFailed: the holder's rollback failed; Message says why.
	AnswerFailed = "failed"
	// AnswerNothing: the holder had not changed traffic yet; it stopped
	// and left the version serving before it.
	AnswerNothing = "nothing-to-roll-back"
)

// RollbackAnswer is the holder's reply to a RollbackRequest.
type RollbackAnswer struct {
	// ID is the request's.
	ID string `json:"id"`
	// By describes the answering run.
	By string `json:"by"`
	// State is one of the Answer constants.
	State string `json:"state"`
	// Message says what was done, in one line.
	Message string `json:"message,omitempty"`
	// Image is the image serving after the rollback, when known.
	Image string `json:"image,omitempty"`
	// At is when the answer was written.
	At time.Time `json:"at"`
}

// Final tells whether the holder is done with the request.
func (a RollbackAnswer) Final() bool { return a.State != AnswerAccepted }

// Takeover records a forced takeover of a lock.
type Takeover struct {
	// From is the run that held the lock; By the one that took it.
	From, By string
	// Actor and Reason say who forced it and why.
	Actor  string `json:"actor,omitempty"`
	Reason string `json:"reason,omitempty"`
	// At is when.
	At time.Time `json:"at"`
}

// LeaseState is what a command reads from a deploy lock's Lease.
type LeaseState struct {
	// Held is the live holder, nil when the lock is free or expired.
	Held *LockHeldError
	// Request is the rollback request on the Lease, if any.
	Request *RollbackRequest
	// Answer is the holder's answer on the Lease, if any.
	Answer *RollbackAnswer
	// TakenOver is the last forced takeover, if any.
	TakenOver *Takeover
}

func leaseState(lease *coordinationv1.Lease) LeaseState {
	var s LeaseState
	if decideLock(lease.Spec, "", time.Now(), 0, defaultLeaseDuration) == lockHeld {
		s.Held = heldError(lease)
	}
	if raw := lease.Annotations[AnnotationRollbackRequest]; raw != "" {
		var r RollbackRequest
		if json.Unmarshal([]byte(raw), &r) == nil {
			s.Request = &r
		}
	}
	if raw := lease.Annotations[AnnotationRollbackAnswer]; raw != "" {
		var a RollbackAnswer
		if json.Unmarshal([]byte(raw), &a) == nil {
			s.Answer = &a
		}
	}
	if raw := lease.Annotations[AnnotationTakenOver]; raw != "" {
		var t Takeover
		if json.Unmarshal([]byte(raw), &t) == nil {
			s.TakenOver = &t
		}
	}
	return s
}

// ReadLease reads the deploy lock's Lease; a missing Lease is a free lock.
func ReadLease(ctx context.Context, client kubernetes.Interface, namespace, name string) (LeaseState, error) {
	return readLease(ctx, client.CoordinationV1().Leases(namespace), namespace, name)
}

func readLease(ctx context.Context, leases coordinationclient.LeaseInterface, namespace, name string) (LeaseState, error) {
	var lease *coordinationv1.Lease
	err := Retry(ctx, RetryPolicy{}, func(ctx context.Context) (err error) {
		lease, err = leases.Get(ctx, name, metav1.GetOptions{})
		return err
	})
	if apierrors.IsNotFound(err) {
		return LeaseState{}, nil
	}
	if err != nil {
		return LeaseState{}, fmt.Errorf("read deploy lock %s/%s: %w", namespace, name, ClassifyAPIError(err))
	}
	return leaseState(lease), nil
}

// errNotHeld means the lock was free when a request was to be written.
var errNotHeld = errors.New("deploy lock is not held")

// annotateLease sets (or with an empty value removes) annotations on the
// Lease, re-reading on conflict; check may refuse the write on what it
// reads.
func annotateLease(ctx context.Context, leases coordinationclient.LeaseInterface, namespace, name string, set map[string]string, check func(*coordinationv1.Lease) error) error {
	for range 10 {
		var lease *coordinationv1.Lease
		err := Retry(ctx, RetryPolicy{}, func(ctx context.Context) (err error) {
			lease, err = leases.Get(ctx, name, metav1.GetOptions{})
			return err
		})
		if err != nil {
			return err
		}
		if check != nil {
			if err := check(lease); err != nil {
				return err
			}
		}
		next := lease.DeepCopy()
		if next.Annotations == nil {
			next.Annotations = map[string]string{}
		}
		for k, v := range set {
			if v == "" {
				delete(next.Annotations, k)
			} else {
				next.Annotations[k] = v
			}
		}
		err = Retry(ctx, RetryPolicy{}, func(ctx context.Context) error {
			_, err := leases.Update(ctx, next, metav1.UpdateOptions{})
			return err
		})
		if apierrors.IsConflict(err) {
			continue // the holder renewed meanwhile: re-read and write again
		}
		return err
	}
	return fmt.Errorf("the lease %s/%s keeps changing", namespace, name)
}

// RequestRollback records a rollback request on the Lease, addressed to
// the run holding the lock now. It returns that run, or nil when the lock
// is free (then the caller takes it and rolls back itself).
func RequestRollback(ctx context.Context, client kubernetes.Interface, namespace, name string, req RollbackRequest) (*LockHeldError, error) {
	var held *LockHeldError
	body := func(l *coordinationv1.Lease) error {
		s := leaseState(l)
		if s.Held == nil {
			return errNotHeld
		}
		held = s.Held
		return nil
	}
	// The holder's identity goes into the request, so read it first.
	state, err := ReadLease(ctx, client, namespace, name)
	if err != nil {
		return nil, err
	}
	if state.Held == nil {
		return nil, nil
	}
	req.Holder = state.Held.Holder.ID
	raw, _ := json.Marshal(req)
	err = annotateLease(ctx, client.CoordinationV1().Leases(namespace), namespace, name, map[string]string{AnnotationRollbackRequest: string(raw), AnnotationRollbackAnswer: ""}, func(l *coordinationv1.Lease) error {
		if err := body(l); err != nil {
			return err
		}
		if held.Holder.ID != req.Holder {
			return errNotHeld // changed hands: the caller starts over
		}
		return nil
	})
	switch {
	case errors.Is(err, errNotHeld), apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("ask the holder of deploy lock %s/%s to roll back: %w", namespace, name, ClassifyAPIError(err))
	}
	return held, nil
}

// ClearRollbackRequest removes a handled request and its answer.
func ClearRollbackRequest(ctx context.Context, client kubernetes.Interface, namespace, name string) error {
	err := annotateLease(ctx, client.CoordinationV1().Leases(namespace), namespace, name, map[string]string{AnnotationRollbackRequest: "", AnnotationRollbackAnswer: ""}, nil)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("clear the rollback request on %s/%s: %w", namespace, name, ClassifyAPIError(err))
	}
	return nil
}

// RollbackRequested returns a rollback request addressed to this lock's
// holder that it has not answered finally, or nil. It reads the Lease once.
func (l *Lock) RollbackRequested(ctx context.Context) (*RollbackRequest, error) {
	s, err := readLease(ctx, l.leases, l.Namespace, l.Name)
	if err != nil {
		return nil, err
	}
	if s.Request == nil || s.Request.Holder != l.Holder.ID {
		return nil, nil
	}
	if s.Answer != nil && s.Answer.ID == s.Request.ID && s.Answer.Final() {
		return nil, nil
	}
	return s.Request, nil
}

// Answer writes this holder's answer to a rollback request.
func (l *Lock) Answer(ctx context.Context, a RollbackAnswer) error {
	if a.By == "" {
		a.By = l.Holder.String()
	}
	if a.At.IsZero() {
		a.At = time.Now()
	}
	raw, _ := json.Marshal(a)
	err := annotateLease(ctx, l.leases, l.Namespace, l.Name, map[string]string{AnnotationRollbackAnswer: string(raw)}, nil)
	if err != nil {
		return fmt.Errorf("answer the rollback request on %s/%s: %w", l.Namespace, l.Name, ClassifyAPIError(err))
	}
	return nil
}

// TakenOverBy tells who forced this lock away, when the Lease says so.
func (l *Lock) TakenOverBy(ctx context.Context) *Takeover {
	s, err := readLease(ctx, l.leases, l.Namespace, l.Name)
	if err != nil || s.TakenOver == nil || s.TakenOver.From != l.Holder.ID {
		return nil
	}
	return s.TakenOver
}

// ForceTakeLock takes the lock from a live holder that does not answer,
// recording who forced it and why on the Lease; the holder's renewal then
// fails and it learns it lost the lock. A free lock is simply taken.
func ForceTakeLock(ctx context.Context, client kubernetes.Interface, opts LockOptions, actor, reason string) (*Lock, *Holder, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, nil, err
	}
	leases := client.CoordinationV1().Leases(o.Namespace)
	for range 10 {
		lease, err := leases.Get(ctx, o.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			o.Wait = -1
			l, err := AcquireLock(ctx, client, o)
			return l, nil, err
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read deploy lock %s/%s: %w", o.Namespace, o.Name, ClassifyAPIError(err))
		}
		var previous *Holder
		if decideLock(lease.Spec, o.Holder.ID, time.Now(), 0, o.LeaseDuration) != lockFree {
			h := holderOf(lease)
			if h.ID != o.Holder.ID {
				previous = &h
			}
		}
		next := takeLease(lease, o.Holder, o.LeaseDuration, time.Now())
		if previous != nil {
			raw, _ := json.Marshal(Takeover{From: previous.ID, By: o.Holder.String(), Actor: actor, Reason: reason, At: time.Now()})
			next.Annotations[AnnotationTakenOver] = string(raw)
		}
		updated, err := leases.Update(ctx, next, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("take over deploy lock %s/%s: %w", o.Namespace, o.Name, ClassifyAPIError(err))
		}
		return startLock(o, leases, updated, previous), previous, nil
	}
	return nil, nil, fmt.Errorf("take over deploy lock %s/%s: the lease keeps changing", o.Namespace, o.Name)
}

// ForceUnlock clears a deploy lock whoever holds it, recording who forced
// it and why on the Lease, so the run that held it can say so. It returns
// the holder it removed, nil when the lock was free.
func ForceUnlock(ctx context.Context, client kubernetes.Interface, namespace, name string, by Holder, reason string) (*LockHeldError, error) {
	leases := client.CoordinationV1().Leases(namespace)
	for range 10 {
		var lease *coordinationv1.Lease
		err := Retry(ctx, RetryPolicy{}, func(ctx context.Context) (err error) {
			lease, err = leases.Get(ctx, name, metav1.GetOptions{})
			return err
		})
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read deploy lock %s/%s: %w", namespace, name, ClassifyAPIError(err))
		}
		if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
			return nil, nil
		}
		held := heldError(lease)
		next := clearedLease(lease)
		if next.Annotations == nil {
			next.Annotations = map[string]string{}
		}
		raw, _ := json.Marshal(Takeover{From: held.Holder.ID, By: by.String(), Actor: by.Actor, Reason: reason, At: time.Now()})
		next.Annotations[AnnotationTakenOver] = string(raw)
		_, err = leases.Update(ctx, next, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("unlock deploy lock %s/%s: %w", namespace, name, ClassifyAPIError(err))
		}
		return held, nil
	}
	return nil, fmt.Errorf("unlock deploy lock %s/%s: the lease keeps changing", namespace, name)
}
