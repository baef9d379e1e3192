package testcluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

var shared Shared

func TestMain(m *testing.M) { os.Exit(Main(m, &shared)) }

func waitFor(t *testing.T, timeout time.Duration, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func waitRolledOut(t *testing.T, client kubernetes.Interface, ns, name string) *appsv1.Deployment {
	t.Helper()
	var d *appsv1.Deployment
	waitFor(t, 60*time.Second, "deployment "+name+" to roll out", func(ctx context.Context) (bool, error) {
		var err error
		d, err = client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		s := d.Status
		return s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == *d.Spec.Replicas &&
			s.Replicas == s.UpdatedReplicas && s.AvailableReplicas == s.UpdatedReplicas, nil
	})
	return d
}

func podsOf(t *testing.T, client kubernetes.Interface, ns string, selector string) []corev1.Pod {
	t.Helper()
	pods, err := client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
	require.NoError(t, err)
	return pods.Items
}

func TestDeploymentRollsOutAndUpdates(t *testing.T) {
	t.Parallel()
	c := shared.Get(t)
	ns := c.NewNamespace(t)
	client := c.Client()
	ctx := context.Background()

	labels := map[string]string{"app": "payments"}
	_, err := client.AppsV1().Deployments(ns).Create(ctx, SampleDeployment("payments", "sampleapp:v1", labels), metav1.CreateOptions{})
	require.NoError(t, err)
	waitRolledOut(t, client, ns, "payments")

	pods := podsOf(t, client, ns, "app=payments")
	require.Len(t, pods, 2)
	for _, p := range pods {
		assert.Equal(t, NodeName, p.Spec.NodeName)
		assert.Equal(t, corev1.PodRunning, p.Status.Phase)
		assert.True(t, podReady(&p), "pod %s ready", p.Name)
		assert.True(t, podNetwork.Contains(mustAddr(t, p.Status.PodIP)), "pod IP %s in the documentation range", p.Status.PodIP)
	}

	// An image update rolls out, and the old pods go away.
	d, err := client.AppsV1().Deployments(ns).Get(ctx, "payments", metav1.GetOptions{})
	require.NoError(t, err)
	d.Spec.Template.Spec.Containers[0].Image = "sampleapp:v2"
	_, err = client.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{})
	require.NoError(t, err)
	waitRolledOut(t, client, ns, "payments")
	waitFor(t, 30*time.Second, "old pods to be deleted", func(context.Context) (bool, error) {
		pods := podsOf(t, client, ns, "app=payments")
		for _, p := range pods {
			if p.Spec.Containers[0].Image != "sampleapp:v2" {
				return false, nil
			}
		}
		return len(pods) == 2, nil
	})
}

func TestNotReadyPodsKeepRolloutWaiting(t *testing.T) {
	t.Parallel()
	c := shared.Get(t)
	ns := c.NewNamespace(t)
	client := c.Client()
	labels := map[string]string{"app": "lazy"}
	_, err := client.AppsV1().Deployments(ns).Create(context.Background(),
		SampleDeployment("lazy", "sampleapp:v1", labels, corev1.EnvVar{Name: "SAMPLEAPP_READY", Value: "false"}), metav1.CreateOptions{})
	require.NoError(t, err)
	waitFor(t, 30*time.Second, "pods running", func(context.Context) (bool, error) {
		pods := podsOf(t, client, ns, "app=lazy")
		running := 0
		for _, p := range pods {
			if p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		return running == 2, nil
	})
	time.Sleep(3 * time.Second) // several probe periods
	for _, p := range podsOf(t, client, ns, "app=lazy") {
		assert.False(t, podReady(&p), "a pod whose readiness probe fails stays unready")
	}
	d, err := client.AppsV1().Deployments(ns).Get(context.Background(), "lazy", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Zero(t, d.Status.AvailableReplicas)
}

func TestMissingImageBacksOffAndDeadlineExceeds(t *testing.T) {
	t.Parallel()
	c := shared.Get(t)
	ns := c.NewNamespace(t)
	client := c.Client()
	labels := map[string]string{"app": "broken"}
	d := SampleDeployment("broken", "registry.example/sampleapp:missing-1", labels)
	deadline := int32(3)
	d.Spec.ProgressDeadlineSeconds = &deadline
	_, err := client.AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{})
	require.NoError(t, err)

	waitFor(t, 30*time.Second, "ImagePullBackOff", func(context.Context) (bool, error) {
		for _, p := range podsOf(t, client, ns, "app=broken") {
			for _, cs := range p.Status.ContainerStatuses {
				if cs.State.Waiting != nil && cs.State.Waiting.Reason == "ImagePullBackOff" {
					assert.Contains(t, cs.State.Waiting.Message, "missing-1")
					assert.Equal(t, corev1.PodPending, p.Status.Phase)
					return true, nil
				}
			}
		}
		return false, nil
	})
	waitFor(t, 60*time.Second, "ProgressDeadlineExceeded", func(ctx context.Context) (bool, error) {
		d, err := client.AppsV1().Deployments(ns).Get(ctx, "broken", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, cond := range d.Status.Conditions {
			if cond.Type == appsv1.DeploymentProgressing && cond.Reason == "ProgressDeadlineExceeded" {
				return true, nil
			}
		}
		return false, nil
	})
	events, err := client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	reasons := map[string]bool{}
	for _, e := range events.Items {
		reasons[e.Reason] = true
	}
	assert.True(t, reasons["Failed"] && reasons["BackOff"], "pull failures are recorded as events: %v", reasons)
}

func TestCrashLoopAndUnschedulable(t *testing.T) {
	t.Parallel()
	c := shared.Get(t)
	ns := c.NewNamespace(t)
	client := c.Client()
	ctx := context.Background()

	crash := SampleDeployment("crash", "sampleapp:v1", map[string]string{"app": "crash"}, corev1.EnvVar{Name: "SAMPLEAPP_CRASH", Value: "true"})
	_, err := client.AppsV1().Deployments(ns).Create(ctx, crash, metav1.CreateOptions{})
	require.NoError(t, err)
	stuck := SampleDeployment("stuck", "sampleapp:v1", map[string]string{"app": "stuck"})
	stuck.Spec.Template.Spec.NodeSelector = map[string]string{"disktype": "ssd"}
	_, err = client.AppsV1().Deployments(ns).Create(ctx, stuck, metav1.CreateOptions{})
	require.NoError(t, err)

	waitFor(t, 30*time.Second, "CrashLoopBackOff with restarts", func(context.Context) (bool, error) {
		for _, p := range podsOf(t, client, ns, "app=crash") {
			for _, cs := range p.Status.ContainerStatuses {
				if cs.State.Waiting != nil && cs.State.Waiting.Reason == "CrashLoopBackOff" && cs.RestartCount >= 2 {
					require.NotNil(t, cs.LastTerminationState.Terminated)
					assert.Contains(t, cs.LastTerminationState.Terminated.Message, "SAMPLEAPP_CRASH")
					return true, nil
				}
			}
		}
		return false, nil
	})
	waitFor(t, 30*time.Second, "an unschedulable pod", func(context.Context) (bool, error) {
		for _, p := range podsOf(t, client, ns, "app=stuck") {
			for _, cond := range p.Status.Conditions {
				if cond.Type == corev1.PodScheduled && cond.Reason == corev1.PodReasonUnschedulable {
					assert.Empty(t, p.Spec.NodeName)
					assert.Contains(t, cond.Message, "didn't match Pod's node affinity/selector")
					return true, nil
				}
			}
		}
		return false, nil
	})
}

// versionsThroughRouter sends n requests through the router and counts the
// versions that answered.
func versionsThroughRouter(t *testing.T, url string, n int) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for range n {
		resp, err := http.Get(url + "/health")
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			counts[fmt.Sprintf("status %d", resp.StatusCode)]++
			continue
		}
		counts[resp.Header.Get("X-App-Version")]++
	}
	return counts
}

func TestSelectorSwitchMovesRouterTraffic(t *testing.T) {
	t.Parallel()
	c := shared.Get(t)
	ns := c.NewNamespace(t)
	client := c.Client()
	ctx := context.Background()

	for color, version := range map[string]string{"blue": "v1", "green": "v2"} {
		labels := map[string]string{"app": "shop", "color": color}
		_, err := client.AppsV1().Deployments(ns).Create(ctx, SampleDeployment("shop-"+color, "sampleapp:"+version, labels), metav1.CreateOptions{})
		require.NoError(t, err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "shop"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "shop", "color": "blue"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
		},
	}
	_, err := client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{})
	require.NoError(t, err)
	waitRolledOut(t, client, ns, "shop-blue")
	waitRolledOut(t, client, ns, "shop-green")

	url := c.ServiceURL(ns, "shop")
	waitFor(t, 30*time.Second, "router to serve blue", func(context.Context) (bool, error) {
		return versionsThroughRouter(t, url, 1)["v1"] == 1, nil
	})
	assert.Equal(t, map[string]int{"v1": 20}, versionsThroughRouter(t, url, 20))

	patch := []byte(`{"spec":{"selector":{"app":"shop","color":"green"}}}`)
	_, err = client.CoreV1().Services(ns).Patch(ctx, "shop", types.MergePatchType, patch, metav1.PatchOptions{})
	require.NoError(t, err)
	waitFor(t, 30*time.Second, "router to serve green", func(context.Context) (bool, error) {
		return versionsThroughRouter(t, url, 1)["v2"] == 1, nil
	})
	assert.Equal(t, map[string]int{"v2": 20}, versionsThroughRouter(t, url, 20))

	// A Service without ready endpoints answers 503.
	resp, err := http.Get(c.ServiceURL(ns, "nothing") + "/health")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
}

func TestServiceProxyReachesPod(t *testing.T) {
	t.Parallel()
	c := shared.Get(t)
	ns := c.NewNamespace(t)
	client := c.Client()
	ctx := context.Background()

	labels := map[string]string{"app": "hidden"}
	_, err := client.AppsV1().Deployments(ns).Create(ctx, SampleDeployment("hidden", "sampleapp:v7", labels), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = client.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "hidden"},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	waitRolledOut(t, client, ns, "hidden")

	// Through the kubeconfig a user would hand to greenlight.
	cfg, err := clientcmd.RESTConfigFromKubeConfig(c.Kubeconfig())
	require.NoError(t, err)
	httpClient, err := rest.HTTPClientFor(cfg)
	require.NoError(t, err)
	var body map[string]string
	waitFor(t, 30*time.Second, "service proxy to answer", func(context.Context) (bool, error) {
		resp, err := httpClient.Get(cfg.Host + "/api/v1/namespaces/" + ns + "/services/hidden:http/proxy/health")
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false, nil
		}
		return true, json.NewDecoder(resp.Body).Decode(&body)
	})
	assert.Equal(t, "v7", body["version"])

	pods := podsOf(t, client, ns, "app=hidden")
	resp, err := httpClient.Get(cfg.Host + "/api/v1/namespaces/" + ns + "/pods/" + pods[0].Name + ":8080/proxy/health")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "pod proxy")
}

func TestStopLeavesNoProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts its own cluster")
	}
	t.Parallel()
	c, err := Start(context.Background(), Options{Log: io.Discard})
	require.NoError(t, err)
	dir := c.WorkDir()
	require.NotEmpty(t, ProcessesUsing(dir), "etcd, kube-apiserver and kube-controller-manager run while the cluster does")
	c.Stop()
	assert.Empty(t, ProcessesUsing(dir))
	_, err = os.Stat(dir)
	assert.True(t, os.IsNotExist(err), "cluster directory removed")
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// TestStartPrintsNoStackTrace: controller-runtime, through which the
// control plane starts, prints a stack trace to the process's stderr
// ("log.SetLogger(...) was never called") when it logs 30 s or more after
// the process started and no logger was set; Start sets one. A child
// process starts a cluster past that point, and its output is the
// evidence.
func TestStartPrintsNoStackTrace(t *testing.T) {
	if os.Getenv("GREENLIGHT_TEST_START_CHILD") == "1" {
		time.Sleep(31 * time.Second)
		c, err := Start(context.Background(), Options{})
		if err != nil {
			fmt.Fprintln(os.Stderr, "start:", err)
			os.Exit(1)
		}
		c.Stop()
		os.Exit(0)
	}
	if testing.Short() {
		t.Skip("starts a cluster; skipped with -short")
	}
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run=^TestStartPrintsNoStackTrace$")
	cmd.Env = append(os.Environ(), "GREENLIGHT_TEST_START_CHILD=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.NotContains(t, string(out), "log.SetLogger")
	assert.NotContains(t, string(out), "goroutine ")
}
