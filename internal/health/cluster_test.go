package health_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ebeautything/greenlight/internal/health"
	"github.com/ebeautything/greenlight/internal/testcluster"
)

// The tests in this file run against the real test cluster: pods run the
// sample app, whose version is its image tag, and public traffic goes
// through the cluster's router.

// sampleDeployment is the test cluster's sample Deployment at version with
// the given number of replicas.
func sampleDeployment(name, version string, replicas int32, labels map[string]string, env ...corev1.EnvVar) *appsv1.Deployment {
	d := testcluster.SampleDeployment(name, "sampleapp:"+version, labels, env...)
	d.Spec.Replicas = &replicas
	return d
}

// sampleService is a Service on port 80 named portName in front of the
// pods matching selector.
func sampleService(name, portName string, selector map[string]string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{
			Selector: selector,
			Ports:    []corev1.ServicePort{{Name: portName, Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
}

func createDeployment(t *testing.T, client kubernetes.Interface, ns string, d *appsv1.Deployment) {
	t.Helper()
	_, err := client.AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{})
	require.NoError(t, err, "create deployment %s", d.Name)
}

func createService(t *testing.T, client kubernetes.Interface, ns string, s *corev1.Service) {
	t.Helper()
	_, err := client.CoreV1().Services(ns).Create(context.Background(), s, metav1.CreateOptions{})
	require.NoError(t, err, "create service %s", s.Name)
}

// waitFor polls cond every 100ms until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// waitServing waits until a request to url's /health answers 200 from
// version, so a test starts from a known state of the router.
func waitServing(t *testing.T, url, version string) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	waitFor(t, 60*time.Second, url+" to serve "+version, func(context.Context) (bool, error) {
		resp, err := client.Get(url + "/health")
		if err != nil {
			return false, nil
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK && resp.Header.Get("X-App-Version") == version, nil
	})
}

// scale sets a Deployment's replicas.
func scale(t *testing.T, client kubernetes.Interface, ns, name string, replicas int32) {
	t.Helper()
	ctx := context.Background()
	s, err := client.AppsV1().Deployments(ns).GetScale(ctx, name, metav1.GetOptions{})
	require.NoError(t, err)
	s.Spec.Replicas = replicas
	_, err = client.AppsV1().Deployments(ns).UpdateScale(ctx, name, s, metav1.UpdateOptions{})
	require.NoError(t, err)
}

// endpoint returns the result for e, failing the test when it is missing.
func endpoint(t *testing.T, res health.Result, e health.Endpoint) health.EndpointResult {
	t.Helper()
	for _, r := range res.Endpoints {
		if r.Endpoint == e {
			return r
		}
	}
	t.Fatalf("no result for endpoint %s in %+v", e, res.Endpoints)
	return health.EndpointResult{}
}

// fastRetry keeps failing checks short without changing what they decide.
var fastRetry = health.Backoff{Initial: 100 * time.Millisecond, Max: 500 * time.Millisecond}

func TestClusterCheckWaitsForLatePods(t *testing.T) {
	t.Parallel()
	c := cluster.Get(t)
	ns := c.NewNamespace(t)
	client := c.Client()

	labels := map[string]string{"app": "late"}
	createService(t, client, ns, sampleService("late", "http", labels))
	target, err := health.NewURLTarget(c.ServiceURL(ns, "late"), health.TLSOptions{})
	require.NoError(t, err)

	done := make(chan health.Result, 1)
	go func() {
		done <- health.Check(context.Background(), target, health.CheckOptions{Mode: health.ModePostDeployment, Timeout: 60 * time.Second})
	}()
	// The check is already failing against a Service without pods when the
	// version it waits for is created.
	time.Sleep(3 * time.Second)
	createDeployment(t, client, ns, sampleDeployment("late", "v3", 2, labels))

	res := <-done
	require.True(t, res.Healthy, res.Reason)
	assert.Greater(t, res.Attempts, 1, "the first attempts met a Service without ready pods")
	assert.Equal(t, health.ModePostDeployment, res.Mode)
	assert.Equal(t, c.ServiceURL(ns, "late"), res.Target)
	assert.Equal(t, "v3", res.Version)
	assert.Empty(t, res.Reason)
	require.Len(t, res.Endpoints, 3)
	for _, r := range res.Endpoints {
		assert.True(t, r.Healthy, "%s: %s", r.Path, r.Failure)
		assert.Equal(t, http.StatusOK, r.StatusCode, r.Path)
		assert.Equal(t, "v3", r.Version, r.Path)
		assert.Positive(t, r.Timing.Total, r.Path)
	}
	detailed := endpoint(t, res, health.EndpointDetailed).Detailed
	require.NotNil(t, detailed)
	assert.Equal(t, health.FormatHealthJSON, detailed.Format)
	assert.Equal(t, "pass", detailed.Status)
	names := make([]string, 0, len(detailed.Components))
	for _, comp := range detailed.Components {
		names = append(names, comp.Name)
	}
	assert.Equal(t, []string{"database:responseTime", "external-services:responseTime", "system:uptime"}, names)
	assert.Equal(t, 3*time.Millisecond, detailed.Components[0].Latency, "health+json observation in ms")
}

func TestClusterDetailedHealthNeedsToken(t *testing.T) {
	t.Parallel()
	c := cluster.Get(t)
	ns := c.NewNamespace(t)
	client := c.Client()

	const token = "detailed-health-token-8517"
	labels := map[string]string{"app": "guarded"}
	createDeployment(t, client, ns, sampleDeployment("guarded", "v4", 2, labels, corev1.EnvVar{Name: "SAMPLEAPP_HEALTH_TOKEN", Value: token}))
	createService(t, client, ns, sampleService("guarded", "http", labels))
	url := c.ServiceURL(ns, "guarded")
	waitServing(t, url, "v4")
	target, err := health.NewURLTarget(url, health.TLSOptions{})
	require.NoError(t, err)

	tests := []struct {
		name        string
		token       string
		healthy     bool
		wantStatus  int
		wantInCause string
	}{
		{"without a token", "", false, http.StatusUnauthorized, "/health/detailed answered 401 Unauthorized: the bearer token was missing"},
		{"with a wrong token", "not-the-token-2291", false, http.StatusUnauthorized, "/health/detailed answered 401 Unauthorized: the bearer token was rejected"},
		{"with the token", token, true, http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := health.Check(context.Background(), target, health.CheckOptions{Token: tt.token, Timeout: 2 * time.Second, Backoff: fastRetry})
			assert.Equal(t, tt.healthy, res.Healthy, res.Reason)
			assert.Contains(t, res.Reason, tt.wantInCause)
			assert.True(t, endpoint(t, res, health.EndpointBasic).Healthy, "only the detailed endpoint is guarded")
			assert.True(t, endpoint(t, res, health.EndpointReady).Healthy, "only the detailed endpoint is guarded")
			detailed := endpoint(t, res, health.EndpointDetailed)
			assert.Equal(t, tt.wantStatus, detailed.StatusCode)
			if tt.healthy {
				require.NotNil(t, detailed.Detailed)
				assert.Len(t, detailed.Detailed.Components, 3)
			}
			out, err := json.Marshal(res)
			require.NoError(t, err)
			assert.NotContains(t, string(out)+fmt.Sprintf("%+v", res), token, "the token never appears in a result")
			if tt.token != "" {
				assert.NotContains(t, string(out), tt.token)
			}
		})
	}
}

// TestClusterVerifyTrafficCatchesOldVersion is not parallel: the router
// rotates over a Service's endpoints with one counter for all Services, so
// other tests' requests would change which pod each of these reaches.
func TestClusterVerifyTrafficCatchesOldVersion(t *testing.T) {
	c := cluster.Get(t)
	ns := c.NewNamespace(t)
	client := c.Client()

	createDeployment(t, client, ns, sampleDeployment("shop-v2", "v2", 4, map[string]string{"app": "shop", "version": "v2"}))
	createDeployment(t, client, ns, sampleDeployment("shop-v1", "v1", 1, map[string]string{"app": "shop", "version": "v1"}))
	createService(t, client, ns, sampleService("shop", "http", map[string]string{"app": "shop"}))
	url := c.ServiceURL(ns, "shop")
	target, err := health.NewURLTarget(url, health.TLSOptions{})
	require.NoError(t, err)
	waitFor(t, 60*time.Second, "all 5 pods behind the router", func(ctx context.Context) (bool, error) {
		slices, err := client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=shop"})
		if err != nil {
			return false, err
		}
		ready := 0
		for _, s := range slices.Items {
			for _, ep := range s.Endpoints {
				if ep.Conditions.Ready != nil && *ep.Conditions.Ready {
					ready++
				}
			}
		}
		return ready == 5, nil
	})

	opts := health.CheckOptions{Mode: health.ModeVerifyTraffic, Timeout: 2 * time.Second, Backoff: fastRetry}
	res := health.VerifyTraffic(context.Background(), target, "v2", 10, opts)
	require.False(t, res.Passed, "one pod in five still runs v1: %s", res.Summary)
	assert.Equal(t, 10, res.Answers)
	assert.Zero(t, res.Failed)
	require.NotEmpty(t, res.Versions)
	old := res.Versions[0]
	assert.Equal(t, "v1", old.Version, "the wrong version is named first")
	// Round robin over five endpoints sends exactly two of ten requests to
	// the v1 pod.
	assert.Equal(t, 2, old.Count)
	assert.Equal(t, []health.VersionCount{{Version: "v1", Count: 2}, {Version: "v2", Count: 8}}, res.Versions)
	assert.Equal(t, "2 of 10 answers came from v1, 8 from v2; want v2", res.Summary)
	assert.Contains(t, res.Reason, "Traffic does not reach v2 after")
	assert.Contains(t, res.Reason, "2 of 10 answers came from v1")

	scale(t, client, ns, "shop-v1", 0)
	opts.Timeout = 60 * time.Second
	res = health.VerifyTraffic(context.Background(), target, "v2", 10, opts)
	require.True(t, res.Passed, res.Reason)
	assert.Equal(t, []health.VersionCount{{Version: "v2", Count: 10}}, res.Versions)
	assert.Equal(t, "10 of 10 answers came from v2; want v2", res.Summary)
}

func TestClusterServiceProxyReachesGreen(t *testing.T) {
	t.Parallel()
	c := cluster.Get(t)
	ns := c.NewNamespace(t)
	client := c.Client()

	for color, version := range map[string]string{"blue": "v1", "green": "v2"} {
		createDeployment(t, client, ns, sampleDeployment("shop-"+color, version, 2, map[string]string{"app": "shop", "color": color}))
	}
	// The public Service still selects blue; green is only reachable
	// inside the cluster, through its own Service.
	createService(t, client, ns, sampleService("shop", "http", map[string]string{"app": "shop", "color": "blue"}))
	createService(t, client, ns, sampleService("shop-green", "http", map[string]string{"app": "shop", "color": "green"}))
	createService(t, client, ns, sampleService("shop-green-unnamed", "", map[string]string{"app": "shop", "color": "green"}))

	tests := []struct {
		name, service, port string
	}{
		{"named port", "shop-green", "http"},
		{"port number", "shop-green", "80"},
		{"only port, unnamed", "shop-green-unnamed", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			green, err := health.NewServiceProxyTarget(c.Config(), ns, tt.service, tt.port)
			require.NoError(t, err)
			res := health.Check(context.Background(), green, health.CheckOptions{Mode: health.ModePreDeployment, Timeout: 60 * time.Second})
			require.True(t, res.Healthy, res.Reason)
			assert.Equal(t, "v2", res.Version)
			assert.Contains(t, res.Target, "service "+ns+"/"+tt.service)
			for _, r := range res.Endpoints {
				assert.Equal(t, "v2", r.Version, r.Path)
			}
			traffic := health.VerifyTraffic(context.Background(), green, "v2", 10, health.CheckOptions{Timeout: 30 * time.Second})
			assert.True(t, traffic.Passed, traffic.Reason)
		})
	}

	refusals := []struct {
		name, service, port string
		user                bool
		want                string
	}{
		{
			name: "named port left out", service: "shop-green",
			want: `/health answered 503 Service Unavailable from the Kubernetes API server: no endpoints available for service "shop-green" (a Service port that has a name is only reached through the service proxy when the target names it)`,
		},
		{
			name: "no such port", service: "shop-green", port: "8080",
			want: `/health answered 503 Service Unavailable from the Kubernetes API server: no service port 8080 found for service "shop-green"`,
		},
		{
			name: "user without services/proxy", service: "shop-green", port: "http", user: true,
			want: `/health/detailed answered 403 Forbidden from the Kubernetes API server: services "shop-green:http" is forbidden: User "health-viewer" cannot get resource "services/proxy"`,
		},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := c.Config()
			if tt.user {
				kubeconfig, err := c.AddUser("health-viewer")
				require.NoError(t, err)
				cfg, err = clientcmd.RESTConfigFromKubeConfig(kubeconfig)
				require.NoError(t, err)
			}
			target, err := health.NewServiceProxyTarget(cfg, ns, tt.service, tt.port)
			require.NoError(t, err)
			res := health.Check(context.Background(), target, health.CheckOptions{Token: "app-token-3141", Timeout: time.Second, Backoff: fastRetry})
			require.False(t, res.Healthy)
			assert.Contains(t, res.Reason, tt.want)
			assert.NotContains(t, res.Reason, "bearer token", "the API server refused, not the app")
			assert.NotContains(t, res.Reason, `reports status "Failure"`, "the API server's Status is not the app's health")
			assert.NotContains(t, fmt.Sprintf("%+v", res), "app-token-3141")
		})
	}

	public, err := health.NewURLTarget(c.ServiceURL(ns, "shop"), health.TLSOptions{})
	require.NoError(t, err)
	res := health.Check(context.Background(), public, health.CheckOptions{Timeout: 60 * time.Second})
	require.True(t, res.Healthy, res.Reason)
	assert.Equal(t, "v1", res.Version, "the public URL still serves blue")
	traffic := health.VerifyTraffic(context.Background(), public, "v1", 10, health.CheckOptions{Timeout: 30 * time.Second})
	assert.True(t, traffic.Passed, traffic.Reason)

	// The router says why it refused, and the reason passes that on.
	nowhere, err := health.NewURLTarget(c.ServiceURL(ns, "nowhere"), health.TLSOptions{})
	require.NoError(t, err)
	res = health.Check(context.Background(), nowhere, health.CheckOptions{Endpoints: []health.Endpoint{health.EndpointBasic}, Timeout: time.Second, Backoff: fastRetry})
	require.False(t, res.Healthy)
	assert.Contains(t, res.Reason, "/health answered 503 Service Unavailable: router: no ready endpoints for service "+ns+"/nowhere.")
}
