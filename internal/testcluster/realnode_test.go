package testcluster

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"

	"github.com/ebeautything/greenlight/internal/kube"
)

// realNodeChildState makes this test binary the child that
// TestRealNodeCleanupAfterKill kills: it starts a real node, runs a pod,
// writes the node's description to the named file and waits to be killed.
var realNodeChildState = flag.String("realnode.child", "", "run as the child that starts a real node and waits to be killed; write its state to this file")

// needRealNode skips when the real node cannot run here, saying why.
func needRealNode(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("the real node starts a cluster; skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("the real node needs root (bridge, routes, iptables, mounts, cgroups); skipped")
	}
}

func startRealNodeCluster(t *testing.T, log io.Writer) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	c, err := Start(ctx, Options{Log: log, RealNode: true})
	require.NoError(t, err)
	return c
}

// podinfoManifests reads podinfo's own Deployment and Service and adapts
// them to the test node: a tag of the test's choosing, a replica count, no
// service account token (no token controller runs).
func podinfoManifests(t *testing.T, source, tag string, replicas int32) (*appsv1.Deployment, *corev1.Service) {
	t.Helper()
	read := func(name string, into any) {
		f, err := os.Open(filepath.Join(source, "kustomize", name))
		require.NoError(t, err)
		defer f.Close()
		require.NoError(t, yaml.NewYAMLOrJSONDecoder(f, 4096).Decode(into))
	}
	var dep appsv1.Deployment
	var svc corev1.Service
	read("deployment.yaml", &dep)
	read("service.yaml", &svc)
	dep.Spec.Replicas = &replicas
	no := false
	dep.Spec.Template.Spec.AutomountServiceAccountToken = &no
	dep.Spec.Template.Spec.Containers[0].Image = "ghcr.io/stefanprodan/podinfo:" + tag
	return &dep, &svc
}

// TestRealNode starts the real node and runs podinfo on it with its own
// manifests: two replicas become Ready by their own exec probes and answer
// through the Service's ClusterIP via kube-proxy; an image of an unknown
// repository fails with the kubelet's own reasons.
func TestRealNode(t *testing.T) {
	needRealNode(t)
	c := startRealNodeCluster(t, os.Stderr)
	defer c.Stop()
	apps, err := EnsureApps("", io.Discard)
	require.NoError(t, err)

	t.Run("PodinfoThroughClusterIP", func(t *testing.T) {
		ns := c.NewNamespace(t)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		// A SHA-like tag nobody imported: the kubelet pulls it from the
		// loopback registry, as a CI-built tag would be.
		dep, svc := podinfoManifests(t, apps.PodinfoSource, "sha-5f2c1d0", 2)
		applied := time.Now()
		_, err := c.Client().AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{})
		require.NoError(t, err)
		svc, err = c.Client().CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{})
		require.NoError(t, err)
		require.True(t, realNodeServices.Contains(mustAddr(t, svc.Spec.ClusterIP)), "ClusterIP %s in %s", svc.Spec.ClusterIP, realNodeServices)

		require.Eventually(t, func() bool {
			d, err := c.Client().AppsV1().Deployments(ns).Get(ctx, dep.Name, metav1.GetOptions{})
			return err == nil && d.Status.ReadyReplicas == 2 && d.Status.AvailableReplicas == 2
		}, 2*time.Minute, 200*time.Millisecond, "podinfo Ready by its own probes\n%s", podSummary(ctx, c.Client(), ns))
		t.Logf("podinfo: 2 replicas available %s after apply (minReadySeconds 3, probes' initialDelaySeconds 5)", time.Since(applied).Round(time.Millisecond))

		pods, err := c.Client().CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		hostnames := map[string]bool{}
		for _, p := range pods.Items {
			require.True(t, realNodePods.Contains(mustAddr(t, p.Status.PodIP)), "pod IP %s in %s", p.Status.PodIP, realNodePods)
			require.Equal(t, realNodeName, p.Spec.NodeName)
			hostnames[p.Name] = false
		}

		// Through kube-proxy: wait for HTTP 200 from the ClusterIP, then
		// expect both pods to answer. A new connection per request: a
		// kept-alive one stays with the pod kube-proxy chose first.
		url := fmt.Sprintf("http://%s:9898/", svc.Spec.ClusterIP)
		client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		require.Eventually(t, func() bool {
			resp, err := client.Get(url)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		}, time.Minute, 100*time.Millisecond, "HTTP 200 from the ClusterIP %s", url)
		for i := 0; i < 40; i++ {
			resp, err := client.Get(url)
			require.NoError(t, err)
			var body struct{ Hostname, Version string }
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, apps.PodinfoVersion, body.Version)
			hostnames[body.Hostname] = true
		}
		for name, answered := range hostnames {
			assert.True(t, answered, "pod %s answered through the ClusterIP", name)
		}

		// The router's URL form reaches the same Service through its ClusterIP.
		resp, err := client.Get(c.ServiceURL(ns, svc.Name) + "/readyz")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)

		// What a failed check would show: the kubelet's own container
		// logs, read through the API server's pods/log.
		diag, err := kube.Diagnoser{Client: c.Client(), Containers: 2}.Diagnose(ctx, ns, dep.Spec.Selector.MatchLabels)
		require.NoError(t, err)
		require.Len(t, diag.Logs, 2, "each running pod's first container, none crashed")
		for _, l := range diag.Logs {
			assert.Empty(t, l.Err)
			assert.False(t, l.Previous)
			assert.Contains(t, l.Text, `"msg":"Starting podinfo"`, "podinfo's own start line in %s/%s", l.Pod, l.Container)
		}
		none := kube.Diagnoser{Client: c.Client()}.Logs(ctx, ns, []kube.Failure{{Kind: kube.FailureCrashLoop, Pod: diag.Logs[0].Pod, Container: "podinfod", RestartCount: 1}})
		require.Len(t, none, 1)
		assert.Contains(t, none[0].Err, "previous terminated container", "the kubelet's own words: a container that never restarted has no previous log")
		t.Logf("previous log of a container that never restarted: %s", none[0].Err)
	})

	t.Run("UnknownImageFailsWithKubeletReason", func(t *testing.T) {
		ns := c.NewNamespace(t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		no := false
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "missing"},
			Spec: corev1.PodSpec{
				AutomountServiceAccountToken: &no,
				Containers:                   []corev1.Container{{Name: "app", Image: "ghcr.io/acme/no-such-app:v1"}},
			},
		}
		created := time.Now()
		_, err := c.Client().CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
		require.NoError(t, err)
		var reason string
		require.Eventually(t, func() bool {
			p, err := c.Client().CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
			if err != nil || len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].State.Waiting == nil {
				return false
			}
			reason = p.Status.ContainerStatuses[0].State.Waiting.Reason
			return reason == "ErrImagePull" || reason == "ImagePullBackOff"
		}, 30*time.Second, 100*time.Millisecond, "the kubelet's pull failure within 30s")
		t.Logf("image of an unknown repository: %s after %s", reason, time.Since(created).Round(time.Millisecond))
		events, err := c.Client().CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=missing"})
		require.NoError(t, err)
		var messages []string
		for _, e := range events.Items {
			if e.Source.Component == "kubelet" && e.Reason == "Failed" {
				messages = append(messages, e.Message)
			}
		}
		require.NotEmpty(t, messages, "the kubelet's Failed events")
		assert.Contains(t, strings.Join(messages, "\n"), "not found", "the loopback registry answered 404")
	})
}

func podSummary(ctx context.Context, client kubernetes.Interface, ns string) string {
	pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, p := range pods.Items {
		fmt.Fprintf(&b, "%s phase=%s ip=%s", p.Name, p.Status.Phase, p.Status.PodIP)
		for _, s := range p.Status.ContainerStatuses {
			fmt.Fprintf(&b, " ready=%v", s.Ready)
			if s.State.Waiting != nil {
				fmt.Fprintf(&b, " waiting=%s(%s)", s.State.Waiting.Reason, s.State.Waiting.Message)
			}
		}
		b.WriteString("\n")
	}
	events, _ := client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	if events != nil {
		for _, e := range events.Items {
			fmt.Fprintf(&b, "event %s %s: %s\n", e.InvolvedObject.Name, e.Reason, e.Message)
		}
	}
	return b.String()
}

// TestRealNodeCleanupAfterKill starts a real node in a child test process,
// kills that process with SIGKILL while a pod runs, starts a real node
// again and asserts that nothing of the killed run is left.
func TestRealNodeCleanupAfterKill(t *testing.T) {
	if *realNodeChildState != "" {
		runRealNodeChild(t, *realNodeChildState)
		return
	}
	needRealNode(t)
	stateFile := filepath.Join(t.TempDir(), "child.json")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	child := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestRealNodeCleanupAfterKill$", "-test.v", "-realnode.child="+stateFile)
	out, err := child.StdoutPipe()
	require.NoError(t, err)
	child.Stderr = child.Stdout
	require.NoError(t, child.Start())
	killed := false
	defer func() {
		if !killed {
			_ = child.Process.Kill()
			_ = child.Wait()
		}
	}()
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			t.Log("child: " + sc.Text())
			if strings.Contains(sc.Text(), "REALNODE-CHILD-READY") {
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-ctx.Done():
		t.Fatal("the child never started its real node")
	}
	var info RealNodeInfo
	data, err := os.ReadFile(stateFile)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &info))
	require.NotEmpty(t, mountsUnder(info.Dir), "the killed run had mounts")
	require.NoError(t, child.Process.Kill())
	_ = child.Wait()
	killed = true

	c := startRealNodeCluster(t, os.Stderr)
	second, _ := c.RealNode()
	require.NotEqual(t, info.Dir, second.Dir)
	assertNothingLeft(t, info, "the killed run")
	c.Stop()
	// Hold the machine's real-node lock so no other package's node is
	// counted as a leftover.
	unlock, err := lockFile(filepath.Join(realNodeStateDir, "lock"))
	require.NoError(t, err)
	defer unlock()
	assertNothingLeft(t, second, "a stopped run")
	assertNoNodeNetwork(t)
}

func runRealNodeChild(t *testing.T, stateFile string) {
	c := startRealNodeCluster(t, os.Stderr)
	info, _ := c.RealNode()
	ns := c.NewNamespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	apps, err := EnsureApps("", io.Discard)
	require.NoError(t, err)
	dep, _ := podinfoManifests(t, apps.PodinfoSource, "6.9.2", 1)
	dep.Spec.Template.Spec.Containers[0].ReadinessProbe = nil
	dep.Spec.Template.Spec.Containers[0].LivenessProbe = nil
	_, err = c.Client().AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		d, err := c.Client().AppsV1().Deployments(ns).Get(ctx, dep.Name, metav1.GetOptions{})
		return err == nil && d.Status.ReadyReplicas == 1
	}, time.Minute, 200*time.Millisecond)
	data, _ := json.Marshal(info)
	require.NoError(t, os.WriteFile(stateFile, data, 0o644))
	fmt.Println("REALNODE-CHILD-READY")
	time.Sleep(10 * time.Minute) // killed by the parent
}

// assertNothingLeft checks that no process, mount, cgroup, container or
// file of the run remains.
func assertNothingLeft(t *testing.T, info RealNodeInfo, what string) {
	t.Helper()
	assert.Empty(t, ProcessesUsing(info.Dir), "%s: processes naming %s", what, info.Dir)
	assert.Empty(t, mountsUnder(info.Dir), "%s: mounts under %s", what, info.Dir)
	assert.NoDirExists(t, info.Dir, "%s: its directory", what)
	for _, ctrl := range cgroupControllers() {
		assert.NoDirExists(t, filepath.Join(ctrl, info.CgroupRoot), "%s: cgroup", what)
	}
	links, _ := filepath.Glob("/var/log/containers/*.log")
	for _, l := range links {
		target, _ := os.Readlink(l)
		assert.False(t, strings.HasPrefix(target, info.Dir+"/"), "%s: log link %s", what, l)
	}
}

// assertNoNodeNetwork checks that the bridge, its routes and the node's
// iptables chains are gone, and that the plan's range stays unreachable.
func assertNoNodeNetwork(t *testing.T) {
	t.Helper()
	assert.Error(t, exec.Command("ip", "link", "show", realNodeBridge).Run(), "bridge %s removed", realNodeBridge)
	routes, err := exec.Command("ip", "route", "show", "table", "all").Output()
	require.NoError(t, err)
	assert.NotContains(t, string(routes), realNodeBridge)
	assert.Contains(t, string(routes), "unreachable "+planNetwork.String())
	for _, tool := range []string{"iptables-save", "ip6tables-save"} {
		out, err := exec.Command(tool).Output()
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, ":KUBE-") || strings.HasPrefix(line, ":CNI-") {
				t.Errorf("%s: chain %s left behind", tool, strings.Fields(line)[0])
			}
		}
	}
	leaving, err := routesLeavingMachine()
	require.NoError(t, err)
	assert.Empty(t, leaving)
}

func TestRealNodeSplitRule(t *testing.T) {
	t.Parallel()
	for line, want := range map[string][]string{
		`-A FORWARD -m comment --comment "CNI firewall plugin rules" -j CNI-FORWARD`: {"-A", "FORWARD", "-m", "comment", "--comment", "CNI firewall plugin rules", "-j", "CNI-FORWARD"},
		`-A INPUT -j KUBE-FIREWALL`:                     {"-A", "INPUT", "-j", "KUBE-FIREWALL"},
		`-A X -m comment --comment "a \"b\"" -j ACCEPT`: {"-A", "X", "-m", "comment", "--comment", `a "b"`, "-j", "ACCEPT"},
	} {
		assert.Equal(t, want, splitRule(line), line)
	}
	assert.Equal(t, "CNI-FORWARD", ruleJump(splitRule(`-A FORWARD -m comment --comment "x" -j CNI-FORWARD`)))
	assert.True(t, ownChain("CNI-DN-1234"))
	assert.False(t, ownChain("DOCKER-USER"))
}
