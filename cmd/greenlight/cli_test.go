package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runCLI runs the binary as a person would, outside a workflow.
func (e *env) runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	require.NoError(t, os.WriteFile(kubeconfig, e.c.Kubeconfig(), 0o600))
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "KUBECONFIG=" + kubeconfig}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	_ = cmd.Run()
	t.Logf("greenlight %v → exit %d\n%s%s", args, cmd.ProcessState.ExitCode(), out.String(), errOut.String())
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
}

func (e *env) cliArgs(command string, extra ...string) []string {
	return append([]string{command, "--environment=staging", "--namespace=" + e.ns, "--deployment=shop",
		"--url=" + e.c.ServiceURL(e.ns, "shop"), "--timeout=10", "--config=/dev/null"}, extra...)
}

func TestCLIHealthCheckModes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sampleapp:v1")

	code, out, _ := e.runCLI(t, e.cliArgs("health-check", "--pre-deployment")...)
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "PASS (pre-deployment")

	code, out, _ = e.runCLI(t, e.cliArgs("health-check", "--verify-traffic", "--image=sampleapp:v2")...)
	assert.Equal(t, 1, code, "v1 answers where v2 is wanted")
	assert.Contains(t, out, "FAIL")
	assert.Contains(t, out, "v1")

	code, _, errOut := e.runCLI(t, e.cliArgs("health-check", "--timeout=-5")...)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, `"timeout"`)

	code, out, _ = e.runCLI(t, "health-check", "--help")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "Example:")
	assert.Contains(t, out, "--pre-deployment")
}

func TestCLIDeployReportAndRollback(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sampleapp:v1")

	code, _, _ := e.runCLI(t, e.cliArgs("deploy", "--image=sampleapp:v2", "--monitor-duration=1s", "--monitor-interval=100ms", "--deployment-id=cli-1")...)
	require.Equal(t, 0, code)
	assert.JSONEq(t, `{"v2": 20}`, mustJSON(e.serving(t, 20)))

	code, out, _ := e.runCLI(t, e.cliArgs("report", "--deployment-id=cli-1", "--format=json")...)
	require.Equal(t, 0, code)
	var doc struct {
		Result struct{ Status string } `json:"result"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &doc))
	assert.Equal(t, "succeeded", doc.Result.Status, "the report is rebuilt from the cluster's history")

	code, _, errOut := e.runCLI(t, e.cliArgs("report", "--deployment-id=nope")...)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, `"deployment-id"`)

	code, _, _ = e.runCLI(t, e.cliArgs("rollback", "--to-revision=0")...)
	assert.Equal(t, 2, code)

	code, out, _ = e.runCLI(t, e.cliArgs("rollback")...)
	require.Equal(t, 0, code)
	assert.Contains(t, out, "rolled back to revision 1")
	assert.JSONEq(t, `{"v1": 20}`, mustJSON(e.serving(t, 20)))
}
