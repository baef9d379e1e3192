package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ebeautything/greenlight/internal/config"
	"github.com/ebeautything/greenlight/internal/event"
	"github.com/ebeautything/greenlight/internal/kube"
	"github.com/ebeautything/greenlight/internal/pipeline"
	"github.com/ebeautything/greenlight/internal/testcluster"
)

const demoNamespace = "shop"

// demo runs greenlight's pipeline three times against a fresh cluster:
// a first blue-green deploy of v1, v2, and a v3 that breaks after it went
// live and is rolled back by monitoring.
func demo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "greenlight-sandbox demo: takes no arguments, got %q\n", args)
		return exitBadInput
	}
	start := time.Now()
	c, err := testcluster.Start(ctx, testcluster.Options{Log: stderr})
	if err != nil {
		fmt.Fprintf(stderr, "greenlight-sandbox: %v\n", err)
		return exitFailed
	}
	defer c.Stop()
	if _, err := c.Client().CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: demoNamespace}}, metav1.CreateOptions{}); err != nil {
		fmt.Fprintf(stderr, "greenlight-sandbox demo: create namespace: %v\n", err)
		return exitFailed
	}
	dir, err := os.MkdirTemp("", "greenlight-demo-")
	if err != nil {
		fmt.Fprintf(stderr, "greenlight-sandbox demo: %v\n", err)
		return exitFailed
	}
	defer os.RemoveAll(dir)

	steps := []struct {
		title, image string
		env          []corev1.EnvVar
		want         event.Status
	}{
		{"first deploy of sampleapp:v1 (blue-green, production)", "sampleapp:v1", nil, event.StatusSucceeded},
		{"update to sampleapp:v2", "sampleapp:v2", nil, event.StatusSucceeded},
		{"sampleapp:v3, which starts failing 4s after it went live", "sampleapp:v3", []corev1.EnvVar{{Name: "SAMPLEAPP_FAIL_AFTER", Value: "4s"}}, event.StatusRolledBack},
	}
	fmt.Fprintf(stdout, "cluster ready in %s; the times below count from the start of each deploy\n", elapsed(start))
	for i, step := range steps {
		// Each deploy is timed from its own start: the cluster's start-up
		// (minutes on a first build) says nothing about greenlight.
		start := time.Now()
		fmt.Fprintf(stdout, "\n%d. %s\n", i+1, step.title)
		manifest := filepath.Join(dir, fmt.Sprintf("payments-%d.json", i))
		if err := writeManifests(manifest, step.env); err != nil {
			fmt.Fprintf(stderr, "greenlight-sandbox demo: %v\n", err)
			return exitFailed
		}
		out, err := deployWithGreenlight(ctx, c, manifest, step.image, stdout, start)
		if err != nil {
			fmt.Fprintf(stderr, "greenlight-sandbox demo: %v\n", err)
			return exitFailed
		}
		fmt.Fprintf(stdout, "[%s]    → %s: %s\n", elapsed(start), out.Result.Status, out.Result.Reason)
		if out.Result.Status != step.want {
			fmt.Fprintf(stderr, "greenlight-sandbox demo: step %d ended %s, expected %s\n", i+1, out.Result.Status, step.want)
			return exitFailed
		}
	}
	fmt.Fprintf(stdout, "\ndemo finished after %s: v2 serving at %s, v3 rolled back by monitoring\n", elapsed(start), c.ServiceURL(demoNamespace, "payments"))
	return exitOK
}

// deployWithGreenlight loads inputs as the action would and runs the pipeline.
func deployWithGreenlight(ctx context.Context, c *testcluster.Cluster, manifest, image string, stdout io.Writer, start time.Time) (*pipeline.Outcome, error) {
	cfg, err := config.Load(config.MapLookup(map[string]string{
		"environment": "production", "kubeconfig": string(c.Kubeconfig()), "namespace": demoNamespace,
		"deployment": "payments", "image": image, "manifests": manifest, "url": c.ServiceURL(demoNamespace, "payments"),
		"monitor-duration": "12s", "monitor-interval": "200ms", "timeout": "30", "deployment-id": "demo-" + pipeline.VersionOf(image),
		"config": os.DevNull,
	}), os.ReadFile, "")
	if err != nil {
		return nil, fmt.Errorf("load inputs: %w", err)
	}
	kc, err := kube.LoadKubeconfig(cfg.Kubeconfig.Reveal(), "")
	if err != nil {
		return nil, err
	}
	applier, err := kube.NewApplier(kc.REST)
	if err != nil {
		return nil, err
	}
	narrate := event.SinkFunc(func(e event.Event) {
		switch e.Kind {
		case event.StageFinished:
			fmt.Fprintf(stdout, "[%s]    %-8s %s: %s\n", elapsed(start), e.Stage, e.Outcome, e.Message)
		case event.StepFinished:
			fmt.Fprintf(stdout, "[%s]             · %s\n", elapsed(start), e.Message)
		case event.AlertRaised:
			fmt.Fprintf(stdout, "[%s]             ⚠ %s\n", elapsed(start), e.Message)
		}
	})
	return pipeline.Run(ctx, cfg, pipeline.Deps{
		Client: c.Client(), REST: kc.REST, Applier: applier, Files: kube.OSFiles{}, ReadFile: os.ReadFile, Sink: narrate,
	}), nil
}

// writeManifests writes the payments Deployment and Service.
func writeManifests(path string, env []corev1.EnvVar) error {
	labels := map[string]string{"app": "payments"}
	list := map[string]any{"apiVersion": "v1", "kind": "List", "items": []any{
		testcluster.SampleDeployment("payments", "sampleapp:placeholder", labels, env...),
		testcluster.SampleService("payments", labels),
	}}
	data, err := json.Marshal(list)
	if err != nil {
		return fmt.Errorf("encode manifests: %w", err)
	}
	return os.WriteFile(path, data, 0o644)
}
