package proof

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ebeautything/greenlight/internal/testcluster"
)

const (
	// detectionRuns × detectionRollouts are the rollouts figure 1 times:
	// 21 in all, enough for a nearest-rank p95 that is not the maximum, in
	// three runs so the table can show how much a run's median moves.
	detectionRuns     = 3
	detectionRollouts = 7
	// greenlightWaitEnded starts the line `greenlight deploy` prints when
	// its rollout wait ends (the rolling strategy's "rollout" step).
	greenlightWaitEnded = "  · rollout"
	// greenlightApplied starts the line it prints once the change is
	// written, the moment kubectl rollout status is started.
	greenlightApplied = "  · apply"
	// kubectlWaitEnded is in the line `kubectl rollout status` prints when
	// the rollout is complete.
	kubectlWaitEnded = "successfully rolled out"
)

// minReady holds each new pod back from counting as available for 2 s
// after it is ready, so every rollout lasts long enough for both waiters
// to be watching before it completes: the figure is detection alone, not
// what is left of kubectl's start (on a busy machine 200–500 ms).
func minReady(d *appsv1.Deployment) { d.Spec.MinReadySeconds = 2 }

// detectionWhy is printed if greenlight's wait ever trails kubectl's.
const detectionWhy = "both react to the same Deployment watch event, but greenlight's wait also receives the ReplicaSet and pod events of the same moment (three informers, to fail fast on stuck pods) and evaluates after each, which can put the Deployment's event behind them"

// lineWatch starts a process and notes when each line of its stdout
// reaches this process, as a user's terminal or CI log would receive it.
type lineWatch struct {
	cmd   *exec.Cmd
	lines chan stampedLine
	out   strings.Builder
}

// stampedLine is one line and the moment it was read.
type stampedLine struct {
	at   time.Time
	text string
}

func startWatched(ctx context.Context, dir string, environ []string, name string, args ...string) (*lineWatch, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, environ...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	w := &lineWatch{cmd: cmd, lines: make(chan stampedLine, 1024)}
	go func() {
		defer close(w.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			w.lines <- stampedLine{at: time.Now(), text: sc.Text()}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	return w, nil
}

// until returns the arrival of the first line containing want, or an
// error with the output so far when the process ended without it.
func (w *lineWatch) until(want string) (time.Time, error) {
	for l := range w.lines {
		w.out.WriteString(l.text + "\n")
		if strings.Contains(l.text, want) {
			return l.at, nil
		}
	}
	return time.Time{}, fmt.Errorf("no line with %q; output:\n%s", want, w.out.String())
}

// finish reads the rest of the output and waits for the process.
func (w *lineWatch) finish() error {
	for l := range w.lines {
		w.out.WriteString(l.text + "\n")
	}
	if err := w.cmd.Wait(); err != nil {
		return fmt.Errorf("%w; output:\n%s", err, w.out.String())
	}
	return nil
}

// BenchmarkRolloutDetection is figure 1: on the same rollouts, how long
// after the Deployment's status became complete (seen by a watch of its
// own, the referee) the line announcing it reached this process from
// `greenlight deploy` (its rollout step's line) and from `kubectl rollout
// status`. Both are separate processes of binaries built alike, read the
// same way; kubectl is started as soon as greenlight has written the
// change, and both wait from then on. Process start and exit are outside
// the figure.
func BenchmarkRolloutDetection(b *testing.B) {
	e := newEnv(b)
	bins := built.get(b)
	var ours, theirs, runOurs, runTheirs []float64
	for range b.N {
		ours, theirs, runOurs, runTheirs = nil, nil, nil, nil
		runs := detectionRuns
		if *quick {
			runs = 1
		}
		for range runs {
			ns := e.namespace(b)
			e.createApp(b, ns, "shop", "sampleapp:v1", minReady)
			var o, t []float64
			for i := range detectionRollouts {
				gl, kc := e.detectOnce(b, bins, ns, fmt.Sprintf("sampleapp:v%d", i+2))
				o, t = append(o, gl), append(t, kc)
			}
			ours, theirs = append(ours, o...), append(theirs, t...)
			runOurs, runTheirs = append(runOurs, median(o)), append(runTheirs, median(t))
			e.dropNamespace(ns)
		}
	}
	b.StopTimer()
	b.ReportMetric(median(ours), "ours-p50-ms")
	b.ReportMetric(median(theirs), "kubectl-p50-ms")
	peer := "`kubectl rollout status`, its line"
	spread := func(v []float64) string {
		return fmt.Sprintf("run medians %s–%s", msText(slices.Min(v)), msText(slices.Max(v)))
	}
	book.add(
		Figure{Order: 11, Name: fmt.Sprintf("rollout detection: status complete → the wait's line read, `greenlight deploy`, median of %d rollouts in %d runs (greenlight %s; kubectl %s)", len(ours), len(runOurs), spread(runOurs), spread(runTheirs)), Unit: "ms",
			Ours: median(ours), Peer: peer, PeerValue: median(theirs), Judgement: AgainstPeer, Why: detectionWhy},
		Figure{Order: 12, Name: fmt.Sprintf("rollout detection, p95 of %d rollouts", len(ours)), Unit: "ms",
			Ours: Percentile(ours, 0.95), Peer: peer, PeerValue: Percentile(theirs, 0.95), Judgement: AgainstPeer, Why: detectionWhy},
	)
	b.Logf("detection lag ms, greenlight deploy: %v", ours)
	b.Logf("detection lag ms, kubectl:           %v", theirs)
}

// detectOnce rolls the app out to image with `greenlight deploy` while
// `kubectl rollout status` and the referee wait, and returns each tool's
// lag in milliseconds from the referee's moment to its line's arrival.
func (e *env) detectOnce(b *testing.B, bins *builds, ns, image string) (float64, float64) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dep, err := e.client.AppsV1().Deployments(ns).Get(ctx, "shop", metav1.GetOptions{})
	require.NoError(b, err)
	type seen struct {
		at  time.Time
		err error
	}
	complete := make(chan seen, 1)
	go func() {
		// greenlight changes the image with one write: the next generation.
		at, err := testcluster.WatchRolloutComplete(ctx, e.client, ns, "shop", dep.Generation+1)
		complete <- seen{at, err}
	}()
	gl, err := startWatched(ctx, e.dir, []string{"HOME=" + e.dir}, bins.greenlight, "deploy",
		"--environment=staging", "--kubeconfig="+e.kubeconfig, "--namespace="+ns, "--deployment=shop",
		"--image="+image, "--strategy=rolling", "--url="+e.c.ServiceURL(ns, "shop"), "--monitor-duration=0",
		"--timeout=60", "--rollout-timeout=2m", "--deployment-id=detect-"+strings.TrimPrefix(image, "sampleapp:"))
	require.NoError(b, err)
	_, err = gl.until(greenlightApplied)
	require.NoError(b, err, "greenlight deploy")
	kc, err := startWatched(ctx, e.dir, []string{"HOME=" + e.dir}, bins.kubectl, "rollout", "status", "deployment/shop", "-n", ns,
		"--timeout=2m", "--kubeconfig="+e.kubeconfig, "--cache-dir="+b.TempDir())
	require.NoError(b, err)
	ours, err := gl.until(greenlightWaitEnded)
	require.NoError(b, err, "greenlight deploy")
	theirs, err := kc.until(kubectlWaitEnded)
	require.NoError(b, err, "kubectl rollout status")
	require.NoError(b, gl.finish(), "greenlight deploy")
	require.NoError(b, kc.finish(), "kubectl rollout status")
	s := <-complete
	require.NoError(b, s.err)
	return ms(ours.Sub(s.at)), ms(theirs.Sub(s.at))
}
