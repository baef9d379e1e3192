package strategy

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/ebeautything/greenlight/internal/kube"
	"github.com/ebeautything/greenlight/internal/testcluster"
)

// productionOverlay is a team's overlay over podinfo's own kustomize/
// directory: patches and an images: entry. Its readiness is checked over
// HTTP (podinfo answers / when ready), which the test node can probe; it
// cannot run podinfo's exec probe.
const productionOverlay = `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - BASE
images:
  - name: ghcr.io/stefanprodan/podinfo
    newTag: 6.9.1
patches:
  - patch: |-
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: podinfo
      spec:
        template:
          metadata:
            labels:
              environment: production
          spec:
            containers:
              - name: podinfod
                env:
                  - name: PODINFO_UI_MESSAGE
                    value: production
  - target:
      kind: Deployment
      name: podinfo
    patch: |-
      - op: replace
        path: /spec/template/spec/containers/0/readinessProbe
        value:
          httpGet:
            path: /
            port: http
          periodSeconds: 1
`

// A kustomize overlay over podinfo's manifests is rendered in process, the
// deploy's image replaces the one its images: entry set, and the rendered
// set (Deployment, Service and podinfo's own autoscaler) deploys.
func TestKustomizePodinfoOverlayDeploys(t *testing.T) {
	t.Parallel()
	apps, err := testcluster.EnsureApps("", io.Discard)
	require.NoError(t, err)
	base := filepath.Join(apps.PodinfoSource, "kustomize")
	overlay := t.TempDir()
	rel, err := filepath.Rel(overlay, base)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(replaceBase(productionOverlay, rel)), 0o644))

	objs, err := kube.LoadManifests(kube.OSFiles{}, []string{overlay})
	require.NoError(t, err)
	kinds := map[string]*unstructured.Unstructured{}
	for _, o := range objs {
		kinds[o.GetKind()] = o
	}
	require.Len(t, objs, 3)
	require.Contains(t, kinds, "HorizontalPodAutoscaler")
	require.Contains(t, kinds, "Service")
	dep := &appsv1.Deployment{}
	require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(kinds["Deployment"].Object, dep))
	c := dep.Spec.Template.Spec.Containers[0]
	assert.Equal(t, "ghcr.io/stefanprodan/podinfo:6.9.1", c.Image, "the overlay's images: entry")
	assert.Equal(t, "production", dep.Spec.Template.Labels["environment"], "the overlay's patch")
	assert.Contains(t, c.Env, envVar("PODINFO_UI_MESSAGE", "production"))
	assert.Contains(t, c.Env, envVar("PODINFO_UI_COLOR", "#34577c"), "the base's env is kept")
	require.NotNil(t, c.ReadinessProbe)
	assert.Nil(t, c.ReadinessProbe.Exec, "the JSON patch replaced the probe")

	subs, err := kube.SubstituteImage(objs, "", "ghcr.io/stefanprodan/podinfo:6.9.2")
	require.NoError(t, err)
	require.Len(t, subs, 1)
	assert.Equal(t, "ghcr.io/stefanprodan/podinfo:6.9.1", subs[0].From)

	e := newEnv(t)
	r := &Rolling{Client: e.client, Applier: e.applier(t), Wait: kube.WaitOptions{Timeout: 2 * time.Minute}}
	d, err := r.Deploy(context.Background(), Target{Namespace: e.ns, Deployment: "podinfo", Image: "ghcr.io/stefanprodan/podinfo:6.9.2", Manifests: objs})
	require.NoError(t, err)
	assert.Equal(t, "podinfo", d.Autoscaler, "podinfo's own autoscaler owns its scaling")
	live, err := e.client.AppsV1().Deployments(e.ns).Get(context.Background(), "podinfo", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "ghcr.io/stefanprodan/podinfo:6.9.2", live.Spec.Template.Spec.Containers[0].Image)
	assert.Equal(t, "production", live.Spec.Template.Labels["environment"])
	e.waitReplicas(t, "podinfo", 2) // the autoscaler's minimum, with no replicas in the manifests
}

func replaceBase(s, base string) string { return strings.Replace(s, "BASE", base, 1) }

func envVar(name, value string) corev1.EnvVar { return corev1.EnvVar{Name: name, Value: value} }
