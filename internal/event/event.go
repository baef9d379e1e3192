// Package event is the vocabulary between greenlight's pipeline and its
// sinks: the pipeline decides and emits events; the report, GitHub and
// notification sinks observe them and never change the outcome.
package event

import (
	"time"

	"github.com/ebeautything/greenlight/internal/health"
	"github.com/ebeautything/greenlight/internal/monitor"
)

// Kind names what happened.
type Kind string

// Kinds of events, in the order a run emits them.
const (
	RunStarted      Kind = "run-started"
	StageStarted    Kind = "stage-started"
	StageFinished   Kind = "stage-finished"
	StepFinished    Kind = "step-finished"
	RolloutProgress Kind = "rollout-progress"
	// ObjectsChanged lists each object of the manifests with what the
	// deploy changed and how it ended; sent after the deploy and again
	// after a rollback.
	ObjectsChanged   Kind = "objects-changed"
	HealthChecked    Kind = "health-checked"
	SmokeTested      Kind = "smoke-tested"
	TrafficVerified  Kind = "traffic-verified"
	MonitorProgress  Kind = "monitor-progress"
	AlertRaised      Kind = "alert-raised"
	AlertResolved    Kind = "alert-resolved"
	RollbackStarted  Kind = "rollback-started"
	RollbackFinished Kind = "rollback-finished"
	Warning          Kind = "warning"
	RunFinished      Kind = "run-finished"
)

// Stage is one step of a run.
type Stage string

// Stages of a run; rollback runs only when the pipeline rolls back.
const (
	Validate Stage = "validate"
	Deploy   Stage = "deploy"
	Verify   Stage = "verify"
	Monitor  Stage = "monitor"
	Rollback Stage = "rollback"
)

// Stages lists the stages in run order.
func Stages() []Stage { return []Stage{Validate, Deploy, Verify, Monitor, Rollback} }

// Outcome is how a stage ended.
type Outcome string

// Outcomes of a stage.
const (
	Pending   Outcome = "pending"
	Succeeded Outcome = "succeeded"
	Failed    Outcome = "failed"
	Skipped   Outcome = "skipped"
	Cancelled Outcome = "cancelled"
)

// Status is how a whole run ended; it is the action's `status` output.
type Status string

// Statuses of a run.
const (
	StatusSucceeded  Status = "succeeded"
	StatusFailed     Status = "failed"
	StatusRolledBack Status = "rolled-back"
	// StatusRollbackFailed is the loudest outcome: the rollback itself did
	// not bring the previous version back.
	StatusRollbackFailed Status = "rollback-failed"
	// StatusAwaitingPromotion ends a deploy with promotion manual: the new
	// color is ready and verified, without traffic, until promote or
	// reject.
	StatusAwaitingPromotion Status = "awaiting-promotion"
	// StatusRejected ends a reject: the waiting color was removed without
	// ever getting traffic.
	StatusRejected Status = "rejected"
)

// Promotion is a verified color waiting for a person's decision, with how
// to look at it and how to decide.
type Promotion struct {
	// Color and Deployment run Image, verified at VerifiedAt; Serving is
	// the Deployment that keeps the traffic meanwhile.
	Color      string    `json:"color"`
	Deployment string    `json:"deployment"`
	Image      string    `json:"image"`
	Serving    string    `json:"serving,omitempty"`
	VerifiedAt time.Time `json:"verified_at"`
	// PortForward and ServiceProxy are kubectl commands that reach the
	// color through its preview Service.
	PortForward  string `json:"port_forward"`
	ServiceProxy string `json:"service_proxy"`
	// PromoteStep and RejectStep are the workflow steps that decide;
	// PromoteCLI and RejectCLI the same from a terminal.
	PromoteStep string `json:"promote_step"`
	RejectStep  string `json:"reject_step"`
	PromoteCLI  string `json:"promote_cli"`
	RejectCLI   string `json:"reject_cli"`
}

// Run identifies a deploy; it is constant for the run's life.
type Run struct {
	Environment    string    `json:"environment"`
	Strategy       string    `json:"strategy"`
	Namespace      string    `json:"namespace"`
	Deployment     string    `json:"deployment"`
	Service        string    `json:"service,omitempty"`
	Image          string    `json:"image"`
	PreviousImage  string    `json:"previous_image,omitempty"`
	DeploymentID   string    `json:"deployment_id"`
	SHA            string    `json:"sha,omitempty"`
	Repository     string    `json:"repository,omitempty"`
	ServerURL      string    `json:"server_url,omitempty"`
	RunURL         string    `json:"run_url,omitempty"`
	Actor          string    `json:"actor,omitempty"`
	EnvironmentURL string    `json:"environment_url,omitempty"`
	SkipTests      bool      `json:"skip_tests,omitempty"`
	Production     bool      `json:"production,omitempty"`
	StartedAt      time.Time `json:"started_at"`
}

// Finding is one typed fact a stage found: a failing pod, a recent event, a
// permission that is missing. Reports render them as evidence.
type Finding struct {
	Kind    string `json:"kind"`
	Subject string `json:"subject,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message"`
}

// ObjectChange is what a deploy did to one object of the manifests and
// how it ended.
type ObjectChange struct {
	// Object is "Kind/name".
	Object string `json:"object"`
	// Change is created, configured, unchanged, replaced (a Job run
	// again) or not applied.
	Change string `json:"change"`
	// Result is ready, completed, applied, failed, undone, deleted, kept
	// (a completed Job, which cannot be undone) or undo failed.
	Result string `json:"result,omitempty"`
	// Detail is the rollout's last message or the failure.
	Detail string `json:"detail,omitempty"`
}

// Result is how a run ended, with its headline figures.
type Result struct {
	Status        Status            `json:"status"`
	Reason        string            `json:"reason,omitempty"`
	Revision      string            `json:"revision,omitempty"`
	ActiveColor   string            `json:"active_color,omitempty"`
	RolledBack    bool              `json:"rolled_back"`
	FinishedAt    time.Time         `json:"finished_at"`
	Monitor       *monitor.Snapshot `json:"monitor,omitempty"`
	ManualCommand string            `json:"manual_command,omitempty"`
	// TrafficProof is how verify proved traffic reaches the new version:
	// "version" (answers report it) or "endpoints" (the cluster routes only
	// to its ready pods and answers are healthy).
	TrafficProof string `json:"traffic_proof,omitempty"`
	// RollbackProof is the same for the version a rollback returned to.
	RollbackProof string `json:"rollback_proof,omitempty"`
	// Promotion is set when the run ended awaiting promotion.
	Promotion *Promotion `json:"promotion,omitempty"`
}

// Event is one thing that happened during a run. Only the fields of its
// Kind are set.
type Event struct {
	Kind    Kind      `json:"kind"`
	Time    time.Time `json:"time"`
	Stage   Stage     `json:"stage,omitempty"`
	Outcome Outcome   `json:"outcome,omitempty"`
	// Message is one line a person can read.
	Message  string    `json:"message,omitempty"`
	Findings []Finding `json:"findings,omitempty"`

	Run      *Run                  `json:"run,omitempty"`
	Health   *health.Result        `json:"health,omitempty"`
	Smoke    []health.SmokeResult  `json:"smoke,omitempty"`
	Traffic  *health.TrafficResult `json:"traffic,omitempty"`
	Snapshot *monitor.Snapshot     `json:"snapshot,omitempty"`
	Series   []monitor.SeriesPoint `json:"series,omitempty"`
	Alert    *monitor.AlertChange  `json:"alert,omitempty"`
	Verdict  *monitor.Verdict      `json:"verdict,omitempty"`
	Evidence []monitor.Sample      `json:"evidence,omitempty"`
	Result   *Result               `json:"result,omitempty"`
	Objects  []ObjectChange        `json:"objects,omitempty"`
}

// Sink observes events. Handle must not block for long and must not panic;
// a sink's failure never changes a run's outcome.
type Sink interface {
	Handle(Event)
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(Event)

// Handle calls f.
func (f SinkFunc) Handle(e Event) { f(e) }
