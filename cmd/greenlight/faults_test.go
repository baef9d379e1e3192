package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/ebeautything/greenlight/internal/kube"
	"github.com/ebeautything/greenlight/internal/monitor"
	"github.com/ebeautything/greenlight/internal/testcluster"
)

func init() {
	// Registered once for the package's golden files, whichever file
	// declares it first.
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden files under testdata/")
	}
}

func updateGolden() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// liveRun is a run of the binary in progress.
type liveRun struct {
	proc   *os.Process
	stdout *syncBuffer
}

// stdoutHook runs do once, as soon as the run's stdout contains at.
type stdoutHook struct {
	at string
	do func(run liveRun)
}

// runHooked runs the binary as runAction does, but instead of a SIGTERM it
// calls each hook the moment its marker appears on stdout, with the
// running process (to inject a fault, or to kill it).
func (e *env) runHooked(t *testing.T, inputs map[string]string, hooks ...stdoutHook) result {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{}
	for _, name := range []string{"GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_ENV", "GITHUB_STATE", "GITHUB_PATH"} {
		files[name] = filepath.Join(dir, strings.ToLower(name))
		require.NoError(t, os.WriteFile(files[name], nil, 0o644))
	}
	eventPath := filepath.Join(dir, "event.json")
	require.NoError(t, os.WriteFile(eventPath, []byte(`{"after":"0123456789abcdef0123456789abcdef01234567"}`), 0o644))
	environ := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "GITHUB_ACTIONS=true",
		"GITHUB_REPOSITORY=acme/shop", "GITHUB_SHA=0123456789abcdef0123456789abcdef01234567",
		"GITHUB_EVENT_NAME=push", "GITHUB_EVENT_PATH=" + eventPath, "GITHUB_ACTOR=octocat",
		"GITHUB_RUN_ID=42", "GITHUB_SERVER_URL=https://github.com", "GITHUB_API_URL=" + e.github.srv.URL + "/api/v3/",
		"RUNNER_TEMP=" + dir, "GITHUB_WORKSPACE=" + dir,
	}
	for k, v := range files {
		environ = append(environ, k+"="+v)
	}
	environ = append(environ, e.environ...)
	for k, v := range inputs {
		environ = append(environ, "INPUT_"+strings.ToUpper(k)+"="+v)
	}
	cmd := exec.Command(binary)
	cmd.Env = environ
	var stdout, stderr syncBuffer
	cmd.Stderr = &stderr
	pipe, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())

	// Read stdout here rather than through exec's copier, so a hook fires
	// within a read of its line and holds the process it acts on.
	read := make(chan struct{})
	var lines []stampedLine
	go func() {
		defer close(read)
		fired := make([]bool, len(hooks))
		buf := make([]byte, 4096)
		var partial string
		for {
			n, err := pipe.Read(buf)
			if n > 0 {
				at := time.Now()
				_, _ = stdout.Write(buf[:n])
				partial += string(buf[:n])
				for {
					line, rest, ok := strings.Cut(partial, "\n")
					if !ok {
						break
					}
					lines = append(lines, stampedLine{at: at, text: line})
					partial = rest
				}
				text := stdout.String()
				for i, h := range hooks {
					if !fired[i] && strings.Contains(text, h.at) {
						fired[i] = true
						h.do(liveRun{proc: cmd.Process, stdout: &stdout})
					}
				}
			}
			if err != nil {
				return
			}
		}
	}()
	done := make(chan error, 1)
	go func() {
		<-read
		done <- cmd.Wait()
	}()
	select {
	case <-done:
	case <-time.After(4 * time.Minute):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("greenlight did not finish in 4 minutes; stdout:\n%s", stdout.String())
	}
	res := result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String(), lines: lines}
	out, _ := os.ReadFile(files["GITHUB_OUTPUT"])
	res.outputs = parseOutputs(string(out))
	summary, _ := os.ReadFile(files["GITHUB_STEP_SUMMARY"])
	res.summary = string(summary)
	if p := res.outputs["report-path"]; p != "" {
		data, err := os.ReadFile(filepath.Join(dir, p))
		require.NoError(t, err, "the report-path output names a file")
		res.report = string(data)
	}
	if p := inputs["event-log"]; p != "" {
		data, err := os.ReadFile(filepath.Join(dir, p))
		require.NoError(t, err, "the event-log input names the file the run wrote")
		res.events = string(data)
	}
	return res
}

// stampedLine is one line of stdout and when it reached the test.
type stampedLine struct {
	at   time.Time
	text string
}

// stageWindow is when a stage ran as stdout told it: from its
// `::group::<stage>` line to the `::endgroup::` after it, or to the run's
// last line if the group never closed.
func stageWindow(lines []stampedLine, stage string) (from, to time.Time, ok bool) {
	for i, l := range lines {
		if l.text != "::group::"+stage {
			continue
		}
		from, to = l.at, lines[len(lines)-1].at
		for _, m := range lines[i+1:] {
			if m.text == "::endgroup::" {
				to = m.at
				break
			}
		}
		return from, to, true
	}
	return time.Time{}, time.Time{}, false
}

// hitsWithin counts the faulted requests between from and to.
func hitsWithin(at []time.Time, from, to time.Time) int {
	n := 0
	for _, t := range at {
		if !t.Before(from) && !t.After(to) {
			n++
		}
	}
	return n
}

// newBlueEnv is an env whose app already runs blue-green: shop-blue with
// image, and the Service shop selecting the blue color. A production deploy
// then creates green, the steady state of blue-green.
func newBlueEnv(t *testing.T, image string) *env {
	t.Helper()
	e := newEnv(t, "")
	ctx := context.Background()
	blue := shopDeployment(image)
	blue.Name = "shop-blue"
	labels := map[string]string{"app": "shop", kube.ColorLabel: "blue"}
	blue.Labels = labels
	blue.Spec.Selector.MatchLabels = labels
	blue.Spec.Template.Labels = labels
	_, err := e.client.AppsV1().Deployments(e.ns).Create(ctx, blue, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = e.client.CoreV1().Services(e.ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "shop"},
		Spec: corev1.ServiceSpec{Selector: labels,
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = kube.WaitRollout(ctx, e.client, e.ns, "shop-blue", kube.WaitOptions{Timeout: time.Minute})
	require.NoError(t, err)
	return e
}

// versionOf is the tag of an image, which the sample app reports as its
// version.
func versionOf(image string) string {
	_, tag, _ := strings.Cut(image, ":")
	return tag
}

// verdict is how a run left the environment.
type verdict struct {
	// outcome says how the run ended, in words for the log.
	outcome string
	status  string
	served  map[string]int
	// broken are lies about traffic: versions mixed, or the status not
	// saying what serves. No run may ever leave one.
	broken []string
	// problems are half states the deploy should not leave (a held lock, a
	// failed rollback, a Service on a color not fully ready).
	problems []string
	// notes are leftovers that carry no traffic.
	notes []string
}

// The words of the fault table: a cell completed the deploy despite the
// fault, gave up safely (the old version serving, with a reason), or left
// the environment unsafe.
const (
	wordCompleted = "completed"
	wordGaveUp    = "gave up"
	wordUnsafe    = "UNSAFE"
	// wordNotReached marks a cell whose stage made no request the fault
	// could affect (the proxy saw none): it tests nothing and counts as
	// neither completed nor gave up.
	wordNotReached = "n/a"
)

// word is the verdict in the golden table.
func (v verdict) word() string {
	switch {
	case len(v.broken)+len(v.problems) > 0:
		return wordUnsafe
	case v.status == "succeeded":
		return wordCompleted
	}
	return wordGaveUp
}

func (v verdict) String() string {
	s := fmt.Sprintf("%s: %s (status %q, serving %s)", v.word(), v.outcome, v.status, mustJSON(v.served))
	if len(v.broken) > 0 {
		s += "; broken: " + strings.Join(v.broken, "; ")
	}
	if len(v.problems) > 0 {
		s += "; problems: " + strings.Join(v.problems, "; ")
	}
	if len(v.notes) > 0 {
		s += "; notes: " + strings.Join(v.notes, "; ")
	}
	return s
}

// finishedLine matches the run's last word: "❌ failed: <reason>".
var finishedLine = regexp.MustCompile(`(?m)^\S+ (succeeded|failed|rolled-back|rollback-failed): (.*)$`)

// judge tells how a run left the environment. Safe is one of two endings:
// the new version serving everywhere after a success, or the old one after
// a failure with a reason; with the lock free and the Service on a fully
// ready Deployment.
func (e *env) judge(t *testing.T, res result, oldImage, newImage string, blueGreen bool) verdict {
	t.Helper()
	e.settle(t, blueGreen)
	v := verdict{status: res.outputs["status"], served: e.serving(t, 20)}
	oldV, newV := versionOf(oldImage), versionOf(newImage)
	serving := ""
	if len(v.served) == 1 {
		for version := range v.served {
			serving = version
		}
	}
	if serving != oldV && serving != newV {
		v.broken = append(v.broken, fmt.Sprintf("want one version answering, got %s", mustJSON(v.served)))
	}
	wantCode := 1
	switch v.status {
	case "succeeded":
		wantCode = 0
		v.outcome = "completed"
		if serving != newV {
			v.broken = append(v.broken, "status succeeded but "+newV+" is not what answers")
		}
	case "failed", "rolled-back":
		v.outcome = "old version serving, " + v.status
		if serving != oldV {
			v.broken = append(v.broken, "status "+v.status+" but "+oldV+" is not what answers")
		}
	case "rollback-failed":
		v.outcome = "rollback failed, " + serving + " serving"
		v.problems = append(v.problems, "the rollback failed: neither completed nor back on the old version")
	default:
		v.broken = append(v.broken, fmt.Sprintf("status %q", v.status))
	}
	if res.code != wantCode {
		v.broken = append(v.broken, fmt.Sprintf("status %s with exit code %d", v.status, res.code))
	}
	if m := finishedLine.FindStringSubmatch(res.stdout); v.status != "succeeded" && (m == nil || strings.TrimSpace(m[2]) == "") {
		v.problems = append(v.problems, "no reason given for the failure")
	}
	if e.lockHeld(t) {
		v.problems = append(v.problems, "the deploy lock is left held")
	}
	if blueGreen {
		e.checkColors(t, serving, &v)
	} else {
		e.checkRolling(t, serving, &v)
	}
	return v
}

// settle waits, up to 20 s, until the Deployment the Service selects has
// all its replicas ready, so a readiness probe that timed out on a busy
// machine is not taken for a state the run left. A state that does not
// settle is judged as it is.
func (e *env) settle(t *testing.T, blueGreen bool) {
	t.Helper()
	ctx := context.Background()
	pollUntil(20*time.Second, func() bool {
		name := "shop"
		if blueGreen {
			svc, err := e.client.CoreV1().Services(e.ns).Get(ctx, "shop", metav1.GetOptions{})
			if err != nil {
				return false
			}
			if c := kube.ActiveColor(svc); c != "" {
				name = "shop-" + c
			}
		}
		d, err := e.client.AppsV1().Deployments(e.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return apierrors.IsNotFound(err)
		}
		return d.Spec.Replicas != nil && d.Status.ReadyReplicas >= *d.Spec.Replicas && d.Status.ObservedGeneration >= d.Generation
	})
}

// checkColors checks the Service selects one color whose Deployment runs
// the serving version and is fully ready; a second color still scaled up
// is noted.
func (e *env) checkColors(t *testing.T, serving string, v *verdict) {
	t.Helper()
	ctx := context.Background()
	svc, err := e.client.CoreV1().Services(e.ns).Get(ctx, "shop", metav1.GetOptions{})
	require.NoError(t, err)
	active := "shop"
	if c := kube.ActiveColor(svc); c != "" {
		active = "shop-" + c
	}
	deps, err := e.client.AppsV1().Deployments(e.ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	found := false
	for _, d := range deps.Items {
		replicas := int32(1)
		if d.Spec.Replicas != nil {
			replicas = *d.Spec.Replicas
		}
		image := versionOf(d.Spec.Template.Spec.Containers[0].Image)
		if d.Name != active {
			if replicas > 0 {
				v.notes = append(v.notes, fmt.Sprintf("%s (%s) still has %d replicas", d.Name, image, replicas))
			}
			continue
		}
		found = true
		if image != serving {
			v.broken = append(v.broken, fmt.Sprintf("service selects %s running %s, but %s answers", d.Name, image, serving))
		}
		if replicas == 0 || d.Status.ReadyReplicas < replicas || d.Status.UpdatedReplicas < replicas {
			v.problems = append(v.problems, fmt.Sprintf("service selects %s with %d of %d replicas ready", d.Name, d.Status.ReadyReplicas, replicas))
		}
	}
	if !found {
		v.broken = append(v.broken, fmt.Sprintf("service selects %s, which does not exist", active))
	}
}

// checkRolling checks the Deployment runs the serving version and is not
// stuck mid-rollout.
func (e *env) checkRolling(t *testing.T, serving string, v *verdict) {
	t.Helper()
	d, err := e.client.AppsV1().Deployments(e.ns).Get(context.Background(), "shop", metav1.GetOptions{})
	require.NoError(t, err)
	if image := versionOf(d.Spec.Template.Spec.Containers[0].Image); image != serving {
		v.broken = append(v.broken, fmt.Sprintf("deployment shop runs %s, but %s answers", image, serving))
	}
	s, want := d.Status, *d.Spec.Replicas
	if s.ObservedGeneration < d.Generation || s.UpdatedReplicas != want || s.ReadyReplicas != want || s.Replicas != want {
		v.problems = append(v.problems, fmt.Sprintf("deployment shop is mid-rollout: %d updated, %d ready, %d in all, of %d", s.UpdatedReplicas, s.ReadyReplicas, s.Replicas, want))
	}
}

// assertNoProxyToken checks the fault proxy's bearer token, a credential in
// the kubeconfig greenlight was given, appears nowhere it printed or sent.
func (e *env) assertNoProxyToken(t *testing.T, res result, token string) {
	t.Helper()
	var logged []string
	for _, line := range strings.Split(res.stdout, "\n") {
		if !strings.HasPrefix(line, "::add-mask::") {
			logged = append(logged, line)
		}
	}
	outputs, _ := json.Marshal(res.outputs)
	for where, text := range map[string]string{
		"stdout": strings.Join(logged, "\n"), "stderr": res.stderr, "outputs": string(outputs),
		"summary": res.summary, "report": res.report,
		"slack": strings.Join(e.slack.requests(), "\n"), "github": strings.Join(e.github.requests(), "\n"),
	} {
		assert.NotContains(t, text, token, "the kubeconfig's token leaked into %s", where)
	}
}

// faultStages are the stages a fault is switched on at, in order.
var faultStages = []string{"validate", "deploy", "verify", "monitor"}

// faultWindow is how long each fault lasts: longer than greenlight's own
// retries of one call (five attempts within about three seconds), as an
// API server restart is, so whether a retry outlasts the fault does not
// depend on jitter.
const faultWindow = 5 * time.Second

// tableFaults are the API server faults of the table, each switched on when
// its stage starts.
var tableFaults = []struct {
	name  string
	fault testcluster.Fault
}{
	{"429 with Retry-After 1s", testcluster.Fault{Kind: testcluster.FaultTooManyRequests, RetryAfter: time.Second, For: faultWindow}},
	{"500", testcluster.Fault{Kind: testcluster.FaultInternalError, For: faultWindow}},
	{"503", testcluster.Fault{Kind: testcluster.FaultUnavailable, For: faultWindow}},
	{"503 from the service proxy only", testcluster.Fault{Kind: testcluster.FaultUnavailable, PathContains: "/proxy/", For: faultWindow}},
	{"connection reset", testcluster.Fault{Kind: testcluster.FaultReset, For: faultWindow}},
	{"answers delayed 2s", testcluster.Fault{Kind: testcluster.FaultDelay, Delay: 2 * time.Second, For: faultWindow}},
	{"watches cut after 100ms", testcluster.Fault{Kind: testcluster.FaultCutWatch, Delay: 100 * time.Millisecond, For: faultWindow}},
}

// faultDeploy is one kind of deploy the table runs under faults.
type faultDeploy struct {
	title     string
	env       string
	blueGreen bool
}

var faultDeploys = []faultDeploy{
	{"production, blue-green", "production", true},
	{"staging, rolling update", "staging", false},
}

// faultCell is one run of the table.
type faultCell struct {
	deploy faultDeploy
	fault  string
	stage  string
	res    result
	in     map[string]string
	env    *env
	token  string
	counts testcluster.FaultCounts
	// hits is how many requests the fault affected while its stage ran;
	// inStage is false when the stage never started.
	hits    int
	inStage bool
	// reachable is how many requests of the stage the fault could have hit.
	reachable int
	v         verdict
}

// word is the cell's word in the table.
func (c *faultCell) word() string {
	if c.inStage && c.reachable == 0 && c.v.word() != wordUnsafe {
		return wordNotReached
	}
	return c.v.word()
}

func (c *faultCell) name() string {
	return fmt.Sprintf("%s/%s/%s", c.deploy.env, c.fault, c.stage)
}

// runFaultCell deploys v2 over v1 through a fault proxy and switches the
// fault on when the stage starts.
func runFaultCell(t *testing.T, c *faultCell, fault testcluster.Fault) {
	const oldImage, newImage = "sampleapp:v1", "sampleapp:v2"
	if c.deploy.blueGreen {
		c.env = newBlueEnv(t, oldImage)
	} else {
		c.env = newEnv(t, oldImage)
	}
	proxy := c.env.c.NewFaultProxy(t)
	c.token = proxy.Token()
	c.in = c.env.inputs(c.deploy.env, newImage)
	c.in["kubeconfig"] = base64.StdEncoding.EncodeToString(proxy.Kubeconfig())
	// Checks go through the API server's service proxy, so a fault in
	// verify and monitor reaches them too. The Service's port has a name,
	// which the service proxy needs spelled out.
	delete(c.in, "url")
	c.in["service-port"] = "80"
	c.in["timeout"] = "20"
	c.in["rollout-timeout"] = "60s"
	c.in["lock-timeout"] = "10s"
	c.res = c.env.runHooked(t, c.in, stdoutHook{at: "::group::" + c.stage, do: func(liveRun) { proxy.Inject(fault) }})
	c.counts = proxy.Counts()
	if from, to, ok := stageWindow(c.res.lines, c.stage); ok {
		c.inStage, c.hits = true, hitsWithin(proxy.FaultedAt(), from, to)
		c.reachable = proxy.Reachable(fault, from, to)
	}
	c.v = c.env.judge(t, c.res, oldImage, newImage, c.deploy.blueGreen)
	// The cell's pods go now, not when the whole table ends: what the
	// secrets sweep reads of the namespace is kept first.
	c.env.objects = clusterObjects(t, c.env.client, c.env.ns)
	_ = c.env.client.CoreV1().Namespaces().Delete(context.Background(), c.env.ns, metav1.DeleteOptions{})
}

// TestFaultTable runs a deploy under each API server fault switched on at
// each stage. No run may leave versions mixed or a status that lies about
// what serves; a cell the golden table marks safe must end safe. UNSAFE
// cells in the golden table are defects of greenlight found by this table.
func TestFaultTable(t *testing.T) {
	t.Parallel()
	cluster.Get(t) // started before the cells, not by the first of them
	var cells []*faultCell
	faults := map[string]testcluster.Fault{}
	for _, d := range faultDeploys {
		for _, f := range tableFaults {
			faults[f.name] = f.fault
			for _, stage := range faultStages {
				cells = append(cells, &faultCell{deploy: d, fault: f.name, stage: stage})
			}
		}
	}

	// Goroutines, not parallel subtests: -parallel defaults to the number
	// of cores, and most of a cell is waiting on rollouts and probes.
	const concurrent = 6
	start := time.Now()
	sem := make(chan struct{}, concurrent)
	var wg sync.WaitGroup
	for _, c := range cells {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			runFaultCell(t, c, faults[c.fault])
		}()
	}
	wg.Wait()
	t.Logf("%d cells in %s", len(cells), time.Since(start).Round(time.Second))

	// The expectations are the golden table as it was before this run:
	// -update records this run's words, but cannot make a failing cell pass.
	golden := filepath.Join("testdata", "faults.md")
	want := map[string]map[string]map[string]string{}
	data, err := os.ReadFile(golden)
	if err == nil {
		want = parseFaultTable(string(data))
	} else if !updateGolden() {
		t.Fatalf("read %s: %v; run with -update to create it", golden, err)
	}
	if updateGolden() {
		require.NoError(t, os.WriteFile(golden, []byte(faultTableMarkdown(cells)), 0o644))
	}

	for _, c := range cells {
		t.Run(c.name(), func(t *testing.T) {
			if c.env == nil {
				t.Fatal("the cell never ran: its test environment failed to start (the errors above say why)")
			}
			t.Logf("%s; the proxy saw %d requests, the fault hit %d, %d of them while %s ran", c.v, c.counts.Requests, c.counts.Faulted, c.hits, c.stage)
			failures := cellFailures(c.v, c.inStage, c.hits, c.reachable, want[c.deploy.title][c.fault][c.stage], updateGolden())
			for _, f := range failures {
				t.Error(f)
			}
			if len(failures) > 0 || c.v.word() == wordUnsafe {
				t.Logf("stdout:\n%s\nstderr:\n%s", c.res.stdout, c.res.stderr)
			}
			c.env.assertNoSecrets(t, c.res, c.in)
			c.env.assertNoProxyToken(t, c.res, c.token)
		})
	}
}

// cellFailures are the reasons a fault cell fails: an unsafe end whatever
// the golden table says, a fault that never hit a request of its stage (the
// cell proved nothing), a cell the golden table does not have (unless it is
// being recorded), and a cell that completed in the golden table but gave
// up now. A cell that gave up in the table and completes now passes.
func cellFailures(v verdict, inStage bool, hits, reachable int, expected string, updating bool) []string {
	var out []string
	if len(v.broken) > 0 {
		out = append(out, "what answers and what the run says disagree: "+strings.Join(v.broken, "; "))
	}
	if len(v.problems) > 0 {
		out = append(out, "the run left the environment unsafe: "+strings.Join(v.problems, "; "))
	}
	switch {
	case !inStage:
		out = append(out, "the stage never started, so its fault was never tested")
	case hits == 0 && reachable > 0:
		out = append(out, fmt.Sprintf("the fault hit none of the %d requests its stage made that it could have: the cell proves nothing", reachable))
	}
	switch {
	case expected == "" && !updating:
		out = append(out, "the golden table has no such cell; rerun with -update")
	case expected == wordCompleted && v.word() == wordGaveUp:
		out = append(out, "the golden table says this cell completes despite its fault, but the run gave up")
	}
	return out
}

func faultTableMarkdown(cells []*faultCell) string {
	var b bytes.Buffer
	b.WriteString("# API server faults × deploy stage\n\n")
	fmt.Fprintf(&b, "Each cell deploys v2 over v1 through a fault-injecting proxy in front of the\n"+
		"API server, switches the fault on when the stage starts (`::group::<stage>`)\n"+
		"and keeps it on for %s. Health checks go through the API server's service\n"+
		"proxy, so faults reach verify and monitor too. Every cell checks that its\n"+
		"fault hit at least one request while its stage ran.\n\n"+
		"**completed**: the deploy finished despite the fault (v2 answers\n"+
		"everywhere). **gave up**: the run stopped with v1 answering everywhere and a\n"+
		"reason, the Service on a fully ready Deployment and the deploy lock free.\n"+
		"**UNSAFE**: anything else, such as a held lock or a failed rollback; the test\n"+
		"fails on it whatever this file says. **n/a**: the stage made no request the\n"+
		"fault could affect (the proxy saw none), so the cell tests nothing; a cell\n"+
		"whose stage made such requests but whose fault hit none fails.\n\n"+
		"A cell recorded as completed must complete again; one that gave up may\n"+
		"complete. `-update` records a run's words but judges the run against the\n"+
		"table as it was.\n\n"+
		"Regenerate: `go test ./cmd/greenlight -run TestFaultTable -update`.\n", faultWindow)
	for _, d := range faultDeploys {
		tally := map[string]int{}
		var rows strings.Builder
		for _, f := range tableFaults {
			row := []string{f.name}
			for _, stage := range faultStages {
				for _, c := range cells {
					if c.deploy.title == d.title && c.fault == f.name && c.stage == stage {
						word := c.word()
						tally[word]++
						row = append(row, word)
					}
				}
			}
			fmt.Fprintf(&rows, "| %s |\n", strings.Join(row, " | "))
		}
		total := len(tableFaults) * len(faultStages)
		fmt.Fprintf(&b, "\n## %s\n\nCompleted %d of %d cells, gave up %d, unsafe %d, not reached %d.\n\n| fault | %s |\n|---|%s\n%s",
			d.title, tally[wordCompleted], total, tally[wordGaveUp], tally[wordUnsafe], tally[wordNotReached],
			strings.Join(faultStages, " | "), strings.Repeat("---|", len(faultStages)), rows.String())
	}
	return b.String()
}

func parseFaultTable(md string) map[string]map[string]map[string]string {
	out := map[string]map[string]map[string]string{}
	title := ""
	for _, line := range strings.Split(md, "\n") {
		if t, ok := strings.CutPrefix(line, "## "); ok {
			title = t
			out[title] = map[string]map[string]string{}
			continue
		}
		if title == "" || !strings.HasPrefix(line, "| ") || strings.HasPrefix(line, "| fault ") {
			continue
		}
		fields := strings.Split(strings.Trim(line, "| "), " | ")
		if len(fields) != len(faultStages)+1 {
			continue
		}
		out[title][fields[0]] = map[string]string{}
		for i, stage := range faultStages {
			out[title][fields[0]][stage] = fields[i+1]
		}
	}
	return out
}

// alertLine and resolvedLine are the terminal's alert episode lines.
var (
	alertLine    = regexp.MustCompile(`(?m)^  ⚠ alert: (.*)$`)
	resolvedLine = regexp.MustCompile(`(?m)^  ✓ resolved: (\S+)`)
)

// flakyPods is a Deployment whose one pod joins the color's two and fails
// every request: while it runs, about a third of the answers fail.
func flakyPods(color string) *appsv1.Deployment {
	replicas := int32(1)
	labels := map[string]string{"app": "shop", kube.ColorLabel: color, "flaky": "true"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "shop-flaky", Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: "sampleapp:v2",
					Env:   []corev1.EnvVar{{Name: "SAMPLEAPP_ERROR_RATE", Value: "1"}},
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
					// No readiness probe: a pod failing every request would never
					// be ready, and the point is that it serves.
				}}},
			},
		},
	}
}

// TestFlappingAppAlertsOncePerEpisode makes the new version flap while it
// is monitored: healthy, then failing a third of its answers (a failing pod
// joins the Service), healthy again, twice. Alerts must open and close once
// per episode, and no rollback may fire, as the failures stay under the
// rollback rules.
func TestFlappingAppAlertsOncePerEpisode(t *testing.T) {
	t.Parallel()
	e := newBlueEnv(t, "sampleapp:v1")
	in := e.inputs("production", "sampleapp:v2")
	in["monitor-duration"] = "25s"
	in["monitor-interval"] = "100ms"
	in["alert-error-rate"] = "10%"
	// Availability counts every probe of the run, so one episode keeps it
	// low through the next: only the windowed rules can pair with episodes.
	in["alert-availability"] = "0%"
	// Consecutive failures depend on how other tests' traffic interleaves
	// at the router: kept out of reach so only the rate rules judge.
	in["alert-consecutive-failures"] = "50"
	in["rollback-consecutive-failures"] = "50"
	in["rollback-error-rate"] = "70%"

	ctx := context.Background()
	deps := e.client.AppsV1().Deployments(e.ns)
	var (
		mu       sync.Mutex
		episodes int
		flapErr  error
	)
	flap := func(stdout *syncBuffer) {
		// Two episodes: the failing pod joins until an alert is raised,
		// then leaves until every alert is resolved.
		for range 2 {
			raisedBefore := len(alertLine.FindAllString(stdout.String(), -1))
			if _, err := deps.Create(ctx, flakyPods("green"), metav1.CreateOptions{}); err != nil {
				mu.Lock()
				flapErr = err
				mu.Unlock()
				return
			}
			if !pollUntil(30*time.Second, func() bool { return len(alertLine.FindAllString(stdout.String(), -1)) > raisedBefore }) {
				break
			}
			if err := deps.Delete(ctx, "shop-flaky", metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				mu.Lock()
				flapErr = err
				mu.Unlock()
				return
			}
			pollUntil(30*time.Second, func() bool {
				out := stdout.String()
				return len(resolvedLine.FindAllString(out, -1)) >= len(alertLine.FindAllString(out, -1))
			})
			mu.Lock()
			episodes++
			mu.Unlock()
		}
	}
	var flapping sync.WaitGroup
	res := e.runHooked(t, in, stdoutHook{at: "::group::monitor", do: func(r liveRun) {
		flapping.Add(1)
		go func() { defer flapping.Done(); flap(r.stdout) }()
	}})
	flapping.Wait()
	t.Logf("exit %d\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	require.NoError(t, flapErr)
	require.Equal(t, 2, episodes, "both failure episodes happened within the monitoring")

	assert.Equal(t, 0, res.code)
	assert.Equal(t, "succeeded", res.outputs["status"], "no rollback rule was reached")
	assert.Equal(t, "false", res.outputs["rolled-back"])
	assert.NotContains(t, res.stdout, "rolling back")

	// Pair the alert lines per rule: raised, resolved, raised, resolved.
	raised := map[string]int{}
	for _, line := range strings.Split(res.stdout, "\n") {
		if m := alertLine.FindStringSubmatch(line); m != nil {
			rule := ruleOf(m[1])
			require.Zero(t, raised[rule]%2, "alert %q raised again before it was resolved", rule)
			raised[rule]++
		}
		if m := resolvedLine.FindStringSubmatch(line); m != nil {
			require.Equal(t, 1, raised[m[1]]%2, "alert %q resolved but not open", m[1])
			raised[m[1]]++
		}
	}
	require.NotEmpty(t, raised, "the failing pod raised alerts")
	for rule, changes := range raised {
		assert.Equal(t, 4, changes, "rule %s opens and closes once per episode, twice in all", rule)
	}
	assert.JSONEq(t, `{"v2": 20}`, mustJSON(e.serving(t, 20)))
	assert.False(t, e.lockHeld(t))
	e.assertNoSecrets(t, res, in)
}

// ruleOf maps an alert message to the rule id its resolved line names: the
// message starts with what was measured.
func ruleOf(message string) string {
	switch {
	case strings.HasPrefix(message, "p95 response time"):
		return string(monitor.RuleResponseTime)
	case strings.HasPrefix(message, "error rate"):
		return string(monitor.RuleErrorRate)
	case strings.HasPrefix(message, "availability"):
		return string(monitor.RuleAvailability)
	case strings.Contains(message, "consecutive probes failed"):
		return string(monitor.RuleConsecutiveFailures)
	}
	return message
}

// pollUntil polls cond until it holds or timeout passes, and tells which.
func pollUntil(timeout time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// killCase is a blue-green deploy killed at one step, and the run after.
type killCase struct {
	name string
	// plain starts from a plain Deployment, which blue-green adopts.
	plain  bool
	killAt string

	e      *env
	in     map[string]string
	killed result
	lock   bool
	before map[string]int
	next   result
	v      verdict
}

// TestSIGKILLMidBlueGreenIsRepairedByTheNextRun kills greenlight with
// SIGKILL (no chance to clean up) in the middle of a blue-green deploy and
// runs the same deploy again: it must find the state in the cluster, take
// over the dead run's lock once its lease expires, and finish with one
// consistent version serving.
func TestSIGKILLMidBlueGreenIsRepairedByTheNextRun(t *testing.T) {
	t.Parallel()
	cases := []*killCase{
		{name: "while adopting a plain deployment", plain: true, killAt: "· pin shop"},
		{name: "while green starts", killAt: "· create green"},
		{name: "after the switch", killAt: "· switch: service shop → green"},
	}
	// Goroutines, not parallel subtests: each case spends a minute waiting
	// for the dead run's lease, and -parallel would queue them. The cluster
	// is had here, where -short can skip the test, not in a goroutine.
	cluster.Get(t)
	var wg sync.WaitGroup
	for _, k := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if k.plain {
				k.e = newEnv(t, "sampleapp:v1")
			} else {
				k.e = newBlueEnv(t, "sampleapp:v1")
			}
			k.in = k.e.inputs("production", "sampleapp:v2")
			k.killed = k.e.runHooked(t, k.in, stdoutHook{at: k.killAt, do: func(r liveRun) { _ = r.proc.Kill() }})
			k.lock = k.e.lockHeld(t)
			// A run killed right after the switch leaves endpoints converging;
			// what counts is where they settle.
			pollUntil(15*time.Second, func() bool { return len(k.e.serving(t, 10)) == 1 })
			k.before = k.e.serving(t, 20)
			// The dead run's lease (60s) must expire before the next run may
			// take the lock; there is no input to shorten it.
			next := maps.Clone(k.in)
			next["lock-timeout"] = "120s"
			next["timeout"] = "15"
			k.next = k.e.runHooked(t, next)
			k.v = k.e.judge(t, k.next, "sampleapp:v1", "sampleapp:v2", true)
		}()
	}
	wg.Wait()

	for _, k := range cases {
		t.Run(k.name, func(t *testing.T) {
			t.Logf("killed run: exit %d\nstdout:\n%s", k.killed.code, k.killed.stdout)
			t.Logf("next run: exit %d\nstdout:\n%s\nstderr:\n%s", k.next.code, k.next.stdout, k.next.stderr)
			t.Log(k.v)
			require.Equal(t, -1, k.killed.code, "the first run was killed")
			assert.True(t, k.lock, "a killed run leaves its lock behind")
			assert.Len(t, k.before, 1, "one version answers after the kill: %v", k.before)
			assert.Empty(t, k.v.broken)
			assert.Empty(t, k.v.problems)
			k.e.assertNoSecrets(t, k.next, k.in)

			// Repaired is more than safe: the deploy is finished, the killed
			// run's leftovers are gone and the next run says what it found.
			var defects []string
			if k.v.outcome != "completed" {
				svc, err := k.e.client.CoreV1().Services(k.e.ns).Get(context.Background(), "shop", metav1.GetOptions{})
				require.NoError(t, err)
				reason := ""
				if m := finishedLine.FindStringSubmatch(k.next.stdout); m != nil {
					reason = m[2]
				}
				defects = append(defects, fmt.Sprintf("the next run did not finish the deploy (%s: %s) and the service still selects %s",
					k.v.outcome, reason, mustJSON(svc.Spec.Selector)))
			}
			if len(k.v.notes) > 0 {
				defects = append(defects, "left running: "+strings.Join(k.v.notes, ", "))
			}
			if !strings.Contains(k.next.stdout, "held by") {
				defects = append(defects, "the next run never says it waited for and took over the killed run's lock")
			}
			assert.Empty(t, defects, "the next run repairs what the killed run left")
			assert.Equal(t, "completed", k.v.outcome, "the next run finishes the deploy")
		})
	}
}

// TestFaultValidateFailureReleasesLock fails validate after the deploy lock
// is taken: the service proxy answers 503 throughout, so the version
// serving now looks unhealthy. Nothing may change, and the lock must be
// free for the next run at once, not a lease duration later.
func TestFaultValidateFailureReleasesLock(t *testing.T) {
	t.Parallel()
	e := newBlueEnv(t, "sampleapp:v1")
	proxy := e.c.NewFaultProxy(t)
	in := e.inputs("production", "sampleapp:v2")
	in["kubeconfig"] = base64.StdEncoding.EncodeToString(proxy.Kubeconfig())
	delete(in, "url")
	in["service-port"] = "80"
	in["timeout"] = "3"
	withoutLease := func(objs []string) []string {
		return slices.DeleteFunc(objs, func(o string) bool { return strings.HasPrefix(o, "lease/") })
	}
	before := withoutLease(e.snapshot(t))
	res := e.runHooked(t, in, stdoutHook{at: "::group::validate", do: func(liveRun) {
		proxy.Inject(testcluster.Fault{Kind: testcluster.FaultUnavailable, PathContains: "/proxy/"})
	}})
	t.Logf("exit %d\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	assert.Equal(t, 1, res.code)
	assert.Equal(t, "failed", res.outputs["status"])
	assert.Contains(t, res.stdout, "the version serving now is unhealthy")
	assert.Equal(t, before, withoutLease(e.snapshot(t)), "nothing in the namespace changed but the lock")
	assert.JSONEq(t, `{"v1": 20}`, mustJSON(e.serving(t, 20)))
	e.assertNoSecrets(t, res, in)
	e.assertNoProxyToken(t, res, proxy.Token())
	assert.False(t, e.lockHeld(t), "the lock is free for the next run at once")
}
