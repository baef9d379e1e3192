package ops

import (
	"context"
	"fmt"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/ebeautything/greenlight/internal/config"
	"github.com/ebeautything/greenlight/internal/kube"
)

// UnlockResult says what an unlock did.
type UnlockResult struct {
	// Lock names the Lease, namespace/name.
	Lock string
	// Held is the run that held the lock, nil when it was free.
	Held *kube.LockHeldError
}

// CheckUnlock refuses an unlock that was not confirmed with --force or
// says no reason, as an *config.InputError. Pure.
func CheckUnlock(force bool, reason string) error {
	if !force {
		return &config.InputError{Input: "force", Problem: "is not set; unlock takes the lock from its holder, alive or not",
			Accepted: "--force with --reason=\"why\", once you know the holder is dead or must stop"}
	}
	if strings.TrimSpace(reason) == "" {
		return &config.InputError{Input: "reason", Problem: "is not set; an unlock is recorded with why it was done",
			Accepted: "one line of text, such as --reason=\"runner died mid deploy\""}
	}
	return nil
}

// Unlock clears the environment's deploy lock whoever holds it, recording
// who did it and why on the Lease (a live holder names it when it ends).
func Unlock(ctx context.Context, client kubernetes.Interface, t Target, by kube.Holder, reason string) (UnlockResult, error) {
	name := kube.LockName(t.Deployment)
	r := UnlockResult{Lock: t.Namespace + "/" + name}
	held, err := kube.ForceUnlock(ctx, client, t.Namespace, name, by, reason)
	r.Held = held
	return r, err
}

// UnlockRecord is the history record of an unlock. Pure.
func UnlockRecord(a Audit, r UnlockResult, reason string, err error) kube.Record {
	what := fmt.Sprintf("unlocked %s%s: %s", r.Lock, a.by(), reason)
	if r.Held != nil {
		what += fmt.Sprintf(" (held by %s)", heldSince(r.Held))
	}
	if err != nil {
		return a.record(kube.RecordFailed, fmt.Sprintf("unlock %s%s failed: %v", r.Lock, a.by(), err), "", 0, "")
	}
	return a.record(kube.RecordSucceeded, what, "", 0, "")
}

// UnlockText is one line for the terminal and the summary. Pure.
func UnlockText(r UnlockResult, now time.Time) string {
	if r.Held == nil {
		return fmt.Sprintf("deploy lock %s was free; nothing to unlock", r.Lock)
	}
	since := ""
	if !r.Held.Since.IsZero() {
		since = fmt.Sprintf(", held for %s", now.Sub(r.Held.Since).Round(time.Second))
	}
	return fmt.Sprintf("deploy lock %s cleared: it was held by %s%s", r.Lock, heldSince(r.Held), since)
}

func heldSince(h *kube.LockHeldError) string {
	s := h.Holder.String()
	if !h.Since.IsZero() {
		s += " since " + h.Since.UTC().Format("15:04:05 UTC")
	}
	return s
}
