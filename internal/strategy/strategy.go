// Package strategy rolls a new version out and back: rolling updates and
// blue-green switches, each a sequence of reversible steps over package
// kube. A strategy decides nothing about health: verification is a hook the
// pipeline supplies, and rollbacks happen when the pipeline asks.
package strategy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"

	"github.com/ebeautything/greenlight/internal/kube"
)

// Names of the strategies, as the `strategy` input spells them.
const (
	NameRolling   = "rolling"
	NameBlueGreen = "blue-green"
)

// cleanupTimeout bounds the undo work done after the run's context was
// cancelled (a cancelled workflow must still leave the old version serving).
const cleanupTimeout = 2 * time.Minute

// Target is what to deploy and where.
type Target struct {
	Namespace string
	// Deployment is the application's name: the Deployment for rolling
	// updates, the base of <name>-blue and <name>-green for blue-green.
	Deployment string
	// Service routes the traffic; blue-green switches its selector.
	Service string
	// Container whose image changes; empty means the only container or the
	// one whose repository matches Image.
	Container string
	// Image is the full reference to run.
	Image string
	// Manifests, when given, are applied (with Image already substituted)
	// instead of patching the image of an existing Deployment.
	Manifests []*unstructured.Unstructured
	// Annotations are recorded on every Deployment changed.
	Annotations map[string]string
	// Replicas, when above zero, is the replica count to run, unless a
	// HorizontalPodAutoscaler owns the Deployment's scaling.
	Replicas int32
}

// Step is one finished step of a deploy or rollback, for the report.
type Step struct {
	Name     string        `json:"name"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration_ns"`
	Detail   string        `json:"detail,omitempty"`
	Err      string        `json:"error,omitempty"`
}

// Deployed is the state a deploy left, which Finish and Rollback act on.
// It is rebuilt from the cluster by blue-green, never trusted from memory
// alone across runs.
type Deployed struct {
	Strategy string `json:"strategy"`
	// Deployment now running the new version.
	Deployment string `json:"deployment"`
	// PreviousImage is what ran before.
	PreviousImage string `json:"previous_image,omitempty"`
	// Unchanged is true when the image was already deployed: nothing rolled out.
	Unchanged bool `json:"unchanged,omitempty"`

	// Rolling: revisions before and after.
	PreviousRevision int64 `json:"previous_revision,omitempty"`
	Revision         int64 `json:"revision,omitempty"`

	// Blue-green: colors and what served before the switch.
	Color              string            `json:"color,omitempty"`
	PreviousColor      string            `json:"previous_color,omitempty"`
	PreviousDeployment string            `json:"previous_deployment,omitempty"`
	PreviousSelector   map[string]string `json:"previous_selector,omitempty"`
	Switched           bool              `json:"switched,omitempty"`
	// SwitchTime is the selector write plus the endpoint confirmation.
	SwitchTime time.Duration `json:"switch_time_ns,omitempty"`

	// Awaiting is true when a manual promotion stopped the deploy after the
	// idle color was verified, before any traffic: Color and Deployment
	// run the new version, and PreviewService/PreviewPort reach it.
	Awaiting       bool   `json:"awaiting,omitempty"`
	PreviewService string `json:"preview_service,omitempty"`
	PreviewPort    string `json:"preview_port,omitempty"`

	// WarmUntil is when the previous color, kept warm by Finish, may be
	// scaled down; zero when it was scaled down at once.
	WarmUntil time.Time `json:"warmUntil,omitzero"`
	// Autoscaler is the HorizontalPodAutoscaler that scales the
	// Deployment, which blue-green moves between colors.
	Autoscaler string `json:"autoscaler,omitempty"`
	// Warnings are what the deploy did not do as asked, and why.
	Warnings []string `json:"warnings,omitempty"`

	Steps []Step `json:"steps,omitempty"`

	// Objects lists each object of the manifests with what the deploy
	// changed and how it ended.
	Objects []ObjectResult `json:"objects,omitempty"`
	// unit holds what the workloads beside the application's Deployment
	// were before the deploy, to undo them together.
	unit []kube.WorkloadSnapshot
}

// Strategy deploys, finishes and rolls back.
type Strategy interface {
	// Deploy rolls the new version out. When it returns an error, the old
	// version is serving (it undid its own steps), unless the error says
	// the undo failed too.
	Deploy(ctx context.Context, t Target) (Deployed, error)
	// Finish ends a deploy that passed monitoring (blue-green scales the
	// old color to zero).
	Finish(ctx context.Context, t Target, d *Deployed) error
	// Rollback returns traffic to the previous version and waits until it
	// serves.
	Rollback(ctx context.Context, t Target, d *Deployed) error
}

// stepRecorder times steps into a Deployed.
type stepRecorder struct {
	d      *Deployed
	onStep func(Step)
}

func (r stepRecorder) run(name string, f func() (string, error)) error {
	start := time.Now()
	detail, err := f()
	s := Step{Name: name, Started: start, Duration: time.Since(start), Detail: detail}
	if err != nil {
		s.Err = err.Error()
	}
	r.d.Steps = append(r.d.Steps, s)
	if r.onStep != nil {
		r.onStep(s)
	}
	return err
}

// autoscalers maps each Deployment scaled by a HorizontalPodAutoscaler, in
// the cluster or among the manifests, to that autoscaler.
// A credential that may not list autoscalers deploys as before, with a
// warning: the deploy must not fail for a permission it did not need.
func autoscalers(ctx context.Context, client kubernetes.Interface, t Target, d *Deployed) (map[string]string, error) {
	live, err := kube.Autoscalers(ctx, client, t.Namespace)
	if errors.Is(err, kube.ErrForbidden) || apierrors.IsForbidden(err) {
		d.Warnings = append(d.Warnings, "the credential may not list horizontalpodautoscalers (autoscaling) in "+t.Namespace+": replica counts are applied as if no autoscaler existed")
		live, err = map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	maps.Copy(live, kube.ManifestAutoscalers(t.Manifests))
	return live, nil
}

// replicasWarning says why the replicas input was not applied.
func replicasWarning(t Target, hpa, deployment string) string {
	return fmt.Sprintf("replicas %d not applied: HorizontalPodAutoscaler %s owns the replica count of %s", t.Replicas, hpa, deployment)
}

// detached gives cleanup work its own bounded context when the run's was
// cancelled, so undoing is never skipped because the workflow was.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
}
