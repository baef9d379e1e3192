package kube

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// wouldChangeLive is what TestWouldChange applies first: a ConfigMap and
// a Deployment, as a team's manifests write them (no defaults).
const wouldChangeLive = `
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {pool: "20"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  replicas: 2
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
      - name: api
        image: ghcr.io/stefanprodan/podinfo:6.9.2
        env: [{name: POOL, value: "20"}]
`

// TestWouldChange compares manifests with what the real API server holds
// after applying them: the same manifests change nothing although the
// server added its defaults, status and bookkeeping; any edit does; a
// missing object would be created; with fields, only that field counts.
func TestWouldChange(t *testing.T) {
	t.Parallel()
	c := cluster.Get(t)
	ns := c.NewNamespace(t)
	a, err := NewApplier(c.Config())
	require.NoError(t, err)
	ctx := context.Background()
	objs, err := DecodeManifests("live.yaml", []byte(wouldChangeLive))
	require.NoError(t, err)
	_, err = a.Apply(ctx, objs, ns, false)
	require.NoError(t, err)
	configMap, deployment := objs[0], objs[1]
	var before struct {
		configMap  string
		generation int64
	}
	cm, err := c.Client().CoreV1().ConfigMaps(ns).Get(ctx, "settings", metav1.GetOptions{})
	require.NoError(t, err)
	dep, err := c.Client().AppsV1().Deployments(ns).Get(ctx, "api", metav1.GetOptions{})
	require.NoError(t, err)
	before.configMap, before.generation = cm.ResourceVersion, dep.Generation

	edited := func(obj *unstructured.Unstructured, path string, value any) *unstructured.Unstructured {
		out := obj.DeepCopy()
		var fields []string
		require.NoError(t, yaml.Unmarshal([]byte(path), &fields))
		require.NoError(t, unstructured.SetNestedField(out.Object, value, fields...))
		return out
	}
	renamed := configMap.DeepCopy()
	renamed.SetName("settings-2")
	tests := []struct {
		name   string
		obj    *unstructured.Unstructured
		fields []string
		want   bool
	}{
		{"the same ConfigMap", configMap, nil, false},
		{"the same Deployment, defaults and status on the server", deployment, nil, false},
		{"a changed value", edited(configMap, `[data, pool]`, "30"), nil, true},
		{"another label", edited(configMap, `[metadata, labels]`, map[string]any{"team": "payments"}), nil, true},
		{"an object not in the cluster", renamed, nil, true},
		{"replicas changed", edited(deployment, `[spec, replicas]`, int64(3)), nil, true},
		{"replicas changed, the pod template compared", edited(deployment, `[spec, replicas]`, int64(3)), []string{"spec", "template"}, false},
		{"the pod template changed", edited(deployment, `[spec, template, metadata, labels]`, map[string]any{"app": "api", "tier": "web"}), []string{"spec", "template"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := a.WouldChange(ctx, tt.obj, ns, tt.fields...)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	// The dry runs changed nothing: the ConfigMap, which no controller
	// writes, kept its resource version; the Deployment, whose status its
	// controller keeps writing, kept its spec's generation.
	cm, err = c.Client().CoreV1().ConfigMaps(ns).Get(ctx, "settings", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, before.configMap, cm.ResourceVersion)
	dep, err = c.Client().AppsV1().Deployments(ns).Get(ctx, "api", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, before.generation, dep.Generation)
}

// TestApplyReportsWhatChanged applies manifests to the real API server:
// created, then unchanged even while the Deployment's status is written
// between the read and the apply (as its controller does), configured
// when a value changed, and a dry run reports the change it would make
// without making it.
func TestApplyReportsWhatChanged(t *testing.T) {
	t.Parallel()
	c := cluster.Get(t)
	ns := c.NewNamespace(t)
	a, err := NewApplier(c.Config())
	require.NoError(t, err)
	ctx := context.Background()
	objs, err := DecodeManifests("live.yaml", []byte(wouldChangeLive))
	require.NoError(t, err)
	actions := func(dryRun bool, objs ...*unstructured.Unstructured) []string {
		t.Helper()
		results, err := a.Apply(ctx, objs, ns, dryRun)
		require.NoError(t, err)
		var out []string
		for _, r := range results {
			out = append(out, r.Object+" "+r.Action)
		}
		return out
	}
	assert.Equal(t, []string{"ConfigMap/settings created", "Deployment/api created"}, actions(false, objs...))

	// Status written all the while: each write bumps the resource version.
	stop := make(chan struct{})
	done := make(chan int)
	go func() {
		writes := 0
		for {
			select {
			case <-stop:
				done <- writes
				return
			default:
			}
			d, err := c.Client().AppsV1().Deployments(ns).Get(ctx, "api", metav1.GetOptions{})
			if err != nil {
				continue
			}
			d.Status.Conditions = append(d.Status.Conditions[:0:0], appsv1.DeploymentCondition{Type: "Written", Status: "True", Reason: fmt.Sprint(writes)})
			if _, err := c.Client().AppsV1().Deployments(ns).UpdateStatus(ctx, d, metav1.UpdateOptions{}); err == nil {
				writes++
			}
		}
	}()
	for range 20 {
		assert.Equal(t, []string{"ConfigMap/settings unchanged", "Deployment/api unchanged"}, actions(false, objs...))
	}
	close(stop)
	t.Logf("status writes during 20 applies: %d", <-done)

	changed := objs[0].DeepCopy()
	require.NoError(t, unstructured.SetNestedField(changed.Object, "30", "data", "pool"))
	assert.Equal(t, []string{"ConfigMap/settings configured"}, actions(true, changed), "a dry run says what it would change")
	cm, err := c.Client().CoreV1().ConfigMaps(ns).Get(ctx, "settings", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "20", cm.Data["pool"], "and changes nothing")
	assert.Equal(t, []string{"ConfigMap/settings configured"}, actions(false, changed))
}
