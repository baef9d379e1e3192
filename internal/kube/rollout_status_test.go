package kube

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func testDeployment(replicas *int32, generation, observed int64, status appsv1.DeploymentStatus) *appsv1.Deployment {
	status.ObservedGeneration = observed
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "payment-api", Namespace: "payments", Generation: generation},
		Spec:       appsv1.DeploymentSpec{Replicas: replicas},
		Status:     status,
	}
}

func TestRolloutStatus(t *testing.T) {
	t.Parallel()
	three := int32(3)
	zero := int32(0)
	progressing := func(reason string) []appsv1.DeploymentCondition {
		return []appsv1.DeploymentCondition{{
			Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: reason,
		}}
	}
	tests := []struct {
		name       string
		deployment *appsv1.Deployment
		want       RolloutState
	}{
		{
			name:       "spec not yet observed",
			deployment: testDeployment(&three, 2, 1, appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 3, AvailableReplicas: 3}),
			want: RolloutState{Message: "Waiting for deployment spec update to be observed...",
				Updated: 3, Ready: 3, Available: 3, Desired: 3},
		},
		{
			name:       "new replicas not all updated",
			deployment: testDeployment(&three, 2, 2, appsv1.DeploymentStatus{Replicas: 4, UpdatedReplicas: 1, ReadyReplicas: 3, AvailableReplicas: 3, Conditions: progressing("ReplicaSetUpdated")}),
			want: RolloutState{Message: `Waiting for deployment "payment-api" rollout to finish: 1 out of 3 new replicas have been updated...`,
				Updated: 1, Ready: 3, Available: 3, Desired: 3},
		},
		{
			name:       "old replicas pending termination",
			deployment: testDeployment(&three, 2, 2, appsv1.DeploymentStatus{Replicas: 5, UpdatedReplicas: 3, ReadyReplicas: 4, AvailableReplicas: 4}),
			want: RolloutState{Message: `Waiting for deployment "payment-api" rollout to finish: 2 old replicas are pending termination...`,
				Updated: 3, Ready: 4, Available: 4, Desired: 3},
		},
		{
			name:       "updated replicas not yet available",
			deployment: testDeployment(&three, 2, 2, appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 2, AvailableReplicas: 1}),
			want: RolloutState{Message: `Waiting for deployment "payment-api" rollout to finish: 1 of 3 updated replicas are available...`,
				Updated: 3, Ready: 2, Available: 1, Desired: 3},
		},
		{
			name:       "available counted before ready",
			deployment: testDeployment(&three, 2, 2, appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 0, AvailableReplicas: 3}),
			want: RolloutState{Message: `Waiting for deployment "payment-api" rollout to finish: 0 of 3 updated replicas are ready...`,
				Updated: 3, Ready: 0, Available: 3, Desired: 3},
		},
		{
			name:       "done",
			deployment: testDeployment(&three, 2, 2, appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 3, AvailableReplicas: 3, Conditions: progressing("NewReplicaSetAvailable")}),
			want: RolloutState{Done: true, Message: `deployment "payment-api" successfully rolled out`,
				Updated: 3, Ready: 3, Available: 3, Desired: 3},
		},
		{
			name:       "observed generation ahead of generation",
			deployment: testDeployment(&three, 2, 3, appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 3, AvailableReplicas: 3}),
			want: RolloutState{Done: true, Message: `deployment "payment-api" successfully rolled out`,
				Updated: 3, Ready: 3, Available: 3, Desired: 3},
		},
		{
			name:       "scaled to zero needs no ready replica",
			deployment: testDeployment(&zero, 4, 4, appsv1.DeploymentStatus{}),
			want:       RolloutState{Done: true, Message: `deployment "payment-api" successfully rolled out`},
		},
		{
			name:       "replicas unset defaults to one",
			deployment: testDeployment(nil, 1, 1, appsv1.DeploymentStatus{}),
			want: RolloutState{Message: `Waiting for deployment "payment-api" rollout to finish: 0 out of 1 new replicas have been updated...`,
				Desired: 1},
		},
		{
			name: "paused and not done says why it is stuck",
			deployment: func() *appsv1.Deployment {
				d := testDeployment(&three, 2, 2, appsv1.DeploymentStatus{Replicas: 3, ReadyReplicas: 3, AvailableReplicas: 3})
				d.Spec.Paused = true
				return d
			}(),
			want: RolloutState{Message: `deployment "payment-api" is paused and will not roll out until resumed (Waiting for deployment "payment-api" rollout to finish: 0 out of 3 new replicas have been updated...)`,
				Ready: 3, Available: 3, Desired: 3},
		},
		{
			name: "paused and done is done",
			deployment: func() *appsv1.Deployment {
				d := testDeployment(&three, 2, 2, appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 3, AvailableReplicas: 3})
				d.Spec.Paused = true
				return d
			}(),
			want: RolloutState{Done: true, Message: `deployment "payment-api" successfully rolled out`,
				Updated: 3, Ready: 3, Available: 3, Desired: 3},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := RolloutStatus(tt.deployment)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestRolloutStatusDeadlineExceeded(t *testing.T) {
	t.Parallel()
	three := int32(3)
	d := testDeployment(&three, 2, 2, appsv1.DeploymentStatus{
		Replicas: 4, UpdatedReplicas: 1, ReadyReplicas: 3, AvailableReplicas: 3,
		Conditions: []appsv1.DeploymentCondition{{
			Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse,
			Reason:  "ProgressDeadlineExceeded",
			Message: `ReplicaSet "payment-api-7d9f" has timed out progressing.`,
		}},
	})
	state, err := RolloutStatus(d)
	require.Error(t, err)
	var failure *RolloutFailure
	require.True(t, errors.As(err, &failure))
	assert.Equal(t, "payment-api", failure.Deployment)
	assert.Equal(t, DeadlineExceeded, failure.Reason)
	assert.Equal(t, `deployment "payment-api" rollout failed: exceeded its progress deadline (ReplicaSet "payment-api-7d9f" has timed out progressing.)`, err.Error())
	assert.False(t, state.Done)
	assert.Equal(t, int32(1), state.Updated)

	// A deadline reported for an older generation is stale, as kubectl treats it.
	d.Generation = 3
	state, err = RolloutStatus(d)
	require.NoError(t, err)
	assert.False(t, state.Done)
}

func TestRolloutStatusNil(t *testing.T) {
	t.Parallel()
	_, err := RolloutStatus(nil)
	require.Error(t, err)
}
