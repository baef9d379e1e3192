package testcluster

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// NodeBinaries are the programs of the real node, built from the kubebin
// module apart from the control plane so that control-plane-only tests never
// wait for them.
type NodeBinaries struct {
	Dir           string
	Kubelet       string
	KubeProxy     string
	KubeScheduler string
	// Pause is a static program that holds a pod sandbox's namespaces.
	Pause string
}

var nodePackages = []struct{ pkg, name string }{
	{"k8s.io/kubernetes/cmd/kubelet", "kubelet"},
	{"k8s.io/kubernetes/cmd/kube-proxy", "kube-proxy"},
	{"k8s.io/kubernetes/cmd/kube-scheduler", "kube-scheduler"},
}

var pausePackage = []struct{ pkg, name string }{
	{"github.com/ebeautything/greenlight/internal/testcluster/kubebin/pause", "pause"},
}

// EnsureNodeBinaries returns the real node's programs, building them once
// into a cache directory keyed by the kubebin module, the package list, the
// pause program's source and the Go version (file-locked like
// EnsureBinaries).
func EnsureNodeBinaries(moduleDir, cacheRoot string, log io.Writer) (NodeBinaries, error) {
	if moduleDir == "" {
		dir, err := findKubebinModule()
		if err != nil {
			return NodeBinaries{}, err
		}
		moduleDir = dir
	}
	if cacheRoot == "" {
		userCache, err := os.UserCacheDir()
		if err != nil {
			return NodeBinaries{}, fmt.Errorf("find a cache directory for the node's binaries: %w", err)
		}
		cacheRoot = filepath.Join(userCache, "greenlight")
	}
	key, err := kubebinKey(moduleDir, append(append([]struct{ pkg, name string }{}, nodePackages...), pausePackage...))
	if err != nil {
		return NodeBinaries{}, err
	}
	pauseSrc, err := os.ReadFile(filepath.Join(moduleDir, "pause", "main.go"))
	if err != nil {
		return NodeBinaries{}, fmt.Errorf("read the pause program: %w", err)
	}
	sum := sha256.Sum256(append([]byte(key), pauseSrc...))
	dir := filepath.Join(cacheRoot, "kubenode-"+hex.EncodeToString(sum[:])[:16])
	bins := NodeBinaries{
		Dir:           dir,
		Kubelet:       filepath.Join(dir, "kubelet"),
		KubeProxy:     filepath.Join(dir, "kube-proxy"),
		KubeScheduler: filepath.Join(dir, "kube-scheduler"),
		Pause:         filepath.Join(dir, "pause", "pause"),
	}
	if bins.complete() {
		return bins, nil
	}
	if err := os.MkdirAll(cacheRoot, 0o755); err != nil {
		return NodeBinaries{}, fmt.Errorf("create cache directory %s: %w", cacheRoot, err)
	}
	unlock, err := lockFile(dir + ".lock")
	if err != nil {
		return NodeBinaries{}, err
	}
	defer unlock()
	if bins.complete() {
		return bins, nil
	}
	fmt.Fprintf(log, "testcluster: building kubelet, kube-proxy and kube-scheduler once into %s (a warm build takes about 3 minutes on 2 cores)\n", dir)
	staging := dir + ".staging"
	_ = os.RemoveAll(staging)
	if err := os.MkdirAll(staging, 0o755); err != nil {
		return NodeBinaries{}, fmt.Errorf("create %s: %w", staging, err)
	}
	defer os.RemoveAll(staging)
	if err := buildModuleBinaries(moduleDir, filepath.Join(staging, "pause"), pausePackage, []string{"CGO_ENABLED=0", "GOFLAGS=-trimpath"}, log); err != nil {
		return NodeBinaries{}, err
	}
	if err := buildModuleBinaries(moduleDir, filepath.Join(staging, "bin"), nodePackages, nil, log); err != nil {
		return NodeBinaries{}, err
	}
	if err := os.Rename(filepath.Join(staging, "pause"), filepath.Join(staging, "bin", "pause")); err != nil {
		return NodeBinaries{}, fmt.Errorf("move the pause program: %w", err)
	}
	if err := os.Rename(filepath.Join(staging, "bin"), dir); err != nil {
		return NodeBinaries{}, fmt.Errorf("move built node binaries to %s: %w", dir, err)
	}
	return bins, nil
}

func (b NodeBinaries) complete() bool {
	for _, p := range []string{b.Kubelet, b.KubeProxy, b.KubeScheduler, b.Pause} {
		if fi, err := os.Stat(p); err != nil || fi.Size() == 0 {
			return false
		}
	}
	return true
}
