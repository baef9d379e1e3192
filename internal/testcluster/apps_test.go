package testcluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestPodinfoAppRuns builds the public apps and runs podinfo the way its own
// Deployment does: from its working directory with its ui, answering its
// health paths and reporting its own version, checked by its own podcli.
func TestPodinfoAppRuns(t *testing.T) {
	t.Parallel()
	apps, err := EnsureApps("", io.Discard)
	require.NoError(t, err)
	require.FileExists(t, filepath.Join(apps.PodinfoSource, "kustomize", "deployment.yaml"))
	require.NotEmpty(t, apps.PodinfoVersion)

	port := freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, apps.Podinfo, fmt.Sprintf("--port=%d", port), "--port-metrics=0", "--grpc-port=0", "--level=error")
	cmd.Dir = apps.PodinfoSource
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 20*time.Second, 50*time.Millisecond)

	resp, err := http.Get(base + "/version")
	require.NoError(t, err)
	defer resp.Body.Close()
	var v struct{ Version string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&v))
	require.Equal(t, apps.PodinfoVersion, v.Version)

	out, err := exec.CommandContext(ctx, apps.Podcli, "check", "http", fmt.Sprintf("localhost:%d/healthz", port)).CombinedOutput()
	require.NoError(t, err, "%s", out)

	// go-httpbin reports no version: its index and /status/200 answer.
	hport := freePort(t)
	h := exec.CommandContext(ctx, apps.Httpbin, "-host=127.0.0.1", fmt.Sprintf("-port=%d", hport))
	require.NoError(t, h.Start())
	t.Cleanup(func() { _ = h.Process.Kill(); _ = h.Wait() })
	require.Eventually(t, func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/status/200", hport))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 20*time.Second, 50*time.Millisecond)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
