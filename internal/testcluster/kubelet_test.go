package testcluster

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

func TestWriteLog(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 5, time.UTC)
	lines := []logLine{
		{at: t0, text: []byte("one\n")},
		{at: t0.Add(time.Second), text: []byte("two\n")},
		{at: t0.Add(2 * time.Second), text: []byte("three\n")},
		{at: t0.Add(3 * time.Second), text: []byte("unfinished")},
	}
	tests := []struct {
		name  string
		lines []logLine
		opts  logOptions
		want  string
	}{
		{"everything", lines, logOptions{}, "one\ntwo\nthree\nunfinished"},
		{"tail counts complete lines only", lines, logOptions{tailLines: ptr.To[int64](2)}, "two\nthree\n"},
		{"tail beyond the log", lines[:3], logOptions{tailLines: ptr.To[int64](10)}, "one\ntwo\nthree\n"},
		{"tail zero", lines, logOptions{tailLines: ptr.To[int64](0)}, ""},
		{"limit bytes cuts a line", lines, logOptions{limitBytes: ptr.To[int64](6)}, "one\ntw"},
		{"since skips older lines", lines, logOptions{since: t0.Add(1500 * time.Millisecond)}, "three\nunfinished"},
		{"timestamps", lines[:1], logOptions{timestamps: true}, "2026-11-29T12:00:00.000000005Z one\n"},
		{"no time known: no prefix, nothing skipped", []logLine{{text: []byte("podinfo\n")}}, logOptions{timestamps: true, since: t0}, "podinfo\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			require.NoError(t, writeLog(&out, tt.lines, tt.opts))
			assert.Equal(t, tt.want, out.String())
		})
	}
}

func TestMemLogKeepsItsNewestBytes(t *testing.T) {
	t.Parallel()
	m := newMemLog()
	_, _ = io.WriteString(m, "part")
	_, _ = io.WriteString(m, "ial\nnext\n")
	got, err := m.lines()
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, "partial\n", string(got[0].text))
	line := strings.Repeat("x", 1023) + "\n"
	for range 2 * memLogLimit / len(line) {
		_, _ = io.WriteString(m, line)
	}
	got, err = m.lines()
	require.NoError(t, err)
	size := 0
	for _, l := range got {
		size += len(l.text)
	}
	assert.LessOrEqual(t, size, memLogLimit)
	assert.Equal(t, memLogLimit/len(line), len(got), "whole lines are kept")
}

func TestContainerLogID(t *testing.T) {
	t.Parallel()
	last := corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ContainerID: "sampleapp://a-0"}}
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	tests := []struct {
		name     string
		status   corev1.ContainerStatus
		previous bool
		want     string
		wantErr  string
	}{
		{"running", corev1.ContainerStatus{Name: "app", ContainerID: "sampleapp://a-1", State: running, LastTerminationState: last}, false, "sampleapp://a-1", ""},
		{"previous of a restarted one", corev1.ContainerStatus{Name: "app", ContainerID: "sampleapp://a-1", State: running, LastTerminationState: last}, true, "sampleapp://a-0", ""},
		{"previous of one never restarted", corev1.ContainerStatus{Name: "app", ContainerID: "sampleapp://a-0", State: running}, true, "", `previous terminated container "app" in pod "p" not found`},
		{"crash looping: its last exit", corev1.ContainerStatus{Name: "app", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}, LastTerminationState: last}, false, "sampleapp://a-0", ""},
		{"image pull", corev1.ContainerStatus{Name: "app", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff"}}}, false, "", `container "app" in pod "p" is waiting to start: trying and failing to pull image`},
		{"no status yet", corev1.ContainerStatus{Name: "other"}, false, "", `container "app" in pod "p" is not available`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := containerLogID("p", &corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{tt.status}}, "app", tt.previous)
			if tt.wantErr != "" {
				assert.EqualError(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// TestEgressReachesOnlyPodsAndTheKubelet sends CONNECT requests through the
// egress proxy as the API server does: the node's kubelet port and a
// routed pod port get through, every other address is refused.
func TestEgressReachesOnlyPodsAndTheKubelet(t *testing.T) {
	t.Parallel()
	target, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { target.Close() })
	go func() {
		for {
			c, err := target.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	book := newAddressBook()
	book.serveKubelet(kubeletPort, target.Addr().String())
	pod, err := book.allocate()
	require.NoError(t, err)
	book.route(pod, 8080, target.Addr().String())
	socket := filepath.Join(t.TempDir(), "egress.sock")
	proxy, err := startEgressProxy(socket, book)
	require.NoError(t, err)
	t.Cleanup(proxy.close)

	node := nodeAddress.String()
	tests := []struct {
		host string
		ok   bool
	}{
		{net.JoinHostPort(node, "10250"), true},
		{net.JoinHostPort(pod.String(), "8080"), true},
		{net.JoinHostPort(node, "10255"), false},
		{net.JoinHostPort(node, "22"), false},
		{net.JoinHostPort(node, "0"), false},
		{"192.0.2.10:10250", false},
		{"127.0.0.1:10250", false},
		{"localhost:10250", false},
		{NodeName + ":10250", false},
		{"198.51.100.1:10250", false},
		{"198.51.100.129:443", false},
		{"198.51.100.127:10250", false},
		{"10.0.0.1:10250", false},
		{"[::1]:10250", false},
		{target.Addr().String(), false},
	}
	for _, tt := range tests {
		conn, err := net.Dial("unix", socket)
		require.NoError(t, err)
		fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", tt.host, tt.host)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		require.NoError(t, err, tt.host)
		if tt.ok {
			assert.Equal(t, http.StatusOK, resp.StatusCode, tt.host)
		} else {
			assert.Equal(t, http.StatusBadGateway, resp.StatusCode, tt.host)
		}
		conn.Close()
	}
	assert.True(t, podNetwork.Contains(nodeAddress), "the node's address is in the never-dialled range")
	for range 62 {
		ip, err := book.allocate()
		if err != nil {
			break
		}
		assert.NotEqual(t, nodeAddress, ip, "no pod gets the node's address")
	}
}

// TestKubeletServerAnswersAsAKubelet calls the stand-in's kubelet API
// directly, where the API server's own checks do not stand in front.
func TestKubeletServerAnswersAsAKubelet(t *testing.T) {
	t.Parallel()
	c := shared.Get(t)
	ns := c.NewNamespace(t)
	client := c.Client()
	labels := map[string]string{"app": "direct"}
	d := SampleDeployment("direct", "sampleapp:v3", labels)
	d.Spec.Replicas = ptr.To[int32](1)
	_, err := client.AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{})
	require.NoError(t, err)
	waitRolledOut(t, client, ns, "direct")
	pod := podsOf(t, client, ns, "app=direct")[0].Name

	httpClient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	base := "https://" + c.node.kubelet.addr + "/containerLogs/" + ns + "/"
	tests := []struct {
		path, query string
		code        int
		body        string
	}{
		{pod + "/app", "", http.StatusOK, "sampleapp: version v3 listening on :8080\n"},
		{pod + "/app", "tailLines=-1", http.StatusUnprocessableEntity, `{"message": "Invalid request."}`},
		{pod + "/app", "tailLines=x", http.StatusBadRequest, `{"message": "Unable to decode query."}`},
		{pod + "/nope", "", http.StatusNotFound, `container "nope" not found in pod "` + pod + `"`},
		{"nopod/app", "", http.StatusNotFound, `pod "nopod" does not exist`},
		{pod + "/app", "previous=true", http.StatusBadRequest, `previous terminated container "app" in pod "` + pod + `" not found`},
	}
	for _, tt := range tests {
		resp, err := httpClient.Get(base + tt.path + "?" + tt.query)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, tt.code, resp.StatusCode, "%s?%s: %s", tt.path, tt.query, body)
		if tt.code == http.StatusOK {
			assert.Contains(t, string(body), tt.body)
		} else {
			assert.Equal(t, tt.body, string(body))
		}
	}
}

// readPodLog reads a container's log through the API server's pods/log.
func readPodLog(ctx context.Context, client kubernetes.Interface, ns, pod string, opts *corev1.PodLogOptions) (string, error) {
	// Stream, as kubectl does: DoRaw leaves the API server's Status undecoded.
	stream, err := client.CoreV1().Pods(ns).GetLogs(pod, opts).Stream(ctx)
	if err != nil {
		return "", err
	}
	defer stream.Close()
	body, err := io.ReadAll(stream)
	return string(body), err
}

// TestPodLogsOfPublicApps reads podinfo's and go-httpbin's own output
// through the API server, as `kubectl logs` does.
func TestPodLogsOfPublicApps(t *testing.T) {
	t.Parallel()
	if why := PublicAppsSupported(); why != "" {
		t.Skip(why)
	}
	c := shared.Get(t)
	ns := c.NewNamespace(t)
	client := c.Client()
	ctx := context.Background()
	createPodinfo(t, client, ns, "ghcr.io/acme/podinfo:"+strings.Repeat("d", 40), 1, true)
	hd, _ := decodeManifest(t, HttpbinManifest("httpbin", "ghcr.io/mccutchen/go-httpbin:v2", 1))
	_, err := client.AppsV1().Deployments(ns).Create(ctx, hd, metav1.CreateOptions{})
	require.NoError(t, err)
	waitRolledOut(t, client, ns, "podinfo")
	waitRolledOut(t, client, ns, "httpbin")

	tests := []struct {
		app, container, startLine string
	}{
		{"podinfo", "podinfod", `"msg":"Starting podinfo"`},
		{"httpbin", "httpbin", "go-httpbin listening on http://0.0.0.0:8080"},
	}
	for _, tt := range tests {
		t.Run(tt.app, func(t *testing.T) {
			pod := podsOf(t, client, ns, "app="+tt.app)[0].Name
			all, err := readPodLog(ctx, client, ns, pod, &corev1.PodLogOptions{Container: tt.container})
			require.NoError(t, err)
			assert.Contains(t, all, tt.startLine, "the app's own start line")
			require.GreaterOrEqual(t, strings.Count(all, "\n"), 2, all)
			tail, err := readPodLog(ctx, client, ns, pod, &corev1.PodLogOptions{Container: tt.container, TailLines: ptr.To[int64](1)})
			require.NoError(t, err)
			assert.Equal(t, 1, strings.Count(tail, "\n"), "one line: %q", tail)
			// The app may print more meanwhile: the tail ends a log read after it.
			after, err := readPodLog(ctx, client, ns, pod, &corev1.PodLogOptions{Container: tt.container})
			require.NoError(t, err)
			assert.Contains(t, after, tail)
			assert.NotContains(t, tail, tt.startLine)
			head, err := readPodLog(ctx, client, ns, pod, &corev1.PodLogOptions{Container: tt.container, LimitBytes: ptr.To[int64](10)})
			require.NoError(t, err)
			assert.Equal(t, all[:10], head)

			_, err = readPodLog(ctx, client, ns, pod, &corev1.PodLogOptions{Container: tt.container, Previous: true})
			require.Error(t, err)
			assert.True(t, apierrors.IsBadRequest(err), "%v", err)
			assert.Contains(t, err.Error(), fmt.Sprintf("previous terminated container %q in pod %q not found", tt.container, pod))
		})
	}

	// podinfo's /panic makes its process exit; after the restart the
	// previous log is the exited process's, ending in its last words.
	pod := podsOf(t, client, ns, "app=podinfo")[0].Name
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(c.ServiceURL(ns, "podinfo") + "/panic")
	if err == nil {
		resp.Body.Close()
	}
	waitFor(t, 2*time.Minute, "podinfo to restart", func(ctx context.Context) (bool, error) {
		p, err := client.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
		if err != nil || len(p.Status.ContainerStatuses) == 0 {
			return false, err
		}
		cs := p.Status.ContainerStatuses[0]
		return cs.RestartCount >= 1 && cs.State.Running != nil, nil
	})
	previous, err := readPodLog(ctx, client, ns, pod, &corev1.PodLogOptions{Previous: true, TailLines: ptr.To[int64](1)})
	require.NoError(t, err)
	assert.Contains(t, previous, `"msg":"Panic command received"`)
	var current string
	waitFor(t, 30*time.Second, "the restarted podinfo's start line", func(ctx context.Context) (bool, error) {
		current, err = readPodLog(ctx, client, ns, pod, &corev1.PodLogOptions{})
		return strings.Contains(current, `"msg":"Starting podinfo"`), err
	})
	assert.NotContains(t, current, "Panic command received", "the restarted process's log starts afresh")
}

// TestPodLogsOfSampleApp: a crash-looping container's log holds its crash,
// a healthy one its start, a not-ready one its failed health checks; the
// kubelet's and the API server's errors come back as they would.
func TestPodLogsOfSampleApp(t *testing.T) {
	t.Parallel()
	c := shared.Get(t)
	ns := c.NewNamespace(t)
	client := c.Client()
	ctx := context.Background()
	deploy := func(name string, env ...corev1.EnvVar) string {
		labels := map[string]string{"app": name}
		d := SampleDeployment(name, "sampleapp:v4", labels, env...)
		d.Spec.Replicas = ptr.To[int32](1)
		_, err := client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
		require.NoError(t, err)
		var pod string
		waitFor(t, 60*time.Second, name+" to run", func(ctx context.Context) (bool, error) {
			pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
			if err != nil || len(pods.Items) == 0 || len(pods.Items[0].Status.ContainerStatuses) == 0 {
				return false, err
			}
			pod = pods.Items[0].Name
			return true, nil
		})
		return pod
	}
	healthy := deploy("healthy")
	crashing := deploy("crashing", corev1.EnvVar{Name: "SAMPLEAPP_CRASH", Value: "true"})
	notReady := deploy("not-ready", corev1.EnvVar{Name: "SAMPLEAPP_READY", Value: "false"})
	waitFor(t, 30*time.Second, "a failed readiness probe", func(ctx context.Context) (bool, error) {
		out, err := readPodLog(ctx, client, ns, notReady, &corev1.PodLogOptions{})
		return strings.Contains(out, "answered 503"), err
	})

	const crashLine = "sampleapp: crashing on purpose (SAMPLEAPP_CRASH=true)\n"
	tests := []struct {
		name    string
		pod     string
		opts    corev1.PodLogOptions
		want    []string // lines, each matched at its end
		wantErr string
		badReq  bool
	}{
		{name: "start line", pod: healthy, want: []string{"sampleapp: version v4 listening on :8080\n"}},
		{name: "previous of a crash loop", pod: crashing, opts: corev1.PodLogOptions{Previous: true}, want: []string{crashLine}},
		{name: "current of a crash loop is its last exit", pod: crashing, want: []string{crashLine}},
		{name: "failed health checks", pod: notReady, opts: corev1.PodLogOptions{TailLines: ptr.To[int64](1)},
			want: []string{"sampleapp: GET /health/ready answered 503: not ready (SAMPLEAPP_READY=false)\n"}},
		{name: "timestamps", pod: healthy, opts: corev1.PodLogOptions{Timestamps: true}, want: []string{" sampleapp: version v4 listening on :8080\n"}},
		{name: "previous of one never restarted", pod: healthy, opts: corev1.PodLogOptions{Previous: true},
			wantErr: fmt.Sprintf("previous terminated container %q in pod %q not found", "app", healthy), badReq: true},
		{name: "unknown container", pod: healthy, opts: corev1.PodLogOptions{Container: "nope"},
			wantErr: fmt.Sprintf("container nope is not valid for pod %s", healthy), badReq: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := readPodLog(ctx, client, ns, tt.pod, &tt.opts)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.Equal(t, tt.badReq, apierrors.IsBadRequest(err), "%v", err)
				return
			}
			require.NoError(t, err)
			lines := strings.SplitAfter(out, "\n")
			lines = lines[:len(lines)-1] // after the last newline
			require.Len(t, lines, len(tt.want), out)
			for i, want := range tt.want {
				assert.True(t, strings.HasSuffix(lines[i], want), "line %d %q ends in %q", i, lines[i], want)
			}
		})
	}
	// The real kubectl shows the same.
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(kubeconfig, c.Kubeconfig(), 0o600))
	kubectl := func(args ...string) (string, string, error) {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(c.Binaries().Kubectl, append([]string{"--kubeconfig", kubeconfig, "-n", ns, "logs"}, args...)...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	stdout, stderr, err := kubectl("--previous", "--tail=1", crashing)
	require.NoError(t, err, stderr)
	assert.True(t, strings.HasSuffix(stdout, crashLine), stdout)
	_, stderr, err = kubectl("--previous", healthy)
	require.Error(t, err)
	assert.Equal(t, fmt.Sprintf("Error from server (BadRequest): previous terminated container %q in pod %q not found\n", "app", healthy), stderr)

	start, err := readPodLog(ctx, client, ns, healthy, &corev1.PodLogOptions{})
	require.NoError(t, err)
	assert.Regexp(t, `^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d sampleapp: version v4`, start, "printed as Go's log package prints")
}
