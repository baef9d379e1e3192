package testcluster

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Media types of the images the real node runs.
const (
	ociManifestType = "application/vnd.oci.image.manifest.v1+json"
	ociConfigType   = "application/vnd.oci.image.config.v1+json"
	ociLayerType    = "application/vnd.oci.image.layer.v1.tar"
	ociIndexType    = "application/vnd.oci.image.index.v1+json"
)

// pauseImage is the sandbox image containerd starts for every pod; it is
// imported at start, so no pod waits for a pull of it.
const pauseImage = "registry.k8s.io/pause:3.10"

// imageFile is one file or directory tree of an image, copied from the host.
type imageFile struct {
	src  string // host path (a file or a directory tree)
	dst  string // path in the image, without a leading slash
	mode int64  // for files; 0 keeps the host's mode
}

// imageSpec describes an image FROM scratch: one layer and its run config.
type imageSpec struct {
	repo       string // repository name: the last path element of an image reference
	files      []imageFile
	dirs       []string // extra empty directories
	user       string   // numeric uid:gid
	workingDir string
	cmd        []string
	ports      []string
	owner      [2]int // uid, gid of the files
}

// builtImage is an image whose blobs are on disk.
type builtImage struct {
	repo           string
	manifest       []byte
	manifestDigest string
	blobs          map[string]string // digest -> file
}

// specImages lists the images of the public apps, laid out as their
// upstream images are.
func specImages(apps Apps, pause string) []imageSpec {
	return []imageSpec{
		{
			// podinfo's Dockerfile: WORKDIR /home/app with ./podinfo and ./ui,
			// podcli in /usr/local/bin, user app (uid 100, gid 101 on alpine).
			repo: "podinfo",
			files: []imageFile{
				{src: apps.Podinfo, dst: "home/app/podinfo", mode: 0o755},
				{src: filepath.Join(apps.PodinfoSource, "ui"), dst: "home/app/ui"},
				{src: apps.Podcli, dst: "usr/local/bin/podcli", mode: 0o755},
			},
			dirs:       []string{"tmp"},
			user:       "100:101",
			owner:      [2]int{100, 101},
			workingDir: "/home/app",
			cmd:        []string{"./podinfo"},
			ports:      []string{"9898/tcp", "9797/tcp", "9999/tcp"},
		},
		{
			// go-httpbin's Dockerfile: /bin/go-httpbin on port 8080.
			repo:       "go-httpbin",
			files:      []imageFile{{src: apps.Httpbin, dst: "bin/go-httpbin", mode: 0o755}},
			dirs:       []string{"tmp"},
			user:       "65532:65532",
			owner:      [2]int{0, 0},
			workingDir: "/",
			cmd:        []string{"/bin/go-httpbin"},
			ports:      []string{"8080/tcp"},
		},
		{
			repo:  "pause",
			files: []imageFile{{src: pause, dst: "pause", mode: 0o755}},
			user:  "65535:65535",
			cmd:   []string{"/pause"},
		},
	}
}

// buildImage writes the image's layer and config into dir and returns it.
func buildImage(spec imageSpec, dir string) (*builtImage, error) {
	img := &builtImage{repo: spec.repo, blobs: map[string]string{}}
	layerPath := filepath.Join(dir, spec.repo+".layer.tar")
	layerDigest, layerSize, err := writeLayer(spec, layerPath)
	if err != nil {
		return nil, fmt.Errorf("build the %s image layer: %w", spec.repo, err)
	}
	img.blobs[layerDigest] = layerPath
	exposed := map[string]struct{}{}
	for _, p := range spec.ports {
		exposed[p] = struct{}{}
	}
	config, _ := json.Marshal(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"created":      time.Unix(0, 0).UTC(),
		"config": map[string]any{
			"User":         spec.user,
			"Env":          []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			"Cmd":          spec.cmd,
			"WorkingDir":   spec.workingDir,
			"ExposedPorts": exposed,
		},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{layerDigest}},
	})
	configDigest, err := writeBlob(dir, config)
	if err != nil {
		return nil, err
	}
	img.blobs[configDigest] = filepath.Join(dir, strings.TrimPrefix(configDigest, "sha256:"))
	img.manifest, _ = json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     ociManifestType,
		"config":        map[string]any{"mediaType": ociConfigType, "digest": configDigest, "size": len(config)},
		"layers":        []any{map[string]any{"mediaType": ociLayerType, "digest": layerDigest, "size": layerSize}},
	})
	if img.manifestDigest, err = writeBlob(dir, img.manifest); err != nil {
		return nil, err
	}
	img.blobs[img.manifestDigest] = filepath.Join(dir, strings.TrimPrefix(img.manifestDigest, "sha256:"))
	return img, nil
}

func writeBlob(dir string, data []byte) (string, error) {
	sum := sha256.Sum256(data)
	name := hex.EncodeToString(sum[:])
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		return "", fmt.Errorf("write image blob: %w", err)
	}
	return "sha256:" + name, nil
}

type countingHash struct {
	h hash.Hash
	n int64
}

func (c *countingHash) Write(p []byte) (int, error) { c.n += int64(len(p)); return c.h.Write(p) }

// writeLayer writes an uncompressed layer tar and returns its digest and size.
func writeLayer(spec imageSpec, dst string) (string, int64, error) {
	f, err := os.Create(dst)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	sum := &countingHash{h: sha256.New()}
	tw := tar.NewWriter(io.MultiWriter(f, sum))
	epoch := time.Unix(0, 0)
	written := map[string]bool{}
	dirEntry := func(name string, mode int64, uid, gid int) error {
		if written[name] {
			return nil
		}
		written[name] = true
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, Uid: uid, Gid: gid, ModTime: epoch, Format: tar.FormatPAX})
	}
	parents := func(name string) error {
		var dirs []string
		for d := path.Dir(name); d != "." && d != "/"; d = path.Dir(d) {
			dirs = append(dirs, d)
		}
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := dirEntry(dirs[i], 0o755, 0, 0); err != nil {
				return err
			}
		}
		return nil
	}
	for _, d := range spec.dirs {
		if err := dirEntry(d, 0o1777, 0, 0); err != nil {
			return "", 0, err
		}
	}
	uid, gid := spec.owner[0], spec.owner[1]
	for _, file := range spec.files {
		if err := parents(file.dst); err != nil {
			return "", 0, err
		}
		err := filepath.WalkDir(file.src, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(file.src, p)
			name := path.Join(file.dst, filepath.ToSlash(rel))
			if d.IsDir() {
				return dirEntry(name, 0o755, uid, gid)
			}
			if !d.Type().IsRegular() {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			mode := int64(info.Mode().Perm() | 0o444)
			if file.mode != 0 {
				mode = file.mode
			}
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: info.Size(), Uid: uid, Gid: gid, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
				return err
			}
			src, err := os.Open(p)
			if err != nil {
				return err
			}
			defer src.Close()
			_, err = io.Copy(tw, src)
			return err
		})
		if err != nil {
			return "", 0, fmt.Errorf("add %s: %w", file.src, err)
		}
	}
	if err := tw.Close(); err != nil {
		return "", 0, err
	}
	return "sha256:" + hex.EncodeToString(sum.h.Sum(nil)), sum.n, f.Close()
}

// writeOCILayout writes the image as an OCI layout tar named ref, as
// `ctr images import` reads it.
func (img *builtImage) writeOCILayout(ref, dst string) error {
	f, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("write image archive %s: %w", dst, err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	add := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data))}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	index, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     ociIndexType,
		"manifests": []any{map[string]any{
			"mediaType": ociManifestType,
			"digest":    img.manifestDigest,
			"size":      len(img.manifest),
			"annotations": map[string]string{
				"io.containerd.image.name":          ref,
				"org.opencontainers.image.ref.name": imageTag(ref),
			},
		}},
	})
	if err := add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	if err := add("index.json", index); err != nil {
		return err
	}
	digests := make([]string, 0, len(img.blobs))
	for d := range img.blobs {
		digests = append(digests, d)
	}
	sort.Strings(digests)
	for _, d := range digests {
		src, err := os.Open(img.blobs[d])
		if err != nil {
			return err
		}
		info, _ := src.Stat()
		err = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "blobs/sha256/" + strings.TrimPrefix(d, "sha256:"), Mode: 0o644, Size: info.Size()})
		if err == nil {
			_, err = io.Copy(tw, src)
		}
		src.Close()
		if err != nil {
			return fmt.Errorf("write image archive %s: %w", dst, err)
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}

// imageRegistry serves the known images on loopback under any tag of their
// repository (so SHA-tagged deploys pull as in CI) and answers 404 for every
// other repository, so the kubelet reports its own ErrImagePull.
type imageRegistry struct {
	images map[string]*builtImage // by repository's last path element
	srv    *http.Server
	ln     net.Listener
	mu     sync.Mutex
	misses []string
}

func startImageRegistry(images []*builtImage) (*imageRegistry, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("image registry: listen on loopback: %w", err)
	}
	r := &imageRegistry{images: map[string]*builtImage{}, ln: ln}
	for _, img := range images {
		r.images[img.repo] = img
	}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

// Addr is the registry's host:port.
func (r *imageRegistry) Addr() string { return r.ln.Addr().String() }

func (r *imageRegistry) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = r.srv.Shutdown(ctx)
}

func registryError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []any{map[string]string{"code": code, "message": message}}})
}

// ServeHTTP answers the pull side of the OCI distribution API.
func (r *imageRegistry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		registryError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "this registry only serves pulls")
		return
	}
	p := strings.TrimPrefix(req.URL.Path, "/v2/")
	if p == "" || req.URL.Path == "/v2" {
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		_, _ = w.Write([]byte("{}"))
		return
	}
	name, kind, ref, err := splitRegistryPath(p)
	if err != nil {
		registryError(w, http.StatusNotFound, "NAME_UNKNOWN", err.Error())
		return
	}
	img, ok := r.images[path.Base(name)]
	if !ok {
		r.mu.Lock()
		r.misses = append(r.misses, name+":"+ref)
		r.mu.Unlock()
		registryError(w, http.StatusNotFound, "NAME_UNKNOWN", fmt.Sprintf("repository %s is not known to this registry", name))
		return
	}
	switch kind {
	case "manifests":
		if strings.HasPrefix(ref, "sha256:") && ref != img.manifestDigest {
			registryError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest "+ref+" not known")
			return
		}
		w.Header().Set("Content-Type", ociManifestType)
		w.Header().Set("Docker-Content-Digest", img.manifestDigest)
		http.ServeContent(w, req, "", time.Unix(0, 0), bytes.NewReader(img.manifest))
	case "blobs":
		file, ok := img.blobs[ref]
		if !ok {
			registryError(w, http.StatusNotFound, "BLOB_UNKNOWN", "blob "+ref+" not known")
			return
		}
		f, err := os.Open(file)
		if err != nil {
			registryError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
			return
		}
		defer f.Close()
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Docker-Content-Digest", ref)
		http.ServeContent(w, req, "", time.Unix(0, 0), f)
	}
}

// splitRegistryPath splits "<name>/manifests/<ref>" or "<name>/blobs/<digest>".
func splitRegistryPath(p string) (name, kind, ref string, err error) {
	for _, k := range []string{"/manifests/", "/blobs/"} {
		if i := strings.LastIndex(p, k); i > 0 {
			return p[:i], strings.Trim(k, "/"), p[i+len(k):], nil
		}
	}
	return "", "", "", errors.New("not a manifest or blob path: " + p)
}
