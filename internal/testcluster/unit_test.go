package testcluster

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ebeautything/greenlight/internal/kube"
)

func TestPodinfoUnit(t *testing.T) {
	t.Parallel()
	container := func(t *testing.T, objs []*unstructured.Unstructured, object string) map[string]any {
		t.Helper()
		for _, o := range objs {
			if o.GetKind()+"/"+o.GetName() != object {
				continue
			}
			path := []string{"spec", "template", "spec", "containers"}
			if o.GetKind() == "CronJob" {
				path = []string{"spec", "jobTemplate", "spec", "template", "spec", "containers"}
			}
			cs, found, err := unstructured.NestedSlice(o.Object, path...)
			require.NoError(t, err)
			require.True(t, found, "%s has containers", object)
			return cs[0].(map[string]any)
		}
		t.Fatalf("no %s", object)
		return nil
	}
	ready := func(c map[string]any) any {
		p, _, _ := unstructured.NestedString(c, "readinessProbe", "httpGet", "path")
		return p
	}
	tests := []struct {
		name   string
		faults UnitFaults
		check  func(t *testing.T, objs []*unstructured.Unstructured)
	}{
		{"healthy", UnitFaults{}, func(t *testing.T, objs []*unstructured.Unstructured) {
			assert.Equal(t, []any{"./podinfo", "--port=9898", "--level=info"}, container(t, objs, "Deployment/worker")["command"])
			assert.Equal(t, "/readyz", ready(container(t, objs, "StatefulSet/cache")))
			assert.Equal(t, []any{"podcli", "version"}, container(t, objs, "Job/migrate")["command"])
		}},
		{"crashing worker", UnitFaults{CrashingWorker: true}, func(t *testing.T, objs []*unstructured.Unstructured) {
			assert.Equal(t, []any{"./podinfo", "--port=9898", "--level=info", "--no-such-flag"}, container(t, objs, "Deployment/worker")["command"])
			assert.Equal(t, []any{"./podinfo", "--port=9898", "--level=info"}, container(t, objs, "Deployment/api")["command"])
		}},
		{"stateful never ready", UnitFaults{StatefulNeverReady: true}, func(t *testing.T, objs []*unstructured.Unstructured) {
			assert.Equal(t, "/status/503", ready(container(t, objs, "StatefulSet/cache")))
			assert.Equal(t, "/readyz", ready(container(t, objs, "Deployment/api")))
		}},
		{"failing migration", UnitFaults{FailingMigration: true}, func(t *testing.T, objs []*unstructured.Unstructured) {
			assert.Equal(t, []any{"podcli", "check", "tcp", "127.0.0.1:1", "--timeout=1s"}, container(t, objs, "Job/migrate")["command"])
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			yaml, err := PodinfoUnit("2.0.0", tc.faults)
			require.NoError(t, err)
			objs, err := kube.DecodeManifests("podinfo-unit.yaml", []byte(yaml))
			require.NoError(t, err)
			var names []string
			for _, o := range objs {
				names = append(names, o.GetKind()+"/"+o.GetName())
				if o.GetKind() != "Service" {
					assert.Equal(t, "ghcr.io/stefanprodan/podinfo:2.0.0", container(t, objs, o.GetKind()+"/"+o.GetName())["image"])
				}
			}
			assert.Equal(t, []string{"Service/api", "Deployment/api", "Deployment/worker", "StatefulSet/cache", "Job/migrate", "CronJob/report"}, names)
			tc.check(t, objs)
		})
	}
}
