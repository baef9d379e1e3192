package testcluster

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

func TestExpandAndArgv(t *testing.T) {
	t.Parallel()
	img := publicImages["podinfo"]
	r := &imageRoot{dir: "/r", img: img}
	env := map[string]string{"PORT": "9898"}
	tests := []struct {
		name          string
		command, args []string
		want          []string
	}{
		{"image default", nil, nil, []string{"./podinfo"}},
		{"command replaces cmd", []string{"./podinfo", "--port=$(PORT)"}, nil, []string{"./podinfo", "--port=9898"}},
		{"args after entrypoint", nil, []string{"--level=$(NOPE)", "$$(PORT)"}, []string{"--level=$(NOPE)", "$(PORT)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, r.argv(tt.command, tt.args, env))
		})
	}
	assert.Equal(t, "/r/home/app", r.workDir(""))
	for image, want := range map[string]bool{
		"ghcr.io/stefanprodan/podinfo:6.9.2": true, "registry:5000/acme/podinfo@sha256:ab": true,
		"mccutchen/go-httpbin:" + strings.Repeat("a", 40): true, "podinfo:1": false, "acme/podinfo-x:1": false,
	} {
		_, ok := publicImageOf(image)
		assert.Equal(t, want, ok, image)
	}
}

func decodeManifest(t *testing.T, manifest string) (*appsv1.Deployment, *corev1.Service) {
	t.Helper()
	var d appsv1.Deployment
	var s corev1.Service
	docs := strings.Split(manifest, "---\n")
	require.Len(t, docs, 2)
	require.NoError(t, yaml.Unmarshal([]byte(docs[0]), &d))
	require.NoError(t, yaml.Unmarshal([]byte(docs[1]), &s))
	return &d, &s
}

// createPodinfo creates podinfo's own Deployment, with image and replicas,
// in ns, and its own Service when service is set; it returns the built
// apps.
func createPodinfo(t *testing.T, client kubernetes.Interface, ns, image string, replicas int32, service bool) Apps {
	t.Helper()
	apps, err := EnsureApps("", os.Stderr)
	require.NoError(t, err)
	manifest, err := apps.PodinfoManifest(image)
	require.NoError(t, err)
	d, svc := decodeManifest(t, manifest)
	d.Spec.Replicas = &replicas
	ctx := context.Background()
	_, err = client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
	require.NoError(t, err)
	if service {
		_, err = client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	return apps
}

// TestPodinfoRunsInPodNamespaces runs podinfo's own Deployment: every
// replica listens on :9898 in its own network namespace, its exec probes
// (podcli) pass inside that namespace, and the service proxy and the
// router reach it.
func TestPodinfoRunsInPodNamespaces(t *testing.T) {
	t.Parallel()
	if why := PublicAppsSupported(); why != "" {
		t.Skip(why)
	}
	c := shared.Get(t)
	ns := c.NewNamespace(t)
	client := c.Client()
	apps := createPodinfo(t, client, ns, "ghcr.io/acme/podinfo:"+strings.Repeat("c", 40), 2, true)
	waitRolledOut(t, client, ns, "podinfo")

	pods := podsOf(t, client, ns, "app=podinfo")
	require.Len(t, pods, 2)
	for _, p := range pods {
		assert.True(t, standInNamespaces.Contains(mustAddr(t, p.Status.PodIP)), "pod IP %s in %s", p.Status.PodIP, standInNamespaces)
	}

	cfg := c.Config()
	httpClient, err := rest.HTTPClientFor(cfg)
	require.NoError(t, err)
	waitFor(t, 30*time.Second, "service proxy to answer", func(context.Context) (bool, error) {
		resp, err := httpClient.Get(strings.TrimSuffix(cfg.Host, "/") + "/api/v1/namespaces/" + ns + "/services/podinfo:http/proxy/readyz")
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			body, _ := io.ReadAll(resp.Body)
			t.Logf("service proxy: %d %s", resp.StatusCode, body)
			return false, nil
		}
		return true, nil
	})

	resp, err := http.Get(c.ServiceURL(ns, "podinfo") + "/version")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "router")
	var v struct{ Version string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&v))
	assert.Equal(t, apps.PodinfoVersion, v.Version)
}

// TestHttpbinRunsWithoutVersion runs go-httpbin from its image's default
// command in its own network namespace.
func TestHttpbinRunsWithoutVersion(t *testing.T) {
	t.Parallel()
	if why := PublicAppsSupported(); why != "" {
		t.Skip(why)
	}
	c := shared.Get(t)
	ns := c.NewNamespace(t)
	client := c.Client()
	ctx := context.Background()
	d, svc := decodeManifest(t, HttpbinManifest("httpbin", "ghcr.io/mccutchen/go-httpbin:v2", 1))
	_, err := client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{})
	require.NoError(t, err)
	waitRolledOut(t, client, ns, "httpbin")
	resp, err := http.Get(c.ServiceURL(ns, "httpbin") + "/status/200")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

// TestPodinfoSandboxWithoutCluster starts podinfo from its own Deployment's
// command in a pod namespace, passes its exec probe there, answers on the
// pod address from the host, and leaves no namespace behind.
func TestPodinfoSandboxWithoutCluster(t *testing.T) {
	t.Parallel()
	if why := PublicAppsSupported(); why != "" {
		t.Skip(why)
	}
	apps, err := EnsureApps("", os.Stderr)
	require.NoError(t, err)
	manifest, err := apps.PodinfoManifest("ghcr.io/acme/podinfo:v1")
	require.NoError(t, err)
	d, _ := decodeManifest(t, manifest)
	spec := d.Spec.Template.Spec.Containers[0]

	boxes := newSandboxes()
	sb, err := boxes.create()
	require.NoError(t, err)
	closed := false
	t.Cleanup(func() {
		if !closed {
			boxes.close()
		}
	})
	assert.True(t, standInNamespaces.Contains(sb.ip))
	img, ok := publicImageOf(spec.Image)
	require.True(t, ok)
	root, err := newImageRoot(t.TempDir(), img, apps)
	require.NoError(t, err)
	env := map[string]string{}
	for _, e := range spec.Env {
		env[e.Name] = e.Value
	}
	a := &appContainer{sb: sb, root: root, ip: sb.ip, argv: root.argv(spec.Command, spec.Args, env),
		workDir: root.workDir(spec.WorkingDir), env: root.environ("podinfo-0", env), logPath: filepath.Join(t.TempDir(), "podinfod.log")}
	require.NoError(t, a.start())

	waitFor(t, 30*time.Second, "podinfo's exec readiness probe", func(context.Context) (bool, error) {
		return a.execProbe(spec.ReadinessProbe.Exec.Command, 5*time.Second), nil
	})
	resp, err := http.Get("http://" + a.addr(intstr.FromString("http"), spec) + "/version")
	require.NoError(t, err)
	var v struct{ Version string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&v))
	resp.Body.Close()
	assert.Equal(t, apps.PodinfoVersion, v.Version)

	a.stop(time.Second)
	logs, err := os.ReadFile(a.logPath)
	require.NoError(t, err)
	assert.Contains(t, string(logs), "Starting podinfo", "the container log holds podinfo's own output")
	boxes.close()
	closed = true
	_, err = os.Stat("/run/netns/" + sb.name)
	assert.True(t, os.IsNotExist(err), "namespace %s removed", sb.name)
}

// TestSandboxesReapWhatAKilledRunLeft: a pod namespace whose address lock
// nobody holds (its process was killed) is removed when sandboxes start.
func TestSandboxesReapWhatAKilledRunLeft(t *testing.T) {
	if why := PublicAppsSupported(); why != "" {
		t.Skip(why)
	}
	stale := &sandbox{name: sandboxNSPrefix + "222", veth: sandboxVethPrefix + "222"}
	require.NoError(t, ipCmd("netns", "add", stale.name))
	t.Cleanup(stale.clear)
	boxes := newSandboxes()
	sb, err := boxes.create()
	require.NoError(t, err)
	boxes.release(sb)
	boxes.close()
	_, err = os.Stat("/run/netns/" + stale.name)
	assert.True(t, os.IsNotExist(err), "the stale namespace was removed")
}

// TestSandboxAddressReusedAnswersAtOnce: a pod namespace rebuilt on an
// address the host has just talked to answers at once. The host's neighbour
// entry for the address is still fresh then, so the new pod must keep the
// old one's link address, as a kubelet's network plugin gives each pod
// address one.
func TestSandboxAddressReusedAnswersAtOnce(t *testing.T) {
	t.Parallel()
	if why := PublicAppsSupported(); why != "" {
		t.Skip(why)
	}
	boxes := newSandboxes()
	t.Cleanup(boxes.close)
	// A second pod keeps the bridge up, as other pods do on a node: a
	// bridge whose last port goes forgets its neighbours.
	_, err := boxes.create()
	require.NoError(t, err)
	sb, err := boxes.create()
	require.NoError(t, err)
	// Nothing listens on port 1: a refused dial proves the address answered.
	refused := func() error {
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(sb.ip, 1).String(), 2*time.Second)
		if err == nil {
			c.Close()
			return errors.New("something listens on port 1")
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return err
		}
		return nil
	}
	require.NoError(t, refused(), "the first pod at %s answers", sb.ip)
	for i := range 3 {
		sb.clear()
		require.NoError(t, sb.build())
		require.NoError(t, refused(), "pod %d rebuilt at %s answers within 2 s", i+2, sb.ip)
	}
}
