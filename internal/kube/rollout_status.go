package kube

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
)

// progressDeadlineExceededReason is the reason the deployment controller
// puts on the Progressing condition when the rollout stopped making progress.
const progressDeadlineExceededReason = "ProgressDeadlineExceeded"

// RolloutState is where a Deployment's rollout stands, read from its status.
type RolloutState struct {
	// Done is true when every desired replica runs the new template and is
	// available, and no old replica is left.
	Done bool
	// Message says what the rollout waits for, in kubectl's words.
	Message string
	// Updated counts replicas running the newest template.
	Updated int32
	// Ready counts replicas whose pods are ready.
	Ready int32
	// Available counts replicas ready for at least minReadySeconds.
	Available int32
	// Desired is spec.replicas (1 when unset, as the API server defaults it).
	Desired int32
}

// RolloutStatus decides whether a Deployment's rollout has finished, following
// kubectl's DeploymentStatusViewer: the status must describe the current
// generation, a ProgressDeadlineExceeded condition is a failure (returned as
// a *RolloutFailure with Reason DeadlineExceeded), and the rollout is done
// when updated, total and available replicas all reach the desired count.
// It also asks for at least one ready replica when any are desired, so a
// status that has not yet counted readiness is never taken as done.
func RolloutStatus(d *appsv1.Deployment) (RolloutState, error) {
	if d == nil {
		return RolloutState{}, fmt.Errorf("rollout status: no deployment given")
	}
	st := d.Status
	state := RolloutState{
		Updated:   st.UpdatedReplicas,
		Ready:     st.ReadyReplicas,
		Available: st.AvailableReplicas,
		Desired:   1,
	}
	if d.Spec.Replicas != nil {
		state.Desired = *d.Spec.Replicas
	}

	// A status older than the spec says nothing about the new template.
	if d.Generation > st.ObservedGeneration {
		state.Message = "Waiting for deployment spec update to be observed..."
		return state, nil
	}
	for _, c := range st.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Reason == progressDeadlineExceededReason {
			return state, &RolloutFailure{
				Deployment: d.Name,
				Reason:     DeadlineExceeded,
				Message:    c.Message,
			}
		}
	}
	switch {
	case st.UpdatedReplicas < state.Desired:
		state.Message = fmt.Sprintf("Waiting for deployment %q rollout to finish: %d out of %d new replicas have been updated...",
			d.Name, st.UpdatedReplicas, state.Desired)
	case st.Replicas > st.UpdatedReplicas:
		state.Message = fmt.Sprintf("Waiting for deployment %q rollout to finish: %d old replicas are pending termination...",
			d.Name, st.Replicas-st.UpdatedReplicas)
	case st.AvailableReplicas < st.UpdatedReplicas:
		state.Message = fmt.Sprintf("Waiting for deployment %q rollout to finish: %d of %d updated replicas are available...",
			d.Name, st.AvailableReplicas, st.UpdatedReplicas)
	case state.Desired > 0 && st.ReadyReplicas < 1:
		state.Message = fmt.Sprintf("Waiting for deployment %q rollout to finish: 0 of %d updated replicas are ready...",
			d.Name, st.UpdatedReplicas)
	default:
		state.Done = true
		state.Message = fmt.Sprintf("deployment %q successfully rolled out", d.Name)
	}
	// A paused deployment never progresses and its deadline never fires, so
	// waiting on it would only end in a timeout; say why it is stuck.
	if !state.Done && d.Spec.Paused {
		state.Message = fmt.Sprintf("deployment %q is paused and will not roll out until resumed (%s)", d.Name, state.Message)
	}
	return state, nil
}
