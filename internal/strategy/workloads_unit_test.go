package strategy

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ebeautything/greenlight/internal/kube"
)

func TestSplitPreDeploy(t *testing.T) {
	t.Parallel()
	obj := func(apiVersion, kind, name string, labels map[string]string) *unstructured.Unstructured {
		o := &unstructured.Unstructured{Object: map[string]any{}}
		o.SetAPIVersion(apiVersion)
		o.SetKind(kind)
		o.SetName(name)
		o.SetLabels(labels)
		return o
	}
	pre := map[string]string{kube.PhaseLabel: kube.PhasePreDeploy}
	objs := []*unstructured.Unstructured{
		obj("v1", "Service", "api", nil),
		obj("batch/v1", "Job", "migrate", pre),
		obj("apps/v1", "Deployment", "api", nil),
		obj("batch/v1", "Job", "seed", pre),
		obj("batch/v1", "Job", "backfill", nil),
		obj("v1", "ConfigMap", "cfg", pre),
	}
	p, rest := splitPreDeploy(objs)
	names := func(objs []*unstructured.Unstructured) (out []string) {
		for _, o := range objs {
			out = append(out, o.GetKind()+"/"+o.GetName())
		}
		return out
	}
	assert.Equal(t, []string{"Job/migrate", "Job/seed"}, names(p), "in the manifests' order")
	assert.Equal(t, []string{"Service/api", "Deployment/api", "Job/backfill", "ConfigMap/cfg"}, names(rest), "only Jobs are pre-deploy")
}

// TestObjectResults: what the apply did decides what is undone; objects
// that are not workloads are done once applied.
func TestObjectResults(t *testing.T) {
	t.Parallel()
	d := Deployed{unit: []kube.WorkloadSnapshot{
		{Kind: "Deployment", Namespace: "shop", Name: "worker", Existed: true},
		{Kind: "StatefulSet", Namespace: "shop", Name: "cache", Existed: true},
		{Kind: "CronJob", Namespace: "shop", Name: "report"},
		{Kind: "Job", Namespace: "shop", Name: "backfill", Existed: true},
	}}
	d.workload("Job/backfill").Change = ChangeReplaced
	d.applied([]kube.ApplyResult{
		{Object: "Service/api", Namespace: "shop", Action: "unchanged"},
		{Object: "Deployment/worker", Namespace: "shop", Action: "configured"},
		{Object: "StatefulSet/cache", Namespace: "shop", Action: "unchanged"},
		{Object: "CronJob/report", Namespace: "shop", Action: "created"},
		{Object: "Job/backfill", Namespace: "shop", Action: "created"},
	})
	assert.Equal(t, []ObjectResult{
		{Object: "Job/backfill", Change: ChangeReplaced},
		{Object: "Service/api", Change: ChangeUnchanged, Result: ResultApplied},
		{Object: "Deployment/worker", Change: ChangeConfigured},
		{Object: "StatefulSet/cache", Change: ChangeUnchanged},
		{Object: "CronJob/report", Change: ChangeCreated},
	}, d.Objects)
	var undo []string
	for _, s := range d.changed() {
		undo = append(undo, s.Object())
	}
	assert.Equal(t, []string{"Deployment/worker", "CronJob/report", "Job/backfill"}, undo, "the unchanged StatefulSet is left alone")

	// A promote or reject takes in what the deploy that awaited changed.
	var r Deployed
	r.restoreUnit(d.changed())
	assert.Equal(t, []ObjectResult{
		{Object: "Deployment/worker", Change: ChangeConfigured},
		{Object: "CronJob/report", Change: ChangeCreated},
		{Object: "Job/backfill", Change: ChangeReplaced},
	}, r.Objects)
	assert.Len(t, r.changed(), 3)
}
