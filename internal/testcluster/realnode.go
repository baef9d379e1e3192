package testcluster

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// ErrRealNodeNeedsRoot is returned by Start when a real node is asked for
// without root: it needs a bridge, routes, iptables, mounts and cgroups.
var ErrRealNodeNeedsRoot = errors.New("the real node needs root (bridge, routes, iptables, mounts and cgroups); run as root or use the node stand-in")

// realNodeStateDir holds the machine-wide lock and the record of the running
// node, so the next start can clean up after a run that was killed.
const realNodeStateDir = "/run/greenlight-realnode"

// realNodeState is what a run records before it changes the machine; a
// later start removes exactly what it names.
type realNodeState struct {
	OwnerPID   int            `json:"ownerPID"`
	Dir        string         `json:"dir"`
	CgroupRoot string         `json:"cgroupRoot"`
	Bridge     string         `json:"bridge"`
	KubeProxy  string         `json:"kubeProxy"`
	Processes  map[string]int `json:"processes"`
}

// RealNodeInfo describes a running real node, for tests that assert what
// it leaves behind.
type RealNodeInfo struct {
	Dir        string
	CgroupRoot string
	Bridge     string
	Registry   string
}

// realNode is a kubelet, containerd, kube-proxy and kube-scheduler on this
// machine, started as child processes.
type realNode struct {
	layout   realNodeLayout
	state    realNodeState
	bins     NodeBinaries
	registry *imageRegistry
	procs    []*childProcess
	unlock   func()
	log      io.Writer
	client   kubernetes.Interface
}

// childProcess is one program of the node and its log.
type childProcess struct {
	name string
	cmd  *exec.Cmd
	done chan error
}

func (n *realNode) saveState() error {
	data, _ := json.MarshalIndent(n.state, "", "  ")
	if err := os.WriteFile(filepath.Join(realNodeStateDir, "state.json"), data, 0o644); err != nil {
		return fmt.Errorf("record the real node's state: %w", err)
	}
	return nil
}

// startRealNode takes the machine's real-node lock, cleans up what a killed
// run left, prepares the network, images and containerd, and starts the
// node's programs against the cluster's API server.
func startRealNode(ctx context.Context, c *Cluster, bins NodeBinaries, apps Apps) (_ *realNode, err error) {
	log := c.log
	if err := os.MkdirAll(realNodeStateDir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", realNodeStateDir, err)
	}
	waitStart := time.Now()
	unlock, err := lockFile(filepath.Join(realNodeStateDir, "lock"))
	if err != nil {
		return nil, err
	}
	if d := time.Since(waitStart); d > time.Second {
		fmt.Fprintf(log, "testcluster: waited %s for the machine's real node to be free\n", d.Round(time.Second))
	}
	if err := cleanupRecordedRealNode(log); err != nil {
		unlock()
		return nil, err
	}
	dir, err := os.MkdirTemp("", "glrn-")
	if err != nil {
		unlock()
		return nil, fmt.Errorf("create the real node's directory: %w", err)
	}
	n := &realNode{
		layout: realNodeLayout{dir: dir, cgroupRoot: "/" + filepath.Base(dir)},
		bins:   bins,
		unlock: unlock,
		log:    log,
		client: c.client,
	}
	n.state = realNodeState{OwnerPID: os.Getpid(), Dir: dir, CgroupRoot: n.layout.cgroupRoot, Bridge: realNodeBridge, KubeProxy: bins.KubeProxy, Processes: map[string]int{}}
	defer func() {
		if err != nil {
			n.stop(context.Background())
		}
	}()
	if err := n.saveState(); err != nil {
		return nil, err
	}
	if err := n.setupNetwork(); err != nil {
		return nil, err
	}
	if err := n.setupCgroups(); err != nil {
		return nil, err
	}
	images, err := n.buildImages(apps)
	if err != nil {
		return nil, err
	}
	if n.registry, err = startImageRegistry(images); err != nil {
		return nil, err
	}
	if err := n.writeConfigs(); err != nil {
		return nil, err
	}
	if err := n.startContainerd(ctx); err != nil {
		return nil, err
	}
	if err := n.importImages(images); err != nil {
		return nil, err
	}
	if err := n.startKubeComponents(c); err != nil {
		return nil, err
	}
	if err := n.waitNodeReady(ctx); err != nil {
		return nil, err
	}
	return n, nil
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// realNodeBridgeMAC is the node bridge's locally administered address.
const realNodeBridgeMAC = "02:67:6c:72:6e:30"

// setupNetwork makes the plan's range local, then creates the node's bridge
// with the node IP and routes only the node's sub-ranges to it.
func (n *realNode) setupNetwork() error {
	if err := installUnreachablePlan(); err != nil {
		return err
	}
	steps := [][]string{
		// A fixed address: a bridge without one takes the lowest of its
		// ports', so each new pod's veth could change the gateway's MAC
		// under the running pods and stall their replies until ARP
		// notices.
		{"link", "add", realNodeBridge, "address", realNodeBridgeMAC, "type", "bridge"},
		{"addr", "add", nodeIP() + "/" + strconv.Itoa(realNodePods.Bits()), "dev", realNodeBridge},
		{"link", "set", realNodeBridge, "up"},
		{"route", "replace", realNodeServices.String(), "dev", realNodeBridge, "src", nodeIP()},
	}
	for _, s := range steps {
		if err := run("ip", s...); err != nil {
			return fmt.Errorf("set up the real node's network: %w", err)
		}
	}
	return nil
}

// cgroupControllers lists the cgroup hierarchies mounted under
// /sys/fs/cgroup (v1 controllers, the named systemd one, the empty v2).
func cgroupControllers() []string {
	entries, _ := os.ReadDir("/sys/fs/cgroup")
	var out []string
	for _, e := range entries {
		p := filepath.Join("/sys/fs/cgroup", e.Name())
		if _, err := os.Stat(filepath.Join(p, "cgroup.procs")); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// setupCgroups creates the kubelet's cgroup root under every hierarchy,
// copying cpuset's cpus and mems so tasks may join it.
func (n *realNode) setupCgroups() error {
	for _, ctrl := range cgroupControllers() {
		dir := filepath.Join(ctrl, n.layout.cgroupRoot)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create cgroup %s: %w", dir, err)
		}
		if filepath.Base(ctrl) == "cpuset" {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				data, err := os.ReadFile(filepath.Join(ctrl, f))
				if err != nil {
					return fmt.Errorf("read %s: %w", f, err)
				}
				if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
					return fmt.Errorf("set %s of %s: %w", f, dir, err)
				}
			}
		}
	}
	return nil
}

func (n *realNode) buildImages(apps Apps) ([]*builtImage, error) {
	dir := n.layout.path("images")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	var images []*builtImage
	for _, spec := range specImages(apps, n.bins.Pause) {
		img, err := buildImage(spec, dir)
		if err != nil {
			return nil, err
		}
		images = append(images, img)
	}
	return images, nil
}

func (n *realNode) writeConfigs() error {
	files := map[string]string{
		n.layout.path("containerd", "config.toml"):                     containerdConfig(n.layout),
		filepath.Join(n.layout.cniConfDir(), "10-greenlight.conflist"): cniConfList(n.layout),
		n.layout.path("kubelet.yaml"):                                  kubeletConfig(n.layout),
	}
	for _, host := range registryHostNames {
		files[filepath.Join(n.layout.registryHosts(), host, "hosts.toml")] = registryHostsTOML(n.registry.Addr())
	}
	for p, content := range files {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("create %s: %w", filepath.Dir(p), err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
	}
	for _, d := range []string{n.layout.kubeletRoot(), n.layout.path("pod-logs"), n.layout.path("volume-plugins"), n.layout.cniDataDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	return nil
}

// start runs one program of the node with its log in the run's directory,
// killed with this process, and records its PID.
func (n *realNode) start(name, bin string, args ...string) (*childProcess, error) {
	logFile, err := os.Create(n.layout.path(name + ".log"))
	if err != nil {
		return nil, fmt.Errorf("create the %s log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &childProcess{name: name, cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait(); logFile.Close() }()
	n.procs = append(n.procs, p)
	n.state.Processes[name] = cmd.Process.Pid
	if err := n.saveState(); err != nil {
		return nil, err
	}
	return p, nil
}

func (n *realNode) logTail(name string) string {
	data, _ := os.ReadFile(n.layout.path(name + ".log"))
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	return fmt.Sprintf("--- last lines of %s.log:\n%s", name, strings.Join(lines[max(0, len(lines)-15):], "\n"))
}

func (n *realNode) startContainerd(ctx context.Context) error {
	bin, err := exec.LookPath("containerd")
	if err != nil {
		return fmt.Errorf("the real node needs containerd, runc and the CNI plugins (apt-get install containerd runc containernetworking-plugins): %w", err)
	}
	p, err := n.start("containerd", bin, "--config", n.layout.path("containerd", "config.toml"))
	if err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("unix", n.layout.containerdSocket()); err == nil {
			c.Close()
			return nil
		}
		select {
		case err := <-p.done:
			p.done <- err
			return fmt.Errorf("containerd exited at start: %v\n%s", err, n.logTail("containerd"))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("containerd did not open its socket within 30s\n%s", n.logTail("containerd"))
}

// importImages imports the images into containerd's k8s.io namespace under
// their usual names; other tags of them are pulled from the registry.
func (n *realNode) importImages(images []*builtImage) error {
	refs := map[string]string{
		"podinfo":    "ghcr.io/stefanprodan/podinfo:6.9.2",
		"go-httpbin": "ghcr.io/mccutchen/go-httpbin:latest",
		"pause":      pauseImage,
	}
	for _, img := range images {
		ref, ok := refs[img.repo]
		if !ok {
			continue
		}
		archive := n.layout.path("images", img.repo+".oci.tar")
		if err := img.writeOCILayout(ref, archive); err != nil {
			return err
		}
		if err := run("ctr", "--address", n.layout.containerdSocket(), "-n", "k8s.io", "images", "import", archive); err != nil {
			return fmt.Errorf("import the %s image: %w", img.repo, err)
		}
	}
	return nil
}

// addKubeconfig writes a kubeconfig of a new user in the given groups.
func (n *realNode) addKubeconfig(c *Cluster, name, user string, groups ...string) (string, error) {
	u, err := c.env.AddUser(envtest.User{Name: user, Groups: groups}, nil)
	if err != nil {
		return "", fmt.Errorf("create user %s: %w", user, err)
	}
	data, err := u.KubeConfig()
	if err != nil {
		return "", fmt.Errorf("write the %s kubeconfig: %w", name, err)
	}
	p := n.layout.path(name + ".kubeconfig")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		return "", fmt.Errorf("write the %s kubeconfig: %w", name, err)
	}
	return p, nil
}

func (n *realNode) startKubeComponents(c *Cluster) error {
	schedKC, err := n.addKubeconfig(c, "kube-scheduler", "system:kube-scheduler", "system:masters")
	if err != nil {
		return err
	}
	if _, err := n.start("kube-scheduler", n.bins.KubeScheduler, "--kubeconfig="+schedKC, "--leader-elect=false", "--secure-port=0", "--kube-api-qps=100", "--kube-api-burst=200"); err != nil {
		return err
	}
	kubeletKC, err := n.addKubeconfig(c, "kubelet", "system:node:"+realNodeName, "system:nodes", "system:masters")
	if err != nil {
		return err
	}
	if _, err := n.start("kubelet", n.bins.Kubelet,
		"--config="+n.layout.path("kubelet.yaml"),
		"--kubeconfig="+kubeletKC,
		"--root-dir="+n.layout.kubeletRoot(),
		"--hostname-override="+realNodeName,
		"--node-ip="+nodeIP(),
	); err != nil {
		return err
	}
	proxyKC, err := n.addKubeconfig(c, "kube-proxy", "system:kube-proxy", "system:masters")
	if err != nil {
		return err
	}
	proxyConfig := n.layout.path("kube-proxy.yaml")
	if err := os.WriteFile(proxyConfig, []byte(kubeProxyConfig(proxyKC)), 0o644); err != nil {
		return fmt.Errorf("write the kube-proxy configuration: %w", err)
	}
	_, err = n.start("kube-proxy", n.bins.KubeProxy, "--config="+proxyConfig)
	return err
}

func (n *realNode) waitNodeReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		node, err := n.client.CoreV1().Nodes().Get(ctx, realNodeName, metav1.GetOptions{})
		if err == nil {
			for _, cond := range node.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
					return nil
				}
			}
		}
		for _, p := range n.procs {
			select {
			case err := <-p.done:
				p.done <- err
				return fmt.Errorf("%s exited while the node started: %v\n%s", p.name, err, n.logTail(p.name))
			default:
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s not Ready: %w\n%s\n%s", realNodeName, ctx.Err(), n.logTail("kubelet"), n.logTail("containerd"))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// deleteWorkloads deletes every pod so the kubelet stops its containers and
// CNI releases their addresses, waiting up to the deadline.
func (n *realNode) deleteWorkloads(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	nss, err := n.client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	zero := int64(0)
	for _, ns := range nss.Items {
		_ = n.client.AppsV1().Deployments(ns.Name).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
		_ = n.client.AppsV1().ReplicaSets(ns.Name).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
		_ = n.client.CoreV1().Pods(ns.Name).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{})
	}
	for ctx.Err() == nil {
		pods, err := n.client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		if err != nil || len(pods.Items) == 0 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// stop deletes the workloads, stops the node's programs in order and then
// removes everything the run recorded.
func (n *realNode) stop(ctx context.Context) {
	if n.client != nil && n.state.Processes["kubelet"] != 0 {
		n.deleteWorkloads(ctx)
	}
	order := []string{"kube-proxy", "kubelet", "kube-scheduler", "containerd"}
	for _, name := range order {
		for _, p := range n.procs {
			if p.name != name {
				continue
			}
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				_ = p.cmd.Process.Kill()
				<-p.done
			}
		}
	}
	n.procs = nil
	if n.registry != nil {
		n.registry.close()
	}
	cleanupRealNode(n.state, n.log)
	_ = os.Remove(filepath.Join(realNodeStateDir, "state.json"))
	if n.unlock != nil {
		n.unlock()
		n.unlock = nil
	}
}

// cleanupRecordedRealNode removes what a run recorded in the state file and
// did not remove itself (it was killed). The caller holds the lock, so the
// recorded run is not running.
func cleanupRecordedRealNode(log io.Writer) error {
	data, err := os.ReadFile(filepath.Join(realNodeStateDir, "state.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the recorded real node state: %w", err)
	}
	var st realNodeState
	if err := json.Unmarshal(data, &st); err != nil || st.Dir == "" || !strings.HasPrefix(filepath.Base(st.Dir), "glrn-") {
		fmt.Fprintf(log, "testcluster: ignoring an unreadable real node record: %v\n", err)
		return os.Remove(filepath.Join(realNodeStateDir, "state.json"))
	}
	fmt.Fprintf(log, "testcluster: cleaning up the real node of a killed run (process %d, %s)\n", st.OwnerPID, st.Dir)
	cleanupRealNode(st, log)
	return os.Remove(filepath.Join(realNodeStateDir, "state.json"))
}

// cleanupRealNode removes, in order, the processes, containers, mounts,
// iptables chains, bridge, cgroups, conntrack entries and files of a run,
// found from its record: its PIDs, directory and cgroup.
func cleanupRealNode(st realNodeState, log io.Writer) {
	// Processes: the node's programs (their command lines name the run's
	// directory, which guards against a reused PID), the shims (which name
	// the run's containerd socket), then every task in the run's cgroups.
	for _, pid := range st.Processes {
		if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && strings.Contains(string(cmdline), st.Dir) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	killProcessesUsing(st.Dir)
	for i := 0; i < 50; i++ {
		if killCgroupTasks(st.CgroupRoot) == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Mounts under the run's directory, deepest first (the kubelet
	// bind-mounts its root onto itself; sandboxes' netns and rootfs).
	for _, m := range mountsUnder(st.Dir) {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
			fmt.Fprintf(log, "testcluster: unmount %s: %v\n", m, err)
		}
	}
	// iptables: kube-proxy's own cleanup, then the kubelet's and CNI's chains.
	if st.KubeProxy != "" {
		if _, err := os.Stat(st.KubeProxy); err == nil {
			_ = exec.Command(st.KubeProxy, "--cleanup").Run()
		}
	}
	deleteNodeChains()
	_ = run("ip", "link", "del", st.Bridge)
	for _, ctrl := range cgroupControllers() {
		removeCgroupTree(filepath.Join(ctrl, st.CgroupRoot))
	}
	_ = exec.Command("conntrack", "-D", "-d", planNetwork.String()).Run()
	_ = exec.Command("conntrack", "-D", "-s", planNetwork.String()).Run()
	removeCNICache(st.Dir)
	removeShimSockets(st.Dir)
	removeContainerLogLinks(st.Dir)
	if err := os.RemoveAll(st.Dir); err != nil {
		fmt.Fprintf(log, "testcluster: remove %s: %v\n", st.Dir, err)
	}
}

// killCgroupTasks kills every task in the cgroup tree and returns how many
// it found.
func killCgroupTasks(root string) int {
	if root == "" || root == "/" {
		return 0
	}
	found := 0
	for _, ctrl := range cgroupControllers() {
		_ = filepath.WalkDir(filepath.Join(ctrl, root), func(p string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			data, _ := os.ReadFile(filepath.Join(p, "cgroup.procs"))
			for _, f := range strings.Fields(string(data)) {
				if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
					_ = syscall.Kill(pid, syscall.SIGKILL)
					found++
				}
			}
			return nil
		})
	}
	return found
}

// removeCgroupTree removes a cgroup and its children, deepest first.
func removeCgroupTree(dir string) {
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = syscall.Rmdir(dirs[i])
	}
}

// mountsUnder lists the mount points at or under dir, deepest first.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	// Deepest first; among equals, the later mount (on top) first.
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	sort.SliceStable(out, func(i, j int) bool { return strings.Count(out[i], "/") > strings.Count(out[j], "/") })
	return out
}

func unescapeMount(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}

// ownChain reports whether an iptables chain is one the kubelet or a CNI
// plugin of the node creates.
func ownChain(name string) bool {
	switch name {
	case "KUBE-FIREWALL", "KUBE-KUBELET-CANARY", "KUBE-IPTABLES-HINT":
		return true
	}
	return strings.HasPrefix(name, "CNI-")
}

// deleteNodeChains removes the kubelet's and CNI's chains (IPv4 and IPv6):
// every rule that jumps to one (jumps can be duplicated, and carry
// comments), then the chains themselves.
func deleteNodeChains() {
	for _, tool := range []string{"iptables", "ip6tables"} {
		if _, err := exec.LookPath(tool); err != nil {
			continue
		}
		for _, table := range []string{"filter", "nat", "mangle"} {
			out, err := exec.Command(tool+"-save", "-t", table).Output()
			if err != nil {
				continue
			}
			var chains []string
			for _, line := range strings.Split(string(out), "\n") {
				if strings.HasPrefix(line, ":") {
					if name := strings.Fields(line[1:])[0]; ownChain(name) {
						chains = append(chains, name)
					}
					continue
				}
				args := splitRule(line)
				if len(args) < 2 || args[0] != "-A" || ownChain(args[1]) {
					continue
				}
				if jump := ruleJump(args); ownChain(jump) {
					args[0] = "-D"
					_ = exec.Command(tool, append([]string{"-w", "-t", table}, args...)...).Run()
				}
			}
			for _, c := range chains {
				_ = exec.Command(tool, "-w", "-t", table, "-F", c).Run()
			}
			for _, c := range chains {
				_ = exec.Command(tool, "-w", "-t", table, "-X", c).Run()
			}
		}
	}
}

// ruleJump returns the target of an iptables-save rule.
func ruleJump(args []string) string {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "-j" || args[i] == "-g" {
			return args[i+1]
		}
	}
	return ""
}

// splitRule splits an iptables-save rule into arguments, keeping quoted
// comments whole.
func splitRule(line string) []string {
	var args []string
	var cur strings.Builder
	quoted, has := false, false
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case ch == '\\' && quoted && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
		case ch == '"':
			quoted, has = !quoted, true
		case ch == ' ' && !quoted:
			if has {
				args = append(args, cur.String())
				cur.Reset()
				has = false
			}
		default:
			cur.WriteByte(ch)
			has = true
		}
	}
	if has {
		args = append(args, cur.String())
	}
	return args
}

// removeCNICache removes the results libcni caches outside the run's
// directory for the run's sandboxes (their entries name its netns paths).
func removeCNICache(dir string) {
	files, _ := filepath.Glob("/var/lib/cni/results/*")
	for _, f := range files {
		if data, err := os.ReadFile(f); err == nil && strings.Contains(string(data), dir+"/") {
			_ = os.Remove(f)
		}
	}
}

// removeShimSockets removes the sockets containerd's runc shims keep in
// /run/containerd/s (outside the run's directory): each task's bundle
// records its shim's address, and a killed shim leaves its socket behind.
func removeShimSockets(dir string) {
	bundles := filepath.Join(realNodeLayout{dir: dir}.containerdState(), "io.containerd.runtime.v2.task", "k8s.io")
	tasks, _ := os.ReadDir(bundles)
	for _, task := range tasks {
		data, err := os.ReadFile(filepath.Join(bundles, task.Name(), "address"))
		if err != nil {
			continue
		}
		socket := strings.TrimPrefix(strings.TrimSpace(string(data)), "unix://")
		if filepath.Dir(socket) == "/run/containerd/s" {
			_ = os.Remove(socket)
		}
	}
}

// removeContainerLogLinks removes the kubelet's links in /var/log/containers
// that point into the run's directory.
func removeContainerLogLinks(dir string) {
	links, _ := filepath.Glob("/var/log/containers/*.log")
	for _, l := range links {
		if target, err := os.Readlink(l); err == nil && strings.HasPrefix(target, dir+"/") {
			_ = os.Remove(l)
		}
	}
}

// Info describes the running node.
func (n *realNode) Info() RealNodeInfo {
	return RealNodeInfo{Dir: n.layout.dir, CgroupRoot: n.layout.cgroupRoot, Bridge: realNodeBridge, Registry: n.registry.Addr()}
}
