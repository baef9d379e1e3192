package testcluster

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// prometheusPackages is the one program of the prometheus module.
var prometheusPackages = []struct{ pkg, name string }{
	{"github.com/prometheus/prometheus/cmd/prometheus", "prometheus"},
}

// prometheusTags are Prometheus's own build tags (its plugins/ directory)
// that leave every service discovery out but Kubernetes', which the tests
// use: a smaller, faster build of the same server.
const prometheusTags = "remove_all_sd,enable_kubernetes_sd"

// EnsurePrometheus returns the path of the Prometheus server built once
// from the prometheus module into a cache directory keyed by that module's
// go.mod and go.sum and the Go version. Concurrent callers wait on a file
// lock.
func EnsurePrometheus(cacheRoot string, log io.Writer) (string, error) {
	moduleDir, err := findNestedModule("prometheus")
	if err != nil {
		return "", err
	}
	if cacheRoot == "" {
		userCache, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("find a cache directory for Prometheus: %w", err)
		}
		cacheRoot = filepath.Join(userCache, "greenlight")
	}
	key, err := moduleKey(moduleDir)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cacheRoot, "prometheus-"+key)
	bin := filepath.Join(dir, "prometheus")
	if fi, err := os.Stat(bin); err == nil && fi.Size() > 0 {
		return bin, nil
	}
	if err := os.MkdirAll(cacheRoot, 0o755); err != nil {
		return "", fmt.Errorf("create cache directory %s: %w", cacheRoot, err)
	}
	unlock, err := lockFile(filepath.Join(cacheRoot, "prometheus-"+key+".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if fi, err := os.Stat(bin); err == nil && fi.Size() > 0 {
		return bin, nil
	}
	fmt.Fprintf(log, "testcluster: building Prometheus once into %s (a cold build takes many minutes)\n", dir)
	env := []string{"CGO_ENABLED=0", "GOFLAGS=-trimpath -tags=" + prometheusTags}
	if err := buildModuleBinaries(moduleDir, dir, prometheusPackages, env, log); err != nil {
		return "", err
	}
	return bin, nil
}

// PrometheusOptions says what a test Prometheus scrapes.
type PrometheusOptions struct {
	// Namespace is the namespace whose pods are scraped.
	Namespace string
	// Port is the container port name serving the metrics (such as
	// http-metrics); only that port of each pod is a target.
	Port string
	// Path is the metrics path (/metrics when empty).
	Path string
}

// Prometheus is a real Prometheus server on loopback, scraping the pods of
// one namespace of a test cluster every second through Kubernetes service
// discovery, each series carrying its pod's name in the `pod` label.
type Prometheus struct {
	// URL is the base of its HTTP API, such as http://127.0.0.1:41234.
	URL string
	log string
}

// StartPrometheus runs bin (see RunPrometheus) scraping the pods of the
// cluster c, found through Kubernetes service discovery. The stand-in's pod IPs are never dialled, so the scrapes go through
// a loopback proxy (scrape_config proxy_url) that reaches each pod's app
// where the cluster runs it, as the API server's own pod proxy does.
func (c *Cluster) StartPrometheus(t testing.TB, bin string, opts PrometheusOptions) *Prometheus {
	t.Helper()
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, c.Kubeconfig(), 0o600); err != nil {
		t.Fatalf("write the kubeconfig for Prometheus: %v", err)
	}
	proxy := c.startScrapeProxy(t)
	path := opts.Path
	if path == "" {
		path = "/metrics"
	}
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
- job_name: pods
  metrics_path: %q
  proxy_url: %q
  kubernetes_sd_configs:
  - role: pod
    kubeconfig_file: %q
    namespaces:
      names: [%q]
  relabel_configs:
  - source_labels: [__meta_kubernetes_pod_container_port_name]
    regex: %q
    action: keep
  - source_labels: [__meta_kubernetes_namespace]
    target_label: namespace
  - source_labels: [__meta_kubernetes_pod_name]
    target_label: pod
`, path, proxy, kubeconfig, opts.Namespace, opts.Port)
	return RunPrometheus(t, bin, config)
}

// RunPrometheus starts bin on a free loopback port with config (in which
// {{addr}} becomes that host:port) for the test's lifetime: its TSDB in a
// temporary directory, stopped with SIGTERM and reaped when the test ends.
// It returns once the server is ready.
func RunPrometheus(t testing.TB, bin, config string) *Prometheus {
	t.Helper()
	dir := t.TempDir()
	addr := freeLoopbackAddr(t)
	config = strings.ReplaceAll(config, "{{addr}}", addr)
	configFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(configFile, []byte(config), 0o600); err != nil {
		t.Fatalf("write prometheus.yml: %v", err)
	}
	logFile := filepath.Join(dir, "prometheus.log")
	out, err := os.Create(logFile)
	if err != nil {
		t.Fatalf("create the Prometheus log: %v", err)
	}
	cmd := exec.Command(bin,
		"--config.file="+configFile,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		t.Fatalf("start Prometheus: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	p := &Prometheus{URL: "http://" + addr, log: logFile}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		out.Close()
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(p.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-exited:
			t.Fatalf("Prometheus exited before it was ready:\n%s", p.LogTail())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus was not ready within 60s:\n%s", p.LogTail())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// LogTail is the end of the server's log, for a failing test's message.
func (p *Prometheus) LogTail() string {
	data, _ := os.ReadFile(p.log)
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	return string(data)
}

// startScrapeProxy serves plain HTTP forward-proxy requests for pod
// addresses on loopback until the test ends, dialling each pod's app where
// the stand-in runs it; anything but a pod address is refused (502).
func (c *Cluster) startScrapeProxy(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen for the scrape proxy: %v", err)
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	transport := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			ap, err := netip.ParseAddrPort(addr)
			if err != nil || !(podNetwork.Contains(ap.Addr()) || standInNamespaces.Contains(ap.Addr())) {
				return nil, fmt.Errorf("%s is not a pod address in %s or %s", addr, podNetwork, standInNamespaces)
			}
			// A pod in its own network namespace is dialled where it is; an
			// in-process app at the loopback port serving that pod port.
			target, err := c.addrs.forwardTarget(ap.Addr(), int(ap.Port()))
			if err != nil {
				return nil, err
			}
			return dialer.DialContext(ctx, "tcp", target)
		},
		DisableKeepAlives: true,
	}
	srv := &http.Server{
		Handler: &httputil.ReverseProxy{
			Rewrite: func(r *httputil.ProxyRequest) {
				r.Out.URL = r.In.URL // the absolute URL of a proxy request
				r.Out.Host = r.In.URL.Host
			},
			Transport: transport,
			// A scrape of a pod gone is Prometheus's to report (target down).
			ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
				http.Error(w, err.Error(), http.StatusBadGateway)
			},
		},
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		transport.CloseIdleConnections()
	})
	return "http://" + ln.Addr().String()
}

// freeLoopbackAddr picks a free loopback port for a server that cannot be
// handed a listener.
func freeLoopbackAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free loopback port: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// ClosedLoopbackURL is an http:// URL of a loopback port with nothing
// listening: a Prometheus that cannot be reached.
func ClosedLoopbackURL(t testing.TB) string {
	t.Helper()
	return "http://" + freeLoopbackAddr(t)
}
