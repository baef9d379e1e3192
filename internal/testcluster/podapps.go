package testcluster

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// publicAppStopGrace caps how long a public app gets to exit on SIGTERM
// before it is killed, compressed from a pod's grace period.
const publicAppStopGrace = 3 * time.Second

// appContainer is a public app's container: its image root, how it is
// started, and the process of its current run.
type appContainer struct {
	sb      *sandbox
	root    *imageRoot
	ip      netip.Addr
	argv    []string
	workDir string
	env     []string
	logPath string
	proc    *appProcess
}

func (a *appContainer) start() error {
	if len(a.argv) == 0 {
		return fmt.Errorf("no command specified")
	}
	// The log of the run before is what `kubectl logs --previous` shows.
	if _, err := os.Stat(a.logPath); err == nil {
		_ = os.Rename(a.logPath, a.logPath+".previous")
	}
	p, err := startProcess(a.sb, a.root, a.argv, a.workDir, a.env, a.logPath)
	if err != nil {
		return err
	}
	a.proc = p
	return nil
}

func (a *appContainer) stop(grace time.Duration) {
	if a.proc != nil {
		a.proc.stop(grace)
	}
}

func (a *appContainer) execProbe(command []string, timeout time.Duration) bool {
	ok, _ := execProbe(context.Background(), a.sb, a.root, command, a.workDir, a.env, timeout)
	return ok
}

// addr is the pod address of a probe's port, named or numbered.
func (a *appContainer) addr(port intstr.IntOrString, spec corev1.Container) string {
	n := port.IntValue()
	if port.Type == intstr.String {
		for _, p := range spec.Ports {
			if p.Name == port.StrVal {
				n = int(p.ContainerPort)
			}
		}
	}
	return net.JoinHostPort(a.ip.String(), strconv.Itoa(n))
}

// runsPublicApp reports whether any container of the pod is a public app,
// which makes the whole pod run in its own network namespace.
func (r *podRunner) runsPublicApp() bool {
	for _, c := range r.pod.Spec.Containers {
		if _, ok := publicImageOf(c.Image); ok {
			return true
		}
	}
	return false
}

// createSandbox builds the public apps once and gives the pod its network
// namespace and a directory for its image roots and logs.
func (r *podRunner) createSandbox() error {
	n := r.n
	n.appsOnce.Do(func() { n.apps, n.appsErr = EnsureApps("", n.log) })
	if n.appsErr != nil {
		return n.appsErr
	}
	dir, err := os.MkdirTemp("", "glc-pod-")
	if err != nil {
		return fmt.Errorf("create pod directory: %w", err)
	}
	// The owner file lets a later cluster remove what a killed run left.
	if err := os.WriteFile(filepath.Join(dir, ownerFile), fmt.Appendf(nil, "%d", os.Getpid()), 0o644); err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("record pod directory owner: %w", err)
	}
	sb, err := n.sandboxes.create()
	if err != nil {
		os.RemoveAll(dir)
		return err
	}
	r.sb, r.ip, r.dir = sb, sb.ip, dir
	return nil
}

func (r *podRunner) removeSandbox() {
	r.n.sandboxes.release(r.sb)
	_ = os.RemoveAll(r.dir)
}

// startPublicApp starts a public app's container from its command, args,
// env and working directory, as a kubelet would from the image.
func (r *podRunner) startPublicApp(c *container, img publicImage, first bool) {
	spec := c.spec
	root, err := newImageRoot(filepath.Join(r.dir, "rootfs-"+spec.Name), img, r.n.apps)
	if err != nil {
		r.crashed(c, time.Now(), err.Error())
		return
	}
	env := r.env(spec)
	c.app = &appContainer{
		sb: r.sb, root: root, ip: r.ip,
		argv:    root.argv(spec.Command, spec.Args, env),
		workDir: root.workDir(spec.WorkingDir),
		env:     root.environ(r.pod.Name, env),
		logPath: filepath.Join(r.dir, spec.Name+".log"),
	}
	for _, p := range spec.Ports {
		r.n.addrs.route(r.ip, int(p.ContainerPort), net.JoinHostPort(r.ip.String(), strconv.Itoa(int(p.ContainerPort))))
	}
	if first && len(spec.Ports) > 0 {
		r.n.addrs.route(r.ip, 0, net.JoinHostPort(r.ip.String(), strconv.Itoa(int(spec.Ports[0].ContainerPort))))
	}
	if len(spec.Ports) > 0 {
		c.addr = net.JoinHostPort(r.ip.String(), strconv.Itoa(int(spec.Ports[0].ContainerPort)))
	}
	if err := c.app.start(); err != nil {
		r.crashed(c, time.Now(), err.Error())
		return
	}
	r.logs.keep(r.containerID(c, 0), fileLog{c.app.logPath})
	r.n.event(r.pod, corev1.EventTypeNormal, "Pulled", fmt.Sprintf("Container image %q already present on machine", spec.Image), "kubelet")
	r.n.event(r.pod, corev1.EventTypeNormal, "Started", "Started container "+spec.Name, "kubelet")
	c.ready = spec.ReadinessProbe == nil
}

// crashed records a container's exit and schedules its restart.
func (r *podRunner) crashed(c *container, now time.Time, message string) {
	c.mode, c.message, c.ready = modeCrashLoop, message, false
	c.restarts++
	c.lastCrash, c.nextCrash = now, now.Add(crashInterval)
	if c.app != nil {
		// Until the next start the exited process's log is the current file.
		r.terminated(c, r.containerID(c, c.restarts-1), fileLog{c.app.logPath})
	}
	r.n.event(r.pod, corev1.EventTypeWarning, "BackOff", fmt.Sprintf("Back-off restarting failed container %s in pod %s_%s(%s)", c.spec.Name, r.pod.Name, r.pod.Namespace, r.pod.UID), "kubelet")
}

// publicAppExited notices a public app's process ending.
func (r *podRunner) publicAppExited(c *container, now time.Time) bool {
	if c.app.proc == nil {
		return false
	}
	done, how := c.app.proc.exited()
	if !done {
		return false
	}
	r.crashed(c, now, how)
	return true
}

// restartPublicApp starts a crashed public app again after its back-off.
func (r *podRunner) restartPublicApp(c *container, now time.Time) bool {
	if err := c.app.start(); err != nil {
		r.crashed(c, now, err.Error())
		return true
	}
	// start kept the exited process's log as the previous one.
	r.terminated(c, c.lastID, fileLog{c.app.logPath + ".previous"})
	r.logs.keep(r.containerID(c, c.restarts), fileLog{c.app.logPath})
	c.mode, c.started = modeRunning, now
	c.successes, c.failures, c.lastProbe = 0, 0, time.Time{}
	c.ready = c.spec.ReadinessProbe == nil
	r.n.event(r.pod, corev1.EventTypeNormal, "Started", "Started container "+c.spec.Name, "kubelet")
	return true
}

// grace is how long the pod's apps get to stop on SIGTERM.
func (r *podRunner) grace() time.Duration {
	if g := r.pod.Spec.TerminationGracePeriodSeconds; g != nil && time.Duration(*g)*time.Second < publicAppStopGrace {
		return time.Duration(*g) * time.Second
	}
	return publicAppStopGrace
}
