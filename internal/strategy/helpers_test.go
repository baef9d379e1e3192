package strategy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/ebeautything/greenlight/internal/kube"
	"github.com/ebeautything/greenlight/internal/testcluster"
)

type env struct {
	c      *testcluster.Cluster
	ns     string
	client kubernetes.Interface
}

func newEnv(t testing.TB) env {
	c := cluster.Get(t)
	return env{c: c, ns: c.NewNamespace(t), client: c.Client()}
}

func (e env) applier(t testing.TB) *kube.Applier {
	a, err := kube.NewApplier(e.c.Config())
	require.NoError(t, err)
	return a
}

// plainApp creates a Deployment and a Service "shop" serving image and
// waits until it serves through the router.
func (e env) plainApp(t testing.TB, image string, env ...corev1.EnvVar) {
	t.Helper()
	e.createApp(t, image, env...)
	e.waitServing(t, versionOf(image))
}

// createApp creates the Deployment and Service and waits for the rollout.
func (e env) createApp(t testing.TB, image string, env ...corev1.EnvVar) {
	t.Helper()
	ctx := context.Background()
	labels := map[string]string{"app": "shop"}
	_, err := e.client.AppsV1().Deployments(e.ns).Create(ctx, testcluster.SampleDeployment("shop", image, labels, env...), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = e.client.CoreV1().Services(e.ns).Create(ctx, testcluster.SampleService("shop", labels), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = kube.WaitRollout(ctx, e.client, e.ns, "shop", kube.WaitOptions{Timeout: time.Minute})
	require.NoError(t, err)
}

func versionOf(image string) string {
	for i := len(image) - 1; i >= 0; i-- {
		if image[i] == ':' {
			return image[i+1:]
		}
	}
	return "latest"
}

// waitServing waits until 10 answers in a row through the router come
// from version.
func (e env) waitServing(t testing.TB, version string) {
	t.Helper()
	url := e.c.ServiceURL(e.ns, "shop") + "/health"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		for range 10 {
			if v, code := get(url); v != version || code != http.StatusOK {
				return false, nil
			}
		}
		return true, nil
	})
	require.NoError(t, err, "waiting for %s to serve all traffic", version)
}

func get(url string) (string, int) {
	resp, err := http.Get(url)
	if err != nil {
		return "", 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Header.Get("X-App-Version"), resp.StatusCode
}

// traffic sends requests through the router until stopped, counting the
// versions that answered and the failures.
type traffic struct {
	mu       sync.Mutex
	versions map[string]int
	failures []string
	stop     chan struct{}
	done     chan struct{}
	// exhausted is set when the traffic ran out of requests before it was
	// stopped: it did not cover the whole deploy.
	exhausted bool
	t         *testing.T
}

func (e env) startTraffic(t *testing.T) *traffic {
	tr := &traffic{versions: map[string]int{}, stop: make(chan struct{}), done: make(chan struct{}), t: t}
	url := e.c.ServiceURL(e.ns, "shop") + "/health"
	go func() {
		defer close(tr.done)
		// Bounded: at most 5000 requests, one every 10ms.
		for range 5000 {
			select {
			case <-tr.stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			v, code := get(url)
			tr.mu.Lock()
			if code != http.StatusOK {
				tr.failures = append(tr.failures, fmt.Sprintf("status %d from %q", code, v))
			} else {
				tr.versions[v]++
			}
			tr.mu.Unlock()
		}
		tr.mu.Lock()
		tr.exhausted = true
		tr.mu.Unlock()
	}()
	t.Cleanup(tr.finish)
	return tr
}

func (tr *traffic) finish() {
	select {
	case <-tr.stop:
	default:
		close(tr.stop)
	}
	<-tr.done
}

func (tr *traffic) result() (map[string]int, []string) {
	tr.finish()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.exhausted {
		tr.t.Errorf("the traffic sent all its requests before the test stopped it: it did not run through the whole deploy")
	}
	return tr.versions, tr.failures
}
