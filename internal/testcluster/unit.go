package testcluster

import (
	"bytes"
	"fmt"
	"text/template"
)

// UnitFaults breaks one workload of the podinfo unit.
type UnitFaults struct {
	// CrashingWorker gives the worker's podinfo a flag it does not know,
	// so it exits at start.
	CrashingWorker bool
	// StatefulNeverReady points the StatefulSet's readiness probe at
	// podinfo's /status/503.
	StatefulNeverReady bool
	// FailingMigration makes the pre-deploy Job dial a closed port and
	// exit 1.
	FailingMigration bool
}

// unitManifestPath is the shared fixture under the repository's testdata.
const unitManifestPath = "testdata/manifests/podinfo-unit.yaml"

// PodinfoUnit renders testdata/manifests/podinfo-unit.yaml, five
// workloads a team ships as one unit (API with its Service, worker,
// StatefulSet, pre-deploy migration Job, CronJob), every one podinfo at
// tag, broken as f says.
func PodinfoUnit(tag string, f UnitFaults) (string, error) {
	path, err := findRepositoryFile(unitManifestPath)
	if err != nil {
		return "", err
	}
	tmpl, err := template.ParseFiles(path)
	if err != nil {
		return "", fmt.Errorf("read the podinfo unit: %w", err)
	}
	image := "ghcr.io/stefanprodan/podinfo:" + tag
	type container struct {
		Name, Image, Ready string
		Args               []string
	}
	data := struct {
		Image              string
		API, Worker, Cache container
		Migrate            []string
	}{
		Image:   image,
		API:     container{Name: "api", Image: image, Ready: "/readyz"},
		Worker:  container{Name: "worker", Image: image, Ready: "/readyz"},
		Cache:   container{Name: "cache", Image: image, Ready: "/readyz"},
		Migrate: []string{"podcli", "version"},
	}
	if f.CrashingWorker {
		data.Worker.Args = []string{"--no-such-flag"}
	}
	if f.StatefulNeverReady {
		data.Cache.Ready = "/status/503"
	}
	if f.FailingMigration {
		data.Migrate = []string{"podcli", "check", "tcp", "127.0.0.1:1", "--timeout=1s"}
	}
	var out bytes.Buffer
	if err := tmpl.Execute(&out, data); err != nil {
		return "", fmt.Errorf("render the podinfo unit: %w", err)
	}
	return out.String(), nil
}
