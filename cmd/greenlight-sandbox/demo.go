package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ebeautything/greenlight/internal/config"
	"github.com/ebeautything/greenlight/internal/event"
	"github.com/ebeautything/greenlight/internal/kube"
	"github.com/ebeautything/greenlight/internal/loadgen"
	"github.com/ebeautything/greenlight/internal/pipeline"
	"github.com/ebeautything/greenlight/internal/testcluster"
)

const demoNamespace = "shop"

// demoStep is one deploy of the demo.
type demoStep struct {
	title, image string
	env          []corev1.EnvVar
	want         event.Status
	// breakAfterSwitch makes the new version fail once it went live.
	breakAfterSwitch bool
}

// demoApp is what the demo deploys: the sample app on the stand-in node,
// podinfo's own manifests on the real node.
type demoApp struct {
	deployment string
	steps      []demoStep
	// manifests writes the step's manifests into dir and returns their
	// paths, separated by commas.
	manifests func(dir string, i int, step demoStep) (string, error)
	inputs    map[string]string
	// loadPaths are the paths the demo's users request, 40 a second, from
	// the end of the first deploy on; the pods' own metrics judge them.
	loadPaths []string
}

// demo runs greenlight's pipeline three times against a fresh cluster:
// a first blue-green deploy of v1, v2, and a v3 that breaks after it went
// live and is rolled back by monitoring.
func demo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	nodeKind := fs.String("node", "stand-in", "stand-in runs the sample app in process; real runs podinfo's own manifests as containers on a real node (root, containerd, runc, CNI plugins)")
	if err := fs.Parse(args); err != nil {
		return exitBadInput
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "greenlight-sandbox demo: takes no arguments, got %q\n", fs.Args())
		return exitBadInput
	}
	if *nodeKind != "stand-in" && *nodeKind != "real" {
		fmt.Fprintf(stderr, "greenlight-sandbox demo: --node: %q is not a node kind; accepted: stand-in, real\n", *nodeKind)
		return exitBadInput
	}
	app := sampleDemo()
	if *nodeKind == "real" {
		apps, err := testcluster.EnsureApps("", stderr)
		if err != nil {
			fmt.Fprintf(stderr, "greenlight-sandbox: %v\n", err)
			return exitFailed
		}
		app = podinfoDemo(apps)
	}
	start := time.Now()
	c, err := testcluster.Start(ctx, testcluster.Options{Log: stderr, RealNode: *nodeKind == "real"})
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

	fmt.Fprintf(stdout, "cluster ready in %s (%s node); the times below count from the start of each deploy\n", elapsed(start), *nodeKind)
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var loading sync.WaitGroup
	var load loadgen.Result
	for i, step := range app.steps {
		// Each deploy is timed from its own start: the cluster's start-up
		// (minutes on a first build) says nothing about greenlight.
		start := time.Now()
		fmt.Fprintf(stdout, "\n%d. %s\n", i+1, step.title)
		manifests, err := app.manifests(dir, i, step)
		if err != nil {
			fmt.Fprintf(stderr, "greenlight-sandbox demo: %v\n", err)
			return exitFailed
		}
		// The crashing traffic runs while the new version is monitored: once
		// traffic went back, it would only crash the version restored.
		var hooks stageHooks
		crashCtx, stopCrashing := context.WithCancel(ctx)
		var crashing sync.WaitGroup
		if step.breakAfterSwitch {
			hooks.verified = func() {
				crashing.Go(func() { crashNewPods(crashCtx, c.ServiceURL(demoNamespace, app.deployment), stdout, start) })
			}
			hooks.monitored = func() {
				stopCrashing()
				crashing.Wait()
			}
		}
		out, err := deployWithGreenlight(ctx, c, app, manifests, step.image, stdout, start, hooks)
		stopCrashing()
		crashing.Wait()
		if err != nil {
			fmt.Fprintf(stderr, "greenlight-sandbox demo: %v\n", err)
			return exitFailed
		}
		fmt.Fprintf(stdout, "[%s]    → %s: %s\n", elapsed(start), out.Result.Status, out.Result.Reason)
		if out.Result.Status != step.want {
			fmt.Fprintf(stderr, "greenlight-sandbox demo: step %d ended %s, expected %s\n", i+1, out.Result.Status, step.want)
			return exitFailed
		}
		if i == 0 {
			// Users arrive once there is a Service: bounded, loopback only.
			url := c.ServiceURL(demoNamespace, app.deployment)
			fmt.Fprintf(stdout, "\nusers: 40 requests a second to %s from now on (%v)\n", url, app.loadPaths)
			loading.Go(func() {
				load, _ = loadgen.Run(loadCtx, loadgen.Options{BaseURL: url, Paths: app.loadPaths, Rate: 40, Count: 40 * 600, Duration: 10 * time.Minute, Timeout: 5 * time.Second})
			})
		}
	}
	stopLoad()
	loading.Wait()
	fmt.Fprintf(stdout, "\nusers' requests: %d sent, %d answered 2xx, 4xx %d, 5xx %d, %d without an answer\n",
		load.Sent, load.ByStatus["2xx"], load.ByStatus["4xx"], load.ByStatus["5xx"], load.TransportErrors)
	fmt.Fprintf(stdout, "\ndemo finished after %s: v2 serving at %s, v3 rolled back by monitoring\n", elapsed(start), c.ServiceURL(demoNamespace, app.deployment))
	return exitOK
}

// sampleDemo deploys the sample app; its v3 fails 4 s after it starts.
func sampleDemo() demoApp {
	return demoApp{
		deployment: "payments",
		steps: []demoStep{
			{title: "first deploy of sampleapp:v1 (blue-green, production)", image: "sampleapp:v1", want: event.StatusSucceeded},
			{title: "update to sampleapp:v2", image: "sampleapp:v2", want: event.StatusSucceeded},
			{title: "sampleapp:v3, which starts failing 4s after it went live", image: "sampleapp:v3", env: []corev1.EnvVar{{Name: "SAMPLEAPP_FAIL_AFTER", Value: "4s"}}, want: event.StatusRolledBack},
		},
		manifests: func(dir string, i int, step demoStep) (string, error) {
			path := filepath.Join(dir, fmt.Sprintf("payments-%d.json", i))
			return path, writeManifests(path, step.env)
		},
		inputs: map[string]string{"monitor-duration": "12s", "monitor-interval": "200ms", "timeout": "30",
			"metrics-path": "/metrics", "metrics-port": "http", "min-requests": "5"},
		loadPaths: []string{"/", "/api/payments"},
	}
}

// podinfoDemo deploys podinfo's own kustomize Deployment and Service,
// unchanged; its v3 is made to crash once it went live.
func podinfoDemo(apps testcluster.Apps) demoApp {
	dir := filepath.Join(apps.PodinfoSource, "kustomize")
	const repo = "ghcr.io/stefanprodan/podinfo:"
	return demoApp{
		deployment: "podinfo",
		steps: []demoStep{
			{title: "first deploy of podinfo 6.9.1 (blue-green, production, podinfo's own manifests)", image: repo + "6.9.1", want: event.StatusSucceeded},
			{title: "update to podinfo 6.9.2", image: repo + "6.9.2", want: event.StatusSucceeded},
			{title: "podinfo 6.9.3, crashed by its users' traffic 3s after it went live (podinfo's own GET /panic: the process exits 255)", image: repo + "6.9.3", want: event.StatusRolledBack, breakAfterSwitch: true},
		},
		manifests: func(string, int, demoStep) (string, error) {
			return filepath.Join(dir, "deployment.yaml") + "," + filepath.Join(dir, "service.yaml"), nil
		},
		inputs: map[string]string{"container": "podinfod", "health-paths": "/healthz,/readyz", "monitor-duration": "30s", "monitor-interval": "500ms", "timeout": "120", "rollout-timeout": "3m",
			"metrics-path": "/metrics", "metrics-port": "http-metrics", "min-requests": "10"},
		loadPaths: []string{"/", "/api/info", "/headers"},
	}
}

// crashNewPods waits 3 s after the new version passed verify, then keeps
// sending, through the Service as users' traffic goes, the request that
// makes podinfo exit: real traffic that keeps hitting a bug that crashes a
// version. The kubelet restarts the container and backs off, and the
// Service is left without a ready pod. It stops when ctx ends (the deploy
// finished).
func crashNewPods(ctx context.Context, url string, stdout io.Writer, start time.Time) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(3 * time.Second):
	}
	client := &http.Client{Timeout: 2 * time.Second}
	sent, failed := 0, 0
	defer func() {
		fmt.Fprintf(stdout, "[%s]             ✗ GET /panic sent %d times through the Service; %d found no pod answering\n", elapsed(start), sent, failed)
	}()
	tick := time.NewTicker(300 * time.Millisecond)
	defer tick.Stop()
	for {
		sent++
		// podinfo exits before it answers: the router's 502 is the crash.
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/panic", nil)
		if err != nil {
			return
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		if ctx.Err() != nil {
			return
		}
		if sent == 1 {
			fmt.Fprintf(stdout, "[%s]             ✗ GET /panic through the Service: podinfo exits 255\n", elapsed(start))
		}
		if err != nil || resp.StatusCode >= 500 {
			failed++
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// stageHooks run as stages end; nil ones are skipped.
type stageHooks struct {
	// verified runs once verify passed, monitored once monitoring ended.
	verified, monitored func()
}

// deployWithGreenlight loads inputs as the action would and runs the
// pipeline, calling hooks as stages end.
func deployWithGreenlight(ctx context.Context, c *testcluster.Cluster, app demoApp, manifests, image string, stdout io.Writer, start time.Time, hooks stageHooks) (*pipeline.Outcome, error) {
	inputs := map[string]string{
		"environment": "production", "kubeconfig": string(c.Kubeconfig()), "namespace": demoNamespace,
		"deployment": app.deployment, "image": image, "manifests": manifests, "url": c.ServiceURL(demoNamespace, app.deployment),
		"deployment-id": "demo-" + pipeline.VersionOf(image), "config": os.DevNull,
	}
	maps.Copy(inputs, app.inputs)
	cfg, err := config.Load(config.MapLookup(inputs), os.ReadFile, "")
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
			if e.Stage == event.Verify && e.Outcome == event.Succeeded && hooks.verified != nil {
				hooks.verified()
			}
			if e.Stage == event.Monitor && hooks.monitored != nil {
				hooks.monitored()
			}
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
