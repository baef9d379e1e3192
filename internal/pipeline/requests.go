package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ebeautything/greenlight/internal/config"
	"github.com/ebeautything/greenlight/internal/event"
	"github.com/ebeautything/greenlight/internal/kube"
	"github.com/ebeautything/greenlight/internal/strategy"
)

// requestedError is why a run rolled back when another command asked it to.
type requestedError struct{ req kube.RollbackRequest }

func (e *requestedError) Error() string {
	return "a rollback was requested by " + e.req.String()
}

// requestedOr returns the rollback request that cancelled ctx, else err.
func requestedOr(ctx context.Context, err error) error {
	var req *requestedError
	if errors.As(context.Cause(ctx), &req) {
		return req
	}
	return err
}

// requestPoll is how often the lock is asked for a rollback request: the
// probe interval, bounded so a long interval still answers promptly.
func requestPoll(interval time.Duration) time.Duration {
	return min(max(interval, 500*time.Millisecond), 10*time.Second)
}

// watchRequests returns a context that ends, with a *requestedError as its
// cause, once another command asks this run to roll back. stop ends the
// watch; it may be called more than once.
func (r *run) watchRequests(ctx context.Context) (context.Context, func()) {
	if r.deps.RollbackRequested == nil {
		return ctx, func() {}
	}
	wctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		ticker := time.NewTicker(requestPoll(r.cfg.MonitorInterval))
		defer ticker.Stop()
		for {
			if req := r.pollRequest(wctx); req != nil {
				cancel(&requestedError{req: *req})
				return
			}
			select {
			case <-done:
				return
			case <-wctx.Done():
				return
			case <-ticker.C:
			}
		}
	}()
	var once bool
	return wctx, func() {
		if once {
			return
		}
		once = true
		close(done)
		<-stopped
		if context.Cause(wctx) == nil || !isRequested(context.Cause(wctx)) {
			cancel(nil)
		}
	}
}

func isRequested(err error) bool {
	var req *requestedError
	return errors.As(err, &req)
}

// pollRequest asks once; a request seen is accepted on the Lease at once,
// so the asking command knows this run heard it.
func (r *run) pollRequest(ctx context.Context) *kube.RollbackRequest {
	if r.requested != nil {
		return r.requested
	}
	req, err := r.deps.RollbackRequested(ctx)
	if err != nil || req == nil {
		return nil
	}
	r.requested = req
	r.warn("a rollback was requested by %s: stopping and rolling back", req)
	if r.deps.AnswerRollback != nil {
		if err := r.deps.AnswerRollback(ctx, kube.RollbackAnswer{ID: req.ID, State: kube.AnswerAccepted, Message: "rolling back"}); err != nil {
			r.warn("answer the rollback request: %v", err)
		}
	}
	return req
}

// lastRequest asks once more before the old version is scaled down: a
// request that arrived after the last poll still wins.
func (r *run) lastRequest(ctx context.Context) error {
	if r.deps.RollbackRequested == nil {
		return nil
	}
	if req := r.pollRequest(ctx); req != nil {
		return &requestedError{req: *req}
	}
	return nil
}

// answerRequest tells the asking command how the requested rollback ended.
func (r *run) answerRequest(ctx context.Context) {
	if r.requested == nil || r.deps.AnswerRollback == nil {
		return
	}
	a := kube.RollbackAnswer{ID: r.requested.ID, Message: r.out.Result.Reason}
	switch {
	case r.out.Result.Status == event.StatusRolledBack:
		a.State, a.Image = kube.AnswerRolledBack, r.out.Deployed.PreviousImage
	case r.out.Result.Status == event.StatusRollbackFailed:
		a.State = kube.AnswerFailed
	default:
		a.State = kube.AnswerNothing
		a.Message = fmt.Sprintf("this run had not moved traffic: %s", r.out.Result.Reason)
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if err := r.deps.AnswerRollback(actx, a); err != nil {
		r.warn("answer the rollback request: %v", err)
	}
}

func orImage(image string) string {
	if image == "" {
		return "the previous version"
	}
	return image
}

// closeWindows scales down the previous colors whose rollback window closed
// before now (with takeIdle, every one); only a lock holder calls it.
func (r *run) closeWindows(ctx context.Context, now time.Time, takeIdle bool) {
	if r.cfg.Strategy != config.BlueGreen {
		return
	}
	t := strategy.Target{Namespace: r.cfg.Namespace, Deployment: r.cfg.Deployment, Service: r.serviceName()}
	closed, err := strategy.CloseExpiredWindows(ctx, r.deps.Client, t, now, takeIdle)
	for _, c := range closed {
		r.emit(event.Event{Kind: event.StepFinished, Message: c})
	}
	if err != nil {
		r.warn("close the rollback window: %v", err)
	}
}
