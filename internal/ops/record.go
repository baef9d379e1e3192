package ops

import (
	"fmt"
	"time"

	"github.com/ebeautything/greenlight/internal/kube"
)

// Audit is who did an operator action and where, for its history record.
type Audit struct {
	// ID identifies the action in the history, such as "scale-3f2a9c1".
	ID string
	// Environment and Strategy are the environment's.
	Environment, Strategy string
	// Actor is who ran the command: the workflow's actor, or the local user.
	Actor string
	// RunURL links to the workflow run, if any.
	RunURL string
	// StartedAt and FinishedAt bound the action.
	StartedAt, FinishedAt time.Time
}

func (a Audit) record(status kube.RecordStatus, reason, image string, revision int64, color string) kube.Record {
	return kube.Record{
		ID: a.ID, Environment: a.Environment, Image: image, Strategy: a.Strategy, Status: status, Reason: reason,
		Revision: revision, ActiveColor: color, Actor: a.Actor, RunURL: a.RunURL, StartedAt: a.StartedAt, FinishedAt: a.FinishedAt,
	}
}

func (a Audit) by() string {
	if a.Actor == "" {
		return ""
	}
	return " by " + a.Actor
}

// ScaleRecord is the history record of a scale: succeeded with a reason
// such as "scaled shop-blue to 5 replicas (from 2) by octocat", or failed
// with err. Pure.
func ScaleRecord(a Audit, r ScaleResult, err error) kube.Record {
	what := fmt.Sprintf("scaled %s to %d replicas (from %d)%s", r.Active.Deployment, r.To, r.From, a.by())
	if r.Unchanged {
		what = fmt.Sprintf("confirmed %s at %d replicas%s", r.Active.Deployment, r.To, a.by())
	}
	if err != nil {
		return a.record(kube.RecordFailed, fmt.Sprintf("scale %s to %d replicas%s failed: %v", r.Active.Deployment, r.To, a.by(), err), r.Image, r.Revision, r.Active.Color)
	}
	return a.record(kube.RecordSucceeded, what, r.Image, r.Revision, r.Active.Color)
}

// MaintenanceRecord is the history record of a maintenance switch, such as
// "maintenance on (shop-config MAINTENANCE_MODE=true), restarted shop-blue
// to revision 3 by octocat". Pure.
func MaintenanceRecord(a Audit, r MaintenanceResult, err error) kube.Record {
	s := r.Before
	image := s.Image
	flag := fmt.Sprintf("%s %s=%s", s.ConfigMap, s.Key, FlagValue(s.Value, r.On))
	if err != nil {
		return a.record(kube.RecordFailed, fmt.Sprintf("maintenance %s (%s)%s failed: %v", stateWord(r.On), flag, a.by(), err), image, r.FromRevision, s.Active.Color)
	}
	return a.record(kube.RecordSucceeded, fmt.Sprintf("maintenance %s (%s), restarted %s to revision %d%s", stateWord(r.On), flag, s.Active.Deployment, r.ToRevision, a.by()),
		image, r.ToRevision, s.Active.Color)
}
