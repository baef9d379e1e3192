package ops

import (
	"time"

	"github.com/ebeautything/greenlight/internal/kube"
)

// Entry is one history record as the operator commands show it: a deploy,
// or an operator action such as a scale or a maintenance switch.
type Entry struct {
	// ID identifies the deploy (a commit SHA) or the action ("scale-…").
	ID string
	// Image is the image deployed, or running during the action.
	Image string
	// PreviousImage is the image a deploy replaced.
	PreviousImage string
	// Result is how it ended: succeeded, failed, rolled-back or
	// rollback-failed.
	Result string
	// Reason explains a failure, a rollback or what an action did.
	Reason string
	// Actor is who started it.
	Actor string
	// RunURL links to the workflow run, if any.
	RunURL string
	// ActiveColor is the color serving afterwards (blue-green).
	ActiveColor string
	// Revision is the Deployment revision it left.
	Revision int64
	// StartedAt and FinishedAt bound it; either may be zero.
	StartedAt, FinishedAt time.Time
	// RolledBack is true when the new version was rolled back.
	RolledBack bool
}

// Duration is how long it took, zero when a bound is unknown.
func (e Entry) Duration() time.Duration {
	if e.StartedAt.IsZero() || e.FinishedAt.IsZero() || e.FinishedAt.Before(e.StartedAt) {
		return 0
	}
	return e.FinishedAt.Sub(e.StartedAt)
}

// When is the best known time of the entry: its end, else its start.
func (e Entry) When() time.Time {
	if !e.FinishedAt.IsZero() {
		return e.FinishedAt
	}
	return e.StartedAt
}

// Entries turns history records (newest first) into entries, keeping at
// most limit of them; limit 0 or less keeps all. Pure.
func Entries(records []kube.Record, limit int) []Entry {
	if limit > 0 && len(records) > limit {
		records = records[:limit]
	}
	out := make([]Entry, 0, len(records))
	for _, r := range records {
		out = append(out, Entry{
			ID: r.ID, Image: r.Image, PreviousImage: r.PreviousImage, Result: string(r.Status), Reason: r.Reason,
			Actor: r.Actor, RunURL: r.RunURL, ActiveColor: r.ActiveColor, Revision: r.Revision,
			StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, RolledBack: r.Status == kube.RecordRolledBack,
		})
	}
	return out
}
