package kube

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
)

func TestEnvSecretNameIsKeyedAndStable(t *testing.T) {
	t.Parallel()
	key := []byte(strings.Repeat("k", 32))
	vars := []EnvVar{{"TOSS_PAYMENTS_SECRET_KEY", "test_sk_1"}, {"SUPABASE_PROD_URL", "https://x"}}
	name := EnvSecretName("api", key, vars)
	assert.Regexp(t, `^api-env-[0-9a-f]{12}$`, name)
	assert.Equal(t, name, EnvSecretName("api", key, []EnvVar{vars[1], vars[0]}), "order does not matter")
	assert.NotEqual(t, name, EnvSecretName("api", []byte(strings.Repeat("j", 32)), vars), "another key, another name")
	assert.NotEqual(t, name, EnvSecretName("api", key, []EnvVar{{"TOSS_PAYMENTS_SECRET_KEY", "test_sk_2"}, vars[1]}), "another value, another name")
	assert.NotEqual(t, EnvSecretName("api", key, []EnvVar{{"A", "BC"}}), EnvSecretName("api", key, []EnvVar{{"AB", "C"}}), "name and value do not run together")
	// A plain hash of the values, as a guesser would compute it, is not
	// what the name shows.
	for _, v := range vars {
		sum := sha256.Sum256([]byte(v.Value))
		assert.NotContains(t, name, hex.EncodeToString(sum[:])[:12])
	}
}

func TestAppEnvEnsureStoresKeyOnceAndReusesSecret(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	client := fake.NewClientset()
	a := AppEnv{Client: client, Namespace: "shop", Deployment: "api"}
	key, exists, err := a.Key(ctx)
	require.NoError(t, err)
	assert.False(t, exists)
	assert.Len(t, key, 32)
	vars := []EnvVar{{"A", "one"}}

	name, created, err := a.Ensure(ctx, key, vars)
	require.NoError(t, err)
	assert.True(t, created)
	s, err := client.CoreV1().Secrets("shop").Get(ctx, name, metav1.GetOptions{})
	require.NoError(t, err)
	assert.True(t, *s.Immutable)
	assert.Equal(t, "api", s.Labels[LabelEnvFor])
	assert.Equal(t, []byte("one"), s.Data["A"])

	stored, exists, err := a.Key(ctx)
	require.NoError(t, err)
	assert.True(t, exists)
	assert.Equal(t, key, stored)

	again, created, err := a.Ensure(ctx, stored, vars)
	require.NoError(t, err)
	assert.False(t, created, "the same values reuse the Secret")
	assert.Equal(t, name, again)

	// A run that made its own key while another stored one takes the
	// stored key, and the name follows it.
	other := []byte(strings.Repeat("o", 32))
	raced, _, err := a.Ensure(ctx, other, vars)
	require.NoError(t, err)
	assert.Equal(t, name, raced)
}

func TestAppEnvPruneKeepsWhatARollbackCanReturnTo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	secret := func(name, owner string) runtime.Object {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", Labels: map[string]string{LabelEnvFor: owner}}}
	}
	rs := func(name, secretName string) runtime.Object {
		return &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop"}, Spec: appsv1.ReplicaSetSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "app", EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: secretName}}}}}},
		}}}}
	}
	client := fake.NewClientset(
		secret("api-env-aaa", "api"), // in an old ReplicaSet
		secret("api-env-bbb", "api"), // only in the history
		secret("api-env-ccc", "api"), // in a StatefulSet's revision
		secret("api-env-ddd", "api"), // nothing refers to it
		secret("worker-env-eee", "worker"),
		rs("api-1", "api-env-aaa"),
		&appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Name: "db-1", Namespace: "shop"}, Data: runtime.RawExtension{Raw: []byte(`{"spec":{"template":{"spec":{"containers":[{"envFrom":[{"secretRef":{"name":"api-env-ccc"}}]}]}}}}`)}},
	)
	deleted, err := AppEnv{Client: client, Namespace: "shop", Deployment: "api"}.Prune(ctx, []string{"api-env-bbb"})
	require.NoError(t, err)
	assert.Equal(t, []string{"api-env-ddd"}, deleted)
	left, err := client.CoreV1().Secrets("shop").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	var names []string
	for _, s := range left.Items {
		names = append(names, s.Name)
	}
	assert.ElementsMatch(t, []string{"api-env-aaa", "api-env-bbb", "api-env-ccc", "worker-env-eee"}, names, "another Deployment's Secrets are never touched")
}

func TestAttachEnvSecret(t *testing.T) {
	t.Parallel()
	objs, err := DecodeManifests("m.yaml", []byte(`apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  template:
    spec:
      containers:
      - name: api
        image: ghcr.io/acme/api:1
        envFrom:
        - configMapRef: {name: api-config}
        - secretRef: {name: api-env-0123456789ab}
      - name: sidecar
        image: envoy:1
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: report}
spec:
  schedule: "@daily"
  jobTemplate:
    spec:
      template:
        spec:
          containers:
          - name: report
            image: ghcr.io/acme/api:1
`))
	require.NoError(t, err)
	subs, err := SubstituteImage(objs, "", "ghcr.io/acme/api:2")
	require.NoError(t, err)
	n, err := AttachEnvSecret(objs, subs, "api", "api-env-fedcba987654")
	require.NoError(t, err)
	assert.Equal(t, 2, n, "the API container and the CronJob's, which run the image; not the sidecar")

	containers, _, _ := unstructured.NestedSlice(objs[0].Object, "spec", "template", "spec", "containers")
	assert.Equal(t, []any{
		map[string]any{"configMapRef": map[string]any{"name": "api-config"}},
		map[string]any{"secretRef": map[string]any{"name": "api-env-fedcba987654"}},
	}, containers[0].(map[string]any)["envFrom"], "the earlier app-env Secret is replaced, the ConfigMap kept, the Secret last so it wins")
	assert.NotContains(t, containers[1].(map[string]any), "envFrom")

	_, err = AttachEnvSecret(objs, nil, "missing", "missing-env-x")
	assert.ErrorContains(t, err, "no container of the manifests takes it")
}

func TestSecretsReferenced(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		spec corev1.PodSpec
		want []string
	}{
		{"none", corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}, nil},
		{"envFrom and valueFrom, init containers too", corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "migrate", EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}}}}}},
			Containers: []corev1.Container{{Name: "app", Env: []corev1.EnvVar{{Name: "KEY", ValueFrom: &corev1.EnvVarSource{
				SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "payments"}, Key: "key"}}}}}},
		}, []string{"db", "payments"}},
		{"a volume and a projected volume", corev1.PodSpec{Volumes: []corev1.Volume{
			{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "tls"}}},
			{Name: "all", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}},
				{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "app-env-payments-1a2b"}}},
			}}}},
		}}, []string{"tls", "app-env-payments-1a2b"}},
		{"image pull secrets and ephemeral containers", corev1.PodSpec{
			ImagePullSecrets: []corev1.LocalObjectReference{{Name: "registry"}},
			EphemeralContainers: []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug",
				EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "debug"}}}}}}},
		}, []string{"debug", "registry"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, SecretsReferenced(&tt.spec))
		})
	}
}
