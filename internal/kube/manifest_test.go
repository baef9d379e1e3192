package kube

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func manifestPath(parts ...string) string {
	return filepath.Join(append([]string{"testdata", "manifests"}, parts...)...)
}

func objectNames(objs []*unstructured.Unstructured) []string {
	names := make([]string, len(objs))
	for i, o := range objs {
		names[i] = objectName(o)
	}
	return names
}

func TestLoadManifests(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		patterns []string
		want     []string
	}{
		{
			name:     "directory: sorted, non-recursive, manifests only, lists flattened, empty documents skipped",
			patterns: []string{manifestPath("app")},
			want: []string{
				"ConfigMap/payment-api-config",
				"Deployment/payment-api", "Service/payment-api",
				"PodDisruptionBudget/payment-api", "HorizontalPodAutoscaler/payment-api",
			},
		},
		{
			name:     "file then glob, in the order given",
			patterns: []string{manifestPath("workloads", "all.yaml"), manifestPath("app", "*.yaml")},
			want: []string{
				"CronJob/nightly-report", "Job/backfill", "StatefulSet/ledger", "DaemonSet/node-agent", "Pod/debug",
				"Deployment/payment-api", "Service/payment-api",
			},
		},
		{
			name:     "a file named twice is read once",
			patterns: []string{manifestPath("app", "deployment.yaml"), manifestPath("app"), "./" + manifestPath("app", "deployment.yaml")},
			want: []string{
				"Deployment/payment-api", "Service/payment-api",
				"ConfigMap/payment-api-config",
				"PodDisruptionBudget/payment-api", "HorizontalPodAutoscaler/payment-api",
			},
		},
		{
			name:     "glob matching directories expands them",
			patterns: []string{manifestPath("app*")},
			want: []string{
				"ConfigMap/payment-api-config",
				"Deployment/payment-api", "Service/payment-api",
				"PodDisruptionBudget/payment-api", "HorizontalPodAutoscaler/payment-api",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			objs, err := LoadManifests(OSFiles{}, tt.patterns)
			require.NoError(t, err)
			assert.Equal(t, tt.want, objectNames(objs))
		})
	}
}

func TestLoadManifestsKeepsTypes(t *testing.T) {
	t.Parallel()
	objs, err := LoadManifests(OSFiles{}, []string{manifestPath("app", "deployment.yaml")})
	require.NoError(t, err)
	replicas, found, err := unstructured.NestedInt64(objs[0].Object, "spec", "replicas")
	require.NoError(t, err, "numbers decode as int64, as the API machinery expects")
	assert.True(t, found)
	assert.Equal(t, int64(3), replicas)
	assert.Equal(t, "apps/v1", objs[0].GetAPIVersion())
}

func TestLoadManifestsErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		patterns []string
		want     string
		is       error
	}{
		{"no patterns", nil, "no manifest paths given", nil},
		{"empty pattern", []string{" "}, "a manifest path is empty", nil},
		{"missing file", []string{manifestPath("nope.yaml")}, `manifest path "testdata/manifests/nope.yaml" does not exist`, fs.ErrNotExist},
		{"glob matching nothing", []string{manifestPath("app", "*.toml")}, `manifest pattern "testdata/manifests/app/*.toml" matches no files`, nil},
		{"bad glob", []string{manifestPath("[")}, `manifest pattern "testdata/manifests/["`, filepath.ErrBadPattern},
		{"directory without manifests", []string{manifestPath("nomanifests")}, `manifest directory "testdata/manifests/nomanifests" has no .yaml, .yml or .json files`, nil},
		{"missing name", []string{manifestPath("bad", "missing-name.yaml")}, `parse manifest "testdata/manifests/bad/missing-name.yaml" document 2: missing metadata.name`, nil},
		{"missing kind", []string{manifestPath("bad", "missing-kind.yaml")}, `parse manifest "testdata/manifests/bad/missing-kind.yaml" document 1: missing apiVersion, kind`, nil},
		{"broken YAML", []string{manifestPath("bad", "broken.yaml")}, `parse manifest "testdata/manifests/bad/broken.yaml" document 2: `, nil},
		{"bad list item", []string{manifestPath("bad", "list-item.yaml")}, `parse manifest "testdata/manifests/bad/list-item.yaml" document 1, item 2: missing kind`, nil},
		{"scalar document", []string{manifestPath("bad", "scalar.yaml")}, `parse manifest "testdata/manifests/bad/scalar.yaml" document 1: not a Kubernetes object`, nil},
		{"defined twice", []string{manifestPath("dup")}, `manifest "testdata/manifests/dup/b.yaml" document 1: ConfigMap/settings is already defined in "testdata/manifests/dup/a.yaml" document 1`, nil},
		{"nothing to deploy", []string{manifestPath("empty")}, `load manifests: no Kubernetes objects in "testdata/manifests/empty/only-comments.yaml"`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := LoadManifests(OSFiles{}, tt.patterns)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			if tt.is != nil {
				assert.ErrorIs(t, err, tt.is)
			}
		})
	}
}

func TestDecodeManifests(t *testing.T) {
	t.Parallel()
	stream := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}
{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"b"},"data":{"n":"1"}}`
	objs, err := DecodeManifests("stream.json", []byte(stream))
	require.NoError(t, err)
	assert.Equal(t, []string{"ConfigMap/a", "ConfigMap/b"}, objectNames(objs))

	objs, err = DecodeManifests("list.yaml", []byte("apiVersion: v1\nkind: ConfigMapList\nitems: []\n"))
	require.NoError(t, err)
	assert.Empty(t, objs)

	// An object that merely has an items field is not a List.
	objs, err = DecodeManifests("cr.yaml", []byte("apiVersion: acme.io/v1\nkind: Basket\nmetadata: {name: b}\nitems: [1, 2]\n"))
	require.NoError(t, err)
	assert.Equal(t, []string{"Basket/b"}, objectNames(objs))

	_, err = DecodeManifests("nested.yaml", []byte("apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: List\n  items: []\n"))
	assert.ErrorContains(t, err, "a List inside a List is not supported")
}

func loadTestManifests(t *testing.T, patterns ...string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := LoadManifests(OSFiles{}, patterns)
	require.NoError(t, err)
	return objs
}

func containerImage(t *testing.T, obj *unstructured.Unstructured, field string, index int, path ...string) string {
	t.Helper()
	list, found, err := unstructured.NestedSlice(obj.Object, append(path, field)...)
	require.NoError(t, err)
	require.True(t, found)
	img, _ := list[index].(map[string]any)["image"].(string)
	return img
}

func TestSubstituteImage(t *testing.T) {
	t.Parallel()
	all := []string{manifestPath("app", "deployment.yaml"), manifestPath("workloads")}
	tests := []struct {
		name      string
		container string
		image     string
		want      []Substitution
	}{
		{
			name: "by container name", container: "app", image: "ghcr.io/acme/payment-api:v1.5.0",
			want: []Substitution{
				{Object: "Deployment/payment-api", Container: "app", From: "ghcr.io/acme/payment-api:v1.4.0", To: "ghcr.io/acme/payment-api:v1.5.0"},
				{Object: "StatefulSet/ledger", Container: "app", From: "docker.io/library/postgres:16", To: "ghcr.io/acme/payment-api:v1.5.0"},
			},
		},
		{
			name: "by repository, init containers and cron jobs included", image: "ghcr.io/acme/payment-api:v1.5.0",
			want: []Substitution{
				{Object: "Deployment/payment-api", Container: "app", From: "ghcr.io/acme/payment-api:v1.4.0", To: "ghcr.io/acme/payment-api:v1.5.0"},
				{Object: "Deployment/payment-api", Container: "migrate", From: "ghcr.io/acme/payment-api:v1.4.0", To: "ghcr.io/acme/payment-api:v1.5.0"},
				{Object: "CronJob/nightly-report", Container: "report", From: "ghcr.io/acme/payment-api@" + testDigest, To: "ghcr.io/acme/payment-api:v1.5.0"},
			},
		},
		{
			name: "by repository, Docker Hub spellings", image: "postgres@" + testDigest,
			want: []Substitution{
				{Object: "StatefulSet/ledger", Container: "app", From: "docker.io/library/postgres:16", To: "postgres@" + testDigest},
				{Object: "DaemonSet/node-agent", Container: "agent", From: "postgres:15", To: "postgres@" + testDigest},
			},
		},
		{
			name: "pods and jobs", container: "shell", image: "busybox:1.36",
			want: []Substitution{{Object: "Pod/debug", Container: "shell", From: "busybox", To: "busybox:1.36"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			objs := loadTestManifests(t, all...)
			subs, err := SubstituteImage(objs, tt.container, tt.image)
			require.NoError(t, err)
			assert.Equal(t, tt.want, subs)
		})
	}
}

func TestSubstituteImageChangesObjects(t *testing.T) {
	t.Parallel()
	objs := loadTestManifests(t, manifestPath("app", "deployment.yaml"), manifestPath("workloads"))
	_, err := SubstituteImage(objs, "", "ghcr.io/acme/payment-api:v2")
	require.NoError(t, err)

	deploy, cron := objs[0], objs[2]
	tmpl := []string{"spec", "template", "spec"}
	assert.Equal(t, "ghcr.io/acme/payment-api:v2", containerImage(t, deploy, "containers", 0, tmpl...))
	assert.Equal(t, "envoyproxy/envoy:v1.30.1", containerImage(t, deploy, "containers", 1, tmpl...), "other containers keep their image")
	assert.Equal(t, "ghcr.io/acme/payment-api:v2", containerImage(t, deploy, "initContainers", 0, tmpl...))
	assert.Equal(t, "ghcr.io/acme/payment-api:v2", containerImage(t, cron, "containers", 0, "spec", "jobTemplate", "spec", "template", "spec"))

	ports, found, err := unstructured.NestedSlice(deploy.Object, "spec", "template", "spec", "containers")
	require.NoError(t, err)
	require.True(t, found)
	assert.Contains(t, ports[0].(map[string]any), "ports", "the rest of the container is untouched")
}

func TestSubstituteImageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		patterns  []string
		container string
		image     string
		want      string
		is        error
	}{
		{
			name: "no container with that name", patterns: []string{manifestPath("app", "deployment.yaml")},
			container: "api", image: "ghcr.io/acme/payment-api:v2", is: ErrNoContainerMatched,
			want: `substitute image: no container matched: no container is named "api"; containers found: ` +
				`Deployment/payment-api app (ghcr.io/acme/payment-api:v1.4.0), Deployment/payment-api proxy (envoyproxy/envoy:v1.30.1), ` +
				`Deployment/payment-api migrate (ghcr.io/acme/payment-api:v1.4.0)`,
		},
		{
			name: "no container from that repository", patterns: []string{manifestPath("app", "deployment.yaml")},
			image: "ghcr.io/acme/payments:v2", is: ErrNoContainerMatched,
			want: `no container uses repository "ghcr.io/acme/payments"; containers found: Deployment/payment-api app (ghcr.io/acme/payment-api:v1.4.0)`,
		},
		{
			name: "no workloads", patterns: []string{manifestPath("app", "list.yml")},
			image: "ghcr.io/acme/payment-api:v2", is: ErrNoContainerMatched,
			want: `no container uses repository "ghcr.io/acme/payment-api"; the 2 manifest objects hold no Deployment, StatefulSet, DaemonSet, Job, CronJob or Pod with containers`,
		},
		{
			name: "invalid image", patterns: []string{manifestPath("app", "deployment.yaml")},
			image: "ghcr.io/Acme/app:v2", is: ErrInvalidImage,
			want: "must be lowercase",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			objs := loadTestManifests(t, tt.patterns...)
			before := make([]*unstructured.Unstructured, len(objs))
			for i, o := range objs {
				before[i] = o.DeepCopy()
			}
			subs, err := SubstituteImage(objs, tt.container, tt.image)
			require.Error(t, err)
			assert.Nil(t, subs)
			assert.True(t, errors.Is(err, tt.is))
			assert.Contains(t, err.Error(), tt.want)
			assert.Equal(t, before, objs, "nothing changes when nothing matched")
		})
	}
}

func TestSubstituteImageMalformedContainers(t *testing.T) {
	t.Parallel()
	objs, err := DecodeManifests("pod.yaml", []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [\"app\"]\n"))
	require.NoError(t, err)
	_, err = SubstituteImage(objs, "app", "app:v2")
	assert.ErrorContains(t, err, "substitute image in Pod/p: spec.containers[0] is not a container")

	objs, err = DecodeManifests("pod.yaml", []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: {app: x}\n"))
	require.NoError(t, err)
	_, err = SubstituteImage(objs, "app", "app:v2")
	assert.ErrorContains(t, err, "substitute image in Pod/p: spec.containers")
}

func BenchmarkDecodeManifests(b *testing.B) {
	data, err := os.ReadFile(manifestPath("workloads", "all.yaml"))
	require.NoError(b, err)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeManifests("all.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}
