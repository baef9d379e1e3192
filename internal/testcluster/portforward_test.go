package testcluster

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	b64 "encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gwebsocket "github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	httpstream "k8s.io/streaming/pkg/httpstream"
	"k8s.io/utils/ptr"
)

// syncBuffer is an error stream written by the forwarder's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// forwardPod forwards a free local port to the pod's port through the API
// server with client-go's forwarder, over SPDY or, as kubectl does first,
// over SPDY tunnelled in a WebSocket. It returns the local port and what the
// forwarder reported as errors.
func forwardPod(t *testing.T, cfg *rest.Config, ns, pod string, port int, websocket bool) (uint16, *syncBuffer) {
	t.Helper()
	dialer := forwardDialer(t, cfg, ns, pod, websocket)
	stop, ready := make(chan struct{}), make(chan struct{})
	errOut := &syncBuffer{}
	fw, err := portforward.NewOnAddressesForStreaming(dialer, []string{"127.0.0.1"}, []string{fmt.Sprintf(":%d", port)}, stop, ready, io.Discard, errOut)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- fw.ForwardPorts() }()
	t.Cleanup(func() {
		close(stop)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("port-forward to %s/%s:%d did not stop", ns, pod, port)
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("port-forward to %s/%s:%d: %v", ns, pod, port, err)
	case <-time.After(30 * time.Second):
		t.Fatalf("port-forward to %s/%s:%d not ready in 30s", ns, pod, port)
	}
	ports, err := fw.GetPorts()
	require.NoError(t, err)
	return ports[0].Local, errOut
}

// forwardDialer dials pods/portforward of the pod as client-go does, over
// SPDY or over SPDY tunnelled in a WebSocket.
func forwardDialer(t *testing.T, cfg *rest.Config, ns, pod string, websocket bool) httpstream.Dialer {
	t.Helper()
	u, err := url.Parse(cfg.Host)
	require.NoError(t, err)
	u.Path = fmt.Sprintf("/api/v1/namespaces/%s/pods/%s/portforward", ns, pod)
	if websocket {
		dialer, err := portforward.NewSPDYOverWebsocketDialerForStreaming(u, cfg)
		require.NoError(t, err)
		return dialer
	}
	transport, upgrader, err := spdy.RoundTripperFor(cfg)
	require.NoError(t, err)
	return spdy.NewDialerForStreaming(upgrader, &http.Client{Transport: transport}, http.MethodPost, u)
}

// forwardError opens one forwarded connection's stream pair as client-go's
// forwarder does and returns what the node writes on its error stream.
func forwardError(t *testing.T, dialer httpstream.Dialer, port int) string {
	t.Helper()
	conn, _, err := dialer.Dial(portforward.PortForwardProtocolV1Name)
	require.NoError(t, err)
	defer conn.Close()
	headers := http.Header{}
	headers.Set(corev1.StreamType, corev1.StreamTypeError)
	headers.Set(corev1.PortHeader, strconv.Itoa(port))
	headers.Set(corev1.PortForwardRequestIDHeader, "0")
	errorStream, err := conn.CreateStream(headers)
	require.NoError(t, err)
	_ = errorStream.Close() // no data from this side
	headers.Set(corev1.StreamType, corev1.StreamTypeData)
	// The node may reset the data stream for the failed dial before its
	// reply to the stream's creation arrives: the error stream holds why.
	if dataStream, err := conn.CreateStream(headers); err == nil {
		defer dataStream.Close()
	}
	got := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(errorStream)
		got <- string(b)
	}()
	select {
	case msg := <-got:
		return msg
	case <-time.After(15 * time.Second):
		t.Fatal("no error from the node in 15s")
		return ""
	}
}

func getLocal(port uint16, path string) (int, string, error) {
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// TestPortForward forwards to pods through the API server's
// pods/portforward and the node's kubelet endpoint, over SPDY and over
// WebSocket, to the sample app and to podinfo, and to a port nothing
// listens on.
func TestPortForward(t *testing.T) {
	t.Parallel()
	c := shared.Get(t)
	ns := c.NewNamespace(t)
	client := c.Client()
	ctx := context.Background()

	d := SampleDeployment("sample", "sampleapp:v4", map[string]string{"app": "sample"})
	d.Spec.Replicas = ptr.To[int32](1)
	_, err := client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
	require.NoError(t, err)
	public := PublicAppsSupported() == ""
	if public {
		createPodinfo(t, client, ns, "ghcr.io/acme/podinfo:"+strings.Repeat("e", 40), 1, false)
		waitRolledOut(t, client, ns, "podinfo")
	}
	waitRolledOut(t, client, ns, "sample")
	sample := podsOf(t, client, ns, "app=sample")[0].Name
	var podinfo string
	if public {
		podinfo = podsOf(t, client, ns, "app=podinfo")[0].Name
	}

	tests := []struct {
		name, pod    string
		port         int
		path, answer string
		websocket    bool
	}{
		{name: "sample app over SPDY", pod: sample, port: 8080, path: "/health", answer: `"status":"ok","version":"v4"`},
		{name: "sample app over WebSocket", pod: sample, port: 8080, path: "/health", answer: `"status":"ok","version":"v4"`, websocket: true},
		{name: "podinfo over SPDY", pod: podinfo, port: 9898, path: "/healthz", answer: `"status": "OK"`},
		{name: "podinfo over WebSocket", pod: podinfo, port: 9898, path: "/healthz", answer: `"status": "OK"`, websocket: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.pod == "" {
				t.Skip(PublicAppsSupported())
			}
			local, errOut := forwardPod(t, c.Config(), ns, tt.pod, tt.port, tt.websocket)
			// Two requests: each is its own forwarded connection.
			for range 2 {
				code, body, err := getLocal(local, tt.path)
				require.NoError(t, err, errOut.String())
				assert.Equal(t, http.StatusOK, code, body)
				assert.Contains(t, body, tt.answer)
			}
			assert.Empty(t, errOut.String())
		})
	}

	// podinfo serves 9898, 9797 and gRPC on 9999; nothing listens on 7777.
	refused := []struct{ name, pod string }{{"sample app", sample}, {"podinfo", podinfo}}
	for _, tt := range refused {
		for _, websocket := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s port nothing listens on websocket=%v", tt.name, websocket), func(t *testing.T) {
				if tt.pod == "" {
					t.Skip(PublicAppsSupported())
				}
				local, _ := forwardPod(t, c.Config(), ns, tt.pod, 7777, websocket)
				start := time.Now()
				_, _, err := getLocal(local, "/")
				require.Error(t, err, "no answer from a port nothing listens on")
				assert.Less(t, time.Since(start), 8*time.Second, "an error, not the client's timeout")
				msg := forwardError(t, forwardDialer(t, c.Config(), ns, tt.pod, websocket), 7777)
				assert.Contains(t, msg, fmt.Sprintf("error forwarding port 7777 to pod %s, uid ", tt.pod))
				assert.Contains(t, msg, "connect: connection refused")
			})
		}
	}

	t.Run("unknown pod", func(t *testing.T) {
		u, err := url.Parse(c.Config().Host)
		require.NoError(t, err)
		u.Path = fmt.Sprintf("/api/v1/namespaces/%s/pods/%s/portforward", ns, "nope")
		transport, upgrader, err := spdy.RoundTripperFor(c.Config())
		require.NoError(t, err)
		dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, u)
		_, _, err = dialer.Dial(portforward.PortForwardProtocolV1Name)
		require.Error(t, err)
		assert.Contains(t, err.Error(), `pods "nope" not found`)
	})
}

// TestKubectlPortForward runs the real kubectl port-forward to podinfo,
// with kubectl's default dialer: SPDY tunnelled in a WebSocket, falling back
// to SPDY.
func TestKubectlPortForward(t *testing.T) {
	t.Parallel()
	if why := PublicAppsSupported(); why != "" {
		t.Skip(why)
	}
	c := shared.Get(t)
	ns := c.NewNamespace(t)
	client := c.Client()
	createPodinfo(t, client, ns, "ghcr.io/acme/podinfo:"+strings.Repeat("f", 40), 1, false)
	waitRolledOut(t, client, ns, "podinfo")
	pod := podsOf(t, client, ns, "app=podinfo")[0].Name

	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(kubeconfig, c.Kubeconfig(), 0o600))
	cmd := exec.Command(c.Binaries().Kubectl, "--kubeconfig", kubeconfig, "-n", ns, "port-forward", "--address", "127.0.0.1", "pod/"+pod, ":9898", ":7777")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	forwarding := regexp.MustCompile(`^Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)$`)
	lines := make(chan string)
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			lines <- s.Text()
		}
		close(lines)
	}()
	local := map[string]string{} // remote port to local
	for len(local) < 2 {
		select {
		case line, ok := <-lines:
			require.True(t, ok, "kubectl ended: %s", stderr.String())
			if m := forwarding.FindStringSubmatch(line); m != nil {
				local[m[2]] = m[1]
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("kubectl port-forward not forwarding after 30s: %s", stderr.String())
		}
	}
	go func() {
		for range lines { // "Handling connection for ..."
		}
	}()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://127.0.0.1:" + local["9898"] + "/healthz")
	require.NoError(t, err, stderr.String())
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	assert.Contains(t, string(body), `"status": "OK"`)
	resp, err = (&http.Client{Timeout: 10 * time.Second}).Get("http://127.0.0.1:" + local["9898"] + "/version")
	require.NoError(t, err, stderr.String())
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Contains(t, string(body), `"version": "6.9.2"`)

	// A port nothing listens on: the request fails at once, kubectl prints
	// the node's error and, as it does against any kubelet, gives up.
	start := time.Now()
	_, err = (&http.Client{Timeout: 10 * time.Second}).Get("http://127.0.0.1:" + local["7777"] + "/")
	require.Error(t, err)
	assert.Less(t, time.Since(start), 8*time.Second, "an error, not the client's timeout")
	waitFor(t, 10*time.Second, "kubectl to give up", func(context.Context) (bool, error) {
		return strings.Contains(stderr.String(), "error: lost connection to pod"), nil
	})
	assert.Contains(t, stderr.String(), "error forwarding port 7777 to pod "+pod)
	assert.Contains(t, stderr.String(), "connect: connection refused")
}

// TestKubeletPortForwardAnswersAsAKubelet asks the node's kubelet
// endpoint directly what the API server would pass on: the kubelet's
// refusals for an unknown pod or UID, and a pod whose image cannot be
// pulled still forwarded, its connections refused as in a sandbox where
// nothing listens.
func TestKubeletPortForwardAnswersAsAKubelet(t *testing.T) {
	t.Parallel()
	c := shared.Get(t)
	ns := c.NewNamespace(t)
	client := c.Client()
	ctx := context.Background()
	d := SampleDeployment("direct", "sampleapp:v4", map[string]string{"app": "direct"})
	d.Spec.Replicas = ptr.To[int32](1)
	_, err := client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
	require.NoError(t, err)
	missing := SampleDeployment("missing", "sampleapp:missing-1", map[string]string{"app": "missing"})
	missing.Spec.Replicas = ptr.To[int32](1)
	_, err = client.AppsV1().Deployments(ns).Create(ctx, missing, metav1.CreateOptions{})
	require.NoError(t, err)
	waitRolledOut(t, client, ns, "direct")
	pod := podsOf(t, client, ns, "app=direct")[0]
	var pulling string
	waitFor(t, 30*time.Second, "a pod waiting for its image", func(ctx context.Context) (bool, error) {
		pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=missing"})
		if err != nil || len(pods.Items) == 0 || pods.Items[0].Status.PodIP == "" {
			return false, err
		}
		pulling = pods.Items[0].Name
		return true, nil
	})

	httpClient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	base := "https://" + c.node.kubelet.addr + "/portForward/" + ns + "/"
	tests := []struct {
		path string
		code int
		body string
	}{
		{"nopod", http.StatusNotFound, "pod does not exist"},
		{pod.Name + "/not-its-uid", http.StatusNotFound, "pod not found"},
		// Not an upgrade request: the library's own refusal.
		{pod.Name, http.StatusBadRequest, "unable to upgrade: header X-Stream-Protocol-Version does not exist"},
		{pod.Name + "/" + string(pod.UID), http.StatusBadRequest, "unable to upgrade: header X-Stream-Protocol-Version does not exist"},
	}
	for _, tt := range tests {
		resp, err := httpClient.Post(base+tt.path, "", nil)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, tt.code, resp.StatusCode, "%s: %s", tt.path, body)
		assert.Contains(t, string(body), tt.body, tt.path)
	}

	msg := forwardError(t, forwardDialer(t, c.Config(), ns, pulling, false), 8080)
	assert.Contains(t, msg, fmt.Sprintf("error forwarding port 8080 to pod %s, uid ", pulling))
	assert.Contains(t, msg, "connect: connection refused")
}

// TestPortForwardWebSocketV4 speaks the kubelet's own WebSocket port-forward
// protocols, v4.channel.k8s.io and its base64 variant, through the API
// server, which passes them on to the node untranslated.
func TestPortForwardWebSocketV4(t *testing.T) {
	t.Parallel()
	c := shared.Get(t)
	ns := c.NewNamespace(t)
	client := c.Client()
	ctx := context.Background()
	d := SampleDeployment("ws", "sampleapp:v4", map[string]string{"app": "ws"})
	d.Spec.Replicas = ptr.To[int32](1)
	_, err := client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
	require.NoError(t, err)
	waitRolledOut(t, client, ns, "ws")
	pod := podsOf(t, client, ns, "app=ws")[0].Name

	cfg := c.Config()
	tlsConfig, err := rest.TLSConfigFor(cfg)
	require.NoError(t, err)
	header := http.Header{}
	if cfg.BearerToken != "" {
		header.Set("Authorization", "Bearer "+cfg.BearerToken)
	}
	u, err := url.Parse(cfg.Host)
	require.NoError(t, err)
	u.Scheme = "wss"
	u.Path = fmt.Sprintf("/api/v1/namespaces/%s/pods/%s/portforward", ns, pod)
	u.RawQuery = "ports=8080"

	for _, protocol := range []string{"v4.channel.k8s.io", "v4.base64.channel.k8s.io"} {
		t.Run(protocol, func(t *testing.T) {
			base64 := strings.Contains(protocol, "base64")
			dialer := gwebsocket.Dialer{TLSClientConfig: tlsConfig, Subprotocols: []string{protocol}, HandshakeTimeout: 10 * time.Second}
			conn, resp, err := dialer.Dial(u.String(), header)
			require.NoError(t, err)
			resp.Body.Close()
			defer conn.Close()
			assert.Equal(t, protocol, conn.Subprotocol())
			send := func(channel byte, payload []byte) error {
				if base64 {
					return conn.WriteMessage(gwebsocket.TextMessage, append([]byte{'0' + channel}, []byte(b64.StdEncoding.EncodeToString(payload))...))
				}
				return conn.WriteMessage(gwebsocket.BinaryMessage, append([]byte{channel}, payload...))
			}
			receive := func() (byte, []byte, error) {
				_, msg, err := conn.ReadMessage()
				if err != nil || len(msg) == 0 {
					return 0, nil, err
				}
				if base64 {
					payload, err := b64.StdEncoding.DecodeString(string(msg[1:]))
					return msg[0] - '0', payload, err
				}
				return msg[0], msg[1:], nil
			}
			require.NoError(t, conn.SetReadDeadline(time.Now().Add(15*time.Second)))
			// Each channel opens with the port it carries, little-endian.
			for range 2 {
				_, payload, err := receive()
				require.NoError(t, err)
				assert.Equal(t, []byte{8080 & 0xff, 8080 >> 8}, payload)
			}
			require.NoError(t, send(0, []byte("GET /health HTTP/1.0\r\nHost: pod\r\n\r\n")))
			var answer []byte
			for !bytes.Contains(answer, []byte("\r\n\r\n")) || !bytes.Contains(answer, []byte("}\n")) {
				channel, payload, err := receive()
				require.NoError(t, err, "so far: %q", answer)
				require.Equal(t, byte(0), channel, "error channel: %s", payload)
				answer = append(answer, payload...)
			}
			assert.True(t, bytes.HasPrefix(answer, []byte("HTTP/1.0 200 OK\r\n")), "%q", answer)
			assert.Contains(t, string(answer), `"status":"ok","version":"v4"`)
		})
	}
}
