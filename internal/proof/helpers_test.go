package proof

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/ebeautything/greenlight/internal/kube"
	"github.com/ebeautything/greenlight/internal/testcluster"
)

var (
	// quick is CI's short proof: fewer repeats of each figure, the same checks.
	quick = flag.Bool("proof.quick", false, "fewer repeated trials (CI's short proof); every check still runs")
	// readme, when set, is the README whose proof table the run rewrites.
	readme = flag.String("proof.readme", "", "rewrite the proof table in this README with the run's figures")
)

var (
	cluster testcluster.Shared
	// book collects the figures of the benchmarks that ran; TestMain prints
	// them as one table when the run ends.
	book figureBook
	// built holds the binaries built once per run.
	built builds
)

func TestMain(m *testing.M) {
	if probes := os.Getenv(monitorChildEnv); probes != "" {
		os.Exit(monitorChild(probes, os.Getenv(monitorChildURLEnv), os.Stdout))
	}
	loadBefore := loadAverage()
	code := m.Run()
	cluster.Stop()
	built.remove()
	book.note("The machine's 1-minute load average was %s when the run started and %s when it ended; timings on a shared machine vary from run to run, request counts and memory barely do.", loadBefore, loadAverage())
	if figs, notes := book.all(); len(figs) > 0 {
		table := Table(book.title(), figs, notes...)
		fmt.Print("\n" + table)
		if *readme != "" {
			if err := rewriteReadme(*readme, table); err != nil {
				fmt.Fprintln(os.Stderr, err)
				code = 1
			}
		}
	}
	os.Exit(code)
}

// rewriteReadme puts table into the README's proof section.
func rewriteReadme(path, table string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("rewrite the README's proof table: %w", err)
	}
	// The title is a heading of its own in the run's output; in the README
	// it is the line that says when and where the figures were taken.
	table = strings.Replace(table, "## ", "", 1)
	out, err := SpliceReadme(string(data), table)
	if err != nil {
		return fmt.Errorf("rewrite %s: %w", path, err)
	}
	return os.WriteFile(path, []byte(out), 0o644)
}

// figureBook gathers figures from the benchmarks in one run.
type figureBook struct {
	mu      sync.Mutex
	figures []Figure
	notes   []string
	server  string
}

func (fb *figureBook) add(figs ...Figure) {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	fb.figures = append(fb.figures, figs...)
}

func (fb *figureBook) note(format string, args ...any) {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	fb.notes = append(fb.notes, fmt.Sprintf(format, args...))
}

func (fb *figureBook) setServer(v string) {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	fb.server = v
}

func (fb *figureBook) all() ([]Figure, []string) {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	return slices.Clone(fb.figures), slices.Clone(fb.notes)
}

func (fb *figureBook) title() string {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	server := fb.server
	if server == "" {
		server = "unknown"
	}
	return fmt.Sprintf("## greenlight against kubectl — one run, %s, %s/%s, %d CPUs, %s, Kubernetes %s (API server and kubectl built from the same module)",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), server)
}

// loadAverage is the 1-minute load average, to tell a busy machine's
// timings from a quiet one's.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	if f := strings.Fields(string(data)); len(f) > 0 {
		return f[0]
	}
	return "unknown"
}

// kubernetesVersion reads the version of k8s.io/kubernetes the test
// cluster's binaries are built from; its binaries carry no version stamp.
func kubernetesVersion() string {
	data, err := os.ReadFile(filepath.Join("..", "testcluster", "kubebin", "go.mod"))
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "k8s.io/kubernetes" && strings.HasPrefix(f[1], "v") {
			return f[1]
		}
	}
	return "unknown"
}

// env is one benchmark's corner of the shared cluster.
type env struct {
	c      *testcluster.Cluster
	client kubernetes.Interface
	dir    string
	// kubeconfig is the administrator's kubeconfig written to a file.
	kubeconfig string
	// namespaces are those this benchmark created.
	namespaces []string
	// kubectlBin is kubectl built as greenlight is (see builds.get): the
	// one every figure times, sizes and counts.
	kubectlBin string
}

func newEnv(b *testing.B) *env {
	b.Helper()
	c := cluster.Get(b)
	dir := b.TempDir()
	kc := filepath.Join(dir, "admin.kubeconfig")
	require.NoError(b, os.WriteFile(kc, c.Kubeconfig(), 0o600))
	book.setServer(kubernetesVersion())
	e := &env{c: c, client: c.Client(), dir: dir, kubeconfig: kc, kubectlBin: built.get(b).kubectl}
	// Registered first, so it runs last: after each namespace's own cleanup
	// asked for its deletion, wait until they are gone, so the next
	// benchmark does not share the machine with their teardown.
	b.Cleanup(func() {
		for _, ns := range e.namespaces {
			e.dropNamespace(ns)
		}
	})
	return e
}

// namespace creates a namespace for one part of a benchmark; it is
// deleted when the benchmark ends, or earlier by dropNamespace.
func (e *env) namespace(b *testing.B) string {
	ns := e.c.NewNamespace(b)
	e.namespaces = append(e.namespaces, ns)
	return ns
}

// dropNamespace deletes a namespace and waits (up to a minute) until its
// pods and the namespace are gone.
func (e *env) dropNamespace(ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := e.client.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return
	}
	_ = wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		_, err := e.client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}

// appOption changes the sample app's Deployment.
type appOption func(*appsv1.Deployment)

// withEnv sets the container's environment, the sample app's knobs.
func withEnv(env ...corev1.EnvVar) appOption {
	return func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Env = env }
}

// appObjects are the Deployment and Service of the sample app: two
// replicas, a readiness probe every second, as the other packages' tests
// deploy it.
func appObjects(name, image string, opts ...appOption) (*appsv1.Deployment, *corev1.Service) {
	labels := map[string]string{"app": name}
	replicas := int32(2)
	dep := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: image,
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
					ReadinessProbe: &corev1.Probe{
						ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/health/ready", Port: intstr.FromString("http")}},
						PeriodSeconds: 1,
					},
				}}},
			},
		},
	}
	for _, o := range opts {
		o(dep)
	}
	svc := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}},
	}
	return dep, svc
}

// createApp creates the sample app with the administrator's client and
// waits until it is rolled out.
func (e *env) createApp(b *testing.B, ns, name, image string, opts ...appOption) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dep, svc := appObjects(name, image, opts...)
	_, err := e.client.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{})
	require.NoError(b, err)
	_, err = e.client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{})
	require.NoError(b, err)
	_, err = kube.WaitRollout(ctx, e.client, ns, name, kube.WaitOptions{})
	require.NoError(b, err)
}

// writeManifest writes the app's Deployment and Service as one JSON List,
// which kubectl apply and greenlight's manifests input both read.
func (e *env) writeManifest(b *testing.B, file, name, image string, opts ...appOption) string {
	b.Helper()
	dep, svc := appObjects(name, image, opts...)
	data, err := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "List", "items": []any{dep, svc}})
	require.NoError(b, err)
	path := filepath.Join(e.dir, file)
	require.NoError(b, os.WriteFile(path, data, 0o644))
	return path
}

// proc is a finished child process.
type proc struct {
	start, end time.Time
	out        string
	err        error
	// maxRSS is the process's peak resident memory in bytes.
	maxRSS int64
}

// run starts a program with only the environment given (plus PATH), waits
// for it and reports its times, output and peak memory.
func run(ctx context.Context, dir string, environ []string, name string, args ...string) proc {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, environ...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	p := proc{start: time.Now()}
	p.err = cmd.Run()
	p.end = time.Now()
	p.out = out.String()
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			p.maxRSS = ru.Maxrss * 1024 // kilobytes on Linux
		}
	}
	return p
}

// kubectl runs the cluster's kubectl with a kubeconfig and a discovery
// cache of its own, cold as in a fresh CI job.
func (e *env) kubectl(ctx context.Context, kubeconfig, cacheDir string, args ...string) proc {
	args = append(args, "--kubeconfig="+kubeconfig, "--cache-dir="+cacheDir)
	return run(ctx, e.dir, []string{"HOME=" + e.dir}, e.kubectlBin, args...)
}

// sameLDFlags strip both binaries alike, as the Dockerfile strips greenlight.
const sameLDFlags = "-s -w"

// builds are the programs the suite builds once per run.
type builds struct {
	once       sync.Once
	dir        string
	greenlight string
	kubectl    string
	err        error
}

// get builds greenlight as the Dockerfile does
// (CGO_ENABLED=0 -trimpath -ldflags='-s -w') and kubectl from the test
// cluster's module with exactly the same flags, so their sizes, start
// times and detection lines compare like for like.
func (bl *builds) get(b *testing.B) *builds {
	b.Helper()
	bl.once.Do(func() {
		bl.dir, bl.err = os.MkdirTemp("", "greenlight-proof-")
		if bl.err != nil {
			return
		}
		build := func(dir, out, pkg string) error {
			cmd := exec.Command("go", "build", "-trimpath", "-ldflags="+sameLDFlags, "-o", out, pkg)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if data, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("build %s: %w\n%s", pkg, err, data)
			}
			return nil
		}
		bl.greenlight = filepath.Join(bl.dir, "greenlight")
		if bl.err = build(".", bl.greenlight, "github.com/ebeautything/greenlight/cmd/greenlight"); bl.err != nil {
			return
		}
		bl.kubectl = filepath.Join(bl.dir, "kubectl")
		bl.err = build(filepath.Join("..", "testcluster", "kubebin"), bl.kubectl, "k8s.io/kubernetes/cmd/kubectl")
	})
	require.NoError(b, bl.err)
	return bl
}

func (bl *builds) remove() {
	if bl.dir != "" {
		_ = os.RemoveAll(bl.dir)
	}
}

// ms converts a duration to milliseconds for the table.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// median is the 50th percentile.
func median(v []float64) float64 { return Percentile(v, 0.5) }

const mib = 1 << 20
