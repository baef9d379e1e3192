package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// The container action run by a real runner: nektos/act, pinned in
// internal/tools/act, runs the workflows in testdata/act against the test
// cluster, with the action's image built FROM scratch (registry base images
// cannot be pulled here) and every container on the host's network, so the
// loopback cluster is reachable and Docker never takes an address range.

// dockerfileBuildLine is the Dockerfile's build command; the image the tests
// build uses the same flags, and the test fails when the two drift.
const dockerfileBuildLine = "RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/greenlight ./cmd/greenlight"

// caBundle is where Debian's ca-certificates package writes the bundle that
// the image carries at the same path, as distroless does.
const caBundle = "/etc/ssl/certs/ca-certificates.crt"

// actHarness builds act and the action's image once per test binary.
type actHarness struct {
	once  sync.Once
	skip  string // why act cannot run here, when it cannot
	err   error
	act   string // the act binary
	image string // the action's image, a local tag
	dir   string
}

var actRunner actHarness

// get returns the harness, building it on first use; tests skip only when
// Docker cannot run on this machine.
func (h *actHarness) get(t *testing.T) *actHarness {
	t.Helper()
	if testing.Short() {
		t.Skip("builds act and a Docker image; skipped with -short")
	}
	h.once.Do(h.setup)
	if h.skip != "" {
		t.Skip(h.skip)
	}
	require.NoError(t, h.err)
	return h
}

func (h *actHarness) setup() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	if _, err := exec.LookPath("docker"); err != nil {
		h.skip = "Docker cannot run here: no docker client on PATH (CI installs docker.io and starts dockerd)"
		return
	}
	if out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		h.skip = fmt.Sprintf("Docker cannot run here: docker info: %v: %s", err, bytes.TrimSpace(out))
		return
	}
	if h.dir, h.err = os.MkdirTemp("", "greenlight-act-"); h.err != nil {
		return
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		h.err = err
		return
	}
	h.act = filepath.Join(h.dir, "act")
	build := exec.CommandContext(ctx, "go", "build", "-C", filepath.Join(root, "internal", "tools", "act"), "-o", h.act, "github.com/nektos/act")
	if out, err := build.CombinedOutput(); err != nil {
		h.err = fmt.Errorf("build act from internal/tools/act: %v\n%s", err, out)
		return
	}
	h.image, h.err = buildActionImage(ctx, root, filepath.Join(h.dir, "image"))
}

// cleanup removes the image and the build directory; TestMain calls it.
func (h *actHarness) cleanup() {
	if h.image != "" {
		_ = exec.Command("docker", "rmi", "--force", h.image).Run()
	}
	if h.dir != "" {
		_ = os.RemoveAll(h.dir)
	}
}

// buildActionImage builds the image of testdata/action-image: the binary
// built with the Dockerfile's flags, Debian's CA bundle and a passwd file.
func buildActionImage(ctx context.Context, root, dir string) (string, error) {
	dockerfile, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		return "", fmt.Errorf("read the Dockerfile: %w", err)
	}
	if !strings.Contains(string(dockerfile), "\n"+dockerfileBuildLine+"\n") {
		return "", fmt.Errorf("the Dockerfile no longer builds with %q; change dockerfileBuildLine and the build below with it", dockerfileBuildLine)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	src := filepath.Join(root, "testdata", "action-image")
	for _, f := range []struct{ from, to string }{
		{filepath.Join(src, "Dockerfile"), "Dockerfile"},
		{filepath.Join(src, "passwd"), "passwd"},
		{caBundle, "ca-certificates.crt"},
	} {
		data, err := os.ReadFile(f.from)
		if err != nil {
			return "", fmt.Errorf("image file %s (the CA bundle comes from Debian's ca-certificates package): %w", f.to, err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.to), data, 0o644); err != nil {
			return "", err
		}
	}
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(dir, "greenlight"), "./cmd/greenlight")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build greenlight for the image: %v\n%s", err, out)
	}
	tag := fmt.Sprintf("greenlight-act:test-%d", os.Getpid())
	// The classic builder needs no BuildKit image; FROM scratch pulls nothing.
	docker := exec.CommandContext(ctx, "docker", "build", "--quiet", "--network", "host", "--tag", tag, dir)
	docker.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	if out, err := docker.CombinedOutput(); err != nil {
		return "", fmt.Errorf("docker build the action image: %v\n%s", err, out)
	}
	return tag, nil
}

// actResult is what one act run left: its exit code and log, and what the
// job's later step saw.
type actResult struct {
	code    int
	log     string
	outcome string
	outputs map[string]string
	report  string
	took    time.Duration
}

// actRun describes one workflow run.
type actRun struct {
	workflow string            // file in testdata/act
	event    string            // push or workflow_dispatch
	inputs   map[string]string // workflow_dispatch inputs, as Run workflow sends them
	vars     map[string]string // repository variables
	files    map[string]string // extra workspace files
}

// run runs a workflow of testdata/act with act, as a push or dispatch to
// the repository in a fresh workspace, against e's namespace.
func (h *actHarness) run(t *testing.T, e *env, r actRun) actResult {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	ws := t.TempDir()
	out := t.TempDir()
	home := t.TempDir()

	workflow, err := os.ReadFile(filepath.Join(root, "testdata", "act", r.workflow))
	require.NoError(t, err)
	files := map[string]string{".github/workflows/" + r.workflow: string(workflow)}
	for k, v := range r.files {
		files[k] = v
	}
	for name, content := range files {
		path := filepath.Join(ws, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	}

	// The action as the release tag has it: action.yml pinned to the image
	// by the release's own script.
	action := filepath.Join(ws, "greenlight-action", "action.yml")
	require.NoError(t, os.MkdirAll(filepath.Dir(action), 0o755))
	data, err := os.ReadFile(filepath.Join(root, "action.yml"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(action, data, 0o644))
	pin := exec.Command(filepath.Join(root, ".github", "scripts", "pin-action-image.sh"), action, "docker://"+h.image)
	pinOut, err := pin.CombinedOutput()
	require.NoError(t, err, "%s", pinOut)

	gitEnv := []string{"GIT_AUTHOR_NAME=octocat", "GIT_AUTHOR_EMAIL=octocat@example.com", "GIT_COMMITTER_NAME=octocat",
		"GIT_COMMITTER_EMAIL=octocat@example.com", "HOME=" + home, "PATH=" + os.Getenv("PATH")}
	for _, args := range [][]string{
		{"init", "--quiet", "--initial-branch=main"},
		{"remote", "add", "origin", "https://github.com/acme/shop.git"},
		{"add", "--all"},
		{"commit", "--quiet", "--message", "shop"},
	} {
		cmd := exec.Command("git", args...)
		cmd.Dir, cmd.Env = ws, gitEnv
		gout, err := cmd.CombinedOutput()
		require.NoError(t, err, "git %v: %s", args, gout)
	}

	// GL_OUT is where the later step copies what it saw.
	//
	// On a self-hosted platform act gives a container action the host's
	// paths of the workspace and the file-command files (GITHUB_WORKSPACE,
	// GITHUB_OUTPUT, …) but mounts them elsewhere in the container, so the
	// action could write neither. act keeps both under its cache directory
	// (HOME/.cache/act), which is therefore mounted at the same path.
	cache := filepath.Join(home, ".cache", "act")
	require.NoError(t, os.MkdirAll(cache, 0o755))
	args := []string{r.event,
		"--workflows", filepath.Join(".github", "workflows", r.workflow),
		"--platform", "ubuntu-latest=-self-hosted",
		"--pull=false",
		"--network", "host",
		"--container-options", "--network host --volume " + cache + ":" + cache,
		"--container-daemon-socket", "-",
		"--no-cache-server",
		"--artifact-server-addr", "127.0.0.1",
		"--env", "GL_OUT=" + out,
		"--env", "GITHUB_API_URL=" + e.github.srv.URL + "/api/v3/",
		"--secret", "KUBECONFIG", "--secret", "HEALTH_CHECK_TOKEN", "--secret", "SLACK_WEBHOOK_URL", "--secret", "GITHUB_TOKEN",
	}
	vars := map[string]string{"NAMESPACE": e.ns, "URL": e.c.ServiceURL(e.ns, "shop")}
	for k, v := range r.vars {
		vars[k] = v
	}
	for k, v := range vars {
		args = append(args, "--var", k+"="+v)
	}
	for k, v := range r.inputs {
		args = append(args, "--input", k+"="+v)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.act, args...)
	cmd.Dir = ws
	// Secrets reach act through its environment, never its arguments.
	cmd.Env = []string{
		"HOME=" + home, "PATH=" + os.Getenv("PATH"),
		"KUBECONFIG=" + base64.StdEncoding.EncodeToString(e.c.Kubeconfig()),
		"HEALTH_CHECK_TOKEN=" + secretToken,
		"SLACK_WEBHOOK_URL=" + e.slack.srv.URL + "/services/" + secretSlack,
		"GITHUB_TOKEN=" + secretGitHub,
	}
	var log syncBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	started := time.Now()
	err = cmd.Run()
	res := actResult{log: log.String(), took: time.Since(started)}
	if err != nil {
		exit, ok := err.(*exec.ExitError)
		require.True(t, ok, "run act: %v\n%s", err, res.log)
		res.code = exit.ExitCode()
	}
	t.Logf("act %s (%s) took %s, exit %d:\n%s", r.workflow, r.event, res.took.Round(100*time.Millisecond), res.code, res.log)

	if data, err := os.ReadFile(filepath.Join(out, "outputs.json")); err == nil {
		require.NoError(t, json.Unmarshal(data, &res.outputs), "%s", data)
	}
	res.outcome = readOptional(t, filepath.Join(out, "outcome"))
	res.report = readOptional(t, filepath.Join(out, "report.json"))
	return res
}

func readOptional(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return ""
	}
	require.NoError(t, err)
	return string(data)
}

// assertActClean checks that no secret reached act's log, the outputs, the
// summary or the report.
func (e *env) assertActClean(t *testing.T, res actResult) {
	t.Helper()
	secrets := []string{secretToken, secretGitHub, secretSlack, base64.StdEncoding.EncodeToString(e.c.Kubeconfig())}
	for _, line := range strings.Split(string(e.c.Kubeconfig()), "\n") {
		if i := strings.Index(line, "-data: "); i >= 0 {
			secrets = append(secrets, line[i+len("-data: "):])
		}
	}
	outputs, _ := json.Marshal(res.outputs)
	for where, text := range map[string]string{"act's log": res.log, "outputs": string(outputs), "report": res.report} {
		for _, s := range secrets {
			assert.NotContains(t, text, s, "a secret reached %s", where)
		}
	}
	for _, req := range e.github.requests() {
		assert.NotContains(t, req, secretToken)
		assert.NotContains(t, req, secretSlack)
	}
}

// assertReport checks the JSON report the later step found in the workspace.
func assertReport(t *testing.T, res actResult, environment, status string) {
	t.Helper()
	require.NotEmpty(t, res.report, "the report-path output names a file in the workspace")
	var doc map[string]any
	require.NoError(t, json.Unmarshal([]byte(res.report), &doc))
	text := res.report
	assert.Contains(t, text, `"`+environment+`"`)
	assert.Contains(t, text, status)
	assert.Regexp(t, `^greenlight-report-`+environment+`-[0-9a-f]+\.json$`, res.outputs["report-path"])
}

func TestActStagingRolling(t *testing.T) {
	// Not parallel: act names a step's container after the workflow, job
	// and step, so two runs of one workflow at once collide.
	h := actRunner.get(t)
	e := newEnv(t, "sampleapp:v1")
	res := h.run(t, e, actRun{workflow: "staging-rolling.yml", event: "push", vars: map[string]string{"IMAGE": "sampleapp:v2"}})
	require.Equal(t, 0, res.code, "act's exit code")
	assert.Equal(t, "success", res.outcome)
	assert.Equal(t, "succeeded", res.outputs["status"])
	assert.Equal(t, "sampleapp:v2", res.outputs["image"])
	assert.Equal(t, "sampleapp:v1", res.outputs["previous-image"])
	assert.Equal(t, "2", res.outputs["revision"])
	assert.Equal(t, "false", res.outputs["rolled-back"])
	assert.Regexp(t, `^[0-9a-f]{40}$`, res.outputs["deployment-id"], "the commit act checked out")
	assert.Contains(t, res.log, "greenlight ended succeeded (success)", "the later step printed the status output")
	// act prints the step's summary; GitHub's own file layout is run in
	// TestActRunnerLayoutRollbackRollForward.
	assert.Contains(t, res.log, "Summary - ## ✅")
	assertReport(t, res, "staging", "succeeded")
	assert.JSONEq(t, `{"v2": 20}`, mustJSON(e.serving(t, 20)))
	assert.NotEmpty(t, e.github.requests(), "statuses and a Deployment reached the API act named")
	assert.NotEmpty(t, e.slack.requests())
	e.assertActClean(t, res)
}

func TestActProductionBlueGreen(t *testing.T) {
	h := actRunner.get(t)
	e := newEnv(t, "sampleapp:v1")
	res := h.run(t, e, actRun{workflow: "production-blue-green.yml", event: "push", vars: map[string]string{"IMAGE": "sampleapp:v2"}})
	require.Equal(t, 0, res.code)
	assert.Equal(t, "succeeded", res.outputs["status"])
	assert.Equal(t, "blue", res.outputs["revision"])
	assert.Equal(t, "sampleapp:v1", res.outputs["previous-image"])
	assertReport(t, res, "production", "succeeded")
	assert.JSONEq(t, `{"v2": 20}`, mustJSON(e.serving(t, 20)))
	e.assertActClean(t, res)
}

func TestActRollback(t *testing.T) {
	h := actRunner.get(t)
	e := newEnv(t, "sampleapp:v1")
	first := h.run(t, e, actRun{workflow: "production-blue-green.yml", event: "push", vars: map[string]string{"IMAGE": "sampleapp:v2"}})
	require.Equal(t, 0, first.code)

	manifest := shopDeployment("sampleapp:placeholder", corev1.EnvVar{Name: "SAMPLEAPP_FAIL_AFTER", Value: "6s"})
	manifest.Spec.Template.Spec.Containers[0].ReadinessProbe = nil
	data, err := yaml.Marshal(manifest)
	require.NoError(t, err)
	res := h.run(t, e, actRun{workflow: "rollback.yml", event: "push",
		vars:  map[string]string{"IMAGE": "sampleapp:v3"},
		files: map[string]string{"deploy/shop.yaml": string(data)}})
	assert.Equal(t, 1, res.code, "act fails the job")
	assert.Equal(t, "failure", res.outcome)
	assert.Equal(t, "rolled-back", res.outputs["status"])
	assert.Equal(t, "true", res.outputs["rolled-back"])
	assert.Equal(t, "sampleapp:v2", res.outputs["previous-image"])
	assert.Contains(t, res.log, "greenlight ended rolled-back (failure)")
	assert.Contains(t, res.log, "To roll forward to this image anyway")
	assertReport(t, res, "production", "rolled-back")
	assert.JSONEq(t, `{"v2": 20}`, mustJSON(e.serving(t, 20)), "the previous version serves again")
	assert.False(t, e.lockHeld(t))
	e.assertActClean(t, res)
}

func TestActBadInput(t *testing.T) {
	h := actRunner.get(t)
	e := newEnv(t, "sampleapp:v1")
	before := e.snapshot(t)
	res := h.run(t, e, actRun{workflow: "bad-input.yml", event: "push", vars: map[string]string{"IMAGE": "sampleapp:v2"}})
	assert.Equal(t, 1, res.code, "act fails the job")
	assert.Equal(t, "failure", res.outcome)
	assert.Contains(t, res.log, "exit with `FAILURE`: 2", "the action's exit code is 2")
	assert.Contains(t, res.log, `input "strategy"`)
	assert.Contains(t, res.log, "rolling or blue-green", "the message says what is accepted")
	assert.Equal(t, "failed", res.outputs["status"], "the later step sees why")
	assert.Empty(t, res.outputs["image"]+res.outputs["report-path"], "nothing was deployed")
	assert.Equal(t, before, e.snapshot(t), "nothing in the namespace changed")
	e.assertActClean(t, res)
}

func TestActWorkflowDispatch(t *testing.T) {
	h := actRunner.get(t)

	// The on: block is the example pipeline's, so the inputs tested here
	// are the ones a user clicks.
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	onBlock := func(path string) any {
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		var wf map[string]any
		require.NoError(t, yaml.Unmarshal(data, &wf))
		// YAML 1.1, which this parser speaks, reads the key on as true.
		on, ok := wf["on"]
		if !ok {
			on, ok = wf["true"]
		}
		require.True(t, ok, "%s has no on: block", path)
		return on
	}
	assert.Equal(t, onBlock(examplePipeline(t, root)), onBlock(filepath.Join(root, "testdata", "act", "dispatch.yml")))

	e := newEnv(t, "sampleapp:v1")
	res := h.run(t, e, actRun{workflow: "dispatch.yml", event: "workflow_dispatch",
		// As --input: act reads a boolean input of an event file as false.
		inputs: map[string]string{"environment": "staging", "skip_tests": "true"},
		vars:   map[string]string{"IMAGE": "sampleapp:v2"},
		files:  map[string]string{"smoke-tests.yml": "tests:\n  - name: never runs\n    path: /nowhere\n"}})
	require.Equal(t, 0, res.code)
	assert.Equal(t, "succeeded", res.outputs["status"])
	assert.Equal(t, "2", res.outputs["revision"], "staging, the chosen environment, is rolling")
	assert.Contains(t, res.report, `"skip_tests": true`, "skip_tests reached the action as skip-tests")
	assertReport(t, res, "staging", "succeeded")
	assert.JSONEq(t, `{"v2": 20}`, mustJSON(e.serving(t, 20)))
	e.assertActClean(t, res)
}

// examplePipeline is the example pipeline's path.
func examplePipeline(t *testing.T, root string) string {
	t.Helper()
	return filepath.Join(root, ".github", "examples", "deployment-pipeline.yml")
}

// TestActImageStartToFirstRequest measures what the image adds to a job's
// start: the time from `docker run` (host network, the runner's env) to the
// first request the action sends to the cluster's API, against the same
// binary started on the host the same way. A loopback server stands in for
// the API and answers 503, so the run ends soon after. The figures are
// logged, not asserted: they depend on the machine's load.
func TestActImageStartToFirstRequest(t *testing.T) {
	h := actRunner.get(t)
	const trials = 5

	first := make(chan time.Time, 64)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case first <- time.Now():
		default:
		}
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
	}))
	t.Cleanup(api.Close)
	kubeconfig := fmt.Sprintf("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: %s\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: %s\n", api.URL, secretToken)
	inputs := map[string]string{
		"INPUT_ENVIRONMENT": "staging", "INPUT_KUBECONFIG": kubeconfig, "INPUT_DEPLOYMENT": "shop",
		"INPUT_IMAGE": "sampleapp:v2", "INPUT_CONFIG": "/dev/null", "INPUT_LOCK-TIMEOUT": "0", "INPUT_TIMEOUT": "1",
		"GITHUB_ACTIONS": "true",
	}

	measure := func(name string, start func(dir string) *exec.Cmd) []time.Duration {
		var got []time.Duration
		for i := range trials {
			dir := t.TempDir()
			for _, f := range []string{"output", "summary"} {
				require.NoError(t, os.WriteFile(filepath.Join(dir, f), nil, 0o666))
			}
			for len(first) > 0 {
				<-first
			}
			cmd := start(dir)
			var out syncBuffer
			cmd.Stdout, cmd.Stderr = &out, &out
			began := time.Now()
			require.NoError(t, cmd.Start())
			select {
			case at := <-first:
				got = append(got, at.Sub(began))
			case <-time.After(2 * time.Minute):
				t.Fatalf("%s trial %d: no request within 2 minutes:\n%s", name, i, out.String())
			}
			_ = cmd.Wait()
			for _, line := range strings.Split(out.String(), "\n") {
				if !strings.HasPrefix(line, "::add-mask::") { // the runner hides the secret with these
					assert.NotContains(t, line, secretToken)
				}
			}
		}
		return got
	}
	report := func(name string, d []time.Duration) {
		s := slices.Clone(d)
		slices.Sort(s)
		t.Logf("%s: start → first API request, median %s, min %s, max %s over %d trials", name,
			s[len(s)/2].Round(time.Millisecond), s[0].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond), len(s))
	}

	container := measure("docker run", func(dir string) *exec.Cmd {
		args := []string{"run", "--rm", "--network", "host", "--workdir", "/github/workspace",
			"--volume", dir + ":/github/workspace", "--volume", dir + ":/github/file_commands",
			"-e", "GITHUB_OUTPUT=/github/file_commands/output", "-e", "GITHUB_STEP_SUMMARY=/github/file_commands/summary",
			"-e", "GITHUB_WORKSPACE=/github/workspace"}
		env := os.Environ()
		for k, v := range inputs {
			args = append(args, "-e", k) // the value comes from the environment, never the arguments
			env = append(env, k+"="+v)
		}
		cmd := exec.Command("docker", append(args, h.image)...)
		cmd.Env = env
		return cmd
	})
	host := measure("host binary", func(dir string) *exec.Cmd {
		cmd := exec.Command(binary)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "GITHUB_OUTPUT=" + filepath.Join(dir, "output"),
			"GITHUB_STEP_SUMMARY=" + filepath.Join(dir, "summary"), "GITHUB_WORKSPACE=" + dir}
		for k, v := range inputs {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		return cmd
	})
	report("docker run (image "+h.image+")", container)
	report("binary on the host", host)

	out, err := exec.Command("docker", "image", "inspect", "--format", "{{.Size}}", h.image).Output()
	require.NoError(t, err)
	t.Logf("image size: %s bytes", strings.TrimSpace(string(out)))
}

// runnerRun is one run of the action's image the way GitHub's runner starts
// a container action: the workspace, file commands, home and workflow
// directories mounted at /github/…, the workspace as working directory, the
// inputs and the runner's variables from an env file, host networking.
type runnerRun struct {
	code    int
	log     string
	outputs map[string]string
	summary string
	report  string
}

// dockerRun runs the image with inputs in the workspace ws.
func (h *actHarness) dockerRun(t *testing.T, e *env, ws string, inputs map[string]string) runnerRun {
	t.Helper()
	dir := t.TempDir()
	mounts := map[string]string{"workspace": ws}
	for _, name := range []string{"file_commands", "home", "workflow"} {
		mounts[name] = filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(mounts[name], 0o755))
	}
	files := map[string]string{"GITHUB_OUTPUT": "set_output", "GITHUB_STEP_SUMMARY": "step_summary", "GITHUB_ENV": "set_env",
		"GITHUB_PATH": "add_path", "GITHUB_STATE": "save_state"}
	var env []string
	for name, file := range files {
		require.NoError(t, os.WriteFile(filepath.Join(mounts["file_commands"], file), nil, 0o666))
		env = append(env, name+"=/github/file_commands/"+file)
	}
	require.NoError(t, os.WriteFile(filepath.Join(mounts["workflow"], "event.json"),
		[]byte(`{"after":"0123456789abcdef0123456789abcdef01234567"}`), 0o644))
	env = append(env, "GITHUB_ACTIONS=true", "CI=true", "HOME=/github/home", "GITHUB_WORKSPACE=/github/workspace",
		"GITHUB_EVENT_PATH=/github/workflow/event.json", "GITHUB_EVENT_NAME=push", "GITHUB_REPOSITORY=acme/shop",
		"GITHUB_SHA=0123456789abcdef0123456789abcdef01234567", "GITHUB_RUN_ID=42", "GITHUB_ACTOR=octocat",
		"GITHUB_SERVER_URL=https://github.com", "GITHUB_API_URL="+e.github.srv.URL+"/api/v3/", "RUNNER_OS=Linux", "RUNNER_TEMP=/home/runner/work/_temp")
	for k, v := range inputs {
		// An env file holds one line per variable: the kubeconfig goes in
		// base64, which the action accepts.
		require.NotContains(t, v, "\n", "input %s", k)
		env = append(env, "INPUT_"+strings.ToUpper(k)+"="+v)
	}
	envFile := filepath.Join(dir, "env")
	require.NoError(t, os.WriteFile(envFile, []byte(strings.Join(env, "\n")+"\n"), 0o600))

	args := []string{"run", "--rm", "--network", "host", "--workdir", "/github/workspace", "--env-file", envFile}
	for name, host := range mounts {
		args = append(args, "--volume", host+":/github/"+name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", append(args, h.image)...)
	var log syncBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	err := cmd.Run()
	res := runnerRun{log: log.String()}
	if err != nil {
		exit, ok := err.(*exec.ExitError)
		require.True(t, ok, "docker run: %v\n%s", err, res.log)
		res.code = exit.ExitCode()
	}
	t.Logf("docker run exit %d:\n%s", res.code, res.log)
	res.outputs = parseOutputs(readOptional(t, filepath.Join(mounts["file_commands"], "set_output")))
	res.summary = readOptional(t, filepath.Join(mounts["file_commands"], "step_summary"))
	if p := res.outputs["report-path"]; p != "" {
		res.report = readOptional(t, filepath.Join(ws, p))
	}
	return res
}

// TestActRunnerLayoutRollbackRollForward runs a production deploy and a
// monitored rollback as GitHub's runner starts the container (act mounts
// its own paths and keeps no job summary, so the summary is read here),
// then runs the summary's by-hand command on the cluster and sees the
// rolled-back version serve again.
func TestActRunnerLayoutRollbackRollForward(t *testing.T) {
	t.Parallel()
	h := actRunner.get(t)
	e := newEnv(t, "sampleapp:v1")
	ws := t.TempDir()
	in := e.inputs("production", "sampleapp:v2")
	in["kubeconfig"] = base64.StdEncoding.EncodeToString(e.c.Kubeconfig())
	first := h.dockerRun(t, e, ws, in)
	require.Equal(t, 0, first.code)
	assert.Equal(t, "succeeded", first.outputs["status"])
	assert.Contains(t, first.summary, "sampleapp:v2")

	manifest := shopDeployment("sampleapp:placeholder", corev1.EnvVar{Name: "SAMPLEAPP_FAIL_AFTER", Value: "6s"})
	manifest.Spec.Template.Spec.Containers[0].ReadinessProbe = nil
	data, err := yaml.Marshal(manifest)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(ws, "deploy"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(ws, "deploy", "shop.yaml"), data, 0o644))
	in["image"], in["manifests"], in["monitor-duration"] = "sampleapp:v3", "deploy/", "60s"
	res := h.dockerRun(t, e, ws, in)
	assert.Equal(t, 1, res.code)
	assert.Equal(t, "rolled-back", res.outputs["status"])
	assert.Contains(t, res.summary, "rolled back")
	assert.Contains(t, res.summary, "### By hand")
	assert.Contains(t, res.summary, "To roll forward to this image anyway")
	assert.JSONEq(t, `{"v2": 20}`, mustJSON(e.serving(t, 20)))
	var logged []string
	for _, line := range strings.Split(res.log, "\n") {
		if !strings.HasPrefix(line, "::add-mask::") { // the runner hides the secrets with these
			logged = append(logged, line)
		}
	}
	for _, text := range []string{strings.Join(logged, "\n"), res.summary, res.report, mustJSON(res.outputs)} {
		for _, s := range []string{secretToken, secretGitHub, secretSlack, secretWebhook, in["kubeconfig"]} {
			assert.NotContains(t, text, s)
		}
	}

	// The by-hand command, as the report (and the summary) give it, run
	// with the real kubectl against the cluster.
	var doc struct {
		Result struct {
			ManualCommand string `json:"manual_command"`
		} `json:"result"`
	}
	require.NoError(t, json.Unmarshal([]byte(res.report), &doc), res.report)
	command := doc.Result.ManualCommand
	require.NotEmpty(t, command)
	assert.Contains(t, res.summary, command)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(kubeconfig, e.c.Kubeconfig(), 0o600))
	sh := exec.Command("sh", "-ec", command)
	sh.Env = []string{"PATH=" + filepath.Dir(e.c.Binaries().Kubectl) + ":" + os.Getenv("PATH"), "KUBECONFIG=" + kubeconfig, "HOME=" + t.TempDir()}
	out, err := sh.CombinedOutput()
	require.NoError(t, err, "%s\n%s", command, out)
	t.Logf("by hand:\n%s\n%s", command, out)
	// v3 is the build that fails 6s after it starts (the fault that got it
	// rolled back), so some answers may be its own 500s; none is v2's.
	// The patch returns before the EndpointSlice controller follows the
	// new selector: traffic moves a moment later, as for any user.
	var counts map[string]int
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		counts = e.serving(t, 20)
		if counts["v2"] == 0 || time.Now().After(deadline) {
			break
		}
	}
	assert.Zero(t, counts["v2"], "the previous version no longer serves: %v", counts)
	assert.Positive(t, counts["v3"], "the new version serves after the by-hand roll forward: %v", counts)
}
