package testcluster

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Public apps run as real processes, each pod in its own network namespace
// on a bridge, because they listen where their manifests say (podinfo on
// :9898 in every replica) and probe themselves over localhost.
const (
	// sandboxBridge is the host bridge of the per-pod namespaces; shared by
	// every cluster on the machine, removed when its last pod is gone.
	sandboxBridge = "glstand0"
	// sandboxNSPrefix names a pod's namespace after its address's last octet.
	sandboxNSPrefix = "glpod-"
	// sandboxVethPrefix names the host end of a pod's veth pair.
	sandboxVethPrefix = "glv"
)

// sandboxBridgeMAC is the stand-in bridge's locally administered address.
const sandboxBridgeMAC = "02:67:6c:73:74:30"

// sandboxGateway is the stand-in bridge's address: the first usable one of
// its range.
var sandboxGateway = standInNamespaces.Addr().Next()

// sandboxLockDir holds one lock file per pod address (held while a pod uses
// it, released by the kernel when its process dies) and the bridge's lock.
func sandboxLockDir() string { return filepath.Join(os.TempDir(), "greenlight-netns") }

// PublicAppsSupported says why public apps cannot run as pods here, or ""
// when they can: network namespaces need root and the ip command.
func PublicAppsSupported() string {
	if os.Geteuid() != 0 {
		return "public apps run in per-pod network namespaces, which need root"
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return "public apps run in per-pod network namespaces, which need the ip command (iproute2)"
	}
	return ""
}

// sandbox is one pod's network namespace and address.
type sandbox struct {
	name string
	ip   netip.Addr
	veth string
	lock *os.File
}

// sandboxes hands out per-pod network namespaces on the shared bridge.
type sandboxes struct {
	mu    sync.Mutex
	ready bool
	live  map[netip.Addr]*sandbox
}

func newSandboxes() *sandboxes { return &sandboxes{live: map[netip.Addr]*sandbox{}} }

func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// setupHost makes the whole plan range unreachable first, then routes only
// the sandbox range to the bridge (through the bridge's own address). The
// caller holds the bridge lock.
// It runs for every pod: another cluster may have removed the bridge
// while this one had no pod on it.
func (s *sandboxes) setupHost() error {
	// Namespaces a killed run left behind go first.
	reapSandboxes()
	if err := installUnreachablePlan(); err != nil {
		return err
	}
	if _, err := os.Stat("/sys/class/net/" + sandboxBridge); err != nil {
		// A fixed address, so a new pod's veth never changes the
		// gateway's MAC under the running pods.
		if err := ipCmd("link", "add", sandboxBridge, "address", sandboxBridgeMAC, "type", "bridge"); err != nil {
			return err
		}
	}
	if err := ipCmd("addr", "replace", fmt.Sprintf("%s/%d", sandboxGateway, standInNamespaces.Bits()), "dev", sandboxBridge); err != nil {
		return err
	}
	if err := ipCmd("link", "set", sandboxBridge, "up"); err != nil {
		return err
	}
	s.ready = true
	return nil
}

// create gives a pod the lowest free address of the sandbox range no
// process on the machine holds, clearing what a killed run left there.
func (s *sandboxes) create() (*sandbox, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if why := PublicAppsSupported(); why != "" {
		return nil, errors.New(why)
	}
	if err := os.MkdirAll(sandboxLockDir(), 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", sandboxLockDir(), err)
	}
	// Held until the pod's veth is on the bridge, so no other cluster
	// removes the bridge in between.
	unlock, err := lockFile(filepath.Join(sandboxLockDir(), "bridge.lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := s.setupHost(); err != nil {
		return nil, err
	}
	for ip := sandboxGateway.Next(); standInNamespaces.Contains(ip.Next()); ip = ip.Next() {
		if s.live[ip] != nil {
			continue
		}
		octet := strconv.Itoa(int(ip.As4()[3]))
		f, err := os.OpenFile(filepath.Join(sandboxLockDir(), octet+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			return nil, fmt.Errorf("open address lock: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			continue // another cluster's pod has it
		}
		sb := &sandbox{name: sandboxNSPrefix + octet, ip: ip, veth: sandboxVethPrefix + octet, lock: f}
		sb.clear()
		if err := sb.build(); err != nil {
			sb.clear()
			sb.unlock()
			return nil, err
		}
		s.live[ip] = sb
		return sb, nil
	}
	return nil, fmt.Errorf("%w in %s", errNoFreeAddress, standInNamespaces)
}

// release removes a pod's namespace and frees its address.
func (s *sandboxes) release(sb *sandbox) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sb.clear()
	sb.unlock()
	delete(s.live, sb.ip)
}

// close removes every namespace still held and the bridge once no pod of
// any cluster is attached to it.
func (s *sandboxes) close() {
	s.mu.Lock()
	for ip, sb := range s.live {
		sb.clear()
		sb.unlock()
		delete(s.live, ip)
	}
	ready := s.ready
	s.ready = false
	s.mu.Unlock()
	if ready {
		removeSandboxBridge()
	}
}

// removeSandboxBridge deletes the bridge when no veth is attached, and the
// namespaces of killed runs (their address locks are free).
func removeSandboxBridge() {
	unlock, err := lockFile(filepath.Join(sandboxLockDir(), "bridge.lock"))
	if err != nil {
		return
	}
	defer unlock()
	reapSandboxes()
	if ports, err := os.ReadDir("/sys/class/net/" + sandboxBridge + "/brif"); err == nil && len(ports) == 0 {
		_ = ipCmd("link", "del", sandboxBridge)
	}
}

// reapSandboxes removes the namespaces whose address lock nobody holds:
// those a killed test process left behind.
func reapSandboxes() {
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		octet, ok := strings.CutPrefix(e.Name(), sandboxNSPrefix)
		if !ok {
			continue
		}
		f, err := os.OpenFile(filepath.Join(sandboxLockDir(), octet+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			sb := &sandbox{name: e.Name(), veth: sandboxVethPrefix + octet}
			sb.clear()
			_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		}
		f.Close()
	}
}

func (sb *sandbox) build() error {
	steps := [][]string{
		{"netns", "add", sb.name},
		{"link", "add", sb.veth, "type", "veth", "peer", "name", "eth0", "address", podMAC(sb.ip), "netns", sb.name},
		{"link", "set", sb.veth, "master", sandboxBridge, "up"},
		{"-n", sb.name, "addr", "add", fmt.Sprintf("%s/%d", sb.ip, standInNamespaces.Bits()), "dev", "eth0"},
		{"-n", sb.name, "link", "set", "eth0", "up"},
		{"-n", sb.name, "link", "set", "lo", "up"},
	}
	for _, args := range steps {
		if err := ipCmd(args...); err != nil {
			return fmt.Errorf("create the network namespace of pod address %s: %w", sb.ip, err)
		}
	}
	return nil
}

// podMAC is the link address of the pod at ip: 0a:58 and the address's four
// bytes, as kubenet and the early CNI bridge plugin derived it. The host's
// neighbour entry for an address outlives the pod that had it (seconds
// while fresh), and a new pod given the address then keeps answering to it.
func podMAC(ip netip.Addr) string {
	b := ip.As4()
	return fmt.Sprintf("0a:58:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3])
}

// clear kills what still runs in the namespace and removes it and its veth.
func (sb *sandbox) clear() {
	if out, err := exec.Command("ip", "netns", "pids", sb.name).Output(); err == nil {
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	_ = ipCmd("netns", "del", sb.name)
	_ = ipCmd("link", "del", sb.veth)
}

func (sb *sandbox) unlock() {
	if sb.lock != nil {
		_ = syscall.Flock(int(sb.lock.Fd()), syscall.LOCK_UN)
		sb.lock.Close()
		sb.lock = nil
	}
}

// command is a process started inside the pod's namespace.
func (sb *sandbox) command(ctx context.Context, argv []string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", sb.name}, argv...)...)
	// Killed with us if this process dies; pdeathsig survives the exec.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	return cmd
}

// standinFile is one file of a public app's image and where the built binary
// or source directory standing for it lives on this machine.
type standinFile struct {
	path string
	host func(Apps) string
}

// publicImage is what the stand-in knows of a public app's container image:
// its files, entrypoint, command, working directory and PATH.
type publicImage struct {
	files      []standinFile
	entrypoint []string
	cmd        []string
	workingDir string
	path       string
}

// publicImages maps the last element of an image repository to the image,
// as their Dockerfiles build it.
var publicImages = map[string]publicImage{
	// github.com/stefanprodan/podinfo's Dockerfile: alpine, WORKDIR /home/app, CMD ["./podinfo"].
	"podinfo": {
		files: []standinFile{
			{"/home/app/podinfo", func(a Apps) string { return a.Podinfo }},
			{"/home/app/ui", func(a Apps) string { return filepath.Join(a.PodinfoSource, "ui") }},
			{"/usr/local/bin/podcli", func(a Apps) string { return a.Podcli }},
		},
		cmd:        []string{"./podinfo"},
		workingDir: "/home/app",
		path:       "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	},
	// github.com/mccutchen/go-httpbin's Dockerfile: distroless, CMD ["/bin/go-httpbin"].
	"go-httpbin": {
		files:      []standinFile{{"/bin/go-httpbin", func(a Apps) string { return a.Httpbin }}},
		cmd:        []string{"/bin/go-httpbin"},
		workingDir: "/",
		path:       "/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	},
}

// publicImageOf returns the public app an image reference names: its
// repository ends in /podinfo or /go-httpbin.
func publicImageOf(image string) (publicImage, bool) {
	repo := image
	if i := strings.Index(repo, "@"); i >= 0 {
		repo = repo[:i]
	}
	if slash, colon := strings.LastIndex(repo, "/"), strings.LastIndex(repo, ":"); colon > slash {
		repo = repo[:colon]
	}
	slash := strings.LastIndex(repo, "/")
	if slash < 0 {
		return publicImage{}, false
	}
	img, ok := publicImages[repo[slash+1:]]
	return img, ok
}

// imageRoot is a directory laid out like the image's file system, its
// files linked to the built binaries; processes run with paths inside it.
type imageRoot struct {
	dir string
	img publicImage
}

func newImageRoot(dir string, img publicImage, apps Apps) (*imageRoot, error) {
	for _, f := range img.files {
		target := filepath.Join(dir, f.path)
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return nil, fmt.Errorf("lay out image file %s: %w", f.path, err)
		}
		if err := os.Symlink(f.host(apps), target); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("lay out image file %s: %w", f.path, err)
		}
	}
	return &imageRoot{dir: dir, img: img}, nil
}

// argv is what a kubelet runs for a container: command replaces the
// image's entrypoint, args its cmd; $(VAR) refers to the container's env.
func (r *imageRoot) argv(command, args []string, env map[string]string) []string {
	var argv []string
	switch {
	case len(command) > 0:
		argv = append(expandAll(command, env), expandAll(args, env)...)
	case len(args) > 0:
		argv = append(append([]string{}, r.img.entrypoint...), expandAll(args, env)...)
	default:
		argv = append(append([]string{}, r.img.entrypoint...), r.img.cmd...)
	}
	return argv
}

// workDir is the container's working directory inside the image root.
func (r *imageRoot) workDir(spec string) string {
	if spec == "" {
		spec = r.img.workingDir
	}
	return filepath.Join(r.dir, spec)
}

// resolve finds an executable as the container's runtime would: a path
// relative to the working directory, an absolute path in the image, or a
// name on the image's PATH.
func (r *imageRoot) resolve(name, workDir string) (string, error) {
	var candidates []string
	switch {
	case strings.HasPrefix(name, "/"):
		candidates = []string{filepath.Join(r.dir, name)}
	case strings.Contains(name, "/"):
		candidates = []string{filepath.Join(workDir, name)}
	default:
		for _, d := range strings.Split(r.img.path, ":") {
			candidates = append(candidates, filepath.Join(r.dir, d, name))
		}
	}
	for _, c := range candidates {
		if fi, err := os.Stat(c); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return c, nil
		}
	}
	return "", fmt.Errorf(`exec: %q: executable file not found in $PATH: unknown`, name)
}

// environ is the container's environment as the kubelet builds it.
func (r *imageRoot) environ(podName string, env map[string]string) []string {
	out := []string{"PATH=" + r.img.path, "HOSTNAME=" + podName, "HOME=/root"}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// expandAll replaces $(VAR) with the container's env value, $$(VAR) with
// the literal $(VAR), and leaves unknown references as they are.
func expandAll(in []string, env map[string]string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		var b strings.Builder
		for len(s) > 0 {
			switch {
			case strings.HasPrefix(s, "$$"):
				b.WriteByte('$')
				s = s[2:]
			case strings.HasPrefix(s, "$("):
				end := strings.IndexByte(s, ')')
				if end < 0 {
					b.WriteString(s)
					s = ""
					continue
				}
				if v, ok := env[s[2:end]]; ok {
					b.WriteString(v)
				} else {
					b.WriteString(s[:end+1])
				}
				s = s[end+1:]
			default:
				b.WriteByte(s[0])
				s = s[1:]
			}
		}
		out[i] = b.String()
	}
	return out
}

// appProcess is one run of a public app's container.
type appProcess struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	log  *os.File
}

// startProcess runs argv in the sandbox from workDir, its output appended
// to logPath (the container's log, which pods/log would read).
func startProcess(sb *sandbox, root *imageRoot, argv []string, workDir string, env []string, logPath string) (*appProcess, error) {
	exe, err := root.resolve(argv[0], workDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(workDir, 0o755); err != nil {
		return nil, fmt.Errorf("create working directory: %w", err)
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open container log: %w", err)
	}
	cmd := sb.command(context.Background(), append([]string{exe}, argv[1:]...))
	cmd.Dir, cmd.Env = workDir, env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	p := &appProcess{cmd: cmd, done: make(chan struct{}), log: logFile}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended, and how.
func (p *appProcess) exited() (bool, string) {
	select {
	case <-p.done:
		if p.err == nil {
			return true, "exit status 0"
		}
		return true, p.err.Error()
	default:
		return false, ""
	}
}

// stop ends the process as a container runtime does: SIGTERM, then SIGKILL
// after the grace period.
func (p *appProcess) stop(grace time.Duration) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// execProbe runs an exec probe's command inside the pod's namespace, as
// the kubelet runs it inside the container; exit status 0 is success.
func execProbe(ctx context.Context, sb *sandbox, root *imageRoot, command []string, workDir string, env []string, timeout time.Duration) (bool, string) {
	if len(command) == 0 {
		return false, "exec probe without a command"
	}
	exe, err := root.resolve(command[0], workDir)
	if err != nil {
		return false, err.Error()
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := sb.command(ctx, append([]string{exe}, command[1:]...))
	cmd.Dir, cmd.Env = workDir, env
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return false, strings.TrimSpace(out.String() + " " + err.Error())
	}
	return true, ""
}
