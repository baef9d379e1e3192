package testcluster

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"
)

// Binaries are the paths of the control-plane programs built from the
// kubebin module.
type Binaries struct {
	Dir               string
	Etcd              string
	APIServer         string
	ControllerManager string
	Kubectl           string
}

// packages built from the kubebin module, with the name each binary gets.
// The node's programs are built apart (see EnsureNodeBinaries), so a test
// that needs only the control plane never waits for the kubelet.
var kubebinPackages = []struct{ pkg, name string }{
	{"k8s.io/kubernetes/cmd/kube-apiserver", "kube-apiserver"},
	{"k8s.io/kubernetes/cmd/kube-controller-manager", "kube-controller-manager"},
	{"k8s.io/kubernetes/cmd/kubectl", "kubectl"},
	{"go.etcd.io/etcd/server/v3", "etcd"},
}

// EnsureBinaries returns the control-plane binaries, building them once into
// a cache directory keyed by the kubebin module's go.mod and go.sum and the
// Go version. Concurrent callers (several test packages) wait on a file lock
// so the build happens once.
func EnsureBinaries(moduleDir, cacheRoot string, log io.Writer) (Binaries, error) {
	if moduleDir == "" {
		dir, err := findKubebinModule()
		if err != nil {
			return Binaries{}, err
		}
		moduleDir = dir
	}
	if cacheRoot == "" {
		userCache, err := os.UserCacheDir()
		if err != nil {
			return Binaries{}, fmt.Errorf("find a cache directory for Kubernetes binaries: %w", err)
		}
		cacheRoot = filepath.Join(userCache, "greenlight")
	}
	key, err := kubebinKey(moduleDir, kubebinPackages)
	if err != nil {
		return Binaries{}, err
	}
	dir := filepath.Join(cacheRoot, "kubebin-"+key)
	bins := binariesIn(dir)
	if bins.complete() {
		return bins, nil
	}
	if err := os.MkdirAll(cacheRoot, 0o755); err != nil {
		return Binaries{}, fmt.Errorf("create cache directory %s: %w", cacheRoot, err)
	}
	lockPath := filepath.Join(cacheRoot, "kubebin-"+key+".lock")
	unlock, err := tryLockFile(lockPath)
	if err != nil {
		return Binaries{}, err
	}
	if unlock == nil {
		fmt.Fprintf(log, "testcluster: another process is building the Kubernetes binaries into %s; waiting for it\n", dir)
		stop := heartbeat(log, buildHeartbeat, "still waiting for the other build", time.Now())
		unlock, err = lockFile(lockPath)
		stop()
		if err != nil {
			return Binaries{}, err
		}
	}
	defer unlock()
	if bins.complete() { // another process built them while we waited
		return bins, nil
	}
	if err := buildKubebin(moduleDir, dir, log); err != nil {
		return Binaries{}, err
	}
	return bins, nil
}

func binariesIn(dir string) Binaries {
	return Binaries{
		Dir:               dir,
		Etcd:              filepath.Join(dir, "etcd"),
		APIServer:         filepath.Join(dir, "kube-apiserver"),
		ControllerManager: filepath.Join(dir, "kube-controller-manager"),
		Kubectl:           filepath.Join(dir, "kubectl"),
	}
}

func (b Binaries) complete() bool {
	for _, p := range []string{b.Etcd, b.APIServer, b.ControllerManager, b.Kubectl} {
		if fi, err := os.Stat(p); err != nil || fi.Size() == 0 {
			return false
		}
	}
	return true
}

func buildKubebin(moduleDir, dir string, log io.Writer) error {
	fmt.Fprintf(log, "testcluster: building etcd, kube-apiserver, kube-controller-manager and kubectl once into %s (a cold build takes about 15 minutes on 2 cores)\n", dir)
	return buildModuleBinaries(moduleDir, dir, kubebinPackages, nil, log)
}

// buildModuleBinaries builds each package of a nested module into a fresh
// directory and moves it into place whole, so a half-finished build is never
// taken for a complete one.
func buildModuleBinaries(moduleDir, dir string, pkgs []struct{ pkg, name string }, env []string, log io.Writer) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("build binaries of %s: the go command is not on PATH: %w", moduleDir, err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "build-")
	if err != nil {
		return fmt.Errorf("create build directory: %w", err)
	}
	defer os.RemoveAll(tmp)

	start := time.Now()
	for i, p := range pkgs {
		step := fmt.Sprintf("[%d/%d]", i+1, len(pkgs))
		fmt.Fprintf(log, "testcluster: %s building %s\n", step, p.name)
		cmd := exec.Command(goBin, "build", "-o", filepath.Join(tmp, p.name), p.pkg)
		cmd.Dir = moduleDir
		cmd.Env = append(os.Environ(), env...)
		stop := heartbeat(log, buildHeartbeat, fmt.Sprintf("%s still building %s", step, p.name), start)
		out, err := cmd.CombinedOutput()
		stop()
		if err != nil {
			return fmt.Errorf("build %s in %s: %w\n%s", p.pkg, moduleDir, err, out)
		}
		fmt.Fprintf(log, "testcluster: %s built %s (%s elapsed)\n", step, p.name, time.Since(start).Round(time.Second))
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("move built binaries to %s: %w", dir, err)
	}
	fmt.Fprintf(log, "testcluster: built the binaries of %s in %s\n", filepath.Base(moduleDir), time.Since(start).Round(time.Second))
	return nil
}

// buildHeartbeat is how often a long build says it is still going: a cold
// kube-apiserver takes minutes with nothing else to show.
const buildHeartbeat = 30 * time.Second

// heartbeat writes "testcluster: <what> (<elapsed since start>)" every
// interval until the returned stop is called.
func heartbeat(log io.Writer, every time.Duration, what string, start time.Time) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintf(log, "testcluster: %s (%s elapsed)\n", what, time.Since(start).Round(time.Second))
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// kubebinKey names a build: the same module files, package list and Go
// version give the same binaries.
func kubebinKey(moduleDir string, pkgs []struct{ pkg, name string }) (string, error) {
	key, err := moduleKey(moduleDir)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write([]byte(key))
	for _, p := range pkgs {
		fmt.Fprintf(h, "\n%s %s", p.pkg, p.name)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// moduleKey names a build of a nested module by its go.mod, go.sum and the
// Go version.
func moduleKey(moduleDir string) (string, error) {
	h := sha256.New()
	for _, name := range []string{"go.mod", "go.sum"} {
		data, err := os.ReadFile(filepath.Join(moduleDir, name))
		if err != nil {
			return "", fmt.Errorf("read module %s: %w", moduleDir, err)
		}
		h.Write(data)
	}
	h.Write([]byte(runtime.Version()))
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// findKubebinModule locates internal/testcluster/kubebin.
func findKubebinModule() (string, error) { return findNestedModule("kubebin") }

// findNestedModule locates internal/testcluster/<name>, a module of its own.
func findNestedModule(name string) (string, error) {
	gomod, err := findRepositoryFile(filepath.Join("internal", "testcluster", name, "go.mod"))
	if err != nil {
		return "", fmt.Errorf("find the %s module (internal/testcluster/%s/go.mod): run from the greenlight repository", name, name)
	}
	return filepath.Dir(gomod), nil
}

// findRepositoryFile locates rel, a path from the repository's root: beside
// this source file when built from source, else above the working
// directory.
func findRepositoryFile(rel string) (string, error) {
	var candidates []string
	if _, file, _, ok := runtime.Caller(0); ok {
		candidates = append(candidates, filepath.Join(filepath.Dir(file), "..", "..", rel))
	}
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; dir = filepath.Dir(dir) {
			candidates = append(candidates, filepath.Join(dir, rel))
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	for _, c := range candidates {
		if _, err := os.Stat(c); err == nil {
			return c, nil
		}
	}
	return "", fmt.Errorf("find %s: run from the greenlight repository", rel)
}

// tryLockFile takes the lock at path if it is free; a nil unlock and no
// error mean another process holds it.
func tryLockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, nil
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
