package testcluster

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Apps are public applications nobody in this project wrote, built as static
// binaries from the apps module so tests and the sandbox can run them as pods.
type Apps struct {
	Dir string
	// Podinfo is github.com/stefanprodan/podinfo's server; PodinfoVersion is
	// the version it reports at /version.
	Podinfo        string
	PodinfoVersion string
	// Podcli is podinfo's client, which its own manifests use for exec probes.
	Podcli string
	// PodinfoSource is podinfo's module directory: ui/ (which the server
	// reads from its working directory) and kustomize/ (its own manifests).
	PodinfoSource string
	// Httpbin is github.com/mccutchen/go-httpbin: it reports no version.
	Httpbin string
}

// appPackages are the programs of the apps module, with the name each
// binary gets (the name each upstream image uses).
var appPackages = []struct{ pkg, name string }{
	{"github.com/stefanprodan/podinfo/cmd/podinfo", "podinfo"},
	{"github.com/stefanprodan/podinfo/cmd/podcli", "podcli"},
	{"github.com/mccutchen/go-httpbin/v2/cmd/go-httpbin", "go-httpbin"},
}

const podinfoModule = "github.com/stefanprodan/podinfo"

// EnsureApps returns the public apps, building them once (statically, so
// they also run in images FROM scratch) into a cache directory keyed by the
// apps module's go.mod and go.sum and the Go version. Concurrent callers wait
// on a file lock.
func EnsureApps(cacheRoot string, log io.Writer) (Apps, error) {
	moduleDir, err := findNestedModule("apps")
	if err != nil {
		return Apps{}, err
	}
	if cacheRoot == "" {
		userCache, err := os.UserCacheDir()
		if err != nil {
			return Apps{}, fmt.Errorf("find a cache directory for the public apps: %w", err)
		}
		cacheRoot = filepath.Join(userCache, "greenlight")
	}
	key, err := moduleKey(moduleDir)
	if err != nil {
		return Apps{}, err
	}
	source, version, err := podinfoSource(moduleDir)
	if err != nil {
		return Apps{}, err
	}
	dir := filepath.Join(cacheRoot, "apps-"+key)
	apps := Apps{
		Dir:            dir,
		Podinfo:        filepath.Join(dir, "podinfo"),
		PodinfoVersion: version,
		Podcli:         filepath.Join(dir, "podcli"),
		PodinfoSource:  source,
		Httpbin:        filepath.Join(dir, "go-httpbin"),
	}
	if apps.complete() {
		return apps, nil
	}
	if err := os.MkdirAll(cacheRoot, 0o755); err != nil {
		return Apps{}, fmt.Errorf("create cache directory %s: %w", cacheRoot, err)
	}
	unlock, err := lockFile(filepath.Join(cacheRoot, "apps-"+key+".lock"))
	if err != nil {
		return Apps{}, err
	}
	defer unlock()
	if apps.complete() {
		return apps, nil
	}
	fmt.Fprintf(log, "testcluster: building podinfo, podcli and go-httpbin once into %s\n", dir)
	if err := buildModuleBinaries(moduleDir, dir, appPackages, []string{"CGO_ENABLED=0", "GOFLAGS=-trimpath"}, log); err != nil {
		return Apps{}, err
	}
	return apps, nil
}

func (a Apps) complete() bool {
	for _, p := range []string{a.Podinfo, a.Podcli, a.Httpbin} {
		if fi, err := os.Stat(p); err != nil || fi.Size() == 0 {
			return false
		}
	}
	return true
}

// podinfoSource finds podinfo's module directory in the module cache
// (downloading it if needed) and the version its server reports.
func podinfoSource(moduleDir string) (dir, version string, err error) {
	cmd := exec.Command("go", "mod", "download", "-json", podinfoModule)
	cmd.Dir = moduleDir
	out, err := cmd.Output()
	if err != nil {
		return "", "", fmt.Errorf("download %s for its ui and manifests: %w", podinfoModule, err)
	}
	var m struct{ Dir string }
	if err := json.Unmarshal(out, &m); err != nil || m.Dir == "" {
		return "", "", fmt.Errorf("read the location of %s: %v", podinfoModule, err)
	}
	src, err := os.ReadFile(filepath.Join(m.Dir, "pkg", "version", "version.go"))
	if err != nil {
		return "", "", fmt.Errorf("read podinfo's version: %w", err)
	}
	for _, line := range strings.Split(string(src), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(k), "var")) == "VERSION" {
			return m.Dir, strings.Trim(strings.TrimSpace(v), `"`), nil
		}
	}
	return "", "", fmt.Errorf("podinfo's pkg/version/version.go names no VERSION")
}

// PodinfoManifest is podinfo's own Deployment and Service (its repository's
// kustomize/deployment.yaml and service.yaml) as one multi-document YAML,
// unchanged but for the Deployment's image.
func (a Apps) PodinfoManifest(image string) (string, error) {
	var docs []string
	for _, name := range []string{"deployment.yaml", "service.yaml"} {
		data, err := os.ReadFile(filepath.Join(a.PodinfoSource, "kustomize", name))
		if err != nil {
			return "", fmt.Errorf("read podinfo's %s: %w", name, err)
		}
		docs = append(docs, string(data))
	}
	const upstream = "image: ghcr.io/stefanprodan/podinfo:"
	i := strings.Index(docs[0], upstream)
	if i < 0 {
		return "", fmt.Errorf("podinfo's deployment.yaml names no %q", upstream)
	}
	end := i + strings.IndexByte(docs[0][i:], '\n')
	docs[0] = docs[0][:i] + "image: " + image + docs[0][end:]
	return strings.Join(docs, "---\n"), nil
}

// HttpbinManifest is a Deployment and Service of go-httpbin as its README
// runs it: port 8080, probed at /status/200, reporting no version.
func HttpbinManifest(name, image string, replicas int) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
spec:
  replicas: %[3]d
  selector:
    matchLabels:
      app: %[1]s
  template:
    metadata:
      labels:
        app: %[1]s
    spec:
      containers:
      - name: httpbin
        image: %[2]s
        ports:
        - name: http
          containerPort: 8080
        readinessProbe:
          httpGet:
            path: /status/200
            port: http
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata:
  name: %[1]s
spec:
  selector:
    app: %[1]s
  ports:
  - name: http
    port: 80
    targetPort: http
`, name, image, replicas)
}
