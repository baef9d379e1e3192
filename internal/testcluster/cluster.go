// Package testcluster starts a real Kubernetes control plane for tests and
// for the sandbox: etcd, kube-apiserver and kube-controller-manager built from
// the Go module proxy and run as child processes, a node that runs every pod
// as an in-process sample app (public apps as processes) and serves their logs
// and port-forwards to them as a kubelet does, an egress proxy through which
// the API server's service proxy, pods/log and pods/portforward reach those
// apps and that kubelet, and a router that sends HTTP traffic to
// the ready pods a Service selects.
package testcluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// Controllers run by kube-controller-manager: what deployments, services,
// namespace cleanup and the other workload kinds (with their autoscaler) need.
var controllers = []string{"deployment", "replicaset", "endpointslice", "garbagecollector", "namespace", "horizontalpodautoscaling", "job", "cronjob", "statefulset", "daemonset"}

// Options configure a cluster.
type Options struct {
	// Log receives progress lines (the one-time build, start and stop).
	Log io.Writer
	// RouterAddr is where the router listens; default 127.0.0.1 on a free port.
	RouterAddr string
	// KubebinDir and CacheDir override where the binaries' module and build
	// cache are; empty finds them.
	KubebinDir, CacheDir string
	// RealNode runs pods as containers on a real node (kubelet, containerd,
	// runc, a CNI bridge, kube-proxy and kube-scheduler) instead of the node
	// stand-in. It needs root; one real node runs per machine at a time, so
	// a second cluster asking for one waits.
	RealNode bool
	// OIDC starts a GitHub-style OIDC issuer that kube-apiserver trusts
	// through --authentication-config; see Cluster.OIDC.
	OIDC bool
}

// Cluster is a running test cluster.
type Cluster struct {
	workDir    string
	bins       Binaries
	env        *envtest.Environment
	kcm        *exec.Cmd
	kcmDone    chan error
	config     *rest.Config
	kubeconfig []byte
	client     kubernetes.Interface
	addrs      *addressBook
	egress     *egressProxy
	node       *node
	real       *realNode
	router     *Router
	// strictRouter routes like kube-proxy; see StrictServiceURL.
	strictRouter *Router
	cancel       context.CancelFunc
	log          io.Writer
	// oidc and oidcAudience are set with Options.OIDC.
	oidc         *OIDCIssuer
	oidcAudience string
}

// quietControllerRuntime gives controller-runtime, through which the
// control plane starts, a logger once: without one it prints a stack
// trace ("log.SetLogger(...) was never called") into every test's output
// and the sandbox's. Its failures reach Start as errors, so its log is
// dropped.
var quietControllerRuntime sync.Once

// Start builds the binaries if needed and starts a cluster. The caller must
// Stop it; Stop leaves no child process behind.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	quietControllerRuntime.Do(func() { ctrllog.SetLogger(logr.Discard()) })
	if opts.RealNode && os.Geteuid() != 0 {
		return nil, ErrRealNodeNeedsRoot
	}
	reapOrphans(log)
	bins, err := EnsureBinaries(opts.KubebinDir, opts.CacheDir, log)
	if err != nil {
		return nil, err
	}
	var nodeBins NodeBinaries
	var apps Apps
	if opts.RealNode {
		if nodeBins, err = EnsureNodeBinaries(opts.KubebinDir, opts.CacheDir, log); err != nil {
			return nil, err
		}
		if apps, err = EnsureApps(opts.CacheDir, log); err != nil {
			return nil, err
		}
	}
	// Short path: the egress socket must fit in a unix socket address.
	workDir, err := os.MkdirTemp("", "glc-")
	if err != nil {
		return nil, fmt.Errorf("create cluster directory: %w", err)
	}
	if err := os.WriteFile(filepath.Join(workDir, ownerFile), fmt.Appendf(nil, "%d", os.Getpid()), 0o644); err != nil {
		return nil, fmt.Errorf("record cluster owner: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	c := &Cluster{workDir: workDir, bins: bins, addrs: newAddressBook(), cancel: cancel, log: log}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	started := time.Now()

	if opts.RealNode {
		if err := c.startRealNodeCluster(runCtx, opts, nodeBins, apps); err != nil {
			return nil, err
		}
		fmt.Fprintf(log, "testcluster: started with a real node in %s (API server %s, router %s)\n", time.Since(started).Round(time.Millisecond), c.config.Host, c.router.URL())
		return c, ctx.Err()
	}
	socket := filepath.Join(workDir, "egress.sock")
	if c.egress, err = startEgressProxy(socket, c.addrs); err != nil {
		return nil, err
	}
	egressFile := filepath.Join(workDir, "egress-selector.yaml")
	if err := os.WriteFile(egressFile, []byte(egressConfig(socket)), 0o644); err != nil {
		return nil, fmt.Errorf("write egress selector configuration: %w", err)
	}
	if err := c.startControlPlane(egressFile, nil, opts.OIDC); err != nil {
		return nil, err
	}
	if err := c.startControllerManager(controllers); err != nil {
		return nil, err
	}
	if c.node, err = startNode(runCtx, c.client, c.addrs, log); err != nil {
		return nil, err
	}
	if c.router, err = startRouter(runCtx, opts.RouterAddr, c.client, c.addrs, RouterOptions{}); err != nil {
		return nil, err
	}
	// The strict router is no kinder than kube-proxy: one endpoint per
	// request and endpoint changes applied a second late.
	if c.strictRouter, err = startRouter(runCtx, "", c.client, c.addrs, RouterOptions{NoRetry: true, SyncDelay: KubeProxySyncDelay}); err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "testcluster: started in %s (API server %s, router %s)\n", time.Since(started).Round(time.Millisecond), c.config.Host, c.router.URL())
	return c, ctx.Err()
}

func (c *Cluster) startControlPlane(egressFile string, extraArgs map[string]string, oidc bool) error {
	apiLog, err := os.Create(filepath.Join(c.workDir, "kube-apiserver.log"))
	if err != nil {
		return fmt.Errorf("create API server log: %w", err)
	}
	etcdLog, err := os.Create(filepath.Join(c.workDir, "etcd.log"))
	if err != nil {
		return fmt.Errorf("create etcd log: %w", err)
	}
	api := &envtest.APIServer{Path: c.bins.APIServer, CertDir: filepath.Join(c.workDir, "apiserver"), Out: apiLog, Err: apiLog}
	api.Configure().Set("profiling", "false")
	if egressFile != "" {
		api.Configure().Set("egress-selector-config-file", egressFile)
		// The stand-in node's hostname resolves nowhere: pods/log dials its
		// InternalIP, which the egress proxy translates.
		api.Configure().Set("kubelet-preferred-address-types", "InternalIP")
	}
	for k, v := range extraArgs {
		api.Configure().Set(k, v)
	}
	if oidc {
		if err := c.configureOIDC(api); err != nil {
			return err
		}
	}
	c.env = &envtest.Environment{
		BinaryAssetsDirectory:    c.bins.Dir,
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  20 * time.Second,
		ControlPlane: envtest.ControlPlane{
			APIServer:   api,
			Etcd:        &envtest.Etcd{Path: c.bins.Etcd, DataDir: filepath.Join(c.workDir, "etcd"), Out: etcdLog, Err: etcdLog},
			KubectlPath: c.bins.Kubectl,
		},
	}
	for _, d := range []string{api.CertDir, c.env.ControlPlane.Etcd.DataDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	if _, err := c.env.Start(); err != nil {
		return fmt.Errorf("start etcd and kube-apiserver: %w\n%s", err, c.logTail("kube-apiserver.log", "etcd.log"))
	}
	admin, err := c.env.AddUser(envtest.User{Name: "greenlight-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("create admin user: %w", err)
	}
	c.config = admin.Config()
	c.config.QPS, c.config.Burst = 100, 200
	if c.kubeconfig, err = admin.KubeConfig(); err != nil {
		return fmt.Errorf("write admin kubeconfig: %w", err)
	}
	if c.client, err = kubernetes.NewForConfig(c.config); err != nil {
		return fmt.Errorf("create admin client: %w", err)
	}
	return nil
}

func (c *Cluster) startControllerManager(controllers []string) error {
	kcmUser, err := c.env.AddUser(envtest.User{Name: "system:kube-controller-manager", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("create controller manager user: %w", err)
	}
	kubeconfig, err := kcmUser.KubeConfig()
	if err != nil {
		return fmt.Errorf("write controller manager kubeconfig: %w", err)
	}
	kubeconfigPath := filepath.Join(c.workDir, "kube-controller-manager.kubeconfig")
	if err := os.WriteFile(kubeconfigPath, kubeconfig, 0o600); err != nil {
		return fmt.Errorf("write controller manager kubeconfig: %w", err)
	}
	logFile, err := os.Create(filepath.Join(c.workDir, "kube-controller-manager.log"))
	if err != nil {
		return fmt.Errorf("create controller manager log: %w", err)
	}
	cmd := exec.Command(c.bins.ControllerManager,
		"--kubeconfig="+kubeconfigPath,
		"--controllers="+strings.Join(controllers, ","),
		"--leader-elect=false",
		"--secure-port=0",
		"--use-service-account-credentials=false",
		"--kube-api-qps=200", "--kube-api-burst=400",
		"--concurrent-deployment-syncs=10", "--concurrent-replicaset-syncs=10",
		"--concurrent-service-endpoint-syncs=10",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, and killed with us if this process dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start kube-controller-manager: %w", err)
	}
	c.kcm = cmd
	c.kcmDone = make(chan error, 1)
	go func() { c.kcmDone <- cmd.Wait(); logFile.Close() }()
	select {
	case err := <-c.kcmDone:
		c.kcm = nil
		return fmt.Errorf("kube-controller-manager exited at start: %v\n%s", err, c.logTail("kube-controller-manager.log"))
	case <-time.After(500 * time.Millisecond):
		return nil
	}
}

// Stop stops everything Start started and removes the cluster's files.
func (c *Cluster) Stop() {
	c.cancel()
	if c.router != nil {
		c.router.close()
	}
	if c.strictRouter != nil {
		c.strictRouter.close()
	}
	if c.real != nil {
		c.real.stop(context.Background())
		c.real = nil
	}
	if c.node != nil {
		c.node.wait()
	}
	if c.kcm != nil {
		_ = c.kcm.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.kcmDone:
		case <-time.After(5 * time.Second):
			_ = c.kcm.Process.Kill()
			<-c.kcmDone
		}
		c.kcm = nil
	}
	if c.env != nil {
		if err := c.env.Stop(); err != nil {
			fmt.Fprintf(c.log, "testcluster: stop control plane: %v\n", err)
		}
	}
	if c.egress != nil {
		c.egress.close()
	}
	if c.oidc != nil {
		c.oidc.Close()
	}
	killProcessesUsing(c.workDir)
	_ = os.RemoveAll(c.workDir)
	fmt.Fprintln(c.log, "testcluster: stopped")
}

// Config is a REST config of a cluster administrator.
func (c *Cluster) Config() *rest.Config { return rest.CopyConfig(c.config) }

// Kubeconfig is a kubeconfig file of a cluster administrator, with its
// credentials embedded.
func (c *Cluster) Kubeconfig() []byte { return bytes.Clone(c.kubeconfig) }

// Client is a clientset of a cluster administrator.
func (c *Cluster) Client() kubernetes.Interface { return c.client }

// AddUser creates a user in the given groups and returns its kubeconfig,
// for tests of what a user without some permission sees.
func (c *Cluster) AddUser(name string, groups ...string) ([]byte, error) {
	u, err := c.env.AddUser(envtest.User{Name: name, Groups: groups}, nil)
	if err != nil {
		return nil, fmt.Errorf("add user %s: %w", name, err)
	}
	return u.KubeConfig()
}

// RouterURL is the base URL of the router.
func (c *Cluster) RouterURL() string { return c.router.URL() }

// KubeProxySyncDelay is kube-proxy's default minSyncPeriod: it programs an
// EndpointSlice change up to this long after the API server has it.
const KubeProxySyncDelay = time.Second

// StrictServiceURL is the public URL of a Service through a router that
// never retries a failed connection on another endpoint and learns every
// endpoint change KubeProxySyncDelay late, as kube-proxy does.
func (c *Cluster) StrictServiceURL(namespace, service string) string {
	return c.strictRouter.URL() + "/" + namespace + "/" + service
}

// ServiceURL is the public URL of a Service through the router.
func (c *Cluster) ServiceURL(namespace, service string) string {
	return c.router.URL() + "/" + namespace + "/" + service
}

// Binaries are the control-plane programs the cluster runs, kubectl included.
func (c *Cluster) Binaries() Binaries { return c.bins }

// WorkDir holds the cluster's certificates, data and logs while it runs.
func (c *Cluster) WorkDir() string { return c.workDir }

// logTail returns the last lines of the named logs, for start failures.
func (c *Cluster) logTail(names ...string) string {
	var b strings.Builder
	for _, name := range names {
		data, err := os.ReadFile(filepath.Join(c.workDir, name))
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		lines = lines[max(0, len(lines)-20):]
		fmt.Fprintf(&b, "--- last lines of %s:\n%s\n", name, strings.Join(lines, "\n"))
	}
	return b.String()
}
